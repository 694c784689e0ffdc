package graylog

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
)

// Input types and the titles golden gives its inputs; setup recognises its
// own inputs by title.
const (
	TypeGELFUDP  = "org.graylog2.inputs.gelf.udp.GELFUDPInput"
	TypeGELFTCP  = "org.graylog2.inputs.gelf.tcp.GELFTCPInput"
	TitleGELFUDP = "golden GELF UDP"
	TitleGELFTCP = "golden GELF TCP"
)

// InputSpec is an input to create: the body of POST /api/system/inputs.
type InputSpec struct {
	Title  string `json:"title"`
	Type   string `json:"type"`
	Global bool   `json:"global"`
	// Node is the node to run a non-global input on.
	Node          string         `json:"node,omitempty"`
	Configuration map[string]any `json:"configuration"`
}

// Port returns the port in the configuration, if any.
func (s InputSpec) Port() (int, bool) { return portOf(s.Configuration) }

// GELFUDPInput returns golden's GELF UDP input on port, on all interfaces of
// every node, accepting compressed messages up to 8 MiB.
func GELFUDPInput(port int) InputSpec {
	return InputSpec{
		Title:  TitleGELFUDP,
		Type:   TypeGELFUDP,
		Global: true,
		Configuration: map[string]any{
			"bind_address":          "0.0.0.0",
			"port":                  port,
			"recv_buffer_size":      262144,
			"decompress_size_limit": 8388608,
		},
	}
}

// GELFTCPInput returns golden's GELF TCP input on port, on all interfaces of
// every node, with messages ended by a NUL byte (as go-gelf writes them) and
// at most 2 MiB long.
func GELFTCPInput(port int) InputSpec {
	return InputSpec{
		Title:  TitleGELFTCP,
		Type:   TypeGELFTCP,
		Global: true,
		Configuration: map[string]any{
			"bind_address":       "0.0.0.0",
			"port":               port,
			"recv_buffer_size":   262144,
			"use_null_delimiter": true,
			"max_message_size":   2097152,
		},
	}
}

// Input is an input as GET /api/system/inputs lists it.
type Input struct {
	ID     string `json:"id"`
	Title  string `json:"title"`
	Type   string `json:"type"`
	Global bool   `json:"global"`
	// Node is empty for a global input.
	Node string `json:"node"`
	// Attributes is the input's configuration.
	Attributes map[string]any `json:"attributes"`
}

// Port returns the configured port, if the input has one.
func (in Input) Port() (int, bool) { return portOf(in.Attributes) }

// portOf reads "port" from a configuration, whichever way it was decoded.
func portOf(m map[string]any) (int, bool) {
	switch p := m["port"].(type) {
	case int:
		return p, true
	case float64:
		return int(p), p == float64(int(p))
	case json.Number:
		n, err := strconv.Atoi(p.String())
		return n, err == nil
	case string:
		n, err := strconv.Atoi(p)
		return n, err == nil
	}
	return 0, false
}

// Inputs lists the inputs of the cluster.
func (c *Client) Inputs(ctx context.Context) ([]Input, error) {
	var raw struct {
		Inputs []struct {
			Input
			// Older versions answer "configuration" where newer say "attributes".
			Configuration map[string]any `json:"configuration"`
		} `json:"inputs"`
	}
	if err := c.do(ctx, http.MethodGet, "/api/system/inputs", nil, nil, &raw); err != nil {
		return nil, err
	}
	inputs := make([]Input, 0, len(raw.Inputs))
	for _, r := range raw.Inputs {
		in := r.Input
		if in.Attributes == nil {
			in.Attributes = r.Configuration
		}
		inputs = append(inputs, in)
	}
	return inputs, nil
}

// CreateInput creates an input and returns its ID.
func (c *Client) CreateInput(ctx context.Context, spec InputSpec) (string, error) {
	var out struct {
		ID string `json:"id"`
	}
	if err := c.do(ctx, http.MethodPost, "/api/system/inputs", nil, spec, &out); err != nil {
		return "", err
	}
	if out.ID == "" {
		return "", &Error{Method: http.MethodPost, Path: "/api/system/inputs", Message: "Graylog created the input but returned no id", base: c.base.String(), err: ErrNotJSON}
	}
	return out.ID, nil
}

// EnsureResult says what EnsureInputs did about one input.
type EnsureResult struct {
	Spec InputSpec
	// ID is the input's ID, new or found.
	ID string
	// Created is true when the input was created, false when it was already there.
	Created bool
}

// EnsureInputs creates each input of specs that is missing, recognising
// present ones by title, so running it again creates nothing. An input with
// the same title but another type or port is an error: it was changed by
// hand, and replacing it silently could cut off someone's log stream.
// It stops at the first error and returns the results so far.
func (c *Client) EnsureInputs(ctx context.Context, specs ...InputSpec) ([]EnsureResult, error) {
	existing, err := c.Inputs(ctx)
	if err != nil {
		return nil, err
	}
	var results []EnsureResult
	for _, spec := range specs {
		found, err := matchInput(existing, spec)
		if err != nil {
			return results, err
		}
		if found != nil {
			results = append(results, EnsureResult{Spec: spec, ID: found.ID})
			continue
		}
		id, err := c.CreateInput(ctx, spec)
		if err != nil {
			return results, fmt.Errorf("creating input %q: %w", spec.Title, err)
		}
		results = append(results, EnsureResult{Spec: spec, ID: id, Created: true})
	}
	return results, nil
}

// matchInput returns the input titled like spec with its type and port, nil
// when no input has the title, and an error when only different ones do.
func matchInput(existing []Input, spec InputSpec) (*Input, error) {
	wantPort, _ := spec.Port()
	var conflict *Input
	for i, in := range existing {
		if in.Title != spec.Title {
			continue
		}
		if port, _ := in.Port(); in.Type == spec.Type && port == wantPort {
			return &existing[i], nil
		}
		conflict = &existing[i]
	}
	if conflict == nil {
		return nil, nil
	}
	port, ok := conflict.Port()
	have := "no port"
	if ok {
		have = "port " + strconv.Itoa(port)
	}
	return nil, fmt.Errorf("input %q (id %s) already exists with type %s and %s, but golden needs type %s and port %d: change or delete it in Graylog (System > Inputs), or choose another port",
		spec.Title, conflict.ID, conflict.Type, have, spec.Type, wantPort)
}

package canary

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"

	"github.com/golden-stack/golden/observability/consul"
)

// KVPrefix is where the weights live in Consul KV: one key per service,
// KVPrefix+<service>, holding a Setting as JSON.
const KVPrefix = "golden/canary/"

// maxSettingBytes bounds a Setting's JSON.
const maxSettingBytes = 4 << 10

// Setting is one service's canary weight and the record of who set it,
// when and why (a rollback's reason stays here for `golden canary status`
// and the dashboard).
type Setting struct {
	// Weight is the percent of callers routed to the canary, 0-100.
	Weight int `json:"weight"`
	// By names who set it: "golden canary set", "golden canary guard".
	By string `json:"by,omitempty"`
	// Reason says why, for a rollback: the alert that caused it.
	Reason string `json:"reason,omitempty"`
	// At is when it was set.
	At time.Time `json:"at"`
}

// CheckWeight returns an error unless w is a weight, 0-100.
func CheckWeight(w int) error {
	if w < 0 || w > 100 {
		return fmt.Errorf("must be between 0 and 100 (percent), got %d", w)
	}
	return nil
}

// ParseSetting decodes a Setting strictly: unknown fields, data after the
// object and a weight outside 0-100 are errors.
func ParseSetting(data []byte) (Setting, error) {
	var s Setting
	if len(data) > maxSettingBytes {
		return s, fmt.Errorf("value is %d bytes, more than the %d allowed", len(data), maxSettingBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return s, fmt.Errorf("not a canary setting JSON object: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return s, errors.New("not a canary setting JSON object: data after the object")
	}
	if err := CheckWeight(s.Weight); err != nil {
		return s, fmt.Errorf("weight %v", err)
	}
	return s, nil
}

// Store reads and writes the weights in Consul KV.
type Store struct {
	kv *api.KV
}

// NewStore returns the Store of the Consul agent at addr, presenting the
// ACL token in tokenFile (or the standard CONSUL_HTTP_TOKEN(_FILE) when
// empty).
func NewStore(addr, tokenFile string) (*Store, error) {
	c, err := consul.NewClient(addr, tokenFile)
	if err != nil {
		return nil, err
	}
	return NewStoreOf(c), nil
}

// NewStoreOf returns the Store of client.
func NewStoreOf(client *api.Client) *Store { return &Store{kv: client.KV()} }

// Get returns service's Setting; the zero Setting when none was set.
func (s *Store) Get(ctx context.Context, service string) (Setting, error) {
	st, _, err := s.get(ctx, service)
	return st, err
}

func (s *Store) get(ctx context.Context, service string) (Setting, uint64, error) {
	if err := CheckService(service); err != nil {
		return Setting{}, 0, err
	}
	p, _, err := s.kv.Get(KVPrefix+service, (&api.QueryOptions{}).WithContext(ctx))
	if err != nil || p == nil {
		return Setting{}, 0, err
	}
	st, err := ParseSetting(p.Value)
	if err != nil {
		return Setting{}, 0, fmt.Errorf("%s%s: %w", KVPrefix, service, err)
	}
	return st, p.ModifyIndex, nil
}

// List returns every service's Setting. Invalid values are reported as one
// error, with the valid ones still returned.
func (s *Store) List(ctx context.Context) (map[string]Setting, error) {
	pairs, _, err := s.kv.List(KVPrefix, (&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return nil, err
	}
	out, bad := parsePairs(pairs)
	return out, errors.Join(bad...)
}

// Set writes service's Setting.
func (s *Store) Set(ctx context.Context, service string, st Setting) error {
	if err := CheckService(service); err != nil {
		return err
	}
	if err := CheckWeight(st.Weight); err != nil {
		return fmt.Errorf("weight %v", err)
	}
	raw, err := json.Marshal(st)
	if err != nil {
		return err
	}
	_, err = s.kv.Put(&api.KVPair{Key: KVPrefix + service, Value: raw}, (&api.WriteOptions{}).WithContext(ctx))
	return err
}

// Rollback sets service's weight to 0 with st's By and Reason, unless it is
// 0 already; changed says whether it wrote. The write is a check-and-set
// on the value it read, so a rollback never undoes a newer setting it did
// not see, and two at once write once.
func (s *Store) Rollback(ctx context.Context, service string, st Setting) (changed bool, err error) {
	for range 3 {
		cur, index, err := s.get(ctx, service)
		if err != nil {
			return false, err
		}
		if cur.Weight == 0 {
			return false, nil
		}
		st.Weight = 0
		raw, err := json.Marshal(st)
		if err != nil {
			return false, err
		}
		ok, _, err := s.kv.CAS(&api.KVPair{Key: KVPrefix + service, Value: raw, ModifyIndex: index}, (&api.WriteOptions{}).WithContext(ctx))
		if err != nil || ok {
			return ok, err
		}
		// Someone wrote in between: look again.
	}
	return false, fmt.Errorf("%s%s kept changing during the rollback", KVPrefix, service)
}

// parsePairs returns the valid settings among pairs by service, and an
// error for each invalid one.
func parsePairs(pairs api.KVPairs) (map[string]Setting, []error) {
	out := make(map[string]Setting, len(pairs))
	var bad []error
	for _, p := range pairs {
		if p == nil {
			continue
		}
		service := strings.TrimPrefix(p.Key, KVPrefix)
		if service == "" || strings.HasSuffix(service, "/") {
			continue // a folder, as the Consul UI creates them
		}
		if err := CheckService(service); err != nil {
			bad = append(bad, fmt.Errorf("%s: %w", p.Key, err))
			continue
		}
		st, err := ParseSetting(p.Value)
		if err != nil {
			bad = append(bad, fmt.Errorf("%s: %w", p.Key, err))
			continue
		}
		out[service] = st
	}
	return out, bad
}

// Weights follows the weights in Consul for the edge, which routes with
// them (Current). It is a lifecycle.Component: Serve watches until
// Shutdown. While Consul cannot be reached it keeps the last weights it
// read.
type Weights struct {
	kv      *api.KV // nil: no Consul, every weight 0
	log     logrus.FieldLogger
	current atomic.Pointer[map[string]int]
	gauge   *prometheus.GaugeVec
	loop    *consul.Loop
}

// NewWeights returns the Weights of the Consul agent at addr (none, every
// weight 0, when addr is empty), presenting the token in tokenFile, logging
// on log and exposing golden_canary_weight{service} on reg (when not nil).
func NewWeights(addr, tokenFile string, log logrus.FieldLogger, reg prometheus.Registerer) (*Weights, error) {
	w := &Weights{
		log:  log,
		loop: consul.NewLoop(),
		gauge: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "golden_canary_weight",
			Help: "Percent of callers the edge routes to each service's canary track (0-100), as set in Consul KV.",
		}, []string{"service"}),
	}
	w.current.Store(&map[string]int{})
	if addr != "" {
		c, err := consul.NewClient(addr, tokenFile)
		if err != nil {
			return nil, fmt.Errorf("canary weights: %w", err)
		}
		w.kv = c.KV()
	}
	if reg != nil {
		if err := reg.Register(w.gauge); err != nil {
			return nil, fmt.Errorf("canary weights: registering metrics: %w", err)
		}
	}
	return w, nil
}

// Current returns the weights now, by service; callers must not change it.
func (w *Weights) Current() map[string]int { return *w.current.Load() }

// Name implements lifecycle.Component.
func (w *Weights) Name() string { return "canary-weights" }

// Serve implements lifecycle.Component.
func (w *Weights) Serve() error {
	if w.kv == nil {
		return w.loop.Serve(nil)
	}
	return w.loop.Serve(func(ctx context.Context) {
		consul.Watch(ctx, func(opts *api.QueryOptions) (api.KVPairs, *api.QueryMeta, error) {
			return w.kv.List(KVPrefix, opts)
		}, consul.Handler[api.KVPairs]{
			Changed: w.apply,
			Failed: func(err error, _ time.Time, first bool) {
				if first {
					w.log.WithError(err).Warn("cannot read canary weights from Consul; keeping the current ones until it is back")
				}
			},
			Recovered: func(since time.Time) {
				w.log.WithField("failing_since", since.Format(time.RFC3339)).Info("Consul reachable again; canary weights follow it again")
			},
		})
	})
}

// Shutdown implements lifecycle.Component.
func (w *Weights) Shutdown(ctx context.Context) error { return w.loop.Shutdown(ctx) }

// apply replaces the weights with the valid ones among pairs; invalid keys
// count as weight 0 and are warned about once per version.
func (w *Weights) apply(pairs api.KVPairs) {
	settings, bad := parsePairs(pairs)
	for _, err := range bad {
		w.log.WithError(err).Warn("invalid canary weight in Consul ignored (weight 0)")
	}
	next := make(map[string]int, len(settings))
	for s, st := range settings {
		next[s] = st.Weight
	}
	prev := w.Current()
	if maps.Equal(prev, next) {
		return
	}
	for s := range prev {
		if _, ok := next[s]; !ok {
			w.gauge.DeleteLabelValues(s)
		}
	}
	for s, weight := range next {
		w.gauge.WithLabelValues(s).Set(float64(weight))
		if prev[s] != weight {
			w.log.WithFields(logrus.Fields{"target_service": s, "weight": weight, "previous_weight": prev[s]}).Info("canary weight changed")
		}
	}
	w.current.Store(&next)
}

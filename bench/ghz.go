package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"

	"github.com/golden-stack/golden/internal/testbackend"
)

// GHZBinary returns where scripts/install-backends.sh puts ghz.
func GHZBinary() string {
	return filepath.Join(testbackend.Dir(), "ghz-"+testbackend.Versions["ghz"], "ghz")
}

// GHZOptions are the settings of one ghz run against one server.
type GHZOptions struct {
	// Bin is the ghz binary.
	Bin string
	// Addr is the server's host:port.
	Addr string
	// Protoset is a FileDescriptorSet of the service (WriteProtoset) and
	// Call the method, as "package.Service.Method".
	Protoset, Call string
	// Data is the request as JSON.
	Data string
	// Metadata is sent with every call.
	Metadata map[string]string
	// Files are the CA that verifies the server and the client's own
	// certificate and key; ServerName is the name the server's
	// certificate must carry.
	Files      TLSFiles
	ServerName string
	// Connections and Concurrency shape the load; Duration bounds the run.
	Connections, Concurrency int
	Duration                 time.Duration
	// RPS caps the request rate (0: as fast as the server answers).
	RPS int
	// SkipFirst leaves the first calls out of the statistics (warm-up).
	SkipFirst int
}

// TLSFiles are PEM file paths.
type TLSFiles struct{ CA, Cert, Key string }

// GHZResult is the part of ghz's JSON report the benchmark shows.
type GHZResult struct {
	Count int64
	// RPS is the calls per second ghz measured.
	RPS float64
	// Average, P50, P90 and P99 are latencies of the calls.
	Average, P50, P90, P99 time.Duration
	// Statuses counts calls by status code name ("OK").
	Statuses map[string]int64
	// Errors counts error messages.
	Errors map[string]int64
}

// OK returns how many calls succeeded.
func (r GHZResult) OK() int64 { return r.Statuses["OK"] }

// Failed returns how many calls did not succeed.
func (r GHZResult) Failed() int64 {
	var n int64
	for code, c := range r.Statuses {
		if code != "OK" {
			n += c
		}
	}
	return n
}

// WriteProtoset writes fd and every file it imports, as this binary has
// them compiled in, to path as a FileDescriptorSet for ghz's --protoset.
// ghz's own .proto parser is older than the debug_redact field option the
// contracts use, and refuses the .proto files themselves.
func WriteProtoset(path string, fd protoreflect.FileDescriptor) error {
	var set descriptorpb.FileDescriptorSet
	seen := map[string]bool{}
	var add func(protoreflect.FileDescriptor)
	add = func(f protoreflect.FileDescriptor) {
		if seen[f.Path()] {
			return
		}
		seen[f.Path()] = true
		imports := f.Imports()
		for i := range imports.Len() {
			add(imports.Get(i).FileDescriptor) // dependencies first
		}
		set.File = append(set.File, protodesc.ToFileDescriptorProto(f))
	}
	add(fd)
	raw, err := proto.Marshal(&set)
	if err != nil {
		return err
	}
	return os.WriteFile(path, raw, 0o600)
}

// Args returns ghz's command line arguments for o.
func (o GHZOptions) Args() ([]string, error) {
	md, err := json.Marshal(o.Metadata)
	if err != nil {
		return nil, err
	}
	args := []string{
		"--protoset", o.Protoset, "--call", o.Call,
		"--cacert", o.Files.CA, "--cert", o.Files.Cert, "--key", o.Files.Key, "--cname", o.ServerName,
		"--data", o.Data,
		"--connections", strconv.Itoa(o.Connections), "--concurrency", strconv.Itoa(o.Concurrency),
		"--duration", o.Duration.String(), "--timeout", "10s",
		"--skipFirst", strconv.Itoa(o.SkipFirst),
		// Calls in flight at the end are waited for, not failed.
		"--duration-stop", "wait",
		"--format", "json",
	}
	if len(o.Metadata) > 0 {
		args = append(args, "--metadata", string(md))
	}
	if o.RPS > 0 {
		args = append(args, "--rps", strconv.Itoa(o.RPS))
	}
	return append(args, o.Addr), nil
}

// RunGHZ runs ghz as o says and parses its report. ctx bounds the run.
func RunGHZ(ctx context.Context, o GHZOptions) (GHZResult, error) {
	args, err := o.Args()
	if err != nil {
		return GHZResult{}, err
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, o.Bin, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	dieWithParent(cmd)
	if err := cmd.Run(); err != nil {
		return GHZResult{}, fmt.Errorf("ghz against %s: %w: %s", o.Addr, err, strings.TrimSpace(tail(stderr.String(), 2000)))
	}
	return ParseGHZ(stdout.Bytes())
}

// ghzReport is ghz's JSON report; durations are nanoseconds.
type ghzReport struct {
	Count   int64   `json:"count"`
	RPS     float64 `json:"rps"`
	Average int64   `json:"average"`
	Latency []struct {
		Percentage int   `json:"percentage"`
		Latency    int64 `json:"latency"`
	} `json:"latencyDistribution"`
	Statuses map[string]int64 `json:"statusCodeDistribution"`
	Errors   map[string]int64 `json:"errorDistribution"`
}

// ParseGHZ reads ghz's JSON report (--format json).
func ParseGHZ(data []byte) (GHZResult, error) {
	var r ghzReport
	if err := json.Unmarshal(data, &r); err != nil {
		return GHZResult{}, fmt.Errorf("ghz report: %w", err)
	}
	res := GHZResult{Count: r.Count, RPS: r.RPS, Average: time.Duration(r.Average), Statuses: r.Statuses, Errors: r.Errors}
	for _, l := range r.Latency {
		switch l.Percentage {
		case 50:
			res.P50 = time.Duration(l.Latency)
		case 90:
			res.P90 = time.Duration(l.Latency)
		case 99:
			res.P99 = time.Duration(l.Latency)
		}
	}
	if res.Count == 0 {
		return res, errors.New("ghz report: no calls counted")
	}
	return res, nil
}

// TopErrors formats the most frequent error messages, at most n.
func (r GHZResult) TopErrors(n int) string {
	type kv struct {
		msg string
		n   int64
	}
	var all []kv
	for m, c := range r.Errors {
		all = append(all, kv{m, c})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].n > all[j].n })
	var parts []string
	for i, e := range all {
		if i == n {
			break
		}
		parts = append(parts, fmt.Sprintf("%d× %s", e.n, e.msg))
	}
	return strings.Join(parts, "; ")
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}

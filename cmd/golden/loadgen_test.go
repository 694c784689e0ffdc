package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golden-stack/golden/internal/loadgen"
	"github.com/golden-stack/golden/internal/loadgen/loadgentest"
	"github.com/golden-stack/golden/observability/requestid"
)

func TestLoadgenFlagValidation(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{name: "bad target", args: []string{"--target", "localhost:8080"}, want: "--target (GOLDEN_TARGET)"},
		{name: "zero rate", args: []string{"--rate", "0"}, want: "--rate (GOLDEN_RATE)"},
		{name: "not a rate", args: []string{"--rate", "fast"}, want: "--rate"},
		{name: "negative duration", args: []string{"--duration", "-1s"}, want: "--duration (GOLDEN_DURATION)"},
		{name: "zero concurrency", args: []string{"--concurrency", "0"}, want: "--concurrency (GOLDEN_CONCURRENCY)"},
		{name: "zero timeout", args: []string{"--timeout", "0s"}, want: "--timeout (GOLDEN_TIMEOUT)"},
		{name: "negative report interval", args: []string{"--report-interval", "-1s"}, want: "--report-interval (GOLDEN_REPORT_INTERVAL)"},
		{name: "negative max requests", args: []string{"--max-requests", "-5"}, want: "--max-requests (GOLDEN_MAX_REQUESTS)"},
		{name: "not a seed", args: []string{"--seed", "x"}, want: "--seed"},
		{name: "zero users", args: []string{"--users", "0"}, want: "--users (GOLDEN_USERS)"},
		{name: "unknown op", args: []string{"--mix", "jump=3"}, want: `unknown operation "jump"`},
		{name: "no weights", args: []string{"--mix", "signup=0,login=0,refresh=0,get=0,list=0,delete=0,fault=0"}, want: "--mix (GOLDEN_MIX)"},
		{name: "argument", args: []string{"extra"}, want: "unknown command"},
		{name: "unknown flag", args: []string{"--bogus"}, want: "unknown flag"},
		{name: "env rate", env: map[string]string{"GOLDEN_RATE": "lots"}, want: "GOLDEN_RATE (--rate)"},
		{name: "env duration", env: map[string]string{"GOLDEN_DURATION": "-3s"}, want: "--duration (GOLDEN_DURATION)"},
		{name: "env mix", env: map[string]string{"GOLDEN_MIX": "get"}, want: "GOLDEN_MIX (--mix)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			out, _, err := execute(t, newLoadgenCmd(), tc.args...)
			if exitCode(err) != exitUsage || !strings.Contains(errText(err), tc.want) {
				t.Errorf("want exit %d and an error containing %q, got exit %d: %v", exitUsage, tc.want, exitCode(err), err)
			}
			if out != "" {
				t.Errorf("nothing may be sent or printed on bad settings, got %q", out)
			}
		})
	}
}

func TestLoadgenJSON(t *testing.T) {
	gw := loadgentest.New(t)
	t.Setenv("GOLDEN_MAX_REQUESTS", "120") // the environment works like the flag
	out, stderr, err := execute(t, newLoadgenCmd(), "--target", gw.URL, "--rate", "100000", "--seed", "3", "--json")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	var s loadgen.Summary
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("stdout is not one JSON document: %v\n%s", err, out)
	}
	if s.Requests != 120 || s.Seed != 3 || s.UnexpectedFailures != 0 || s.Target != gw.URL {
		t.Errorf("summary %+v", s)
	}
	for _, f := range s.FailedRequests {
		if !requestid.Valid(f.ID) || f.Route == "" || f.Status == 0 {
			t.Errorf("failed request %+v", f)
		}
	}
	for _, secret := range gw.Secrets() {
		if strings.Contains(out+stderr, secret) {
			t.Fatal("a password or token was printed")
		}
	}
}

func TestLoadgenText(t *testing.T) {
	gw := loadgentest.New(t)
	out, _, err := execute(t, newLoadgenCmd(), "--target", gw.URL, "--rate", "100000", "--max-requests", "50")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"loadgen run ", "requests", "50 in ", "succeeded", "unexpected failures", "latency", "p99"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
}

func TestLoadgenUnreachableTargetFails(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	out, _, err := execute(t, newLoadgenCmd(), "--target", "http://"+addr, "--max-requests", "3", "--rate", "1000", "--json")
	if exitCode(err) != 1 || !strings.Contains(errText(err), "no request got an answer") {
		t.Errorf("want exit 1 naming the failure, got exit %d: %v", exitCode(err), err)
	}
	// The summary still comes out.
	var s loadgen.Summary
	if jerr := json.Unmarshal([]byte(out), &s); jerr != nil || s.TransportErrors != 3 {
		t.Errorf("summary %+v (%v)", s, jerr)
	}
}

// TestLoadgenStopsOnCancel stands in for SIGTERM, which main turns into a
// cancelled context: the run stops, the summary is printed, the exit is 0.
func TestLoadgenStopsOnCancel(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var seen atomic.Int64
	gw := loadgentest.New(t, loadgentest.WithHandlerHook(func(*http.Request) {
		if seen.Add(1) == 30 {
			cancel()
		}
	}))
	cmd := newLoadgenCmd()
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs([]string{"--target", gw.URL, "--rate", "200", "--duration", "0", "--json"})
	if err := cmd.ExecuteContext(ctx); err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	var s loadgen.Summary
	if err := json.Unmarshal(out.Bytes(), &s); err != nil {
		t.Fatalf("no summary after cancel: %v\n%s", err, out.String())
	}
	if s.Requests < 30 || s.Requests != int64(len(gw.Requests())) {
		t.Errorf("summary counts %d requests, gateway answered %d", s.Requests, len(gw.Requests()))
	}
}

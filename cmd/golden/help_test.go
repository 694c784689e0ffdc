package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestServeHelpGroupsFlagsWithVariables: `serve SERVICE --help` and `all
// --help` list the flags by the part they configure, each with the
// variable that sets it.
func TestServeHelpGroupsFlagsWithVariables(t *testing.T) {
	for _, tc := range []struct {
		args []string
		// flag -> the group it must be listed under
		want map[string]string
	}{
		{[]string{"serve", "user", "--help"}, map[string]string{
			"--grpc-addr": "Service", "--bcrypt-cost": "Service", "--log-level": "Logging", "--gelf-addr": "Logging",
			"--otlp-endpoint": "Tracing", "--consul-addr": "Discovery", "--faults": "Fault injection", "--db-url": "Database",
		}},
		{[]string{"serve", "gateway", "--help"}, map[string]string{"--http-addr": "Service", "--trace-sample-ratio": "Tracing"}},
		{[]string{"all", "--help"}, map[string]string{"--dir": "Service", "--log-level": "Logging", "--consul-addr": "Discovery"}},
	} {
		cmd := newRootCmd()
		var out bytes.Buffer
		cmd.SetOut(&out)
		cmd.SetErr(&out)
		cmd.SetArgs(tc.args)
		if err := cmd.Execute(); err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		// The group each flag's line falls under.
		group := map[string]string{}
		var current string
		for _, line := range strings.Split(out.String(), "\n") {
			if title, ok := strings.CutSuffix(line, " flags:"); ok {
				current = title
				continue
			}
			if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(f[0], "--") {
				group[f[0]] = current
			}
		}
		for flag, g := range tc.want {
			if !strings.HasPrefix(group[flag], g) {
				t.Errorf("%v: %s listed under %q, want %q", tc.args, flag, group[flag], g)
			}
			env := "[GOLDEN_" + strings.ToUpper(strings.ReplaceAll(strings.TrimPrefix(flag, "--"), "-", "_")) + "]"
			if !strings.Contains(out.String(), env) {
				t.Errorf("%v: %s's variable %s not shown", tc.args, flag, env)
			}
		}
	}
}

package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestEnumFlagsCompleteValues: shell completion offers the values of the
// flags that take one of a few, not file names.
func TestEnumFlagsCompleteValues(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"serve", "user", "--log-level", ""}, []string{"trace", "debug", "info", "warn", "error"}},
		{[]string{"serve", "auth", "--store", ""}, []string{"memory", "postgres"}},
		{[]string{"all", "--gelf-protocol", ""}, []string{"udp", "tcp"}},
		{[]string{"fault", "set", "--service", ""}, []string{"auth", "user", "gateway"}},
		{[]string{"fault", "set", "--code", ""}, []string{"Unavailable", "Internal", "DeadlineExceeded", "ResourceExhausted"}},
		{[]string{"loadgen", "--mix", ""}, []string{"signup=", "get=", "fault="}},
	} {
		cmd := newRootCmd()
		var out bytes.Buffer
		cmd.SetOut(&out)
		cmd.SetErr(&bytes.Buffer{})
		cmd.SetArgs(append([]string{"__complete"}, tc.args...))
		if err := cmd.Execute(); err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		got := strings.Split(strings.TrimSpace(out.String()), "\n")
		for _, w := range tc.want {
			if !strings.Contains("\n"+out.String(), "\n"+w+"\n") {
				t.Errorf("%v completes %v, want %q among them", tc.args, got, w)
			}
		}
		// The last line is the directive; 4 is ShellCompDirectiveNoFileComp.
		if d := got[len(got)-1]; d != ":4" && d != ":6" {
			t.Errorf("%v: directive %s, want no file completion", tc.args, d)
		}
	}
}

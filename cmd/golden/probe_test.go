package main

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestProbeSucceedsOn2xx(t *testing.T) {
	for _, code := range []int{http.StatusOK, http.StatusNoContent} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodGet || r.URL.Path != "/readyz" {
				http.Error(w, "unexpected "+r.Method+" "+r.URL.Path, http.StatusTeapot)
				return
			}
			w.WriteHeader(code)
		}))
		out, _, err := execute(t, newProbeCmd(), srv.URL+"/readyz")
		srv.Close()
		if err != nil {
			t.Fatalf("status %d: probe failed: %v", code, err)
		}
		if want := fmt.Sprintf("%s/readyz: %d %s", srv.URL, code, http.StatusText(code)); !strings.Contains(out, want) {
			t.Errorf("status %d: output %q, want it to contain %q", code, out, want)
		}
	}
}

func TestProbeFailsOnOtherStatuses(t *testing.T) {
	for _, code := range []int{http.StatusServiceUnavailable, http.StatusNotFound, http.StatusInternalServerError} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(code)
			_, _ = w.Write([]byte("not ready:\n\x1b[31mconsul\x1b[0m unreachable\n"))
		}))
		_, _, err := execute(t, newProbeCmd(), srv.URL+"/readyz")
		srv.Close()
		if exitCode(err) != 1 {
			t.Fatalf("status %d: exit code %d (%v), want 1", code, exitCode(err), err)
		}
		msg := err.Error()
		for _, want := range []string{srv.URL + "/readyz", http.StatusText(code), "not ready: [31mconsul[0m unreachable"} {
			if !strings.Contains(msg, want) {
				t.Errorf("status %d: error %q does not contain %q", code, msg, want)
			}
		}
		if strings.ContainsAny(msg, "\n\x1b") {
			t.Errorf("status %d: error %q has control characters from the body", code, msg)
		}
	}
}

func TestProbeFailsWhenNothingListens(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()

	_, _, err = execute(t, newProbeCmd(), "http://"+addr+"/readyz")
	if exitCode(err) != 1 {
		t.Fatalf("exit code %d (%v), want 1", exitCode(err), err)
	}
	if !strings.Contains(err.Error(), "http://"+addr+"/readyz") || !strings.Contains(err.Error(), "refused") {
		t.Errorf("error %q should name the URL and say the connection was refused", err)
	}
}

func TestProbeGivesUpOnASilentServer(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)

	_, _, err := execute(t, newProbeCmd(), srv.URL)
	if exitCode(err) != 1 {
		t.Fatalf("exit code %d (%v), want 1", exitCode(err), err)
	}
	if want := "no answer within " + probeTimeout.String(); !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not contain %q", err, want)
	}
}

func TestProbeRejectsBadUsage(t *testing.T) {
	for _, args := range [][]string{
		nil,
		{"http://a", "http://b"},
		{"127.0.0.1:9100/readyz"},
		{"ftp://127.0.0.1/readyz"},
		{"http:///readyz"},
		{"http://[::1/readyz"},
	} {
		_, _, err := execute(t, newProbeCmd(), args...)
		if exitCode(err) != exitUsage {
			t.Errorf("args %q: exit code %d (%v), want %d", args, exitCode(err), err, exitUsage)
		}
	}
}

func TestProbeNeverShowsURLCredentials(t *testing.T) {
	const password = "pr0be-s3cret"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer srv.Close()
	withCreds := strings.Replace(srv.URL, "http://", "http://admin:"+password+"@", 1)

	for _, arg := range []string{withCreds + "/readyz", "gopher://admin:" + password + "@host/", "http://admin:" + password + "@[::1/"} {
		out, stderr, err := execute(t, newProbeCmd(), arg)
		if err == nil {
			t.Fatalf("%s: probe succeeded on 401", arg)
		}
		for _, s := range []string{out, stderr, err.Error()} {
			if strings.Contains(s, password) {
				t.Errorf("the password leaks: %s", s)
			}
		}
	}
}

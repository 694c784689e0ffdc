// Command benchserver serves the benchmark servers of package bench
// (bench.Names) on loopback until SIGINT or SIGTERM, for ghz and the other
// tools of scripts/bench.sh. Once they listen it writes their
// addresses, the certificate folder and the sinks to --env as JSON
// (bench.Env). Spans go to Jaeger when it is installed
// (scripts/install-backends.sh jaeger), else to a discarding OTLP receiver;
// GELF goes to a discarding UDP listener in a process of its own (this
// program started again); the servers' JSON logs go to this
// process's stdout.
//
//	benchserver --env /tmp/bench/env.json [--otlp auto|jaeger|discard]
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/golden-stack/golden/bench"
)

func main() {
	bench.ServeGELFSinkIfChild()
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "benchserver:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		envFile      = pflag.String("env", "", "file to write the servers' addresses to (JSON); required")
		dir          = pflag.String("dir", "", "folder for certificates and the token (default: a new temporary folder)")
		otlpKind     = pflag.String("otlp", "auto", "span sink: jaeger, discard, or auto (jaeger when installed)")
		jaegerConfig = pflag.String("jaeger-config", "jaeger/config.yaml", "Jaeger configuration to render onto loopback ports")
	)
	pflag.Parse()
	switch {
	case *envFile == "":
		return errors.New("--env: must be set")
	case *otlpKind != "auto" && *otlpKind != "jaeger" && *otlpKind != "discard":
		return fmt.Errorf("--otlp: %q is not auto, jaeger or discard", *otlpKind)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if *dir == "" {
		d, err := os.MkdirTemp("", "golden-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		*dir = d
	}
	certs, err := bench.EnsureCerts(filepath.Join(*dir, "certs"))
	if err != nil {
		return err
	}
	// The token outlives any run of the script; it is signed by this
	// run's throwaway key.
	token, err := certs.Token(time.Hour)
	if err != nil {
		return err
	}
	env := bench.Env{Certs: certs.Dir, TokenFile: filepath.Join(*dir, "token"), Servers: map[string]string{}}
	if err := os.WriteFile(env.TokenFile, []byte(token), 0o600); err != nil {
		return err
	}

	var otlpSink *bench.OTLPSink
	jaegerBin, haveJaeger := bench.JaegerBinary()
	if *otlpKind == "jaeger" && !haveJaeger {
		return fmt.Errorf("--otlp jaeger: %s is not installed: run scripts/install-backends.sh jaeger", jaegerBin)
	}
	if *otlpKind == "jaeger" || (*otlpKind == "auto" && haveJaeger) {
		j, err := bench.StartJaeger(jaegerBin, *jaegerConfig, os.Stderr, 60*time.Second)
		if err != nil {
			return err
		}
		defer j.Stop()
		env.OTLPAddr, env.OTLPKind, env.JaegerMetricsURL = j.OTLPGRPCAddr, "jaeger", j.MetricsURL
	} else {
		if otlpSink, err = bench.StartOTLPSink(); err != nil {
			return err
		}
		defer otlpSink.Close()
		env.OTLPAddr, env.OTLPKind = otlpSink.Addr(), "discard"
	}
	gelf, err := bench.StartGELFSink()
	if err != nil {
		return err
	}
	defer gelf.Close()
	env.GELFAddr = gelf.Addr()

	sinks := bench.Sinks{OTLPAddr: env.OTLPAddr, GELFAddr: env.GELFAddr, Stdout: os.Stdout}
	var servers []*bench.Server
	defer func() {
		// Servers first: closing flushes their spans and logs into the
		// sinks, which close after them.
		for _, s := range servers {
			if err := s.Close(); err != nil {
				fmt.Fprintf(os.Stderr, "benchserver: stopping %s: %v\n", s.Name, err)
			}
		}
	}()
	for _, name := range bench.Names {
		s, err := bench.Start(name, certs, sinks)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		servers = append(servers, s)
		env.Servers[name] = s.Addr()
		env.Order = append(env.Order, name)
	}

	statsLis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	statsSrv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		g, err := gelf.Stats()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		cpu, err := bench.ReadCPU(gelf.Pid())
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		st := bench.SinkStats{GELFDatagrams: g.Datagrams, GELFCPUNanos: cpu.Nanoseconds()}
		if otlpSink != nil {
			st.OTLPSpans = otlpSink.Spans()
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(st)
	})}
	go func() { _ = statsSrv.Serve(statsLis) }()
	defer statsSrv.Close()
	env.StatsURL = "http://" + statsLis.Addr().String() + "/stats"

	if err := bench.WriteEnv(*envFile, env); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "benchserver: serving %v, spans to %s (%s), GELF to %s\n", env.Servers, env.OTLPAddr, env.OTLPKind, env.GELFAddr)
	<-ctx.Done()
	fmt.Fprintln(os.Stderr, "benchserver: stopping")
	return nil
}

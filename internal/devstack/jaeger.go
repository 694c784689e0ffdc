package devstack

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// Ports jaeger/config.yaml listens on.
const (
	JaegerOTLPGRPCPort = 4317
	JaegerOTLPHTTPPort = 4318
	JaegerQueryPort    = 16686
	// JaegerQueryGRPCPort serves the query API over gRPC (api_v2, api_v3).
	JaegerQueryGRPCPort = 16685
	JaegerMetricsPort   = 8888
)

var (
	commentLine = regexp.MustCompile(`(?m)^\s*#.*\n`)
	listenAddr  = regexp.MustCompile(`\b0\.0\.0\.0:(\d+)\b`)
	hostLine    = regexp.MustCompile(`(?m)^(\s*host:\s*)"?0\.0\.0\.0"?\s*$`)
	portLine    = regexp.MustCompile(`(?m)^(\s*port:\s*)(\d+)\s*$`)
	badgerPaths = regexp.MustCompile(`/badger/([A-Za-z0-9._-]+)`)
)

// RenderJaegerConfig rewrites a Jaeger configuration to run on this
// machine: it drops comment lines, then every 0.0.0.0:PORT listen address
// becomes 127.0.0.1 with the port free(PORT) returns, a "host: 0.0.0.0" line
// becomes 127.0.0.1 and every "port: N" line gets free(N) (the Prometheus
// metrics reader), and every /badger/NAME path becomes dir/NAME. ports
// receives each original port's replacement; the same original port always
// gets the same replacement. It fails when anything still listens beyond
// loopback or writes under /badger.
func RenderJaegerConfig(src []byte, dir string, free func(port int) int, ports map[int]int) ([]byte, error) {
	var convErr error
	mapPort := func(s string) string {
		p, err := strconv.Atoi(s)
		if err != nil || p <= 0 || p > 65535 {
			convErr = fmt.Errorf("invalid port %q", s)
			return s
		}
		if _, ok := ports[p]; !ok {
			ports[p] = free(p)
		}
		return strconv.Itoa(ports[p])
	}
	out := commentLine.ReplaceAllString(string(src), "")
	out = listenAddr.ReplaceAllStringFunc(out, func(m string) string {
		return "127.0.0.1:" + mapPort(listenAddr.FindStringSubmatch(m)[1])
	})
	out = hostLine.ReplaceAllString(out, `${1}127.0.0.1`)
	out = portLine.ReplaceAllStringFunc(out, func(m string) string {
		sub := portLine.FindStringSubmatch(m)
		return sub[1] + mapPort(sub[2])
	})
	const placeholder = "\x00dir\x00"
	out = badgerPaths.ReplaceAllString(out, placeholder+"/${1}")
	if convErr != nil {
		return nil, convErr
	}
	for _, bad := range []string{"0.0.0.0", "[::]", "/badger"} {
		if strings.Contains(out, bad) {
			return nil, fmt.Errorf("rendered config still contains %q", bad)
		}
	}
	out = strings.ReplaceAll(out, placeholder+"/", filepath.ToSlash(dir)+"/")
	return []byte(out), nil
}

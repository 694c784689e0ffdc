package bench

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// Env is what cmd/benchserver writes once its servers listen, for the
// tools that measure them.
type Env struct {
	// Certs is the certificate folder (CA, service certificates, token keys).
	Certs string `json:"certs"`
	// TokenFile holds an access token the golden server accepts.
	TokenFile string `json:"token_file"`
	// Servers maps each server name to its host:port; Order lists them.
	Servers map[string]string `json:"servers"`
	Order   []string          `json:"order"`
	// OTLPAddr receives spans; OTLPKind is "jaeger" or "discard".
	OTLPAddr string `json:"otlp_addr"`
	OTLPKind string `json:"otlp_kind"`
	// JaegerMetricsURL is Jaeger's own metrics, when OTLPKind is jaeger.
	JaegerMetricsURL string `json:"jaeger_metrics_url,omitempty"`
	// GELFAddr receives GELF over UDP.
	GELFAddr string `json:"gelf_addr"`
	// StatsURL answers GET with SinkStats as JSON.
	StatsURL string `json:"stats_url"`
}

// SinkStats counts what reached the sinks of cmd/benchserver.
type SinkStats struct {
	GELFDatagrams int64 `json:"gelf_datagrams"`
	// GELFCPUNanos is the CPU time the GELF sink's process has used.
	GELFCPUNanos int64 `json:"gelf_cpu_ns"`
	// OTLPSpans counts the spans of the discarding receiver (0 with Jaeger).
	OTLPSpans int64 `json:"otlp_spans"`
}

// WriteEnv writes e to path atomically, readable by the owner only (it
// names a token file).
func WriteEnv(path string, e Env) error {
	data, err := json.MarshalIndent(e, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".env-*.json")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// ReadEnv reads what WriteEnv wrote.
func ReadEnv(path string) (Env, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Env{}, err
	}
	var e Env
	if err := json.Unmarshal(data, &e); err != nil {
		return Env{}, fmt.Errorf("%s: %w", path, err)
	}
	if len(e.Order) == 0 || e.Certs == "" {
		return Env{}, fmt.Errorf("%s: no servers or certificates listed", path)
	}
	return e, nil
}

// Token reads the access token of e.
func (e Env) Token() (string, error) {
	data, err := os.ReadFile(e.TokenFile)
	if err != nil {
		return "", fmt.Errorf("token: %w", err)
	}
	return string(data), nil
}

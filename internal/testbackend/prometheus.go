package testbackend

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// Prometheus is a real Prometheus server started by StartPrometheus.
type Prometheus struct {
	// URL is the server's base URL, e.g. http://127.0.0.1:9090.
	URL string
	*Process
}

// StartPrometheus runs Prometheus with the configuration file config (its
// rule files are resolved relative to it) on a free loopback port, with the
// features the project's dashboards rely on, until the test ends.
func StartPrometheus(t testing.TB, config string) *Prometheus {
	t.Helper()
	bin := Binary(t, "prometheus")
	port := FreePort(t)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	p := &Prometheus{URL: "http://" + addr}
	p.Process = Start(t, bin,
		"--config.file="+config,
		"--storage.tsdb.path="+filepath.Join(t.TempDir(), "tsdb"),
		"--web.listen-address="+addr,
		"--web.enable-lifecycle",
		"--enable-feature=exemplar-storage,native-histograms",
		"--log.level=warn",
	)
	p.WaitFor(t, time.Minute, HTTPReady(p.URL+"/-/ready"))
	return p
}

// Sample is one series of an instant query result.
type Sample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

// Query runs an instant PromQL query and returns its vector result; a
// scalar or string result is returned as one sample.
func (p *Prometheus) Query(expr string) ([]Sample, error) {
	var body struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := p.get("/api/v1/query?query="+url.QueryEscape(expr), &body); err != nil {
		return nil, err
	}
	if body.Status != "success" {
		return nil, fmt.Errorf("query %q: %s", expr, body.Error)
	}
	switch body.Data.ResultType {
	case "vector":
		var out []Sample
		if err := json.Unmarshal(body.Data.Result, &out); err != nil {
			return nil, err
		}
		return out, nil
	case "scalar", "string":
		var v [2]any
		if err := json.Unmarshal(body.Data.Result, &v); err != nil {
			return nil, err
		}
		return []Sample{{Value: v}}, nil
	default:
		return nil, fmt.Errorf("query %q: unexpected result type %q", expr, body.Data.ResultType)
	}
}

// Target is one entry of /api/v1/targets.
type Target struct {
	Labels     map[string]string `json:"labels"`
	ScrapePool string            `json:"scrapePool"`
	ScrapeURL  string            `json:"scrapeUrl"`
	Health     string            `json:"health"`
	LastError  string            `json:"lastError"`
}

// ActiveTargets returns the active scrape targets.
func (p *Prometheus) ActiveTargets() ([]Target, error) {
	var body struct {
		Data struct {
			ActiveTargets []Target `json:"activeTargets"`
		} `json:"data"`
	}
	err := p.get("/api/v1/targets?state=active", &body)
	return body.Data.ActiveTargets, err
}

func (p *Prometheus) get(path string, into any) error {
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(p.URL + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(into); err != nil {
		return fmt.Errorf("GET %s: %s: %w", path, resp.Status, err)
	}
	return nil
}

// WriteFile writes data to name inside dir, failing the test on error.
func WriteFile(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

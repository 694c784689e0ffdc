package devstack

import (
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestRenderPrometheusConfig: the project's prometheus.yml keeps every job
// and rule file, with every target moved to loopback.
func TestRenderPrometheusConfig(t *testing.T) {
	hosts := map[string]string{
		"localhost:9090": "127.0.0.1:1", "alertmanager:9093": "127.0.0.1:2",
		"consul:8500": "127.0.0.1:3", "jaeger:8888": "127.0.0.1:4",
	}
	out, err := renderPrometheusConfig("../..", hosts)
	if err != nil {
		t.Fatal(err)
	}
	text := string(out)
	for _, want := range []string{"127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3", "127.0.0.1:4", "rules/*.yml", "job_name: golden", "job_name: jaeger"} {
		if !strings.Contains(text, want) {
			t.Errorf("rendered prometheus.yml lacks %q:\n%s", want, text)
		}
	}
	for host := range hosts {
		if strings.Contains(text, host) {
			t.Errorf("rendered prometheus.yml still reaches %s", host)
		}
	}
	// compose's Consul token and sign-ins: golden dev needs neither.
	if strings.Contains(text, "authorization") || strings.Contains(text, "credentials_file") || strings.Contains(text, "password_file") || strings.Contains(text, "basic_auth") {
		t.Errorf("rendered prometheus.yml still presents a Consul token or a sign-in:\n%s", text)
	}

	// A target golden dev does not run is an error, not a silent drop.
	delete(hosts, "jaeger:8888")
	if _, err := renderPrometheusConfig("../..", hosts); err == nil || !strings.Contains(err.Error(), "jaeger:8888") {
		t.Errorf("unknown target: err = %v, want one naming jaeger:8888", err)
	}
}

// TestRenderAlertmanagerConfig: email goes to the local SMTP server and no
// receiver reads a webhook URL from a secret file the machine lacks.
func TestRenderAlertmanagerConfig(t *testing.T) {
	out, err := renderAlertmanagerConfig("../..", "127.0.0.1:2525")
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Global    map[string]any `yaml:"global"`
		Templates []string       `yaml:"templates"`
		Receivers []struct {
			Name     string           `yaml:"name"`
			Webhooks []map[string]any `yaml:"webhook_configs"`
			Emails   []map[string]any `yaml:"email_configs"`
		} `yaml:"receivers"`
	}
	if err := yaml.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Global["smtp_smarthost"] != "127.0.0.1:2525" {
		t.Errorf("smtp_smarthost = %v", cfg.Global["smtp_smarthost"])
	}
	if len(cfg.Templates) != 1 || !filepath.IsAbs(cfg.Templates[0]) {
		t.Errorf("templates = %v, want one absolute glob", cfg.Templates)
	}
	if len(cfg.Receivers) == 0 {
		t.Fatal("no receivers")
	}
	for _, r := range cfg.Receivers {
		// canary-guard notifies golden canary guard, not people.
		if len(r.Emails) == 0 && r.Name != "canary-guard" {
			t.Errorf("receiver %s sends no email", r.Name)
		}
		for _, h := range r.Webhooks {
			if _, ok := h["url_file"]; ok {
				t.Errorf("receiver %s still reads a webhook URL from a file", r.Name)
			}
		}
	}
}

// TestValidateNamesEveryBadOption: ports, the root folder and the backend
// cache are checked together, each by its flag.
func TestValidateNamesEveryBadOption(t *testing.T) {
	ports := DefaultPorts()
	ports.Consul, ports.Mailpit = 0, ports.Prometheus
	err := Options{Root: t.TempDir(), BackendsDir: t.TempDir(), StateDir: "x", Ports: ports}.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"--consul-port", "--mailpit-port", "also --prometheus-port", "--root", "--backends-dir", "install-backends.sh jaeger"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if err := (Options{Root: "../..", BackendsDir: Dir(), StateDir: "x", Ports: DefaultPorts()}).Validate(); err != nil {
		for _, name := range backends {
			if _, berr := Binary("", name); berr != nil {
				t.Skip("backends not installed")
			}
		}
		t.Errorf("the defaults from the repository's top folder: %v", err)
	}
}

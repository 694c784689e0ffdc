package devstack

import (
	"fmt"
	"os"
	"path/filepath"

	"gopkg.in/yaml.v3"
)

// renderPrometheusConfig is prometheus/prometheus.yml for this machine:
// rule files by absolute path, Consul discovery and every static target
// moved to the loopback address hosts maps it to, without the Consul token
// or the sign-ins (golden dev's agent has no ACLs, its Prometheus and
// Alertmanager no web config), and 5 s scrape and
// evaluation intervals so that a change shows within seconds. A target
// hosts does not know is an error, so that a new job in prometheus.yml
// cannot be dropped without notice; the one job dropped on purpose is the
// canary guard's, which golden dev does not run.
func renderPrometheusConfig(root string, hosts map[string]string) ([]byte, error) {
	const file = "prometheus/prometheus.yml"
	var cfg map[string]any
	root, err := readYAML(root, file, &cfg)
	if err != nil {
		return nil, err
	}
	cfg["global"] = map[string]any{"scrape_interval": "5s", "scrape_timeout": "5s", "evaluation_interval": "5s"}
	cfg["rule_files"] = []string{filepath.Join(root, "prometheus", "rules", "*.yml")}
	move := func(targets []any) error {
		for i, t := range targets {
			to, ok := hosts[fmt.Sprint(t)]
			if !ok {
				return fmt.Errorf("%s: golden dev runs nothing at %v", file, t)
			}
			targets[i] = to
		}
		return nil
	}
	alerting, _ := cfg["alerting"].(map[string]any)
	ams, _ := alerting["alertmanagers"].([]any)
	// golden dev's Prometheus and Alertmanager ask for no sign-in.
	for _, am := range asMaps(ams) {
		delete(am, "basic_auth")
	}
	jobs, _ := cfg["scrape_configs"].([]any)
	var kept []any
	for _, j := range jobs {
		job, _ := j.(map[string]any)
		if job["job_name"] == canaryGuardJob {
			continue
		}
		kept = append(kept, job)
		for _, sd := range asMaps(job["consul_sd_configs"]) {
			sd["server"] = hosts["consul:8500"]
			sd["refresh_interval"] = "5s"
			// The dev agent has no ACLs; the token file is compose's.
			delete(sd, "authorization")
		}
		if job["job_name"] == "consul" {
			delete(job, "authorization")
		}
		delete(job, "basic_auth")
		ams = append(ams, job)
	}
	cfg["scrape_configs"] = kept
	for _, holder := range ams {
		h, _ := holder.(map[string]any)
		for _, sc := range asMaps(h["static_configs"]) {
			targets, _ := sc["targets"].([]any)
			if err := move(targets); err != nil {
				return nil, err
			}
		}
	}
	return yaml.Marshal(cfg)
}

// canaryGuardJob is prometheus.yml's job of golden canary guard, which
// golden dev does not run: canaries are rolled back by hand there.
const canaryGuardJob = "canary-guard"

// renderAlertmanagerConfig is alertmanager/alertmanager.yml for this
// machine: templates by absolute path, email to the SMTP server at smtpAddr
// (Mailpit, whose web page shows what was sent), and no webhook that needs
// a secret file: the on-call endpoint is not part of the project, and the
// canary guard's secret is compose's.
func renderAlertmanagerConfig(root, smtpAddr string) ([]byte, error) {
	var cfg map[string]any
	root, err := readYAML(root, "alertmanager/alertmanager.yml", &cfg)
	if err != nil {
		return nil, err
	}
	global, _ := cfg["global"].(map[string]any)
	if global == nil {
		global = map[string]any{}
		cfg["global"] = global
	}
	global["smtp_smarthost"] = smtpAddr
	cfg["templates"] = []string{filepath.Join(root, "alertmanager", "templates", "*.tmpl")}
	receivers, _ := cfg["receivers"].([]any)
	for _, r := range asMaps(receivers) {
		var hooks []any
		for _, h := range asMaps(r["webhook_configs"]) {
			_, fromFile := h["url_file"]
			_, signsIn := h["http_config"]
			if !fromFile && !signsIn {
				hooks = append(hooks, h)
			}
		}
		if len(hooks) == 0 {
			delete(r, "webhook_configs")
		} else {
			r["webhook_configs"] = hooks
		}
	}
	return yaml.Marshal(cfg)
}

// readYAML decodes root/file into into, and returns root made absolute
// (the rendered files name rule and template files by absolute path).
func readYAML(root, file string, into any) (string, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return "", err
	}
	raw, err := os.ReadFile(filepath.Join(abs, file))
	if err != nil {
		return "", err
	}
	if err := yaml.Unmarshal(raw, into); err != nil {
		return "", fmt.Errorf("%s: %w", file, err)
	}
	return abs, nil
}

// asMaps returns the maps in a YAML list (nil for anything else).
func asMaps(list any) []map[string]any {
	items, _ := list.([]any)
	out := make([]map[string]any, 0, len(items))
	for _, it := range items {
		if m, ok := it.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

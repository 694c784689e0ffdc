package integration

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"gopkg.in/yaml.v3"

	"github.com/golden-stack/golden/internal/testbackend"
)

// grafanaDir holds Grafana's provisioning files and the dashboards (see
// grafana/README.md).
const grafanaDir = "../grafana"

// wantDatasources are the data sources the dashboards and the links between
// signals are written against: uid -> type.
var wantDatasources = map[string]string{
	"prometheus":   "prometheus",
	"jaeger":       "jaeger",
	"graylog":      "elasticsearch",
	"alertmanager": "alertmanager",
}

// unscopedPanels may leave out the service and instance variables: they show
// Consul itself, whose metrics carry no golden instance (and mostly no
// service) label. Keyed "<dashboard uid>/<panel title>".
var unscopedPanels = map[string]string{
	"golden-discovery/Discovery lookups per service (Consul)": "Consul's query counters have a service label but no golden instance",
	"golden-discovery/Registrations (Consul)":                 "Consul's catalog registrations are counted for the whole catalog",
	"golden-discovery/Catalog size (Consul)":                  "Consul's catalog size is one number for the whole catalog",
	"golden-discovery/Consul servers healthy":                 "autopilot health is about Consul's servers, not a service",
}

// grafanaDashboard is the part of a dashboard's JSON model the tests read.
type grafanaDashboard struct {
	file          string
	UID           string         `json:"uid"`
	Title         string         `json:"title"`
	Editable      bool           `json:"editable"`
	SchemaVersion int            `json:"schemaVersion"`
	Panels        []grafanaPanel `json:"panels"`
	Templating    struct {
		List []grafanaVariable `json:"list"`
	} `json:"templating"`
}

// grafanaRef names a data source by type and uid.
type grafanaRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type grafanaPanel struct {
	Type        string      `json:"type"`
	Title       string      `json:"title"`
	Description string      `json:"description"`
	Datasource  *grafanaRef `json:"datasource"`
	FieldConfig struct {
		Defaults struct {
			Unit string `json:"unit"`
		} `json:"defaults"`
	} `json:"fieldConfig"`
	Targets []grafanaTarget `json:"targets"`
	// Panels are the panels of a collapsed row.
	Panels []grafanaPanel `json:"panels"`
}

type grafanaTarget struct {
	RefID      string      `json:"refId"`
	Datasource *grafanaRef `json:"datasource"`
	Expr       string      `json:"expr"`
	Exemplar   bool        `json:"exemplar"`
}

type grafanaVariable struct {
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Datasource *grafanaRef     `json:"datasource"`
	Query      json.RawMessage `json:"query"`
	Multi      bool            `json:"multi"`
	IncludeAll bool            `json:"includeAll"`
	Current    struct {
		Value json.RawMessage `json:"value"`
	} `json:"current"`
}

// query returns the variable's query: a string, or the "query" field of an
// object.
func (v grafanaVariable) query() string {
	var s string
	if json.Unmarshal(v.Query, &s) == nil {
		return s
	}
	var obj struct {
		Query string `json:"query"`
	}
	_ = json.Unmarshal(v.Query, &obj)
	return obj.Query
}

func (d *grafanaDashboard) variable(name string) (grafanaVariable, bool) {
	for _, v := range d.Templating.List {
		if v.Name == name {
			return v, true
		}
	}
	return grafanaVariable{}, false
}

// walkPanels calls fn on every panel, the panels of collapsed rows included.
func walkPanels(panels []grafanaPanel, fn func(p grafanaPanel)) {
	for _, p := range panels {
		fn(p)
		walkPanels(p.Panels, fn)
	}
}

func loadDashboards(t *testing.T) []*grafanaDashboard {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(grafanaDir, "dashboards", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no dashboards in %s/dashboards: %v", grafanaDir, err)
	}
	var out []*grafanaDashboard
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		d := &grafanaDashboard{file: filepath.Base(f)}
		if err := json.Unmarshal(raw, d); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out = append(out, d)
	}
	return out
}

// provisionedDatasource is one entry of provisioning/datasources/*.yml.
type provisionedDatasource struct {
	Name     string         `yaml:"name"`
	UID      string         `yaml:"uid"`
	Type     string         `yaml:"type"`
	URL      string         `yaml:"url"`
	JSONData map[string]any `yaml:"jsonData"`
}

func loadDatasources(t *testing.T) map[string]provisionedDatasource {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(grafanaDir, "provisioning", "datasources", "*.yml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no data source provisioning files: %v", err)
	}
	out := map[string]provisionedDatasource{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Datasources []provisionedDatasource `yaml:"datasources"`
		}
		if err := yaml.Unmarshal(raw, &doc); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, ds := range doc.Datasources {
			if _, dup := out[ds.UID]; dup {
				t.Errorf("%s: data source uid %q provisioned twice", f, ds.UID)
			}
			out[ds.UID] = ds
		}
	}
	return out
}

// resolve returns the data source a panel or target reference points at:
// the dashboard's datasource variable stands for its default.
func (d *grafanaDashboard) resolve(ref *grafanaRef) (grafanaRef, error) {
	if ref == nil {
		return grafanaRef{}, fmt.Errorf("no datasource")
	}
	if ref.UID != "${datasource}" && ref.UID != "$datasource" {
		return *ref, nil
	}
	v, ok := d.variable("datasource")
	if !ok {
		return grafanaRef{}, fmt.Errorf("uses ${datasource} but the dashboard has no datasource variable")
	}
	var uid string
	if err := json.Unmarshal(v.Current.Value, &uid); err != nil {
		return grafanaRef{}, fmt.Errorf("datasource variable has no default uid: %v", err)
	}
	return grafanaRef{Type: v.query(), UID: uid}, nil
}

func TestDashboardFilesParse(t *testing.T) {
	n := 0
	err := filepath.WalkDir(grafanaDir, func(path string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		switch filepath.Ext(path) {
		case ".json":
			var v map[string]any
			if err := json.Unmarshal(raw, &v); err != nil {
				t.Errorf("%s: %v", path, err)
			}
		case ".yml", ".yaml":
			var v map[string]any
			if err := yaml.Unmarshal(raw, &v); err != nil {
				t.Errorf("%s: %v", path, err)
			}
		case ".md":
			return nil
		default:
			t.Errorf("%s: unexpected file in %s", path, grafanaDir)
		}
		n++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 8 {
		t.Errorf("%d JSON/YAML files under %s, want the provisioning files and 6 dashboards", n, grafanaDir)
	}
}

// stringValues calls fn with every string in a decoded YAML document.
func stringValues(v any, path string, fn func(path, s string)) {
	switch x := v.(type) {
	case string:
		fn(path, x)
	case map[string]any:
		for k, e := range x {
			stringValues(e, path+"."+k, fn)
		}
	case []any:
		for i, e := range x {
			stringValues(e, fmt.Sprintf("%s[%d]", path, i), fn)
		}
	}
}

func TestDashboardProvisioning(t *testing.T) {
	dss := loadDatasources(t)
	for uid, typ := range wantDatasources {
		ds, ok := dss[uid]
		if !ok {
			t.Errorf("data source %q not provisioned", uid)
			continue
		}
		if ds.Type != typ || ds.Name == "" || !strings.HasPrefix(ds.URL, "http://") {
			t.Errorf("data source %q: type %q name %q url %q, want type %q, a name and an http URL", uid, ds.Type, ds.Name, ds.URL, typ)
		}
	}
	for uid := range dss {
		if _, ok := wantDatasources[uid]; !ok {
			t.Errorf("data source %q provisioned but not expected by the tests", uid)
		}
	}
	// Every uid a data source points at is provisioned.
	for uid, ds := range dss {
		stringValues(ds.JSONData, uid, func(path, s string) {
			if (strings.HasSuffix(path, ".datasourceUid") || strings.HasSuffix(path, ".alertmanagerUid")) && dss[s].UID == "" {
				t.Errorf("%s = %q: no such data source", path, s)
			}
		})
	}

	get := func(uid string, keys ...string) any {
		var v any = dss[uid].JSONData
		for _, k := range keys {
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		}
		return v
	}
	checks := []struct {
		uid  string
		keys []string
		want any
	}{
		{"prometheus", []string{"httpMethod"}, "POST"},
		{"prometheus", []string{"exemplarTraceIdDestinations"}, []any{map[string]any{"name": "trace_id", "datasourceUid": "jaeger"}}},
		{"jaeger", []string{"tracesToMetrics", "datasourceUid"}, "prometheus"},
		{"jaeger", []string{"tracesToLogsV2", "datasourceUid"}, "graylog"},
		{"jaeger", []string{"tracesToLogsV2", "customQuery"}, true},
		{"jaeger", []string{"tracesToLogsV2", "query"}, `trace_id:"$${__trace.traceId}"`},
		{"graylog", []string{"index"}, "graylog_*"},
		{"graylog", []string{"timeField"}, "timestamp"},
		{"graylog", []string{"logMessageField"}, "message"},
		{"graylog", []string{"logLevelField"}, "level"},
		{"graylog", []string{"dataLinks"}, []any{map[string]any{"field": "trace_id", "datasourceUid": "jaeger", "url": "$${__value.raw}", "urlDisplayLabel": "Trace in Jaeger"}}},
		{"alertmanager", []string{"implementation"}, "prometheus"},
	}
	for _, c := range checks {
		if got := get(c.uid, c.keys...); fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("%s jsonData.%s = %v, want %v", c.uid, strings.Join(c.keys, "."), got, c.want)
		}
	}
	if qs, _ := get("jaeger", "tracesToMetrics", "queries").([]any); len(qs) == 0 {
		t.Error("jaeger: tracesToMetrics has no queries")
	}

	// Grafana expands $NAME and ${NAME} in provisioning values as
	// environment variables; its own variables must be written $$. A whole
	// value that is one variable Grafana gets in docker-compose.yml (a
	// data source's password) is meant.
	grafanaEnv := loadCompose(t).Services["grafana"].Environment
	wholeVar := regexp.MustCompile(`^\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?$`)
	files, _ := filepath.Glob(filepath.Join(grafanaDir, "provisioning", "*", "*.yml"))
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var doc any
		if err := yaml.Unmarshal(raw, &doc); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		stringValues(doc, filepath.Base(f), func(path, s string) {
			if m := wholeVar.FindStringSubmatch(s); m != nil {
				if _, ok := grafanaEnv[m[1]]; !ok {
					t.Errorf("%s %s = %q: docker-compose.yml gives Grafana no %s", f, path, s, m[1])
				}
				return
			}
			if strings.Contains(strings.ReplaceAll(s, "$$", ""), "$") {
				t.Errorf("%s %s = %q: a single $ is read as an environment variable; write $$", f, path, s)
			}
		})
	}

	raw, err := os.ReadFile(filepath.Join(grafanaDir, "provisioning", "dashboards", "golden.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var prov struct {
		Providers []struct {
			Folder  string `yaml:"folder"`
			Type    string `yaml:"type"`
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	if err := yaml.Unmarshal(raw, &prov); err != nil {
		t.Fatal(err)
	}
	if len(prov.Providers) != 1 || prov.Providers[0].Type != "file" || prov.Providers[0].Folder != "golden" ||
		prov.Providers[0].Options.Path != "/var/lib/grafana/dashboards" {
		t.Errorf("dashboard provider %+v, want one file provider of /var/lib/grafana/dashboards into folder golden", prov.Providers)
	}
}

var (
	dashboardLink = regexp.MustCompile(`"/d/([A-Za-z0-9_-]+)`)
	usesService   = regexp.MustCompile(`\bservice=~"\$(service|\{service\})"`)
	usesInstance  = regexp.MustCompile(`\binstance=~"\$(instance|\{instance\})"`)
)

func TestDashboardPanels(t *testing.T) {
	dss := loadDatasources(t)
	rules := map[string]bool{}
	for _, r := range recordingRules(t) {
		rules[r] = true
	}
	unscopedSeen := map[string]bool{}
	uids := map[string]string{}
	for _, d := range loadDashboards(t) {
		t.Run(d.UID, func(t *testing.T) {
			if d.UID == "" || d.Title == "" {
				t.Fatalf("%s: uid %q title %q", d.file, d.UID, d.Title)
			}
			if other, dup := uids[d.UID]; dup {
				t.Errorf("%s and %s share uid %q", other, d.file, d.UID)
			}
			uids[d.UID] = d.file
			if d.file != d.UID+".json" {
				t.Errorf("%s: name the file after the uid (%s.json)", d.file, d.UID)
			}
			if !d.Editable || d.SchemaVersion < 39 {
				t.Errorf("editable %v schemaVersion %d, want editable and Grafana 11's schema (39+)", d.Editable, d.SchemaVersion)
			}

			// The datasource variable defaults to the provisioned Prometheus.
			dsVar, ok := d.variable("datasource")
			if !ok || dsVar.Type != "datasource" || dsVar.query() != "prometheus" {
				t.Errorf("no datasource variable of type datasource and query prometheus: %+v", dsVar)
			}
			if ref, err := d.resolve(&grafanaRef{UID: "${datasource}"}); err != nil || dss[ref.UID].Type != "prometheus" {
				t.Errorf("datasource variable defaults to %q (%v), want a provisioned Prometheus", ref.UID, err)
			}
			for _, name := range []string{"service", "instance"} {
				v, ok := d.variable(name)
				if !ok || v.Type != "query" || v.Datasource == nil || v.Datasource.UID != "${datasource}" ||
					!strings.HasPrefix(v.query(), "label_values(") {
					t.Errorf("variable %s: want a label_values query variable on ${datasource}, got %+v (query %q)", name, v, v.query())
				}
			}
			for _, v := range d.Templating.List {
				if v.Type != "query" {
					continue
				}
				ref, err := d.resolve(v.Datasource)
				if err != nil || dss[ref.UID].Type != ref.Type {
					t.Errorf("variable %s: data source %+v: %v", v.Name, v.Datasource, err)
					continue
				}
				if ref.Type == "prometheus" {
					if v.Datasource.UID != "${datasource}" {
						t.Errorf("variable %s: Prometheus queries go through ${datasource}, not %q", v.Name, v.Datasource.UID)
					}
					expr, _, err := variableExpr(v.query())
					if err != nil {
						t.Errorf("variable %s: %v", v.Name, err)
						continue
					}
					metrics, problems := analyzePromQL(expr)
					for _, p := range problems {
						t.Errorf("variable %s: %s", v.Name, p)
					}
					checkRecordingRules(t, "variable "+v.Name, metrics, rules)
				}
			}

			prometheusTargets := 0
			walkPanels(d.Panels, func(p grafanaPanel) {
				where := d.UID + "/" + p.Title
				if p.Title == "" {
					t.Errorf("a %s panel has no title", p.Type)
				}
				if p.Type == "row" {
					return
				}
				if p.Description == "" || p.FieldConfig.Defaults.Unit == "" {
					t.Errorf("%s: description %q unit %q: both required", where, p.Description, p.FieldConfig.Defaults.Unit)
				}
				panelDS, err := d.resolve(p.Datasource)
				if err != nil || dss[panelDS.UID].Type != panelDS.Type {
					t.Errorf("%s: data source %+v is not provisioned (%v)", where, p.Datasource, err)
				}
				if panelDS.Type == "prometheus" && p.Datasource.UID != "${datasource}" {
					t.Errorf("%s: Prometheus panels use ${datasource}, not %q", where, p.Datasource.UID)
				}
				if len(p.Targets) == 0 {
					t.Errorf("%s: no queries", where)
				}
				for _, tg := range p.Targets {
					ref, err := d.resolve(tg.Datasource)
					if err != nil || dss[ref.UID].Type != ref.Type || ref != panelDS {
						t.Errorf("%s/%s: data source %+v, want the panel's provisioned %+v (%v)", where, tg.RefID, tg.Datasource, panelDS, err)
						continue
					}
					if ref.Type != "prometheus" {
						continue
					}
					prometheusTargets++
					if tg.Datasource.UID != "${datasource}" {
						t.Errorf("%s/%s: Prometheus queries use ${datasource}, not %q", where, tg.RefID, tg.Datasource.UID)
					}
					if _, ok := unscopedPanels[where]; ok {
						unscopedSeen[where] = true
					} else if !usesService.MatchString(tg.Expr) || !usesInstance.MatchString(tg.Expr) {
						t.Errorf("%s/%s: query must select service=~\"$service\" and instance=~\"$instance\": %s", where, tg.RefID, tg.Expr)
					}
					metrics, problems := analyzePromQL(tg.Expr)
					for _, pr := range problems {
						t.Errorf("%s/%s: %s in %s", where, tg.RefID, pr, tg.Expr)
					}
					checkRecordingRules(t, where+"/"+tg.RefID, metrics, rules)
				}
			})
			if prometheusTargets == 0 {
				t.Error("no Prometheus query at all")
			}
		})
	}
	// Links between dashboards (/d/<uid>) lead somewhere.
	files, _ := filepath.Glob(filepath.Join(grafanaDir, "dashboards", "*.json"))
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range dashboardLink.FindAllStringSubmatch(string(raw), -1) {
			if _, ok := uids[m[1]]; !ok {
				t.Errorf("%s links to dashboard %q, which does not exist", filepath.Base(f), m[1])
			}
		}
	}
	for k := range unscopedPanels {
		if !unscopedSeen[k] {
			t.Errorf("unscopedPanels lists %q, which no dashboard has", k)
		}
	}
}

// checkRecordingRules reports every level:metric:operations name that no
// rule in prometheus/rules records.
func checkRecordingRules(t *testing.T, where string, metrics []string, rules map[string]bool) {
	t.Helper()
	for _, m := range metrics {
		if strings.Contains(m, ":") && !rules[m] {
			t.Errorf("%s: %s is not a recording rule of prometheus/rules", where, m)
		}
	}
}

// TestDashboardLatencyExemplars: the latency panels of the overview and of
// the canary dashboard show exemplars.
func TestDashboardLatencyExemplars(t *testing.T) {
	want := map[string]bool{"golden-overview": true, "golden-canary": true}
	for _, d := range loadDashboards(t) {
		if !want[d.UID] {
			continue
		}
		delete(want, d.UID)
		found := false
		walkPanels(d.Panels, func(p grafanaPanel) {
			if !strings.HasPrefix(p.Title, "Latency") {
				return
			}
			found = true
			on := false
			for _, tg := range p.Targets {
				// Exemplars hang on the scraped series, not on recording
				// rules: the query must read the buckets themselves.
				if tg.Exemplar && strings.Contains(tg.Expr, "_bucket{") {
					on = true
				}
			}
			if !on {
				t.Errorf("%s/%s: no query with exemplars on the raw buckets", d.UID, p.Title)
			}
		})
		if !found {
			t.Errorf("%s has no latency panel", d.UID)
		}
	}
	for uid := range want {
		t.Errorf("no %s dashboard", uid)
	}
}

func TestDashboardPromQLChecker(t *testing.T) {
	for _, c := range []struct {
		expr     string
		problems int
	}{
		{`sum by (service) (rate(grpc_server_handled_total{job="golden",le="0.3"}[$__rate_interval]))`, 0},
		{`histogram_quantile(0.99, sum by (le) (rate(x_bucket{a="b"}[$__rate_interval])))`, 0},
		{`label_join(rate(x_total[$__rate_interval]), "a_total", "/", "b", "c") and on (x_count) y`, 0},
		{`service_le:golden_latency_seconds_bucket:rate5m{le="0.3"} / ignoring (le) group_left up`, 0},
		{`sum_over_time(service:golden_requests:rate5m[30d])`, 0},
		{`rate(x_total[5m])`, 1},
		{`increase(x_total{a="b"}[1h])`, 1},
		{`x_total`, 1},
		{`sum(go_gc_duration_seconds_count{a="b"})`, 1},
		{`histogram_quantile(0.9, x_bucket)`, 1},
		{`sum by (service) (consul_health_service_query)`, 1},
		{`sum(rate(x_total[$__rate_interval])`, 1},
	} {
		_, problems := analyzePromQL(c.expr)
		if len(problems) != c.problems {
			t.Errorf("%s: problems %q, want %d", c.expr, problems, c.problems)
		}
	}
}

// promToken is a token of a PromQL expression: 'i' identifier, 's' string,
// 'r' the inside of a range or subquery [...], 'n' number or duration, 'v'
// a Grafana variable outside a string, 'o' operator or punctuation.
type promToken struct {
	kind byte
	text string
}

func lexPromQL(expr string) ([]promToken, error) {
	identStart := func(c byte) bool { return c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
	identChar := func(c byte) bool { return identStart(c) || c >= '0' && c <= '9' }
	var toks []promToken
	for i := 0; i < len(expr); {
		c := expr[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '#':
			for i < len(expr) && expr[i] != '\n' {
				i++
			}
		case c == '"' || c == '\'' || c == '`':
			j := i + 1
			for j < len(expr) && expr[j] != c {
				if expr[j] == '\\' && c != '`' {
					j++
				}
				j++
			}
			if j >= len(expr) {
				return nil, fmt.Errorf("unterminated string at offset %d", i)
			}
			toks = append(toks, promToken{'s', expr[i+1 : j]})
			i = j + 1
		case c == '[':
			j := strings.IndexByte(expr[i:], ']')
			if j < 0 {
				return nil, fmt.Errorf("unterminated [ at offset %d", i)
			}
			toks = append(toks, promToken{'r', strings.TrimSpace(expr[i+1 : i+j])})
			i += j + 1
		case c == '$':
			j := i + 1
			if j < len(expr) && expr[j] == '{' {
				k := strings.IndexByte(expr[j:], '}')
				if k < 0 {
					return nil, fmt.Errorf("unterminated ${ at offset %d", i)
				}
				j += k + 1
			} else {
				for j < len(expr) && identChar(expr[j]) {
					j++
				}
			}
			toks = append(toks, promToken{'v', expr[i:j]})
			i = j
		case identStart(c):
			j := i + 1
			for j < len(expr) && identChar(expr[j]) {
				j++
			}
			toks = append(toks, promToken{'i', expr[i:j]})
			i = j
		case c >= '0' && c <= '9' || c == '.':
			j := i + 1
			for j < len(expr) && (identChar(expr[j]) || expr[j] == '.') {
				j++
			}
			toks = append(toks, promToken{'n', expr[i:j]})
			i = j
		default:
			if i+1 < len(expr) && slices.Contains([]string{"==", "!=", ">=", "<=", "=~", "!~"}, expr[i:i+2]) {
				toks = append(toks, promToken{'o', expr[i : i+2]})
				i += 2
			} else {
				toks = append(toks, promToken{'o', expr[i : i+1]})
				i++
			}
		}
	}
	return toks, nil
}

var (
	// rangeFunctions are the functions every counter must be read through,
	// over $__rate_interval.
	rangeFunctions = map[string]bool{"rate": true, "increase": true, "irate": true}
	// aggregations may take their by/without clause before the body.
	aggregations = map[string]bool{
		"sum": true, "avg": true, "min": true, "max": true, "count": true, "group": true, "stddev": true,
		"stdvar": true, "topk": true, "bottomk": true, "quantile": true, "count_values": true,
		"limitk": true, "limit_ratio": true,
	}
	labelListWords = map[string]bool{"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true}
	promKeywords   = map[string]bool{"and": true, "or": true, "unless": true, "bool": true, "offset": true, "atan2": true, "inf": true, "nan": true}
	// suffixlessCounters are counters whose names do not say so: Consul's
	// go-metrics counters.
	suffixlessCounters = map[string]bool{"consul_health_service_query": true, "consul_catalog_service_query": true}
)

// isCounter tells counters (and the cumulative series of histograms and
// summaries) by name. Recording rules (level:metric:operations) are
// already rates.
func isCounter(name string) bool {
	if strings.Contains(name, ":") {
		return false
	}
	for _, suffix := range []string{"_total", "_count", "_sum", "_bucket"} {
		if strings.HasSuffix(name, suffix) {
			return true
		}
	}
	return suffixlessCounters[name]
}

// analyzePromQL returns the metric names an expression reads and what is
// wrong with it: a counter read other than through rate(), increase() or
// irate(), one of those over another range than $__rate_interval, or
// unbalanced brackets. It is a small checker, not a parser: Prometheus
// itself parses every expression in verifyDashboardQueries.
func analyzePromQL(expr string) (metrics, problems []string) {
	toks, err := lexPromQL(expr)
	if err != nil {
		return nil, []string{err.Error()}
	}
	// Frames: 'c' function call, 'g' parentheses, 'l' label list, 'b' selector braces.
	type frame struct {
		kind byte
		name string
	}
	var stack []frame
	innermostCall := func() string {
		for i := len(stack) - 1; i >= 0; i-- {
			if stack[i].kind == 'c' {
				return stack[i].name
			}
		}
		return ""
	}
	pendingAggregation := ""
	for i := 0; i < len(toks); i++ {
		tk := toks[i]
		var next promToken
		if i+1 < len(toks) {
			next = toks[i+1]
		}
		top := byte(0)
		if len(stack) > 0 {
			top = stack[len(stack)-1].kind
		}
		switch {
		case tk.kind == 'i' && (top == 'b' || top == 'l'):
			// A label name.
		case tk.kind == 'i' && next.kind == 'o' && next.text == "(":
			if labelListWords[tk.text] {
				stack = append(stack, frame{'l', tk.text})
			} else {
				stack = append(stack, frame{'c', tk.text})
			}
			i++
		case tk.kind == 'i' && aggregations[tk.text]:
			pendingAggregation = tk.text // body after its by/without clause
		case tk.kind == 'i' && (promKeywords[tk.text] || labelListWords[tk.text]):
		case tk.kind == 'i':
			metrics = append(metrics, tk.text)
			if isCounter(tk.text) && !rangeFunctions[innermostCall()] {
				problems = append(problems, fmt.Sprintf("counter %s read outside rate()/increase()", tk.text))
			}
		case tk.kind == 'o' && tk.text == "(":
			if pendingAggregation != "" {
				stack = append(stack, frame{'c', pendingAggregation})
				pendingAggregation = ""
			} else {
				stack = append(stack, frame{'g', ""})
			}
		case tk.kind == 'o' && tk.text == "{":
			stack = append(stack, frame{'b', ""})
		case tk.kind == 'o' && (tk.text == ")" || tk.text == "}"):
			want := tk.text == "}"
			if len(stack) == 0 || (top == 'b') != want {
				return metrics, append(problems, "unbalanced "+tk.text)
			}
			stack = stack[:len(stack)-1]
		case tk.kind == 'r':
			if fn := innermostCall(); rangeFunctions[fn] && tk.text != "$__rate_interval" {
				problems = append(problems, fmt.Sprintf("%s() over [%s], not [$__rate_interval]", fn, tk.text))
			}
		}
	}
	if len(stack) != 0 {
		problems = append(problems, "unbalanced brackets")
	}
	return metrics, problems
}

// variableExpr turns a Prometheus query variable into PromQL:
// label_values(selector, label) into group by (label) (selector), and
// query_result(q) into q. label is "" for other queries.
func variableExpr(q string) (expr, label string, err error) {
	q = strings.TrimSpace(q)
	switch {
	case strings.HasPrefix(q, "label_values(") && strings.HasSuffix(q, ")"):
		inner := q[len("label_values(") : len(q)-1]
		i := strings.LastIndexByte(inner, ',')
		if i < 0 {
			return "", "", fmt.Errorf("%s: give label_values a selector, not the label alone", q)
		}
		label = strings.TrimSpace(inner[i+1:])
		return fmt.Sprintf("group by (%s) (%s)", label, strings.TrimSpace(inner[:i])), label, nil
	case strings.HasPrefix(q, "query_result(") && strings.HasSuffix(q, ")"):
		return q[len("query_result(") : len(q)-1], "", nil
	}
	return "", "", fmt.Errorf("unsupported variable query %q", q)
}

// dashboardQuery is one PromQL expression of a dashboard, a query
// variable, or a data source link.
type dashboardQuery struct {
	where string
	expr  string
	label string // a query variable's label, which every answer must carry
	// values lists the values tried for a variable: the first giving data
	// wins, unless all must (allValues).
	values    map[string][]string
	allValues string
	// positive counts only series above 0 as data.
	positive bool
}

// grafanaVariableRef matches $name, ${name} and ${name:format}.
var grafanaVariableRef = regexp.MustCompile(`\$\{([A-Za-z0-9_.]+)(?::[^}]*)?\}|\$([A-Za-z_][A-Za-z0-9_]*)`)

// expand substitutes vars into expr, failing on any variable it lacks.
func expand(expr string, vars map[string]string) (string, error) {
	var missing []string
	out := grafanaVariableRef.ReplaceAllStringFunc(expr, func(m string) string {
		sub := grafanaVariableRef.FindStringSubmatch(m)
		name := sub[1] + sub[2]
		v, ok := vars[name]
		if !ok {
			missing = append(missing, name)
		}
		return v
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("no test value for variable(s) %v", missing)
	}
	return out, nil
}

// dashboardQueries collects every PromQL expression of the dashboards and
// of the Jaeger data source's trace-to-metrics links.
func dashboardQueries(t *testing.T) []dashboardQuery {
	t.Helper()
	// A multi-value variable set to All is .* (its allValue); a
	// single-value service is tried as each real service in turn.
	fixed := map[string][]string{
		"instance": {".*"}, "method": {".*"}, "version": {".*"},
		"__rate_interval": {"1m"}, "__interval": {"15s"}, "__range": {"5m"},
	}
	var out []dashboardQuery
	for _, d := range loadDashboards(t) {
		values := map[string][]string{}
		for k, v := range fixed {
			values[k] = v
		}
		values["service"] = []string{"user", "gateway", "auth"}
		if v, _ := d.variable("service"); v.Multi {
			values["service"] = []string{".*"}
		}
		for _, v := range d.Templating.List {
			if v.Type != "query" || v.Datasource == nil || v.Datasource.UID != "${datasource}" {
				continue
			}
			expr, label, err := variableExpr(v.query())
			if err != nil {
				t.Errorf("%s/$%s: %v", d.UID, v.Name, err)
				continue
			}
			out = append(out, dashboardQuery{where: d.UID + "/$" + v.Name, expr: expr, label: label, values: values})
		}
		walkPanels(d.Panels, func(p grafanaPanel) {
			for _, tg := range p.Targets {
				if ref, err := d.resolve(tg.Datasource); err == nil && ref.Type == "prometheus" {
					out = append(out, dashboardQuery{where: d.UID + "/" + p.Title + "/" + tg.RefID, expr: tg.Expr, values: values})
				}
			}
		})
	}
	// Span names equal the method label: one gRPC method, one HTTP route.
	jaeger := loadDatasources(t)["jaeger"]
	ttm, _ := jaeger.JSONData["tracesToMetrics"].(map[string]any)
	qs, _ := ttm["queries"].([]any)
	for _, q := range qs {
		m, _ := q.(map[string]any)
		name, _ := m["name"].(string)
		expr, _ := m["query"].(string)
		out = append(out, dashboardQuery{
			where: "datasource jaeger/tracesToMetrics/" + name,
			// Provisioning turns $$ into $.
			expr:      strings.ReplaceAll(expr, "$$", "$"),
			values:    map[string][]string{"__span.name": {"golden.user.v1.UserService/GetUser", "GET /v1/users/{id}"}},
			allValues: "__span.name",
		})
	}
	return out
}

// verifyDashboardQueries runs every PromQL expression of the dashboards
// (panel queries and query variables) and of the Jaeger data source's
// trace-to-metrics links against prom, with the template variables set to
// real values, and requires each to answer with data, except those listed
// below with the reason they may stay empty. It returns how many answered
// with data.
func verifyDashboardQueries(t *testing.T, prom *testbackend.Prometheus) int {
	t.Helper()
	// TestDashboardConsulPanels runs these against a real Consul.
	const notScraped = "this test's Prometheus scrapes only the golden job, not Consul (TestDashboardConsulPanels checks them)"
	// Every test instance is stable: the per-track panels show stable alone.
	const noCanary = "the test stack runs no canary and sets no weight, so the gateway need not expose one or route by it"
	mayBeEmpty := map[string]string{
		"golden-overview/Rate-limit rejections/A":                   "the test traffic stays under every caller's rate limit",
		"golden-service/Rate-limit rejections by caller/A":          "the test traffic stays under every caller's rate limit",
		"golden-overview/Alerts firing/A":                           "no alert fires on the test's healthy traffic",
		"golden-discovery/Discovery alerts/A":                       "no discovery alert is pending or firing while every instance is up",
		"golden-runtime/Log messages shipped to Graylog/A":          "the test stack ships no logs to Graylog, so the GELF sink's counters do not exist",
		"golden-runtime/Log messages shipped to Graylog/B":          "the test stack ships no logs to Graylog, so the GELF sink's counters do not exist",
		"golden-runtime/Spans exported to Jaeger/A":                 "the test stack exports no spans, so the export counters do not exist (the compose test queries them)",
		"golden-runtime/Spans exported to Jaeger/B":                 "the test stack exports no spans, so the export counters do not exist (the compose test queries them)",
		"golden-discovery/Discovery lookups per service (Consul)/A": notScraped,
		"golden-discovery/Discovery lookups per service (Consul)/B": notScraped,
		"golden-discovery/Registrations (Consul)/A":                 notScraped,
		"golden-discovery/Registrations (Consul)/B":                 notScraped,
		"golden-discovery/Catalog size (Consul)/A":                  notScraped,
		"golden-discovery/Catalog size (Consul)/B":                  notScraped,
		"golden-discovery/Consul servers healthy/A":                 notScraped,
		"golden-canary/Canary weight/A":                             noCanary,
		"golden-canary/Canary weight/B":                             noCanary,
		"golden-canary/Canary alerts/A":                             noCanary,
		"golden-canary/Canary rollbacks/A":                          "the test stack runs no canary guard",
	}
	queries := dashboardQueries(t)
	seen := map[string]bool{}
	verified, excused := 0, 0
	for _, q := range queries {
		if seen[q.where] {
			t.Errorf("%s: two queries share this name; give panels distinct titles", q.where)
		}
		seen[q.where] = true
		reason, mayBe := mayBeEmpty[q.where]
		// Rates need a few scrapes after the traffic: retry empty answers
		// for a while, but not those allowed to stay empty.
		deadline := time.Now().Add(20 * time.Second)
		var got string
		var err error
		for {
			got, err = runDashboardQuery(prom, q)
			if err != nil || got != "" || mayBe || time.Now().After(deadline) {
				break
			}
			time.Sleep(500 * time.Millisecond)
		}
		switch {
		case err != nil:
			t.Errorf("%s: %v", q.where, err)
		case got != "":
			verified++
			t.Logf("query %s: %s", q.where, got)
		case mayBe:
			excused++
			t.Logf("query %s: no data, allowed: %s", q.where, reason)
		default:
			t.Errorf("%s: no data: %s", q.where, q.expr)
		}
	}
	for k := range mayBeEmpty {
		if !seen[k] {
			t.Errorf("mayBeEmpty lists %q, which is no dashboard query", k)
		}
	}
	t.Logf("dashboard queries: %d with data, %d allowed empty, of %d", verified, excused, len(queries))
	return verified
}

// runDashboardQuery runs q with its variables set, trying the candidate
// values in turn. It returns a short account of the data found ("" for
// none), or an error when Prometheus refuses the query.
func runDashboardQuery(prom *testbackend.Prometheus, q dashboardQuery) (string, error) {
	// Combinations: the first value of every variable, then each further
	// value of the one variable that has several.
	vars := map[string]string{}
	multi := ""
	for k, vs := range q.values {
		vars[k] = vs[0]
		if len(vs) > 1 {
			multi = k
		}
	}
	candidates := []string{vars[multi]}
	if multi != "" {
		candidates = q.values[multi]
	}
	var found []string
	for _, c := range candidates {
		if multi != "" {
			vars[multi] = c
		}
		expr, err := expand(q.expr, vars)
		if err != nil {
			return "", err
		}
		samples, err := prom.Query(expr)
		if err != nil {
			return "", err
		}
		samples = slices.DeleteFunc(samples, func(s testbackend.Sample) bool {
			if q.label != "" && s.Metric[q.label] == "" {
				return true
			}
			v, _ := s.Value[1].(string)
			f, err := strconv.ParseFloat(v, 64)
			return q.positive && !(err == nil && f > 0)
		})
		if len(samples) == 0 {
			if q.allValues == multi && multi != "" {
				return "", nil // every value must give data
			}
			continue
		}
		found = append(found, describeSamples(multi, c, samples))
		if q.allValues != multi || multi == "" {
			break
		}
	}
	return strings.Join(found, "; "), nil
}

// describeSamples says how many series answered and shows one.
func describeSamples(variable, value string, samples []testbackend.Sample) string {
	labels := make([]string, 0, len(samples[0].Metric))
	for k, v := range samples[0].Metric {
		labels = append(labels, k+"="+v)
	}
	sort.Strings(labels)
	s := fmt.Sprintf("%d series, e.g. {%s} = %v", len(samples), strings.Join(labels, ","), samples[0].Value[1])
	if variable != "" {
		s = variable + "=" + value + ": " + s
	}
	return s
}

// TestDashboardConsulPanels runs the dashboards' queries of Consul's own
// metrics (job="consul") against a Prometheus scraping a real Consul dev
// agent with the consul job of prometheus/prometheus.yml, while the golden
// services are registered and looked up there.
func TestDashboardConsulPanels(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Consul and Prometheus")
	}
	bin := testbackend.Binary(t, "consul")
	ports := map[int]bool{}
	for len(ports) < 4 {
		ports[testbackend.FreePort(t)] = true
	}
	var p []string
	for port := range ports {
		p = append(p, strconv.Itoa(port))
	}
	addr := "127.0.0.1:" + p[0]
	// Consul serves Prometheus metrics only with a retention time, as
	// consul/consul.hcl sets it.
	consul := testbackend.Start(t, bin, "agent", "-dev", "-client", "127.0.0.1", "-bind", "127.0.0.1",
		"-http-port", p[0], "-serf-lan-port", p[1], "-serf-wan-port", p[2], "-server-port", p[3],
		"-grpc-port", "-1", "-grpc-tls-port", "-1", "-dns-port", "-1",
		"-hcl", `telemetry { prometheus_retention_time = "1m" disable_hostname = true }`)
	client, err := api.NewClient(&api.Config{Address: addr})
	if err != nil {
		t.Fatal(err)
	}
	consul.WaitFor(t, 30*time.Second, func() error {
		leader, err := client.Status().Leader()
		if err == nil && leader == "" {
			err = fmt.Errorf("no leader yet")
		}
		return err
	})
	for _, svc := range services {
		reg := &api.AgentServiceRegistration{ID: svc + "-127.0.0.1-1", Name: svc, Address: "127.0.0.1", Port: 1, Tags: []string{"metrics"}}
		if err := client.Agent().ServiceRegister(reg); err != nil {
			t.Fatal(err)
		}
	}
	// What resolvers and Prometheus do (health lookups) and what other
	// clients do (catalog lookups), plus an instance coming and going.
	churn := 0
	lookups := func() {
		for _, svc := range services {
			_, _, _ = client.Health().Service(svc, "", true, nil)
			_, _, _ = client.Catalog().Service(svc, "", nil)
		}
		churn++
		id := fmt.Sprintf("churn-%d", churn)
		_ = client.Agent().ServiceRegister(&api.AgentServiceRegistration{ID: id, Name: "churn", Port: 1})
		_ = client.Agent().ServiceDeregister(id)
	}

	prom := testbackend.StartPrometheus(t, renderConsulScrapeConfig(t, addr))
	checked := 0
	for _, q := range dashboardQueries(t) {
		if !strings.Contains(q.expr, `job="consul"`) {
			continue
		}
		checked++
		// Every panel must show Consul at work: counts and rates above 0.
		q.positive = true
		eventually(t, time.Minute, q.where, func() error {
			lookups()
			got, err := runDashboardQuery(prom, q)
			if err == nil && got == "" {
				err = fmt.Errorf("no data: %s", q.expr)
			}
			if err == nil {
				t.Logf("query %s: %s", q.where, got)
			}
			return err
		})
	}
	if checked == 0 {
		t.Fatal(`no dashboard query reads job="consul"`)
	}
}

// renderConsulScrapeConfig is the consul job of prometheus/prometheus.yml
// pointed at consulAddr, scraping every second.
func renderConsulScrapeConfig(t *testing.T, consulAddr string) string {
	t.Helper()
	raw, err := os.ReadFile("../prometheus/prometheus.yml")
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		ScrapeConfigs []map[string]any `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	for _, job := range cfg.ScrapeConfigs {
		if job["job_name"] != "consul" {
			continue
		}
		job["static_configs"] = []any{map[string]any{"targets": []string{consulAddr}}}
		// This agent has no ACLs; the token file is compose's.
		if _, ok := job["authorization"]; !ok {
			t.Fatal("prometheus.yml's consul job presents no Consul token (authorization)")
		}
		delete(job, "authorization")
		out, err := yaml.Marshal(map[string]any{
			"global":         map[string]any{"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
			"scrape_configs": []any{job},
		})
		if err != nil {
			t.Fatal(err)
		}
		return testbackend.WriteFile(t, t.TempDir(), "prometheus.yml", out)
	}
	t.Fatal("prometheus/prometheus.yml has no consul job")
	return ""
}

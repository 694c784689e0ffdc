package integration

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Graylog2/go-gelf/gelf"

	"github.com/golden-stack/golden/internal/testbackend"
	"github.com/golden-stack/golden/observability/service"
)

// gelfCapture receives GELF over UDP and keeps every message.
type gelfCapture struct {
	reader *gelf.Reader
	mu     sync.Mutex
	msgs   []*gelf.Message
}

func captureGELF(t *testing.T) *gelfCapture {
	t.Helper()
	r, err := gelf.NewReader("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &gelfCapture{reader: r}
	// go-gelf's Reader cannot be closed: the goroutine ends with the test
	// binary.
	go func() {
		for {
			m, err := r.ReadMessage()
			if err != nil {
				continue
			}
			c.mu.Lock()
			c.msgs = append(c.msgs, m)
			c.mu.Unlock()
		}
	}()
	return c
}

// withRequestID returns the captured messages whose _request_id is id.
func (c *gelfCapture) withRequestID(id string) []*gelf.Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*gelf.Message
	for _, m := range c.msgs {
		if m.Extra["_request_id"] == id {
			out = append(out, m)
		}
	}
	return out
}

// jaegerTrace is the part of Jaeger's /api/traces/{id} answer the test reads.
type jaegerTrace struct {
	Spans []struct {
		TraceID       string `json:"traceID"`
		SpanID        string `json:"spanID"`
		OperationName string `json:"operationName"`
		ProcessID     string `json:"processID"`
		References    []struct {
			RefType string `json:"refType"`
			SpanID  string `json:"spanID"`
		} `json:"references"`
		Tags []struct {
			Key   string `json:"key"`
			Value any    `json:"value"`
		} `json:"tags"`
	} `json:"spans"`
	Processes map[string]struct {
		ServiceName string `json:"serviceName"`
	} `json:"processes"`
}

func fetchJaegerTrace(queryURL, traceID string) (*jaegerTrace, error) {
	resp, err := http.Get(queryURL + "/api/traces/" + traceID)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET trace: %s", resp.Status)
	}
	var body struct {
		Data []jaegerTrace `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, err
	}
	if len(body.Data) != 1 {
		return nil, fmt.Errorf("%d traces", len(body.Data))
	}
	return &body.Data[0], nil
}

// TestOneRequestEndToEnd follows one request through the gateway and user
// service: its trace reaches the real Jaeger with gateway, user and store
// spans correctly linked; its log lines reach a GELF receiver carrying the
// request ID returned to the client and the trace's ID; and `golden lookup`
// (Graylog replayed from those GELF messages, Jaeger real) prints its
// timeline.
func TestOneRequestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Jaeger")
	}
	jaeger := testbackend.StartJaeger(t, "../jaeger/config.yaml")
	logs := captureGELF(t)
	db := testbackend.StartPostgres(t).CreateDatabase(t, "golden")
	s := startStack(t, func(sc *stackConfig) {
		sc.user.Store, sc.user.DB.URL = "postgres", db
		for _, st := range []*service.Settings{&sc.user.Settings, &sc.auth.Settings, &sc.gateway.Settings} {
			st.Tracing.Endpoint = jaeger.OTLPGRPCAddr
			st.Tracing.SampleRatio = 1
			st.Logging.Level = "info"
			st.Logging.GELFAddr = logs.reader.Addr()
			st.Logging.GELFProtocol = "udp"
		}
	})

	id := signup(t, s, "story")
	access, _ := login(t, s, "story")
	const rid = "story-request-0001"
	r := s.call(t, "GET", "/v1/users/"+id, access, nil, "X-Request-ID", rid)
	if r.status != 200 || r.requestID != rid {
		t.Fatalf("GET: %d, X-Request-ID %q", r.status, r.requestID)
	}

	// The log lines of the request, from both services, share its trace ID.
	var traceID string
	eventually(t, 30*time.Second, "access logs of gateway and user in GELF", func() error {
		msgs := logs.withRequestID(rid)
		bySvc := map[string]*gelf.Message{}
		for _, m := range msgs {
			svc, _ := m.Extra["_service"].(string)
			bySvc[svc] = m
		}
		if bySvc["gateway"] == nil || bySvc["user"] == nil {
			return fmt.Errorf("%d messages, services %v", len(msgs), keys(bySvc))
		}
		traceID, _ = bySvc["gateway"].Extra["_trace_id"].(string)
		for svc, m := range bySvc {
			if m.Extra["_trace_id"] != traceID || traceID == "" {
				return fmt.Errorf("%s logged trace %v, gateway %q", svc, m.Extra["_trace_id"], traceID)
			}
			if m.Host == "" || m.Level != 6 {
				return fmt.Errorf("%s: host %q level %d", svc, m.Host, m.Level)
			}
		}
		return nil
	})

	// The trace in Jaeger covers gateway, user, the store and its SQL,
	// linked gateway server -> gateway client -> user server -> store ->
	// query.
	var tr *jaegerTrace
	eventually(t, time.Minute, "trace in Jaeger", func() error {
		var err error
		if tr, err = fetchJaegerTrace(jaeger.QueryURL, traceID); err != nil {
			return err
		}
		have := map[string]bool{}
		for _, sp := range tr.Spans {
			have[tr.Processes[sp.ProcessID].ServiceName+" "+sp.OperationName] = true
		}
		for _, want := range []string{
			"gateway GET /v1/users/{id}",
			"gateway golden.user.v1.UserService/GetUser",
			"user golden.user.v1.UserService/GetUser",
			"user user.store.Get",
		} {
			if !have[want] {
				return fmt.Errorf("no span %q in %v", want, have)
			}
		}
		for _, sp := range tr.Spans {
			if hasTag(sp.Tags, "db.system.name", "postgresql") {
				return nil
			}
		}
		return fmt.Errorf("no PostgreSQL span in %v", have)
	})
	parentOf := map[string]string{}
	nameOf := map[string]string{}
	for _, sp := range tr.Spans {
		nameOf[sp.SpanID] = tr.Processes[sp.ProcessID].ServiceName + " " + sp.OperationName
		for _, ref := range sp.References {
			if ref.RefType == "CHILD_OF" {
				parentOf[sp.SpanID] = ref.SpanID
			}
		}
	}
	chain := map[string]string{
		"user user.store.Get":                        "user golden.user.v1.UserService/GetUser",
		"user golden.user.v1.UserService/GetUser":    "gateway golden.user.v1.UserService/GetUser",
		"gateway golden.user.v1.UserService/GetUser": "gateway GET /v1/users/{id}",
	}
	for spanID, name := range nameOf {
		if want, ok := chain[name]; ok && nameOf[parentOf[spanID]] != want {
			t.Errorf("parent of %q is %q, want %q", name, nameOf[parentOf[spanID]], want)
		}
	}
	var queryUnderStore bool
	for _, sp := range tr.Spans {
		if nameOf[sp.SpanID] == "gateway GET /v1/users/{id}" && !hasTag(sp.Tags, "request_id", rid) {
			t.Errorf("gateway span lacks request_id=%s: %v", rid, sp.Tags)
		}
		if !hasTag(sp.Tags, "db.system.name", "postgresql") {
			continue
		}
		// SQL spans (pool.acquire, the query, its prepare): never a
		// parameter value (the user ID asked for) in a tag.
		for _, tg := range sp.Tags {
			if v := fmt.Sprint(tg.Value); strings.Contains(v, id) {
				t.Errorf("SQL span %q: tag %s carries a parameter value: %q", sp.OperationName, tg.Key, v)
			}
		}
		if hasTag(sp.Tags, "db.query.text", "SELECT id, username, email, password_hash, created_at, updated_at FROM users WHERE id = $1") &&
			nameOf[parentOf[sp.SpanID]] == "user user.store.Get" {
			queryUnderStore = true
		}
	}
	if !queryUnderStore {
		t.Error("no SQL span with the statement under the user.store.Get span")
	}

	// golden lookup, with Graylog replayed from what GELF delivered.
	out := runLookup(t, buildGolden(t), logs, jaeger, rid)
	for _, want := range []string{"gateway", "user", "user.store.Get", "GET /v1/users/{id}", "finished unary call", traceID} {
		if !strings.Contains(out, want) {
			t.Errorf("lookup output lacks %q", want)
		}
	}
	t.Logf("golden lookup %s:\n%s", rid, out)
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func hasTag(tags []struct {
	Key   string `json:"key"`
	Value any    `json:"value"`
}, key, value string) bool {
	for _, tg := range tags {
		if tg.Key == key && fmt.Sprint(tg.Value) == value {
			return true
		}
	}
	return false
}

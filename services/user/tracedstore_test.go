package user

import (
	"context"
	"errors"
	"strings"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// tracedFixture is a traced MemoryStore whose spans are exported
// synchronously to memory, and a parent span to run calls under.
type tracedFixture struct {
	store  Store
	exp    *tracetest.InMemoryExporter
	ctx    context.Context
	parent trace.Span
}

func newTracedFixture(t *testing.T) *tracedFixture {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	ctx, parent := tp.Tracer("test").Start(context.Background(), "rpc")
	return &tracedFixture{store: NewTracedStore(NewMemoryStore(), tp), exp: exp, ctx: ctx, parent: parent}
}

// only returns the single span exported since the last call.
func (f *tracedFixture) only(t *testing.T) tracetest.SpanStub {
	t.Helper()
	spans := f.exp.GetSpans()
	f.exp.Reset()
	if len(spans) != 1 {
		t.Fatalf("%d spans, want 1", len(spans))
	}
	s := spans[0]
	if s.Parent.SpanID() != f.parent.SpanContext().SpanID() || s.SpanContext.TraceID() != f.parent.SpanContext().TraceID() {
		t.Errorf("span %q is not a child of the caller's span", s.Name)
	}
	if s.SpanKind != trace.SpanKindInternal {
		t.Errorf("span %q kind %v, want internal", s.Name, s.SpanKind)
	}
	return s
}

func attrs(s tracetest.SpanStub) map[attribute.Key]attribute.Value {
	m := map[attribute.Key]attribute.Value{}
	for _, kv := range s.Attributes {
		m[kv.Key] = kv.Value
	}
	return m
}

// noSecrets fails if any attribute or event of s carries u's username,
// email or password hash.
func noSecrets(t *testing.T, s tracetest.SpanStub, u User) {
	t.Helper()
	var all []attribute.KeyValue
	all = append(all, s.Attributes...)
	for _, e := range s.Events {
		all = append(all, e.Attributes...)
	}
	for _, kv := range all {
		v := kv.Value.String()
		for _, secret := range []string{u.Username, u.Email, string(u.PasswordHash)} {
			if secret != "" && strings.Contains(v, secret) {
				t.Errorf("span %q attribute %s = %q reveals %q", s.Name, kv.Key, v, secret)
			}
		}
	}
}

func TestTracedStoreSpans(t *testing.T) {
	f := newTracedFixture(t)
	in := newUser(1)

	created, err := f.store.Create(f.ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	s := f.only(t)
	want := map[attribute.Key]attribute.Value{AttrUserID: attribute.StringValue(created.ID), AttrOutcome: attribute.StringValue("ok")}
	checkSpan(t, s, "user.store.Create", want, codes.Unset)
	noSecrets(t, s, in)

	got, err := f.store.Get(f.ctx, created.ID)
	if err != nil || got.ID != created.ID || got.Email != in.Email {
		t.Fatalf("Get = %+v, %v", got, err)
	}
	s = f.only(t)
	checkSpan(t, s, "user.store.Get", want, codes.Unset)
	noSecrets(t, s, in)

	got, err = f.store.GetByUsername(f.ctx, in.Username)
	if err != nil || got.ID != created.ID {
		t.Fatalf("GetByUsername = %+v, %v", got, err)
	}
	s = f.only(t)
	checkSpan(t, s, "user.store.GetByUsername", want, codes.Unset)
	noSecrets(t, s, in)

	mustCreate(t, f.store, newUser(2))
	f.exp.Reset()
	users, next, err := f.store.List(f.ctx, "", 1)
	if err != nil || len(users) != 1 || next != created.ID {
		t.Fatalf("List = %d users, next %q, %v", len(users), next, err)
	}
	s = f.only(t)
	checkSpan(t, s, "user.store.List", map[attribute.Key]attribute.Value{
		AttrListAfter: attribute.StringValue(""),
		AttrListLimit: attribute.IntValue(1),
		AttrListCount: attribute.IntValue(1),
		AttrOutcome:   attribute.StringValue("ok"),
	}, codes.Unset)
	noSecrets(t, s, in)

	if err := f.store.Delete(f.ctx, created.ID); err != nil {
		t.Fatal(err)
	}
	checkSpan(t, f.only(t), "user.store.Delete", want, codes.Unset)
}

func TestTracedStoreAnswersAreNotErrors(t *testing.T) {
	f := newTracedFixture(t)
	u := newUser(1)
	mustCreate(t, f.store, u)
	f.exp.Reset()

	if _, err := f.store.Create(f.ctx, u); !errors.Is(err, ErrAlreadyExists) {
		t.Fatalf("duplicate Create: %v", err)
	}
	s := f.only(t)
	checkSpan(t, s, "user.store.Create", map[attribute.Key]attribute.Value{AttrOutcome: attribute.StringValue("already_exists")}, codes.Unset)
	if _, ok := attrs(s)[AttrUserID]; ok {
		t.Error("failed Create recorded a user ID")
	}
	noSecrets(t, s, u)

	const missing = "0190a5e0-0000-7000-8000-000000000000"
	if _, err := f.store.Get(f.ctx, missing); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get: %v", err)
	}
	checkSpan(t, f.only(t), "user.store.Get", map[attribute.Key]attribute.Value{
		AttrUserID: attribute.StringValue(missing), AttrOutcome: attribute.StringValue("not_found"),
	}, codes.Unset)

	if _, err := f.store.GetByUsername(f.ctx, "nobody"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("GetByUsername: %v", err)
	}
	checkSpan(t, f.only(t), "user.store.GetByUsername", map[attribute.Key]attribute.Value{AttrOutcome: attribute.StringValue("not_found")}, codes.Unset)

	if err := f.store.Delete(f.ctx, missing); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Delete: %v", err)
	}
	checkSpan(t, f.only(t), "user.store.Delete", map[attribute.Key]attribute.Value{AttrOutcome: attribute.StringValue("not_found")}, codes.Unset)
}

func TestTracedStoreFailuresAreErrors(t *testing.T) {
	f := newTracedFixture(t)
	if _, _, err := f.store.List(f.ctx, "", 0); err == nil {
		t.Fatal("List with limit 0 succeeded")
	}
	s := f.only(t)
	checkSpan(t, s, "user.store.List", map[attribute.Key]attribute.Value{AttrOutcome: attribute.StringValue("error")}, codes.Error)
	if len(s.Events) != 1 || s.Events[0].Name != "exception" {
		t.Errorf("events %+v, want one exception", s.Events)
	}

	ctx, cancel := context.WithCancel(f.ctx)
	cancel()
	if _, err := f.store.Get(ctx, "x"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Get with a cancelled context: %v", err)
	}
	s = f.only(t)
	checkSpan(t, s, "user.store.Get", map[attribute.Key]attribute.Value{AttrOutcome: attribute.StringValue("error")}, codes.Error)
	if s.Status.Description != context.Canceled.Error() {
		t.Errorf("status description %q", s.Status.Description)
	}
}

func TestTracedStoreNilProviderUsesGlobal(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	defer func() {
		if err := tp.Shutdown(context.Background()); err != nil {
			t.Error(err)
		}
	}()
	prev := otel.GetTracerProvider()
	otel.SetTracerProvider(tp)
	defer otel.SetTracerProvider(prev)

	s := NewTracedStore(NewMemoryStore(), nil)
	if _, err := s.Get(context.Background(), "x"); !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
	if spans := exp.GetSpans(); len(spans) != 1 || spans[0].Name != "user.store.Get" {
		t.Errorf("global provider got %d spans", len(spans))
	}
}

func checkSpan(t *testing.T, s tracetest.SpanStub, name string, want map[attribute.Key]attribute.Value, status codes.Code) {
	t.Helper()
	if s.Name != name {
		t.Errorf("span name %q, want %q", s.Name, name)
	}
	got := attrs(s)
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %s = %v, want %v", name, k, got[k].String(), v.String())
		}
	}
	if s.Status.Code != status {
		t.Errorf("%s: status %v, want %v", name, s.Status.Code, status)
	}
}

package user

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// Span attributes of store operations. Only IDs and counts are recorded:
// never usernames, emails or password hashes.
const (
	// AttrUserID is the ID of the user an operation concerns or created.
	AttrUserID = attribute.Key("user.id")
	// AttrOutcome is "ok", "not_found", "already_exists" or "error".
	AttrOutcome = attribute.Key("user.store.outcome")
	// AttrListAfter is the ID a List page starts after ("" for the first).
	AttrListAfter = attribute.Key("user.store.list.after")
	// AttrListLimit is the page size a List asked for.
	AttrListLimit = attribute.Key("user.store.list.limit")
	// AttrListCount is the number of users a List returned.
	AttrListCount = attribute.Key("user.store.list.count")
)

// tracerName is the instrumentation scope of the store's spans.
const tracerName = "github.com/golden-stack/golden/services/user"

// Compile-time check that tracedStore satisfies Store.
var _ Store = (*tracedStore)(nil)

type tracedStore struct {
	next   Store
	tracer trace.Tracer
}

// NewTracedStore returns a Store that wraps each call to s in a span named
// "user.store.<Op>" (user.store.Create, user.store.Get, ...), a child of the
// span in the call's context. ErrNotFound and ErrAlreadyExists are answers,
// not failures: they are recorded in the user.store.outcome attribute and
// leave the span status unset, so error-status queries find only real
// faults (a cancelled context, a broken store). A nil tp uses the global
// tracer provider. NewTracedStore panics if s is nil.
func NewTracedStore(s Store, tp trace.TracerProvider) Store {
	if s == nil {
		panic("user: NewTracedStore: nil Store")
	}
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	return &tracedStore{next: s, tracer: tp.Tracer(tracerName)}
}

func (t *tracedStore) start(ctx context.Context, op string, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	return t.tracer.Start(ctx, "user.store."+op,
		trace.WithSpanKind(trace.SpanKindInternal), trace.WithAttributes(attrs...))
}

// end records err's outcome on span and ends it.
func end(span trace.Span, err error) {
	switch {
	case err == nil:
		span.SetAttributes(AttrOutcome.String("ok"))
	case errors.Is(err, ErrNotFound):
		span.SetAttributes(AttrOutcome.String("not_found"))
	case errors.Is(err, ErrAlreadyExists):
		span.SetAttributes(AttrOutcome.String("already_exists"))
	default:
		span.SetAttributes(AttrOutcome.String("error"))
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// Create implements Store.
func (t *tracedStore) Create(ctx context.Context, u User) (User, error) {
	ctx, span := t.start(ctx, "Create")
	created, err := t.next.Create(ctx, u)
	if err == nil {
		span.SetAttributes(AttrUserID.String(created.ID))
	}
	end(span, err)
	return created, err
}

// Get implements Store.
func (t *tracedStore) Get(ctx context.Context, id string) (User, error) {
	ctx, span := t.start(ctx, "Get", AttrUserID.String(id))
	u, err := t.next.Get(ctx, id)
	end(span, err)
	return u, err
}

// GetByUsername implements Store. The username is not recorded; the ID of
// the user found is.
func (t *tracedStore) GetByUsername(ctx context.Context, username string) (User, error) {
	ctx, span := t.start(ctx, "GetByUsername")
	u, err := t.next.GetByUsername(ctx, username)
	if err == nil {
		span.SetAttributes(AttrUserID.String(u.ID))
	}
	end(span, err)
	return u, err
}

// List implements Store.
func (t *tracedStore) List(ctx context.Context, after string, limit int) ([]User, string, error) {
	ctx, span := t.start(ctx, "List", AttrListAfter.String(after), AttrListLimit.Int(limit))
	users, next, err := t.next.List(ctx, after, limit)
	if err == nil {
		span.SetAttributes(AttrListCount.Int(len(users)))
	}
	end(span, err)
	return users, next, err
}

// Delete implements Store.
func (t *tracedStore) Delete(ctx context.Context, id string) error {
	ctx, span := t.start(ctx, "Delete", AttrUserID.String(id))
	err := t.next.Delete(ctx, id)
	end(span, err)
	return err
}

package jaegerv3

import (
	"maps"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// TestFindTracesRequestOnTheWire: a query survives encoding, with the field
// numbers of query_service.proto (query = 1; in it service_name = 1,
// attributes = 3, start_time_min = 4, start_time_max = 5, search_depth = 8).
func TestFindTracesRequestOnTheWire(t *testing.T) {
	q := Query{Service: "gateway", Attributes: map[string]string{"request_id": "req-1"},
		StartMin: time.Unix(100, 5).UTC(), StartMax: time.Unix(200, 0).UTC(), Limit: 20}
	raw, err := proto.Marshal(NewFindTracesRequest(q))
	if err != nil {
		t.Fatal(err)
	}
	back := New(FindTracesRequest)
	if err := proto.Unmarshal(raw, back); err != nil {
		t.Fatal(err)
	}
	got := ParseFindTracesRequest(back)
	if got.Service != q.Service || !maps.Equal(got.Attributes, q.Attributes) || !got.StartMin.Equal(q.StartMin) ||
		!got.StartMax.Equal(q.StartMax) || got.Limit != q.Limit {
		t.Errorf("round trip: %+v, want %+v", got, q)
	}

	num, typ, n := protowire.ConsumeTag(raw)
	if num != 1 || typ != protowire.BytesType || n <= 0 {
		t.Fatalf("FindTracesRequest starts with field %d type %d, want query = 1", num, typ)
	}
	inner, _ := protowire.ConsumeBytes(raw[n:])
	seen := map[protowire.Number]bool{}
	for len(inner) > 0 {
		num, typ, n := protowire.ConsumeTag(inner)
		if n < 0 {
			t.Fatal("bad encoding")
		}
		seen[num] = true
		m := protowire.ConsumeFieldValue(num, typ, inner[n:])
		inner = inner[n+m:]
	}
	for _, want := range []protowire.Number{1, 3, 4, 5, 8} {
		if !seen[want] {
			t.Errorf("TraceQueryParameters lacks field %d (have %v)", want, seen)
		}
	}
}

// TestGetServicesResponse: services survive encoding.
func TestGetServicesResponse(t *testing.T) {
	raw, err := proto.Marshal(NewGetServicesResponse([]string{"auth", "gateway"}))
	if err != nil {
		t.Fatal(err)
	}
	back := New(GetServicesResponse)
	if err := proto.Unmarshal(raw, back); err != nil {
		t.Fatal(err)
	}
	if got := Services(back); len(got) != 2 || got[0] != "auth" || got[1] != "gateway" {
		t.Errorf("services = %v", got)
	}
}

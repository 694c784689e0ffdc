package canary_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/golden-stack/golden/observability/canary"
)

func TestDecideHeader(t *testing.T) {
	weights := map[string]int{"user": 100}
	for _, tc := range []struct {
		header  string
		want    string
		wantErr error
	}{
		{"always", "*", nil},
		{"never", "", nil},
		{"", "user", nil},
		{"sometimes", "", canary.ErrHeader},
		{"Always", "", canary.ErrHeader}, // the edge lower-cases; Decide is exact
	} {
		r, err := canary.Decide(tc.header, "alice", weights)
		if !errors.Is(err, tc.wantErr) || r.String() != tc.want {
			t.Errorf("Decide(%q) = %q, %v; want %q, %v", tc.header, r, err, tc.want, tc.wantErr)
		}
	}
}

func TestDecideWeightZeroIsStable(t *testing.T) {
	for i := range 1000 {
		r, err := canary.Decide("", fmt.Sprint("caller-", i), map[string]int{"user": 0, "auth": 0})
		if err != nil || !r.IsStable() {
			t.Fatalf("weight 0: route %q, %v", r, err)
		}
	}
}

// At weight N, about N% of distinct callers go to the canary, each caller
// always to the same track, and raising the weight keeps the callers that
// were on the canary there.
func TestDecideShareAndStickiness(t *testing.T) {
	const callers = 10000
	for _, w := range []int{1, 5, 20, 50, 90} {
		canaries := 0
		for i := range callers {
			caller := fmt.Sprintf("user-%05d", i)
			r, _ := canary.Decide("", caller, map[string]int{"user": w})
			again, _ := canary.Decide("", caller, map[string]int{"user": w})
			if r.Canary("user") != again.Canary("user") {
				t.Fatalf("caller %s changed track at a fixed weight", caller)
			}
			if r.Canary("auth") {
				t.Fatalf("caller %s routed to auth's canary, which has no weight", caller)
			}
			if r.Canary("user") {
				canaries++
				higher, _ := canary.Decide("", caller, map[string]int{"user": w + 10})
				if !higher.Canary("user") {
					t.Fatalf("caller %s left the canary when the weight rose from %d to %d", caller, w, w+10)
				}
			}
		}
		// Binomial sd at 10,000 is at most 0.5 points; allow 4 sd.
		share := float64(canaries) * 100 / callers
		if share < float64(w)-2 || share > float64(w)+2 {
			t.Errorf("weight %d: %.2f%% of %d callers on the canary", w, share, callers)
		}
		t.Logf("weight %d: %.2f%% of callers on the canary", w, share)
	}
}

func TestRouteStringRoundTrip(t *testing.T) {
	for _, r := range []canary.Route{{}, canary.All(), canary.To("user"), canary.To("user", "auth", "user")} {
		got, err := canary.ParseRoute(r.String())
		if err != nil || got.String() != r.String() {
			t.Errorf("ParseRoute(%q) = %q, %v", r, got, err)
		}
	}
	if got := canary.To("user", "auth", "user").String(); got != "auth,user" {
		t.Errorf("To(user, auth, user) = %q, want auth,user", got)
	}
}

func TestParseRouteRejects(t *testing.T) {
	long := "a"
	for range 16 {
		long += ",a"
	}
	for _, s := range []string{",", "user,", "User", "us er", "user;auth", long, "**", string(make([]byte, 64))} {
		if r, err := canary.ParseRoute(s); err == nil {
			t.Errorf("ParseRoute(%q) = %q, want an error", s, r)
		}
	}
}

func TestContext(t *testing.T) {
	ctx := context.Background()
	if !canary.FromContext(ctx).IsStable() {
		t.Error("no route in context: want stable")
	}
	ctx = canary.NewContext(ctx, canary.To("user"))
	if r := canary.FromContext(ctx); !r.Canary("user") || r.Canary("auth") {
		t.Errorf("route from context = %q", r)
	}
}

func FuzzParseRoute(f *testing.F) {
	for _, s := range []string{"", "*", "user", "auth,user", "a,b,c", ",,"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := canary.ParseRoute(s)
		if err != nil {
			return
		}
		if again, err := canary.ParseRoute(r.String()); err != nil || again.String() != r.String() {
			t.Fatalf("ParseRoute(%q) = %q, which parses as %q, %v", s, r, again, err)
		}
	})
}

func ExampleDecide() {
	weights := map[string]int{"user": 20}
	tester, _ := canary.Decide("always", "alice", weights)
	pinned, _ := canary.Decide("never", "alice", weights)
	fmt.Println(tester.Canary("user"), tester.Canary("auth"), pinned.Canary("user"))
	// Output: true true false
}

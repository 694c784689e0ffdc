package fault

import "testing"

func TestOptionsNilSafe(t *testing.T) {
	w, err := New(DefaultConfig(), "", "user", nil,
		WithLogger(nil), WithRegisterer(nil), WithClock(nil), WithRand(nil))
	if err != nil {
		t.Fatal(err)
	}
	if w.log == nil || w.now == nil || w.rand == nil {
		t.Errorf("nil options changed the defaults: log %v", w.log)
	}
}

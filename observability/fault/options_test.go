package fault

import "testing"

func TestOptionsNilSafe(t *testing.T) {
	w, err := New(DefaultConfig(), "", "user", nil,
		WithLogger(nil), WithRegisterer(nil), WithClock(nil), WithRand(nil), WithStaleAfter(0))
	if err != nil {
		t.Fatal(err)
	}
	if w.log == nil || w.now == nil || w.rand == nil || w.staleAfter != DefaultStaleAfter {
		t.Errorf("nil and zero options changed the defaults: log %v, staleAfter %v", w.log, w.staleAfter)
	}
}

package backoff

import (
	"testing"
	"time"
)

func TestDelayBounds(t *testing.T) {
	lo, hi := 500*time.Millisecond, 30*time.Second
	for attempt := range 40 {
		want := lo << min(attempt, 10)
		if want > hi {
			want = hi
		}
		for range 200 {
			d := Delay(attempt, lo, hi)
			if d < want/2 || d > want {
				t.Fatalf("Delay(%d) = %s, want within [%s, %s]", attempt, d, want/2, want)
			}
		}
	}
	// Jitter: repeated draws are not all equal.
	first := Delay(3, lo, hi)
	varied := false
	for range 100 {
		if Delay(3, lo, hi) != first {
			varied = true
			break
		}
	}
	if !varied {
		t.Error("Delay(3) returned the same value 100 times: no jitter")
	}
	if d := Delay(1000, lo, hi); d > hi {
		t.Errorf("Delay(1000) = %s, above the cap %s", d, hi)
	}
}

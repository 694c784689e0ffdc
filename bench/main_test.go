package bench

import (
	"os"
	"testing"
)

// TestMain lets StartGELFSink run this test binary as the sink's process.
func TestMain(m *testing.M) {
	ServeGELFSinkIfChild()
	os.Exit(m.Run())
}

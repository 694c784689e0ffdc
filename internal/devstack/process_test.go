package devstack

import "testing"

// TestFreePortsSkipsTaken marks half of all ports taken (p%4 < 2, which
// spreads over whatever range the kernel hands out): every port returned
// must be from the other half, and none twice.
func TestFreePortsSkipsTaken(t *testing.T) {
	taken := map[int]bool{}
	for p := 1; p <= 65535; p++ {
		if p%4 < 2 {
			taken[p] = true
		}
	}
	ports, err := freePorts(5, taken)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, p := range ports {
		if taken[p] || seen[p] {
			t.Errorf("port %d returned: taken or twice (%v)", p, ports)
		}
		seen[p] = true
	}
	if len(ports) != 5 {
		t.Errorf("%d ports, want 5", len(ports))
	}

	for p := 1; p <= 65535; p++ {
		taken[p] = true
	}
	if ports, err := freePorts(1, taken); err == nil {
		t.Errorf("every port taken, yet freePorts returned %v", ports)
	}
}

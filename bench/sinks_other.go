//go:build !linux

package bench

import "os/exec"

// dieWithParent does nothing where the kernel cannot tie a child's life to
// its parent's; the caller's Stop is the only teardown there.
func dieWithParent(*exec.Cmd) {}

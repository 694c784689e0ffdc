//go:build unix

package devstack

import (
	"os/exec"
	"syscall"
)

// detach puts cmd in its own process group, so that the Ctrl-C a terminal
// sends to golden's group does not reach the backend: golden stops it
// itself, after the services have drained into it.
func detach(cmd *exec.Cmd) { cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} }

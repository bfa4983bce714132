//go:build !windows

package tpm2test

import (
	"os/exec"
	"syscall"
)

// ownGroup starts cmd in a process group of its own, so nothing it starts
// outlives the test.
func ownGroup(cmd *exec.Cmd) { cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} }

// stop signals cmd's process group: SIGTERM, or SIGKILL when kill is set.
func stop(cmd *exec.Cmd, kill bool) {
	sig := syscall.SIGTERM
	if kill {
		sig = syscall.SIGKILL
	}
	_ = syscall.Kill(-cmd.Process.Pid, sig)
}

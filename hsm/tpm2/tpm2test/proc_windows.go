package tpm2test

import "os/exec"

// ownGroup: swtpm and tpm2-abrmd are Linux programs; on Windows the helper
// only compiles.
func ownGroup(*exec.Cmd) {}

func stop(cmd *exec.Cmd, _ bool) { _ = cmd.Process.Kill() }

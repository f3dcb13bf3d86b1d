package e2e

import (
	"os/exec"
	"syscall"
)

// orphanProof makes the kernel kill cmd if the test process dies first
// (a test timeout panics without running t.Cleanup).
func orphanProof(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

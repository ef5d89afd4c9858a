package testenv

import (
	"os/exec"
	"syscall"
)

// dieWithParent has the kernel kill the server if the test binary dies without running its cleanups
// (a panic, a -timeout), so no MinIO outlives its test holding a port.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

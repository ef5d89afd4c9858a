//go:build !linux

package testenv

import "os/exec"

// dieWithParent is a no-op where the kernel offers no parent-death signal; t.Cleanup still stops the
// server when the test ends normally.
func dieWithParent(*exec.Cmd) {}

//go:build !linux

package e2e

import "os/exec"

// orphanProof does nothing where the kernel has no parent-death signal.
func orphanProof(*exec.Cmd) {}

// Package cputime reads the CPU time the process has used, for benchmarks
// that report CPU per operation: unlike wall time it hardly moves with the
// load other processes put on a shared machine, and it includes the HSM's
// (SoftHSM2 runs in the process).
package cputime

import (
	"syscall"
	"time"
)

// Process returns the user and system CPU time this process has used; 0 if
// the kernel does not say.
func Process() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

//go:build unix

package cluster

import (
	"syscall"
	"time"
)

// processCPUTime returns the CPU time, user and system, the process has
// used so far; the wall clock if the system will not say.
func processCPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return time.Duration(time.Now().UnixNano())
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

package main

import "syscall"

// peakRSSMB returns the process's peak resident memory in MiB.
func peakRSSMB() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return -1
	}
	return int64(ru.Maxrss) / 1024 // Linux reports KiB
}

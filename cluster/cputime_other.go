//go:build !unix

package cluster

import "time"

// processCPUTime is the wall clock where the process's CPU time is not
// available: a slowed worker then sleeps in proportion to its wall time.
func processCPUTime() time.Duration { return time.Duration(time.Now().UnixNano()) }

package impersonation

import (
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// processCPU is the CPU time of this process so far (every thread).
func processCPU(tb testing.TB) time.Duration { return clockCPU(tb, unix.CLOCK_PROCESS_CPUTIME_ID) }

// threadCPU is the CPU time of the calling thread so far (lock the goroutine to it).
func threadCPU(tb testing.TB) time.Duration { return clockCPU(tb, unix.CLOCK_THREAD_CPUTIME_ID) }

func clockCPU(tb testing.TB, clock int32) time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(clock, &ts); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ts.Nano())
}

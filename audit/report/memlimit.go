package report

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// LimitMemory runs what follows under the soft memory limit base
// (debug.SetMemoryLimit), raised whenever the live heap needs more, and
// returns the function that puts the previous limit back.
//
// Why it follows the heap: a limit below what the report holds live does
// not keep the process small, it makes the collector run back to back,
// up to the half of the CPU the runtime allows it. Measured on 2026-12-03
// on the 10M-event database (50,000 keys; the rotation model alone holds
// 156 MiB, its 6,310-page PDF 500 MiB more): under a fixed 112 MiB the
// rotation report took 140 s, 47 % of it marking, and 589 collections;
// the collector's own pacing at GOGC=50 took 32 s. Below the base nothing
// changes: a report on a million events stays as small as before.
//
// The limit is moved after every collection (a finalizer on a sentinel
// runs once per cycle), so it never lags the heap by more than one cycle.
func LimitMemory(base int64) (restore func()) {
	prev := debug.SetMemoryLimit(base)
	var mu sync.Mutex // a collection's update and restore, one at a time
	stopped := false
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	var arm func()
	arm = func() {
		s := new(gcSentinel)
		runtime.SetFinalizer(s, func(*gcSentinel) {
			mu.Lock()
			defer mu.Unlock()
			if stopped {
				return
			}
			metrics.Read(sample)
			if sample[0].Value.Kind() == metrics.KindUint64 {
				debug.SetMemoryLimit(limitFor(base, int64(sample[0].Value.Uint64())))
			}
			arm()
		})
	}
	arm()
	return func() {
		mu.Lock()
		defer mu.Unlock()
		stopped = true
		debug.SetMemoryLimit(prev)
	}
}

// gcSentinel is allocated for its finalizer only; its size keeps it out
// of the tiny allocator, whose blocks are freed together with their
// neighbours (a finalizer there may never run).
type gcSentinel struct{ _ [32]byte }

// limitFor is the limit for a live heap: base, or the live heap and half
// again (the collector's pacing at GOGC=50) when that is more.
func limitFor(base, live int64) int64 {
	return max(base, live+live/2)
}

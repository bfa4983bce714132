package report

import (
	"math"
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

func TestLimitFor(t *testing.T) {
	const mib = 1 << 20
	for _, c := range []struct{ base, live, want int64 }{
		{112 * mib, 0, 112 * mib},
		{112 * mib, 40 * mib, 112 * mib},  // a small report: the base
		{112 * mib, 74 * mib, 112 * mib},  // live and half again is 111 MiB
		{112 * mib, 100 * mib, 150 * mib}, // past it: the heap and half again
		{112 * mib, 600 * mib, 900 * mib},
	} {
		if got := limitFor(c.base, c.live); got != c.want {
			t.Errorf("limitFor(%d MiB, %d MiB) = %d MiB, want %d MiB", c.base/mib, c.live/mib, got/mib, c.want/mib)
		}
	}
}

// collections allocates garbage beside a live heap far above a 4 MiB
// limit and returns how many collections it cost, with the limit fixed
// or following the heap.
func collections(t *testing.T, follow bool) (cycles uint32, limitAfter, limitRestored int64) {
	const mib = 1 << 20
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(math.MaxInt64))
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	live := make([][]byte, 48)
	for i := range live {
		live[i] = make([]byte, mib)
		live[i][0] = 1
	}
	runtime.GC()
	var restore func()
	if follow {
		restore = LimitMemory(4 * mib)
	} else {
		prev := debug.SetMemoryLimit(4 * mib)
		restore = func() { debug.SetMemoryLimit(prev) }
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	var sink []byte
	for range 4096 { // 256 MiB of garbage
		sink = make([]byte, 64<<10)
		sink[0] = 1
	}
	runtime.ReadMemStats(&after)
	limitAfter = debug.SetMemoryLimit(-1)
	restore()
	runtime.GC() // a collection after restore must not move the limit again
	limitRestored = debug.SetMemoryLimit(-1)
	runtime.KeepAlive(live)
	runtime.KeepAlive(sink)
	return after.NumGC - before.NumGC, limitAfter, limitRestored
}

// waitLimit waits (up to 5 s: the limit moves in a finalizer, after a
// collection) until the soft memory limit satisfies ok, and returns it.
func waitLimit(ok func(int64) bool) int64 {
	var lim int64
	for range 500 {
		runtime.GC()
		if lim = debug.SetMemoryLimit(-1); ok(lim) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	return lim
}

// TestLimitMemoryFollowsTheLiveHeap: the limit rises over a live heap
// above the base, comes back to the base when the heap is freed, and is
// the previous one again after restore, whatever collections follow.
func TestLimitMemoryFollowsTheLiveHeap(t *testing.T) {
	const mib = 1 << 20
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(math.MaxInt64))
	live := make([][]byte, 48)
	for i := range live {
		live[i] = make([]byte, mib)
		live[i][0] = 1
	}
	restore := LimitMemory(4 * mib)
	if lim := waitLimit(func(l int64) bool { return l >= 72*mib }); lim < 72*mib {
		restore()
		t.Fatalf("limit with 48 MiB live over a 4 MiB base: %d MiB, want the heap and half again (72 MiB or more)", lim/mib)
	}
	runtime.KeepAlive(live)
	live = nil
	if lim := waitLimit(func(l int64) bool { return l == 4*mib }); lim != 4*mib {
		restore()
		t.Fatalf("limit once the heap is freed: %d MiB, want the 4 MiB base", lim/mib)
	}
	restore()
	var lim int64
	for range 5 { // a finalizer armed before restore runs after one of these
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
		lim = debug.SetMemoryLimit(-1)
	}
	if lim != math.MaxInt64 {
		t.Errorf("limit after restore and collections: %d, want the previous one (none)", lim)
	}
}

// TestLimitMemorySparesCollections: 256 MiB of garbage beside 48 MiB
// live costs fewer collections under LimitMemory(4 MiB) than under a
// fixed 4 MiB limit, which makes the collector run back to back (how many
// depends on the CPU the runtime lets it take: 34 to 325 measured here,
// against 13 to 19 following).
func TestLimitMemorySparesCollections(t *testing.T) {
	fixed, _, _ := collections(t, false)
	followed, limit, _ := collections(t, true)
	t.Logf("collections for 256 MiB of garbage beside 48 MiB live: %d under a fixed 4 MiB limit, %d following (limit then %d MiB)",
		fixed, followed, limit>>20)
	if followed >= fixed {
		t.Errorf("following the live heap: %d collections, want fewer than under the fixed limit (%d)", followed, fixed)
	}
}

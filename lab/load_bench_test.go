package lab

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync/atomic"
	"testing"

	"github.com/nsnet/nsnet/bench"
)

// BenchmarkLoad10000 reads the lab file nsnet bench makes for 10,000 nodes
// (ptp: the host node with 10,000 routes, 10,000 nodes, 10,000 links), the
// way lab.Load does once the file is read. Besides time and allocations it
// reports peak-live-MB: the largest live heap the collector found during
// one Parse run with collections made frequent (GOGC=5), which is what
// bounds nsnet's footprint under its memory limit.
func BenchmarkLoad10000(b *testing.B) {
	data := bench.LabYAML(bench.Workload{Mode: bench.PTP, N: 10000, Prefix: "b"})
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	peak := peakLive(b, func() {
		if _, err := Parse("bench.yaml", data); err != nil {
			b.Fatal(err)
		}
	})
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Parse("bench.yaml", data); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(peak)/(1<<20), "peak-live-MB")
}

// peakLive runs fn with frequent collections and returns the largest live
// heap a collection found while it ran, less what was live before. A
// finalizer that re-arms itself runs once after every collection and reads
// the live heap that collection marked.
func peakLive(tb testing.TB, fn func()) uint64 {
	tb.Helper()
	runtime.GC()
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(sample)
	base := sample[0].Value.Uint64()
	var peak atomic.Uint64
	var stop atomic.Bool
	done := make(chan struct{})
	var arm func()
	arm = func() {
		s := new([16]byte)
		runtime.SetFinalizer(s, func(*[16]byte) {
			smp := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
			metrics.Read(smp)
			if v := smp[0].Value.Uint64(); v > peak.Load() {
				peak.Store(v)
			}
			if stop.Load() {
				close(done)
				return
			}
			arm()
		})
	}
	old := debug.SetGCPercent(5)
	arm()
	fn()
	stop.Store(true)
	// Collections until the finalizer has seen one after fn's end.
	for {
		runtime.GC()
		select {
		case <-done:
			debug.SetGCPercent(old)
			if p := peak.Load(); p > base {
				return p - base
			}
			return 0
		default:
		}
		runtime.Gosched()
	}
}

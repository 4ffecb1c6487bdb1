package nsnettest_test

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/nsnet/nsnet/nsnettest"
	"github.com/nsnet/nsnet/probe"
)

// BenchmarkFaultFigures measures each fault through a lab's own link with
// the built-in probes, beside the link's figures without it, and reports
// them as metrics (run with -benchtime=1x: each is one measurement, not a
// timing). README's table of fault figures comes from it; the issue's
// targets are in the comments.
func BenchmarkFaultFigures(b *testing.B) {
	l := nsnettest.Up(b, pairLab)
	ctx := context.Background()
	series := func(b *testing.B, n int, every time.Duration) probe.Stats {
		b.Helper()
		st, err := l.Series(ctx, "client", "server", probe.SeriesOptions{Count: n, Interval: every, Timeout: 2 * time.Second, KeepRTTs: true})
		if err != nil {
			b.Fatal(err)
		}
		return st
	}
	ms := func(d time.Duration) float64 { return float64(d) / 1e6 }
	base := series(b, 1000, 2*time.Millisecond)

	// Target: mean RTT within 1.5 ms of base + 20 ms, sd <= 1 ms.
	b.Run("delay=20ms", func(b *testing.B) {
		for range b.N {
			l.Impair(b, "client", "eth0", nsnettest.Fault{Delay: 20 * time.Millisecond})
			st := series(b, 1000, 2*time.Millisecond)
			b.ReportMetric(ms(base.RTT.Mean), "base_ms")
			b.ReportMetric(ms(st.RTT.Mean), "mean_ms")
			b.ReportMetric(ms(st.RTT.Mean-base.RTT.Mean-20*time.Millisecond), "excess_ms")
			b.ReportMetric(ms(st.RTT.StdDev), "sd_ms")
			b.ReportMetric(ms(st.RTT.P50), "p50_ms")
			b.ReportMetric(ms(st.RTT.P99), "p99_ms")
			b.ReportMetric(100*st.Loss(), "loss_%")
		}
	})
	// Target: sd within 20% of the theoretical (uniform on ±5 ms: 5/√3).
	b.Run("delay=20ms,jitter=5ms", func(b *testing.B) {
		for range b.N {
			l.Impair(b, "client", "eth0", nsnettest.Fault{Delay: 20 * time.Millisecond, Jitter: 5 * time.Millisecond})
			st := series(b, 2000, 2*time.Millisecond)
			theory := 5 / math.Sqrt(3)
			b.ReportMetric(ms(st.RTT.Mean), "mean_ms")
			b.ReportMetric(ms(st.RTT.StdDev), "sd_ms")
			b.ReportMetric(theory, "theory_sd_ms")
			b.ReportMetric(100*(ms(st.RTT.StdDev)/theory-1), "sd_off_%")
		}
	})
	// Target: within ±1.5 points over 10,000 probes.
	b.Run("loss=10%", func(b *testing.B) {
		for range b.N {
			l.Impair(b, "client", "eth0", nsnettest.Fault{Loss: 0.1})
			st := series(b, 10000, 200*time.Microsecond)
			b.ReportMetric(100*st.Loss(), "loss_%")
		}
	})
	// Target: within ±2 points.
	b.Run("duplicate=10%", func(b *testing.B) {
		for range b.N {
			l.Impair(b, "client", "eth0", nsnettest.Fault{Duplicate: 0.1})
			st := series(b, 10000, 200*time.Microsecond)
			b.ReportMetric(100*st.DuplicateRate(), "duplicate_%")
			b.ReportMetric(100*st.Loss(), "loss_%")
		}
	})
	// Reorder 25% with delay 10 ms: a quarter of the packets go at once.
	// The share measured is the replies that came back far sooner than
	// the delay (target: within ±2 points); "reordered" counts replies that
	// came after a later request's, which with requests 1 ms apart is most
	// of the delayed ones.
	b.Run("delay=10ms,reorder=25%", func(b *testing.B) {
		for range b.N {
			l.Impair(b, "client", "eth0", nsnettest.Fault{Delay: 10 * time.Millisecond, Reorder: 0.25})
			st := series(b, 10000, 500*time.Microsecond)
			fast := 0
			for _, r := range st.RTTs {
				if r < 5*time.Millisecond {
					fast++
				}
			}
			b.ReportMetric(100*float64(fast)/float64(max(1, st.Received)), "immediate_%")
			b.ReportMetric(100*st.ReorderRate(), "reordered_%")
			b.ReportMetric(100*st.Loss(), "loss_%")
		}
	})
	// Target: TCP throughput 90-102% of the rate.
	for _, rate := range []uint64{10e6, 100e6} {
		b.Run("rate="+map[uint64]string{10e6: "10mbit", 100e6: "100mbit"}[rate], func(b *testing.B) {
			for range b.N {
				l.Impair(b, "client", "eth0", nsnettest.Fault{Rate: rate})
				tp, err := l.Throughput(ctx, "client", "server", 5*time.Second)
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(tp.BitsPerSecond()/1e6, "mbit/s")
				b.ReportMetric(100*tp.BitsPerSecond()/float64(rate), "of_rate_%")
			}
		})
	}
}

package probe_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/nsnet/nsnet/probe"
)

func TestSeriesCountsEveryReply(t *testing.T) {
	a, _ := pair(t)
	for _, dst := range []string{"10.99.0.2", "fd99::2"} {
		p, err := probe.NewPinger(a, netip.MustParseAddr(dst))
		if err != nil {
			t.Fatal(err)
		}
		// Far more requests in flight than a one-at-a-time ping allows.
		st := p.Series(context.Background(), probe.SeriesOptions{Count: 2000, Interval: 50 * time.Microsecond, Timeout: time.Second})
		p.Close()
		if st.Sent != 2000 || st.Received != 2000 || st.Duplicates != 0 || st.Errors != 0 || st.Loss() != 0 {
			t.Errorf("%s: %+v", dst, st)
		}
		r := st.RTT
		if r.Min <= 0 || r.Min > r.P50 || r.P50 > r.P90 || r.P90 > r.P99 || r.P99 > r.Max || r.Mean < r.Min || r.Mean > r.Max {
			t.Errorf("%s: rtt figures out of order: %+v", dst, r)
		}
	}
}

func TestSeriesWithoutAnswerIsAllLoss(t *testing.T) {
	a, _ := pair(t)
	// On the link's subnet, but nobody has it: no neighbour answers.
	p, err := probe.NewPinger(a, netip.MustParseAddr("10.99.0.77"))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	st := p.Series(context.Background(), probe.SeriesOptions{Count: 20, Interval: time.Millisecond, Timeout: 200 * time.Millisecond})
	if st.Sent != 20 || st.Received != 0 || st.Loss() != 1 {
		t.Errorf("%+v", st)
	}
}

func TestSummarize(t *testing.T) {
	var rtts []time.Duration
	for i := 100; i >= 1; i-- {
		rtts = append(rtts, time.Duration(i)*time.Millisecond)
	}
	s := probe.Summarize(rtts)
	ms := time.Millisecond
	if s.Min != ms || s.Max != 100*ms || s.P50 != 50*ms || s.P90 != 90*ms || s.P99 != 99*ms || s.Mean != 50500*time.Microsecond {
		t.Errorf("%+v", s)
	}
	// Population deviation of 1..100 is sqrt((100²-1)/12) = 28.866 ms.
	if d := s.StdDev - 28866*time.Microsecond; d < -time.Microsecond || d > time.Microsecond {
		t.Errorf("stddev %v", s.StdDev)
	}
	if (probe.Summarize(nil) != probe.RTTStats{}) {
		t.Error("empty series has figures")
	}
}

func TestThroughputThroughAVeth(t *testing.T) {
	a, b := pair(t)
	for _, dst := range []string{"10.99.0.2", "fd99::2"} {
		r, err := probe.MeasureThroughput(context.Background(), a, b, netip.MustParseAddr(dst), probe.ThroughputOptions{Duration: 500 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		// A veth moves gigabits; anything under 50 Mbit/s is a broken probe.
		// Elapsed is the receiver's, from its first byte to its last: a
		// little under the sender's 500 ms (499.9 ms seen under load).
		if r.BitsPerSecond() < 50e6 || r.Elapsed < 450*time.Millisecond || len(r.Intervals) == 0 {
			t.Errorf("%s: %.0f bit/s over %v, %d intervals", dst, r.BitsPerSecond(), r.Elapsed, len(r.Intervals))
		}
		var sum int64
		for _, iv := range r.Intervals {
			sum += iv.Bytes
		}
		if sum != r.Bytes {
			t.Errorf("%s: intervals add up to %d of %d bytes", dst, sum, r.Bytes)
		}
	}
}

func TestThroughputNothingThere(t *testing.T) {
	a, b := pair(t)
	// The server end must be an address of the server's namespace.
	_, err := probe.MeasureThroughput(context.Background(), a, b, netip.MustParseAddr("10.99.0.1"), probe.ThroughputOptions{Duration: 100 * time.Millisecond})
	if err == nil {
		t.Error("listened on an address the server does not have")
	}
}

package probe

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"slices"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// SeriesOptions shape a run of echo requests.
type SeriesOptions struct {
	// Count is how many requests to send (default 100).
	Count int
	// Interval is the time between sends (default 10ms). Sends follow a
	// fixed schedule, so a late send does not shift the ones after it, and
	// replies are read by another goroutine: an interval far shorter than
	// the round trip is fine, which is what makes 10,000 probes for a loss
	// figure take seconds rather than hours.
	Interval time.Duration
	// Timeout is how long a reply may take after its request (default 1s).
	// A reply later than that counts as lost, as ping -W does.
	Timeout time.Duration
	// KeepRTTs keeps every round trip in Stats.RTTs, in arrival order.
	KeepRTTs bool
}

// Stats summarises a series of echo requests.
type Stats struct {
	Sent       int `json:"sent"`
	Received   int `json:"received"` // distinct requests answered in time
	Duplicates int `json:"duplicates"`
	// Reordered counts replies that came after a reply to a later request.
	Reordered int `json:"reordered"`
	// Errors counts requests the kernel refused or answered with an ICMP
	// error (no route, host unreachable); they are lost too.
	Errors int `json:"errors"`
	// LastErr is the last of those errors.
	LastErr error         `json:"-"`
	RTT     RTTStats      `json:"rtt"`
	Elapsed time.Duration `json:"elapsed_ns"`
	// RTTs are the round trips, with SeriesOptions.KeepRTTs.
	RTTs []time.Duration `json:"-"`
}

// Loss is the fraction of requests not answered in time (0.1 is 10%).
func (s Stats) Loss() float64 {
	if s.Sent == 0 {
		return 0
	}
	return float64(s.Sent-s.Received) / float64(s.Sent)
}

// DuplicateRate is duplicates per answered request.
func (s Stats) DuplicateRate() float64 {
	if s.Received == 0 {
		return 0
	}
	return float64(s.Duplicates) / float64(s.Received)
}

// ReorderRate is reordered replies per answered request.
func (s Stats) ReorderRate() float64 {
	if s.Received == 0 {
		return 0
	}
	return float64(s.Reordered) / float64(s.Received)
}

// RTTStats are round-trip figures over the replies of a series.
type RTTStats struct {
	Min    time.Duration `json:"min_ns"`
	Mean   time.Duration `json:"mean_ns"`
	Max    time.Duration `json:"max_ns"`
	StdDev time.Duration `json:"stddev_ns"` // population standard deviation, as ping's mdev
	P50    time.Duration `json:"p50_ns"`
	P90    time.Duration `json:"p90_ns"`
	P99    time.Duration `json:"p99_ns"`
}

// Summarize computes RTTStats; rtts is sorted in place.
func Summarize(rtts []time.Duration) RTTStats {
	if len(rtts) == 0 {
		return RTTStats{}
	}
	slices.Sort(rtts)
	var sum float64
	for _, r := range rtts {
		sum += float64(r)
	}
	mean := sum / float64(len(rtts))
	var sq float64
	for _, r := range rtts {
		d := float64(r) - mean
		sq += d * d
	}
	pct := func(p float64) time.Duration {
		// Nearest rank: the smallest value with at least p of the samples
		// at or below it.
		i := int(math.Ceil(p*float64(len(rtts)))) - 1
		return rtts[max(0, min(i, len(rtts)-1))]
	}
	return RTTStats{
		Min: rtts[0], Max: rtts[len(rtts)-1],
		Mean:   time.Duration(mean),
		StdDev: time.Duration(math.Sqrt(sq / float64(len(rtts)))),
		P50:    pct(0.50), P90: pct(0.90), P99: pct(0.99),
	}
}

// Series sends opt.Count echo requests on the pinger's socket, one every
// opt.Interval, while another goroutine reads the replies, and returns what
// came back. It stops early, with the figures so far, when ctx ends.
func (p *Pinger) Series(ctx context.Context, opt SeriesOptions) Stats {
	if opt.Count <= 0 {
		opt.Count = 100
	}
	if opt.Interval <= 0 {
		opt.Interval = 10 * time.Millisecond
	}
	if opt.Timeout <= 0 {
		opt.Timeout = time.Second
	}
	// A burst of replies must not overflow the socket while the reader is
	// scheduled out.
	p.rc.Control(func(fd uintptr) {
		unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, 4<<20)
	})
	var (
		mu     sync.Mutex
		sentAt = make([]time.Time, opt.Count)
		got    = make([]uint8, opt.Count) // replies seen per request
		rtts   = make([]time.Duration, 0, opt.Count)
		st     Stats
		sent   int // requests sent so far
		high   = -1
		// slowest is the longest round trip so far.
		slowest time.Duration
	)
	// The wire carries 16 bits of sequence: a reply's number is the latest
	// request sent with those low bits, which is right as long as fewer
	// than 65,536 requests go out within one timeout.
	index := func(seq uint16) int {
		if sent == 0 {
			return -1
		}
		last := sent - 1
		k := last - int(uint16(last)-seq)
		if k < 0 {
			return -1
		}
		return k
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			n, err := p.read(buf)
			now := time.Now()
			if err != nil {
				if errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, os.ErrClosed) {
					return
				}
				mu.Lock()
				st.Errors++
				st.LastErr = err
				mu.Unlock()
				continue
			}
			seq, ok := p.reply(buf[:n])
			if !ok {
				continue
			}
			mu.Lock()
			k := index(seq)
			if k >= 0 {
				rtt := now.Sub(sentAt[k])
				switch {
				case rtt > opt.Timeout:
					// Too late: lost, as for ping -W.
				case got[k] > 0:
					st.Duplicates++
				default:
					got[k] = 1
					st.Received++
					rtts = append(rtts, rtt)
					slowest = max(slowest, rtt)
					if k < high {
						st.Reordered++
					}
					high = max(high, k)
				}
			}
			mu.Unlock()
		}
	}()
	start := time.Now()
	msg := p.request(0)
	for i := 0; i < opt.Count; i++ {
		if wait := time.Until(start.Add(time.Duration(i) * opt.Interval)); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
			case <-t.C:
			}
			t.Stop()
		}
		if ctx.Err() != nil {
			break
		}
		p.setSeq(msg, uint16(i))
		mu.Lock()
		sentAt[i] = time.Now()
		sent = i + 1
		mu.Unlock()
		if err := p.send(msg); err != nil {
			mu.Lock()
			st.Errors++
			st.LastErr = err
			mu.Unlock()
		}
	}
	// Wait out the last request's timeout, then stop the reader; when every
	// request is answered before that, wait only long enough for stray
	// duplicates (twice the slowest round trip).
	last := time.Now()
	p.f.SetReadDeadline(last.Add(opt.Timeout))
	tick := time.NewTicker(2 * time.Millisecond)
wait:
	for {
		select {
		case <-done:
			break wait
		case <-tick.C:
			mu.Lock()
			all := st.Received == sent
			slow := slowest
			mu.Unlock()
			if all {
				dl := time.Now().Add(2*slow + time.Millisecond)
				if end := last.Add(opt.Timeout); end.Before(dl) {
					dl = end
				}
				p.f.SetReadDeadline(dl)
				<-done
				break wait
			}
		}
	}
	tick.Stop()
	p.f.SetReadDeadline(time.Time{})
	mu.Lock()
	defer mu.Unlock()
	st.Sent = sent
	st.Elapsed = time.Since(start)
	if opt.KeepRTTs {
		st.RTTs = slices.Clone(rtts)
	}
	st.RTT = Summarize(rtts)
	return st
}

// request builds an echo request with seq; setSeq renumbers it.
func (p *Pinger) request(seq uint16) []byte {
	msg := make([]byte, 8+PayloadSize)
	if p.v6 {
		msg[0] = 128
	} else {
		msg[0] = 8
	}
	binary.BigEndian.PutUint16(msg[4:], p.id)
	for i := 8; i < len(msg); i++ {
		msg[i] = byte(i)
	}
	p.setSeq(msg, seq)
	return msg
}

func (p *Pinger) setSeq(msg []byte, seq uint16) {
	binary.BigEndian.PutUint16(msg[6:], seq)
	if !p.v6 {
		msg[2], msg[3] = 0, 0
		binary.BigEndian.PutUint16(msg[2:], checksum(msg))
	}
}

func (p *Pinger) send(msg []byte) error {
	var werr error
	err := p.rc.Write(func(fd uintptr) bool {
		werr = unix.Send(int(fd), msg, 0)
		return !errors.Is(werr, unix.EAGAIN)
	})
	if err == nil {
		err = werr
	}
	if err != nil {
		return &OpError{Op: "send", Addr: p.dst, Err: err}
	}
	return nil
}

func (p *Pinger) read(buf []byte) (int, error) {
	var n int
	var rerr error
	err := p.rc.Read(func(fd uintptr) bool {
		n, _, rerr = unix.Recvfrom(int(fd), buf, 0)
		return !errors.Is(rerr, unix.EAGAIN)
	})
	if err == nil {
		err = rerr
	}
	return n, err
}

// reply returns the sequence number of pkt when it is an echo reply to this
// pinger.
func (p *Pinger) reply(pkt []byte) (uint16, bool) {
	if !p.v6 && p.raw {
		if len(pkt) < 20 {
			return 0, false
		}
		ihl := int(pkt[0]&0x0f) * 4
		if len(pkt) < ihl+8 {
			return 0, false
		}
		pkt = pkt[ihl:]
	}
	if len(pkt) < 8 {
		return 0, false
	}
	want := byte(0)
	if p.v6 {
		want = 129
	}
	if pkt[0] != want {
		return 0, false
	}
	if p.raw && binary.BigEndian.Uint16(pkt[4:]) != p.id {
		return 0, false
	}
	return binary.BigEndian.Uint16(pkt[6:]), true
}

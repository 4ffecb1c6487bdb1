package probe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/nsnet/nsnet/netns"
)

// ThroughputOptions shape a TCP throughput run.
type ThroughputOptions struct {
	// Duration is how long the client sends (default 10s, as iperf).
	Duration time.Duration
	// Port is the server's port; 0 picks a free one.
	Port int
	// ConnectTimeout bounds the connection (default 3s).
	ConnectTimeout time.Duration
}

// Interval is one second (or the last part of one) of a throughput run, as
// the receiver counted it.
type Interval struct {
	Start time.Duration `json:"start_ns"`
	End   time.Duration `json:"end_ns"`
	Bytes int64         `json:"bytes"`
}

// BitsPerSecond is the interval's rate.
func (i Interval) BitsPerSecond() float64 { return rate(i.Bytes, i.End-i.Start) }

// Throughput is what a TCP throughput run measured at the receiver: the
// bytes that arrived, from the accepted connection to the sender's end of
// stream, so data still queued when the sender stops (in a shaper, say) is
// counted at the time it arrives.
type Throughput struct {
	Bytes     int64         `json:"bytes"`
	Elapsed   time.Duration `json:"elapsed_ns"`
	Intervals []Interval    `json:"intervals"`
}

// BitsPerSecond is the run's mean rate.
func (t Throughput) BitsPerSecond() float64 { return rate(t.Bytes, t.Elapsed) }

func rate(b int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(b) * 8 / d.Seconds()
}

// MeasureThroughput runs a TCP bulk transfer from the namespace from to the
// address to, which must be an address of the namespace server: nsnet runs
// the receiving end itself there (like iperf -s, but for this one run, and
// with its socket made in that namespace), so nothing needs to be listening
// beforehand.
func MeasureThroughput(ctx context.Context, from, server *netns.NS, to netip.Addr, opt ThroughputOptions) (Throughput, error) {
	if opt.Duration <= 0 {
		opt.Duration = 10 * time.Second
	}
	if opt.ConnectTimeout <= 0 {
		opt.ConnectTimeout = 3 * time.Second
	}
	ln, err := Listen(server, "tcp", netip.AddrPortFrom(to, uint16(opt.Port)).String())
	if err != nil {
		return Throughput{}, &OpError{Op: "listen", Addr: to, Err: err}
	}
	defer ln.Close()
	type result struct {
		t   Throughput
		err error
	}
	rcv := make(chan result, 1)
	go func() {
		t, err := receive(ln, opt.Duration+opt.ConnectTimeout+30*time.Second)
		rcv <- result{t, err}
	}()
	addr := ln.Addr().(*net.TCPAddr).AddrPort()
	c, err := DialContext(ctx, from, &net.Dialer{Timeout: opt.ConnectTimeout}, "tcp", netip.AddrPortFrom(to, addr.Port()).String())
	if err != nil {
		return Throughput{}, err
	}
	serr := send(ctx, c.(*net.TCPConn), opt.Duration)
	var r result
	select {
	case r = <-rcv:
	case <-ctx.Done():
		c.Close()
		ln.Close()
		r = <-rcv
		if r.err == nil {
			r.err = ctx.Err()
		}
	}
	c.Close()
	if serr != nil && r.err == nil {
		r.err = &OpError{Op: "send", Addr: to, Err: serr}
	}
	return r.t, r.err
}

// send writes for d, then closes its half so the receiver sees the end.
func send(ctx context.Context, c *net.TCPConn, d time.Duration) error {
	buf := make([]byte, 128<<10)
	end := time.Now().Add(d)
	c.SetWriteDeadline(end)
	stop := context.AfterFunc(ctx, func() { c.SetWriteDeadline(time.Unix(1, 0)) })
	defer stop()
	for {
		_, err := c.Write(buf)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return c.CloseWrite()
		}
		if err != nil {
			return err
		}
	}
}

// receive accepts one connection and counts what arrives until end of
// stream, in one-second intervals.
func receive(ln net.Listener, limit time.Duration) (Throughput, error) {
	if tl, ok := ln.(*net.TCPListener); ok {
		tl.SetDeadline(time.Now().Add(limit))
	}
	c, err := ln.Accept()
	if err != nil {
		return Throughput{}, &OpError{Op: "accept", Err: err}
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(limit))
	start := time.Now()
	var t Throughput
	cur := Interval{}
	buf := make([]byte, 256<<10)
	for {
		n, err := c.Read(buf)
		now := time.Since(start)
		for now >= cur.Start+time.Second {
			cur.End = cur.Start + time.Second
			t.Intervals = append(t.Intervals, cur)
			cur = Interval{Start: cur.End}
		}
		cur.Bytes += int64(n)
		t.Bytes += int64(n)
		if errors.Is(err, io.EOF) {
			t.Elapsed = now
			cur.End = now
			switch n := len(t.Intervals); {
			case n > 0 && cur.End-cur.Start < 100*time.Millisecond:
				// A sliver after the last whole second says nothing
				// about the rate on its own: fold it in.
				t.Intervals[n-1].End = cur.End
				t.Intervals[n-1].Bytes += cur.Bytes
			case cur.End > cur.Start:
				t.Intervals = append(t.Intervals, cur)
			}
			return t, nil
		}
		if err != nil {
			t.Elapsed = now
			return t, fmt.Errorf("receive: %w", err)
		}
	}
}

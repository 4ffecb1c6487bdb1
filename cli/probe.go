package cli

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nsnet/nsnet/probe"
)

// ping behaves like iputils ping: per-reply lines, a summary, exit 0 when
// any reply came, 1 when none did, 2 when it could not send at all.
func (e *Env) ping(c Command) (int, error) {
	ns, err := e.target(c)
	if err != nil {
		return 2, err
	}
	defer ns.Close()
	shown := c.Addr.String()
	if c.Host != "" {
		if c.Addr, err = e.resolve(c, c.Host); err != nil {
			return 2, &restated{"ping: " + c.Host + ": Name or service not known (" + err.Error() + ")", err}
		}
		shown = c.Host
	}
	p, err := probe.NewPinger(ns, c.Addr)
	if err != nil {
		var en unix.Errno
		if errors.As(err, &en) {
			// ping's own wording, e.g. "ping: connect: Network is unreachable".
			var op *probe.OpError
			stage := "connect"
			if errors.As(err, &op) {
				stage = op.Op
			}
			return 2, &restated{fmt.Sprintf("ping: %s: %s", stage, capitalize(en.Error())), err}
		}
		return 2, err
	}
	defer p.Close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, unix.SIGTERM)
	defer stop()

	rep := pingJSON{Addr: c.Addr.String(), Replies: []pingReply{}}
	quiet := c.Quiet || c.Opts.JSON
	if c.Opts.JSON {
		// One JSON object at the end instead of iputils' lines.
	} else if c.Addr.Is4() {
		fmt.Fprintf(e.Stdout, "PING %s (%s) %d(%d) bytes of data.\n", shown, c.Addr, probe.PayloadSize, probe.PayloadSize+28)
	} else {
		fmt.Fprintf(e.Stdout, "PING %s (%s) %d data bytes\n", shown, c.Addr, probe.PayloadSize)
	}
	start := time.Now()
	var sent, recv int
	var rtts []time.Duration
	for seq := 1; c.Count < 0 || seq <= c.Count; seq++ {
		if seq > 1 {
			select {
			case <-ctx.Done():
			case <-time.After(c.Interval):
			}
		}
		if ctx.Err() != nil {
			break
		}
		sent++
		r, err := p.Ping(seq, c.Timeout)
		if err != nil {
			if !errors.Is(err, probe.ErrTimeout) && !quiet {
				fmt.Fprintf(e.Stdout, "From %s icmp_seq=%d %s\n", c.Addr, seq, capitalize(errText(err)))
			}
			continue
		}
		recv++
		rtts = append(rtts, r.RTT)
		rep.Replies = append(rep.Replies, pingReply{Seq: r.Seq, TTL: r.TTL, TimeMS: float64(r.RTT) / 1e6})
		if !quiet {
			ttl := ""
			if r.TTL >= 0 {
				ttl = fmt.Sprintf(" ttl=%d", r.TTL)
			}
			fmt.Fprintf(e.Stdout, "%d bytes from %s: icmp_seq=%d%s time=%s ms\n", r.Bytes, r.From, r.Seq, ttl, ms(r.RTT))
		}
	}
	if c.Opts.JSON {
		rep.summarize(sent, recv, rtts, time.Since(start))
		if err := writeJSON(e.Stdout, rep); err != nil {
			return 2, err
		}
	} else {
		printPingSummary(e, c.Addr, sent, recv, rtts, time.Since(start))
	}
	if recv == 0 {
		return 1, nil
	}
	return 0, nil
}

// pingJSON is ping -j's output: the summary iputils prints, and each reply.
type pingJSON struct {
	Addr        string      `json:"addr"`
	Transmitted int         `json:"transmitted"`
	Received    int         `json:"received"`
	LossPercent int         `json:"loss_percent"`
	TimeMS      int64       `json:"time_ms"`
	RTT         *rttJSON    `json:"rtt_ms,omitempty"`
	Replies     []pingReply `json:"replies"`
}

type rttJSON struct {
	Min  float64 `json:"min"`
	Avg  float64 `json:"avg"`
	Max  float64 `json:"max"`
	Mdev float64 `json:"mdev"`
}

type pingReply struct {
	Seq    int     `json:"icmp_seq"`
	TTL    int     `json:"ttl,omitempty"`
	TimeMS float64 `json:"time_ms"`
}

func (r *pingJSON) summarize(sent, recv int, rtts []time.Duration, total time.Duration) {
	r.Transmitted, r.Received, r.TimeMS = sent, recv, total.Milliseconds()
	if sent > 0 {
		r.LossPercent = (sent - recv) * 100 / sent
	}
	if len(rtts) > 0 {
		lo, avg, hi, mdev := rttStats(rtts)
		r.RTT = &rttJSON{Min: lo, Avg: avg, Max: hi, Mdev: mdev}
	}
}

// rttStats are iputils' min/avg/max/mdev, in milliseconds.
func rttStats(rtts []time.Duration) (lo, avg, hi, mdev float64) {
	l, h, sum, sq := rtts[0], rtts[0], 0.0, 0.0
	for _, r := range rtts {
		l, h = min(l, r), max(h, r)
		f := float64(r) / 1e6
		sum += f
		sq += f * f
	}
	avg = sum / float64(len(rtts))
	mdev = math.Sqrt(math.Max(0, sq/float64(len(rtts))-avg*avg))
	return float64(l) / 1e6, avg, float64(h) / 1e6, mdev
}

func printPingSummary(e *Env, addr netip.Addr, sent, recv int, rtts []time.Duration, total time.Duration) {
	loss := 0
	if sent > 0 {
		loss = (sent - recv) * 100 / sent
	}
	fmt.Fprintf(e.Stdout, "\n--- %s ping statistics ---\n", addr)
	fmt.Fprintf(e.Stdout, "%d packets transmitted, %d received, %d%% packet loss, time %dms\n", sent, recv, loss, total.Milliseconds())
	if len(rtts) == 0 {
		return
	}
	lo, avg, hi, mdev := rttStats(rtts)
	fmt.Fprintf(e.Stdout, "rtt min/avg/max/mdev = %.3f/%.3f/%.3f/%.3f ms\n", lo, avg, hi, mdev)
}

func ms(d time.Duration) string {
	f := float64(d) / 1e6
	switch {
	case f < 1:
		return fmt.Sprintf("%.3f", f)
	case f < 10:
		return fmt.Sprintf("%.2f", f)
	case f < 100:
		return fmt.Sprintf("%.1f", f)
	}
	return fmt.Sprintf("%.0f", f)
}

func errText(err error) string {
	var en unix.Errno
	if errors.As(err, &en) {
		return en.Error()
	}
	return err.Error()
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	// "network is unreachable" -> "Network is unreachable", as libc says it.
	return strings.ToUpper(s[:1]) + s[1:]
}

// serve runs a built-in responder until interrupted.
func (e *Env) serve(c Command) (int, error) {
	ns, err := e.target(c)
	if err != nil {
		return 1, err
	}
	defer ns.Close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, unix.SIGTERM)
	defer stop()
	switch c.Proto {
	case "udp":
		pc, err := probe.ListenPacket(ns, "udp", c.Listen)
		if err != nil {
			return 1, err
		}
		fmt.Fprintf(e.Stderr, "nsnet: udp echo on %s\n", pc.LocalAddr())
		return 0, probe.ServeUDPEcho(ctx, pc)
	}
	ln, err := probe.Listen(ns, "tcp", c.Listen)
	if err != nil {
		return 1, err
	}
	fmt.Fprintf(e.Stderr, "nsnet: %s responder on %s\n", c.Proto, ln.Addr())
	if c.Proto == "tcp" {
		return 0, probe.ServeTCPEcho(ctx, ln)
	}
	return 0, probe.ServeHTTP(ctx, ln)
}

// fetch is a minimal curl: GET a URL from the command's namespace and print
// the body. Exit codes follow curl: 7 could not connect, 28 timed out.
func (e *Env) fetch(c Command) (int, error) {
	ns, err := e.target(c)
	if err != nil {
		return 1, err
	}
	defer ns.Close()
	u, err := e.resolveURL(c, c.URL)
	if err != nil {
		return 6, err // curl's "could not resolve host"
	}
	status, body, err := probe.Fetch(context.Background(), ns, u, c.Timeout)
	if err != nil {
		var fe *probe.FetchError
		if errors.As(err, &fe) {
			return fe.Code, err
		}
		return 1, err
	}
	e.Stdout.Write(body)
	if status >= 400 {
		return 22, fmt.Errorf("fetch %s: HTTP status %d", c.URL, status)
	}
	return 0, nil
}

// restated is an error shown in another tool's familiar wording that still
// unwraps to its cause, so the permission hint and errors.Is keep working.
type restated struct {
	msg string
	err error
}

func (r *restated) Error() string { return r.msg }
func (r *restated) Unwrap() error { return r.err }

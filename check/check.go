// Package check runs reachability and isolation expectations between
// namespaces, all at once, and explains every failure by its likely cause.
//
// "reach" passes when the service answered: an echo reply for icmp, an
// accepted connection for tcp, an echoed datagram for udp, any HTTP response
// for http. "isolated" passes only when the probe ran and nothing answered
// within the timeout; a probe that could not run is an error, never a pass.
package check

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nsnet/nsnet/internal/echo"
	"github.com/nsnet/nsnet/kernel"
	"github.com/nsnet/nsnet/netns"
	"github.com/nsnet/nsnet/probe"
)

// Want is what an expectation asserts.
type Want int

const (
	Reach Want = iota
	Isolated
)

func (w Want) String() string {
	if w == Isolated {
		return "isolated"
	}
	return "reach"
}

// ParseWant reads "reach" or "isolated".
func ParseWant(s string) (Want, error) {
	switch s {
	case "reach":
		return Reach, nil
	case "isolated":
		return Isolated, nil
	}
	return 0, fmt.Errorf("expect %s: must be reach or isolated", echo.Quote(s))
}

// Proto is the probe: icmp, tcp:PORT, udp:PORT or http:PORT/PATH.
type Proto struct {
	Name string // icmp, tcp, udp, http
	Port int
	Path string // http only, starts with "/"
}

func (p Proto) String() string {
	switch p.Name {
	case "icmp":
		return "icmp"
	case "http":
		return fmt.Sprintf("http:%d%s", p.Port, p.Path)
	}
	return fmt.Sprintf("%s:%d", p.Name, p.Port)
}

// ParseProto reads icmp, tcp:PORT, udp:PORT or http:PORT[/PATH].
func ParseProto(s string) (Proto, error) {
	if s == "icmp" {
		return Proto{Name: "icmp"}, nil
	}
	name, rest, ok := strings.Cut(s, ":")
	if !ok || (name != "tcp" && name != "udp" && name != "http") {
		return Proto{}, fmt.Errorf("protocol %s: must be icmp, tcp:PORT, udp:PORT or http:PORT/PATH", echo.Quote(s))
	}
	port, path := rest, ""
	if name == "http" {
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			port, path = rest[:i], rest[i:]
		} else {
			path = "/"
		}
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return Proto{}, fmt.Errorf("protocol %s: port must be 1-65535", echo.Quote(s))
	}
	return Proto{Name: name, Port: n, Path: path}, nil
}

// Expectation is one assertion: From can (or cannot) reach Addr with Proto.
type Expectation struct {
	From   string    // source node, for display
	FromNS *netns.NS // where the probe's socket is made
	To     string    // target as the user wrote it (node name or address)
	Addr   netip.Addr
	Proto  Proto
	Want   Want

	// Bounds are figures to measure once the target answers (latency,
	// loss, rate); with any, the expectation passes only if all hold. They
	// are measured with echo requests (Probes of them, DefaultProbes when
	// zero) and a TCP run to a receiver nsnet starts in ToNS, one
	// expectation at a time so that runs do not disturb each other.
	Bounds []Bound
	Probes int
	// ToNS is the target's namespace (nil when the target is no node
	// known here): a rate's receiver runs there, and a failure whose cause
	// is the target's link being down names that link. ToNode and ToIface
	// name the node and, when known, the interface that holds Addr (an
	// IPv6 address is gone from a link taken down, so the kernel cannot
	// tell).
	ToNS    *netns.NS
	ToNode  string
	ToIface string
}

// Result is an expectation's outcome.
type Result struct {
	Expectation
	Reached bool
	Latency time.Duration
	// Cause explains why the target was not reached: "no route",
	// "link down (NODE:IFACE)" (the source's link, or the target's),
	// "no listener", "host unreachable", "filtered/timeout",
	// "neighbour table full".
	Cause string
	// Err is set when the probe could not run at all.
	Err  error
	Pass bool
	// Measures are the Bounds with what was measured, when the target
	// answered.
	Measures []Measure
}

// Options tune Run.
type Options struct {
	// Timeout bounds each probe (default 1s). An isolated expectation
	// passes after this long without an answer.
	Timeout time.Duration
	// Parallel bounds concurrent connection probes (default 256). ICMP
	// probes are all sent at once through probe.Sweep.
	Parallel int
	// RateTime is how long a rate bound is measured (DefaultRateTime).
	RateTime time.Duration
}

// Run evaluates every expectation in parallel. Results are in input order.
func Run(ctx context.Context, exps []Expectation, opt Options) []Result {
	if opt.Timeout <= 0 {
		opt.Timeout = time.Second
	}
	if opt.Parallel <= 0 {
		opt.Parallel = 256
	}
	res := make([]Result, len(exps))
	var icmp []int
	var pairs []probe.Pair
	var measured []int
	for i, e := range exps {
		res[i].Expectation = e
		if len(e.Bounds) > 0 {
			measured = append(measured, i)
			continue
		}
		if e.Proto.Name == "icmp" {
			icmp = append(icmp, i)
			pairs = append(pairs, probe.Pair{From: e.FromNS, To: e.Addr})
		}
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for k, pr := range probe.Sweep(ctx, pairs, opt.Timeout) {
			r := &res[icmp[k]]
			r.Reached, r.Latency = pr.Reply, pr.RTT
			if !pr.Reply {
				r.Err = runError(pr.Err)
				r.Cause = cause(r.Expectation, pr.Err)
			}
		}
	}()
	sem := make(chan struct{}, opt.Parallel)
	for i := range exps {
		if exps[i].Proto.Name == "icmp" || len(exps[i].Bounds) > 0 {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func(r *Result) {
			defer wg.Done()
			defer func() { <-sem }()
			start := time.Now()
			err := connect(ctx, r.Expectation, opt.Timeout)
			if err == nil {
				r.Reached, r.Latency = true, time.Since(start)
				return
			}
			r.Err = runError(err)
			r.Cause = cause(r.Expectation, err)
		}(&res[i])
	}
	wg.Wait()
	for _, i := range measured {
		if r := &res[i]; r.Want != Reach {
			r.Err = fmt.Errorf("%s: a bound is measured on a path that must reach, not be isolated", r.Bounds[0])
		} else {
			measure(ctx, r, opt)
		}
	}
	for i := range res {
		r := &res[i]
		if r.Err != nil {
			r.Cause = ""
			r.Reached = false
			continue
		}
		r.Pass = r.Reached == (r.Want == Reach)
		if len(r.Bounds) > 0 {
			r.Pass = r.Reached && boundsPass(*r)
		}
	}
	return res
}

// runError keeps the errors that mean the probe itself failed (no socket,
// namespace gone); everything else is an answer about the network.
func runError(err error) error {
	var op *probe.OpError
	if errors.As(err, &op) && (op.Op == "socket" || op.Op == "listen") {
		return err
	}
	var nop *net.OpError
	if errors.As(err, &nop) && nop.Op == "socket" {
		return err
	}
	var ne *netns.OpError
	if errors.As(err, &ne) {
		return err
	}
	return nil
}

// connect runs one tcp, udp or http probe and returns nil when the service
// answered.
func connect(ctx context.Context, e Expectation, timeout time.Duration) error {
	addr := netip.AddrPortFrom(e.Addr, uint16(e.Proto.Port)).String()
	d := &net.Dialer{Timeout: timeout}
	switch e.Proto.Name {
	case "tcp":
		c, err := probe.DialContext(ctx, e.FromNS, d, "tcp", addr)
		if err != nil {
			return err
		}
		return c.Close()
	case "udp":
		c, err := probe.DialContext(ctx, e.FromNS, d, "udp", addr)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(timeout))
		msg := []byte("nsnet check")
		if _, err := c.Write(msg); err != nil {
			return err
		}
		buf := make([]byte, 64)
		n, err := c.Read(buf)
		if err != nil {
			return err
		}
		if string(buf[:n]) != string(msg) {
			return errors.New("udp answer is not an echo")
		}
		return nil
	case "http":
		_, _, err := probe.Fetch(ctx, e.FromNS, "http://"+addr+e.Proto.Path, timeout)
		return err
	}
	return fmt.Errorf("unknown protocol %q", e.Proto.Name)
}

// cause names the likely reason a probe of e got no answer, using the error
// and, where that is not enough, the routes and links of the source and
// then of the target: a path that the source cannot even start on is the
// source's problem, whatever the target's state.
func cause(e Expectation, err error) string {
	if errors.Is(err, unix.ECONNREFUSED) {
		return "no listener"
	}
	if down := downLink(e.FromNS, e.Addr); down != "" {
		return "link down (" + nodeIface(e.From, down) + ")"
	}
	if errors.Is(err, unix.ENETUNREACH) {
		return "no route"
	}
	if down := targetDown(e); down != "" {
		return "link down (" + nodeIface(e.ToNode, down) + ")"
	}
	switch {
	case errors.Is(err, unix.ENOBUFS):
		// A link without carrier gives ENOBUFS too, hence checked after.
		return "neighbour table full (net.ipv4.neigh.default.gc_thresh3 is shared by all namespaces)"
	case errors.Is(err, unix.EHOSTUNREACH):
		return "host unreachable (no neighbour answered)"
	}
	return "filtered/timeout"
}

// nodeIface is NODE:IFACE, or IFACE when the node has no name here.
func nodeIface(node, iface string) string {
	if node == "" {
		return iface
	}
	return node + ":" + iface
}

// targetDown returns the target's link that holds its address when that link
// is not up or has no carrier (its peer is down): ToIface when known, else
// the link the address is on.
func targetDown(e Expectation) string {
	if e.ToNS == nil {
		return ""
	}
	h, err := kernel.Open(e.ToNS)
	if err != nil {
		return ""
	}
	defer h.Close()
	links, err := h.Links()
	if err != nil {
		return ""
	}
	name := e.ToIface
	if name == "" {
		addrs, err := h.Addrs()
		if err != nil {
			return ""
		}
		idx := 0
		for _, a := range addrs {
			if a.Prefix.Addr() == e.Addr {
				idx = a.LinkIndex
			}
		}
		for _, l := range links {
			if l.Index == idx {
				name = l.Name
			}
		}
	}
	for _, l := range links {
		if l.Name == name && l.Flags&unix.IFF_LOOPBACK == 0 && (!l.Up() || l.Flags&unix.IFF_RUNNING == 0) {
			return l.Name
		}
	}
	return ""
}

// downLink returns the source's link towards dst when it is not up: the
// link of the route the kernel would use, or an admin-down link whose subnet
// holds dst (its routes are gone, so the kernel has none to name).
func downLink(ns *netns.NS, dst netip.Addr) string {
	if ns == nil {
		return ""
	}
	h, err := kernel.Open(ns)
	if err != nil {
		return ""
	}
	defer h.Close()
	links, err := h.Links()
	if err != nil {
		return ""
	}
	byIndex := map[int]kernel.Link{}
	for _, l := range links {
		byIndex[l.Index] = l
	}
	if r, err := h.RouteGet(dst); err == nil {
		if l, ok := byIndex[r.LinkIndex]; ok && l.Flags&unix.IFF_LOOPBACK == 0 && (!l.Up() || l.Flags&unix.IFF_RUNNING == 0) {
			return l.Name
		}
		return ""
	}
	addrs, err := h.Addrs()
	if err != nil {
		return ""
	}
	for _, a := range addrs {
		l := byIndex[a.LinkIndex]
		if !l.Up() && a.Prefix.Masked().Contains(dst) {
			return l.Name
		}
	}
	return ""
}

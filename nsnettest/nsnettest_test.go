package nsnettest_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nsnet/nsnet/nsnettest"
	"github.com/nsnet/nsnet/probe"
)

const trioLab = `
lab: trio
nodes:
  a: {}
  b: {}
  c: {}
bridges:
  sw: {node: a}
links:
  - a: {node: b, name: eth0, addresses: [10.8.0.2/24, "fd08::2/64"]}
    b: {bridge: sw, name: pb}
  - a: {node: c, name: eth0, addresses: [10.8.0.3/24]}
    b: {bridge: sw, name: pc}
`

// whoServer answers each connection with the address it came from.
func whoServer(t *testing.T, n *nsnettest.Node, addr string) {
	t.Helper()
	ln, err := n.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	// Registered after Up, so it runs before the lab goes down.
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			fmt.Fprintln(c, c.RemoteAddr())
			c.Close()
		}
	}()
}

func TestDialByNodeNameAndDialer(t *testing.T) {
	l := nsnettest.Up(t, trioLab)
	var names []string
	for _, n := range l.Nodes() {
		names = append(names, n.Name)
	}
	if strings.Join(names, " ") != "a b c" || l.Name() != "trio" {
		t.Errorf("nodes %v of %s", names, l.Name())
	}
	whoServer(t, l.Node("b"), ":7100")
	read := func(c net.Conn, err error) string {
		if err != nil {
			return err.Error()
		}
		defer c.Close()
		s, _ := bufio.NewReader(c).ReadString('\n')
		return strings.TrimSpace(s)
	}
	ctx := context.Background()
	c := l.Node("c")
	if got := read(c.Dial(ctx, "tcp", "b:7100")); !strings.HasPrefix(got, "10.8.0.3:") {
		t.Errorf("dial b:7100 came from %q", got)
	}
	// tcp6 picks the node's IPv6 address.
	b := l.Node("b")
	if got := read(b.Dial(ctx, "tcp6", "b:7100")); !strings.HasPrefix(got, "[fd08::2]:") {
		t.Errorf("dial tcp6 b:7100 came from %q", got)
	}
	// The Dialer's local address is honoured.
	d := &net.Dialer{LocalAddr: &net.TCPAddr{Port: 41234}}
	if got := read(c.DialWith(ctx, d, "tcp", "10.8.0.2:7100")); got != "10.8.0.3:41234" {
		t.Errorf("dial with a local port came from %q", got)
	}
	// As an http.Transport-style dial function.
	if got := read(c.Dialer(nil)(ctx, "tcp", "b:7100")); !strings.HasPrefix(got, "10.8.0.3:") {
		t.Errorf("Dialer: %q", got)
	}
	if _, err := c.Dial(ctx, "tcp", "nobody:7100"); err == nil || !strings.Contains(err.Error(), `"nobody" is neither an IP address nor a node of lab trio`) {
		t.Errorf("unknown node: %v", err)
	}
	if _, err := c.Dial(ctx, "tcp6", "c:7100"); err == nil || !strings.Contains(err.Error(), "node c has no address for tcp6") {
		t.Errorf("no IPv6: %v", err)
	}
	// No fixed cap: only the context or the Dialer bound a connect to an
	// address nobody answers for.
	start := time.Now()
	_, err := c.DialWith(ctx, &net.Dialer{Timeout: 2500 * time.Millisecond}, "tcp", "10.8.0.77:7100")
	if el := time.Since(start); err == nil || el < 2400*time.Millisecond {
		t.Errorf("dial to nobody gave up after %v: %v", el, err)
	}
	cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	_, err = c.Dial(cctx, "tcp", "10.8.0.77:7100")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("dial bounded by its context: %v", err)
	}
}

func TestTimeoutOption(t *testing.T) {
	l := nsnettest.Up(t, trioLab)
	start := time.Now()
	l.Expect(t, "b", "10.8.0.77", "icmp", nsnettest.Isolated, nsnettest.Timeout(150*time.Millisecond))
	if el := time.Since(start); el > 900*time.Millisecond {
		t.Errorf("an isolated expectation with a 150ms timeout took %v", el)
	}
}

// recorder is a test that has failed, to see what Up reports then.
type recorder struct {
	testing.TB
	mu       sync.Mutex
	logs     []string
	cleanups []func()
}

func (r *recorder) Failed() bool { return true }
func (r *recorder) Log(a ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.logs = append(r.logs, fmt.Sprint(a...))
}
func (r *recorder) Cleanup(f func()) { r.cleanups = append(r.cleanups, f) }

func TestFailingTestLogsStateAndFaults(t *testing.T) {
	r := &recorder{TB: t}
	l := nsnettest.Up(r, trioLab)
	l.SetLink(r, "c", "eth0", false)
	if a := l.Active(); len(a) != 1 || a[0] != "link c:eth0 down" {
		t.Errorf("active: %v", a)
	}
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		r.cleanups[i]()
	}
	if len(r.logs) != 1 {
		t.Fatalf("logged %d times: %q", len(r.logs), r.logs)
	}
	for _, want := range []string{"lab trio when the test failed", "faults the test has in force: link c:eth0 down", "node c:", "eth0         DOWN(admin)", "10.8.0.3/24", "node a:", "sw ", "pb "} {
		if !strings.Contains(r.logs[0], want) {
			t.Errorf("report lacks %q:\n%s", want, r.logs[0])
		}
	}
	if a := l.Active(); len(a) != 0 {
		t.Errorf("still active after cleanup: %v", a)
	}
}

// Both ends of a link taken down: the cleanups bring them back last first,
// the first of them while the other end is still down, without an error.
func TestSetLinkBothEndsCleanup(t *testing.T) {
	ok := t.Run("both", func(t *testing.T) {
		l := nsnettest.Up(t, pairLab)
		l.SetLink(t, "client", "eth0", false)
		l.SetLink(t, "server", "eth0", false)
		l.Expect(t, "client", "server", "icmp", nsnettest.Isolated, nsnettest.Timeout(200*time.Millisecond))
	})
	if !ok {
		t.Error("the subtest failed")
	}
	ok = t.Run("undone", func(t *testing.T) {
		l := nsnettest.Up(t, pairLab)
		l.SetLink(t, "client", "eth0", false)
		l.SetLink(t, "client", "eth0", true)
		if a := l.Active(); len(a) != 0 {
			t.Errorf("active after the test undid it: %v", a)
		}
		l.Expect(t, "client", "server", "icmp", nsnettest.Reach)
	})
	if !ok {
		t.Error("the subtest failed")
	}
}

func TestSeriesAndThroughput(t *testing.T) {
	l := nsnettest.Up(t, trioLab)
	st, err := l.Series(context.Background(), "b", "c", probe.SeriesOptions{Count: 300, Interval: 100 * time.Microsecond})
	if err != nil || st.Sent != 300 || st.Received != 300 || st.RTT.Mean <= 0 {
		t.Errorf("series: %+v %v", st, err)
	}
	tp, err := l.Throughput(context.Background(), "c", "10.8.0.2", 300*time.Millisecond)
	if err != nil || tp.BitsPerSecond() < 50e6 {
		t.Errorf("throughput: %.0f bit/s, %v", tp.BitsPerSecond(), err)
	}
	if _, err := l.Throughput(context.Background(), "c", "10.8.0.99", 100*time.Millisecond); err == nil {
		t.Error("throughput to an address no node has")
	}
}

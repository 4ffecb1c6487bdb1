package probe_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/nsnet/nsnet/internal/sandbox"
	"github.com/nsnet/nsnet/kernel"
	"github.com/nsnet/nsnet/netns"
	"github.com/nsnet/nsnet/probe"
)

func TestMain(m *testing.M) { os.Exit(sandbox.Main(m)) }

// pair makes two namespaces joined by a veth, addressed in 10.99.0.0/24 and
// fd99::/64, both ends up.
func pair(t *testing.T) (a, b *netns.NS) {
	t.Helper()
	sandbox.Require(t)
	var err error
	if a, err = netns.New(); err != nil {
		t.Fatal(err)
	}
	if b, err = netns.New(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	ha, err := kernel.Open(a)
	if err != nil {
		t.Fatal(err)
	}
	defer ha.Close()
	hb, err := kernel.Open(b)
	if err != nil {
		t.Fatal(err)
	}
	defer hb.Close()
	for _, step := range []error{
		ha.AddVeth(kernel.Veth{Name: "a", Peer: "b", PeerNS: b}),
		ha.AddAddr("a", netip.MustParsePrefix("10.99.0.1/24"), kernel.AddrOptions{}),
		hb.AddAddr("b", netip.MustParsePrefix("10.99.0.2/24"), kernel.AddrOptions{}),
		ha.AddAddr("a", netip.MustParsePrefix("fd99::1/64"), kernel.AddrOptions{NoDAD: true}),
		hb.AddAddr("b", netip.MustParsePrefix("fd99::2/64"), kernel.AddrOptions{NoDAD: true}),
		ha.SetUp("lo"), hb.SetUp("lo"), ha.SetUp("a"), hb.SetUp("b"),
		ha.AwaitCarrier(3*time.Second, "a"), hb.AwaitCarrier(3*time.Second, "b"),
	} {
		if step != nil {
			t.Fatal(step)
		}
	}
	return a, b
}

func TestPingBothFamilies(t *testing.T) {
	a, _ := pair(t)
	for _, dst := range []string{"10.99.0.2", "fd99::2"} {
		p, err := probe.NewPinger(a, netip.MustParseAddr(dst))
		if err != nil {
			t.Fatal(err)
		}
		r, err := p.Ping(1, 3*time.Second)
		p.Close()
		if err != nil || r.Seq != 1 || r.TTL != 64 || r.Bytes != 64 {
			t.Errorf("ping %s: %+v, %v", dst, r, err)
		}
	}
}

func TestPingNoRouteAndNoReply(t *testing.T) {
	a, _ := pair(t)
	_, err := probe.NewPinger(a, netip.MustParseAddr("192.0.2.1"))
	if !errors.Is(err, syscall.ENETUNREACH) {
		t.Errorf("no route: %v, want ENETUNREACH", err)
	}
	p, err := probe.NewPinger(a, netip.MustParseAddr("10.99.0.77"))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := p.Ping(1, 200*time.Millisecond); !errors.Is(err, probe.ErrTimeout) {
		t.Errorf("absent host: %v, want ErrTimeout", err)
	}
}

func TestDialListenAcrossNamespaces(t *testing.T) {
	a, b := pair(t)
	ln, err := probe.Listen(b, "tcp", "10.99.0.2:7000")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go probe.ServeTCPEcho(ctx, ln)
	c, err := probe.DialContext(ctx, a, &net.Dialer{Timeout: time.Second}, "tcp", "10.99.0.2:7000")
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("ping"))
	buf := make([]byte, 4)
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Read(buf); err != nil || string(buf) != "ping" {
		t.Errorf("echo: %q %v", buf, err)
	}
	c.Close()
	// Loopback-only listener in b: unreachable from a.
	lo, err := probe.Listen(b, "tcp", "127.0.0.1:7001")
	if err != nil {
		t.Fatal(err)
	}
	defer lo.Close()
	_, err = probe.DialContext(ctx, a, &net.Dialer{Timeout: time.Second}, "tcp", "10.99.0.2:7001")
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("port only on b's loopback: %v, want ECONNREFUSED", err)
	}
	// Nothing answers at an absent host: a timeout, reported as such.
	_, err = probe.DialContext(ctx, a, &net.Dialer{Timeout: 300 * time.Millisecond}, "tcp", "10.99.0.77:7000")
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("absent host: %v, want a timeout", err)
	}
	if _, err := probe.DialContext(ctx, a, nil, "tcp", "localhost:80"); err == nil {
		t.Error("a name was resolved for a namespace dial")
	}
}

func TestFetch(t *testing.T) {
	_, b := pair(t)
	ln, err := probe.Listen(b, "tcp", "127.0.0.1:8080")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go probe.ServeHTTP(ctx, ln)
	code, body, err := probe.Fetch(ctx, b, "http://127.0.0.1:8080/x", 2*time.Second)
	if err != nil || code != 200 || string(body) != probe.HTTPBody {
		t.Errorf("fetch inside: %d %q %v", code, body, err)
	}
	_, _, err = probe.Fetch(ctx, nil, "http://127.0.0.1:8080/x", 2*time.Second)
	var fe *probe.FetchError
	if !errors.As(err, &fe) || fe.Code != 7 {
		t.Errorf("fetch from the test's namespace: %v", err)
	}
}

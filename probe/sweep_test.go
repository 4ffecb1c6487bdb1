package probe_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/nsnet/nsnet/internal/sandbox"
	"github.com/nsnet/nsnet/kernel"
	"github.com/nsnet/nsnet/netns"
	"github.com/nsnet/nsnet/probe"
)

// hubAndNodes makes a hub namespace and n node namespaces, node i joined to
// the hub by a veth (pI in the hub, eth0 in the node) and given address
// 10.100.0.(i+1); hub prepares the hub, node configures each pair.
func hubAndNodes(tb testing.TB, n int, hub func(h *kernel.Handle) []error,
	node func(h, nh *kernel.Handle, port string, addr netip.Addr) []error) ([]*netns.NS, []netip.Addr) {
	tb.Helper()
	sandbox.Require(tb)
	hubNS, err := netns.New()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { hubNS.Close() })
	if err := hubNS.WriteSysctl("net.ipv4.ip_forward", "1"); err != nil {
		tb.Fatal(err)
	}
	h, err := kernel.Open(hubNS)
	if err != nil {
		tb.Fatal(err)
	}
	defer h.Close()
	for _, err := range hub(h) {
		if err != nil {
			tb.Fatal(err)
		}
	}
	nodes := make([]*netns.NS, n)
	addrs := make([]netip.Addr, n)
	for i := range nodes {
		ns, err := netns.New()
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { ns.Close() })
		nodes[i] = ns
		addrs[i] = netip.AddrFrom4([4]byte{10, 100, byte((i + 1) >> 8), byte(i + 1)})
		port := fmt.Sprintf("p%d", i)
		if err := h.AddVeth(kernel.Veth{Name: port, Peer: "eth0", PeerNS: ns}); err != nil {
			tb.Fatal(err)
		}
		nh, err := kernel.Open(ns)
		if err != nil {
			tb.Fatal(err)
		}
		for _, err := range append(node(h, nh, port, addrs[i]), nh.SetUp("eth0"), nh.SetUp("lo"), nh.AwaitCarrier(3*time.Second, "eth0")) {
			if err != nil {
				tb.Fatal(err)
			}
		}
		nh.Close()
	}
	// The hub's ends get carrier by the kernel's link watch, after the
	// nodes' ends, and a bridge port forwards only then: a probe sent
	// before is dropped (and its ARP retried a second later, past the
	// probes' timeout). Setting a port up again, which changes nothing,
	// returns only after the kernel has finished acting on its carrier.
	for i := range nodes {
		port := fmt.Sprintf("p%d", i)
		if err := h.AwaitCarrier(3*time.Second, port); err != nil {
			tb.Fatal(err)
		}
		if err := h.SetUp(port); err != nil {
			tb.Fatal(err)
		}
	}
	return nodes, addrs
}

// star makes n nodes with eth0 on one bridge in the hub, addressed
// 10.100.0.(i+1)/16.
func star(tb testing.TB, n int) ([]*netns.NS, []netip.Addr) {
	tb.Helper()
	return hubAndNodes(tb, n,
		func(h *kernel.Handle) []error { return []error{h.AddBridge("br0", 0, ""), h.SetUp("br0")} },
		func(h, nh *kernel.Handle, port string, addr netip.Addr) []error {
			return []error{
				h.SetMaster(port, "br0"), h.SetUp(port),
				nh.AddAddr("eth0", netip.PrefixFrom(addr, 16), kernel.AddrOptions{}),
			}
		})
}

func allPairs(nodes []*netns.NS, addrs []netip.Addr) []probe.Pair {
	var ps []probe.Pair
	for i := range nodes {
		for j := range addrs {
			if i != j {
				ps = append(ps, probe.Pair{From: nodes[i], To: addrs[j]})
			}
		}
	}
	return ps
}

func TestSweep(t *testing.T) {
	nodes, addrs := star(t, 6)
	pairs := allPairs(nodes, addrs)
	pairs = append(pairs,
		probe.Pair{From: nodes[0], To: netip.MustParseAddr("10.100.9.9")}, // nobody there
		probe.Pair{From: nodes[0], To: netip.MustParseAddr("192.0.2.1")},  // no route
		probe.Pair{From: nodes[1], To: netip.MustParseAddr("10.100.0.1")}, // reaches node 0
	)
	res := probe.Sweep(context.Background(), pairs, time.Second)
	n := len(pairs)
	for i := 0; i < n-3; i++ {
		if !res[i].Reply || res[i].Err != nil {
			t.Errorf("%v -> %v: %+v", pairs[i].From, pairs[i].To, res[i])
		}
	}
	if r := res[n-3]; r.Reply {
		t.Errorf("absent host replied: %+v", r)
	}
	if r := res[n-2]; r.Reply || !errors.Is(r.Err, syscall.ENETUNREACH) {
		t.Errorf("no route: %+v, want ENETUNREACH", r)
	}
	if r := res[n-1]; !r.Reply {
		t.Errorf("repeat destination: %+v", r)
	}
}

// routed makes n node namespaces, each with eth0 holding 10.100.0.(i+1)/32
// and a default route to 10.100.255.254 on the hub's side of its veth, and
// a hub that routes between them. Unlike a bridge, where every node learns
// every other's MAC, each node needs one neighbour entry: the kernel's
// neighbour table is shared by all namespaces and holds about 1024 entries
// (gc_thresh3), so a 100-node bridge cannot hold all 9,900.
func routed(tb testing.TB, n int) ([]*netns.NS, []netip.Addr) {
	tb.Helper()
	gw := netip.MustParseAddr("10.100.255.254")
	return hubAndNodes(tb, n,
		func(h *kernel.Handle) []error { return nil },
		func(h, nh *kernel.Handle, port string, addr netip.Addr) []error {
			return []error{
				h.AddAddr(port, netip.PrefixFrom(gw, 32), kernel.AddrOptions{}),
				h.SetUp(port),
				h.AddRoute(kernel.Route{Dst: netip.PrefixFrom(addr, 32), Dev: port}),
				nh.AddAddr("eth0", netip.PrefixFrom(addr, 32), kernel.AddrOptions{}),
				nh.SetUp("eth0"),
				nh.AddRoute(kernel.Route{Dst: netip.PrefixFrom(gw, 32), Dev: "eth0"}),
				nh.AddRoute(kernel.Route{Gateway: gw, Dev: "eth0"}),
			}
		})
}

// BenchmarkSweep100 is `check --all` over 100 nodes: 9,900 ordered pairs,
// all at once versus one probe at a time.
func BenchmarkSweep100(b *testing.B) {
	nodes, addrs := routed(b, 100)
	pairs := allPairs(nodes, addrs)
	// Warm the neighbour caches so both variants measure probing alone.
	probe.Sweep(context.Background(), pairs, 5*time.Second)
	b.Run("parallel", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			res := probe.Sweep(context.Background(), pairs, 5*time.Second)
			for _, r := range res {
				if !r.Reply {
					b.Fatalf("a pair got no reply: %+v", r)
				}
			}
		}
		b.ReportMetric(float64(len(pairs)), "pairs/op")
	})
	b.Run("sequential", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			for _, p := range pairs {
				pg, err := probe.NewPinger(p.From, p.To)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := pg.Ping(1, 5*time.Second); err != nil {
					b.Fatal(err)
				}
				pg.Close()
			}
		}
		b.ReportMetric(float64(len(pairs)), "pairs/op")
	})
}

package kernel_test

import (
	"errors"
	"io/fs"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/nsnet/nsnet/kernel"
	"github.com/nsnet/nsnet/netns"
	"github.com/nsnet/nsnet/probe"
)

// pair is two namespaces joined by a veth a0 (10.9.0.1) -- b0 (10.9.0.2).
func pair(t *testing.T) (ans *netns.NS, a *kernel.Handle, bns *netns.NS, b *kernel.Handle) {
	t.Helper()
	ans, a = fresh(t)
	bns, b = fresh(t)
	if err := a.AddVeth(kernel.Veth{Name: "a0", Peer: "b0", PeerNS: bns}); err != nil {
		t.Fatal(err)
	}
	for _, x := range []struct {
		h    *kernel.Handle
		dev  string
		addr string
	}{{a, "a0", "10.9.0.1/24"}, {b, "b0", "10.9.0.2/24"}} {
		if err := x.h.AddAddr(x.dev, netip.MustParsePrefix(x.addr), kernel.AddrOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := x.h.SetUp(x.dev); err != nil {
			t.Fatal(err)
		}
	}
	// Carrier comes on asynchronously (the kernel's link watch).
	if err := a.AwaitCarrier(2*time.Second, "a0"); err != nil {
		t.Fatal(err)
	}
	if err := b.AwaitCarrier(2*time.Second, "b0"); err != nil {
		t.Fatal(err)
	}
	return
}

func ping(t *testing.T, ns *netns.NS, dst string, n int) (ok int) {
	t.Helper()
	p, err := probe.NewPinger(ns, netip.MustParseAddr(dst))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for i := 0; i < n; i++ {
		if _, err := p.Ping(i+1, 20*time.Millisecond); err == nil {
			ok++
		}
	}
	return ok
}

func TestShaperOwnsOnlyItsRoot(t *testing.T) {
	ans, a, _, _ := pair(t)
	tc, err := kernel.OpenTC(ans)
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	l, err := a.LinkByName("a0")
	if err != nil {
		t.Fatal(err)
	}
	s := kernel.Shaper{TBF: &kernel.TBF{Rate: 10e6, Burst: 16 << 10, Limit: 100 << 10}}
	if err := tc.SetShaper(l.Index, "a0", s); err != nil {
		t.Fatal(err)
	}
	st, err := tc.Shaper(l.Index)
	if err != nil || strings.Join(st.Kinds, ",") != "tbf" {
		t.Fatalf("shaper %+v, %v", st, err)
	}
	// Its counters are the kernel's (tc -s): what went through, nothing
	// dropped.
	if n := ping(t, ans, "10.9.0.2", 3); n != 3 {
		t.Fatalf("through tbf: %d/3 replies", n)
	}
	if st, err := tc.Shaper(l.Index); err != nil || st.Packets < 3 || st.Drops != 0 {
		t.Errorf("counters %+v, %v", st, err)
	}
	// Changing it in place is fine.
	s.TBF.Rate = 20e6
	if err := tc.SetShaper(l.Index, "a0", s); err != nil {
		t.Fatal(err)
	}
	if err := tc.DeleteShaper(l.Index, "a0"); err != nil {
		t.Fatal(err)
	}
	if err := tc.DeleteShaper(l.Index, "a0"); err != nil {
		t.Fatalf("second delete: %v", err)
	}
	if st, _ := tc.Shaper(l.Index); len(st.Kinds) != 0 {
		t.Fatalf("left %v", st.Kinds)
	}
}

func TestFaultChains(t *testing.T) {
	ans, a, bns, b := pair(t)
	if n := ping(t, ans, "10.9.0.2", 3); n != 3 {
		t.Fatalf("before: %d/3 replies", n)
	}
	nb, err := kernel.OpenNFT(bns)
	if err != nil {
		t.Fatal(err)
	}
	defer nb.Close()
	lb, _ := b.LinkByName("b0")
	drop := kernel.FaultChain{Family: kernel.Netdev, Name: "in-b0", Hook: kernel.HookIngress, Dev: "b0", Ifindex: lb.Index,
		Rules: []kernel.FaultRule{{Verdict: kernel.VerdictDrop}}}
	if err := nb.SetChains("nsnet-t", []kernel.FaultChain{drop}); err != nil {
		t.Fatal(err)
	}
	if n := ping(t, ans, "10.9.0.2", 3); n != 0 {
		t.Errorf("blackhole: %d/3 replies", n)
	}
	c, err := nb.Counters("nsnet-t", drop)
	if err != nil || len(c) != 1 || c[0] < 3 {
		t.Errorf("counters %v, %v", c, err)
	}
	// The same chain again is left alone (its counter goes on: nothing
	// was deleted, so nothing waits for the kernel to free it); a changed
	// one is rewritten, its counter from zero.
	if err := nb.SetChains("nsnet-t", []kernel.FaultChain{drop}); err != nil {
		t.Fatal(err)
	}
	if c, err := nb.Counters("nsnet-t", drop); err != nil || len(c) != 1 || c[0] < 3 {
		t.Errorf("the same chain set again: counters %v, %v (want them kept)", c, err)
	}
	nearly := drop
	nearly.Rules = []kernel.FaultRule{{Chance: 99.9, Verdict: kernel.VerdictDrop}}
	if err := nb.SetChains("nsnet-t", []kernel.FaultChain{nearly}); err != nil {
		t.Fatal(err)
	}
	if c, err := nb.Counters("nsnet-t", drop); err != nil || len(c) != 1 || c[0] != 0 {
		t.Errorf("a changed chain: counters %v, %v (want it rewritten)", c, err)
	}
	if d, err := nb.ChainsDrift("nsnet-t", []kernel.FaultChain{nearly}); d != "" || err != nil {
		t.Errorf("drift after the change: %q %v", d, err)
	}
	// A partition rule by source address, in the receiver's namespace.
	part := kernel.FaultChain{Family: kernel.Inet, Name: "partition", Hook: kernel.HookPrerouting, Priority: -300,
		Rules: []kernel.FaultRule{{Src: []netip.Addr{netip.MustParseAddr("10.9.0.1"), netip.MustParseAddr("fd00::1")}, Verdict: kernel.VerdictDrop}}}
	if err := nb.SetChains("nsnet-t", []kernel.FaultChain{part}, drop); err != nil {
		t.Fatal(err)
	}
	if n := ping(t, ans, "10.9.0.2", 3); n != 0 {
		t.Errorf("partition: %d/3 replies", n)
	}
	// A partition's chain with other sources is rewritten, though the
	// rules' signatures (which do not read sets back) are the same.
	other := part
	other.Rules = []kernel.FaultRule{{Src: []netip.Addr{netip.MustParseAddr("10.9.0.99")}, Verdict: kernel.VerdictDrop}}
	if err := nb.SetChains("nsnet-t", []kernel.FaultChain{other}); err != nil {
		t.Fatal(err)
	}
	if n := ping(t, ans, "10.9.0.2", 3); n != 3 {
		t.Errorf("partition from another source: %d/3 replies", n)
	}
	if err := nb.SetChains("nsnet-t", []kernel.FaultChain{part}); err != nil {
		t.Fatal(err)
	}
	// Random loss of half.
	half := drop
	half.Rules = []kernel.FaultRule{{Chance: 50, Verdict: kernel.VerdictDrop}}
	if err := nb.SetChains("nsnet-t", []kernel.FaultChain{half}, part); err != nil {
		t.Fatal(err)
	}
	if n := ping(t, ans, "10.9.0.2", 100); n < 30 || n > 70 {
		t.Errorf("50%% loss of requests: %d/100 replies", n)
	}
	if err := nb.DeleteChains("nsnet-t", half); err != nil {
		t.Fatal(err)
	}
	if n := ping(t, ans, "10.9.0.2", 3); n != 3 {
		t.Errorf("cleared: %d/3 replies", n)
	}
	// Duplicates at the sender's egress.
	na, err := kernel.OpenNFT(ans)
	if err != nil {
		t.Fatal(err)
	}
	defer na.Close()
	la, _ := a.LinkByName("a0")
	dup := kernel.FaultChain{Family: kernel.Netdev, Name: "out-a0", Hook: kernel.HookEgress, Dev: "a0", Ifindex: la.Index,
		Rules: []kernel.FaultRule{{Verdict: kernel.VerdictDup}}}
	if err := na.SetChains("nsnet-t", []kernel.FaultChain{dup}); err != nil {
		t.Fatal(err)
	}
	if n := ping(t, ans, "10.9.0.2", 5); n != 5 {
		t.Errorf("dup: %d/5 replies", n)
	}
	c, _ = na.Counters("nsnet-t", dup)
	if len(c) != 1 || c[0] < 5 {
		t.Errorf("dup counters %v", c)
	}
	if err := na.DeleteTables("nsnet-t"); err != nil {
		t.Fatal(err)
	}
	if err := nb.DeleteTables("nsnet-t"); err != nil {
		t.Fatal(err)
	}
	if err := na.DeleteTables("nsnet-t"); err != nil {
		t.Fatalf("second delete: %v", err)
	}
	if c, err := na.Counters("nsnet-t", dup); len(c) != 0 || err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("after delete: %v %v", c, err)
	}
}

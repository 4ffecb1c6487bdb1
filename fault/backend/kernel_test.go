package backend_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nsnet/nsnet/fault"
	"github.com/nsnet/nsnet/fault/delayer"
	"github.com/nsnet/nsnet/kernel"
	"github.com/nsnet/nsnet/netns"
	"github.com/nsnet/nsnet/probe"

	"github.com/nsnet/nsnet/fault/backend"
	"github.com/nsnet/nsnet/internal/sandbox"
)

func TestMain(m *testing.M) { os.Exit(sandbox.Main(m)) }

func TestProbe(t *testing.T) {
	sandbox.Require(t)
	c, err := backend.Probe()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("ok %v", c.OK)
	t.Logf("missing %v", c.Missing)
	// What every kernel nsnet supports has.
	for _, f := range []string{backend.FeatTBF, backend.FeatNetdev, backend.FeatInet} {
		if !c.OK[f] {
			t.Errorf("%s: %s", f, c.Missing[f])
		}
	}
}

// pair is two namespaces joined by a veth a0 (10.9.0.1, fd09::1) -- b0
// (10.9.0.2, fd09::2), and the backend's view of a0.
func pair(t *testing.T) (backend.Link, *netns.NS, *netns.NS) {
	t.Helper()
	sandbox.Require(t)
	var nss [2]*netns.NS
	var hs [2]*kernel.Handle
	for i := range nss {
		ns, err := netns.New()
		if err != nil {
			t.Fatal(err)
		}
		h, err := kernel.Open(ns)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { h.Close(); ns.Close() })
		nss[i], hs[i] = ns, h
	}
	if err := hs[0].AddVeth(kernel.Veth{Name: "a0", Peer: "b0", PeerNS: nss[1]}); err != nil {
		t.Fatal(err)
	}
	var idx [2]int
	for i, dev := range []string{"a0", "b0"} {
		for _, a := range []string{fmt.Sprintf("10.9.0.%d/24", i+1), fmt.Sprintf("fd09::%d/64", i+1)} {
			if err := hs[i].AddAddr(dev, netip.MustParsePrefix(a), kernel.AddrOptions{NoDAD: true}); err != nil {
				t.Fatal(err)
			}
		}
		if err := hs[i].SetUp(dev); err != nil {
			t.Fatal(err)
		}
		l, err := hs[i].LinkByName(dev)
		if err != nil {
			t.Fatal(err)
		}
		idx[i] = l.Index
	}
	return backend.Link{End: fault.End{Node: "a", Iface: "a0"}, NS: nss[0], Dev: "a0", Ifindex: idx[0],
		PeerNS: nss[1], PeerNode: "b", PeerDev: "b0", PeerIfindex: idx[1]}, nss[0], nss[1]
}

// rtts pings dst n times and returns the replies' round trips.
func rtts(t *testing.T, ns *netns.NS, dst string, n int, timeout time.Duration) []time.Duration {
	t.Helper()
	p, err := probe.NewPinger(ns, netip.MustParseAddr(dst))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var out []time.Duration
	for i := 0; i < n; i++ {
		start := time.Now()
		if _, err := p.Ping(i+1, timeout); err == nil {
			out = append(out, time.Since(start))
		}
	}
	return out
}

// delayerFor runs an in-process delayer serving the plan's queue, as the
// lab's delayer process would.
func delayerFor(t *testing.T, ns *netns.NS, p *backend.Plan) {
	t.Helper()
	if !p.UsesDelayer() {
		return
	}
	dir := t.TempDir()
	cfg := delayer.Config{Queues: []delayer.Entry{{Name: p.End.String(), Netns: fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), ns.Fd()), Queue: p.Queue, Spec: p.DelayerSpec()}}}
	if err := delayer.WriteJSON(filepath.Join(dir, "delayer.json"), cfg); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- delayer.Run(ctx, filepath.Join(dir, "delayer.json"), filepath.Join(dir, "stats.json"), nil)
	}()
	t.Cleanup(func() { cancel(); <-done })
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		st, _ := delayer.ReadStats(filepath.Join(dir, "stats.json"))
		if _, ok := st.Queues[p.End.String()]; ok {
			return
		}
		if len(st.Errors) > 0 {
			t.Fatalf("delayer: %v", st.Errors)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("delayer did not bind its queue")
}

func apply(t *testing.T, caps backend.Caps, l backend.Link, words string) *backend.Plan {
	t.Helper()
	s, err := fault.ParseWords(strings.Fields(words))
	if err != nil {
		t.Fatal(err)
	}
	p, err := backend.For(s, l, caps)
	if err != nil {
		t.Fatal(err)
	}
	delayerFor(t, l.NS, p)
	if err := backend.Apply("t", p, l); err != nil {
		t.Fatal(err)
	}
	return p
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

func caps(t *testing.T) backend.Caps {
	c, err := backend.Probe()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestDelayAndClear: delay 50 ms on a0 makes every round trip at least 50 ms
// and the median under 60; clearing it restores the link.
func TestDelayAndClear(t *testing.T) {
	l, a, _ := pair(t)
	c := caps(t)
	p := apply(t, c, l, "delay 50ms")
	t.Logf("backend %s", p.Backend())
	r := rtts(t, a, "10.9.0.2", 40, time.Second)
	if len(r) != 40 {
		t.Fatalf("%d/40 replies", len(r))
	}
	if m := slices.Min(r); m < 50*time.Millisecond {
		t.Errorf("min RTT %v < 50ms", m)
	}
	if m := median(r); m >= 60*time.Millisecond {
		t.Errorf("median RTT %v >= 60ms", m)
	}
	if err := backend.Clear("t", l); err != nil {
		t.Fatal(err)
	}
	r = rtts(t, a, "10.9.0.2", 10, time.Second)
	if len(r) != 10 || median(r) > 10*time.Millisecond {
		t.Errorf("after clear: %d/10 replies, median %v", len(r), median(r))
	}
}

// TestLossAndClear: loss 30% of 1,000 probes (requests only: the fault is on
// a0's egress) loses between 20% and 40%.
func TestLossAndClear(t *testing.T) {
	l, a, _ := pair(t)
	c := caps(t)
	for _, words := range []string{"loss 30%", "loss 30% 0.01%"} { // in-kernel, then the delayer's
		p := apply(t, c, l, words)
		r := rtts(t, a, "10.9.0.2", 1000, 5*time.Millisecond)
		lost := 100 - float64(len(r))/10
		t.Logf("%s via %s: %.1f%% lost", words, p.Backend(), lost)
		if lost < 20 || lost > 40 {
			t.Errorf("%s: %.1f%% of 1000 lost", words, lost)
		}
		cnt, err := backend.Read("t", l)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("counters %+v", cnt)
		if err := backend.Clear("t", l); err != nil {
			t.Fatal(err)
		}
	}
	if r := rtts(t, a, "10.9.0.2", 20, time.Second); len(r) != 20 {
		t.Errorf("after clear: %d/20 replies", len(r))
	}
}

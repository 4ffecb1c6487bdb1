package faults_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nsnet/nsnet/fault"
	"github.com/nsnet/nsnet/fault/backend"
	"github.com/nsnet/nsnet/internal/sandbox"
	"github.com/nsnet/nsnet/kernel"
	"github.com/nsnet/nsnet/lab"
	"github.com/nsnet/nsnet/lab/faults"
	"github.com/nsnet/nsnet/netns"
)

// benchLab brings up n hosts on one bridge (in node sw) in-process and
// returns its options; down at cleanup.
func benchLab(b *testing.B, n int) lab.Options {
	b.Helper()
	sandbox.Require(b)
	var y strings.Builder
	fmt.Fprintf(&y, "lab: fb\nnodes:\n  sw: {}\n")
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&y, "  h%d: {}\n", i)
	}
	fmt.Fprintf(&y, "bridges:\n  lan: {node: sw, subnets: [10.60.0.0/16]}\nlinks:\n")
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&y, "  - {a: {node: h%d, name: eth0, addresses: [auto]}, b: {bridge: lan}}\n", i)
	}
	file := filepath.Join(b.TempDir(), "fb.yaml")
	if err := os.WriteFile(file, []byte(y.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	l, err := lab.Load(file)
	if err != nil {
		b.Fatal(err)
	}
	// The state directory on tmpfs, as /run/nsnet is.
	state, err := os.MkdirTemp("/run", "nsnet-faults-bench-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(state) })
	opt := lab.Options{Netns: netns.Default(), StateDir: state, Exe: nsnetBin(b)}
	if _, err := lab.Up(l, opt); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if _, err := lab.Down("fb", opt); err != nil {
			b.Error(err)
		}
	})
	return opt
}

// BenchmarkFaultSet is nsnet fault set on one link (as the API does it:
// lock, ledger written before and after, the end resolved, the kernel
// changed), each iteration a real change. Its anchor, BenchmarkFaultSet/
// kernel-only, is the same kernel change through the backend alone.
func BenchmarkFaultSet(b *testing.B) {
	opt := benchLab(b, 2)
	end := fault.End{Node: "h1", Iface: "eth0"}
	specs := []string{"loss 10%", "loss 20%", "rate 10mbit", "rate 20mbit", "delay 20ms", "delay 30ms"}
	for _, group := range [][]string{specs[0:2], specs[2:4], specs[4:6]} {
		b.Run(strings.Fields(group[0])[0], func(b *testing.B) {
			var sp [2]fault.Spec
			for i := range sp {
				sp[i], _ = fault.ParseWords(strings.Fields(group[i]))
			}
			// Warm: the kernel probe is cached per lab, the delayer started.
			if _, err := faults.Set(opt, "fb", end, sp[1], faults.SetOptions{}); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := faults.Set(opt, "fb", end, sp[i%2], faults.SetOptions{}); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			if err := faults.Clear(opt, "fb"); err != nil {
				b.Fatal(err)
			}
		})
	}
	b.Run("kernel-only", func(b *testing.B) {
		ns, err := lab.OpenNode("fb", "h1", opt)
		if err != nil {
			b.Fatal(err)
		}
		defer ns.Close()
		sw, err := lab.OpenNode("fb", "sw", opt)
		if err != nil {
			b.Fatal(err)
		}
		defer sw.Close()
		l := linkOf(b, ns, sw)
		caps, err := backend.Probe()
		if err != nil {
			b.Fatal(err)
		}
		var plans [2]*backend.Plan
		for i, w := range specs[0:2] {
			s, _ := fault.ParseWords(strings.Fields(w))
			if plans[i], err = backend.For(s, l, caps); err != nil {
				b.Fatal(err)
			}
		}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if err := backend.Apply("fb", plans[i%2], l); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		backend.Clear("fb", l)
	})
}

// BenchmarkPartition100 partitions a 100-node lab on one bridge into two
// halves and heals it again; each op is one partition (heal outside the
// timer).
func BenchmarkPartition100(b *testing.B) {
	opt := benchLab(b, 100)
	var left, right []string
	for i := 1; i <= 100; i++ {
		if i <= 50 {
			left = append(left, fmt.Sprintf("h%d", i))
		} else {
			right = append(right, fmt.Sprintf("h%d", i))
		}
	}
	p, err := fault.ParsePartition([]string{strings.Join(left, ","), strings.Join(right, ",")}, false)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("partition", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if err := faults.Partition(opt, "fb", p); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			if err := faults.Heal(opt, "fb"); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
	})
	b.Run("heal", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			if err := faults.Partition(opt, "fb", p); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			if err := faults.Heal(opt, "fb"); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// linkOf is h1:eth0 and its bridge port in sw, as the backend sees them.
func linkOf(b *testing.B, ns, sw *netns.NS) backend.Link {
	b.Helper()
	h, err := kernel.Open(ns)
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close()
	l, err := h.LinkByName("eth0")
	if err != nil {
		b.Fatal(err)
	}
	hs, err := kernel.Open(sw)
	if err != nil {
		b.Fatal(err)
	}
	defer hs.Close()
	p, err := hs.LinkByName("h1-eth0")
	if err != nil {
		b.Fatal(err)
	}
	return backend.Link{End: fault.End{Node: "h1", Iface: "eth0"}, NS: ns, Dev: "eth0", Ifindex: l.Index,
		PeerNS: sw, PeerNode: "sw", PeerDev: "h1-eth0", PeerIfindex: p.Index}
}

package lab_test

import (
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/nsnet/nsnet/bench"
	"github.com/nsnet/nsnet/internal/sandbox"
	"github.com/nsnet/nsnet/lab"
	"github.com/nsnet/nsnet/netns"
)

// BenchmarkObserve200 times what reads a 200-node point-to-point lab back
// from the kernel: status (every node's links, addresses and routes), and a
// second up with nothing to change (the drift check: the same listings, the
// ledger, the plan). It uses only lab's exported calls, so that the same
// file measures an older kernel layer beside this one (see
// /work/measure/kl.sh).
func BenchmarkObserve200(b *testing.B) {
	sandbox.Require(b)
	dir := b.TempDir()
	l, err := lab.Parse("observe.yaml", bench.LabYAML(bench.Workload{Mode: bench.PTP, N: 200, Prefix: "ob"}))
	if err != nil {
		b.Fatal(err)
	}
	opt := lab.Options{Netns: netns.Dir{Path: filepath.Join(dir, "netns")}, StateDir: filepath.Join(dir, "state"), Exe: nsnetBin(b)}
	if _, err := lab.Up(l, opt); err != nil {
		b.Fatal(err)
	}
	defer func() {
		if _, err := lab.Down(l.Name, opt); err != nil {
			b.Error(err)
		}
		// nsnet made the namespace directory a mount point, as
		// iproute2 does.
		unix.Unmount(opt.Netns.Path, unix.MNT_DETACH)
	}()
	b.ResetTimer()
	b.Run("status", func(b *testing.B) {
		for range b.N {
			st, err := lab.Status(l.Name, opt)
			if err != nil {
				b.Fatal(err)
			}
			if len(st) != 1 || len(st[0].NodeStatus) != 201 {
				b.Fatalf("status of %d labs, want the one lab of 201 nodes", len(st))
			}
		}
	})
	b.Run("noop-up", func(b *testing.B) {
		for range b.N {
			res, err := lab.Up(l, opt)
			if err != nil {
				b.Fatal(err)
			}
			if !res.Plan.Empty() {
				b.Fatalf("second up changed %s", res.Plan.Summary())
			}
		}
	})
}

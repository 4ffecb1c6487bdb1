package faults_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nsnet/nsnet/internal/sandbox"
	"github.com/nsnet/nsnet/lab"
	"github.com/nsnet/nsnet/lab/faults"
	"github.com/nsnet/nsnet/netns"
)

// starLab is a hub with n point-to-point links to n nodes; with spec, every
// link's node end has those faults.
func starLab(n int, spec string) string {
	var b strings.Builder
	b.WriteString("lab: fstar\nnodes:\n  hub: {}\n")
	for i := range n {
		fmt.Fprintf(&b, "  n%d: {}\n", i)
	}
	b.WriteString("links:\n")
	for i := range n {
		f := ""
		if spec != "" {
			f = ", faults: " + spec
		}
		fmt.Fprintf(&b, "  - {a: {node: n%d, name: eth0, addresses: [10.%d.%d.1/30]%s}, b: {node: hub, name: p%d, addresses: [10.%d.%d.2/30]}}\n",
			i, 100+i/64, (i%64)*4, f, i, 100+i/64, (i%64)*4)
	}
	return b.String()
}

// BenchmarkUpWithFaults: up of a lab of 1,000 links, without faults and
// with faults on every link (a rate, made by tbf, and a loss, by nftables at
// the far end, on either backend), beside each other; the target is
// at most 25% more time. Each variant is one up (run with -benchtime=1x).
func BenchmarkUpWithFaults(b *testing.B) {
	sandbox.Require(b)
	for _, v := range []struct{ name, spec string }{{"plain", ""}, {"faults", `"rate 100mbit loss 1%"`}, {"plain-again", ""}} {
		b.Run(v.name, func(b *testing.B) {
			for range b.N {
				dir := b.TempDir()
				l, err := lab.Parse("star.yaml", []byte(starLab(1000, v.spec)))
				if err != nil {
					b.Fatal(err)
				}
				opt := lab.Options{Netns: netns.Dir{Path: filepath.Join(dir, "netns")}, StateDir: filepath.Join(dir, "state"), Exe: nsnetBin(b)}
				start := time.Now()
				if _, err := lab.Up(l, opt); err != nil {
					b.Fatal(err)
				}
				up := time.Since(start)
				fr, err := faults.SyncFile(opt, l, faults.SyncOptions{})
				if err != nil {
					b.Fatal(err)
				}
				total := time.Since(start)
				b.ReportMetric(up.Seconds(), "up_s")
				b.ReportMetric(total.Seconds(), "up+faults_s")
				b.ReportMetric(float64(fr.Made), "faulted_ends")
				// A second up with nothing to do: the drift check alone.
				start = time.Now()
				if _, err := lab.Up(l, opt); err != nil {
					b.Fatal(err)
				}
				if fr, err = faults.SyncFile(opt, l, faults.SyncOptions{}); err != nil || fr.Made != 0 {
					b.Fatalf("second up: %+v %v", fr, err)
				}
				b.ReportMetric(time.Since(start).Seconds(), "noop_up_s")
				if _, err := lab.Down(l.Name, opt); err != nil {
					b.Fatal(err)
				}
				// nsnet made the namespace directory a mount point, as
				// iproute2 does.
				unix.Unmount(opt.Netns.Path, unix.MNT_DETACH)
			}
		})
	}
}

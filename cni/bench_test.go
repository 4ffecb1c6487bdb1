package cni_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nsnet/nsnet/internal/sandbox"
)

// The reference plugins nsnet is measured against, built from the module
// proxy: never vendored, never committed.
const (
	refModule  = "github.com/containernetworking/plugins"
	refVersion = "v1.10.0"
)

func refPackages() []string {
	return []string{
		refModule + "/plugins/main/ptp",
		refModule + "/plugins/main/bridge",
		refModule + "/plugins/ipam/host-local",
	}
}

// refModuleDir writes a throwaway module that requires the reference
// plugins, so that `go build` can name their packages.
func refModuleDir(dir string) error {
	gomod := fmt.Sprintf("module nsnet.test/refplugins\n\ngo 1.23\n\nrequire %s %s\n", refModule, refVersion)
	return os.WriteFile(filepath.Join(dir, "go.mod"), []byte(gomod), 0o644)
}

// fetchReferencePlugins runs outside the sandbox (which has no network):
// it fills the module and build caches from the module proxy, verifying
// checksums as usual, and throws the binaries away. The benchmark then
// builds its own binaries from the caches.
func fetchReferencePlugins() error {
	dir, err := os.MkdirTemp("", "nsnet-refplugins-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := refModuleDir(dir); err != nil {
		return err
	}
	cmd := exec.Command(goTool(), append([]string{"build", "-o", dir + "/"}, refPackages()...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-mod=mod -buildvcs=false")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %v\n%s", err, out)
	}
	return nil
}

// buildReferencePlugins builds ptp, bridge and host-local into a temporary
// directory, offline, from what fetchReferencePlugins left in the caches.
// The caches were filled with checksum verification, hence GOSUMDB=off.
func buildReferencePlugins(b *testing.B) (string, error) {
	dir := b.TempDir()
	mod := filepath.Join(dir, "mod")
	if err := os.Mkdir(mod, 0o755); err != nil {
		return "", err
	}
	if err := refModuleDir(mod); err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "bin")
	cmd := exec.Command(goTool(), append([]string{"build", "-o", bin + "/"}, refPackages()...)...)
	cmd.Dir = mod
	// Static, as the CNI project builds its releases (and as nsnet-cni
	// is built for the same comparison).
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOPROXY=off", "GOSUMDB=off", "GOFLAGS=-mod=mod -buildvcs=false")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s@%s: %v\n%s", refModule, refVersion, err, out)
	}
	for _, p := range []string{"ptp", "bridge", "host-local"} {
		if _, err := os.Stat(filepath.Join(bin, p)); err != nil {
			return "", err
		}
	}
	return bin, nil
}

// BenchmarkAddDel ADDs b.N attachments one after the other (as a runtime
// starting that many pods), then DELs them, through libcni. Each mode has:
//
//   - nsnet: nsnet alone, with its built-in allocator;
//   - vs-reference: nsnet and the reference plugin of the same mode (with
//     host-local, the usual pairing) in the same run, each with its own b.N
//     namespaces;
//   - vs-reference-tmpfs: the same with every state directory and libcni's
//     cache on tmpfs, which shows how much of each plugin's time is the
//     filesystem's;
//   - vs-reference-background: vs-reference with nsnet's backgroundDelete,
//     where DEL returns before the kernel has destroyed the veth pair; the
//     benchmark waits, untimed, for each reaper to finish, so that its
//     kernel work does not slow the next DEL.
//
// The comparisons alternate the two plugins call by call, so that both see
// the same machine, and report the median time of an ADD and of a DEL (the
// median, because a shared machine's bursts would swamp a mean) and the
// ratio of the reference's median to nsnet's.
//
// For the 1,000 attachments: go test -run '^$' -bench AddDel -benchtime 1000x ./cni
func BenchmarkAddDel(b *testing.B) {
	sandbox.Require(b)
	if pluginIsStandIn {
		b.Skip("nsnet-cni could not be built (see the message at start-up); timing the test binary standing in for it would measure the wrong program")
	}
	refDir, refErr := buildReferencePlugins(b)
	onDisk := func(b *testing.B) string { return b.TempDir() }
	// The sandbox's /run is a private tmpfs.
	onTmpfs := func(b *testing.B) string {
		d, err := os.MkdirTemp("/run", "bench-")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { os.RemoveAll(d) })
		return d
	}
	for _, mode := range []string{"ptp", "bridge"} {
		b.Run(mode, func(b *testing.B) {
			b.Run("nsnet", func(b *testing.B) {
				t := attachMany(b, b.N, nsnetBenchNet(b, mode, onDisk, false))
				b.ReportMetric(0, "ns/op")
				b.ReportMetric(ms(median(t[0].add)), "add-ms/op")
				b.ReportMetric(ms(median(t[0].del)), "del-ms/op")
			})
			for _, v := range []struct {
				name       string
				dir        func(*testing.B) string
				background bool
			}{{"vs-reference", onDisk, false}, {"vs-reference-tmpfs", onTmpfs, false}, {"vs-reference-background", onDisk, true}} {
				dir, background := v.dir, v.background
				b.Run(v.name, func(b *testing.B) {
					if refErr != nil {
						b.Skipf("reference plugins %s@%s could not be built, so there is nothing to compare with: %v", refModule, refVersion, refErr)
					}
					t := attachMany(b, b.N, nsnetBenchNet(b, mode, dir, background), refBenchNet(b, mode, refDir, dir))
					nAdd, nDel := median(t[0].add), median(t[0].del)
					rAdd, rDel := median(t[1].add), median(t[1].del)
					b.ReportMetric(0, "ns/op")
					b.ReportMetric(ms(nAdd), "nsnet-add-ms/op")
					b.ReportMetric(ms(nDel), "nsnet-del-ms/op")
					b.ReportMetric(ms(rAdd), "ref-add-ms/op")
					b.ReportMetric(ms(rDel), "ref-del-ms/op")
					b.ReportMetric(float64(rAdd)/float64(nAdd), "add-speedup")
					b.ReportMetric(float64(rDel)/float64(nDel), "del-speedup")
				})
			}
		})
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// nsnetBenchNet is nsnet in mode with its state and libcni's cache under
// dir(b), deleting in the background if asked.
func nsnetBenchNet(b *testing.B, mode string, dir func(*testing.B) string, background bool) *rt {
	n := newNet(b, "bench-"+mode, plugin{
		"mode":             mode,
		"bridge":           "nsbench0",
		"dataDir":          filepath.Join(dir(b), "state"),
		"ipam":             map[string]any{"type": "nsnet", "subnets": []string{"10.91.0.0/16"}},
		"backgroundDelete": background,
	}.only(mode))
	n.cni = newCNI([]string{pluginDir}, dir(b))
	n.background = background
	return n
}

// awaitGone waits until the reaper has exited (the benchmark is its
// subreaper: see attachMany) and the container's eth0 is gone. The link
// vanishes before the kernel's RCU barrier ends, so the process's exit is the
// signal that its kernel work is over.
func awaitGone(b *testing.B, c *container) {
	var ws unix.WaitStatus
	for {
		_, err := unix.Wait4(-1, &ws, 0, nil)
		if err != unix.EINTR {
			break
		}
	}
	h := handle(b, c.ns)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Microsecond) {
		if _, err := h.LinkByName("eth0"); err != nil {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s: eth0 not destroyed 10 s after a background DEL", c.id)
		}
	}
}

// refBenchNet is the reference plugin of mode with host-local, set up like
// nsnet's network.
func refBenchNet(b *testing.B, mode, plugins string, dir func(*testing.B) string) *rt {
	n := newNet(b, "ref-"+mode, plugin{
		"type":   mode,
		"bridge": "refbench0",
		// The reference bridge puts the gateway on the bridge only
		// when asked; nsnet does by default.
		"isGateway": true,
		"ipam": map[string]any{
			"type":    "host-local",
			"subnet":  "10.92.0.0/16",
			"dataDir": filepath.Join(dir(b), "host-local"),
		},
	}.only(mode))
	n.cni = newCNI([]string{plugins}, dir(b))
	return n
}

// only drops the bridge options from a ptp configuration.
func (p plugin) only(mode string) plugin {
	if mode == "ptp" {
		delete(p, "bridge")
		delete(p, "isGateway")
	}
	return p
}

type times struct{ add, del []time.Duration }

// attachMany ADDs count containers to each network, then DELs them,
// alternating between the networks call by call, and returns how long each
// call took. Namespaces are made before and destroyed after the clock runs.
func attachMany(b *testing.B, count int, nets ...*rt) []times {
	b.StopTimer()
	d := nsDir(b)
	cs := make([][]*container, len(nets))
	for j := range nets {
		for i := range count {
			cs[j] = append(cs[j], newContainer(b, d, fmt.Sprintf("b%d-%05d", j, i)))
		}
	}
	out := make([]times, len(nets))
	ctx := context.Background()
	for _, n := range nets {
		if n.background {
			// Reapers, orphaned when their plugin exits, become
			// children of this process, for awaitGone to wait for.
			if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.StartTimer()
	for i := range count {
		for j, n := range nets {
			c := cs[j][i]
			start := time.Now()
			if _, err := n.cni.AddNetworkList(ctx, n.list, rc(c, "eth0")); err != nil {
				b.Fatalf("ADD %s: %v", c.id, err)
			}
			out[j].add = append(out[j].add, time.Since(start))
		}
	}
	for i := range count {
		for j, n := range nets {
			c := cs[j][i]
			start := time.Now()
			if err := n.cni.DelNetworkList(ctx, n.list, rc(c, "eth0")); err != nil {
				b.Fatalf("DEL %s: %v", c.id, err)
			}
			out[j].del = append(out[j].del, time.Since(start))
			if n.background {
				// Untimed: let the reaper finish, so that its kernel
				// work does not land in the next DEL's time (the
				// reference's, in a comparison).
				b.StopTimer()
				awaitGone(b, c)
				b.StartTimer()
			}
		}
	}
	b.StopTimer()
	for j := range nets {
		for _, c := range cs[j] {
			c.destroy(d)
		}
	}
	b.StartTimer()
	return out
}

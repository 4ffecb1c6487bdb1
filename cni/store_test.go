package cni

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"path/filepath"
	"sync"
	"testing"

	"github.com/containernetworking/cni/pkg/skel"
)

func TestAllocateExhaustReleaseAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	subnet := netip.MustParsePrefix("10.5.0.0/29") // .2-.6 for containers
	st, err := openStore(dir, "net", false)
	if err != nil {
		t.Fatal(err)
	}
	got := map[netip.Addr]string{}
	for i := range 5 {
		owner := fmt.Sprintf("c%d:eth0", i)
		a, err := st.allocate(subnet, owner)
		if err != nil {
			t.Fatalf("allocation %d: %v", i, err)
		}
		if a == netip.MustParseAddr("10.5.0.1") || a == netip.MustParseAddr("10.5.0.7") || a == subnet.Addr() {
			t.Fatalf("handed out reserved address %s", a)
		}
		if prev, dup := got[a]; dup {
			t.Fatalf("%s handed to %s and %s", a, prev, owner)
		}
		got[a] = owner
	}
	var exh *ExhaustedError
	if _, err := st.allocate(subnet, "c9:eth0"); !errors.As(err, &exh) || exh.Subnet != subnet {
		t.Fatalf("allocation from a full subnet: %v, want ExhaustedError", err)
	}
	st.close()

	// Another process (a new store on the same directory) sees the same
	// allocations, frees only what it owns, and can then allocate again.
	st, err = openStore(dir, "net", false)
	if err != nil {
		t.Fatal(err)
	}
	defer st.close()
	allocs, err := st.allocations()
	if err != nil || len(allocs) != 5 {
		t.Fatalf("allocations after reopening: %v, %v", allocs, err)
	}
	var victim netip.Addr
	for a, o := range got {
		victim = a
		if err := st.release(a, "someone-else:eth0"); err != nil {
			t.Fatal(err)
		}
		if owner, _ := st.owner(a); owner != o {
			t.Fatalf("release by a stranger freed %s", a)
		}
		if err := st.release(a, o); err != nil {
			t.Fatal(err)
		}
		break
	}
	a, err := st.allocate(subnet, "c9:eth0")
	if err != nil || a != victim {
		t.Fatalf("allocation after release: %v, %v; want %s", a, err, victim)
	}
}

func TestAllocateIPv6AndStickiness(t *testing.T) {
	st, err := openStore(t.TempDir(), "net", false)
	if err != nil {
		t.Fatal(err)
	}
	defer st.close()
	subnet := netip.MustParsePrefix("fd00:1::/64")
	a, err := st.allocate(subnet, "c1:eth0")
	if err != nil || !subnet.Contains(a) || a == gatewayOf(subnet) {
		t.Fatalf("allocate: %v, %v", a, err)
	}
	if err := st.release(a, "c1:eth0"); err != nil {
		t.Fatal(err)
	}
	// The same attachment coming back gets the same address.
	if b, err := st.allocate(subnet, "c1:eth0"); err != nil || b != a {
		t.Fatalf("re-allocation gave %v (%v), want %s", b, err, a)
	}
}

func TestAllocateConcurrently(t *testing.T) {
	dir := t.TempDir()
	subnet := netip.MustParsePrefix("10.6.0.0/26") // 61 usable
	const N = 61
	addrs := make([]netip.Addr, N)
	errs := make([]error, N)
	var wg sync.WaitGroup
	for i := range N {
		wg.Go(func() {
			// A store per goroutine, as separate plugin processes.
			st, err := openStore(dir, "net", false)
			if err != nil {
				errs[i] = err
				return
			}
			defer st.close()
			addrs[i], errs[i] = st.allocate(subnet, fmt.Sprintf("c%d:eth0", i))
		})
	}
	wg.Wait()
	seen := map[netip.Addr]bool{}
	for i, a := range addrs {
		if errs[i] != nil {
			t.Fatalf("allocation %d: %v", i, errs[i])
		}
		if seen[a] {
			t.Fatalf("%s handed out twice", a)
		}
		seen[a] = true
	}
}

func TestRecords(t *testing.T) {
	st, err := openStore(t.TempDir(), "net", false)
	if err != nil {
		t.Fatal(err)
	}
	defer st.close()
	r := &record{ContainerID: "c1", IfName: "eth0", Mode: ModePTP, HostVeth: "nscx", IPAM: BuiltinIPAM,
		IPs: []recordIP{{Addr: netip.MustParsePrefix("10.0.0.2/32"), Subnet: netip.MustParsePrefix("10.0.0.0/24"), Gateway: netip.MustParseAddr("10.0.0.1")}}}
	if err := st.create(r); err != nil {
		t.Fatal(err)
	}
	if err := st.create(r); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second create: %v, want ErrExist", err)
	}
	got, err := st.read(r.key())
	if err != nil || got.IPs[0] != r.IPs[0] || got.Mode != ModePTP {
		t.Fatalf("read back %+v, %v", got, err)
	}
	if keys, err := st.keys(); err != nil || len(keys) != 1 || keys[0] != "c1:eth0" {
		t.Fatalf("keys %v, %v", keys, err)
	}
	if err := st.remove(r.key()); err != nil {
		t.Fatal(err)
	}
	if err := st.remove(r.key()); err != nil {
		t.Fatalf("removing twice: %v", err)
	}
	if _, err := st.read(r.key()); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("read after remove: %v", err)
	}
	if _, err := filepath.Glob(filepath.Join(st.dir, "attachments", "*")); err != nil {
		t.Fatal(err)
	}
}

func TestPool(t *testing.T) {
	// The gateway (first host address) is never handed out.
	for _, tc := range []struct {
		subnet, gw, first string
		size              uint64
	}{
		{"10.0.0.0/24", "10.0.0.1", "10.0.0.2", 253},
		{"fd00::/120", "fd00::1", "fd00::2", 254},
	} {
		p := netip.MustParsePrefix(tc.subnet)
		r := pool(p)
		if gatewayOf(p).String() != tc.gw || r.First.String() != tc.first || r.Size() != tc.size {
			t.Errorf("%s: gateway %s, pool from %s (%d), want %s, %s (%d)", p, gatewayOf(p), r.First, r.Size(), tc.gw, tc.first, tc.size)
		}
	}
}

// TestLostRace: an ADD that loses the race to record its attachment frees
// only the addresses it took fresh, not the one it shares with the winner
// under the same key, nor the winner's MAC claim, and does not run a
// delegated plugin's DEL (which would free the winner's lease).
func TestLostRace(t *testing.T) {
	st, err := openStore(t.TempDir(), "net", false)
	if err != nil {
		t.Fatal(err)
	}
	defer st.close()
	const key = "c:eth0"
	shared, fresh := netip.MustParseAddr("10.5.0.5"), netip.MustParseAddr("fd05::9")
	winner := &record{ContainerID: "c", IfName: "eth0", Mode: ModeBridge, IPAM: BuiltinIPAM, MAC: "c2:00:00:00:00:05", Allocated: []netip.Addr{shared, netip.MustParseAddr("fd05::5")}}
	for _, a := range append(winner.Allocated, fresh) {
		if err := st.take(a, key); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.takeMAC(winner.MAC, key); err != nil {
		t.Fatal(err)
	}
	if err := st.create(winner); err != nil {
		t.Fatal(err)
	}
	loser := *winner
	loser.Allocated = []netip.Addr{shared, fresh}
	if err := lostRace(context.Background(), st, delegate{}, &loser); err != nil {
		t.Fatal(err)
	}
	allocs, err := st.allocations()
	if err != nil {
		t.Fatal(err)
	}
	if len(allocs) != 2 || allocs[shared] != key || allocs[fresh] != "" {
		t.Errorf("after the lost race: %v, want the winner's two only", allocs)
	}
	if macs, _ := st.macs(); macs[winner.MAC] != key {
		t.Errorf("the winner's MAC claim is gone: %v", macs)
	}
	// A delegated loser runs no DEL: delegate{} has no plugin to find,
	// so running one would fail.
	winner.IPAM, loser.IPAM = "host-local", "host-local"
	if err := lostRace(context.Background(), st, delegate{cfg: &Config{IPAM: IPAMConfig{Type: "host-local"}}, args: &skel.CmdArgs{}}, &loser); err != nil {
		t.Errorf("delegated lost race: %v", err)
	}
}

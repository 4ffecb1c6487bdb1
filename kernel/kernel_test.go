package kernel_test

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nsnet/nsnet/internal/sandbox"
	"github.com/nsnet/nsnet/kernel"
	"github.com/nsnet/nsnet/netns"
)

func TestMain(m *testing.M) { os.Exit(sandbox.Main(m)) }

// fresh returns a handle on a new, empty namespace of the test's own.
func fresh(t *testing.T) (*netns.NS, *kernel.Handle) {
	t.Helper()
	sandbox.Require(t)
	ns, err := netns.New()
	if err != nil {
		t.Fatal(err)
	}
	h, err := kernel.Open(ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(); ns.Close() })
	return ns, h
}

func names(t *testing.T, h *kernel.Handle) string {
	t.Helper()
	ls, err := h.Links()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range ls {
		out = append(out, l.Name)
	}
	return strings.Join(out, " ")
}

func TestVethPeerCreatedInsideNamespace(t *testing.T) {
	_, a := fresh(t)
	bns, b := fresh(t)
	if err := a.AddVeth(kernel.Veth{Name: "a0", Peer: "b0", PeerNS: bns, MTU: 1400, Alias: "nsnet:test"}); err != nil {
		t.Fatal(err)
	}
	if got := names(t, a); got != "lo a0" {
		t.Errorf("namespace a has %q", got)
	}
	if got := names(t, b); got != "lo b0" {
		t.Errorf("namespace b has %q", got)
	}
	l, err := a.LinkByName("a0")
	if err != nil || l.MTU != 1400 || l.Alias != "nsnet:test" || l.LinkNetNSID < 0 || l.Type != "veth" {
		t.Errorf("a0 = %+v, %v", l, err)
	}
	if err := a.SetUp("a0"); err != nil {
		t.Fatal(err)
	}
	if err := b.SetUp("b0"); err != nil {
		t.Fatal(err)
	}
	p := netip.MustParsePrefix("fd00::1/64")
	if err := a.AddAddr("a0", p, kernel.AddrOptions{NoDAD: true}); err != nil {
		t.Fatal(err)
	}
	if err := a.AddAddr("a0", p, kernel.AddrOptions{NoDAD: true}); !errors.Is(err, fs.ErrExist) {
		t.Errorf("duplicate address: %v, want ErrExist", err)
	}
	addrs, err := a.Addrs()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, ad := range addrs {
		found = found || ad.Prefix == p
	}
	if !found {
		t.Errorf("address not listed: %+v", addrs)
	}
	if err := a.DelLink("a0"); err != nil {
		t.Fatal(err)
	}
	if got := names(t, b); got != "lo" {
		t.Errorf("peer survived its pair: %q", got)
	}
}

func TestErrorsMatchSentinels(t *testing.T) {
	_, h := fresh(t)
	err := h.DelLink("nothere")
	var op *kernel.OpError
	if !errors.Is(err, fs.ErrNotExist) || !errors.As(err, &op) || op.Name != "nothere" {
		t.Errorf("DelLink of a missing link: %v", err)
	}
	if err := h.AddBridge("br0", 0, ""); err != nil {
		t.Fatal(err)
	}
	if err := h.AddBridge("br0", 0, ""); !errors.Is(err, fs.ErrExist) {
		t.Errorf("second bridge: %v", err)
	}
	var ne *kernel.NameError
	if err := h.AddBridge("this-name-is-too-long", 0, ""); !errors.As(err, &ne) {
		t.Errorf("long name: %v", err)
	}
	if err := h.SetMTU("br0", 10); err == nil || !strings.Contains(err.Error(), "68-65535") {
		t.Errorf("mtu 10: %v", err)
	}
}

func TestRoutes(t *testing.T) {
	_, h := fresh(t)
	if err := h.AddBridge("br0", 0, ""); err != nil {
		t.Fatal(err)
	}
	if err := h.SetUp("br0"); err != nil {
		t.Fatal(err)
	}
	if err := h.AddAddr("br0", netip.MustParsePrefix("10.9.0.1/24"), kernel.AddrOptions{}); err != nil {
		t.Fatal(err)
	}
	r := kernel.Route{Dst: netip.MustParsePrefix("10.10.0.0/16"), Gateway: netip.MustParseAddr("10.9.0.254")}
	if err := h.AddRoute(r); err != nil {
		t.Fatal(err)
	}
	if err := h.AddRoute(r); !errors.Is(err, fs.ErrExist) {
		t.Errorf("duplicate route: %v", err)
	}
	rs, err := h.Routes()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, x := range rs {
		got = append(got, x.Dst.String()+" "+x.Gateway.String())
	}
	if !strings.Contains(strings.Join(got, ","), "10.10.0.0/16 10.9.0.254") {
		t.Errorf("routes = %v", got)
	}
	if err := h.DelRoute(r); err != nil {
		t.Fatal(err)
	}
	if err := h.DelRoute(r); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("second delete: %v", err)
	}
	// A link-scoped route (no gateway) deletes as it was added.
	onLink := kernel.Route{Dst: netip.MustParsePrefix("10.11.0.0/16"), Dev: "br0"}
	if err := h.AddRoute(onLink); err != nil {
		t.Fatal(err)
	}
	if err := h.DelRoute(onLink); err != nil {
		t.Errorf("delete of a link-scoped route: %v", err)
	}
}

// TestConcurrentHandles drives many namespaces from many goroutines through
// handles bound at creation: no goroutine switches namespace.
func TestConcurrentHandles(t *testing.T) {
	sandbox.Require(t)
	const n = 24
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ns, err := netns.New()
			if err != nil {
				errs <- err
				return
			}
			defer ns.Close()
			h, err := kernel.Open(ns)
			if err != nil {
				errs <- err
				return
			}
			defer h.Close()
			for j := 0; j < 50; j++ {
				p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 1, byte(j), 1}), 24)
				if err := h.AddAddr("lo", p, kernel.AddrOptions{}); err != nil {
					errs <- err
					return
				}
				if err := h.DelAddr("lo", p); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestFlagNames(t *testing.T) {
	// IFF_BROADCAST|IFF_MULTICAST|IFF_UP without IFF_RUNNING: no carrier.
	if got := kernel.FlagString(0x1002|0x1, true); got != "<NO-CARRIER,BROADCAST,MULTICAST,UP,M-DOWN>" {
		t.Errorf("FlagString = %s", got)
	}
}

// TestLinksByName: many links read in one exchange, a missing one reported
// as absent (not as an error), and their alias and MAC as set; by index too
// (LinksByIndex), where a missing one is an error.
func TestLinksByName(t *testing.T) {
	ans, a := fresh(t)
	bns, _ := fresh(t)
	mac := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x2a}
	var want []string
	for i := range 70 { // more than one send of sixty-four requests
		name := fmt.Sprintf("v%d", i)
		if err := a.AddVeth(kernel.Veth{Name: name, Peer: name, PeerNS: bns, Alias: "nsnet:t" + name}); err != nil {
			t.Fatal(err)
		}
		want = append(want, name)
	}
	if err := a.AddVeth(kernel.Veth{Name: "m", Peer: "m", PeerNS: bns}); err != nil {
		t.Fatal(err)
	}
	if err := a.SetHardwareAddr("m", mac); err != nil {
		t.Fatal(err)
	}
	b, err := kernel.OpenBatch(ans)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	names := append(slices.Clone(want), "missing", "m")
	infos, ok, err := b.LinksByName(names)
	if err != nil {
		t.Fatal(err)
	}
	for i, name := range want {
		if !ok[i] || infos[i].Alias != "nsnet:t"+name || infos[i].Index <= 1 {
			t.Errorf("%s: %+v ok=%v", name, infos[i], ok[i])
		}
	}
	if ok[len(want)] {
		t.Errorf("missing link reported present: %+v", infos[len(want)])
	}
	if m := infos[len(want)+1]; !ok[len(want)+1] || m.MAC.String() != mac.String() || m.Alias != "" {
		t.Errorf("m: %+v", m)
	}
	// The same links by index, in another order, through a Batch that
	// shares its receive space; a missing index is an error.
	b.ShareBuffers(&kernel.Buffers{})
	var idx []int
	for i := len(want) - 1; i >= 0; i-- {
		idx = append(idx, infos[i].Index)
	}
	byIndex, err := b.LinksByIndex(idx)
	if err != nil {
		t.Fatal(err)
	}
	for k, li := range byIndex {
		if name := want[len(want)-1-k]; li.Name != name || li.Index != idx[k] || li.Alias != "nsnet:t"+name {
			t.Errorf("index %d: %+v, want %s", idx[k], li, name)
		}
	}
	if _, err := b.LinksByIndex(append(idx, 99999)); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "index 99999") {
		t.Errorf("missing index: %v", err)
	}
}

// TestBatchLinkAttributes: what a repair compares and changes through the
// batch. Links reports the IPv6 address generation mode and the
// operational state (the netlink library reads neither); SetLink sets the
// mode and the MAC; DelAddr removes an address and takes a missing one as
// done.
func TestBatchLinkAttributes(t *testing.T) {
	ans, a := fresh(t)
	bns, bh := fresh(t)
	if err := a.AddVeth(kernel.Veth{Name: "a0", Peer: "b0", PeerNS: bns}); err != nil {
		t.Fatal(err)
	}
	b, err := kernel.OpenBatch(ans)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	info := func(name string) kernel.LinkInfo {
		t.Helper()
		l, err := a.LinkByName(name)
		if err != nil {
			t.Fatal(err)
		}
		links, err := b.Links()
		if err != nil {
			t.Fatal(err)
		}
		for _, li := range links {
			if li.Index == l.Index {
				return li
			}
		}
		t.Fatalf("%s not in the dump", name)
		return kernel.LinkInfo{}
	}
	if m := info("a0").AddrGenMode; m != kernel.AddrGenModeEUI64 {
		t.Errorf("a new link's addrgenmode is %d, want eui64", m)
	}
	if m := info("lo").AddrGenMode; m < 0 {
		t.Errorf("lo: no IPv6 address generation mode (%d)", m)
	}
	l, _ := a.LinkByName("a0")
	mac := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x2b}
	p := netip.MustParsePrefix("fd00:2b::1/64")
	if err := b.SetLink(l.Index, kernel.LinkChange{AddrGenNone: true, MAC: mac, Up: true}, 0); err != nil {
		t.Fatal(err)
	}
	if err := b.AddAddr(l.Index, p, kernel.AddrOptions{NoDAD: true}, 1); err != nil {
		t.Fatal(err)
	}
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := bh.SetUpIndex(1); err != nil {
		t.Fatal(err)
	}
	if li := info("a0"); li.AddrGenMode != kernel.AddrGenModeNone || li.MAC.String() != mac.String() {
		t.Errorf("after SetLink: %+v", li)
	}
	pl, _ := bh.LinkByName("b0")
	if err := bh.SetUpIndex(pl.Index); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(3 * time.Second); info("a0").OperState != kernel.OperUp; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("a0 is not operationally up: %+v", info("a0"))
		}
	}
	for i := range 2 { // the second finds it gone: not an error
		if err := b.DelAddr(l.Index, p, i); err != nil {
			t.Fatal(err)
		}
		if err := b.Flush(); err != nil {
			t.Fatalf("delete #%d: %v", i+1, err)
		}
	}
	addrs, err := a.Addrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, ad := range addrs {
		if ad.LinkIndex == l.Index {
			t.Errorf("a0 still has %v", ad.Prefix)
		}
	}
}

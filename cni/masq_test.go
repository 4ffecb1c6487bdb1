package cni_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/google/nftables"

	"github.com/nsnet/nsnet/kernel"
)

// TestMasquerade puts an "outside" namespace behind the host that has no
// route back to the containers: only masqueraded traffic gets answers.
func TestMasquerade(t *testing.T) {
	before := takeSnapshot(t)
	d := nsDir(t)
	ext := newContainer(t, d, "ext")
	host := handle(t, hostNS(t))
	if err := host.AddVeth(kernel.Veth{Name: "ext0", Peer: "eth0", PeerNS: ext.ns}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { host.DelLink("ext0") })
	eh := handle(t, ext.ns)
	for _, s := range []struct {
		h    *kernel.Handle
		dev  string
		addr string
	}{
		{host, "ext0", "192.0.2.1/24"}, {host, "ext0", "2001:db8:e::1/64"},
		{eh, "eth0", "192.0.2.2/24"}, {eh, "eth0", "2001:db8:e::2/64"},
	} {
		if err := s.h.AddAddr(s.dev, netip.MustParsePrefix(s.addr), kernel.AddrOptions{NoDAD: true}); err != nil {
			t.Fatal(err)
		}
		if err := s.h.SetUp(s.dev); err != nil {
			t.Fatal(err)
		}
	}
	outside := []netip.Addr{netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("2001:db8:e::2")}

	plain := newNet(t, "plain", plugin{"mode": "ptp", "ipam": map[string]any{"type": "nsnet", "subnets": []string{"10.82.0.0/24", "fd82::/64"}}})
	masq := newNet(t, "masq", plugin{"mode": "ptp", "ipMasq": true, "ipam": map[string]any{"type": "nsnet", "subnets": []string{"10.81.0.0/24", "fd81::/64"}}})
	cp, c1, c2 := newContainer(t, d, "cp"), newContainer(t, d, "c1"), newContainer(t, d, "c2")
	plain.mustAdd(cp)
	masq.mustAdd(c1)
	masq.mustAdd(c2) // the rules and the subnet elements exist already
	for _, a := range outside {
		if err := ping(cp, a, time.Second); err == nil {
			t.Fatalf("container without masquerade reached %s, which has no route back: the test proves nothing", a)
		}
		pingOK(t, c1, a)
		pingOK(t, c2, a)
	}
	for _, c := range []*container{c1, c2} {
		if err := masq.check(c); err != nil {
			t.Fatalf("CHECK %s: %v", c.id, err)
		}
	}

	// CHECK notices a lost masquerade element.
	_, addrs, _ := linkIn(t, c1.ns, "eth0")
	nft, err := nftables.New()
	if err != nil {
		t.Fatal(err)
	}
	set := &nftables.Set{Table: &nftables.Table{Name: "nsnet-masq", Family: nftables.TableFamilyINet}, Name: "src4", KeyType: nftables.TypeIPAddr}
	if err := nft.SetDeleteElements(set, []nftables.SetElement{{Key: addrs[0].Addr().AsSlice()}}); err != nil {
		t.Fatal(err)
	}
	if err := nft.Flush(); err != nil {
		t.Fatal(err)
	}
	wantCNIError(t, masq.check(c1), 999, "not masqueraded")

	masq.mustDel(c1)
	masq.mustDel(c2)
	plain.mustDel(cp)
	// The table stays until GC finds the network unused.
	if err := masq.gc(); err != nil {
		t.Fatal(err)
	}
	masq.assertNoAllocations()
	host.DelLink("ext0")
	before.assertSame(t)
}

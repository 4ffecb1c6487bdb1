package kernel_test

import (
	"net"
	"net/netip"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/nsnet/nsnet/kernel"
)

// TestNeighTables reads the machine's neighbour tables from a namespace of
// the test's own (where /proc/sys shows none of their limits) and compares
// them with what ip ntable shows.
func TestNeighTables(t *testing.T) {
	ns, h := fresh(t)
	if err := h.AddVeth(kernel.Veth{Name: "a0", Peer: "b0"}); err != nil {
		t.Fatal(err)
	}
	if err := h.AddPermanentNeigh("a0", netip.MustParseAddr("10.9.9.9"), net.HardwareAddr{2, 0, 0, 0, 0, 9}); err != nil {
		t.Fatal(err)
	}
	ts, err := h.NeighTables()
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]kernel.NeighTable{}
	for _, x := range ts {
		byName[x.Name] = x
	}
	arp, ok := byName["arp_cache"]
	if !ok || arp.Family != 2 || arp.Thresh3 <= 0 || arp.Thresh3 < arp.Thresh2 || arp.Entries < 1 {
		t.Fatalf("arp_cache = %+v (tables %+v)", arp, ts)
	}
	if nd, ok := byName["ndisc_cache"]; !ok || nd.Family != 10 || nd.Thresh3 <= 0 {
		t.Errorf("ndisc_cache = %+v", nd)
	}
	ip, err := exec.LookPath("ip")
	if err != nil {
		t.Skip("no ip command to compare with")
	}
	var out strings.Builder
	cmd := exec.Command(ip, "ntable", "show", "name", "arp_cache")
	cmd.Stdout = &out
	if err := ns.Start(cmd); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`thresh1 (\d+) thresh2 (\d+) thresh3 (\d+)`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("ip ntable show:\n%s", out.String())
	}
	for k, want := range []int{arp.Thresh1, arp.Thresh2, arp.Thresh3} {
		if got, _ := strconv.Atoi(m[k+1]); got != want {
			t.Errorf("thresh%d: ip ntable shows %d, NeighTables %d", k+1, got, want)
		}
	}
}

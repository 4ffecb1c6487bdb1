package check

import (
	"net/netip"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/nsnet/nsnet/kernel"
	"github.com/nsnet/nsnet/netns"
)

// TestNeighbourTableFull: when the machine's ARP table refused entries
// while the probes ran, a pair refused at once (ENOBUFS) or left without an
// answer is blamed on it, naming the table, its limit and the fix on the
// bridge the pair shares; a bridge that already has static_neighbours is
// not offered as the fix.
func TestNeighbourTableFull(t *testing.T) {
	ns, err := netns.Current()
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	m := Matrix{Nodes: []string{"h1", "h2", "h3"}, Reach: make([][]bool, 3), Err: make([][]error, 3), raw: make([][]error, 3)}
	for i := range m.Reach {
		m.Reach[i], m.Err[i], m.raw[i] = make([]bool, 3), make([]error, 3), make([]error, 3)
	}
	m.Reach[0][1] = true
	m.raw[0][2] = unix.ENOBUFS // h1 -> h3 refused at once; the others: no answer
	m.tablesBefore = []kernel.NeighTable{{Name: "arp_cache", Family: unix.AF_INET, Thresh3: 1024, TableFulls: 7}}
	m.tablesAfter = []kernel.NeighTable{{Name: "arp_cache", Family: unix.AF_INET, Thresh3: 1024, Entries: 1100, TableFulls: 507}}
	x := &explainer{m: &m, snaps: map[string]*snapshot{}, full: map[bool]*kernel.NeighTable{}, fullBridges: map[string]bool{}}
	t3 := m.tablesAfter[0]
	t3.TableFulls = 500
	x.full[false] = &t3
	// Each node's end eth0 is a port's peer on bridge lan; their state is
	// what the explainer would read: up, routed on-link.
	topo := Topology{Peers: map[End]End{}, Ports: map[End]string{}, Bridges: map[string]string{"lan": "sw"}, Static: map[string]bool{}}
	var nodes []Node
	for k, n := range m.Nodes {
		a := netip.AddrFrom4([4]byte{10, 0, 0, byte(k + 1)})
		nodes = append(nodes, Node{Name: n, NS: ns, Addr: a, Iface: "eth0"})
		e, p := End{n, "eth0"}, End{"sw", n + "-eth0"}
		topo.Peers[e], topo.Peers[p] = p, e
		topo.Ports[p] = "lan"
		x.snaps[n] = &snapshot{
			links:  []kernel.Link{{Index: 2, Name: "eth0", Flags: unix.IFF_UP | unix.IFF_RUNNING}},
			addrs:  []kernel.Addr{{LinkIndex: 2, Prefix: netip.PrefixFrom(a, 24)}},
			routes: []kernel.Route{{Dst: netip.MustParsePrefix("10.0.0.0/24"), LinkIndex: 2}},
		}
		x.snaps[n].index()
	}
	x.snaps["sw"] = &snapshot{links: []kernel.Link{{Index: 9, Name: "lan", Flags: unix.IFF_UP | unix.IFF_RUNNING}}}
	for _, n := range m.Nodes {
		x.snaps["sw"].links = append(x.snaps["sw"].links, kernel.Link{Index: 10, Name: n + "-eth0", Flags: unix.IFF_UP | unix.IFF_RUNNING, MasterIndex: 9})
	}
	x.snaps["sw"].index()
	x.nodes, x.topo = nodes, topo
	x.run()
	if len(m.Failures) != 5 {
		t.Fatalf("%d failures, want 5: %+v", len(m.Failures), m.Failures)
	}
	for _, f := range m.Failures {
		c := f.Cause
		if c.Kind != CauseNeighFull || !strings.Contains(c.Detail, "arp_cache refused 500 entries") || !strings.Contains(c.Detail, "gc_thresh3 = 1024") ||
			!strings.HasPrefix(c.Fix, "set static_neighbours: true on bridge lan ") {
			t.Errorf("%s -> %s: %+v", m.Nodes[f.From], m.Nodes[f.To], c)
		}
	}
	// With static_neighbours already there, the fix is the limit itself.
	x.topo.Static["lan"] = true
	x.fullBridges = map[string]bool{}
	x.run()
	if f := m.Failures[0].Cause.Fix; !strings.HasPrefix(f, "raise net.ipv4.neigh.default.gc_thresh3") {
		t.Errorf("fix on a static bridge: %q", f)
	}
}

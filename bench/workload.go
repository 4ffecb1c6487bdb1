// Package bench measures how fast isolated networks are built and torn down:
// the hosts-N workload done by iproute2 one process per command, by
// iproute2's batch mode, by a tuned single-process netlink loop (the floor),
// and by nsnet's labs, in turn, in the same run.
//
// Workload hosts-N: N nodes, each a named namespace with lo up and one veth
// whose inside end is eth0, addressed and up. In bridge mode the outside end
// is a port of one bridge in the host; in ptp mode it stays in the host with
// a /32 route to the node. Teardown counts until the kernel has really
// removed the devices, since namespace cleanup in the kernel is
// asynchronous.
package bench

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// Mode is the workload's topology.
type Mode string

const (
	Bridge Mode = "bridge"
	PTP    Mode = "ptp"
)

// MaxBridgeNodes is the most ports a Linux bridge holds.
const MaxBridgeNodes = 1023

// Workload is hosts-N in one mode.
type Workload struct {
	Mode Mode
	N    int
	// Prefix names everything the workload creates, so runs can be told
	// apart and nothing else is touched.
	Prefix string
}

// Validate checks the workload's bounds.
func (w Workload) Validate() error {
	switch {
	case w.Mode != Bridge && w.Mode != PTP:
		return fmt.Errorf("mode %q: must be bridge or ptp", w.Mode)
	case w.N < 1 || w.N > 60000:
		return fmt.Errorf("n %d: must be 1-60000", w.N)
	case w.Mode == Bridge && w.N > MaxBridgeNodes:
		return fmt.Errorf("n %d: a bridge holds at most %d ports", w.N, MaxBridgeNodes)
	case w.Prefix == "" || len(w.Prefix) > 4 || strings.ContainsAny(w.Prefix, "/:% \t\n."):
		return fmt.Errorf("prefix %q: must be 1-4 plain characters", w.Prefix)
	}
	return nil
}

// String names the workload, e.g. "hosts-1000/ptp".
func (w Workload) String() string { return fmt.Sprintf("hosts-%d/%s", w.N, w.Mode) }

// NS is node i's namespace name.
func (w Workload) NS(i int) string { return fmt.Sprintf("%s%d", w.Prefix, i) }

// HostIf is the name of node i's veth end in the host.
func (w Workload) HostIf(i int) string { return fmt.Sprintf("%sv%d", w.Prefix, i) }

// BridgeName is the bridge of bridge mode.
func (w Workload) BridgeName() string { return w.Prefix + "br" }

// Addr is node i's address on eth0: 10.96.0.0/12 leaves room for 60,000
// nodes.
func (w Workload) Addr(i int) netip.Addr {
	v := uint32(10)<<24 | uint32(96)<<16 | uint32(i+2)
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// Prefix returns node i's address with its prefix length: the bridge's
// subnet in bridge mode, a host route in ptp mode.
func (w Workload) NodePrefix(i int) netip.Prefix {
	if w.Mode == Bridge {
		return netip.PrefixFrom(w.Addr(i), 12)
	}
	return netip.PrefixFrom(w.Addr(i), 32)
}

// Gateway is the host's address: on the bridge, or on every host-side veth
// in ptp mode.
func (w Workload) Gateway() netip.Addr { return netip.MustParseAddr("10.96.0.1") }

// NodeMAC and HostMAC are fixed per node, so the ptp mode can install
// permanent neighbour entries: the kernel's neighbour table is shared by all
// namespaces and holds about 1024 dynamic entries (gc_thresh3), far fewer
// than 10,000 nodes need.
func (w Workload) NodeMAC(i int) net.HardwareAddr {
	return net.HardwareAddr{0x02, 0x6e, 0x73, byte(i >> 16), byte(i >> 8), byte(i)}
}

// HostMAC is the MAC of node i's host-side veth.
func (w Workload) HostMAC(i int) net.HardwareAddr {
	return net.HardwareAddr{0x02, 0x6e, 0x74, byte(i >> 16), byte(i >> 8), byte(i)}
}

// IPCommands lists the workload's setup as iproute2 commands, each with the
// namespace it runs in ("" for the host), in order. Batch mode and
// one-process-per-command both run these.
func (w Workload) IPCommands() []Cmd {
	var cs []Cmd
	gw := w.Gateway()
	if w.Mode == Bridge {
		cs = append(cs,
			Cmd{"", fmt.Sprintf("link add %s type bridge", w.BridgeName())},
			Cmd{"", fmt.Sprintf("addr add %s/12 dev %s", gw, w.BridgeName())},
			Cmd{"", fmt.Sprintf("link set %s up", w.BridgeName())},
		)
	}
	for i := 0; i < w.N; i++ {
		ns, hi := w.NS(i), w.HostIf(i)
		cs = append(cs,
			Cmd{"", "netns add " + ns},
			Cmd{"", fmt.Sprintf("link add %s address %s type veth peer name eth0 address %s netns %s", hi, w.HostMAC(i), w.NodeMAC(i), ns)},
		)
		if w.Mode == Bridge {
			cs = append(cs, Cmd{"", fmt.Sprintf("link set %s master %s up", hi, w.BridgeName())})
		} else {
			cs = append(cs,
				Cmd{"", fmt.Sprintf("addr add %s/32 dev %s", gw, hi)},
				Cmd{"", fmt.Sprintf("link set %s up", hi)},
				Cmd{"", fmt.Sprintf("neigh add %s lladdr %s dev %s nud permanent", w.Addr(i), w.NodeMAC(i), hi)},
				Cmd{"", fmt.Sprintf("route add %s/32 dev %s", w.Addr(i), hi)},
			)
		}
		cs = append(cs,
			Cmd{ns, "link set lo up"},
			Cmd{ns, fmt.Sprintf("addr add %s dev eth0", w.NodePrefix(i))},
			Cmd{ns, "link set eth0 up"},
		)
		if w.Mode == PTP {
			cs = append(cs,
				Cmd{ns, fmt.Sprintf("neigh add %s lladdr %s dev eth0 nud permanent", gw, w.HostMAC(i))},
				Cmd{ns, fmt.Sprintf("route add %s/32 dev eth0", gw)},
				Cmd{ns, fmt.Sprintf("route add default via %s", gw)},
			)
		}
	}
	return cs
}

// IPTeardown lists the teardown as iproute2 commands.
func (w Workload) IPTeardown() []Cmd {
	var cs []Cmd
	for i := 0; i < w.N; i++ {
		cs = append(cs, Cmd{"", "netns del " + w.NS(i)})
	}
	if w.Mode == Bridge {
		cs = append(cs, Cmd{"", "link del " + w.BridgeName()})
	}
	return cs
}

// Cmd is one iproute2 command line (without "ip") and where it runs.
type Cmd struct {
	NS   string
	Args string
}

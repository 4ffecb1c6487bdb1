package lab

import "net/netip"

// Permanent neighbour entries on point-to-point links.
//
// Both ends of a lab's veth pair have MAC addresses the lab derives, so on a
// link that is not a bridge port the MAC behind every address of the peer is
// known in advance. Installing it as a permanent neighbour entry is always
// correct and spares ARP (and IPv6 neighbour discovery) altogether, which
// matters at scale: the kernel's neighbour table is shared by all
// namespaces and holds about 1,024 dynamic entries (gc_thresh3, settable
// only in the initial namespace), so 10,000 nodes each resolving their
// gateway overflow it, while permanent entries do not count.

// NeighKey identifies a neighbour entry in a namespace.
type NeighKey struct {
	Dev string
	IP  netip.Addr
}

// Neighbours lists the permanent neighbour entries up gives a veth end (all
// mapping to its peer's MAC): none unless the link is point-to-point.
func Neighbours(i *Interface) []netip.Addr { return (&planner{}).neighbours(i) }

// ptp reports whether i is a veth end on a point-to-point link: neither end
// is a bridge port and the peer's MAC is known.
func ptp(i *Interface) bool {
	return i.Kind == KindVeth && i.Master == nil && i.Peer != nil && i.Peer.Master == nil && i.Peer.MAC != nil
}

// neighbours lists the addresses i reaches directly at its peer: the peer's
// own addresses (and its IPv6 link-local address), then the destinations of
// i's node's single-address routes through i (dev i, no gateway) that are
// addresses of the peer's node (a node answers for its addresses on any of
// its interfaces).
func (p *planner) neighbours(i *Interface) []netip.Addr {
	if !ptp(i) {
		return nil
	}
	peer := i.Peer
	var out []netip.Addr
	seen := map[netip.Addr]bool{}
	add := func(a netip.Addr) {
		if !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	for _, a := range peer.Addrs {
		add(a.Addr())
	}
	if peer.IPv6() {
		add(peer.LinkLocal().Addr())
	}
	hosts := p.hostRoutes(i.Node)[i.Name]
	if len(hosts) == 0 {
		return out
	}
	addrs := p.addrsOf(peer.Node)
	for _, a := range hosts {
		if addrs[a] {
			add(a)
		}
	}
	return out
}

// hostRoutes returns a node's routes to single addresses without a gateway,
// by device.
func (p *planner) hostRoutes(n *Node) map[string][]netip.Addr {
	if m, ok := p.devHosts[n]; ok {
		return m
	}
	if p.devHosts == nil {
		p.devHosts = map[*Node]map[string][]netip.Addr{}
	}
	var m map[string][]netip.Addr
	for _, r := range n.Routes {
		if r.Dev == "" || r.Via.IsValid() || !r.To.IsValid() || r.To.Bits() != r.To.Addr().BitLen() {
			continue
		}
		if m == nil {
			m = map[string][]netip.Addr{}
		}
		m[r.Dev] = append(m[r.Dev], r.To.Addr())
	}
	p.devHosts[n] = m
	return m
}

// addrsOf returns the addresses of a node's interfaces.
func (p *planner) addrsOf(n *Node) map[netip.Addr]bool {
	if m, ok := p.nodeAddrs[n]; ok {
		return m
	}
	if p.nodeAddrs == nil {
		p.nodeAddrs = map[*Node]map[netip.Addr]bool{}
	}
	m := map[netip.Addr]bool{}
	for _, i := range n.Interfaces {
		for _, a := range i.Addrs {
			m[a.Addr()] = true
		}
	}
	p.nodeAddrs[n] = m
	return m
}

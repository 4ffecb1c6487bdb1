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
func Neighbours(i *Interface) []netip.Addr {
	refs := (&planner{}).neighbours(i)
	out := make([]netip.Addr, len(refs))
	for k, r := range refs {
		out[k] = neighAddr(i, r)
	}
	return out
}

// ptp reports whether i is a veth end on a point-to-point link: neither end
// is a bridge port and the peer's MAC is known.
func ptp(i *Interface) bool {
	return i.Kind == KindVeth && i.Master == nil && i.Peer != nil && i.Peer.Master == nil && i.Peer.MAC != (MAC{})
}

// A neighbour reference says where in the lab a neighbour address of an
// interface i is, so that a step can name it in its Index rather than point
// at a copy (at 10,000 nodes, 20,000 of them): k >= 0 is i.Peer.Addrs[k],
// -1 the peer's IPv6 link-local address, -2-j the destination of
// i.Node.Routes[j].
const peerLinkLocal = -1

// neighAddr is the address of neighbour reference r of i.
func neighAddr(i *Interface, r int32) netip.Addr {
	switch {
	case r >= 0:
		return i.Peer.Addrs[r].Addr()
	case r == peerLinkLocal:
		return i.Peer.LinkLocal().Addr()
	}
	return i.Node.Routes[-2-r].To.Addr()
}

// neighbours lists the addresses i reaches directly at its peer, as
// references (see neighAddr): the peer's own addresses (and its IPv6
// link-local address), then the destinations of i's node's single-address
// routes through i (dev i, no gateway) that are addresses of the peer's node
// (a node answers for its addresses on any of its interfaces).
func (p *planner) neighbours(i *Interface) []int32 {
	if !ptp(i) {
		return nil
	}
	peer := i.Peer
	var out []int32
	seen := map[netip.Addr]bool{}
	add := func(a netip.Addr, r int32) {
		if !seen[a] {
			seen[a] = true
			out = append(out, r)
		}
	}
	for k, a := range peer.Addrs {
		add(a.Addr(), int32(k))
	}
	if peer.IPv6() {
		add(peer.LinkLocal().Addr(), peerLinkLocal)
	}
	for _, j := range p.hostRoutes(i.Node, i.Name) {
		if a := i.Node.Routes[j].To.Addr(); p.hasAddr(peer.Node, a) {
			add(a, -2-j)
		}
	}
	return out
}

// manyThings is where a node's routes or interfaces are worth a map, built
// once and kept while planning: a lab's nodes mostly have a few of each,
// 10,000 maps of them cost more than the plan, and the host of a big lab has
// thousands.
const manyThings = 16

// hostRoutes returns the numbers of a node's routes to single addresses
// through dev without a gateway.
func (p *planner) hostRoutes(n *Node, dev string) []int32 {
	if len(n.Routes) < manyThings {
		var out []int32
		for j, r := range n.Routes {
			if r.Dev == dev && isHostRoute(r) {
				out = append(out, int32(j))
			}
		}
		return out
	}
	if m, ok := p.devHosts[n]; ok {
		return m[dev]
	}
	if p.devHosts == nil {
		p.devHosts = map[*Node]map[string][]int32{}
	}
	var m map[string][]int32
	for j, r := range n.Routes {
		if r.Dev == "" || !isHostRoute(r) {
			continue
		}
		if m == nil {
			m = map[string][]int32{}
		}
		m[r.Dev] = append(m[r.Dev], int32(j))
	}
	p.devHosts[n] = m
	return m[dev]
}

// isHostRoute reports whether r is a route to a single address without a
// gateway.
func isHostRoute(r Route) bool {
	return !r.Via.IsValid() && r.To.IsValid() && r.To.Bits() == r.To.Addr().BitLen()
}

// hasAddr reports whether a is an address of one of n's interfaces.
func (p *planner) hasAddr(n *Node, a netip.Addr) bool {
	if len(n.Interfaces) < manyThings {
		return n.InterfaceWith(a) != nil
	}
	m, ok := p.nodeAddrs[n]
	if !ok {
		if p.nodeAddrs == nil {
			p.nodeAddrs = map[*Node]map[netip.Addr]bool{}
		}
		m = map[netip.Addr]bool{}
		for _, i := range n.Interfaces {
			for _, p := range i.Addrs {
				m[p.Addr()] = true
			}
		}
		p.nodeAddrs[n] = m
	}
	return m[a]
}

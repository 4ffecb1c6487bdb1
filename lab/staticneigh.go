package lab

import (
	"net"
	"net/netip"
)

// Permanent neighbour entries on bridges that ask for them.
//
// The kernel's neighbour tables (ARP, IPv6 neighbour discovery) are one per
// family for the whole machine, and refuse a new dynamic entry once
// gc_thresh3 (1,024 by default, settable only in the initial namespace)
// exist in all namespaces together. On one bridge of N nodes every node
// talking to every other needs N*(N-1) entries: 200 nodes need 39,800, so
// most of them are refused and most pairs never reach. Permanent entries
// do not count against the limit, and every station's MAC on a lab bridge
// is known in advance (derived from the lab and the link's name), so a
// bridge with static_neighbours: true gets them all from up: each station
// an entry for every other station's addresses on its subnets (and IPv6
// link-local address). They cost kernel memory (about 350 bytes each: a
// bridge of 1,000 nodes holds a million entries, about 350 MB) and are
// made in each station's namespace's batch.
//
// A station is an interface directly on the bridge that has addresses: a
// port's peer (the node's end of the link) or the bridge itself.

// NeighEntry is one permanent neighbour entry.
type NeighEntry struct {
	IP  netip.Addr
	MAC net.HardwareAddr
}

// staticBridge is the bridge with static_neighbours of which i is a
// station, or nil.
func staticBridge(i *Interface) *Bridge {
	if len(i.Addrs) == 0 {
		return nil
	}
	switch {
	case i.Kind == KindBridge && i.Bridge != nil && i.Bridge.StaticNeighbours:
		return i.Bridge
	case i.Kind != KindBridge && i.Master == nil && i.Peer != nil && i.Peer.Master != nil && i.Peer.Master.Bridge != nil && i.Peer.Master.Bridge.StaticNeighbours:
		return i.Peer.Master.Bridge
	}
	return nil
}

// stations lists the interfaces directly on b that have addresses.
func (b *Bridge) stations() []*Interface {
	var out []*Interface
	if b.Iface != nil && len(b.Iface.Addrs) > 0 {
		out = append(out, b.Iface)
	}
	for _, p := range b.Ports {
		if t := p.Peer; t != nil && t.Master == nil && len(t.Addrs) > 0 && t.MAC != (MAC{}) {
			out = append(out, t)
		}
	}
	return out
}

// StaticNeighbours lists the permanent entries up gives station i of a
// bridge with static_neighbours: every other station's addresses that are
// on one of i's subnets, and its IPv6 link-local address when both have
// IPv6, each mapped to that station's MAC. None when i is no such station.
func StaticNeighbours(i *Interface) []NeighEntry {
	b := staticBridge(i)
	if b == nil {
		return nil
	}
	var out []NeighEntry
	for _, t := range b.stations() {
		out = entriesFor(out, i, t)
	}
	return out
}

// entriesFor appends station i's entries for station t (none for itself).
func entriesFor(out []NeighEntry, i, t *Interface) []NeighEntry {
	if t == i {
		return out
	}
	for _, a := range t.Addrs {
		if onLink(i, a.Addr()) {
			out = append(out, NeighEntry{a.Addr(), t.MAC[:]})
		}
	}
	if i.IPv6() && t.IPv6() {
		out = append(out, NeighEntry{t.LinkLocal().Addr(), t.MAC[:]})
	}
	return out
}

// onLink reports whether a is on one of i's subnets.
func onLink(i *Interface, a netip.Addr) bool {
	for _, p := range i.Addrs {
		if p.Masked().Contains(a) {
			return true
		}
	}
	return false
}

// Drift repair. A second up must not read the entries back whole: the
// kernel keeps one neighbour table for all namespaces, and a namespace's
// dump walks every entry of every namespace (neigh_dump_table skips other
// namespaces' entries one by one; no dump filter, NDA_IFINDEX or
// NDA_MASTER, avoids the walk), so dumping each of a big bridge's
// namespaces is quadratic: 1,000 stations hold a million entries and a
// second up took minutes. Looking each entry up costs a round trip per
// entry, more than the dumps. So up looks up a sample of each station's
// entries (neighSample: the first and the last, a hash lookup each), and
// gives the station all of them again (neigh replace, in its namespace's
// batch) when one of the sample is missing or wrong, or when its link is
// new or was down. What takes a station's entries away takes all of them
// (its link taken down, deleted or recreated; ip neigh flush nud permanent
// dev IF): the sample sees it. An entry deleted alone by hand, not in the
// sample, is not noticed (down and up of the lab brings it back).

// neighSample is the part of station i's entries up looks up to tell
// whether the station still has them.
func neighSample(i *Interface) []NeighEntry {
	b := staticBridge(i)
	if b == nil {
		return nil
	}
	// The first and the last of StaticNeighbours(i), without making the
	// others: a station of a big bridge has thousands.
	st := b.stations()
	var first, last []NeighEntry
	for k := 0; k < len(st) && len(first) == 0; k++ {
		first = entriesFor(nil, i, st[k])
	}
	for k := len(st) - 1; k >= 0 && len(last) == 0; k-- {
		last = entriesFor(nil, i, st[k])
	}
	if len(first) == 0 {
		return nil
	}
	a, z := first[0], last[len(last)-1]
	if a.IP == z.IP {
		return []NeighEntry{a}
	}
	return []NeighEntry{a, z}
}

// hasNeighbours reports whether the observed permanent entries hold the
// sample of station i's entries.
func hasNeighbours(have map[NeighKey]string, i *Interface) bool {
	for _, e := range neighSample(i) {
		if have[NeighKey{i.Name, e.IP}] != e.MAC.String() {
			return false
		}
	}
	return true
}

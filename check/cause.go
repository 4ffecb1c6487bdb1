package check

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/nsnet/nsnet/fault"
	"github.com/nsnet/nsnet/kernel"
	"github.com/nsnet/nsnet/netns"
	"github.com/nsnet/nsnet/probe"
)

// Kinds of cause, as JSON names them.
const (
	CauseProbeError   = "probe-error"          // the probe could not run
	CauseNodeMissing  = "node-missing"         // a node's namespace is gone
	CausePartitioned  = "partitioned"          // nsnet partition cuts the pair
	CauseFaulted      = "faulted"              // a fault nsnet set drops the packets
	CauseLinkDown     = "link-down"            // an end of the path's link, or its bridge, is down or gone
	CauseNoRoute      = "no-route"             // no route there, or none back
	CauseNeighFull    = "neighbour-table-full" // the kernel's shared neighbour table refused the entry
	CauseNoNeighbour  = "no-neighbour"         // nothing answered ARP or neighbour discovery
	CauseEchoIgnored  = "echo-ignored"         // the target ignores echo requests (a sysctl)
	CauseNoAnswer     = "no-answer"            // everything nsnet can see is in order, yet no reply
	CauseBacklog      = "backlog-drops"        // no reply, while the kernel's receive backlog dropped packets
	CauseNotOnBridge  = "not-a-port"           // a bridge-side end is not a port of its bridge
	CauseAddrMissing  = "address-missing"      // the target no longer holds the address
	CauseRemote       = "remote"               // the target is on another machine, whose kernel state is not read from here
	causeKindsInOrder = "probe-error node-missing partitioned faulted link-down not-a-port address-missing no-route remote neighbour-table-full no-neighbour echo-ignored backlog-drops no-answer"
)

// Cause is why one pair was not reached.
type Cause struct {
	Kind   string // one of the Cause* names
	Detail string // what, naming nodes and interfaces: "h7:eth0 is down"
	// Fix says what to change, when nsnet knows (the neighbour table's
	// limit).
	Fix string
	// Told is true when nsnet was told to make the pair fail (a partition
	// or a fault in force): the pair fails as told.
	Told bool
}

func (c Cause) String() string {
	if c.Detail == "" {
		return strings.ReplaceAll(c.Kind, "-", " ")
	}
	return strings.ReplaceAll(c.Kind, "-", " ") + ": " + c.Detail
}

// End is one end of a lab link: an interface of a node.
type End struct{ Node, Iface string }

func (e End) String() string { return e.Node + ":" + e.Iface }

// Topology is what the lab knows of itself that the kernel cannot say: which
// end is whose peer, which end is a port of which bridge, and what nsnet
// was told to break. Explain uses it to name the end of a link that is down
// and to tell a failure nsnet was asked for from one it was not.
type Topology struct {
	// NS are namespaces of nodes that are not probed (a node that only
	// holds bridges), by node name.
	NS map[string]*netns.NS
	// Peers maps each veth end to its other end.
	Peers map[End]End
	// Ports maps a bridge port (the bridge-side end of a link) to its
	// bridge's name; Bridges maps a bridge's name to its node.
	Ports   map[End]string
	Bridges map[string]string
	// Static are the bridges with static_neighbours: true.
	Static map[string]bool
	// Partition is the partition in force (nsnet partition), if any.
	Partition *fault.Partition
	// Faults are the faults in force on link ends (the file's and nsnet
	// fault set's).
	Faults map[End]fault.Spec
	// Isolated are the ordered pairs of nodes the lab expects to be
	// isolated (expect: isolated over icmp): not a failure when they do
	// not reach.
	Isolated map[[2]string]bool
	// Remote maps the nodes on other machines (a lab across machines) to
	// their hosts: their state is not read from here.
	Remote map[string]string
}

// Failure is one ordered pair of the matrix that was not reached.
type Failure struct {
	From, To int // indexes into Matrix.Nodes
	Cause    Cause
}

// snapshot is what Explain reads of one namespace, once.
type snapshot struct {
	missing bool
	links   []kernel.Link
	byName  map[string]*kernel.Link
	byIndex map[int]*kernel.Link
	addrs   []kernel.Addr
	routes  []kernel.Route
	ignore  map[bool]string // echo_ignore_all by v6, "" when 0 or unread
}

// explainer attributes the failed pairs of one matrix.
type explainer struct {
	m     *Matrix
	nodes []Node
	topo  Topology
	snaps map[string]*snapshot
	// full is the neighbour table that refused entries during the sweep,
	// by v6; nil when none did.
	full map[bool]*kernel.NeighTable
	// fullBridges are the bridges of the pairs blamed on a full table.
	fullBridges map[string]bool
}

// Explain attributes every failed pair of m to a cause, from the probe's
// error, the kernel's state of the nodes involved (read once per namespace,
// after the probes) and what the lab says of itself, and fills
// m.Failures. nodes are those m was made from.
//
// A pair that got no answer for no reason nsnet can see is asked again,
// twice at most (once when asking again recovers none), a few thousand at a
// time: tens of thousands of
// echo requests sent at once on a loaded machine can take longer than the
// timeout, or overflow the kernel's per-CPU receive backlog
// (net.core.netdev_max_backlog, the machine's), which drops them silently.
func (m *Matrix) Explain(ctx context.Context, nodes []Node, topo Topology) {
	m.explain(nodes, topo)
	for round := 0; round < maxRetries && ctx.Err() == nil; round++ {
		var again []Failure
		var pairs []probe.Pair
		for _, f := range m.Failures {
			if f.Cause.Kind == CauseNoAnswer || f.Cause.Kind == CauseBacklog {
				again = append(again, f)
				pairs = append(pairs, probe.Pair{From: nodes[f.From].NS, To: nodes[f.To].Addr})
			}
		}
		if len(again) == 0 {
			return
		}
		// A few thousand at a time: the first sweep's burst is what the
		// backlog dropped.
		before, ok := backlogDrops()
		recovered := 0
		for lo := 0; lo < len(pairs) && ctx.Err() == nil; lo += retryChunk {
			hi := min(lo+retryChunk, len(pairs))
			for k, r := range probe.Sweep(ctx, pairs[lo:hi], m.timeout) {
				m.set(again[lo+k].From, again[lo+k].To, r)
				if r.Reply {
					recovered++
				}
			}
		}
		if after, ok2 := backlogDrops(); ok && ok2 && after > before {
			m.backlogDrops += after - before
		}
		m.explain(nodes, topo)
		if recovered == 0 {
			return // asking again changes nothing
		}
	}
}

// retryChunk is how many pairs Explain asks again at once.
const retryChunk = 4096

func (m *Matrix) explain(nodes []Node, topo Topology) {
	x := &explainer{m: m, nodes: nodes, topo: topo, snaps: map[string]*snapshot{}, full: map[bool]*kernel.NeighTable{}, fullBridges: map[string]bool{}}
	for _, after := range m.tablesAfter {
		for _, before := range m.tablesBefore {
			if after.Name == before.Name && after.TableFulls > before.TableFulls {
				t := after
				t.TableFulls -= before.TableFulls
				x.full[after.Family == unix.AF_INET6] = &t
			}
		}
	}
	x.run()
}

// run fills m.Failures.
func (x *explainer) run() {
	m, nodes, topo := x.m, x.nodes, x.topo
	m.Failures = m.Failures[:0]
	m.Isolated = 0
	for i := range m.Reach {
		for j := range m.Reach[i] {
			if i == j || m.Reach[i][j] || !nodes[j].Addr.IsValid() {
				continue
			}
			if topo.Isolated[[2]string{nodes[i].Name, nodes[j].Name}] {
				m.Isolated++
				continue
			}
			m.Failures = append(m.Failures, Failure{From: i, To: j, Cause: x.cause(i, j)})
		}
	}
	if len(x.fullBridges) > 0 || len(x.full) > 0 {
		fix := x.neighFix()
		for k := range m.Failures {
			if m.Failures[k].Cause.Kind == CauseNeighFull {
				m.Failures[k].Cause.Fix = fix
			}
		}
	}
}

func (x *explainer) snap(node string) *snapshot {
	if s, ok := x.snaps[node]; ok {
		return s
	}
	var ns *netns.NS
	for _, n := range x.nodes {
		if n.Name == node {
			ns = n.NS
		}
	}
	if ns == nil {
		ns = x.topo.NS[node]
	}
	s := &snapshot{missing: true}
	x.snaps[node] = s
	if ns == nil {
		return s
	}
	h, err := kernel.Open(ns)
	if err != nil {
		return s
	}
	defer h.Close()
	links, err1 := h.Links()
	addrs, err2 := h.Addrs()
	routes, err3 := h.Routes()
	if err1 != nil || err2 != nil || err3 != nil {
		return s
	}
	s.missing = false
	s.links, s.addrs, s.routes = links, addrs, routes
	s.index()
	s.ignore = map[bool]string{}
	for v6, key := range map[bool]string{false: "net.ipv4.icmp_echo_ignore_all", true: "net.ipv6.icmp.echo_ignore_all"} {
		if v, err := ns.ReadSysctl(key); err == nil && v != "0" {
			s.ignore[v6] = key + "=" + v
		}
	}
	return s
}

// index makes s's maps of its links.
func (s *snapshot) index() {
	s.byName = make(map[string]*kernel.Link, len(s.links))
	s.byIndex = make(map[int]*kernel.Link, len(s.links))
	for k := range s.links {
		s.byName[s.links[k].Name] = &s.links[k]
		s.byIndex[s.links[k].Index] = &s.links[k]
	}
}

// route is the route s uses towards dst: the most specific one whose
// destination holds it.
func (s *snapshot) route(dst netip.Addr) (kernel.Route, bool) {
	best, bestBits := kernel.Route{}, -1
	for _, r := range s.routes {
		bits := 0 // a default route (of dst's family when it has a gateway)
		switch {
		case r.Dst.IsValid():
			if r.Dst.Addr().Is4() != dst.Is4() || !r.Dst.Contains(dst) {
				continue
			}
			bits = r.Dst.Bits()
		case r.Gateway.IsValid() && r.Gateway.Is4() != dst.Is4():
			continue
		}
		if bits > bestBits {
			best, bestBits = r, bits
		}
	}
	return best, bestBits >= 0
}

// downWith is an admin-down link of s with an address whose subnet holds
// dst: its routes went with it, so no route names it.
func (s *snapshot) downWith(dst netip.Addr) string {
	for _, a := range s.addrs {
		if l := s.byIndex[a.LinkIndex]; l != nil && !l.Up() && a.Prefix.Masked().Contains(dst) {
			return l.Name
		}
	}
	return ""
}

// ifaceOf is the link of s that holds a, or "".
func (s *snapshot) ifaceOf(a netip.Addr) string {
	for _, ad := range s.addrs {
		if ad.Prefix.Addr() == a {
			if l := s.byIndex[ad.LinkIndex]; l != nil {
				return l.Name
			}
		}
	}
	return ""
}

// srcAddr is the address s sends from towards dst over link (the route's
// preferred source, else the link's first address of dst's family).
func (s *snapshot) srcAddr(r kernel.Route, dst netip.Addr) netip.Addr {
	if r.Src.IsValid() {
		return r.Src
	}
	for _, a := range s.addrs {
		if a.LinkIndex == r.LinkIndex && a.Prefix.Addr().Is4() == dst.Is4() && !a.Prefix.Addr().IsLinkLocalUnicast() {
			return a.Prefix.Addr()
		}
	}
	return netip.Addr{}
}

func (x *explainer) cause(i, j int) Cause {
	src, dst := x.nodes[i], x.nodes[j]
	if err := x.m.Err[i][j]; err != nil {
		return Cause{Kind: CauseProbeError, Detail: err.Error()}
	}
	for _, n := range []Node{src, dst} {
		if n.Host != "" {
			continue
		}
		if n.NS == nil || x.snap(n.Name).missing {
			d := n.Name + "'s namespace is gone"
			if n.Missing != "" {
				d = n.Name + ": " + n.Missing
			}
			return Cause{Kind: CauseNodeMissing, Detail: d}
		}
	}
	if p := x.topo.Partition; p != nil && (p.Blocks(src.Name, dst.Name) || p.Blocks(dst.Name, src.Name)) {
		return Cause{Kind: CausePartitioned, Detail: "nsnet partition " + p.String(), Told: true}
	}
	ss, ds := x.snap(src.Name), x.snap(dst.Name)
	perr := x.m.probeErr(i, j)
	// The path's ends nsnet knows: the source's link out and the target's
	// link in, each with its peer.
	var outIf string
	r, routed := ss.route(dst.Addr)
	if routed {
		if l := ss.byIndex[r.LinkIndex]; l != nil {
			outIf = l.Name
		}
	} else {
		outIf = ss.downWith(dst.Addr)
	}
	inIf := dst.Iface
	if inIf == "" {
		inIf = ds.ifaceOf(dst.Addr)
	}
	// The source's side first: a path it cannot even start on is its
	// problem, whatever the target's state.
	if outIf != "" {
		if c, ok := x.endTrouble(End{src.Name, outIf}); ok {
			return c
		}
	}
	if !routed || errors.Is(perr, unix.ENETUNREACH) {
		return Cause{Kind: CauseNoRoute, Detail: src.Name + " has no route to the target's address"}
	}
	if dst.Host != "" {
		// Its namespace is on that machine: nsnet does not guess.
		return Cause{Kind: CauseRemote, Detail: "on " + dst.Host + ": not checked from here (nsnet check --all there says why)"}
	}
	if inIf != "" {
		if c, ok := x.endTrouble(End{dst.Name, inIf}); ok {
			return c
		}
		if ds.ifaceOf(dst.Addr) == "" {
			return Cause{Kind: CauseAddrMissing, Detail: fmt.Sprintf("%s:%s no longer holds %s", dst.Name, inIf, dst.Addr)}
		}
	}
	if back := ss.srcAddr(r, dst.Addr); back.IsValid() {
		if _, ok := ds.route(back); !ok {
			return Cause{Kind: CauseNoRoute, Detail: dst.Name + " has no route back to the source's address"}
		}
	}
	v6 := dst.Addr.Is6()
	if t := x.full[v6]; errors.Is(perr, unix.ENOBUFS) || t != nil && (perr == nil || errors.Is(perr, unix.EHOSTUNREACH)) {
		if b := x.topo.Ports[x.topo.Peers[End{src.Name, outIf}]]; b != "" {
			x.fullBridges[b] = true
		}
		return Cause{Kind: CauseNeighFull, Detail: neighDetail(t, v6)}
	}
	if errors.Is(perr, unix.EHOSTUNREACH) {
		what := "the target"
		if r.Gateway.IsValid() {
			what = "the gateway " + r.Gateway.String()
		}
		return Cause{Kind: CauseNoNeighbour, Detail: fmt.Sprintf("%s did not answer %s on %s:%s", what, map[bool]string{false: "ARP", true: "neighbour discovery"}[v6], src.Name, outIf)}
	}
	if ign := ds.ignore[v6]; ign != "" {
		return Cause{Kind: CauseEchoIgnored, Detail: dst.Name + " has " + ign}
	}
	if n := x.m.backlogDrops; n > 0 {
		return Cause{Kind: CauseBacklog, Detail: fmt.Sprintf("no reply, even asked again; the machine's per-CPU receive backlogs dropped %d packets during the check (net.core.netdev_max_backlog of the initial namespace; probes sent all at once, or other traffic on the machine)", n),
			Fix: "check again on a quieter machine, or raise net.core.netdev_max_backlog in the machine's initial namespace, as root"}
	}
	return Cause{Kind: CauseNoAnswer, Detail: "no reply within the timeout, though both ends' links are up and routes go both ways (a filter, or a hop beyond the first)"}
}

// endTrouble is what nsnet can see wrong with a link end of the path: a
// fault in force on it or its peer, or its link's state.
func (x *explainer) endTrouble(e End) (Cause, bool) {
	if c, ok := x.faulted(e); ok {
		return c, true
	}
	return x.linkTrouble(e)
}

func neighDetail(t *kernel.NeighTable, v6 bool) string {
	name, fam := "arp_cache", "ipv4"
	if v6 {
		name, fam = "ndisc_cache", "ipv6"
	}
	if t == nil {
		return fmt.Sprintf("the kernel refused a %s entry (ENOBUFS): its limit net.%s.neigh.default.gc_thresh3 counts the dynamic entries of every namespace on the machine", name, fam)
	}
	return fmt.Sprintf("the kernel's %s refused %d entries during this check: it holds at most gc_thresh3 = %d dynamic entries (net.%s.neigh.default.gc_thresh3 of the initial namespace) for all namespaces on the machine together; %d entries now",
		name, t.TableFulls, t.Thresh3, fam, t.Entries)
}

// neighFix says what lifts the limit: permanent entries on the bridges of
// the pairs that failed, or a larger gc_thresh3 (only in the machine's
// initial namespace).
func (x *explainer) neighFix() string {
	var static, open []string
	for b := range x.fullBridges {
		if x.topo.Static[b] {
			static = append(static, b)
		} else {
			open = append(open, b)
		}
	}
	slices.Sort(open)
	fix := ""
	if len(open) > 0 {
		fix = "set static_neighbours: true on bridge " + strings.Join(open, ", ") + " (permanent entries, made by up, do not count against the limit); or "
	}
	return fix + "raise net.ipv4.neigh.default.gc_thresh3 (and gc_thresh2; net.ipv6 likewise) in the machine's initial namespace, as root: sysctl -w net.ipv4.neigh.default.gc_thresh3=N"
}

// faulted finds a fault in force on a link end of the path (or its peer)
// that drops echo requests or replies.
func (x *explainer) faulted(e End) (Cause, bool) {
	if len(x.topo.Faults) == 0 {
		return Cause{}, false
	}
	for _, f := range []End{e, x.topo.Peers[e]} {
		s, ok := x.topo.Faults[f]
		if !ok {
			continue
		}
		switch {
		case s.Down:
			return Cause{Kind: CauseFaulted, Detail: f.String() + " taken down by a fault (down)", Told: true}, true
		case s.Blackhole:
			return Cause{Kind: CauseFaulted, Detail: f.String() + " drops everything (blackhole)", Told: true}, true
		case s.Loss.P > 0:
			return Cause{Kind: CauseFaulted, Detail: fmt.Sprintf("%s loses packets (%s)", f, s), Told: true}, true
		}
	}
	return Cause{}, false
}

// linkTrouble names what is wrong with a node's end of a link: gone, down,
// without carrier because its peer is down or gone, or its peer a bridge
// port whose bridge is down or that is no longer its port.
func (x *explainer) linkTrouble(e End) (Cause, bool) {
	s := x.snap(e.Node)
	l := s.byName[e.Iface]
	switch {
	case l == nil:
		return Cause{Kind: CauseLinkDown, Detail: e.String() + " is gone"}, true
	case !l.Up():
		return Cause{Kind: CauseLinkDown, Detail: e.String() + " is down"}, true
	}
	peer, ok := x.topo.Peers[e]
	if h := x.topo.Remote[peer.Node]; ok && h != "" {
		// The peer is on another machine: this end's state is all
		// that can be read here.
		if l.Flags&unix.IFF_RUNNING == 0 {
			return Cause{Kind: CauseLinkDown, Detail: e.String() + " has no carrier (its peer " + peer.String() + " is on " + h + ")"}, true
		}
		return Cause{}, false
	}
	if l.Flags&unix.IFF_RUNNING == 0 {
		d := e.String() + " has no carrier"
		if ok {
			ps := x.snap(peer.Node)
			pl := ps.byName[peer.Iface]
			switch {
			case ps.missing:
				d += ": its peer's node " + peer.Node + " is gone"
			case pl == nil:
				d += ": its peer " + peer.String() + " is gone"
			case !pl.Up():
				d += ": its peer " + peer.String() + " is down"
			}
		}
		return Cause{Kind: CauseLinkDown, Detail: d}, true
	}
	if !ok {
		return Cause{}, false
	}
	br := x.topo.Ports[peer]
	if br == "" {
		return Cause{}, false
	}
	bs := x.snap(x.topo.Bridges[br])
	bl := bs.byName[br]
	pl := x.snap(peer.Node).byName[peer.Iface]
	switch {
	case bl == nil:
		return Cause{Kind: CauseLinkDown, Detail: "bridge " + br + " is gone"}, true
	case !bl.Up():
		return Cause{Kind: CauseLinkDown, Detail: fmt.Sprintf("bridge %s (in %s) is down", br, x.topo.Bridges[br])}, true
	case pl != nil && pl.MasterIndex != bl.Index:
		return Cause{Kind: CauseNotOnBridge, Detail: fmt.Sprintf("%s is no longer a port of bridge %s", peer, br)}, true
	}
	return Cause{}, false
}

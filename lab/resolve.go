package lab

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/nsnet/nsnet/internal/echo"
	"github.com/nsnet/nsnet/ipalloc"
	"github.com/nsnet/nsnet/kernel"
	"github.com/nsnet/nsnet/lab/ledger"
	"github.com/nsnet/nsnet/netns"
)

// Load reads and validates a lab file. Every problem is reported at once in
// an *InvalidError (matching ErrInvalid).
func Load(path string) (*Lab, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, fmt.Errorf("read lab file: %w", err)
	}
	// Messages name the file as the user did; the lab remembers where it
	// is, wherever nsnet runs from next.
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = path
	}
	return parse(path, data, abs)
}

// Parse validates a lab file's contents; file names it in messages.
func Parse(file string, data []byte) (*Lab, error) {
	return parse(file, data, "")
}

func parse(name string, data []byte, path string) (*Lab, error) {
	s, pr := parseSpec(name, data)
	if s == nil {
		return nil, pr.err()
	}
	l := resolve(s, pr)
	if err := pr.err(); err != nil {
		return nil, err
	}
	l.File, l.src = path, name
	return l, nil
}

// resolver applies the rules to a parsed spec and builds the Lab.
type resolver struct {
	*problems
	lab     *Lab
	bridges map[string]*Bridge
	ifaces  map[*Node]map[string]*Interface
	segs    segments
	// addrs is where each address of the lab was first written or handed
	// out, and to which interface with which prefix length: for the one
	// repeat allowed, a host address (/32, /128) shared by interfaces of
	// one node.
	addrs  map[netip.Addr]addrUse
	autos  []autoReq
	linkOf map[*linkSpec]*Link
}

type addrUse struct {
	at    loc
	iface *Interface
	bits  int
}

type autoReq struct {
	iface  *Interface
	bridge *Bridge
	at     loc
}

func resolve(s *spec, pr *problems) *Lab {
	r := &resolver{
		problems: pr,
		lab:      &Lab{Name: s.Name.V},
		bridges:  map[string]*Bridge{},
		ifaces:   map[*Node]map[string]*Interface{},
	}
	if s.Name.set() && !ledger.ValidName(s.Name.V) {
		r.add(s.Name.At, "invalid lab name %s: %s", echo.Quote(s.Name.V), ledger.NameRule)
	}
	r.expand(s)
	// The indexes of nodes and links are made at their final size (see
	// addresses).
	r.lab.nodes = make(map[string]*Node, len(s.Nodes)+1)
	r.linkOf = make(map[*linkSpec]*Link, len(s.Links))
	r.segs.parent = make(map[*Interface]*Interface, 2*len(s.Links)+len(s.Bridges))
	r.hostDefs(s)
	r.nodes(s)
	r.bridgeDefs(s)
	r.links(s)
	r.crossHost(s)
	r.linkFaults(s)
	// The links as written are read once their addresses and MTUs are
	// taken out: at 10,000 nodes they are a third of what is live, and
	// the lab is still growing.
	specs, linkMTUs := r.addrSpecs(s), r.linkMTUs(s)
	s.Links, r.linkOf = nil, nil
	r.addresses(specs)
	specs = nil
	// The nodes' routes, sysctls and processes need the interfaces'
	// addresses, and the segments' checks below need none of them: read
	// first, the nodes' entries are gone before those checks make their
	// indexes.
	for k, ns := range s.Nodes {
		s.Nodes[k] = nil // each node's entry goes once it is read
		if n := r.lab.nodes[ns.Name.V]; n != nil {
			r.routes(n, ns)
			r.sysctls(n, ns)
			for _, p := range ns.Procs {
				n.Processes = append(n.Processes, Process{Argv: p.Argv, at: p.At})
			}
			r.responders(n, ns)
		}
	}
	r.overlaps()
	r.mtus(s, linkMTUs)
	r.segs, r.addrs, r.autos = segments{}, nil, nil
	r.expectations(s)
	return r.lab
}

func (r *resolver) nodes(s *spec) {
	netnsAt := make(map[string]loc, len(s.Nodes))
	var host *Node
	for _, ns := range s.Nodes {
		name := ns.Name.V
		n := &Node{Name: name, at: ns.Name.At}
		r.nodeHost(n, ns.Host)
		if name == HostNode {
			if ns.Netns.set() {
				r.add(ns.Netns.in(ns.Name.At, ".netns"), "the host node is the namespace nsnet runs in: it has no netns name")
			}
			host = n
			r.lab.nodes[name] = n
			continue
		}
		if !ledger.ValidName(name) {
			r.add(ns.Name.At, "invalid node name %s: %s", echo.Quote(name), ledger.NameRule)
		}
		n.Netns = r.lab.Name + "-" + name
		where := ns.Name.At
		if ns.Netns.set() {
			n.Netns, where = ns.Netns.V, ns.Netns.in(ns.Name.At, ".netns")
		}
		if err := netns.ValidateName(n.Netns); err != nil {
			r.add(where, "%v", err)
		} else if prev, dup := netnsAt[n.Netns]; dup {
			r.add(where, "namespace name %q is already used by %s (line %d)", n.Netns, prev.Path, prev.Line)
		}
		netnsAt[n.Netns] = where
		r.lab.nodes[name] = n
		r.lab.Nodes = append(r.lab.Nodes, n)
	}
	if host == nil {
		host = &Node{Name: HostNode}
		r.nodeHost(host, sval{})
		r.lab.nodes[HostNode] = host
	}
	// The host comes first: it exists before anything else does.
	r.lab.Nodes = append([]*Node{host}, r.lab.Nodes...)
}

// node finds a node by name, reporting a missing one at v.
func (r *resolver) node(v sval) *Node {
	n := r.lab.nodes[v.V]
	if n == nil {
		var names []string
		for _, x := range r.lab.Nodes {
			names = append(names, x.Name)
		}
		r.add(v.At, "no node named %s (nodes: %s)", echo.Quote(v.V), strings.Join(names, ", "))
	}
	return n
}

// addIface registers an interface in its node, refusing a second one of the
// same name in the same namespace.
func (r *resolver) addIface(i *Interface) bool {
	if prev := r.iface(i.Node, i.Name); prev != nil {
		r.add(i.at, "node %s already has an interface named %q (%s, line %d)", i.Node.Name, i.Name, prev.at.Path, prev.at.Line)
		return false
	}
	if i.Name == "lo" {
		r.add(i.at, "%q is the loopback interface every namespace already has", i.Name)
		return false
	}
	n := i.Node
	n.Interfaces = append(n.Interfaces, i)
	if m := r.ifaces[n]; m != nil {
		m[i.Name] = i
	} else if len(n.Interfaces) > ifaceScan {
		m = make(map[string]*Interface, len(n.Interfaces))
		for _, x := range n.Interfaces {
			m[x.Name] = x
		}
		r.ifaces[n] = m
	}
	return true
}

// ifaceScan is how many interfaces a node's list holds before the resolver
// finds them by a map: most nodes have one or two, and a map each would
// cost more than all their interfaces.
const ifaceScan = 8

// iface is n's interface of that name, or nil.
func (r *resolver) iface(n *Node, name string) *Interface {
	if m := r.ifaces[n]; m != nil {
		return m[name]
	}
	return n.Interface(name)
}

func (r *resolver) bridgeDefs(s *spec) {
	for _, bs := range s.Bridges {
		b := &Bridge{Name: bs.Name.V, MTU: bs.MTU.V}
		if bs.Static.set() {
			switch bs.Static.V {
			case "true":
				b.StaticNeighbours = true
			case "false":
			default:
				r.add(bs.Static.At, "static_neighbours %s: must be true or false", echo.Quote(bs.Static.V))
			}
		}
		if err := kernel.ValidateLinkName(b.Name); err != nil {
			r.add(bs.Name.At, "%v", err)
			continue
		}
		node := sval{V: HostNode}
		if bs.Node.set() {
			node = bs.Node
		}
		if b.Node = r.node(node); b.Node == nil {
			continue
		}
		fam := map[bool]loc{}
		for _, sub := range bs.Subnets {
			p, err := netip.ParsePrefix(sub.V)
			switch {
			case err != nil:
				r.add(sub.At, "invalid subnet %s: expected a prefix such as 10.1.0.0/24 or fd00:1::/64", echo.Quote(sub.V))
				continue
			case p.Addr().Zone() != "" || p.Addr().Is4In6():
				r.add(sub.At, "invalid subnet %s: zones and IPv4-mapped addresses are not allowed", echo.Quote(sub.V))
				continue
			case p != p.Masked():
				r.add(sub.At, "subnet %s has host bits set: did you mean %s?", p, p.Masked())
				continue
			}
			if prev, dup := fam[p.Addr().Is4()]; dup {
				r.add(sub.At, "a bridge has at most one subnet per address family (the other is at line %d)", prev.Line)
				continue
			}
			fam[p.Addr().Is4()] = sub.At
			b.Subnets = append(b.Subnets, p)
		}
		b.Iface = &Interface{Node: b.Node, Name: b.Name, Kind: KindBridge, MTU: b.MTU, Bridge: b, at: bs.Name.At}
		b.Iface.MAC = derivedMAC(r.lab.Name, b.Node.Netns, b.Name)
		if !r.addIface(b.Iface) {
			continue
		}
		r.bridges[b.Name] = b
		r.lab.Bridges = append(r.lab.Bridges, b)
		r.segs.add(b.Iface)
	}
}

func (r *resolver) links(s *spec) {
	for _, ls := range s.Links {
		r.link(ls)
		ls.keepEnds()
	}
}

// link resolves one link of the file.
func (r *resolver) link(ls *linkSpec) {
	if ls.A == nil || ls.B == nil {
		return
	}
	a := r.end(ls.A, ls.B)
	b := r.end(ls.B, ls.A)
	if a == nil || b == nil {
		return
	}
	l := &Link{A: a, B: b, MTU: ls.MTU.V}
	a.Peer, b.Peer, a.Link, b.Link = b, a, l, l
	if !ls.MTU.set() {
		// A port defaults to its bridge's MTU.
		for _, e := range []*Interface{a, b} {
			if e.Master != nil && e.Master.MTU != 0 && (l.MTU == 0 || e.Master.MTU < l.MTU) {
				l.MTU = e.Master.MTU
			}
		}
	}
	a.MTU, b.MTU = l.MTU, l.MTU
	okA, okB := r.addIface(a), r.addIface(b)
	if !okA || !okB {
		return
	}
	// One end creates the pair, the other is created directly in its
	// namespace. The host's end creates, since iproute2 can only name
	// the host's namespace by a PID; otherwise a bridge port does:
	// bridges' namespaces are few and stay open while every node
	// attaches to them.
	switch {
	case a.Node.IsHost():
		a.Creator = true
	case b.Node.IsHost(), a.Master == nil && b.Master != nil:
		b.Creator = true
	default:
		a.Creator = true
	}
	for _, e := range []*Interface{a, b} {
		if e.Master != nil {
			br := e.Master.Bridge
			br.Ports = append(br.Ports, e)
			if len(br.Ports) == MaxBridgePorts+1 {
				r.add(ls.At, "bridge %s would have more than %d ports, the most a Linux bridge holds: spread the nodes over more bridges", br.Name, MaxBridgePorts)
			}
		}
	}
	r.segs.link(a, b)
	r.lab.Links = append(r.lab.Links, l)
	r.linkOf[ls] = l
}

// end resolves one end of a link; other is the opposite end as written.
func (r *resolver) end(e, other *endSpec) *Interface {
	switch {
	case e.Node.set() && e.Bridge.set():
		r.add(e.Bridge.in(e.At, ".bridge"), "an end is on a node or on a bridge, not both")
		return nil
	case e.Node.set():
		n := r.lab.nodes[e.Node.V]
		if n == nil {
			// node says so; its path is built only then.
			r.node(sval{V: e.Node.V, At: e.Node.in(e.At, ".node")})
			return nil
		}
		if !e.Name.set() {
			r.add(e.At, "missing name: the interface's name in node %s", n.Name)
			return nil
		}
		if err := kernel.ValidateLinkName(e.Name.V); err != nil {
			r.add(e.Name.in(e.At, ".name"), "%v", err)
			return nil
		}
		i := &Interface{Node: n, Name: e.Name.V, Kind: KindVeth, at: e.Name.in(e.At, ".name")}
		i.MAC = derivedMAC(r.lab.Name, n.Netns, i.Name)
		return i
	case e.Bridge.set():
		b := r.bridges[e.Bridge.V]
		if b == nil {
			var names []string
			for _, x := range r.lab.Bridges {
				names = append(names, x.Name)
			}
			if len(names) == 0 {
				r.add(e.Bridge.in(e.At, ".bridge"), "no bridge named %s: the lab defines no bridges", echo.Quote(e.Bridge.V))
				return nil
			}
			r.add(e.Bridge.in(e.At, ".bridge"), "no bridge named %s (bridges: %s)", echo.Quote(e.Bridge.V), strings.Join(names, ", "))
			return nil
		}
		for _, a := range e.Addresses {
			r.add(a.At, "a bridge port carries no addresses: put them on the bridge (bridges.%s.addresses) or on the other end", b.Name)
		}
		// The port's place is its name's, or the end's; its path the end's.
		name, where := e.Name.V, loc{Line: e.Name.Line, Col: e.Name.Col}
		if !e.Name.set() {
			where = e.At
			if !other.Node.set() || !other.Name.set() {
				r.add(e.At, "missing name: a port linked to another bridge needs an explicit name")
				return nil
			}
			name = other.Node.V + "-" + other.Name.V
			if err := kernel.ValidateLinkName(name); err != nil {
				r.add(e.At, "the default name for this port, %s, is invalid (%v): set %s.name", echo.Quote(name), err, e.At.Path)
				return nil
			}
		} else if err := kernel.ValidateLinkName(name); err != nil {
			r.add(e.Name.in(e.At, ".name"), "%v", err)
			return nil
		}
		where.Path = e.At.Path
		i := &Interface{Node: b.Node, Name: name, Kind: KindVeth, Master: b.Iface, at: where}
		i.MAC = derivedMAC(r.lab.Name, b.Node.Netns, name)
		return i
	}
	r.add(e.At, "missing node or bridge: where this end of the link is")
	return nil
}

// segments groups interfaces into layer-2 segments (a bridge with its ports
// and what they link to; a point-to-point link), so that subnets can be
// checked per segment.
type segments struct {
	parent map[*Interface]*Interface
}

func (s *segments) add(i *Interface) {
	if s.parent == nil {
		s.parent = map[*Interface]*Interface{}
	}
	if _, ok := s.parent[i]; !ok {
		s.parent[i] = i
	}
}

func (s *segments) root(i *Interface) *Interface {
	s.add(i)
	for s.parent[i] != i {
		s.parent[i] = s.parent[s.parent[i]]
		i = s.parent[i]
	}
	return i
}

func (s *segments) union(a, b *Interface) { s.parent[s.root(a)] = s.root(b) }

// link joins a veth pair's ends, and each port to its bridge.
func (s *segments) link(a, b *Interface) {
	s.union(a, b)
	for _, e := range []*Interface{a, b} {
		if e.Master != nil {
			s.union(e, e.Master)
		}
	}
}

// homeBridge is the bridge whose subnets an interface's addresses come from:
// the bridge itself, or the bridge at the other end of its link.
func homeBridge(i *Interface) *Bridge {
	switch {
	case i.Bridge != nil:
		return i.Bridge
	case i.Peer != nil && i.Peer.Master != nil:
		return i.Peer.Master.Bridge
	}
	return nil
}

// addrList is the addresses written for one interface.
type addrList struct {
	iface *Interface
	addrs []sval
}

// addrSpecs pairs each interface with the addresses written for it, bridges
// first, then links, each in file order.
func (r *resolver) addrSpecs(s *spec) []addrList {
	var out []addrList
	for _, bs := range s.Bridges {
		if b := r.bridges[bs.Name.V]; b != nil && b.Iface != nil && len(bs.Addresses) > 0 {
			out = append(out, addrList{b.Iface, bs.Addresses})
		}
	}
	for _, ls := range s.Links {
		l := r.linkOf[ls]
		if l == nil {
			continue
		}
		if l.A.Master == nil {
			out = append(out, addrList{l.A, ls.Ends[0].Addresses})
		}
		if l.B.Master == nil {
			out = append(out, addrList{l.B, ls.Ends[1].Addresses})
		}
	}
	return out
}

func (r *resolver) addresses(specs []addrList) {
	// The indexes are made at their final size: at 10,000 nodes, growing
	// them by doubling left a table and a half of garbage at the moment
	// the most is live.
	n := 0
	for _, sp := range specs {
		n += len(sp.addrs)
	}
	r.addrs = make(map[netip.Addr]addrUse, n)
	// Static addresses first: they are reserved before any automatic one
	// is handed out.
	for _, sp := range specs {
		for _, a := range sp.addrs {
			if a.V == "auto" {
				b := homeBridge(sp.iface)
				if b == nil || len(b.Subnets) == 0 {
					r.add(a.At, "auto takes an address from the subnets of the bridge this end is attached to, and this end is not on a bridge with subnets")
					continue
				}
				r.autos = append(r.autos, autoReq{iface: sp.iface, bridge: b, at: a.At})
				continue
			}
			p, ok := r.staticAddr(a)
			if !ok {
				continue
			}
			if b := homeBridge(sp.iface); b != nil && len(b.Subnets) > 0 && !inSubnets(p, b.Subnets) {
				r.add(a.At, "%s is outside the subnets of bridge %s (%s)", p, b.Name, joinPrefixes(b.Subnets))
				continue
			}
			if first, dup := r.addrs[p.Addr()]; dup {
				if !sharedHostAddr(first, sp.iface, p) {
					r.add(a.At, "address %s is already used at %s (line %d); only a /%d may repeat, on other interfaces of the same node (a gateway shared by point-to-point links)", p.Addr(), first.at.Path, first.at.Line, p.Addr().BitLen())
					continue
				}
			} else {
				r.addrs[p.Addr()] = addrUse{a.At, sp.iface, p.Bits()}
			}
			sp.iface.Addrs = append(sp.iface.Addrs, p)
		}
	}
	r.allocate()
}

// sharedHostAddr reports whether p may repeat an address first taken by
// first: as a host address (/32 or /128) on another interface of the same
// node, the way the CNI ptp plugin gives every host-side veth the gateway
// address. Each such interface's peer then reaches the host by the same
// address, and nothing else is ambiguous: a host address covers no other.
func sharedHostAddr(first addrUse, i *Interface, p netip.Prefix) bool {
	full := p.Addr().BitLen()
	return first.iface != nil && first.iface != i && first.iface.Node == i.Node &&
		first.bits == full && p.Bits() == full
}

// staticAddr parses ADDR/LEN and refuses addresses no interface should have.
func (r *resolver) staticAddr(a sval) (netip.Prefix, bool) {
	if !strings.Contains(a.V, "/") {
		r.add(a.At, "address %s needs a prefix length, e.g. %s/24 (or auto)", echo.Quote(a.V), echo.Clip(a.V))
		return netip.Prefix{}, false
	}
	p, err := netip.ParsePrefix(a.V)
	if err != nil || p.Addr().Zone() != "" || p.Addr().Is4In6() {
		r.add(a.At, "invalid address %s: expected ADDR/LEN such as 10.1.0.2/24 or fd00:1::2/64, or auto", echo.Quote(a.V))
		return netip.Prefix{}, false
	}
	ad := p.Addr()
	switch {
	case ad.IsUnspecified(), ad.IsLoopback(), ad.IsMulticast():
		r.add(a.At, "%s is not a unicast address an interface can have", ad)
		return netip.Prefix{}, false
	case ad.Is4() && p.Bits() <= 30 && ad == p.Masked().Addr():
		r.add(a.At, "%s is the network address of %s", ad, p.Masked())
		return netip.Prefix{}, false
	case ad.Is4() && p.Bits() <= 30 && ad == ipalloc.LastAddr(p):
		r.add(a.At, "%s is the broadcast address of %s", ad, p.Masked())
		return netip.Prefix{}, false
	}
	return p, true
}

func inSubnets(p netip.Prefix, subnets []netip.Prefix) bool {
	for _, s := range subnets {
		if s.Contains(p.Addr()) && s.Bits() == p.Bits() {
			return true
		}
	}
	return false
}

func joinPrefixes(ps []netip.Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ", ")
}

// allocate hands out automatic addresses in file order, the lowest free
// host address of each subnet of the bridge (ipalloc.Hosts), skipping every
// address written anywhere in the file.
func (r *resolver) allocate() {
	sort.SliceStable(r.autos, func(i, j int) bool {
		a, b := r.autos[i].at, r.autos[j].at
		return a.Line < b.Line || a.Line == b.Line && a.Col < b.Col
	})
	// Where the next search of each subnet starts: everything below is
	// out. Invalid once the subnet is full.
	next := map[netip.Prefix]netip.Addr{}
	for _, req := range r.autos {
		for _, sub := range req.bridge.Subnets {
			hosts := ipalloc.Hosts(sub)
			start, seen := next[sub]
			if !seen {
				start = hosts.First
			}
			var a netip.Addr
			err := fmt.Errorf("%s: %w", sub, ipalloc.ErrFull)
			if start.IsValid() {
				a, err = hosts.Claim(start, func(a netip.Addr) (bool, error) {
					_, used := r.addrs[a]
					return !used, nil
				})
			}
			if err != nil {
				r.add(req.at, "no free address left in %s (bridge %s)", sub, req.bridge.Name)
				next[sub] = netip.Addr{}
				continue
			}
			r.addrs[a] = addrUse{req.at, req.iface, sub.Bits()}
			req.iface.Addrs = append(req.iface.Addrs, netip.PrefixFrom(a, sub.Bits()))
			next[sub] = a
		}
	}
}

// overlaps refuses two layer-2 segments whose subnets overlap: a node would
// not know which one to send to.
func (r *resolver) overlaps() {
	type segPrefix struct {
		p    netip.Prefix
		seg  *Interface
		at   loc
		node *Node // of an interface address; nil for a bridge subnet
	}
	type segKey struct {
		seg *Interface
		p   netip.Prefix
	}
	n := 0
	for _, b := range r.lab.Bridges {
		n += len(b.Subnets)
	}
	for _, nd := range r.lab.Nodes {
		for _, i := range nd.Interfaces {
			n += len(i.Addrs)
		}
	}
	all := make([]segPrefix, 0, n)
	seen := make(map[segKey]bool, n)
	note := func(i *Interface, p netip.Prefix, at loc, node *Node) {
		seg := r.segs.root(i)
		p = p.Masked()
		if seen[segKey{seg, p}] {
			return
		}
		seen[segKey{seg, p}] = true
		all = append(all, segPrefix{p, seg, at, node})
	}
	for _, b := range r.lab.Bridges {
		for _, p := range b.Subnets {
			note(b.Iface, p, b.Iface.at, nil)
		}
	}
	for _, n := range r.lab.Nodes {
		for _, i := range n.Interfaces {
			for _, p := range i.Addrs {
				note(i, p, r.addrs[p.Addr()].at, n)
			}
		}
	}
	seen = nil
	// Sorting by start address makes the check O(n log n): only
	// neighbours in this order can overlap the next one.
	sort.Slice(all, func(i, j int) bool {
		if c := all[i].p.Addr().Compare(all[j].p.Addr()); c != 0 {
			return c < 0
		}
		return all[i].p.Bits() < all[j].p.Bits()
	})
	// open holds the prefixes that contain the current one, each with
	// the repeats of a shared host address (see sharedHostAddr) that
	// followed it: the host address a node shares over 10,000
	// point-to-point links is one open entry, not 10,000 to compare.
	type group struct {
		first   segPrefix
		repeats []segPrefix
	}
	var open []*group
	for _, cur := range all {
		kept := open[:0]
		for _, o := range open {
			if o.first.p.Contains(cur.p.Addr()) {
				kept = append(kept, o)
			}
		}
		open = kept
		check := func(o segPrefix) {
			if o.seg != cur.seg {
				first, second := o, cur
				if second.at.Line < first.at.Line {
					first, second = second, first
				}
				r.add(second.at, "subnet %s overlaps %s of another segment (%s, line %d)", second.p, first.p, first.at.Path, first.at.Line)
			}
		}
		var same *group
		for _, g := range open {
			if g.first.p == cur.p && cur.p.IsSingleIP() && g.first.node != nil && g.first.node == cur.node {
				same = g // all of g is cur's address, shared on cur's node
				continue
			}
			check(g.first)
			for _, o := range g.repeats {
				check(o)
			}
		}
		if same != nil {
			same.repeats = append(same.repeats, cur)
			continue
		}
		open = append(open, &group{first: cur})
	}
}

// linkMTU is a link whose entry sets its MTU.
type linkMTU struct {
	l   *Link
	mtu int
	at  loc
}

// linkMTUs lists the links whose entries set their MTU, in file order.
func (r *resolver) linkMTUs(s *spec) []linkMTU {
	var out []linkMTU
	for _, ls := range s.Links {
		if l := r.linkOf[ls]; l != nil && ls.MTU.set() {
			out = append(out, linkMTU{l, ls.MTU.V, ls.MTU.in(ls.At, ".mtu")})
		}
	}
	return out
}

// mtus checks link and bridge MTUs, with IPv6's higher minimum where a
// segment carries IPv6.
func (r *resolver) mtus(s *spec, links []linkMTU) {
	v6 := map[*Interface]bool{}
	for _, n := range r.lab.Nodes {
		for _, i := range n.Interfaces {
			for _, p := range i.Addrs {
				if p.Addr().Is6() {
					v6[r.segs.root(i)] = true
				}
			}
			if i.Bridge != nil {
				for _, p := range i.Bridge.Subnets {
					if p.Addr().Is6() {
						v6[r.segs.root(i)] = true
					}
				}
			}
		}
	}
	for _, bs := range s.Bridges {
		b := r.bridges[bs.Name.V]
		if b == nil || !bs.MTU.set() {
			continue
		}
		if err := kernel.ValidateMTU(bs.MTU.V, v6[r.segs.root(b.Iface)]); err != nil {
			r.add(bs.MTU.At, "%v", err)
		}
	}
	for _, lm := range links {
		if err := kernel.ValidateMTU(lm.mtu, v6[r.segs.root(lm.l.A)]); err != nil {
			r.add(lm.at, "%v", err)
		}
	}
}

func (r *resolver) routes(n *Node, ns *nodeSpec) {
	var seen map[netip.Prefix]loc // made for the second route: most nodes have one or two
	if len(ns.Routes) > 1 {
		seen = make(map[netip.Prefix]loc, len(ns.Routes))
	}
	n.Routes = slices.Grow(n.Routes, len(ns.Routes))
	base := ns.Name.At.Path + ".routes"
	for k := range ns.Routes {
		rs := &ns.Routes[k]
		at := loc{Line: rs.Line, Col: rs.Col, Path: index(base, k)}
		rt := Route{at: at}
		ok := true
		switch {
		case !rs.To.set():
			ok = false
		case rs.To.V == "default":
		default:
			p, err := netip.ParsePrefix(rs.To.V)
			if err != nil {
				a, aerr := netip.ParseAddr(rs.To.V)
				if aerr != nil || a.Zone() != "" {
					r.add(rs.To.in(at, ".to"), "invalid destination %s: expected a prefix such as 10.2.0.0/24, or default", echo.Quote(rs.To.V))
					ok = false
					break
				}
				p = netip.PrefixFrom(a, a.BitLen())
			}
			if p != p.Masked() {
				r.add(rs.To.in(at, ".to"), "destination %s has host bits set: did you mean %s?", p, p.Masked())
				ok = false
				break
			}
			rt.To = p
		}
		if rs.Via.set() {
			a, err := netip.ParseAddr(rs.Via.V)
			if err != nil || a.Zone() != "" || a.Is4In6() {
				r.add(rs.Via.in(at, ".via"), "invalid gateway %s: expected an IPv4 or IPv6 address", echo.Quote(rs.Via.V))
				ok = false
			}
			rt.Via = a
		}
		if rs.Dev.set() {
			rt.Dev = rs.Dev.V
			if r.iface(n, rt.Dev) == nil {
				r.add(rs.Dev.in(at, ".dev"), "node %s has no interface named %s", n.Name, echo.Quote(rt.Dev))
				ok = false
			}
		}
		if !rs.Via.set() && !rs.Dev.set() {
			r.add(at, "a route needs via (a gateway) or dev (an interface), or both")
			ok = false
		}
		if !ok {
			continue
		}
		if rt.To.IsValid() && rt.Via.IsValid() && rt.To.Addr().Is4() != rt.Via.Is4() {
			r.add(rs.Via.in(at, ".via"), "gateway %s and destination %s are different address families", rt.Via, rt.To)
			continue
		}
		if rt.Via.IsValid() && gatewayDev(n, rt) == nil {
			where := "any address of node " + n.Name
			if rt.Dev != "" {
				where = fmt.Sprintf("an address of %s in node %s", rt.Dev, n.Name)
			}
			r.add(rs.Via.in(at, ".via"), "gateway %s is not in the subnet of %s, nor in an earlier route with dev and no via, so it cannot be reached", rt.Via, where)
			continue
		}
		key := rt.To
		if !key.IsValid() {
			// The two default routes, IPv4 and IPv6, are distinct.
			key = netip.PrefixFrom(netip.IPv4Unspecified(), 0)
			if rt.Via.Is6() {
				key = netip.PrefixFrom(netip.IPv6Unspecified(), 0)
			}
		}
		if prev, dup := seen[key]; dup {
			r.add(at, "node %s already has a route to %s (line %d)", n.Name, rs.To.V, prev.Line)
			continue
		}
		if seen != nil {
			seen[key] = at
		}
		n.Routes = append(n.Routes, rt)
	}
}

// gatewayDev is the interface through which the kernel reaches a route's
// gateway (through Dev when given), or nil when it cannot: the gateway lies
// in a subnet of one of the node's addresses, or in the destination of an
// earlier on-link route (dev, no via), which is how a node with only a /32
// reaches a gateway outside it. Earlier, because routes are added in the
// order written and the kernel checks the gateway at once (during
// resolution, n.Routes holds only the routes before this one).
func gatewayDev(n *Node, rt Route) *Interface {
	for _, i := range n.Interfaces {
		if rt.Dev != "" && i.Name != rt.Dev {
			continue
		}
		for _, p := range i.Addrs {
			if p.Masked().Contains(rt.Via) {
				return i
			}
		}
	}
	for _, o := range n.Routes {
		if !o.Via.IsValid() && o.To.IsValid() && o.To.Contains(rt.Via) && (rt.Dev == "" || o.Dev == rt.Dev) {
			return n.Interface(o.Dev)
		}
	}
	return nil
}

func (r *resolver) sysctls(n *Node, ns *nodeSpec) {
	for _, sc := range ns.Sysctls {
		if _, err := netns.SysctlPath(sc.Key.V); err != nil {
			r.add(sc.Key.At, "%v", err)
			continue
		}
		if !strings.HasPrefix(sc.Key.V, "net.") {
			// The rest of /proc/sys is the machine's: a node has its own
			// network namespace and nothing else.
			r.add(sc.Key.At, "%s is not a network sysctl: a node may set only net.* keys the kernel keeps per network namespace (this one would change the whole machine)", echo.Clip(sc.Key.V))
			continue
		}
		if strings.ContainsAny(sc.Value.V, "\n\x00") {
			r.add(sc.Value.At, "a sysctl value is one line")
			continue
		}
		n.Sysctls = append(n.Sysctls, Sysctl{Key: sc.Key.V, Value: normSysctl(sc.Value.V), Iface: sysctlIface(n, sc.Key.V), keyAt: sc.Key.At, at: sc.Value.At})
	}
}

// sysctlIface is the lab interface of n that a per-interface key names
// (net.ipv4.conf.eth0.rp_filter: eth0), or nil: of the components between
// the second and the last, the last one that is the name of one of n's
// interfaces. Whether it really is where the kernel puts interface names (a
// directory holding lo in a fresh namespace) is for the kernel to say
// (CheckSysctls).
func sysctlIface(n *Node, key string) *Interface {
	c := strings.Split(key, ".")
	for i := len(c) - 2; i >= 2; i-- {
		if it := n.Interface(c[i]); it != nil {
			return it
		}
	}
	return nil
}

// normSysctl writes a value the way the kernel prints it back, so that an
// unchanged value is recognized: fields separated by single spaces.
func normSysctl(v string) string { return strings.Join(strings.Fields(v), " ") }

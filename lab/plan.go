package lab

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/nsnet/nsnet/lab/ledger"
)

// Op is what a Step does.
type Op uint8

// The operations, in the order a plan runs them.
const (
	OpStopProcess     Op = iota + 1 // stop a ledger process (verified by PID and start time)
	OpRestoreSysctl                 // put back a host sysctl the lab changed
	OpDelNetns                      // delete a lab namespace (the kernel removes its links)
	OpDelLink                       // delete a lab link
	OpDelGuard                      // delete the lab's VXLAN guard table
	OpAwaitGone                     // wait until links deleted with their namespace are gone
	OpAddNetns                      // create a namespace, mark it, name it
	OpLoUp                          // bring a namespace's loopback up
	OpSysctl                        // set a sysctl in a node
	OpSetGuard                      // make the lab's VXLAN guard table
	OpAddBridge                     // create a bridge
	OpAddVeth                       // create a veth pair, peer directly in its namespace
	OpAddVXLAN                      // create this machine's half of a link across machines
	OpSetAlias                      // mark a link with the lab's alias
	OpAddrGenNone                   // no automatic IPv6 link-local address (and so no DAD) on a link
	OpSetMAC                        // fix a drifted MAC address
	OpSetMaster                     // make a veth end a bridge port
	OpSetMTU                        // fix a drifted MTU
	OpDelAddr                       // remove a link-local address that is not the lab's, or an address made with DAD
	OpLinkLocal                     // add the IPv6 link-local address, without DAD
	OpAddAddr                       // add an address
	OpSetUp                         // bring a link up
	OpAddNeigh                      // a permanent neighbour entry for the peer of a point-to-point veth
	OpAddBridgeNeighs               // a station's permanent neighbour entries for every other station on a bridge with static_neighbours
	OpAddRoute                      // add a route
	OpStartProcess                  // start a process in a node
)

// Step is one change. It points into the Lab (or the ledger, for removals)
// instead of copying names: a plan of 100,000 steps takes 3 MB.
type Step struct {
	Op Op
	// Index is the route, sysctl or process number within Node, the
	// address number within Iface.Addrs, or where an OpAddNeigh step's
	// address is (Neigh).
	Index int32
	Node  *Node      // namespace, sysctl, route and process steps
	Iface *Interface // link steps; for OpAddVeth the end that creates the pair
	Old   *Removal   // removal steps
}

// Neigh is the address an OpAddNeigh step maps to Iface.Peer's MAC. The
// step's Index says where it is in the lab (neighAddr): a plan of 100,000
// steps would spend 3 MB on a field for it and the addresses it points at.
func (s Step) Neigh() netip.Addr { return neighAddr(s.Iface, s.Index) }

// Removal is what the ledger recorded of an object a step removes.
type Removal struct {
	Node   *ledger.Node
	Link   *ledger.Link
	Proc   *ledger.Proc
	Sysctl *ledger.Sysctl
	// Links are the host links OpAwaitGone waits for.
	Links []*ledger.Link
	// Addr is the address OpDelAddr removes.
	Addr netip.Prefix
	// Guard is the table OpDelGuard removes, or OpSetGuard makes.
	Guard *Guard
}

// Addr is the address an OpAddAddr or OpLinkLocal step adds, or an
// OpDelAddr step removes.
func (s Step) Addr() netip.Prefix {
	switch s.Op {
	case OpLinkLocal:
		return s.Iface.LinkLocal()
	case OpDelAddr:
		return s.Old.Addr
	}
	return s.Iface.Addrs[s.Index]
}

// Netns is the namespace the step works in ("" for the host).
func (s Step) Netns() string {
	switch {
	case s.Iface != nil:
		return s.Iface.Node.Netns
	case s.Node != nil:
		return s.Node.Netns
	case s.Old == nil:
	case s.Old.Link != nil:
		return s.Old.Link.Netns
	case s.Old.Node != nil:
		return s.Old.Node.Netns
	case s.Old.Proc != nil:
		return s.Old.Proc.Netns
	}
	return ""
}

// Plan is the ordered list of changes that takes the kernel from the observed
// state to the lab (or, for a teardown, to nothing of the lab's).
type Plan struct {
	Lab   *Lab   // nil for a teardown
	Name  string // the lab's name
	Mark  string
	Steps []Step
	// Ledger is the lab's ledger as observed (nil if none).
	Ledger *ledger.Ledger
	// Old is the value of each host sysctl the plan changes, as observed,
	// for restoring it on teardown.
	Old map[string]string
	// Notes explain what the plan leaves alone although the ledger lists
	// it, because the kernel says it is not the lab's.
	Notes []string
	// Carrier are veth ends, and bridges with ports, that were up but not
	// yet operationally up when observed (an interrupted up brought them up
	// a moment ago): up waits for them as for the ends it brings up itself.
	Carrier []*Interface
}

// Empty reports whether the plan changes nothing.
func (p *Plan) Empty() bool { return len(p.Steps) == 0 }

// planner holds the state of one planning run.
type planner struct {
	lab     *Lab
	st      *State
	mark    string
	steps   []Step
	probs   problems
	old     map[string]string
	led     *ledger.Ledger
	owned   map[string]bool // namespaces that exist and are the lab's
	fresh   map[string]bool // namespaces this plan creates
	gone    map[string]bool // namespaces this plan deletes
	made    map[*Interface]bool
	notes   []string
	carrier []*Interface
	ledNS   map[string]*ledger.Node    // by namespace
	ledN    map[string]*ledger.Node    // by node name
	ledLnk  map[[2]string]*ledger.Link // (netns, name)
	// Per node, the addresses of its interfaces and the single-address
	// destinations of its routes by device (built when first needed).
	nodeAddrs map[*Node]map[netip.Addr]bool
	devHosts  map[*Node]map[string][]int32
	// What the lab wants, by namespace name and by (netns, interface name).
	wantNS map[string]bool
	wantIf map[[2]string]*Interface
}

// PlanUp computes the steps that make the lab exist as written, given what
// exists now. It changes nothing. Names that exist and are not the lab's
// are reported as an *InvalidError, located in the lab file.
func PlanUp(l *Lab, st *State) (*Plan, error) {
	if len(l.Hosts) > 0 && l.Here == nil {
		return nil, fmt.Errorf("lab %s spans %d hosts: plan one machine's part (Lab.ForHost)", l.Name, len(l.Hosts))
	}
	p := newPlanner(l.Name, st)
	p.lab = l
	p.probs.file = l.src
	if len(p.led.Nodes)+len(p.led.Links) > 0 {
		// Only prune asks (the ledger's objects the lab still wants):
		// a first up spares maps of every namespace and interface.
		p.wantNS = make(map[string]bool, len(l.Nodes))
		p.wantIf = map[[2]string]*Interface{}
		for _, n := range l.Nodes {
			if !n.IsHost() {
				p.wantNS[n.Netns] = true
			}
			for _, i := range n.Interfaces {
				p.wantIf[[2]string{n.Netns, i.Name}] = i
			}
		}
	}
	p.conflicts()
	if err := p.probs.err(); err != nil {
		return nil, err
	}
	for _, n := range l.Nodes {
		if ns, ok := st.Netns[n.Netns]; !n.IsHost() && (!ok || ns.Stale) {
			p.fresh[n.Netns] = true
		}
	}
	p.prune()
	p.namespaces()
	p.sysctls()
	if g := l.guard(); g != nil && !st.Host.Guard {
		p.add(Step{Op: OpSetGuard, Old: &Removal{Guard: g}})
	}
	for _, b := range l.Bridges {
		p.bridge(b)
	}
	for _, lk := range l.Links {
		if lk.CrossHost() {
			p.vxlan(l.Local(lk))
			continue
		}
		p.veth(lk)
	}
	p.routes()
	p.processes()
	return p.plan(), nil
}

// PlanDown computes the steps that remove everything the ledger lists and
// the kernel confirms is the lab's.
func PlanDown(name string, st *State) *Plan {
	p := newPlanner(name, st)
	p.prune()
	return p.plan()
}

func newPlanner(name string, st *State) *planner {
	if st.Host == nil {
		st.Host = &NSState{}
	}
	p := &planner{
		st: st, mark: MarkPrefix + name, led: st.Ledger, old: map[string]string{},
		owned: map[string]bool{}, fresh: map[string]bool{}, gone: map[string]bool{}, made: map[*Interface]bool{},
		ledNS: map[string]*ledger.Node{}, ledN: map[string]*ledger.Node{}, ledLnk: map[[2]string]*ledger.Link{},
	}
	if p.led == nil {
		p.led = &ledger.Ledger{Lab: name}
	}
	for i := range p.led.Nodes {
		n := &p.led.Nodes[i]
		p.ledN[n.Name] = n
		if n.Owned() {
			p.ledNS[n.Netns] = n
		}
	}
	for i := range p.led.Links {
		lk := &p.led.Links[i]
		p.ledLnk[[2]string{lk.Netns, lk.Name}] = lk
	}
	// A namespace is the lab's when the ledger lists it (it is recorded
	// before it is made) and its mark agrees, or it is the empty file an
	// interrupted creation of it left. The mark alone proves nothing: a
	// namespace made by hand may carry it.
	for name, ns := range st.Netns {
		if p.ledNS[name] != nil && (ns.Mark == p.mark || ns.Stale) {
			p.owned[name] = true
		}
	}
	return p
}

func (p *planner) plan() *Plan {
	name := p.led.Lab
	if p.lab != nil {
		name = p.lab.Name
	}
	// Exactly sized: a big plan lives as long as the run.
	steps := p.steps
	if cap(steps) > len(steps)+len(steps)/8 {
		steps = slices.Clone(steps)
	}
	return &Plan{Lab: p.lab, Name: name, Mark: p.mark, Steps: steps, Ledger: p.st.Ledger, Old: p.old, Notes: p.notes, Carrier: p.carrier}
}

func (p *planner) add(s Step) { p.steps = append(p.steps, s) }

// making notes that the plan (re)creates i, which then has none of its
// routes. Only routes asks, and only about a namespace that is not new.
func (p *planner) making(i *Interface) {
	if !p.fresh[i.Node.Netns] {
		p.made[i] = true
	}
}

// conflicts refuses names that exist, or that another lab recorded, and are
// not this lab's.
func (p *planner) conflicts() {
	for _, n := range p.lab.Nodes {
		if n.IsHost() {
			continue
		}
		if other, ok := p.st.Claims.Netns[n.Netns]; ok {
			p.probs.add(n.at, "namespace %q belongs to lab %s", n.Netns, other)
			continue
		}
		ns := p.st.Netns[n.Netns]
		if ns == nil || p.owned[n.Netns] {
			continue
		}
		other, marked := strings.CutPrefix(ns.Mark, MarkPrefix)
		switch {
		case ns.Stale:
			p.probs.add(n.at, "%q exists in the namespace directory but is not a namespace; remove it or choose another name (netns: NAME)", n.Netns)
		case ns.Mark == p.mark:
			p.probs.add(n.at, "namespace %q carries lab %s's mark but is not in its ledger, so the lab did not make it: delete it (ip netns del %s) or choose another name (netns: NAME)", n.Netns, p.lab.Name, n.Netns)
		case marked && other != "":
			p.probs.add(n.at, "namespace %q belongs to lab %s", n.Netns, other)
		default:
			p.probs.add(n.at, "namespace %q already exists and is not lab %s's: delete it (ip netns del %s) or choose another name (netns: NAME)", n.Netns, p.lab.Name, n.Netns)
		}
	}
	host := p.lab.Node(HostNode)
	for _, i := range host.Interfaces {
		if other, ok := p.st.Claims.HostLinks[i.Name]; ok {
			p.probs.add(i.at, "interface %q in the host belongs to lab %s", i.Name, other)
			continue
		}
		ls := p.st.Host.Links[i.Name]
		if ls == nil || ownsHostLink(p.mark, ls, p.ledLnk[[2]string{"", i.Name}]) {
			continue
		}
		if ls.Alias == p.mark {
			p.probs.add(i.at, "interface %q in the host carries lab %s's mark but is not in its ledger, so the lab did not make it: delete it (ip link del %s) or choose another name", i.Name, p.lab.Name, i.Name)
			continue
		}
		p.probs.add(i.at, "interface %q already exists in the host and is not lab %s's: choose another name", i.Name, p.lab.Name)
	}
}

// wantLink reports whether the lab still has a link of the ledger (with no
// lab, nothing is wanted).
func (p *planner) wantLink(lk *ledger.Link) bool {
	i := p.wantIf[[2]string{lk.Netns, lk.Name}]
	return i != nil && i.Node.Name == lk.Node && i.Kind == lk.Kind
}

// prune removes what the ledger holds and the lab no longer wants: with no
// lab, everything.
func (p *planner) prune() {
	// Processes first, so that nothing runs in a namespace being deleted.
	for i := range p.led.Procs {
		pr := &p.led.Procs[i]
		if !p.alive(i) || p.keepProc(pr) && !p.gated(i) {
			continue
		}
		p.add(Step{Op: OpStopProcess, Old: &Removal{Proc: pr}})
	}
	for i := range p.led.Sysctls {
		sc := &p.led.Sysctls[i]
		if p.lab != nil {
			if n := p.lab.Node(sc.Node); n != nil && slices.ContainsFunc(n.Sysctls, func(s Sysctl) bool { return s.Key == sc.Key }) {
				continue
			}
		}
		if cur, ok := p.st.Host.Sysctls[sc.Key]; ok && cur == sc.New && cur != sc.Old {
			p.add(Step{Op: OpRestoreSysctl, Old: &Removal{Sysctl: sc}})
		}
	}
	// A VXLAN half holds its VNI (and, up, its share of the port's socket)
	// in the machine's namespace until the kernel has destroyed the node's
	// namespace, which it does asynchronously after the namespace is
	// deleted. A teardown lets the namespaces take their halves along:
	// deleting each half first would free the VNI before down returns,
	// but the kernel takes tens of milliseconds for each (every deletion
	// waits for an RCU barrier, where a namespace's devices go in one
	// batch): 333 halves took 18 s, the namespaces 1. An up that comes
	// while the kernel still destroys them waits for it (checkVXLANUse,
	// addVXLAN). A node an up drops loses its halves first: that up is
	// about to make others.
	if p.lab != nil {
		for i := range p.led.Links {
			lk := &p.led.Links[i]
			if lk.Kind == KindVXLAN && lk.Netns != "" && p.owned[lk.Netns] && !p.wantNS[lk.Netns] && !p.wantLink(lk) {
				p.add(Step{Op: OpDelLink, Old: &Removal{Link: lk}})
			}
		}
	}
	for i := range p.led.Nodes {
		n := &p.led.Nodes[i]
		if !n.Owned() || p.wantNS[n.Netns] {
			continue
		}
		if !p.owned[n.Netns] {
			if ns := p.st.Netns[n.Netns]; ns != nil {
				p.notes = append(p.notes, fmt.Sprintf("namespace %s is not marked as lab %s's (loopback alias %q): left alone", n.Netns, p.led.Lab, ns.Mark))
			}
			continue
		}
		p.gone[n.Netns] = true
		p.add(Step{Op: OpDelNetns, Old: &Removal{Node: n}})
	}
	if p.led.Guard != "" && p.st.Host.Guard && (p.lab == nil || p.lab.guard() == nil) {
		p.add(Step{Op: OpDelGuard, Old: &Removal{Guard: &Guard{Table: p.led.Guard}}})
	}
	var await []*ledger.Link
	for i := range p.led.Links {
		lk := &p.led.Links[i]
		if p.wantLink(lk) {
			continue
		}
		ns := p.st.ns(lk.Netns)
		if lk.Netns != "" && (p.gone[lk.Netns] || !p.owned[lk.Netns]) {
			continue // gone with its namespace, or not the lab's namespace
		}
		ls := (*LinkState)(nil)
		if ns != nil {
			ls = ns.Links[lk.Name]
		}
		if ls != nil && lk.Netns == "" && !ownsHostLink(p.mark, ls, lk) {
			p.notes = append(p.notes, fmt.Sprintf("interface %s in the host is not marked as lab %s's (alias %q): left alone", lk.Name, p.led.Lab, ls.Alias))
			continue
		}
		if lk.Kind == KindVeth && p.peerGone(lk) {
			// Deleting the peer's namespace destroys this end too, in one
			// batch with the namespace's other links. In the host, wait for
			// it: its name must be free when down returns. (A teardown
			// does not read such ends beforehand, so ls may be nil:
			// awaitGone checks that what it waits for is the lab's.)
			if lk.Netns == "" {
				await = append(await, lk)
			}
			continue
		}
		if ls == nil {
			continue
		}
		p.add(Step{Op: OpDelLink, Old: &Removal{Link: lk}})
		p.dropPeer(lk)
	}
	if len(await) > 0 {
		p.add(Step{Op: OpAwaitGone, Old: &Removal{Links: await}})
	}
}

// peerGone reports whether a host veth's peer is in a namespace this plan
// deletes.
func (p *planner) peerGone(lk *ledger.Link) bool {
	node, _, ok := cutPeer(lk.Peer)
	if !ok {
		return false
	}
	n := p.ledN[node]
	return n != nil && n.Owned() && p.gone[n.Netns]
}

// dropPeer forgets the peer of a deleted veth end: the kernel deletes both.
func (p *planner) dropPeer(lk *ledger.Link) {
	if ns := p.st.ns(lk.Netns); ns != nil {
		delete(ns.Links, lk.Name)
	}
	node, name, ok := cutPeer(lk.Peer)
	if !ok {
		return
	}
	if n := p.ledN[node]; n != nil {
		if ns := p.st.ns(n.Netns); ns != nil {
			delete(ns.Links, name)
		}
	}
}

// cutPeer splits a ledger peer, "node:name" (neither may hold a colon).
func cutPeer(s string) (node, name string, ok bool) { return strings.Cut(s, ":") }

func (p *planner) alive(i int) bool { return i < len(p.st.Alive) && p.st.Alive[i] }

// gated reports whether the ledger's process i is alive but still at its
// gate: not the lab's running process, to be stopped and started again.
func (p *planner) gated(i int) bool { return i < len(p.st.Gated) && p.st.Gated[i] }

// keepProc reports whether a running ledger process is one the lab still
// wants, unchanged.
func (p *planner) keepProc(pr *ledger.Proc) bool {
	if p.lab == nil || p.fresh[pr.Netns] {
		return false
	}
	if pr.Role != "" {
		// The lab's own helpers (the fault delayer, a reverter) run
		// until down.
		return true
	}
	n := p.lab.Node(pr.Node)
	if n == nil || n.Netns != pr.Netns || pr.Index >= len(n.Processes) {
		return false
	}
	return slices.Equal(n.Processes[pr.Index].Argv, pr.Argv)
}

func (p *planner) namespaces() {
	for _, n := range p.lab.Nodes {
		if n.IsHost() {
			continue
		}
		ns := p.st.Netns[n.Netns]
		if ns != nil && ns.Stale {
			// An interrupted creation left an empty file: clear it.
			p.add(Step{Op: OpDelNetns, Old: &Removal{Node: &ledger.Node{Name: n.Name, Netns: n.Netns}}})
			ns = nil
		}
		if ns == nil {
			p.add(Step{Op: OpAddNetns, Node: n})
			p.add(Step{Op: OpLoUp, Node: n})
			continue
		}
		if !ns.LoUp {
			p.add(Step{Op: OpLoUp, Node: n})
		}
	}
}

// sysctls sets the node-wide keys; those of an interface are set with it
// (configure).
func (p *planner) sysctls() {
	for _, n := range p.lab.Nodes {
		ns := p.st.ns(n.Netns)
		for i, sc := range n.Sysctls {
			if sc.Iface != nil {
				continue
			}
			if ns != nil && !p.fresh[n.Netns] {
				if cur, ok := ns.Sysctls[sc.Key]; ok && cur == sc.Value {
					continue
				}
			}
			if n.IsHost() {
				if cur, ok := ns.Sysctls[sc.Key]; ok {
					p.old[sc.Key] = cur
				}
			}
			p.add(Step{Op: OpSysctl, Node: n, Index: int32(i)})
		}
	}
}

// linkState is the observed state of a lab interface, nil when it must be
// created.
func (p *planner) linkState(i *Interface) *LinkState {
	if p.fresh[i.Node.Netns] {
		return nil
	}
	return p.st.link(i)
}

func (p *planner) bridge(b *Bridge) {
	i := b.Iface
	ls := p.device(i, func(ls *LinkState) bool { return ls.Kind == KindBridge }, OpAddBridge)
	if ls != nil && ls.Up && !ls.Running && len(b.Ports) > 0 {
		// A bridge has carrier once a port forwards: an interrupted up
		// may have left that pending.
		p.carrier = append(p.carrier, i)
	}
}

func (p *planner) veth(l *Link) {
	a, b := l.A, l.B
	if b.Creator {
		a, b = b, a
	}
	sa, sb := p.linkState(a), p.linkState(b)
	paired := sa != nil && sb != nil && sa.Kind == KindVeth && sb.Kind == KindVeth &&
		sa.PeerIndex == sb.Index && sb.PeerIndex == sa.Index
	if !paired {
		for _, e := range []struct {
			i *Interface
			s *LinkState
		}{{a, sa}, {b, sb}} {
			if e.s != nil {
				p.add(Step{Op: OpDelLink, Iface: e.i})
			}
		}
		sa, sb = nil, nil
		p.making(a)
		p.making(b)
		p.add(Step{Op: OpAddVeth, Iface: a})
	}
	p.configure(a, sa)
	p.configure(b, sb)
}

// vxlan plans this machine's half of a link across machines: created when
// missing, recreated when its VXLAN settings are not the file's (the kernel
// changes none of them in place), then configured like a veth end.
func (p *planner) vxlan(i *Interface) {
	p.device(i, func(ls *LinkState) bool { return vxlanAgrees(ls, i) }, OpAddVXLAN)
}

// device plans a link that is one device (not a pair): deleted when it is
// there but not as agrees wants it, created by add when missing, then
// configured. It returns the observed state it configured from (nil when
// the plan creates it).
func (p *planner) device(i *Interface, agrees func(*LinkState) bool, add Op) *LinkState {
	ls := p.linkState(i)
	if ls != nil && !agrees(ls) {
		p.add(Step{Op: OpDelLink, Iface: i})
		ls = nil
	}
	if ls == nil {
		p.making(i)
		p.add(Step{Op: add, Iface: i})
	}
	p.configure(i, ls)
	return ls
}

// configure brings an interface from its observed state (nil: just created)
// to the lab's: marked, attached, addressed, up.
func (p *planner) configure(i *Interface, ls *LinkState) {
	if ls == nil || ls.Alias != p.mark {
		p.add(Step{Op: OpSetAlias, Iface: i})
	}
	if ls == nil || ls.AddrGenAuto {
		// Before the link is up, so the kernel never makes a link-local
		// address of its own: that would run duplicate address detection
		// (a router whose link-local address is tentative does not
		// forward for a second or two) and, on a big bridge, flood it.
		// An up interrupted after creating the link, or a hand, may have
		// left the kernel's mode: every attribute a plan sets is
		// compared, so a repaired lab is exactly a clean one.
		p.add(Step{Op: OpAddrGenNone, Iface: i})
	}
	if ls != nil && ls.MAC != "" && !strings.EqualFold(ls.MAC, i.MAC.String()) {
		p.add(Step{Op: OpSetMAC, Iface: i})
	}
	if i.Master != nil && (ls == nil || ls.Master != i.Master.Name) {
		p.add(Step{Op: OpSetMaster, Iface: i})
	}
	if ls != nil && i.MTU != 0 && ls.MTU != i.MTU {
		p.add(Step{Op: OpSetMTU, Iface: i})
	}
	// The interface's own sysctls, before it has addresses and is up, so
	// that keys such as accept_dad or disable_ipv6 apply from the start.
	for j, sc := range i.Node.Sysctls {
		if sc.Iface != i {
			continue
		}
		if ls != nil {
			if ns := p.st.ns(i.Node.Netns); ns != nil {
				if cur, ok := ns.Sysctls[sc.Key]; ok && cur == sc.Value {
					continue
				}
			}
		}
		p.add(Step{Op: OpSysctl, Node: i.Node, Index: int32(j)})
	}
	if ls != nil {
		// What the kernel made while addrgenmode was not none (its
		// link-local address, perhaps still tentative) goes, and so does
		// a lab address that went through DAD: it is added back below,
		// without.
		for _, a := range ls.DAD {
			if a.Addr().IsLinkLocalUnicast() || slices.Contains(i.Addrs, a) {
				p.add(Step{Op: OpDelAddr, Iface: i, Old: &Removal{Addr: a}})
			}
		}
		for _, a := range ls.Addrs {
			if a.Addr().Is6() && a.Addr().IsLinkLocalUnicast() && (!i.IPv6() || a != i.LinkLocal()) {
				p.add(Step{Op: OpDelAddr, Iface: i, Old: &Removal{Addr: a}})
			}
		}
	}
	if i.IPv6() && (ls == nil || !ls.hasAddr(i.LinkLocal())) {
		p.add(Step{Op: OpLinkLocal, Iface: i})
	}
	for j, a := range i.Addrs {
		if ls == nil || !ls.hasAddr(a) {
			p.add(Step{Op: OpAddAddr, Iface: i, Index: int32(j)})
		}
	}
	// An end the file's faults take down (down: true) stays down: the
	// faults are made after the lab's steps, and bringing it up first
	// would be a change on every up.
	if (ls == nil || !ls.Up) && !i.Faults().Down {
		p.add(Step{Op: OpSetUp, Iface: i})
	} else if !ls.Running && i.Kind == KindVeth {
		p.carrier = append(p.carrier, i)
	}
	// After up: taking a link down flushes its neighbour entries.
	var have map[NeighKey]string
	if ls != nil {
		if ns := p.st.ns(i.Node.Netns); ns != nil {
			have = ns.Neighs
		}
	}
	for _, r := range p.neighbours(i) {
		if ls == nil || !ls.Up || have[NeighKey{i.Name, neighAddr(i, r)}] != i.Peer.MAC.String() {
			p.add(Step{Op: OpAddNeigh, Iface: i, Index: r})
		}
	}
	if staticBridge(i) != nil && (ls == nil || !ls.Up || !hasNeighbours(have, i)) {
		p.add(Step{Op: OpAddBridgeNeighs, Iface: i})
	}
}

func (p *planner) routes() {
	for _, n := range p.lab.Nodes {
		ns := p.st.ns(n.Netns)
		for i, r := range n.Routes {
			if ns != nil && !p.fresh[n.Netns] && !p.made[routeDev(n, r)] && ns.hasRoute(r) {
				continue
			}
			p.add(Step{Op: OpAddRoute, Node: n, Index: int32(i)})
		}
	}
}

// routeDev is the interface a route leaves by: the one it names, or the one
// through which its gateway is reached.
func routeDev(n *Node, r Route) *Interface {
	if r.Dev != "" {
		return n.Interface(r.Dev)
	}
	return gatewayDev(n, r)
}

func (p *planner) processes() {
	running := map[[2]any]bool{}
	for j := range p.led.Procs {
		pr := &p.led.Procs[j]
		if p.keepProc(pr) && p.alive(j) && !p.gated(j) {
			running[[2]any{pr.Node, pr.Index}] = true
		}
	}
	for _, n := range p.lab.Nodes {
		for i := range n.Processes {
			if !running[[2]any{n.Name, i}] {
				p.add(Step{Op: OpStartProcess, Node: n, Index: int32(i)})
			}
		}
	}
}

func (o Op) String() string {
	names := [...]string{"", "stop process", "restore sysctl", "delete namespace", "delete link", "delete vxlan guard", "await removal",
		"add namespace", "loopback up", "set sysctl", "set vxlan guard", "add bridge", "add veth", "add vxlan", "set alias",
		"addrgenmode none", "set mac", "set master", "set mtu", "delete address", "add link-local address", "add address", "set up", "add neighbour", "add bridge neighbours", "add route", "start process"}
	if int(o) < len(names) {
		return names[o]
	}
	return fmt.Sprintf("op %d", o)
}

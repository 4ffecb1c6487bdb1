package lab

import (
	"errors"
	"fmt"
	"hash/fnv"
	"net/netip"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/nsnet/nsnet/internal/echo"
	"github.com/nsnet/nsnet/kernel"
	"github.com/nsnet/nsnet/lab/ledger"
)

// A lab spread over machines: hosts: names them with the underlay address
// nsnet uses on each, nodes say which host they are on, and a link whose
// ends are on two hosts becomes a pair of kernel VXLAN devices, one in each
// end's namespace, with a fixed remote, learning off, and a VNI both
// machines derive from the file alone (no coordinator).

// KindVXLAN is a lab interface that is one half of a link across machines.
const KindVXLAN = "vxlan"

// Defaults of the vxlan: section.
const (
	DefaultVXLANPort   = 4789 // IANA's
	DefaultUnderlayMTU = 1500
	// MaxVNI is the largest VXLAN network identifier (24 bits). VNI 0 is
	// left out: some switches treat it as "none".
	MaxVNI = 1<<24 - 1
)

// VXLAN overheads: outer IPv4 (20) or IPv6 (40), UDP (8), VXLAN (8) and the
// inner Ethernet header (14).
const (
	vxlanOverhead4 = 50
	vxlanOverhead6 = 70
)

// Host is one machine of a lab.
type Host struct {
	Name string
	// Address is the underlay address nsnet uses on that machine: the
	// local address of its VXLAN devices, and their remote on the others.
	Address netip.Addr

	at, addrAt loc
}

// VXLANConfig is the lab's vxlan: section, defaults filled in.
type VXLANConfig struct {
	Port           int
	VNIMin, VNIMax uint32
	// UnderlayMTU is the MTU of the machines' underlay interfaces.
	UnderlayMTU int

	// portAt is where the file sets the port: vxlan.port, else (the
	// default) the first host.
	portAt  loc
	portSet bool
	// mtuAt is where the file sets the underlay MTU, if it does.
	mtuAt  loc
	mtuSet bool
}

// MaxLinkMTU is the largest MTU of a link across machines whose underlay is
// IPv6 (v6) or IPv4.
func (c VXLANConfig) MaxLinkMTU(v6 bool) int {
	if v6 {
		return c.UnderlayMTU - vxlanOverhead6
	}
	return c.UnderlayMTU - vxlanOverhead4
}

// Host returns the named host, or nil.
func (l *Lab) Host(name string) *Host {
	for _, h := range l.Hosts {
		if h.Name == name {
			return h
		}
	}
	return nil
}

// CrossHost reports whether the link joins two machines.
func (lk *Link) CrossHost() bool { return lk.VNI != 0 }

// Remote is the underlay address of the machine a VXLAN interface's peer is
// on; Local is its own machine's.
func (i *Interface) Remote() netip.Addr { return i.Peer.Node.Host.Address }

// Local is the underlay address of the interface's machine.
func (i *Interface) Local() netip.Addr { return i.Node.Host.Address }

type hostSpec struct {
	Name    sval
	Address sval
}

type vxlanSpec struct {
	Port        ival
	VNI         sval
	UnderlayMTU ival
}

func (p *parser) hosts(n *yaml.Node) []*hostSpec {
	var out []*hostSpec
	for _, kv := range p.entries(n, "hosts") {
		h := &hostSpec{Name: kv.Key}
		f := p.fields(kv.Value, kv.Key.At.Path, "address")
		if v, ok := f.get("address"); ok {
			h.Address = p.str(v, kv.Key.At.Path+".address")
		} else if kv.Value.Kind == yaml.MappingNode || isNull(kv.Value) {
			p.add(kv.Key.At, "missing address: the underlay address nsnet uses on this machine (address: 192.168.50.1)")
		}
		out = append(out, h)
	}
	return out
}

func (p *parser) vxlan(n *yaml.Node) *vxlanSpec {
	v := &vxlanSpec{}
	f := p.fields(n, "vxlan", "port", "vni", "underlay-mtu")
	if x, ok := f.get("port"); ok {
		v.Port = p.int(x, "vxlan.port")
	}
	if x, ok := f.get("vni"); ok {
		v.VNI = p.str(x, "vxlan.vni")
	}
	if x, ok := f.get("underlay-mtu"); ok {
		v.UnderlayMTU = p.int(x, "vxlan.underlay-mtu")
	}
	return v
}

// hostDefs resolves hosts: and vxlan:, before the nodes that name them.
func (r *resolver) hostDefs(s *spec) {
	seen := map[netip.Addr]loc{}
	for _, hs := range s.Hosts {
		h := &Host{Name: hs.Name.V, at: hs.Name.At, addrAt: hs.Address.At}
		if hs.Name.V == "" || strings.ContainsAny(hs.Name.V, " \t\n/:") {
			r.add(hs.Name.At, "invalid host name %s: a host name is a word without spaces, '/' or ':'", echo.Quote(hs.Name.V))
		}
		if hs.Address.set() {
			a, err := netip.ParseAddr(hs.Address.V)
			switch {
			case err != nil || a.Zone() != "" || a.Is4In6():
				r.add(hs.Address.At, "invalid underlay address %s: expected an IPv4 or IPv6 address such as 192.168.50.1 or fd00:50::1 (no prefix length)", echo.Quote(hs.Address.V))
			case a.IsUnspecified() || a.IsMulticast() || a.IsLoopback() || a.IsLinkLocalUnicast():
				r.add(hs.Address.At, "underlay address %s must be a unicast address other machines reach (not unspecified, loopback, link-local or multicast)", a)
			default:
				if prev, dup := seen[a]; dup {
					r.add(hs.Address.At, "underlay address %s is already %s's (line %d): every host has its own", a, strings.TrimPrefix(prev.Path, "hosts."), prev.Line)
				} else {
					seen[a] = hs.Name.At
					h.Address = a
				}
			}
		}
		r.lab.Hosts = append(r.lab.Hosts, h)
	}
	c := VXLANConfig{Port: DefaultVXLANPort, VNIMin: 1, VNIMax: MaxVNI, UnderlayMTU: DefaultUnderlayMTU}
	if v := s.VXLAN; v != nil {
		if len(s.Hosts) == 0 {
			r.add(s.At, "vxlan: applies to labs across machines: add hosts:")
		}
		if v.Port.set() {
			if v.Port.V < 1 || v.Port.V > 65535 {
				r.add(v.Port.At, "UDP port %d is outside 1-65535", v.Port.V)
			} else {
				c.Port, c.portAt, c.portSet = v.Port.V, v.Port.At, true
			}
		}
		if v.VNI.set() {
			lo, hi, err := vniRange(v.VNI.V)
			if err != nil {
				r.add(v.VNI.At, "%v", err)
			} else {
				c.VNIMin, c.VNIMax = lo, hi
			}
		}
		if v.UnderlayMTU.set() {
			if v.UnderlayMTU.V < 576+vxlanOverhead4 || v.UnderlayMTU.V > 65535 {
				r.add(v.UnderlayMTU.At, "underlay MTU %d is outside %d-65535", v.UnderlayMTU.V, 576+vxlanOverhead4)
			} else {
				c.UnderlayMTU, c.mtuAt, c.mtuSet = v.UnderlayMTU.V, v.UnderlayMTU.At, true
			}
		}
	}
	if !c.portSet && len(s.Hosts) > 0 {
		c.portAt = s.Hosts[0].Name.At
	}
	r.lab.VXLAN = c
}

// vniRange parses "N" or "LO-HI".
func vniRange(s string) (uint32, uint32, error) {
	bad := fmt.Errorf("invalid VNI range %s: expected FIRST-LAST within 1-%d, such as 1000-1999", echo.Quote(s), MaxVNI)
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		b = a
	}
	lo, err1 := strconv.ParseUint(strings.TrimSpace(a), 10, 32)
	hi, err2 := strconv.ParseUint(strings.TrimSpace(b), 10, 32)
	if err1 != nil || err2 != nil || lo < 1 || hi > MaxVNI || lo > hi {
		return 0, 0, bad
	}
	return uint32(lo), uint32(hi), nil
}

// nodeHost places a node: on the host it names, else on the first.
func (r *resolver) nodeHost(n *Node, v sval) {
	if len(r.lab.Hosts) == 0 {
		if v.set() {
			r.add(v.At, "a node is placed on a host only in a lab with hosts: (add hosts: with each machine's underlay address)")
		}
		return
	}
	if !v.set() {
		n.Host = r.lab.Hosts[0]
		return
	}
	if n.Host = r.lab.Host(v.V); n.Host == nil {
		names := make([]string, len(r.lab.Hosts))
		for i, h := range r.lab.Hosts {
			names[i] = h.Name
		}
		r.add(v.At, "no host named %s (hosts: %s)", echo.Quote(v.V), strings.Join(names, ", "))
	}
}

// crossHost turns the links between machines into VXLAN pairs: kind, MTU
// and VNI. Explicit VNIs are reserved first; the others are a hash of the
// lab and the link into the range, the next free one on a collision, in
// file order: every machine reads the same file and so computes the same
// numbers.
func (r *resolver) crossHost(s *spec) {
	if len(r.lab.Hosts) == 0 {
		for _, ls := range s.Links {
			if ls.VNI.set() {
				r.add(ls.VNI.in(ls.At, ".vni"), "a VNI is for a link across machines, in a lab with hosts:")
			}
		}
		return
	}
	c := r.lab.VXLAN
	used := map[uint32]loc{}
	var derive []*linkSpec
	for _, ls := range s.Links {
		l := r.linkOf[ls]
		if l == nil || l.A.Node.Host == nil || l.B.Node.Host == nil || l.A.Node.Host == l.B.Node.Host {
			if ls.VNI.set() {
				r.add(ls.VNI.in(ls.At, ".vni"), "a VNI is for a link across machines; both ends of this one are on the same host")
			}
			continue
		}
		ha, hb := l.A.Node.Host, l.B.Node.Host
		if ha.Address.IsValid() && hb.Address.IsValid() && ha.Address.Is4() != hb.Address.Is4() {
			r.add(ls.At, "hosts %s (%s) and %s (%s) have underlay addresses of different families: a VXLAN link needs both IPv4 or both IPv6", ha.Name, ha.Address, hb.Name, hb.Address)
			continue
		}
		for _, e := range []*Interface{l.A, l.B} {
			e.Kind, e.Creator = KindVXLAN, false
		}
		max := c.MaxLinkMTU(ha.Address.Is6())
		switch {
		case ls.MTU.set() && ls.MTU.V > max:
			r.add(ls.MTU.in(ls.At, ".mtu"), "MTU %d is larger than the underlay allows: at most %d (underlay MTU %d minus %d of VXLAN over %s; set vxlan.underlay-mtu if the underlay's is larger)", ls.MTU.V, max, c.UnderlayMTU, c.UnderlayMTU-max, family(ha.Address))
		case !ls.MTU.set() && (l.MTU == 0 || l.MTU > max):
			l.MTU = max
		}
		l.A.MTU, l.B.MTU = l.MTU, l.MTU
		l.Port = c.Port
		l.at, l.vniAt = ls.At, ls.At
		if ls.VNI.set() {
			l.vniAt = ls.VNI.in(ls.At, ".vni")
		}
		if !ls.VNI.set() {
			derive = append(derive, ls)
			continue
		}
		v := ls.VNI.V
		if v < int(c.VNIMin) || v > int(c.VNIMax) {
			r.add(ls.VNI.in(ls.At, ".vni"), "VNI %d is outside the lab's range %d-%d", v, c.VNIMin, c.VNIMax)
			continue
		}
		if prev, dup := used[uint32(v)]; dup {
			r.add(ls.VNI.in(ls.At, ".vni"), "VNI %d is already the VNI of %s (line %d): two links across machines need two VNIs", v, prev.Path, prev.Line)
			continue
		}
		used[uint32(v)] = ls.At
		l.VNI = uint32(v)
	}
	r.segmentMTUs(s)
	size := uint64(c.VNIMax-c.VNIMin) + 1
	for _, ls := range derive {
		l := r.linkOf[ls]
		if uint64(len(used)) >= size {
			r.add(ls.At, "no VNI left in the range %d-%d for this link: widen vxlan.vni", c.VNIMin, c.VNIMax)
			continue
		}
		h := fnv.New64a()
		for _, w := range []string{r.lab.Name, l.A.Node.Name, l.A.Name, l.B.Node.Name, l.B.Name} {
			h.Write([]byte(w))
			h.Write([]byte{0})
		}
		off := h.Sum64() % size
		for {
			v := c.VNIMin + uint32(off)
			if _, taken := used[v]; !taken {
				used[v] = ls.At
				l.VNI = v
				break
			}
			off = (off + 1) % size
		}
	}
}

// segmentMTUs lowers the default MTU of a bridge with a port across
// machines, and of its other ports, to what VXLAN allows: a frame one node
// may send on the segment must fit through every port.
func (r *resolver) segmentMTUs(s *spec) {
	max := map[*Bridge]int{}
	for _, l := range r.lab.Links {
		if l.A.Kind != KindVXLAN {
			continue
		}
		for _, e := range []*Interface{l.A, l.B} {
			if e.Master != nil && (max[e.Master.Bridge] == 0 || l.MTU < max[e.Master.Bridge]) {
				max[e.Master.Bridge] = l.MTU
			}
		}
	}
	if len(max) == 0 {
		return
	}
	for _, bs := range s.Bridges {
		b := r.bridges[bs.Name.V]
		if m := max[b]; b != nil && m != 0 && !bs.MTU.set() {
			b.MTU, b.Iface.MTU = m, m
		}
	}
	for _, ls := range s.Links {
		l := r.linkOf[ls]
		if l == nil || l.A.Kind == KindVXLAN || ls.MTU.set() {
			continue
		}
		for _, e := range []*Interface{l.A, l.B} {
			if m := max[bridgeOf(e)]; e.Master != nil && m != 0 && (l.MTU == 0 || l.MTU > m) {
				l.MTU, l.A.MTU, l.B.MTU = m, m, m
			}
		}
	}
}

func bridgeOf(i *Interface) *Bridge {
	if i.Master == nil {
		return nil
	}
	return i.Master.Bridge
}

func family(a netip.Addr) string {
	if a.Is4() {
		return "IPv4"
	}
	return "IPv6"
}

// Guard is the nftables table that lets only a lab's other hosts send to
// its VXLAN port on this machine (kernel.SetVXLANGuard).
type Guard struct {
	Table string
	Port  int
	Allow []netip.Addr
}

// GuardTable names a lab's VXLAN guard table.
func GuardTable(lab string) string { return "nsnet-vxlan-" + lab }

// guard is the VXLAN guard this part of a lab needs: one when it has a
// half of a link across machines, allowing the other hosts' addresses.
func (l *Lab) guard() *Guard {
	if l.Here == nil {
		return nil
	}
	cross := false
	for _, lk := range l.Links {
		cross = cross || lk.CrossHost()
	}
	if !cross {
		return nil
	}
	g := &Guard{Table: GuardTable(l.Name), Port: l.VXLAN.Port}
	for _, h := range l.Hosts {
		if h != l.Here {
			g.Allow = append(g.Allow, h.Address)
		}
	}
	return g
}

// ForHost is the part of a lab that one machine builds: its nodes, its
// bridges, its local links and its halves of the links across machines.
// The host node (the namespace nsnet runs in) is in every part, with its
// interfaces only on its own host.
func (l *Lab) ForHost(h *Host) *Lab {
	part := *l
	part.Here = h
	part.whole = l.Whole()
	part.Nodes = nil
	part.nodes = map[string]*Node{}
	for _, n := range l.Nodes {
		if n.Host != h && n.IsHost() {
			n = &Node{Name: HostNode, Host: n.Host}
		}
		if n.Host == h || n.IsHost() {
			part.Nodes = append(part.Nodes, n)
			part.nodes[n.Name] = n
		}
	}
	part.Bridges = nil
	for _, b := range l.Bridges {
		if b.Node.Host == h {
			part.Bridges = append(part.Bridges, b)
		}
	}
	part.Links = nil
	for _, lk := range l.Links {
		if lk.A.Node.Host == h || lk.B.Node.Host == h {
			part.Links = append(part.Links, lk)
		}
	}
	return &part
}

// Whole is the lab a part (ForHost) was cut from; a whole lab is its own.
func (l *Lab) Whole() *Lab {
	if l.whole != nil {
		return l.whole
	}
	return l
}

// Local is the end of a link on this part's machine (A for a lab on one
// machine).
func (l *Lab) Local(lk *Link) *Interface {
	if l.Here != nil && lk.B.Node.Host == l.Here && lk.A.Node.Host != l.Here {
		return lk.B
	}
	return lk.A
}

// ErrNoHost is returned when nsnet cannot tell which host of a lab this
// machine is.
var ErrNoHost = errors.New("cannot tell which host of the lab this machine is")

// SelectHost picks this machine's host of a lab with hosts: the one named
// (whose address must be one of local, this machine's addresses), else the
// one whose address is local. With none or several, the error says so and
// how to choose.
func SelectHost(l *Lab, name string, local []netip.Addr) (*Host, error) {
	if len(l.Hosts) == 0 {
		if name != "" {
			return nil, fmt.Errorf("--host %s: lab %s has no hosts: section, it runs on one machine", echo.Quote(name), l.Name)
		}
		return nil, nil
	}
	isLocal := func(a netip.Addr) bool {
		for _, x := range local {
			if x.Unmap() == a {
				return true
			}
		}
		return false
	}
	names := make([]string, len(l.Hosts))
	for i, h := range l.Hosts {
		names[i] = h.Name
	}
	if name != "" {
		h := l.Host(name)
		if h == nil {
			return nil, fmt.Errorf("--host %s: lab %s has no such host (hosts: %s)", echo.Quote(name), l.Name, strings.Join(names, ", "))
		}
		if !isLocal(h.Address) {
			pr := problems{file: l.src}
			pr.add(h.addrAt, "underlay address %s of host %s is not an address of this machine (--host %s): run on %s, or put the address on its underlay interface", h.Address, h.Name, h.Name, h.Name)
			return nil, pr.err()
		}
		return h, nil
	}
	var found []*Host
	for _, h := range l.Hosts {
		if isLocal(h.Address) {
			found = append(found, h)
		}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return nil, fmt.Errorf("%w: no host's address is on this machine's interfaces (hosts: %s): add it, or name the host with --host", ErrNoHost, hostList(l.Hosts))
	}
	return nil, fmt.Errorf("%w: the addresses of several hosts are on this machine (%s): name one with --host", ErrNoHost, hostList(found))
}

func hostList(hs []*Host) string {
	s := make([]string, len(hs))
	for i, h := range hs {
		s[i] = h.Name + " " + h.Address.String()
	}
	return strings.Join(s, ", ")
}

// LocalAddrs lists the addresses of the machine's interfaces (the
// namespace nsnet runs in), to find which host of a lab this is.
func (s *System) LocalAddrs() ([]netip.Addr, error) {
	h, err := s.host.handle()
	if err != nil {
		return nil, err
	}
	as, err := h.Addrs()
	if err != nil {
		return nil, err
	}
	out := make([]netip.Addr, 0, len(as))
	for _, a := range as {
		out = append(out, a.Prefix.Addr())
	}
	return out, nil
}

// part is the lab as this machine builds it: the whole lab without hosts,
// else the part of the host opt.Host names or this machine's addresses
// give.
func part(l *Lab, opt Options, sys *System) (*Lab, error) {
	if len(l.Hosts) == 0 {
		if opt.Host != "" {
			_, err := SelectHost(l, opt.Host, nil)
			return nil, err
		}
		return l, nil
	}
	if l.Here != nil {
		return l, nil
	}
	local, err := sys.LocalAddrs()
	if err != nil {
		return nil, err
	}
	h, err := SelectHost(l, opt.Host, local)
	if err != nil {
		return nil, err
	}
	return l.ForHost(h), nil
}

// hostNFT opens an nftables connection in the machine's namespace, where
// the lab's VXLAN guard lives.
func (s *System) hostNFT() (*kernel.NFT, error) {
	ns, err := s.host.netns()
	if err != nil {
		return nil, err
	}
	return kernel.OpenNFT(ns)
}

// guard makes or deletes the lab's VXLAN guard table in the machine's
// namespace.
func (s *System) guard(st Step) error {
	n, err := s.hostNFT()
	if err != nil {
		return err
	}
	defer n.Close()
	g := st.Old.Guard
	if st.Op == OpDelGuard {
		return n.DeleteTables(g.Table)
	}
	return n.SetVXLANGuard(g.Table, g.Port, g.Allow)
}

// observeGuard reads whether the lab's guard table exists, when the lab has
// hosts or its ledger lists one.
func (s *System) observeGuard(st *State, l *Lab, led *ledger.Ledger) error {
	if (l == nil || len(l.Hosts) == 0) && (led == nil || led.Guard == "") {
		return nil
	}
	name := ""
	if l != nil {
		name = l.Name
	} else {
		name = led.Lab
	}
	n, err := s.hostNFT()
	if err != nil {
		return err
	}
	defer n.Close()
	st.Host.Guard, err = n.HasVXLANGuard(GuardTable(name))
	return err
}

// Part is this machine's part of a lab across machines (the whole lab
// without hosts:), by opt.Host or this machine's addresses: what check
// probes from here.
func Part(l *Lab, opt Options) (*Lab, error) {
	if len(l.Hosts) == 0 && opt.Host == "" {
		return l, nil
	}
	sys, err := NewSystem(opt.Netns, opt.Exe, "", l.Mark())
	if err != nil {
		return nil, err
	}
	defer sys.Close()
	return part(l, opt, sys)
}

// CheckHost refuses --host (opt.Host) naming another host than the one
// whose part of the lab this machine's ledger holds, as up refuses a host
// whose address is not here.
func CheckHost(led *ledger.Ledger, host string) error {
	if host == "" || led == nil || led.HostName == host {
		return nil
	}
	return &HostMismatchError{Lab: led.Lab, Host: host, Here: led.HostName}
}

// NoNode is the error for a node this machine's ledger of a lab does not
// have: in a lab across machines whose file says the node is on another
// host, that host (an ElsewhereError); else the nodes there are.
func NoNode(led *ledger.Ledger, node string) error {
	if err := elsewhere(led.Lab, led.File, led.HostName, node); err != nil {
		return err
	}
	e := &NoNodeError{Lab: led.Lab, Node: node}
	for _, x := range led.Nodes {
		e.Nodes = append(e.Nodes, x.Name)
	}
	return e
}

// Elsewhere is the ElsewhereError of a node this machine's ledger of a
// lab across machines does not have and its file puts on another host, nil
// otherwise (see NoNode).
func Elsewhere(led *ledger.Ledger, node string) error {
	return elsewhere(led.Lab, led.File, led.HostName, node)
}

// elsewhere reads the lab file (only on this error path: the ledger holds
// this machine's part alone) for the host of a node that is not here; nil
// when the lab is on one machine, the file cannot be read or does not place
// the node on another host.
func elsewhere(name, file, here, node string) error {
	if here == "" || file == "" {
		return nil
	}
	l, err := Load(file)
	if err != nil || l.Name != name {
		return nil
	}
	n := l.Node(node)
	if n == nil || n.Host == nil || n.Host.Name == here {
		return nil
	}
	return &ElsewhereError{Lab: name, Node: node, Host: n.Host.Name, Address: n.Host.Address.String(), Here: here}
}

// NodeHere is nil when node is one of the nodes of l, a lab or this
// machine's part of one (Part), else the error that says where it is: on
// another machine, or not in the lab at all.
func NodeHere(l *Lab, node string) error {
	n := l.Whole().Node(node)
	if n == nil {
		e := &NoNodeError{Lab: l.Name, Node: node}
		for _, x := range l.Nodes {
			e.Nodes = append(e.Nodes, x.Name)
		}
		return e
	}
	if l.Here == nil || n.Host == nil || n.Host == l.Here || n.IsHost() {
		return nil
	}
	return &ElsewhereError{Lab: l.Name, Node: node, Host: n.Host.Name, Address: n.Host.Address.String(), Here: l.Here.Name}
}

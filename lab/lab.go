// Package lab builds declarative network labs: a YAML file names nodes
// (network namespaces), bridges and links (veth pairs) with their addresses,
// routes, sysctls and processes; nsnet creates exactly that, repairs drift,
// and tears down exactly what it made.
//
// The pieces are separate so that most of them are tested without a kernel:
//
//	Load/Parse   YAML -> *Lab, with every problem at once, each located by
//	             file:line:column and the field's path
//	PlanUp       *Lab + observed *State -> ordered Steps (pure); PlanDown
//	             does the same for a teardown, from the ledger alone
//	Step.Lines   each step as the iproute2 command that does the same
//	Apply        runs steps through an Executor (System: the kernel),
//	             recording every object in the lab's ledger before creating it
//	Up/Down      lock the lab, observe the kernel, plan, apply
//	Status/Labs  what exists, from the ledgers and the kernel
//
// Ownership: every link the lab creates carries the ifalias "nsnet:LAB" and a
// MAC address derived from the lab and the link's name; every namespace it
// creates has "nsnet:LAB" as the alias of its loopback, set before the
// namespace gets its name. Teardown deletes an object only when the ledger
// lists it and the kernel's mark agrees.
//
// lab owns the lab model, the plan and the ledger; it changes the kernel only
// through package kernel (System queues each step's request on a kernel.Batch
// per namespace) and package netns. See ARCHITECTURE.md for the data flow.
package lab

import (
	"hash/fnv"
	"net"
	"net/netip"

	"github.com/nsnet/nsnet/fault"
)

// HostNode is the name of the node that stands for the namespace nsnet runs
// in. The lab never creates or deletes it.
const HostNode = "host"

// MarkPrefix starts the ifalias that marks a lab's objects.
const MarkPrefix = "nsnet:"

// MaxBridgePorts is how many ports a Linux bridge holds (BR_MAX_PORTS-1:
// port numbers are 10 bits and 0 is reserved).
const MaxBridgePorts = 1023

// Lab is a validated lab: every name resolved, every automatic address
// allocated. It is read-only once built.
type Lab struct {
	Name string
	// File is the path the lab was loaded from (empty if parsed from
	// memory).
	File    string
	Nodes   []*Node // the host first (when the lab uses it), then in file order
	Bridges []*Bridge
	Links   []*Link

	nodes map[string]*Node
	src   string // the file's name as given, for messages
	// Hosts are the machines of a lab across machines (hosts.go), none
	// for a lab on one machine; VXLAN is its vxlan: section. Here is the
	// machine a part of the lab (ForHost) is for.
	Hosts []*Host
	VXLAN VXLANConfig
	Here  *Host
	// whole is the lab a part was cut from (nil: this is the whole lab).
	whole *Lab
	// Compact says what each compact entry (count:) of the file stands
	// for, for plan (compact.go).
	Compact []string
	// Expect lists the lab's reachability and isolation expectations, for
	// nsnet check (see expect.go).
	Expect []Expectation
}

// Mark is the ifalias that marks the lab's links and namespaces.
func (l *Lab) Mark() string { return MarkPrefix + l.Name }

// Node returns the named node, or nil.
func (l *Lab) Node(name string) *Node { return l.nodes[name] }

// NodeWith returns the node that has addr on one of its interfaces, or nil.
func (l *Lab) NodeWith(addr netip.Addr) *Node {
	for _, n := range l.Nodes {
		for _, p := range n.Addresses() {
			if p.Addr() == addr {
				return n
			}
		}
	}
	return nil
}

// Node is a network namespace of the lab, or the host.
type Node struct {
	Name string
	// Netns is the namespace's name in the namespace directory
	// (/run/netns), by default "LAB-NODE"; empty for the host.
	Netns      string
	Interfaces []*Interface // veth ends and bridges in this node, in file order
	Routes     []Route
	Sysctls    []Sysctl
	Processes  []Process

	// Responders are the built-in servers (tcp:PORT echo, udp:PORT echo,
	// http:PORT) nsnet check starts in the node while it probes.
	Responders []string
	// RespondersAlways: the responders run while the lab is up, as
	// processes of the node (responders: {always: true}), not only
	// during check.
	RespondersAlways bool

	// Host is the machine the node is on, nil in a lab without hosts.
	Host *Host

	at loc
}

// IsHost reports whether the node is the host namespace.
func (n *Node) IsHost() bool { return n.Netns == "" }

// Interface returns the node's interface of that name, or nil.
func (n *Node) Interface(name string) *Interface {
	for _, i := range n.Interfaces {
		if i.Name == name {
			return i
		}
	}
	return nil
}

// InterfaceWith returns the node's interface that has address a, or nil.
func (n *Node) InterfaceWith(a netip.Addr) *Interface {
	for _, i := range n.Interfaces {
		for _, p := range i.Addrs {
			if p.Addr() == a {
				return i
			}
		}
	}
	return nil
}

// Addresses lists the addresses of all the node's interfaces, in order.
func (n *Node) Addresses() []netip.Prefix {
	var out []netip.Prefix
	for _, i := range n.Interfaces {
		out = append(out, i.Addrs...)
	}
	return out
}

// Kinds of interface.
const (
	KindVeth   = "veth"
	KindBridge = "bridge"
)

// Interface is one network device the lab creates: a veth end or a bridge.
type Interface struct {
	Node *Node
	Name string
	Kind string // KindVeth, KindBridge or KindVXLAN
	// MTU is 0 for the kernel's default.
	MTU int
	// MAC is derived from the lab, namespace and name: the same lab file
	// always gives the same addresses, and a link found with it is known
	// to be the lab's even before its alias is set.
	MAC MAC
	// Creator is true on the veth end whose namespace creates the pair
	// (the peer is created directly in its own namespace). (Beside MAC:
	// both fit in one word.)
	Creator bool
	// Addrs are the interface's addresses, automatic ones resolved.
	Addrs []netip.Prefix
	// Peer is a veth's other end.
	Peer *Interface
	// Master is the bridge this end is a port of, or nil.
	Master *Interface
	// Bridge is set when Kind is KindBridge.
	Bridge *Bridge
	// Link is the link the veth end belongs to.
	Link *Link
	// faults shape what leaves this end (a veth end only): the link's
	// faults: with the end's own over them. Nil for none, which is almost
	// every end: a fault.Spec is 128 bytes, 20,000 ends 2.5 MB.
	faults *fault.Spec

	at loc
}

// Faults are what the lab file's faults: make of what leaves this end (a
// veth end only): the link's, with the end's own over them; zero for none.
func (i *Interface) Faults() fault.Spec {
	if i.faults == nil {
		return fault.Spec{}
	}
	return *i.faults
}

// IPv6 reports whether the interface has IPv6 addresses. Only those get an
// IPv6 link-local address; on the others nsnet keeps the kernel from making
// one, which spares big labs a flood of duplicate address detection and
// multicast listener reports.
func (i *Interface) IPv6() bool {
	for _, a := range i.Addrs {
		if a.Addr().Is6() {
			return true
		}
	}
	return false
}

// LinkLocal is the interface's IPv6 link-local address: fe80::/64 with the
// EUI-64 of its MAC, which is what the kernel would make, but added without
// duplicate address detection so that it is usable at once.
func (i *Interface) LinkLocal() netip.Prefix {
	m := i.MAC
	var b [16]byte
	b[0], b[1] = 0xfe, 0x80
	b[8], b[9], b[10], b[11] = m[0]^0x02, m[1], m[2], 0xff
	b[12], b[13], b[14], b[15] = 0xfe, m[3], m[4], m[5]
	return netip.PrefixFrom(netip.AddrFrom16(b), 64)
}

// Bridge is a Linux bridge in a node.
type Bridge struct {
	Name    string
	Node    *Node
	Subnets []netip.Prefix
	MTU     int
	Iface   *Interface
	Ports   []*Interface
	// StaticNeighbours (static_neighbours: true) gives every station on
	// the bridge a permanent neighbour entry for every other one, so that
	// none is resolved by ARP or neighbour discovery (see staticneigh.go).
	StaticNeighbours bool
}

// Link is a veth pair. A and B are its ends; an end on a bridge is a port of
// that bridge, in the bridge's node.
type Link struct {
	A, B *Interface
	MTU  int
	// VNI is the VXLAN network identifier of a link across machines (its
	// ends are then KindVXLAN), 0 for a link on one machine.
	VNI uint32
	// Port is the UDP port of a link across machines (vxlan.port).
	Port int

	at, vniAt loc // the link's entry and its vni: (if set)
}

// Route is a route in a node's main table.
type Route struct {
	To  netip.Prefix // invalid: the default route
	Via netip.Addr   // invalid: on-link through Dev
	Dev string

	at loc
}

// IsDefault reports whether the route is a default route.
func (r Route) IsDefault() bool { return !r.To.IsValid() }

// Sysctl is a /proc/sys value to set in a node, by dotted key: a key the
// kernel keeps per network namespace (see CheckSysctls).
type Sysctl struct {
	Key, Value string
	// Iface is the lab interface a per-interface key names
	// (net.ipv4.conf.eth0.rp_filter), nil for a key of the whole
	// namespace. Such a key is set once the interface exists, and goes
	// with it.
	Iface *Interface

	keyAt, at loc
}

// Process is a command to keep running in a node while the lab is up.
type Process struct {
	Argv []string
	// Self: Argv[0] is "nsnet", started as the running nsnet binary (a
	// responder that runs while the lab is up).
	Self bool

	at loc
}

// MAC is an Ethernet address, held in place (a net.HardwareAddr is a slice
// header and an allocation of its own: 32 bytes for 6, in each of a big
// lab's 20,000 interfaces).
type MAC [6]byte

// String is the address as net.HardwareAddr writes it (02:00:5e:10:00:01).
func (m MAC) String() string { return net.HardwareAddr(m[:]).String() }

// derivedMAC makes a locally administered unicast MAC address from the lab,
// the namespace and the interface name.
func derivedMAC(lab, netns, name string) MAC {
	h := fnv.New64a()
	h.Write([]byte(lab))
	h.Write([]byte{0})
	h.Write([]byte(netns))
	h.Write([]byte{0})
	h.Write([]byte(name))
	s := h.Sum64()
	mac := MAC{byte(s >> 40), byte(s >> 32), byte(s >> 24), byte(s >> 16), byte(s >> 8), byte(s)}
	mac[0] = mac[0]&0xfe | 0x02
	return mac
}

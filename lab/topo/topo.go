// Package topo generates lab files of common shapes (linear, star, ring,
// mesh, tree, clos), as Mininet's --topo does: every host addressed, every
// router forwarding with static routes to every subnet of the lab, so that
// every node reaches every other. It is pure: it writes YAML text that the
// lab package parses like any file a user wrote.
package topo

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
)

// MaxNodes bounds a generated lab: beyond it the static routes (one per
// subnet in every router) grow too large to be a useful file.
const MaxNodes = 2000

// MaxRoutes bounds the static routes of a generated lab (routers times
// links): a mesh of 60 routers already has over 100,000.
const MaxRoutes = 200000

// shapeArgs returns the arguments each shape takes, for usage lines.
func shapeArgs() map[string][]string {
	return map[string][]string{
		"linear": {"N"},
		"star":   {"N"},
		"ring":   {"N"},
		"mesh":   {"N"},
		"tree":   {"DEPTH", "FANOUT"},
		"clos":   {"SPINES", "LEAVES", "HOSTS_PER_LEAF"},
	}
}

// Shapes returns the shape names in the order help lists them.
func Shapes() []string { return []string{"linear", "star", "ring", "mesh", "tree", "clos"} }

// Args returns the argument names a shape takes (nil for an unknown shape).
func Args(shape string) []string { return shapeArgs()[shape] }

// ErrUsage marks an argument error (an unknown shape, a bad count).
var ErrUsage = errors.New("bad topology")

// Topology is a generated lab: routers and hosts joined by point-to-point
// links, each link a /30 of 10.0.0.0/8.
type Topology struct {
	Name    string
	Comment string // what the shape is, for the file's header
	Nodes   []*Node
	Links   []*Link
}

// Node is a router (forwards, routes to every subnet) or a host (a default
// route through its router).
type Node struct {
	Name   string
	Router bool
	Ifaces []*Iface
	Routes []Route
	adj    []*Iface // in link order: the node's ends
}

// Iface is one end of a link.
type Iface struct {
	Node *Node
	Name string
	Addr netip.Prefix
	Link *Link
}

// Link joins two ends on one /30.
type Link struct {
	A, B   *Iface
	Subnet netip.Prefix
}

// Route is a static route; To invalid means default.
type Route struct {
	To  netip.Prefix
	Via netip.Addr
}

func (i *Iface) peer() *Iface {
	if i.Link.A == i {
		return i.Link.B
	}
	return i.Link.A
}

// New builds the named shape with its arguments (as written on the command
// line). name is the lab's name; empty gives SHAPE-ARG-ARG.
func New(shape string, args []string, name string) (*Topology, error) {
	want, ok := shapeArgs()[shape]
	if !ok {
		return nil, fmt.Errorf("%w: unknown shape %q (one of %s)", ErrUsage, shape, strings.Join(Shapes(), ", "))
	}
	if len(args) != len(want) {
		return nil, fmt.Errorf("%w: %s takes %s", ErrUsage, shape, strings.Join(want, " "))
	}
	n := make([]int, len(args))
	for i, a := range args {
		v, err := strconv.Atoi(a)
		if err != nil || v < 1 || v > MaxNodes {
			return nil, fmt.Errorf("%w: %s %s: %q must be a whole number from 1 to %d", ErrUsage, shape, want[i], a, MaxNodes)
		}
		n[i] = v
	}
	if name == "" {
		name = shape + "-" + strings.Join(args, "-")
	}
	b := &builder{t: &Topology{Name: name}}
	if err := b.shape(shape, n); err != nil {
		return nil, err
	}
	if len(b.t.Nodes) > MaxNodes {
		return nil, fmt.Errorf("%w: %s %s makes %d nodes, more than %d", ErrUsage, shape, strings.Join(args, " "), len(b.t.Nodes), MaxNodes)
	}
	routers := 0
	for _, n := range b.t.Nodes {
		if n.Router {
			routers++
		}
	}
	if routers*len(b.t.Links) > MaxRoutes {
		return nil, fmt.Errorf("%w: %s %s needs about %d static routes, more than %d", ErrUsage, shape, strings.Join(args, " "), routers*len(b.t.Links), MaxRoutes)
	}
	b.route()
	return b.t, nil
}

type builder struct {
	t     *Topology
	hosts int
}

func (b *builder) node(name string, router bool) *Node {
	n := &Node{Name: name, Router: router}
	b.t.Nodes = append(b.t.Nodes, n)
	return n
}

// host adds the next host hN, linked to router r.
func (b *builder) host(r *Node) *Node {
	b.hosts++
	h := b.node("h"+strconv.Itoa(b.hosts), false)
	b.link(h, r)
	return h
}

// link joins x and y with the next /30: .1 for x and .2 for y, except that
// a host (x, in host) takes .2, leaving .1 to its router.
func (b *builder) link(x, y *Node) {
	k := len(b.t.Links)
	base := netip.AddrFrom4([4]byte{10, byte(k >> 14), byte(k >> 6), byte(k << 2)})
	sub := netip.PrefixFrom(base, 30)
	one := base.Next()
	two := one.Next()
	lk := &Link{Subnet: sub}
	// The router end gets .1, the gateway a host's default route names.
	ax, ay := two, one
	if x.Router {
		ax, ay = one, two
	}
	lk.A = &Iface{Node: x, Name: ifname(x), Addr: netip.PrefixFrom(ax, 30), Link: lk}
	x.Ifaces = append(x.Ifaces, lk.A)
	lk.B = &Iface{Node: y, Name: ifname(y), Addr: netip.PrefixFrom(ay, 30), Link: lk}
	y.Ifaces = append(y.Ifaces, lk.B)
	b.t.Links = append(b.t.Links, lk)
}

// ifname names a node's next end: eth0 up for a host, eth1 up for a router
// (Mininet's s1-eth1 with the node's name left out: the namespace says it).
func ifname(n *Node) string {
	if n.Router {
		return "eth" + strconv.Itoa(len(n.Ifaces)+1)
	}
	return "eth" + strconv.Itoa(len(n.Ifaces))
}

func (b *builder) routers(prefix string, count int) []*Node {
	out := make([]*Node, count)
	for i := range out {
		out[i] = b.node(prefix+strconv.Itoa(i+1), true)
	}
	return out
}

func (b *builder) shape(shape string, n []int) error {
	t := b.t
	switch shape {
	case "linear":
		rs := b.routers("r", n[0])
		for i, r := range rs {
			if i > 0 {
				b.link(rs[i-1], r)
			}
		}
		for _, r := range rs {
			b.host(r)
		}
		t.Comment = fmt.Sprintf("linear %d: %d routers in a chain (r1 ... r%d), host hI on router rI", n[0], n[0], n[0])
	case "star":
		r := b.node("r1", true)
		for range n[0] {
			b.host(r)
		}
		t.Comment = fmt.Sprintf("star %d: hosts h1 ... h%d around one router r1", n[0], n[0])
	case "ring":
		if n[0] < 3 {
			return fmt.Errorf("%w: ring N: a ring needs at least 3 routers, not %d", ErrUsage, n[0])
		}
		rs := b.routers("r", n[0])
		for i, r := range rs {
			b.link(r, rs[(i+1)%len(rs)])
		}
		for _, r := range rs {
			b.host(r)
		}
		t.Comment = fmt.Sprintf("ring %d: %d routers in a ring, host hI on router rI; routes take the shorter way round", n[0], n[0])
	case "mesh":
		rs := b.routers("r", n[0])
		for i := range rs {
			for j := i + 1; j < len(rs); j++ {
				b.link(rs[i], rs[j])
			}
		}
		for _, r := range rs {
			b.host(r)
		}
		t.Comment = fmt.Sprintf("mesh %d: %d routers each linked to every other, host hI on router rI", n[0], n[0])
	case "tree":
		depth, fan := n[0], n[1]
		total := 0
		for d, w := 0, 1; d <= depth; d++ {
			total += w
			if total > MaxNodes {
				return fmt.Errorf("%w: tree %d %d makes more than %d nodes", ErrUsage, depth, fan, MaxNodes)
			}
			w *= fan
		}
		level := []*Node{b.node("r1", true)}
		made := 1
		for d := 1; d < depth; d++ {
			var next []*Node
			for _, p := range level {
				for range fan {
					made++
					c := b.node("r"+strconv.Itoa(made), true)
					b.link(p, c)
					next = append(next, c)
				}
			}
			level = next
		}
		for _, p := range level {
			for range fan {
				b.host(p)
			}
		}
		t.Comment = fmt.Sprintf("tree %d %d: routers in a tree of depth %d and fanout %d, %d hosts at the leaves (Mininet's tree,depth=%d,fanout=%d)", depth, fan, depth, fan, b.hosts, depth, fan)
	case "clos":
		if n[1]*n[2]+n[0]+n[1] > MaxNodes { // hosts are leaves times hosts per leaf
			return fmt.Errorf("%w: clos %d %d %d makes more than %d nodes", ErrUsage, n[0], n[1], n[2], MaxNodes)
		}
		spines := b.routers("spine", n[0])
		leaves := b.routers("leaf", n[1])
		for _, l := range leaves {
			for _, s := range spines {
				b.link(l, s)
			}
		}
		for _, l := range leaves {
			for range n[2] {
				b.host(l)
			}
		}
		t.Comment = fmt.Sprintf("clos %d %d %d: %d spines, %d leaves each linked to every spine, %d hosts on each leaf; static routes take one path (the lowest-numbered spine), no ECMP", n[0], n[1], n[2], n[0], n[1], n[2])
	}
	return nil
}

// route gives each host a default route through its router, and each
// router a route to every subnet it is not on, through the neighbour on
// its shortest path (breadth-first, neighbours in link order, so the file
// is the same every time).
func (b *builder) route() {
	t := b.t
	var routers []*Node
	idx := map[*Node]int{}
	for _, n := range t.Nodes {
		if n.Router {
			idx[n] = len(routers)
			routers = append(routers, n)
		} else if len(n.Ifaces) > 0 {
			n.Routes = []Route{{Via: n.Ifaces[0].peer().Addr.Addr()}}
		}
	}
	for _, r := range routers {
		// first[j] is r's end toward router j, dist[j] its hops.
		first := make([]*Iface, len(routers))
		dist := make([]int, len(routers))
		for j := range dist {
			dist[j] = -1
		}
		dist[idx[r]] = 0
		queue := []*Node{r}
		for len(queue) > 0 {
			u := queue[0]
			queue = queue[1:]
			for _, e := range u.Ifaces {
				v := e.peer().Node
				if !v.Router || dist[idx[v]] >= 0 {
					continue
				}
				dist[idx[v]] = dist[idx[u]] + 1
				if u == r {
					first[idx[v]] = e
				} else {
					first[idx[v]] = first[idx[u]]
				}
				queue = append(queue, v)
			}
		}
		for _, lk := range t.Links {
			if lk.A.Node == r || lk.B.Node == r {
				continue
			}
			// Toward the nearer router end of the link (a host's link has one).
			best := -1
			for _, e := range []*Iface{lk.A, lk.B} {
				if !e.Node.Router {
					continue
				}
				j := idx[e.Node]
				if dist[j] > 0 && (best < 0 || dist[j] < dist[best]) {
					best = j
				}
			}
			if best < 0 {
				continue
			}
			r.Routes = append(r.Routes, Route{To: lk.Subnet, Via: first[best].peer().Addr.Addr()})
		}
	}
}

// Hosts returns the topology's hosts, in order.
func (t *Topology) Hosts() []*Node {
	var out []*Node
	for _, n := range t.Nodes {
		if !n.Router {
			out = append(out, n)
		}
	}
	return out
}

// Write writes the topology as a lab file.
func (t *Topology) Write(w io.Writer, command string) error {
	var s strings.Builder
	fmt.Fprintf(&s, "# %s.\n", t.Comment)
	fmt.Fprintf(&s, "# Generated by %s. Every link is a /30 of 10.0.0.0/8; routers forward and\n", command)
	s.WriteString("# have a static route to every subnet, hosts a default route through\n")
	s.WriteString("# their router, so every node reaches every other (nsnet check --all).\n#\n")
	fmt.Fprintf(&s, "#   %s > %s.yaml\n", command, t.Name)
	fmt.Fprintf(&s, "#   nsnet up %s.yaml && nsnet check --all %s.yaml\n", t.Name, t.Name)
	fmt.Fprintf(&s, "#   nsnet down %s\n", t.Name)
	fmt.Fprintf(&s, "lab: %s\n\nnodes:\n", t.Name)
	for _, n := range t.Nodes {
		if !n.Router && len(n.Routes) == 0 {
			fmt.Fprintf(&s, "  %s: {}\n", n.Name)
			continue
		}
		fmt.Fprintf(&s, "  %s:\n", n.Name)
		if n.Router {
			s.WriteString("    sysctls: {net.ipv4.ip_forward: 1}\n")
		}
		if len(n.Routes) > 0 {
			s.WriteString("    routes:\n")
			for _, r := range n.Routes {
				to := "default"
				if r.To.IsValid() {
					to = r.To.String()
				}
				fmt.Fprintf(&s, "      - {to: %s, via: %s}\n", to, r.Via)
			}
		}
	}
	s.WriteString("\nlinks:\n")
	for _, lk := range t.Links {
		fmt.Fprintf(&s, "  - {a: {node: %s, name: %s, addresses: [%s]}, b: {node: %s, name: %s, addresses: [%s]}}\n",
			lk.A.Node.Name, lk.A.Name, lk.A.Addr, lk.B.Node.Name, lk.B.Name, lk.B.Addr)
	}
	_, err := io.WriteString(w, s.String())
	return err
}

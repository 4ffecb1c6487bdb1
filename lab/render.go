package lab

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/nsnet/nsnet/kernel"
)

// Lines renders the step as the iproute2 (and sysctl, kill) commands that
// would make the same change, so a plan can be read, learnt from, and
// replayed by hand. mark is the lab's alias.
//
// Two things nsnet does have no exact iproute2 spelling and are rendered as
// their nearest equivalent: a namespace is created unnamed, marked, then
// named (rendered as "ip netns add" followed by the mark), and every link is
// created with a MAC address derived from its name (not rendered, to keep
// the lines short).
func (s Step) Lines(mark string) []string {
	n := nsFlag(s.Netns())
	switch s.Op {
	case OpStopProcess:
		return []string{fmt.Sprintf("kill -TERM -- -%d  # %s in node %s", s.Old.Proc.PID, quoteArgv(s.Old.Proc.Argv), s.Old.Proc.Node)}
	case OpRestoreSysctl:
		return []string{fmt.Sprintf("sysctl -qw %s=%s", s.Old.Sysctl.Key, quote(s.Old.Sysctl.Old))}
	case OpDelNetns:
		return []string{"ip netns del " + s.Old.Node.Netns}
	case OpDelLink:
		if s.Old != nil {
			return []string{fmt.Sprintf("ip%s link del %s", n, s.Old.Link.Name)}
		}
		return []string{fmt.Sprintf("ip%s link del %s", n, s.Iface.Name)}
	case OpAwaitGone:
		names := make([]string, len(s.Old.Links))
		for i, l := range s.Old.Links {
			names[i] = l.Name
		}
		return []string{"# wait: the kernel deletes " + strings.Join(names, ", ") + " along with the peer's namespace"}
	case OpAddNetns:
		return []string{"ip netns add " + s.Node.Netns, fmt.Sprintf("ip%s link set lo alias %s", n, mark)}
	case OpLoUp:
		return []string{fmt.Sprintf("ip%s link set lo up", n)}
	case OpSysctl:
		sc := s.Node.Sysctls[s.Index]
		if s.Node.IsHost() {
			return []string{fmt.Sprintf("sysctl -qw %s=%s", sc.Key, quote(sc.Value))}
		}
		return []string{fmt.Sprintf("ip netns exec %s sysctl -qw %s=%s", s.Node.Netns, sc.Key, quote(sc.Value))}
	case OpAddBridge:
		return []string{fmt.Sprintf("ip%s link add %s%s type bridge", n, s.Iface.Name, mtuOpt(s.Iface.MTU))}
	case OpAddVeth:
		a, b := s.Iface, s.Iface.Peer
		peer := "peer name " + b.Name + mtuOpt(b.MTU)
		if b.Node != a.Node {
			peer += " netns " + netnsArg(b.Node)
		}
		return []string{fmt.Sprintf("ip%s link add %s%s type veth %s", n, a.Name, mtuOpt(a.MTU), peer)}
	case OpSetGuard:
		g := s.Old.Guard
		out := []string{"nft add table inet " + g.Table, "nft flush table inet " + g.Table,
			fmt.Sprintf("nft add chain inet %s %s '{ type filter hook input priority filter - 10; policy accept; }'", g.Table, kernel.VXLANGuardChain)}
		fam := "ip"
		for _, a := range g.Allow {
			fam = "ip"
			if a.Is6() {
				fam = "ip6"
			}
			out = append(out, fmt.Sprintf("nft add rule inet %s %s %s saddr %s udp dport %d accept", g.Table, kernel.VXLANGuardChain, fam, a, g.Port))
		}
		// The drop is of the lab's underlay family only (SetVXLANGuard).
		nfproto := map[string]string{"ip": "ipv4", "ip6": "ipv6"}[fam]
		return append(out, fmt.Sprintf("nft add rule inet %s %s meta nfproto %s udp dport %d counter drop", g.Table, kernel.VXLANGuardChain, nfproto, g.Port))
	case OpDelGuard:
		return []string{"nft delete table inet " + s.Old.Guard.Table}
	case OpAddVXLAN:
		i := s.Iface
		netns := ""
		if !i.Node.IsHost() {
			netns = " netns " + i.Node.Netns
		}
		// Run in the machine's namespace: the device's socket is made
		// there, the device itself in the node.
		return []string{fmt.Sprintf("ip link add %s%s%s address %s type vxlan id %d remote %s local %s dstport %d nolearning  # to %s on %s",
			i.Name, netns, mtuOpt(i.MTU), i.MAC, i.Link.VNI, i.Remote(), i.Local(), i.Link.Port, i.Peer.Node.Name, i.Peer.Node.Host.Name)}
	case OpSetAlias:
		return []string{fmt.Sprintf("ip%s link set %s alias %s", n, s.Iface.Name, mark)}
	case OpAddrGenNone:
		return []string{fmt.Sprintf("ip%s link set %s addrgenmode none", n, s.Iface.Name)}
	case OpSetMAC:
		return []string{fmt.Sprintf("ip%s link set %s address %s", n, s.Iface.Name, s.Iface.MAC)}
	case OpSetMaster:
		return []string{fmt.Sprintf("ip%s link set %s master %s", n, s.Iface.Name, s.Iface.Master.Name)}
	case OpDelAddr:
		return []string{fmt.Sprintf("ip%s addr del %s dev %s", n, s.Addr(), s.Iface.Name)}
	case OpSetMTU:
		return []string{fmt.Sprintf("ip%s link set %s mtu %d", n, s.Iface.Name, s.Iface.MTU)}
	case OpAddAddr, OpLinkLocal:
		a := s.Addr()
		nodad := ""
		if a.Addr().Is6() {
			nodad = " nodad"
		}
		return []string{fmt.Sprintf("ip%s addr add %s dev %s%s", n, a, s.Iface.Name, nodad)}
	case OpSetUp:
		return []string{fmt.Sprintf("ip%s link set %s up", n, s.Iface.Name)}
	case OpAddNeigh:
		return []string{fmt.Sprintf("ip%s neigh replace %s lladdr %s dev %s nud permanent", n, s.Neigh(), s.Iface.Peer.MAC, s.Iface.Name)}
	case OpAddBridgeNeighs:
		var out []string
		for _, e := range StaticNeighbours(s.Iface) {
			out = append(out, fmt.Sprintf("ip%s neigh replace %s lladdr %s dev %s nud permanent", n, e.IP, e.MAC, s.Iface.Name))
		}
		return out
	case OpAddRoute:
		r := s.Node.Routes[s.Index]
		fam := ""
		if r.IsDefault() && !routeIs4(r) {
			fam = " -6"
		}
		line := fmt.Sprintf("ip%s%s route add %s", fam, n, routeDst(r))
		if r.Via.IsValid() {
			line += " via " + r.Via.String()
		}
		if r.Dev != "" {
			line += " dev " + r.Dev
		}
		return []string{line}
	case OpStartProcess:
		argv := quoteArgv(s.Node.Processes[s.Index].Argv)
		if s.Node.IsHost() {
			return []string{"setsid " + argv + " &"}
		}
		return []string{fmt.Sprintf("ip netns exec %s setsid %s &", s.Node.Netns, argv)}
	}
	return []string{"# " + s.Op.String()}
}

func nsFlag(netns string) string {
	if netns == "" {
		return ""
	}
	return " -n " + netns
}

func netnsArg(n *Node) string {
	if n.IsHost() {
		// iproute2 names the host's namespace by a PID in it.
		return "1"
	}
	return n.Netns
}

func mtuOpt(mtu int) string {
	if mtu == 0 {
		return ""
	}
	return " mtu " + strconv.Itoa(mtu)
}

func routeDst(r Route) string {
	if r.IsDefault() {
		return "default"
	}
	return r.To.String()
}

// quote quotes a word for a POSIX shell when it needs it.
func quote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:=,+@%", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func quoteArgv(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		q[i] = quote(a)
	}
	return strings.Join(q, " ")
}

// Write prints the plan: a header, then one command per line.
func (p *Plan) Write(w io.Writer) error {
	var b strings.Builder
	if p.Empty() {
		fmt.Fprintf(&b, "# lab %s: nothing to do, everything is up to date\n", p.Name)
	} else {
		fmt.Fprintf(&b, "# lab %s: %s\n", p.Name, p.Summary())
	}
	for _, n := range p.Notes {
		fmt.Fprintf(&b, "# note: %s\n", n)
	}
	if p.Lab != nil {
		for _, c := range p.Lab.Compact {
			fmt.Fprintf(&b, "# expands %s\n", c)
		}
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return err
	}
	for _, s := range p.Steps {
		for _, l := range s.Lines(p.Mark) {
			if _, err := io.WriteString(w, l+"\n"); err != nil {
				return err
			}
		}
	}
	return nil
}

// Summary counts the plan's changes by kind, e.g. "12 changes: 1 namespace,
// 1 link, 2 addresses, 7 settings".
func (p *Plan) Summary() string {
	var ns, links, addrs, routes, neighs, procs, settings, dels, stops int
	n := 0
	for _, s := range p.Steps {
		n++
		switch s.Op {
		case OpAddNetns:
			ns++
		case OpAddBridge, OpAddVeth, OpAddVXLAN:
			links++
		case OpAddAddr, OpLinkLocal:
			addrs++
		case OpAddRoute:
			routes++
		case OpAddNeigh:
			neighs++
		case OpAddBridgeNeighs:
			neighs += len(StaticNeighbours(s.Iface))
		case OpStartProcess:
			procs++
		case OpDelNetns, OpDelLink:
			dels++
		case OpStopProcess:
			stops++
		case OpAwaitGone:
			n--
		default:
			settings++
		}
	}
	if n == 0 {
		return "no changes"
	}
	var parts []string
	add := func(n int, one, many string) {
		switch {
		case n == 1:
			parts = append(parts, "1 "+one)
		case n > 1:
			parts = append(parts, strconv.Itoa(n)+" "+many)
		}
	}
	add(ns, "namespace", "namespaces")
	add(links, "link", "links")
	add(addrs, "address", "addresses")
	add(routes, "route", "routes")
	add(neighs, "neighbour", "neighbours")
	add(procs, "process started", "processes started")
	add(settings, "setting", "settings")
	add(dels, "deletion", "deletions")
	add(stops, "process stopped", "processes stopped")
	changes := "changes"
	if n == 1 {
		changes = "change"
	}
	return fmt.Sprintf("%d %s: %s", n, changes, strings.Join(parts, ", "))
}

package lab

import (
	"net/netip"
	"strings"

	"github.com/nsnet/nsnet/lab/ledger"
)

// State is what exists now, as far as one lab is concerned: the input of
// Plan besides the lab itself. Observe reads it from the kernel; tests build
// it by hand.
type State struct {
	// Ledger is the lab's ledger, nil if the lab has none.
	Ledger *ledger.Ledger
	// Host is the namespace nsnet runs in.
	Host *NSState
	// Netns holds the namespaces that exist and matter to the lab (its
	// nodes' and its ledger's), by name. A name that is absent does not
	// exist.
	Netns map[string]*NSState
	// Claims are the names other labs' ledgers hold.
	Claims Claims
	// Alive tells, for each of the ledger's processes (same index),
	// whether it still runs.
	Alive []bool
	// Gated tells which of them are alive but still at their gate (see
	// ProcessRunning).
	Gated []bool
}

// Claims are namespace names and host interface names recorded by other
// labs, mapped to the lab that recorded them.
type Claims struct {
	Netns     map[string]string
	HostLinks map[string]string
}

// NSState is one namespace as observed.
type NSState struct {
	// Mark is the alias of the namespace's loopback: the lab's mark for a
	// namespace a lab created.
	Mark string
	// Stale is set when the name exists in the namespace directory but is
	// not a namespace: an empty file left by a creation that was
	// interrupted before its mount.
	Stale bool
	// LoUp reports whether the loopback is up.
	LoUp bool
	// Guard is set when the lab's VXLAN guard table exists (the host only).
	Guard   bool
	Links   map[string]*LinkState
	Routes  []RouteState
	Sysctls map[string]string // values of the keys the lab sets; absent: unreadable
	// Neighs are the permanent neighbour entries (MAC, lower case) where
	// the lab wants some, nil elsewhere.
	Neighs map[NeighKey]string
}

// LinkState is one interface as observed.
type LinkState struct {
	Index int
	Kind  string // "veth", "bridge", ...
	Alias string
	MAC   string
	Up    bool
	// Running is set when the link is operationally up (carrier, and the
	// kernel's link watch has seen it).
	Running   bool
	MTU       int
	Master    string // name of the bridge it is a port of
	PeerIndex int    // a veth's peer ifindex (in the peer's namespace)
	// VXLAN is a VXLAN link's configuration, nil for other kinds.
	VXLAN *VXLANState
	// AddrGenAuto is set when the kernel makes the link's IPv6 link-local
	// address itself, with DAD (addrgenmode other than none): nsnet sets
	// none on every link it makes.
	AddrGenAuto bool
	// Addrs are the addresses as nsnet adds them; DAD holds the IPv6 ones
	// without IFA_F_NODAD instead (the kernel's own link-local address, or
	// one added by hand), which nsnet never makes.
	Addrs []netip.Prefix
	DAD   []netip.Prefix
}

// RouteState is one route of the main table.
type RouteState struct {
	To  netip.Prefix // zero-length prefix for default
	Via netip.Addr
	Dev string
}

// link returns the observed state of an interface of the lab, nil when it
// does not exist.
func (s *State) link(i *Interface) *LinkState {
	ns := s.ns(i.Node.Netns)
	if ns == nil || ns.Links == nil {
		return nil
	}
	return ns.Links[i.Name]
}

// ns returns a namespace's state; "" is the host.
func (s *State) ns(name string) *NSState {
	if name == "" {
		return s.Host
	}
	return s.Netns[name]
}

func (ls *LinkState) hasAddr(p netip.Prefix) bool {
	for _, a := range ls.Addrs {
		if a == p {
			return true
		}
	}
	return false
}

// ownsHostLink decides whether a link in a namespace the lab does not own is
// the lab's: the ledger lists it (every link the lab makes is recorded
// before it is made), and it carries the lab's alias, or it has no alias yet
// and the MAC the lab gives it at creation (nsnet died before setting the
// alias). The alias alone proves nothing: anyone can set it.
func ownsHostLink(mark string, ls *LinkState, entry *ledger.Link) bool {
	if entry == nil {
		return false
	}
	if ls.Alias == mark {
		return true
	}
	return ls.Alias == "" && entry.MAC != "" && strings.EqualFold(ls.MAC, entry.MAC)
}

// hasRoute reports whether the namespace has the route: same destination
// and gateway, and the same device when the lab names one.
func (ns *NSState) hasRoute(r Route) bool {
	to := r.To
	for _, o := range ns.Routes {
		if r.IsDefault() {
			if o.To.Bits() != 0 || o.To.Addr().Is4() != routeIs4(r) {
				continue
			}
		} else if o.To != to {
			continue
		}
		if r.Via.IsValid() && o.Via != r.Via {
			continue
		}
		if r.Dev != "" && o.Dev != r.Dev {
			continue
		}
		return true
	}
	return false
}

func routeIs4(r Route) bool {
	if r.To.IsValid() {
		return r.To.Addr().Is4()
	}
	return !r.Via.Is6()
}

// VXLANState is what the kernel says of a VXLAN link.
type VXLANState struct {
	VNI           uint32
	Remote, Local netip.Addr
	Port          int
	Learning      bool
}

// vxlanAgrees reports whether an observed VXLAN link is the lab's half of a
// link across machines as the file now says it (a changed VNI, remote or
// port is a new link).
func vxlanAgrees(ls *LinkState, i *Interface) bool {
	v := ls.VXLAN
	return ls.Kind == KindVXLAN && v != nil && v.VNI == i.Link.VNI && v.Remote == i.Remote() &&
		v.Local == i.Local() && v.Port == i.Link.Port && !v.Learning
}

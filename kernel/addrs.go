package kernel

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Addr is one address assigned to an interface.
type Addr struct {
	LinkIndex int
	Prefix    netip.Prefix // address with its prefix length, e.g. 10.200.0.2/24
	Scope     int          // unix.RT_SCOPE_*
	Flags     int          // IFA_F_*
	Label     string
	Peer      netip.Prefix
}

// Family is 4 or 6.
func (a Addr) Family() int {
	if a.Prefix.Addr().Is4() {
		return 4
	}
	return 6
}

// ScopeName is iproute2's name for the scope.
func ScopeName(scope int) string {
	switch scope {
	case unix.RT_SCOPE_UNIVERSE:
		return "global"
	case unix.RT_SCOPE_SITE:
		return "site"
	case unix.RT_SCOPE_LINK:
		return "link"
	case unix.RT_SCOPE_HOST:
		return "host"
	case unix.RT_SCOPE_NOWHERE:
		return "nowhere"
	}
	return fmt.Sprint(scope)
}

func toPrefix(n *net.IPNet) netip.Prefix {
	if n == nil {
		return netip.Prefix{}
	}
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}
	}
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(a.Unmap(), ones)
}

func toIPNet(p netip.Prefix) *net.IPNet {
	bits := 32
	if p.Addr().Is6() {
		bits = 128
	}
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), bits)}
}

// Addrs lists every address of every interface, retrying interrupted dumps.
func (h *Handle) Addrs() ([]Addr, error) {
	as, err := dump("list addresses", func() ([]netlink.Addr, error) {
		return h.nl.AddrList(nil, netlink.FAMILY_ALL)
	})
	if err != nil {
		return nil, err
	}
	out := make([]Addr, 0, len(as))
	for _, a := range as {
		out = append(out, Addr{
			LinkIndex: a.LinkIndex,
			Prefix:    toPrefix(a.IPNet),
			Scope:     a.Scope,
			Flags:     a.Flags,
			Label:     a.Label,
			Peer:      toPrefix(a.Peer),
		})
	}
	return out, nil
}

// AddrOptions tune AddAddr.
type AddrOptions struct {
	// NoDAD skips IPv6 duplicate address detection, so the address is
	// usable at once. nsnet owns every address in its labs, so there is
	// nothing to detect.
	NoDAD bool
}

// AddAddr assigns p (address and prefix length) to the interface. An address
// already present matches fs.ErrExist.
func (h *Handle) AddAddr(name string, p netip.Prefix, opt AddrOptions) error {
	if !p.IsValid() {
		return fmt.Errorf("add address to %s: invalid prefix", name)
	}
	l, err := h.byName(name)
	if err != nil {
		return err
	}
	a := &netlink.Addr{IPNet: toIPNet(p)}
	if p.Addr().Is4() {
		// As `ip addr add` does: no broadcast address unless asked for.
		// The library would compute one for a nil Broadcast; the zero
		// address tells it to send none.
		a.Broadcast = net.IPv4zero
	}
	if opt.NoDAD && p.Addr().Is6() {
		a.Flags = unix.IFA_F_NODAD
	}
	return opErr("add address", fmt.Sprintf("%s dev %s", p, name), h.nl.AddrAdd(l, a))
}

// DelAddr removes an address; a missing one matches fs.ErrNotExist.
func (h *Handle) DelAddr(name string, p netip.Prefix) error {
	l, err := h.byName(name)
	if err != nil {
		return err
	}
	return opErr("delete address", fmt.Sprintf("%s dev %s", p, name), h.nl.AddrDel(l, &netlink.Addr{IPNet: toIPNet(p)}))
}

// Route is a unicast route in the main table.
type Route struct {
	Dst       netip.Prefix // invalid Prefix means default
	Gateway   netip.Addr
	LinkIndex int
	Dev       string     // for adding: the output interface by name
	Src       netip.Addr // preferred source, as the kernel reports it
	Scope     int
	Protocol  int
}

// AddRoute installs a route. A route already present matches fs.ErrExist.
func (h *Handle) AddRoute(r Route) error {
	nr := &netlink.Route{}
	if r.Dev != "" {
		l, err := h.byName(r.Dev)
		if err != nil {
			return err
		}
		nr.LinkIndex = l.Attrs().Index
	} else {
		nr.LinkIndex = r.LinkIndex
	}
	if r.Dst.IsValid() {
		nr.Dst = toIPNet(r.Dst.Masked())
	} else if r.Gateway.Is6() {
		nr.Dst = &net.IPNet{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)}
	} else {
		nr.Dst = &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}
	}
	if r.Gateway.IsValid() {
		nr.Gw = r.Gateway.AsSlice()
	} else {
		nr.Scope = netlink.SCOPE_LINK
	}
	return opErr("add route", routeName(r), h.nl.RouteAdd(nr))
}

// DelRoute removes a route; a missing one matches fs.ErrNotExist.
func (h *Handle) DelRoute(r Route) error {
	nr := &netlink.Route{LinkIndex: r.LinkIndex}
	if r.Dev != "" {
		l, err := h.byName(r.Dev)
		if err != nil {
			return err
		}
		nr.LinkIndex = l.Attrs().Index
	}
	if r.Dst.IsValid() {
		nr.Dst = toIPNet(r.Dst.Masked())
	} else if r.Gateway.Is6() {
		nr.Dst = &net.IPNet{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)}
	} else {
		nr.Dst = &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}
	}
	if r.Gateway.IsValid() {
		nr.Gw = r.Gateway.AsSlice()
	} else {
		// As AddRoute made it: a route without gateway is link-scoped,
		// and the kernel matches the scope on delete.
		nr.Scope = netlink.SCOPE_LINK
	}
	return opErr("delete route", routeName(r), h.nl.RouteDel(nr))
}

func routeName(r Route) string {
	s := "default"
	if r.Dst.IsValid() {
		s = r.Dst.Masked().String()
	}
	if r.Gateway.IsValid() {
		s += " via " + r.Gateway.String()
	}
	if r.Dev != "" {
		s += " dev " + r.Dev
	}
	return s
}

// Routes lists the main table's routes of both families.
func (h *Handle) Routes() ([]Route, error) {
	rs, err := dump("list routes", func() ([]netlink.Route, error) {
		return h.nl.RouteList(nil, netlink.FAMILY_ALL)
	})
	if err != nil {
		return nil, err
	}
	out := make([]Route, 0, len(rs))
	for _, r := range rs {
		var gw netip.Addr
		if r.Gw != nil {
			gw, _ = netip.AddrFromSlice(r.Gw)
			gw = gw.Unmap()
		}
		var src netip.Addr
		if r.Src != nil {
			src, _ = netip.AddrFromSlice(r.Src)
			src = src.Unmap()
		}
		out = append(out, Route{
			Src:       src,
			Dst:       toPrefix(r.Dst),
			Gateway:   gw,
			LinkIndex: r.LinkIndex,
			Scope:     int(r.Scope),
			Protocol:  int(r.Protocol),
		})
	}
	return out, nil
}

// Local reports whether the namespace takes packets to a as its own, which
// is whether the kernel has the address's local route (`ip route get`
// answers "local"). An IPv6 address given to a link while it was down gets
// that route only once the link is up and ready, a while after the link
// itself reports carrier: a packet to the address is dropped until then.
func (h *Handle) Local(a netip.Addr) (bool, error) {
	rs, err := h.nl.RouteGet(a.AsSlice())
	if err != nil {
		return false, opErr("route get", a.String(), err)
	}
	for _, r := range rs {
		if r.Type == unix.RTN_LOCAL {
			return true, nil
		}
	}
	return false, nil
}

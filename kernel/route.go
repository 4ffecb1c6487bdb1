package kernel

import (
	"net/netip"

	"github.com/jsimonetti/rtnetlink/v2"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

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

// routeMessage is a main-table unicast route, as `ip route add` sends it: a
// route without a gateway is link-scoped (the kernel matches the scope on
// delete too). r.Dev is not used: index is the output interface.
func routeMessage(r Route, index int, add bool) ([]byte, error) {
	dst := r.Dst
	if !dst.IsValid() {
		zero := netip.IPv4Unspecified()
		if r.Gateway.Is6() {
			zero = netip.IPv6Unspecified()
		}
		dst = netip.PrefixFrom(zero, 0)
	}
	dst = dst.Masked()
	m := rtnetlink.RouteMessage{
		Family:     family(dst.Addr()),
		DstLength:  uint8(dst.Bits()),
		Table:      unix.RT_TABLE_MAIN,
		Scope:      unix.RT_SCOPE_UNIVERSE,
		Type:       unix.RTN_UNICAST,
		Attributes: rtnetlink.RouteAttributes{OutIface: uint32(index)},
	}
	if add {
		m.Protocol = unix.RTPROT_BOOT
	}
	if !r.Gateway.IsValid() {
		m.Scope = unix.RT_SCOPE_LINK
	}
	if dst.Bits() > 0 {
		m.Attributes.Dst = dst.Addr().Unmap().AsSlice()
	}
	if r.Gateway.IsValid() {
		m.Attributes.Gateway = r.Gateway.Unmap().AsSlice()
	}
	return m.MarshalBinary()
}

func addRoute(r Route, index int) (request, error) {
	data, err := routeMessage(r, index, true)
	return request{typ: unix.RTM_NEWROUTE, flags: unix.NLM_F_CREATE | unix.NLM_F_EXCL, data: data,
		what: "add route", name: routeName(r)}, err
}

// AddRoute queues a route, like Handle.AddRoute (r.Dev is not used: give
// r.LinkIndex). An existing route is not an error.
func (b *Batch) AddRoute(r Route, tag int) error {
	req, err := addRoute(r, r.LinkIndex)
	if err != nil {
		return err
	}
	req.name, req.ignore = "", unix.EEXIST
	return b.queue(req, tag)
}

// routeIndex is the route's output interface: r.Dev looked up, or
// r.LinkIndex.
func (h *Handle) routeIndex(r Route) (int, error) {
	if r.Dev != "" {
		return h.index(r.Dev)
	}
	return r.LinkIndex, nil
}

// AddRoute installs a route. A route already present matches fs.ErrExist.
func (h *Handle) AddRoute(r Route) error {
	index, err := h.routeIndex(r)
	if err != nil {
		return err
	}
	req, err := addRoute(r, index)
	if err != nil {
		return err
	}
	return h.do(req)
}

// DelRoute removes a route; a missing one matches fs.ErrNotExist.
func (h *Handle) DelRoute(r Route) error {
	index, err := h.routeIndex(r)
	if err != nil {
		return err
	}
	data, err := routeMessage(r, index, false)
	if err != nil {
		return err
	}
	return h.do(request{typ: unix.RTM_DELROUTE, data: data, what: "delete route", name: routeName(r)})
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

// RouteGet asks the kernel which route it would use to reach dst, as
// `ip route get` does. No route matches fs.ErrNotExist or wraps
// ENETUNREACH.
func (h *Handle) RouteGet(dst netip.Addr) (Route, error) {
	rs, err := h.nl.RouteGet(dst.Unmap().AsSlice())
	if err != nil {
		return Route{}, opErr("route get", dst.String(), err)
	}
	if len(rs) == 0 {
		return Route{}, opErr("route get", dst.String(), errNoRoute)
	}
	r := rs[0]
	out := Route{LinkIndex: r.LinkIndex, Scope: int(r.Scope), Protocol: int(r.Protocol)}
	if r.Gw != nil {
		out.Gateway, _ = netip.AddrFromSlice(r.Gw)
		out.Gateway = out.Gateway.Unmap()
	}
	if r.Src != nil {
		out.Src, _ = netip.AddrFromSlice(r.Src)
		out.Src = out.Src.Unmap()
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

package kernel

import (
	"net"
	"net/netip"
	"syscall"

	"github.com/jsimonetti/rtnetlink/v2"
	mnl "github.com/mdlayher/netlink"
	"github.com/mdlayher/netlink/nlenc"
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

// Routes lists the main table's routes of both families (not the routes
// the kernel cloned into its cache). A dump that a concurrent change
// interrupted is retried whole: partial results are never returned.
func (h *Handle) Routes() ([]Route, error) {
	var out []Route
	m := rtnetlink.RouteMessage{}
	data, err := m.MarshalBinary()
	if err != nil {
		return nil, err
	}
	err = h.batch(func(b *Batch) error {
		return b.dump("list routes", request{typ: unix.RTM_GETROUTE, data: data}, func(msg mnl.Message) {
			r, meta, ok := toRoute(msg)
			if ok && meta.table == unix.RT_TABLE_MAIN && meta.flags&unix.RTM_F_CLONED == 0 {
				out = append(out, r)
			}
		})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// routeMeta is what of a route message Route does not hold.
type routeMeta struct {
	table uint32 // RTA_TABLE, or rtm_table
	flags uint32 // rtm_flags: RTM_F_CLONED, ...
	typ   uint8  // rtm_type: RTN_UNICAST, RTN_LOCAL, ...
}

// toRoute reads an RTM_NEWROUTE message. A route without a destination
// attribute is the default of its family, 0.0.0.0/0 or ::/0, as iproute2
// shows it. Read in place, by hand, like a link (toLink): rtnetlink/v2's
// RouteMessage made 21 allocations a route of a dump, against 4 for the
// vishvananda/netlink listing this replaced.
func toRoute(msg mnl.Message) (Route, routeMeta, bool) {
	d := msg.Data
	if msg.Header.Type != unix.RTM_NEWROUTE || len(d) < unix.SizeofRtMsg {
		return Route{}, routeMeta{}, false
	}
	family, dstLen := d[0], int(d[1])
	meta := routeMeta{table: uint32(d[4]), typ: d[7], flags: nlenc.Uint32(d[8:12])}
	r := Route{Scope: int(d[6]), Protocol: int(d[5])}
	var dst []byte
	eachAttr(d[unix.SizeofRtMsg:], func(typ uint16, v []byte) {
		switch typ {
		case unix.RTA_DST:
			dst = v
		case unix.RTA_GATEWAY:
			r.Gateway = addrOf(v)
		case unix.RTA_PREFSRC:
			r.Src = addrOf(v)
		case unix.RTA_OIF:
			if len(v) >= 4 {
				r.LinkIndex = int(nlenc.Uint32(v))
			}
		case unix.RTA_TABLE:
			if len(v) >= 4 {
				meta.table = nlenc.Uint32(v)
			}
		}
	})
	switch {
	case dst != nil:
		r.Dst = prefixOf(dst, dstLen)
	case family == unix.AF_INET:
		r.Dst = netip.PrefixFrom(netip.IPv4Unspecified(), dstLen)
	case family == unix.AF_INET6:
		r.Dst = netip.PrefixFrom(netip.IPv6Unspecified(), dstLen)
	}
	return r, meta, true
}

// addrOf is ip as an address, or the zero Addr.
func addrOf(ip net.IP) netip.Addr {
	a, _ := netip.AddrFromSlice(ip)
	return a.Unmap()
}

// routeGet asks which route the kernel would use to reach dst (`ip route
// get`): the answer carries the route's type and the table it was found in.
func (h *Handle) routeGet(dst netip.Addr) (Route, routeMeta, error) {
	dst = dst.Unmap()
	m := rtnetlink.RouteMessage{
		Family:     family(dst),
		DstLength:  uint8(dst.BitLen()),
		Flags:      unix.RTM_F_LOOKUP_TABLE,
		Attributes: rtnetlink.RouteAttributes{Dst: dst.AsSlice()},
	}
	data, err := m.MarshalBinary()
	if err != nil {
		return Route{}, routeMeta{}, opErr("route get", dst.String(), err)
	}
	var r Route
	var rm routeMeta
	var failed error
	found := false
	err = h.batch(func(b *Batch) error {
		return b.exchange([]request{{typ: unix.RTM_GETROUTE, data: data}}, func(_ int, msg mnl.Message, errno syscall.Errno) {
			if errno != 0 {
				failed = opErr("route get", dst.String(), errno)
				return
			}
			r, rm, found = toRoute(msg)
		})
	})
	switch {
	case err != nil:
		return Route{}, rm, err
	case failed != nil:
		return Route{}, rm, failed
	case !found:
		return Route{}, rm, opErr("route get", dst.String(), errNoRoute)
	}
	return r, rm, nil
}

// RouteGet asks the kernel which route it would use to reach dst, as
// `ip route get` does. No route matches fs.ErrNotExist or wraps
// ENETUNREACH.
func (h *Handle) RouteGet(dst netip.Addr) (Route, error) {
	r, _, err := h.routeGet(dst)
	// The answer is the route to dst itself: what matters is how it is
	// reached.
	r.Dst = netip.Prefix{}
	return r, err
}

// Local reports whether the namespace takes packets to a as its own, which
// is whether the kernel has the address's local route (`ip route get`
// answers "local"). An IPv6 address given to a link while it was down gets
// that route only once the link is up and ready, a while after the link
// itself reports carrier: a packet to the address is dropped until then.
func (h *Handle) Local(a netip.Addr) (bool, error) {
	_, rm, err := h.routeGet(a)
	if err != nil {
		return false, err
	}
	return rm.typ == unix.RTN_LOCAL, nil
}

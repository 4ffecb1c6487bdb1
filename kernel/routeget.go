package kernel

import (
	"net/netip"
)

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

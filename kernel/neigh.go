package kernel

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
)

// AddPermanentNeigh installs a permanent neighbour entry (ip neigh add ...
// nud permanent). Permanent entries do not count against the kernel's
// neighbour table limit, which all namespaces share.
func (h *Handle) AddPermanentNeigh(dev string, ip netip.Addr, mac net.HardwareAddr) error {
	l, err := h.byName(dev)
	if err != nil {
		return err
	}
	n := &netlink.Neigh{
		LinkIndex:    l.Attrs().Index,
		State:        netlink.NUD_PERMANENT,
		IP:           ip.Unmap().AsSlice(),
		HardwareAddr: mac,
		Family:       netlink.FAMILY_V4,
	}
	if ip.Is6() && !ip.Is4In6() {
		n.Family = netlink.FAMILY_V6
	}
	return opErr("add neighbour", fmt.Sprintf("%s lladdr %s dev %s", ip, mac, dev), h.nl.NeighAdd(n))
}

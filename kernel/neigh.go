package kernel

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
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

// FlushUnresolved deletes the link's neighbour entries that are still being
// resolved or failed to be (INCOMPLETE, FAILED), and returns how many. An
// entry made while the link could not yet take the answer (a packet sent the
// moment a link came back, before its addresses were in force) waits a
// second for its next solicitation, and holds every packet to that
// neighbour meanwhile; deleted, the next packet starts afresh.
func (h *Handle) FlushUnresolved(index int) (int, error) {
	ns, err := dump("list neighbours", func() ([]netlink.Neigh, error) {
		return h.nl.NeighList(index, netlink.FAMILY_ALL)
	})
	if err != nil {
		return 0, err
	}
	n := 0
	for i := range ns {
		if ns[i].State&(netlink.NUD_INCOMPLETE|netlink.NUD_FAILED) == 0 {
			continue
		}
		if err := h.nl.NeighDel(&ns[i]); err != nil && !errors.Is(err, unix.ENOENT) {
			return n, opErr("delete neighbour", fmt.Sprintf("%s dev %d", net.IP(ns[i].IP), index), err)
		}
		n++
	}
	return n, nil
}

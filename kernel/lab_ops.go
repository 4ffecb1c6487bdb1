package kernel

import (
	"net"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"

	"github.com/nsnet/nsnet/netns"
)

// Operations for building labs quickly: links are created with their final
// MAC address (which the lab uses as an ownership fingerprint, since the
// kernel ignores an alias given at creation) and return their index, and
// later changes address a link by index (see also cni_ops.go), so each
// costs one netlink round trip instead of a lookup by name and the change.

// LinkMAC are the addresses to give a new link; nil lets the kernel choose.
type LinkMAC struct {
	MAC     net.HardwareAddr
	PeerMAC net.HardwareAddr // veth only
}

// AddVethMAC creates a veth pair like AddVeth, with the given MAC addresses,
// and returns the index of the local end.
func (h *Handle) AddVethMAC(v Veth, m LinkMAC) (int, error) {
	for _, n := range []string{v.Name, v.Peer} {
		if err := ValidateLinkName(n); err != nil {
			return 0, err
		}
	}
	if v.MTU != 0 {
		if err := ValidateMTU(v.MTU, false); err != nil {
			return 0, err
		}
	}
	la := netlink.NewLinkAttrs()
	la.Name = v.Name
	la.MTU = v.MTU
	la.HardwareAddr = m.MAC
	if v.TxQLen > 0 {
		la.TxQLen = v.TxQLen
	}
	// PeerTxQLen -1: the kernel's default, as for the local end (the
	// library would otherwise give the peer a queue length of 0).
	veth := &netlink.Veth{LinkAttrs: la, PeerName: v.Peer, PeerMTU: uint32(v.MTU), PeerHardwareAddr: m.PeerMAC, PeerTxQLen: -1}
	if v.PeerNS != nil {
		fd := v.PeerNS.Fd()
		if fd < 0 {
			return 0, &OpError{Op: "add veth", Name: v.Name, Err: netns.ErrClosed}
		}
		veth.PeerNamespace = netlink.NsFd(fd)
	}
	if err := h.nl.LinkAdd(veth); err != nil {
		return 0, opErr("add veth", v.Name, err)
	}
	return veth.Attrs().Index, nil
}

// AddBridgeMAC creates a bridge (down) with the given MAC address and returns
// its index.
func (h *Handle) AddBridgeMAC(name string, mtu int, mac net.HardwareAddr) (int, error) {
	if err := ValidateLinkName(name); err != nil {
		return 0, err
	}
	la := netlink.NewLinkAttrs()
	la.Name = name
	la.MTU = mtu
	la.HardwareAddr = mac
	br := &netlink.Bridge{LinkAttrs: la}
	if err := h.nl.LinkAdd(br); err != nil {
		return 0, opErr("add bridge", name, err)
	}
	return br.Attrs().Index, nil
}

// SetAliasIndex sets a link's ifalias.
func (h *Handle) SetAliasIndex(index int, alias string) error {
	return opErr("set alias", indexName(index), h.nl.LinkSetAlias(byIndex(index), alias))
}

// SetMTUIndex changes a link's MTU.
func (h *Handle) SetMTUIndex(index, mtu int) error {
	if err := ValidateMTU(mtu, false); err != nil {
		return err
	}
	return opErr("set mtu", indexName(index), h.nl.LinkSetMTU(byIndex(index), mtu))
}

// SetAddrGenModeNone stops the kernel from giving the link an IPv6
// link-local address (and so from running duplicate address detection and
// multicast listener reports on it): `ip link set DEV addrgenmode none`.
func (h *Handle) SetAddrGenModeNone(index int) error {
	return opErr("set addrgenmode", indexName(index), h.nl.LinkSetIP6AddrGenMode(byIndex(index), nl.IN6_ADDR_GEN_MODE_NONE))
}

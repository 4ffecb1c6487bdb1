package kernel

import (
	"net"
	"net/netip"

	"github.com/jsimonetti/rtnetlink/v2"
	"github.com/jsimonetti/rtnetlink/v2/driver"
)

// The vxlan driver of a new link (as veth.go and bridge.go are theirs).
//
// A lab's link across machines is a VXLAN device with a fixed remote and
// learning off. It is created by a request sent from the machine's
// namespace with the node's namespace as the new link's IFLA_NET_NS_FD
// (NewLink.NS): the kernel binds the device's UDP socket in the namespace
// the request came from (where the underlay is) and makes the device itself
// in the node, so it is born there and never moves.

// VXLAN is a VXLAN device's configuration.
type VXLAN struct {
	VNI uint32
	// Remote is the one peer frames go to (the default FDB entry); Local
	// the source address of the outer packets. Both the same family.
	Remote, Local netip.Addr
	Port          int // UDP destination port
	// Learning lets the device learn remote MACs from received frames; a
	// lab has one fixed remote, so it is off.
	Learning bool
}

// Kind is the kernel's name for the driver.
func (VXLAN) Kind() string { return "vxlan" }

func (v VXLAN) linkInfo() (*rtnetlink.LinkInfo, error) {
	id, port, learn := v.VNI, uint16(v.Port), v.Learning
	d := &driver.Vxlan{ID: &id, Port: &port, Learning: &learn}
	ip := func(a netip.Addr) net.IP { return net.IP(a.AsSlice()) }
	switch {
	case v.Remote.Is4():
		d.Group = ip(v.Remote)
	case v.Remote.IsValid():
		d.Group6 = ip(v.Remote)
	}
	switch {
	case v.Local.Is4():
		d.Local = ip(v.Local)
	case v.Local.IsValid():
		d.Local6 = ip(v.Local)
	}
	return &rtnetlink.LinkInfo{Kind: "vxlan", Data: d}, nil
}

// vxlanOf reads a VXLAN link's configuration from its link info, nil for
// another kind.
func vxlanOf(info *rtnetlink.LinkInfo) *VXLAN {
	if info == nil || info.Kind != "vxlan" {
		return nil
	}
	d, ok := info.Data.(*driver.Vxlan)
	if !ok {
		return nil
	}
	x := &VXLAN{}
	if d.ID != nil {
		x.VNI = *d.ID
	}
	if d.Port != nil {
		x.Port = int(*d.Port)
	}
	if d.Learning != nil {
		x.Learning = *d.Learning
	}
	addr := func(ips ...net.IP) netip.Addr {
		for _, i := range ips {
			if a, ok := netip.AddrFromSlice(i); ok && len(i) > 0 {
				return a.Unmap()
			}
		}
		return netip.Addr{}
	}
	x.Remote, x.Local = addr(d.Group, d.Group6), addr(d.Local, d.Local6)
	return x
}

package kernel

import (
	"net"

	"github.com/jsimonetti/rtnetlink/v2"
	"github.com/jsimonetti/rtnetlink/v2/driver"

	"github.com/nsnet/nsnet/netns"
)

// VethPeer is the veth driver of a new link: the pair's other end, created
// directly in NS when that is set (much cheaper than creating it here and
// moving it, which waits for an RCU grace period).
type VethPeer struct {
	Name string
	MAC  net.HardwareAddr // nil: the kernel picks
	MTU  int              // 0: the kernel's default
	NS   *netns.NS
}

// Kind is the kernel's name for the driver.
func (VethPeer) Kind() string { return "veth" }

func (p VethPeer) linkInfo() (*rtnetlink.LinkInfo, error) {
	if err := ValidateLinkName(p.Name); err != nil {
		return nil, err
	}
	a := &rtnetlink.LinkAttributes{Name: p.Name, MTU: uint32(p.MTU), Address: p.MAC}
	if p.NS != nil {
		fd := p.NS.Fd()
		if fd < 0 {
			return nil, netns.ErrClosed
		}
		a.NetNS = rtnetlink.NetNSForFD(uint32(fd))
	}
	return &rtnetlink.LinkInfo{Kind: "veth", Data: &driver.Veth{PeerInfo: &rtnetlink.LinkMessage{Attributes: a}}}, nil
}

// Veth describes a veth pair for Handle.AddVeth.
type Veth struct {
	Name string
	Peer string
	// PeerNS, when set, creates the peer directly inside that namespace.
	PeerNS *netns.NS
	MTU    int    // of both ends; 0: kernel default
	Alias  string // ifalias on the local end, used to mark ownership
	// MAC and PeerMAC fix the ends' addresses; nil lets the kernel pick.
	MAC, PeerMAC net.HardwareAddr
}

// AddVeth creates a veth pair. Both ends start down.
func (h *Handle) AddVeth(v Veth) error {
	if err := ValidateLinkName(v.Name); err != nil {
		return err
	}
	if v.MTU != 0 {
		if err := ValidateMTU(v.MTU, false); err != nil {
			return err
		}
	}
	index, err := h.addLink(NewLink{Name: v.Name, MTU: v.MTU, MAC: v.MAC,
		Kind: VethPeer{Name: v.Peer, MAC: v.PeerMAC, MTU: v.MTU, NS: v.PeerNS}})
	if err != nil {
		return err
	}
	if v.Alias != "" {
		// Set after creation: RTM_NEWLINK ignores an alias on create.
		return h.setIndex("set alias", index, LinkChange{Alias: v.Alias})
	}
	return nil
}

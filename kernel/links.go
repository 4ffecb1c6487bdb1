package kernel

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/nsnet/nsnet/internal/echo"
	"github.com/nsnet/nsnet/netns"
)

// MaxLinkNameLen is IFNAMSIZ-1: the kernel keeps 16 bytes with the NUL.
const MaxLinkNameLen = 15

// MTU bounds that nsnet accepts for veth and bridge links.
const (
	MinMTU     = 68
	MinIPv6MTU = 1280
	MaxMTU     = 65535
)

// NameError reports an interface name that breaks a rule.
type NameError struct {
	Name string
	Rule string
}

func (e *NameError) Error() string {
	return fmt.Sprintf("invalid interface name %s: %s", echo.Quote(e.Name), e.Rule)
}

// ValidateLinkName applies the kernel's rules for interface names
// (dev_valid_name), plus '%', which the kernel would expand as a template.
func ValidateLinkName(name string) error {
	switch {
	case name == "":
		return &NameError{name, "must not be empty"}
	case len(name) > MaxLinkNameLen:
		return &NameError{name, fmt.Sprintf("must be at most %d bytes (is %d)", MaxLinkNameLen, len(name))}
	case name == "." || name == "..":
		return &NameError{name, `must not be "." or ".."`}
	}
	for _, r := range name {
		switch {
		case r == '/':
			return &NameError{name, `must not contain "/"`}
		case r == ':':
			return &NameError{name, `must not contain ":"`}
		case r == '%':
			return &NameError{name, `must not contain "%"`}
		case r == 0 || r == ' ' || r == '\t' || r == '\n' || r == '\v' || r == '\f' || r == '\r':
			return &NameError{name, "must not contain whitespace or NUL"}
		}
	}
	return nil
}

// ValidateMTU checks an MTU for a link; ipv6 raises the minimum to 1280.
func ValidateMTU(mtu int, ipv6 bool) error {
	lo := MinMTU
	if ipv6 {
		lo = MinIPv6MTU
	}
	if mtu < lo || mtu > MaxMTU {
		if ipv6 {
			return fmt.Errorf("mtu %d out of range: must be %d-%d on a link with IPv6", mtu, lo, MaxMTU)
		}
		return fmt.Errorf("mtu %d out of range: must be %d-%d", mtu, lo, MaxMTU)
	}
	return nil
}

// Link is a snapshot of one interface.
type Link struct {
	Index       int
	Name        string
	Type        string // "veth", "bridge", "device" (loopback), ...
	Flags       uint32 // ifi_flags: IFF_UP, IFF_LOWER_UP, ...
	MTU         int
	TxQLen      int
	MAC         net.HardwareAddr
	OperState   string // "UP", "DOWN", "UNKNOWN", ...
	ParentIndex int    // IFLA_LINK: a veth's peer index (in LinkNetNSID's namespace when that is set)
	LinkNetNSID int    // IFLA_LINK_NETNSID, or -1 when the peer is local
	MasterIndex int
	Alias       string
	Group       uint32
	EncapType   string
}

// Up reports whether the link is administratively up.
func (l Link) Up() bool { return l.Flags&unix.IFF_UP != 0 }

func toLink(nl netlink.Link) Link {
	a := nl.Attrs()
	return Link{
		Index:       a.Index,
		Name:        a.Name,
		Type:        nl.Type(),
		Flags:       a.RawFlags,
		MTU:         a.MTU,
		TxQLen:      a.TxQLen,
		MAC:         a.HardwareAddr,
		OperState:   operState(a.OperState),
		ParentIndex: a.ParentIndex,
		LinkNetNSID: a.NetNsID,
		MasterIndex: a.MasterIndex,
		Alias:       a.Alias,
		Group:       a.Group,
		EncapType:   a.EncapType,
	}
}

func operState(s netlink.LinkOperState) string {
	switch s {
	case netlink.OperUp:
		return "UP"
	case netlink.OperDown:
		return "DOWN"
	case netlink.OperLowerLayerDown:
		return "LOWERLAYERDOWN"
	case netlink.OperDormant:
		return "DORMANT"
	case netlink.OperNotPresent:
		return "NOTPRESENT"
	case netlink.OperTesting:
		return "TESTING"
	default:
		return "UNKNOWN"
	}
}

// Links lists every interface, retrying dumps interrupted by concurrent
// changes.
func (h *Handle) Links() ([]Link, error) {
	ls, err := dump("list links", h.nl.LinkList)
	if err != nil {
		return nil, err
	}
	out := make([]Link, len(ls))
	for i, l := range ls {
		out[i] = toLink(l)
	}
	return out, nil
}

// LinkByName returns one interface; a missing one matches fs.ErrNotExist.
func (h *Handle) LinkByName(name string) (Link, error) {
	l, err := h.byName(name)
	if err != nil {
		return Link{}, err
	}
	return toLink(l), nil
}

func (h *Handle) byName(name string) (netlink.Link, error) {
	if err := ValidateLinkName(name); err != nil {
		return nil, err
	}
	l, err := h.nl.LinkByName(name)
	if err != nil {
		var lnf netlink.LinkNotFoundError
		if errors.As(err, &lnf) || errors.Is(err, unix.ENODEV) {
			return nil, &OpError{Op: "find device", Name: name, Err: kindError{errors.New("no such device"), fs.ErrNotExist}}
		}
		return nil, opErr("find device", name, err)
	}
	return l, nil
}

// Veth describes a veth pair to create.
type Veth struct {
	Name string
	Peer string
	// PeerNS, when set, creates the peer directly inside that namespace:
	// much cheaper than creating it here and moving it (a move waits for
	// an RCU grace period).
	PeerNS *netns.NS
	MTU    int    // 0: kernel default
	Alias  string // ifalias on both ends, used to mark ownership
	// TxQLen of both ends; 0 keeps the kernel's default of 1000.
	TxQLen int
	// MAC and PeerMAC fix the ends' addresses; nil lets the kernel pick.
	MAC, PeerMAC net.HardwareAddr
}

// AddVeth creates a veth pair. Both ends start down.
func (h *Handle) AddVeth(v Veth) error {
	for _, n := range []string{v.Name, v.Peer} {
		if err := ValidateLinkName(n); err != nil {
			return err
		}
	}
	if v.MTU != 0 {
		if err := ValidateMTU(v.MTU, false); err != nil {
			return err
		}
	}
	la := netlink.NewLinkAttrs()
	la.Name = v.Name
	la.MTU = v.MTU
	la.Alias = "" // alias is set after creation: RTM_NEWLINK ignores it on create
	if v.TxQLen > 0 {
		la.TxQLen = v.TxQLen
	}
	la.HardwareAddr = v.MAC
	// PeerTxQLen -1 is the kernel's default: the library would otherwise
	// give the peer a queue length of 0, which ip never does.
	peerQ := -1
	if v.TxQLen > 0 {
		peerQ = v.TxQLen
	}
	veth := &netlink.Veth{LinkAttrs: la, PeerName: v.Peer, PeerMTU: uint32(v.MTU), PeerHardwareAddr: v.PeerMAC, PeerTxQLen: peerQ}
	if v.PeerNS != nil {
		fd := v.PeerNS.Fd()
		if fd < 0 {
			return &OpError{Op: "add veth", Name: v.Name, Err: netns.ErrClosed}
		}
		veth.PeerNamespace = netlink.NsFd(fd)
	}
	if err := h.nl.LinkAdd(veth); err != nil {
		return opErr("add veth", v.Name, err)
	}
	if v.Alias != "" {
		if err := h.nl.LinkSetAlias(veth, v.Alias); err != nil {
			return opErr("set alias", v.Name, err)
		}
	}
	return nil
}

// AddBridge creates a bridge (down).
func (h *Handle) AddBridge(name string, mtu int, alias string) error {
	if err := ValidateLinkName(name); err != nil {
		return err
	}
	la := netlink.NewLinkAttrs()
	la.Name = name
	la.MTU = mtu
	br := &netlink.Bridge{LinkAttrs: la}
	if err := h.nl.LinkAdd(br); err != nil {
		return opErr("add bridge", name, err)
	}
	if alias != "" {
		if err := h.nl.LinkSetAlias(br, alias); err != nil {
			return opErr("set alias", name, err)
		}
	}
	return nil
}

// SetAlias sets ifalias, which nsnet uses to mark links it owns.
func (h *Handle) SetAlias(name, alias string) error {
	l, err := h.byName(name)
	if err != nil {
		return err
	}
	return opErr("set alias", name, h.nl.LinkSetAlias(l, alias))
}

// DelLink deletes an interface (for a veth, both ends). A missing one
// matches fs.ErrNotExist.
func (h *Handle) DelLink(name string) error {
	l, err := h.byName(name)
	if err != nil {
		return err
	}
	return opErr("delete device", name, h.nl.LinkDel(l))
}

// SetUp brings a link up.
func (h *Handle) SetUp(name string) error {
	l, err := h.byName(name)
	if err != nil {
		return err
	}
	return opErr("set up", name, h.nl.LinkSetUp(l))
}

// SetDown brings a link down.
func (h *Handle) SetDown(name string) error {
	l, err := h.byName(name)
	if err != nil {
		return err
	}
	return opErr("set down", name, h.nl.LinkSetDown(l))
}

// SetUpIndex brings a link up by index, saving a lookup on hot paths.
func (h *Handle) SetUpIndex(index int) error {
	return opErr("set up", fmt.Sprintf("index %d", index), h.nl.LinkSetUp(&netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: index}}))
}

// SetDownIndex takes a link down by index.
func (h *Handle) SetDownIndex(index int) error {
	return opErr("set down", fmt.Sprintf("index %d", index), h.nl.LinkSetDown(&netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: index}}))
}

// SetMTU changes a link's MTU.
func (h *Handle) SetMTU(name string, mtu int) error {
	if err := ValidateMTU(mtu, false); err != nil {
		return err
	}
	l, err := h.byName(name)
	if err != nil {
		return err
	}
	return opErr("set mtu", name, h.nl.LinkSetMTU(l, mtu))
}

// SetNS moves a link into another namespace.
func (h *Handle) SetNS(name string, target *netns.NS) error {
	l, err := h.byName(name)
	if err != nil {
		return err
	}
	fd := target.Fd()
	if fd < 0 {
		return &OpError{Op: "set netns", Name: name, Err: netns.ErrClosed}
	}
	return opErr("set netns", name, h.nl.LinkSetNsFd(l, fd))
}

// SetMaster attaches a link to a bridge; an empty bridge detaches it.
func (h *Handle) SetMaster(name, bridge string) error {
	l, err := h.byName(name)
	if err != nil {
		return err
	}
	if bridge == "" {
		return opErr("set nomaster", name, h.nl.LinkSetNoMaster(l))
	}
	b, err := h.byName(bridge)
	if err != nil {
		return err
	}
	return opErr("set master", name, h.nl.LinkSetMasterByIndex(l, b.Attrs().Index))
}

// flagNames is iproute2's order for printing interface flags.
var flagNames = []struct {
	bit  uint32
	name string
}{
	{unix.IFF_LOOPBACK, "LOOPBACK"},
	{unix.IFF_BROADCAST, "BROADCAST"},
	{unix.IFF_POINTOPOINT, "POINTOPOINT"},
	{unix.IFF_MULTICAST, "MULTICAST"},
	{unix.IFF_NOARP, "NOARP"},
	{unix.IFF_ALLMULTI, "ALLMULTI"},
	{unix.IFF_PROMISC, "PROMISC"},
	{unix.IFF_MASTER, "MASTER"},
	{unix.IFF_SLAVE, "SLAVE"},
	{unix.IFF_DEBUG, "DEBUG"},
	{unix.IFF_DYNAMIC, "DYNAMIC"},
	{unix.IFF_AUTOMEDIA, "AUTOMEDIA"},
	{unix.IFF_PORTSEL, "PORTSEL"},
	{unix.IFF_NOTRAILERS, "NOTRAILERS"},
	{unix.IFF_UP, "UP"},
	{unix.IFF_LOWER_UP, "LOWER_UP"},
	{unix.IFF_DORMANT, "DORMANT"},
	{unix.IFF_ECHO, "ECHO"},
}

// FlagNames renders ifi_flags the way iproute2 does, e.g.
// [BROADCAST MULTICAST UP LOWER_UP]; mdown appends M-DOWN (the peer is down).
func FlagNames(flags uint32, mdown bool) []string {
	var out []string
	if flags&unix.IFF_UP != 0 && flags&unix.IFF_RUNNING == 0 {
		out = append(out, "NO-CARRIER")
	}
	flags &^= unix.IFF_RUNNING
	for _, f := range flagNames {
		if flags&f.bit != 0 {
			out = append(out, f.name)
			flags &^= f.bit
		}
	}
	if flags != 0 {
		out = append(out, fmt.Sprintf("%x", flags))
	}
	if mdown {
		out = append(out, "M-DOWN")
	}
	return out
}

// FlagString is FlagNames joined for display: <A,B,C>.
func FlagString(flags uint32, mdown bool) string {
	return "<" + strings.Join(FlagNames(flags, mdown), ",") + ">"
}

// AwaitCarrier waits until each named link is running (up, with carrier)
// and, if it is a bridge port, forwarding, at most d. A fresh veth can get
// its carrier up to a second after both ends are up (the kernel's link
// watch), and its bridge port is enabled in the same work: packets sent
// before are dropped.
func (h *Handle) AwaitCarrier(d time.Duration, names ...string) error {
	deadline := time.Now().Add(d)
	var b *Batch
	defer func() {
		if b != nil {
			b.Close()
		}
	}()
	for _, name := range names {
		for delay := 200 * time.Microsecond; ; delay = min(2*delay, 20*time.Millisecond) {
			l, err := h.LinkByName(name)
			if err != nil {
				return err
			}
			what := "no carrier"
			if l.Up() && l.Flags&unix.IFF_RUNNING != 0 {
				if l.MasterIndex == 0 {
					break
				}
				if b == nil {
					if b, err = OpenBatch(h.ns, nil); err != nil {
						return err
					}
				}
				li, err := b.GetLink(l.Index)
				if err != nil {
					return err
				}
				if !li.BridgePort || li.PortState == PortForwarding {
					break
				}
				what = fmt.Sprintf("bridge port state %d, not forwarding", li.PortState)
			}
			if time.Now().After(deadline) {
				return &OpError{Op: "await carrier", Name: name, Err: fmt.Errorf("%s after %v", what, d)}
			}
			time.Sleep(delay)
		}
	}
	return nil
}

package kernel

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/jsimonetti/rtnetlink/v2"
	mnl "github.com/mdlayher/netlink"
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

// Addrs lists every address of every interface. A dump that a concurrent
// change interrupted is retried whole: partial results are never returned.
func (h *Handle) Addrs() ([]Addr, error) {
	var out []Addr
	m := rtnetlink.AddressMessage{}
	data, err := m.MarshalBinary()
	if err != nil {
		return nil, err
	}
	err = h.batch(func(b *Batch) error {
		return b.dump("list addresses", request{typ: unix.RTM_GETADDR, data: data}, func(msg mnl.Message) {
			if a, ok := toAddr(msg); ok {
				out = append(out, a)
			}
		})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// toAddr reads an RTM_NEWADDR message. IPv4 sends its address as IFA_LOCAL
// and, as IFA_ADDRESS, the peer's on a point-to-point link (its own
// otherwise); IPv6 sends IFA_ADDRESS alone, unless it has a peer. An
// address with a peer is its own /32 or /128, the peer carrying the prefix,
// as the Linux netlink libraries read it.
func toAddr(msg mnl.Message) (Addr, bool) {
	var m rtnetlink.AddressMessage
	if msg.Header.Type != unix.RTM_NEWADDR || m.UnmarshalBinary(msg.Data) != nil || m.Attributes == nil {
		return Addr{}, false
	}
	at := m.Attributes
	a := Addr{LinkIndex: int(m.Index), Scope: int(m.Scope), Flags: int(m.Flags), Label: at.Label}
	if at.Flags != 0 {
		a.Flags = int(at.Flags) // IFA_FLAGS: all 32 bits of them
	}
	dst := prefixOf(at.Address, int(m.PrefixLength))
	if at.Local == nil {
		a.Prefix = dst
		return a, a.Prefix.IsValid()
	}
	local := prefixOf(at.Local, -1)
	if m.Family == unix.AF_INET && dst.IsValid() && dst.Addr() == local.Addr() {
		a.Prefix = dst
	} else {
		a.Prefix, a.Peer = local, dst
	}
	return a, a.Prefix.IsValid()
}

// prefixOf is ip with bits of prefix (all of them when bits < 0), or an
// invalid prefix when ip is not an address.
func prefixOf(ip net.IP, bits int) netip.Prefix {
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return netip.Prefix{}
	}
	a = a.Unmap()
	if bits < 0 {
		bits = a.BitLen()
	}
	return netip.PrefixFrom(a, bits)
}

// AddrOptions tune AddAddr.
type AddrOptions struct {
	// NoDAD skips IPv6 duplicate address detection, so the address is
	// usable at once. nsnet owns every address in its labs, so there is
	// nothing to detect.
	NoDAD bool
}

// addrMessage is an address on a link; with broadcast, an IPv4 address gets
// its broadcast address (`ip addr add ... brd +`).
func addrMessage(index int, p netip.Prefix, opt AddrOptions, broadcast bool) ([]byte, error) {
	a := p.Addr().Unmap()
	m := rtnetlink.AddressMessage{
		Family:       family(a),
		PrefixLength: uint8(p.Bits()),
		Index:        uint32(index),
		Attributes:   &rtnetlink.AddressAttributes{Address: a.AsSlice(), Local: a.AsSlice()},
	}
	if opt.NoDAD && a.Is6() {
		m.Flags = unix.IFA_F_NODAD
		m.Attributes.Flags = unix.IFA_F_NODAD
	}
	if broadcast && a.Is4() && p.Bits() < 31 {
		brd := a.As4()
		mask := net.CIDRMask(p.Bits(), 32)
		for i := range brd {
			brd[i] |= ^mask[i]
		}
		m.Attributes.Broadcast = brd[:]
	}
	return m.MarshalBinary()
}

func family(a netip.Addr) uint8 {
	if a.Unmap().Is4() {
		return unix.AF_INET
	}
	return unix.AF_INET6
}

func addAddr(index int, name string, p netip.Prefix, opt AddrOptions, broadcast bool) (request, error) {
	if !p.IsValid() {
		return request{}, fmt.Errorf("add address to %s: invalid prefix", name)
	}
	data, err := addrMessage(index, p, opt, broadcast)
	return request{typ: unix.RTM_NEWADDR, flags: unix.NLM_F_CREATE | unix.NLM_F_EXCL, data: data,
		what: "add address", name: fmt.Sprintf("%s dev %s", p, name)}, err
}

// AddAddr queues an address (an existing one is not an error), like
// Handle.AddAddr.
func (b *Batch) AddAddr(index int, p netip.Prefix, opt AddrOptions, tag int) error {
	r, err := addAddr(index, "", p, opt, true)
	if err != nil {
		return err
	}
	r.name, r.ignore = "", unix.EEXIST
	return b.queue(r, tag)
}

// AddAddr assigns p (address and prefix length) to the interface. An address
// already present matches fs.ErrExist.
func (h *Handle) AddAddr(name string, p netip.Prefix, opt AddrOptions) error {
	if !p.IsValid() {
		return fmt.Errorf("add address to %s: invalid prefix", name)
	}
	index, err := h.index(name)
	if err != nil {
		return err
	}
	// As `ip addr add` does: no broadcast address unless asked for.
	r, err := addAddr(index, name, p, opt, false)
	if err != nil {
		return err
	}
	return h.do(r)
}

// AddAddrIndex is AddAddr for an interface known by index.
func (h *Handle) AddAddrIndex(index int, p netip.Prefix, opt AddrOptions) error {
	r, err := addAddr(index, indexName(index), p, opt, true)
	if err != nil {
		return err
	}
	return h.do(r)
}

// DelAddr removes an address; a missing one matches fs.ErrNotExist.
func (h *Handle) DelAddr(name string, p netip.Prefix) error {
	index, err := h.index(name)
	if err != nil {
		return err
	}
	r, err := delAddr(index, fmt.Sprintf("%s dev %s", p, name), p)
	if err != nil {
		return err
	}
	return h.do(r)
}

func delAddr(index int, name string, p netip.Prefix) (request, error) {
	data, err := addrMessage(index, p, AddrOptions{}, false)
	return request{typ: unix.RTM_DELADDR, data: data, what: "delete address", name: name}, err
}

// DelAddr queues the removal of an address (a missing one is not an error).
func (b *Batch) DelAddr(index int, p netip.Prefix, tag int) error {
	r, err := delAddr(index, "", p)
	if err != nil {
		return err
	}
	r.ignore = unix.EADDRNOTAVAIL
	return b.queue(r, tag)
}

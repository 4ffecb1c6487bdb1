// Package ipalloc says which addresses of a subnet may be handed out, and
// hands them out. Labs and the CNI plugin both allocate through it: a lab
// in memory, once, in file order (the lowest free address); the plugin on
// disk, concurrently, from a point derived from the attachment (so that
// concurrent ADDs rarely contend and a returning attachment gets its old
// address back). The rules are the same for both: no network address, no
// IPv4 broadcast address, and whatever the caller reserves at the start
// (the plugin's gateway).
package ipalloc

import (
	"errors"
	"fmt"
	"hash/fnv"
	"net/netip"
)

// ErrFull is wrapped by Claim when no address of the range is free.
var ErrFull = errors.New("no free address left")

// Range is the addresses First to Last, both included, of one subnet. A
// range with no address has an invalid First.
type Range struct {
	Subnet      netip.Prefix
	First, Last netip.Addr
}

// Hosts is the range of subnet's addresses an interface may be given: all
// but the network address (in IPv6, the subnet-router anycast address) and,
// in IPv4, the broadcast address. IPv4 /31 and /32 have neither, as the
// kernel treats them (RFC 3021).
func Hosts(subnet netip.Prefix) Range {
	subnet = subnet.Masked()
	r := Range{Subnet: subnet, First: subnet.Addr(), Last: LastAddr(subnet)}
	v4small := subnet.Addr().Is4() && subnet.Bits() > 30
	if !v4small {
		r.First = r.First.Next()
		if subnet.Addr().Is4() {
			r.Last = r.Last.Prev()
		}
	}
	if !r.First.IsValid() || !subnet.Contains(r.First) || r.First.Compare(r.Last) > 0 {
		return Range{Subnet: subnet}
	}
	return r
}

// Skip is r without its first n addresses (reserved by the caller).
func (r Range) Skip(n uint64) Range {
	if n >= r.Size() {
		return Range{Subnet: r.Subnet}
	}
	r.First = r.Offset(n)
	return r
}

// Empty reports whether r has no address.
func (r Range) Empty() bool { return !r.First.IsValid() }

// Contains reports whether a is in r.
func (r Range) Contains(a netip.Addr) bool {
	return !r.Empty() && a.BitLen() == r.First.BitLen() && r.First.Compare(a) <= 0 && a.Compare(r.Last) <= 0
}

// Size is how many addresses r has, saturated at 1<<62 (an IPv6 /64 has
// more than anyone will allocate).
func (r Range) Size() uint64 {
	if r.Empty() {
		return 0
	}
	f, l := r.First.As16(), r.Last.As16()
	fh, fl := half(f[:8]), half(f[8:])
	lh, ll := half(l[:8]), half(l[8:])
	lo := ll - fl
	hi := lh - fh
	if ll < fl {
		hi-- // borrow
	}
	if hi != 0 || lo >= 1<<62 {
		return 1 << 62
	}
	return lo + 1
}

func half(b []byte) uint64 {
	var v uint64
	for _, c := range b {
		v = v<<8 | uint64(c)
	}
	return v
}

// Offset is the address off places after First (within r when off < Size).
func (r Range) Offset(off uint64) netip.Addr {
	b := r.First.AsSlice()
	carry := off
	for i := len(b) - 1; i >= 0 && carry != 0; i-- {
		sum := uint64(b[i]) + carry&0xff
		b[i] = byte(sum)
		carry = carry>>8 + sum>>8
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// StartFor is where a search for key begins: spread over the range by a
// hash of key, so that different keys rarely contend and the same key
// starts where it did before.
func (r Range) StartFor(key string) netip.Addr {
	if r.Empty() {
		return netip.Addr{}
	}
	h := fnv.New64a()
	h.Write([]byte(key))
	return r.Offset(h.Sum64() % r.Size())
}

// Claim walks r from start (First when start is not in r) to Last and on
// from First, and returns the first address claim takes (claim reports
// false for one that is taken). An error from claim stops the walk. When
// every address is taken, the error wraps ErrFull. The walk visits taken
// addresses only, so its cost is the number of addresses already out.
func (r Range) Claim(start netip.Addr, claim func(netip.Addr) (bool, error)) (netip.Addr, error) {
	if r.Empty() {
		return netip.Addr{}, fmt.Errorf("%s: %w", r.Subnet, ErrFull)
	}
	if !r.Contains(start) {
		start = r.First
	}
	a := start
	for {
		ok, err := claim(a)
		if err != nil {
			return netip.Addr{}, err
		}
		if ok {
			return a, nil
		}
		if a == r.Last {
			a = r.First
		} else {
			a = a.Next()
		}
		if a == start {
			return netip.Addr{}, fmt.Errorf("%s: %w", r.Subnet, ErrFull)
		}
	}
}

// LastAddr is the highest address of p's subnet (IPv4's broadcast address).
func LastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

package kernel

import (
	"fmt"
	"net"
	"net/netip"
	"syscall"

	"github.com/jsimonetti/rtnetlink/v2"
	mnl "github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Neigh is a neighbour entry: the link-layer address behind an address on a
// link.
type Neigh struct {
	LinkIndex int
	IP        netip.Addr
	MAC       net.HardwareAddr
}

// setNeigh is a permanent neighbour entry (ip neigh replace ADDR lladdr MAC
// dev IF nud permanent). Permanent entries do not count against the
// neighbour table's limit, which all namespaces share.
func setNeigh(index int, ip netip.Addr, mac net.HardwareAddr) (request, error) {
	ip = ip.Unmap()
	m := rtnetlink.NeighMessage{
		Family:     uint16(family(ip)),
		Index:      uint32(index),
		State:      unix.NUD_PERMANENT,
		Attributes: &rtnetlink.NeighAttributes{Address: ip.AsSlice(), LLAddress: mac, IfIndex: uint32(index)},
	}
	data, err := m.MarshalBinary()
	return request{typ: unix.RTM_NEWNEIGH, flags: unix.NLM_F_CREATE | unix.NLM_F_REPLACE, data: data, what: "add neighbour"}, err
}

// SetNeigh queues a permanent neighbour entry, replacing one for the same
// address.
func (b *Batch) SetNeigh(index int, ip netip.Addr, mac net.HardwareAddr, tag int) error {
	r, err := setNeigh(index, ip, mac)
	if err != nil {
		return err
	}
	return b.queue(r, tag)
}

// AddPermanentNeigh installs a permanent neighbour entry (ip neigh add ...
// nud permanent); an entry already there for the address matches
// fs.ErrExist.
func (h *Handle) AddPermanentNeigh(dev string, ip netip.Addr, mac net.HardwareAddr) error {
	index, err := h.index(dev)
	if err != nil {
		return err
	}
	r, err := setNeigh(index, ip, mac)
	if err != nil {
		return err
	}
	r.flags = unix.NLM_F_CREATE | unix.NLM_F_EXCL
	r.name = fmt.Sprintf("%s lladdr %s dev %s", ip, mac, dev)
	return h.do(r)
}

// PermanentNeighs lists the namespace's permanent neighbour entries that
// have a link-layer address, of both families.
func (h *Handle) PermanentNeighs() ([]Neigh, error) {
	var out []Neigh
	m := rtnetlink.NeighMessage{}
	data, err := m.MarshalBinary()
	if err != nil {
		return nil, err
	}
	err = h.batch(func(b *Batch) error {
		out = out[:0]
		return b.dump("list neighbours", request{typ: unix.RTM_GETNEIGH, data: data}, func(msg mnl.Message) {
			var n rtnetlink.NeighMessage
			if msg.Header.Type != unix.RTM_NEWNEIGH || n.UnmarshalBinary(msg.Data) != nil {
				return
			}
			if n.State&unix.NUD_PERMANENT == 0 || n.Attributes == nil || n.Attributes.LLAddress == nil {
				return
			}
			a, ok := netip.AddrFromSlice(n.Attributes.Address)
			if !ok {
				return
			}
			out = append(out, Neigh{LinkIndex: int(n.Index), IP: a.Unmap(), MAC: n.Attributes.LLAddress})
		})
	})
	return out, err
}

// FlushUnresolved deletes the link's neighbour entries that are still being
// resolved or failed to be (INCOMPLETE, FAILED), and returns how many. An
// entry made while the link could not yet take the answer (a packet sent the
// moment a link came back, before its addresses were in force) waits a
// second for its next solicitation, and holds every packet to that
// neighbour meanwhile; deleted, the next packet starts afresh.
func (h *Handle) FlushUnresolved(index int) (int, error) {
	var dels []request
	m := rtnetlink.NeighMessage{}
	data, err := m.MarshalBinary()
	if err != nil {
		return 0, err
	}
	err = h.batch(func(b *Batch) error {
		return b.dump("list neighbours", request{typ: unix.RTM_GETNEIGH, data: data}, func(msg mnl.Message) {
			var n rtnetlink.NeighMessage
			if msg.Header.Type != unix.RTM_NEWNEIGH || n.UnmarshalBinary(msg.Data) != nil || n.Attributes == nil {
				return
			}
			if int(n.Index) != index || n.State&(unix.NUD_INCOMPLETE|unix.NUD_FAILED) == 0 {
				return
			}
			if r, err := delNeigh(index, n); err == nil {
				dels = append(dels, r)
			}
		})
	})
	if err != nil {
		return 0, err
	}
	for i, r := range dels {
		if err := h.do(r); err != nil {
			return i, err
		}
	}
	return len(dels), nil
}

// delNeigh deletes the entry n of the link (one already gone is not an
// error).
func delNeigh(index int, n rtnetlink.NeighMessage) (request, error) {
	m := rtnetlink.NeighMessage{Family: n.Family, Index: uint32(index), Attributes: &rtnetlink.NeighAttributes{Address: n.Attributes.Address, IfIndex: uint32(index)}}
	data, err := m.MarshalBinary()
	return request{typ: unix.RTM_DELNEIGH, data: data, what: "delete neighbour",
		name: fmt.Sprintf("%s dev %d", n.Attributes.Address, index), ignore: unix.ENOENT}, err
}

// getNeigh asks for the one entry of an address on a link (ip neigh get
// ADDR dev IF): the kernel finds it in its hash table, without walking the
// table that all namespaces share, as a dump does.
func getNeigh(index int, ip netip.Addr) (request, error) {
	ip = ip.Unmap()
	m := rtnetlink.NeighMessage{Family: uint16(family(ip)), Index: uint32(index)}
	hdr, err := m.MarshalBinary()
	if err != nil {
		return request{}, err
	}
	// Hand-encoded attributes: rtnetlink's NeighAttributes always writes
	// NDA_UNSPEC, NDA_LLADDR and NDA_IFINDEX, and the kernel refuses a get
	// with any attribute but NDA_DST.
	ae := mnl.NewAttributeEncoder()
	ae.Bytes(unix.NDA_DST, ip.AsSlice())
	attrs, err := ae.Encode()
	return request{typ: unix.RTM_GETNEIGH, data: append(hdr[:unix.SizeofNdMsg:unix.SizeofNdMsg], attrs...), what: "get neighbour"}, err
}

// LookupPermanentNeighs reads, for each wanted entry (link and address; its
// MAC is ignored), the link-layer address of the permanent entry there (nil
// when there is none, or it is not permanent), sixty-four lookups per send,
// after sending what is queued.
func (b *Batch) LookupPermanentNeighs(want []Neigh) ([]net.HardwareAddr, error) {
	out := make([]net.HardwareAddr, len(want))
	reqs := make([]request, 0, getsPerSend)
	for lo := 0; lo < len(want); lo += getsPerSend {
		reqs = reqs[:0]
		for _, w := range want[lo:min(lo+getsPerSend, len(want))] {
			r, err := getNeigh(w.LinkIndex, w.IP)
			if err != nil {
				return nil, err
			}
			reqs = append(reqs, r)
		}
		var failed error
		if err := b.exchange(reqs, func(i int, m mnl.Message, errno syscall.Errno) {
			if errno != 0 {
				if errno != unix.ENOENT && failed == nil {
					failed = opErr("get neighbour", fmt.Sprintf("%s dev %d", want[lo+i].IP, want[lo+i].LinkIndex), errno)
				}
				return
			}
			var n rtnetlink.NeighMessage
			if m.Header.Type != unix.RTM_NEWNEIGH || n.UnmarshalBinary(m.Data) != nil {
				return
			}
			if n.State&unix.NUD_PERMANENT != 0 && n.Attributes != nil && n.Attributes.LLAddress != nil {
				out[lo+i] = n.Attributes.LLAddress
			}
		}); err != nil {
			return nil, err
		}
		if failed != nil {
			return nil, failed
		}
	}
	return out, nil
}

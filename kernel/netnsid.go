package kernel

import (
	"syscall"

	mnl "github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/nsnet/nsnet/netns"
)

// Namespace ids: the number by which a namespace knows another (assigned
// when a veth crossed between them), which lets one socket read links of
// many namespaces without a socket in each.
//
// Hand-encoded with the netlink attribute encoder: rtnetlink/v2 has no
// RTM_GETNSID message and no IFLA_TARGET_NETNSID attribute.

// getNSID asks for the id here of the namespace open as fd.
func getNSID(fd int) request {
	ae := mnl.NewAttributeEncoder()
	ae.Uint32(unix.NETNSA_FD, uint32(fd))
	attrs, _ := ae.Encode() // a fixed-size attribute: cannot fail
	// An rtgenmsg, padded, then the attributes.
	return request{typ: unix.RTM_GETNSID, data: append([]byte{unix.AF_UNSPEC, 0, 0, 0}, attrs...)}
}

// parseNSID reads an RTM_NEWNSID answer: the id, or -1 when there is none.
func parseNSID(m mnl.Message) int32 {
	if m.Header.Type != unix.RTM_NEWNSID || len(m.Data) < 4 {
		return -1
	}
	ad, err := mnl.NewAttributeDecoder(m.Data[4:])
	if err != nil {
		return -1
	}
	id := int32(-1)
	for ad.Next() {
		if ad.Type() == unix.NETNSA_NSID {
			id = ad.Int32()
		}
	}
	if ad.Err() != nil {
		return -1
	}
	return id
}

// getLoopback asks for the loopback of the namespace with id nsid here.
func getLoopback(nsid int32) request {
	r := getLink(1, "")
	ae := mnl.NewAttributeEncoder()
	ae.Int32(unix.IFLA_TARGET_NETNSID, nsid)
	attrs, _ := ae.Encode()
	r.data = append(r.data, attrs...)
	return r
}

// LoopbackInfo reads the loopback of each namespace, given by an open
// descriptor, through this socket (the host's): first the kernel's id for
// each namespace here (assigned when a veth crossed into it), then its
// loopback by that id, sixty-four requests per send. Where a namespace has
// no id here, ok is false: read it from inside instead.
func (b *Batch) LoopbackInfo(fds []int) (infos []LinkInfo, ok []bool, err error) {
	infos, ok = make([]LinkInfo, len(fds)), make([]bool, len(fds))
	ids := make([]int32, len(fds))
	for lo := 0; lo < len(fds); lo += getsPerSend {
		hi := min(lo+getsPerSend, len(fds))
		reqs := make([]request, 0, hi-lo)
		for _, fd := range fds[lo:hi] {
			reqs = append(reqs, getNSID(fd))
		}
		if err := b.exchange(reqs, func(i int, m mnl.Message, _ syscall.Errno) {
			ids[lo+i] = parseNSID(m)
		}); err != nil {
			return nil, nil, err
		}
		var which []int
		reqs = reqs[:0]
		for i := lo; i < hi; i++ {
			if ids[i] >= 0 {
				which = append(which, i)
				reqs = append(reqs, getLoopback(ids[i]))
			}
		}
		if err := b.exchange(reqs, func(i int, m mnl.Message, _ syscall.Errno) {
			infos[which[i]], ok[which[i]] = parseLinkInfo(m)
		}); err != nil {
			return nil, nil, err
		}
	}
	return infos, ok, nil
}

// NSID returns the id by which the handle's namespace knows the namespace
// open as ns (`ip netns list-id`), or -1 when it has none.
func (h *Handle) NSID(ns *netns.NS) (int, error) {
	fd := ns.Fd()
	if fd < 0 {
		return -1, &OpError{Op: "get netns id", Name: ns.String(), Err: netns.ErrClosed}
	}
	id, failed := int32(-1), error(nil)
	err := h.batch(func(b *Batch) error {
		return b.exchange([]request{getNSID(fd)}, func(_ int, m mnl.Message, errno syscall.Errno) {
			if errno != 0 {
				failed = opErr("get netns id", ns.String(), errno)
				return
			}
			id = parseNSID(m)
		})
	})
	if err == nil {
		err = failed
	}
	if err != nil {
		return -1, err
	}
	return int(id), nil
}

package kernel

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"slices"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/nsnet/nsnet/netns"
)

// Batch is a raw rtnetlink socket in one namespace that queues requests and
// sends them many at a time, in one sendmsg: the kernel processes the
// messages of one send in order, replying only to those that fail (and to
// the last, which asks for an acknowledgement). Labs build thousands of
// nodes through it: one system call per namespace and batch instead of a
// round trip (and a Go netpoller wake-up) per request.
//
// Queued requests fail late, at Flush, which reports the first failure with
// the tag given when it was queued.
type Batch struct {
	fd   int
	seq  uint32
	buf  []byte
	pend []pending
	bufs *Buffers // receive buffers; nil: one per receive
}

// Buffers lends receive buffers to the Batches that share it: thousands of
// Batches are open at a time in a big lab, and each needs a buffer only while
// it waits for answers. Not a sync.Pool: the garbage collector empties those,
// and a big lab under a memory limit collects often.
type Buffers struct{ c chan []byte }

// NewBuffers keeps up to n idle buffers.
func NewBuffers(n int) *Buffers { return &Buffers{c: make(chan []byte, n)} }

func (p *Buffers) get() []byte {
	if p != nil {
		select {
		case b := <-p.c:
			return b
		default:
		}
	}
	return make([]byte, 64<<10)
}

func (p *Buffers) put(b []byte) {
	if p == nil {
		return
	}
	select {
	case p.c <- b:
	default:
	}
}

type pending struct {
	seq    uint32
	tag    int
	ignore syscall.Errno // an error that is not one (EEXIST for an add)
	what   string        // the operation, for errors (the tag tells which)
}

// BatchError is a queued request that failed.
type BatchError struct {
	Tag int
	Err error
}

func (e *BatchError) Error() string { return e.Err.Error() }
func (e *BatchError) Unwrap() error { return e.Err }

// maxBatch bounds the bytes sent in one sendmsg (the socket's send buffer
// is about 200 kB).
const maxBatch = 32 << 10

// OpenBatch opens a Batch bound to ns, borrowing receive buffers from bufs
// (which may be nil).
func OpenBatch(ns *netns.NS, bufs *Buffers) (*Batch, error) {
	fd := -1
	err := ns.Do(func() error {
		var err error
		fd, err = unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
		return err
	})
	if err != nil {
		return nil, &OpError{Op: "open netlink", Name: ns.String(), Err: err}
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, &OpError{Op: "open netlink", Name: ns.String(), Err: err}
	}
	// Error replies without a copy of the request.
	_ = unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_CAP_ACK, 1)
	return &Batch{fd: fd, bufs: bufs}, nil
}

// Close releases the socket; queued requests are dropped.
func (b *Batch) Close() {
	if b.fd >= 0 {
		unix.Close(b.fd)
		b.fd = -1
	}
	b.buf, b.pend = nil, nil
}

// Pending reports whether requests are queued.
func (b *Batch) Pending() bool { return len(b.pend) > 0 }

// msg starts a message; the caller appends its body and attributes and
// calls end.
func (b *Batch) msg(typ, flags uint16) int {
	b.seq++
	start := len(b.buf)
	var h [unix.SizeofNlMsghdr]byte
	binary.NativeEndian.PutUint16(h[4:], typ)
	binary.NativeEndian.PutUint16(h[6:], flags|unix.NLM_F_REQUEST)
	binary.NativeEndian.PutUint32(h[8:], b.seq)
	b.buf = append(b.buf, h[:]...)
	return start
}

func (b *Batch) end(start int) {
	binary.NativeEndian.PutUint32(b.buf[start:], uint32(len(b.buf)-start))
}

func align4(n int) int { return (n + 3) &^ 3 }

// attr appends an attribute; nested attributes are built with nest/endNest.
func (b *Batch) attr(typ uint16, data []byte) {
	var h [4]byte
	binary.NativeEndian.PutUint16(h[0:], uint16(4+len(data)))
	binary.NativeEndian.PutUint16(h[2:], typ)
	b.buf = append(b.buf, h[:]...)
	b.buf = append(b.buf, data...)
	for len(b.buf)%4 != 0 {
		b.buf = append(b.buf, 0)
	}
}

func (b *Batch) attrU32(typ uint16, v uint32) {
	var d [4]byte
	binary.NativeEndian.PutUint32(d[:], v)
	b.attr(typ, d[:])
}

func (b *Batch) attrStr(typ uint16, s string) { b.attr(typ, append([]byte(s), 0)) }

func (b *Batch) nest(typ uint16) int {
	start := len(b.buf)
	b.attr(typ, nil)
	return start
}

func (b *Batch) endNest(start int) {
	binary.NativeEndian.PutUint16(b.buf[start:], uint16(len(b.buf)-start))
}

func (b *Batch) ifinfo(index int, flags, change uint32) {
	var m [unix.SizeofIfInfomsg]byte
	binary.NativeEndian.PutUint32(m[4:], uint32(int32(index)))
	binary.NativeEndian.PutUint32(m[8:], flags)
	binary.NativeEndian.PutUint32(m[12:], change)
	b.buf = append(b.buf, m[:]...)
}

func (b *Batch) queue(start int, tag int, ignore syscall.Errno, what string) error {
	b.end(start)
	b.pend = append(b.pend, pending{seq: b.seq, tag: tag, ignore: ignore, what: what})
	if len(b.buf) >= maxBatch {
		return b.Flush()
	}
	return nil
}

// LinkChange is what SetLink changes on a link; zero fields are left alone.
type LinkChange struct {
	Alias       string
	AddrGenNone bool // no IPv6 link-local address: addrgenmode none
	MAC         net.HardwareAddr
	MasterIndex int
	MTU         int
	Up          bool
}

// SetLink queues one RTM_NEWLINK that makes all of c's changes at once.
func (b *Batch) SetLink(index int, c LinkChange, tag int) error {
	start := b.msg(unix.RTM_NEWLINK, 0)
	var flags, change uint32
	if c.Up {
		flags, change = unix.IFF_UP, unix.IFF_UP
	}
	b.ifinfo(index, flags, change)
	if c.Alias != "" {
		b.attr(unix.IFLA_IFALIAS, []byte(c.Alias))
	}
	if c.MTU != 0 {
		b.attrU32(unix.IFLA_MTU, uint32(c.MTU))
	}
	if len(c.MAC) > 0 {
		b.attr(unix.IFLA_ADDRESS, c.MAC)
	}
	if c.MasterIndex != 0 {
		b.attrU32(unix.IFLA_MASTER, uint32(c.MasterIndex))
	}
	if c.AddrGenNone {
		af := b.nest(unix.IFLA_AF_SPEC)
		in6 := b.nest(unix.AF_INET6)
		b.attr(unix.IFLA_INET6_ADDR_GEN_MODE, []byte{1}) // IN6_ADDR_GEN_MODE_NONE
		b.endNest(in6)
		b.endNest(af)
	}
	return b.queue(start, tag, 0, "set link")
}

func addrBytes(a netip.Addr) []byte {
	a = a.Unmap()
	if a.Is4() {
		v := a.As4()
		return v[:]
	}
	v := a.As16()
	return v[:]
}

func family(a netip.Addr) uint8 {
	if a.Unmap().Is4() {
		return unix.AF_INET
	}
	return unix.AF_INET6
}

// AddAddr queues an address (an existing one is not an error), like
// Handle.AddAddr: IPv4 addresses get their broadcast address, IPv6 ones
// skip DAD when opt says so.
func (b *Batch) AddAddr(index int, p netip.Prefix, opt AddrOptions, tag int) error {
	start := b.msg(unix.RTM_NEWADDR, unix.NLM_F_CREATE|unix.NLM_F_EXCL)
	a := p.Addr().Unmap()
	var m [unix.SizeofIfAddrmsg]byte
	m[0] = family(a)
	m[1] = uint8(p.Bits())
	if opt.NoDAD && a.Is6() {
		m[2] = unix.IFA_F_NODAD
	}
	binary.NativeEndian.PutUint32(m[4:], uint32(index))
	b.buf = append(b.buf, m[:]...)
	ab := addrBytes(a)
	b.attr(unix.IFA_LOCAL, ab)
	b.attr(unix.IFA_ADDRESS, ab)
	if a.Is4() && p.Bits() < 31 {
		brd := a.As4()
		mask := net.CIDRMask(p.Bits(), 32)
		for i := range brd {
			brd[i] |= ^mask[i]
		}
		b.attr(unix.IFA_BROADCAST, brd[:])
	}
	return b.queue(start, tag, unix.EEXIST, "add address")
}

// DelAddr queues the removal of an address (a missing one is not an error).
func (b *Batch) DelAddr(index int, p netip.Prefix, tag int) error {
	start := b.msg(unix.RTM_DELADDR, 0)
	a := p.Addr().Unmap()
	var m [unix.SizeofIfAddrmsg]byte
	m[0] = family(a)
	m[1] = uint8(p.Bits())
	binary.NativeEndian.PutUint32(m[4:], uint32(index))
	b.buf = append(b.buf, m[:]...)
	b.attr(unix.IFA_LOCAL, addrBytes(a))
	return b.queue(start, tag, unix.EADDRNOTAVAIL, "delete address")
}

// AddRoute queues a main-table unicast route, like Handle.AddRoute (r.Dev is
// not used: give r.LinkIndex). An existing route is not an error.
func (b *Batch) AddRoute(r Route, tag int) error {
	start := b.msg(unix.RTM_NEWROUTE, unix.NLM_F_CREATE|unix.NLM_F_EXCL)
	dst := r.Dst
	if !dst.IsValid() {
		zero := netip.IPv4Unspecified()
		if r.Gateway.Is6() {
			zero = netip.IPv6Unspecified()
		}
		dst = netip.PrefixFrom(zero, 0)
	}
	dst = dst.Masked()
	var m [unix.SizeofRtMsg]byte
	m[0] = family(dst.Addr())
	m[1] = uint8(dst.Bits())
	m[4] = unix.RT_TABLE_MAIN
	m[5] = unix.RTPROT_BOOT
	m[6] = unix.RT_SCOPE_UNIVERSE
	if !r.Gateway.IsValid() {
		m[6] = unix.RT_SCOPE_LINK
	}
	m[7] = unix.RTN_UNICAST
	b.buf = append(b.buf, m[:]...)
	if dst.Bits() > 0 {
		b.attr(unix.RTA_DST, addrBytes(dst.Addr()))
	}
	if r.Gateway.IsValid() {
		b.attr(unix.RTA_GATEWAY, addrBytes(r.Gateway))
	}
	if r.LinkIndex != 0 {
		b.attrU32(unix.RTA_OIF, uint32(r.LinkIndex))
	}
	return b.queue(start, tag, unix.EEXIST, "add route")
}

// SetNeigh queues a permanent neighbour entry (ip neigh replace ADDR lladdr
// MAC dev IF nud permanent). Permanent entries do not count against the
// neighbour table's limit, which all namespaces share.
func (b *Batch) SetNeigh(index int, ip netip.Addr, mac net.HardwareAddr, tag int) error {
	start := b.msg(unix.RTM_NEWNEIGH, unix.NLM_F_CREATE|unix.NLM_F_REPLACE)
	var m [unix.SizeofNdMsg]byte
	m[0] = family(ip)
	binary.NativeEndian.PutUint32(m[4:], uint32(index))
	binary.NativeEndian.PutUint16(m[8:], unix.NUD_PERMANENT)
	b.buf = append(b.buf, m[:]...)
	b.attr(unix.NDA_DST, addrBytes(ip))
	b.attr(unix.NDA_LLADDR, mac)
	return b.queue(start, tag, 0, "add neighbour")
}

// Flush sends what is queued and waits for the kernel's answers. It returns
// the first failure as a *BatchError.
func (b *Batch) Flush() error {
	if len(b.pend) == 0 {
		return nil
	}
	// Only the last message asks for an acknowledgement: failures are
	// answered anyway, in order, before it.
	last := b.pend[len(b.pend)-1]
	off := 0
	for i := 0; i < len(b.pend); i++ {
		n := int(binary.NativeEndian.Uint32(b.buf[off:]))
		if i == len(b.pend)-1 {
			fl := binary.NativeEndian.Uint16(b.buf[off+6:])
			binary.NativeEndian.PutUint16(b.buf[off+6:], fl|unix.NLM_F_ACK)
		}
		off += align4(n)
	}
	pend := b.pend
	buf := b.buf
	// Small batches (a node's few requests) give their buffers back:
	// thousands of Batches are open at a time.
	if len(buf) < 4<<10 {
		b.pend, b.buf = nil, nil
	} else {
		b.pend, b.buf = b.pend[:0], b.buf[:0]
	}
	if err := unix.Sendto(b.fd, buf, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return &BatchError{Tag: pend[0].tag, Err: &OpError{Op: "netlink send", Err: err}}
	}
	var first error
	bySeq := func(seq uint32) *pending {
		// Sequence numbers are consecutive.
		i := int(seq - pend[0].seq)
		if i >= 0 && i < len(pend) {
			return &pend[i]
		}
		return nil
	}
	done := false
	err := b.receive(func(h *unix.NlMsghdr, data []byte) bool {
		if h.Type != unix.NLMSG_ERROR {
			return false
		}
		errno, ok := ackErrno(data)
		if !ok {
			return false
		}
		p := bySeq(h.Seq)
		if errno != 0 && p != nil && errno != p.ignore && first == nil {
			first = &BatchError{Tag: p.tag, Err: opErr(p.what, "", errno)}
		}
		if h.Seq == last.seq {
			done = true
		}
		return done
	})
	if err != nil && first == nil {
		first = &BatchError{Tag: last.tag, Err: &OpError{Op: "netlink receive", Err: err}}
	}
	return first
}

// ackErrno is the error code of an NLMSG_ERROR message (0 for an
// acknowledgement); ok is false when the message is too short to carry one.
func ackErrno(data []byte) (errno syscall.Errno, ok bool) {
	if len(data) < 4 {
		return 0, false
	}
	return syscall.Errno(-int32(binary.NativeEndian.Uint32(data))), true
}

// receive reads messages until fn returns true.
func (b *Batch) receive(fn func(h *unix.NlMsghdr, data []byte) bool) error {
	rbuf := b.bufs.get()
	defer b.bufs.put(rbuf)
	for {
		n, _, err := unix.Recvfrom(b.fd, rbuf, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		msgs, err := syscall.ParseNetlinkMessage(rbuf[:n])
		if err != nil {
			return err
		}
		for i := range msgs {
			h := unix.NlMsghdr{Len: msgs[i].Header.Len, Type: msgs[i].Header.Type, Flags: msgs[i].Header.Flags, Seq: msgs[i].Header.Seq, Pid: msgs[i].Header.Pid}
			if fn(&h, msgs[i].Data) {
				return nil
			}
		}
	}
}

// NewLink is what AddLink creates.
type NewLink struct {
	Name string
	Kind string // "veth" or "bridge"
	MTU  int
	MAC  net.HardwareAddr
	// MasterIndex makes the new link a port of that bridge at creation.
	MasterIndex int
	// Veth only: the peer, created directly in PeerNS when set.
	Peer    string
	PeerMAC net.HardwareAddr
	PeerMTU int
	PeerNS  *netns.NS
}

// AddLink creates a link (after sending what is queued) and returns its
// index and, for a veth, its peer's index in the peer's namespace, from the
// kernel's echo of the new link: one round trip, no lookup by name.
func (b *Batch) AddLink(l NewLink) (index, peerIndex int, err error) {
	if err := b.Flush(); err != nil {
		return 0, 0, err
	}
	for _, n := range []string{l.Name, l.Peer} {
		if n == "" && l.Kind != "veth" {
			continue
		}
		if err := ValidateLinkName(n); err != nil {
			return 0, 0, err
		}
	}
	start := b.msg(unix.RTM_NEWLINK, unix.NLM_F_CREATE|unix.NLM_F_EXCL|unix.NLM_F_ACK|unix.NLM_F_ECHO)
	seq := b.seq
	b.ifinfo(0, 0, 0)
	b.attrStr(unix.IFLA_IFNAME, l.Name)
	if l.MTU != 0 {
		b.attrU32(unix.IFLA_MTU, uint32(l.MTU))
	}
	if l.MAC != nil {
		b.attr(unix.IFLA_ADDRESS, l.MAC)
	}
	if l.MasterIndex != 0 {
		b.attrU32(unix.IFLA_MASTER, uint32(l.MasterIndex))
	}
	info := b.nest(unix.IFLA_LINKINFO)
	b.attr(unix.IFLA_INFO_KIND, []byte(l.Kind))
	if l.Kind == "veth" {
		data := b.nest(unix.IFLA_INFO_DATA)
		peer := b.nest(1) // VETH_INFO_PEER: an ifinfomsg and link attributes
		b.ifinfo(0, 0, 0)
		b.attrStr(unix.IFLA_IFNAME, l.Peer)
		if l.PeerMTU != 0 {
			b.attrU32(unix.IFLA_MTU, uint32(l.PeerMTU))
		}
		if l.PeerMAC != nil {
			b.attr(unix.IFLA_ADDRESS, l.PeerMAC)
		}
		if l.PeerNS != nil {
			fd := l.PeerNS.Fd()
			if fd < 0 {
				b.buf, b.seq = b.buf[:start], b.seq-1
				return 0, 0, &OpError{Op: "add veth", Name: l.Name, Err: netns.ErrClosed}
			}
			b.attrU32(unix.IFLA_NET_NS_FD, uint32(fd))
		}
		b.endNest(peer)
		b.endNest(data)
	}
	b.endNest(info)
	b.end(start)
	buf := b.buf
	b.buf = b.buf[:0]
	op := "add " + l.Kind
	if err := unix.Sendto(b.fd, buf, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return 0, 0, opErr(op, l.Name, err)
	}
	var failed error
	err = b.receive(func(h *unix.NlMsghdr, data []byte) bool {
		switch h.Type {
		case unix.RTM_NEWLINK:
			if len(data) < unix.SizeofIfInfomsg {
				return false
			}
			idx := int(int32(binary.NativeEndian.Uint32(data[4:])))
			name, link := "", 0
			for a := data[unix.SizeofIfInfomsg:]; len(a) >= 4; {
				n := int(binary.NativeEndian.Uint16(a))
				if n < 4 || n > len(a) {
					break
				}
				v := a[4:n]
				switch binary.NativeEndian.Uint16(a[2:]) {
				case unix.IFLA_IFNAME:
					for i, c := range v {
						if c == 0 {
							v = v[:i]
							break
						}
					}
					name = string(v)
				case unix.IFLA_LINK:
					if len(v) >= 4 {
						link = int(binary.NativeEndian.Uint32(v))
					}
				}
				a = a[min(align4(n), len(a)):]
			}
			if name == l.Name {
				index, peerIndex = idx, link
			}
		case unix.NLMSG_ERROR:
			errno, ok := ackErrno(data)
			if h.Seq != seq || !ok {
				return false
			}
			if errno != 0 {
				failed = opErr(op, l.Name, errno)
			}
			return true
		}
		return false
	})
	if err != nil {
		return 0, 0, opErr(op, l.Name, err)
	}
	if failed != nil {
		return 0, 0, failed
	}
	if index == 0 {
		return 0, 0, &OpError{Op: op, Name: l.Name, Err: errors.New("the kernel did not echo the new link")}
	}
	if l.Kind == "veth" && peerIndex == 0 {
		// The kernel leaves IFLA_LINK out when it equals the link's own
		// index (possible across namespaces).
		peerIndex = index
	}
	return index, peerIndex, nil
}

// LinkInfo is what GetLink reports of a link.
type LinkInfo struct {
	Index int
	Flags uint32
	Alias string
	MAC   net.HardwareAddr
	Qdisc string // the root queueing discipline, as `ip link` names it
	// BridgePort is set when the link is a port of a bridge; PortState is
	// then its STP state (PortForwarding once it passes frames).
	BridgePort bool
	PortState  uint8
	// OperState is IFLA_OPERSTATE (IF_OPER_UP is 6): the kernel sets it in
	// its link watch work, after the carrier flag.
	OperState uint8
	// AddrGenMode is IFLA_INET6_ADDR_GEN_MODE (0 eui64, 1 none, ...): how
	// the kernel makes the link's IPv6 link-local address; -1 when the
	// link has no IPv6.
	AddrGenMode int
}

// IPv6 address generation modes (include/uapi/linux/if_link.h) and the
// operational state "up" (if.h).
const (
	AddrGenModeEUI64 = 0
	AddrGenModeNone  = 1
	OperUp           = 6
)

// PortForwarding is the bridge port state (IFLA_BRPORT_STATE,
// BR_STATE_FORWARDING) in which a port passes frames. A port whose link just
// got carrier is disabled until the kernel's link watch enables it, so a
// frame sent through the bridge before is dropped.
const PortForwarding = 3

// GetLink reads one link by index (after sending what is queued): one round
// trip, where a dump of a namespace with thousands of links costs
// megabytes.
func (b *Batch) GetLink(index int) (LinkInfo, error) {
	if err := b.Flush(); err != nil {
		return LinkInfo{}, err
	}
	start := b.msg(unix.RTM_GETLINK, 0)
	seq := b.seq
	b.ifinfo(index, 0, 0)
	b.attrU32(unix.IFLA_EXT_MASK, 1<<3) // RTEXT_FILTER_SKIP_STATS
	b.end(start)
	buf := b.buf
	b.buf = b.buf[:0]
	name := indexName(index)
	if err := unix.Sendto(b.fd, buf, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return LinkInfo{}, opErr("get link", name, err)
	}
	var li LinkInfo
	var failed error
	err := b.receive(func(h *unix.NlMsghdr, data []byte) bool {
		if h.Seq != seq {
			return false
		}
		switch h.Type {
		case unix.RTM_NEWLINK:
			parsed, ok := parseLinkInfo(data)
			if !ok {
				return false
			}
			li = parsed
			// Without NLM_F_ACK, a get is answered by the link
			// alone when it succeeds.
			return true
		case unix.NLMSG_ERROR:
			if errno, _ := ackErrno(data); errno != 0 {
				failed = opErr("get link", name, errno)
			}
			return true
		}
		return false
	})
	if err == nil {
		err = failed
	}
	return li, err
}

// LoopbackInfo reads the loopback of each namespace, given by an open
// descriptor, through this socket (the host's): first the kernel's id for
// each namespace here (assigned when a veth crossed into it), then its
// loopback by that id, sixty-four requests per send. Where a namespace has
// no id here, ok is false: read it from inside instead.
func (b *Batch) LoopbackInfo(fds []int) (infos []LinkInfo, ok []bool, err error) {
	if err := b.Flush(); err != nil {
		return nil, nil, err
	}
	infos, ok = make([]LinkInfo, len(fds)), make([]bool, len(fds))
	ids := make([]int32, len(fds))
	const chunk = 64
	for lo := 0; lo < len(fds); lo += chunk {
		hi := min(lo+chunk, len(fds))
		// The ids.
		first := b.seq + 1
		for _, fd := range fds[lo:hi] {
			start := b.msg(unix.RTM_GETNSID, 0)
			b.buf = append(b.buf, unix.AF_UNSPEC, 0, 0, 0) // rtgenmsg, padded
			b.attrU32(3, uint32(fd))                       // NETNSA_FD
			b.end(start)
		}
		if err := b.exchange(first, hi-lo, func(i int, h *unix.NlMsghdr, data []byte) {
			ids[lo+i] = -1
			if h.Type != unix.RTM_NEWNSID || len(data) < 4 {
				return
			}
			for a := data[4:]; len(a) >= 4; {
				n := int(binary.NativeEndian.Uint16(a))
				if n < 4 || n > len(a) {
					break
				}
				if binary.NativeEndian.Uint16(a[2:]) == unix.NETNSA_NSID && n >= 8 {
					ids[lo+i] = int32(binary.NativeEndian.Uint32(a[4:]))
				}
				a = a[min(align4(n), len(a)):]
			}
		}); err != nil {
			return nil, nil, err
		}
		// The loopbacks, by id.
		var which []int
		first = b.seq + 1
		for i := lo; i < hi; i++ {
			if ids[i] < 0 {
				continue
			}
			which = append(which, i)
			start := b.msg(unix.RTM_GETLINK, 0)
			b.ifinfo(1, 0, 0)
			b.attrU32(unix.IFLA_TARGET_NETNSID, uint32(ids[i]))
			b.attrU32(unix.IFLA_EXT_MASK, 1<<3) // RTEXT_FILTER_SKIP_STATS
			b.end(start)
		}
		if len(which) == 0 {
			continue
		}
		if err := b.exchange(first, len(which), func(i int, h *unix.NlMsghdr, data []byte) {
			if h.Type != unix.RTM_NEWLINK {
				return
			}
			li, good := parseLinkInfo(data)
			if !good {
				return
			}
			infos[which[i]], ok[which[i]] = li, true
		}); err != nil {
			return nil, nil, err
		}
	}
	return infos, ok, nil
}

// LinksByName reads links by name (after sending what is queued), sixty-four
// requests per send: a teardown needs a few of the host's links, whose full
// dump (thousands of links with their statistics) costs ten times more.
// ok is false for a name with no link.
func (b *Batch) LinksByName(names []string) (infos []LinkInfo, ok []bool, err error) {
	if err := b.Flush(); err != nil {
		return nil, nil, err
	}
	infos, ok = make([]LinkInfo, len(names)), make([]bool, len(names))
	const chunk = 64
	for lo := 0; lo < len(names); lo += chunk {
		hi := min(lo+chunk, len(names))
		first := b.seq + 1
		for _, name := range names[lo:hi] {
			start := b.msg(unix.RTM_GETLINK, 0)
			b.ifinfo(0, 0, 0)
			b.attrStr(unix.IFLA_IFNAME, name)
			b.attrU32(unix.IFLA_EXT_MASK, 1<<3) // RTEXT_FILTER_SKIP_STATS
			b.end(start)
		}
		var failed error
		if err := b.exchange(first, hi-lo, func(i int, h *unix.NlMsghdr, data []byte) {
			switch h.Type {
			case unix.RTM_NEWLINK:
				infos[lo+i], ok[lo+i] = parseLinkInfo(data)
			case unix.NLMSG_ERROR:
				errno, _ := ackErrno(data)
				if errno != 0 && errno != unix.ENODEV && failed == nil {
					failed = opErr("get link", names[lo+i], errno)
				}
			}
		}); err != nil {
			return nil, nil, err
		}
		if failed != nil {
			return nil, nil, failed
		}
	}
	return infos, ok, nil
}

// exchange sends the n get requests queued with sequence numbers from first
// on, and passes each answer (a reply or an error) to fn with its position.
func (b *Batch) exchange(first uint32, n int, fn func(i int, h *unix.NlMsghdr, data []byte)) error {
	buf := b.buf
	b.buf = b.buf[:0]
	if err := unix.Sendto(b.fd, buf, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return &OpError{Op: "netlink send", Err: err}
	}
	left := n
	err := b.receive(func(h *unix.NlMsghdr, data []byte) bool {
		i := int(h.Seq - first)
		if i < 0 || i >= n || h.Type == unix.NLMSG_DONE {
			return false
		}
		fn(i, h, data)
		left--
		return left == 0
	})
	if err != nil {
		return &OpError{Op: "netlink receive", Err: err}
	}
	return nil
}

// cString is a NUL-terminated attribute's text.
func cString(v []byte) string {
	if i := bytes.IndexByte(v, 0); i >= 0 {
		v = v[:i]
	}
	return string(v)
}

// parseLinkInfo reads an RTM_NEWLINK message's index, flags, ifalias,
// address and qdisc.
func parseLinkInfo(data []byte) (LinkInfo, bool) {
	if len(data) < unix.SizeofIfInfomsg {
		return LinkInfo{}, false
	}
	li := LinkInfo{Index: int(int32(binary.NativeEndian.Uint32(data[4:]))), Flags: binary.NativeEndian.Uint32(data[8:]), AddrGenMode: -1}
	eachAttr(data[unix.SizeofIfInfomsg:], func(typ uint16, v []byte) {
		switch typ {
		case unix.IFLA_ADDRESS:
			li.MAC = net.HardwareAddr(slices.Clone(v))
		case unix.IFLA_IFALIAS:
			li.Alias = cString(v)
		case unix.IFLA_QDISC:
			li.Qdisc = cString(v)
		case unix.IFLA_LINKINFO:
			li.BridgePort, li.PortState = parsePortInfo(v)
		case unix.IFLA_OPERSTATE:
			if len(v) > 0 {
				li.OperState = v[0]
			}
		case unix.IFLA_AF_SPEC:
			eachAttr(v, func(af uint16, v []byte) {
				if af != unix.AF_INET6 {
					return
				}
				eachAttr(v, func(typ uint16, v []byte) {
					if typ == unix.IFLA_INET6_ADDR_GEN_MODE && len(v) > 0 {
						li.AddrGenMode = int(v[0])
					}
				})
			})
		}
	})
	return li, true
}

// parsePortInfo reads IFLA_LINKINFO's slave kind and, for a bridge port, the
// port's state from its slave data.
func parsePortInfo(info []byte) (bridgePort bool, state uint8) {
	var data []byte
	eachAttr(info, func(typ uint16, v []byte) {
		switch typ {
		case unix.IFLA_INFO_SLAVE_KIND:
			bridgePort = cString(v) == "bridge"
		case unix.IFLA_INFO_SLAVE_DATA:
			data = v
		}
	})
	if !bridgePort {
		return false, 0
	}
	eachAttr(data, func(typ uint16, v []byte) {
		if typ == unix.IFLA_BRPORT_STATE && len(v) >= 1 {
			state = v[0]
		}
	})
	return true, state
}

// eachAttr calls fn with the type (flags masked off) and value of each
// netlink attribute in a, stopping at the first malformed one.
func eachAttr(a []byte, fn func(typ uint16, v []byte)) {
	for len(a) >= 4 {
		n := int(binary.NativeEndian.Uint16(a))
		if n < 4 || n > len(a) {
			return
		}
		fn(binary.NativeEndian.Uint16(a[2:])&^(unix.NLA_F_NESTED|unix.NLA_F_NET_BYTEORDER), a[4:n])
		a = a[min(align4(n), len(a)):]
	}
}

// Links dumps the namespace's links (after sending what is queued) with
// what LinkInfo holds, which the netlink library does not read (IFLA_QDISC,
// the IPv6 address generation mode). A dump that a concurrent change
// interrupted is retried whole: partial results are never returned.
func (b *Batch) Links() ([]LinkInfo, error) {
	if err := b.Flush(); err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		start := b.msg(unix.RTM_GETLINK, unix.NLM_F_DUMP)
		seq := b.seq
		b.ifinfo(0, 0, 0)
		b.attrU32(unix.IFLA_EXT_MASK, 1<<3) // RTEXT_FILTER_SKIP_STATS
		b.end(start)
		buf := b.buf
		b.buf = b.buf[:0]
		if err := unix.Sendto(b.fd, buf, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
			return nil, &OpError{Op: "list links", Err: err}
		}
		var out []LinkInfo
		intr := false
		var failed error
		err := b.receive(func(h *unix.NlMsghdr, data []byte) bool {
			if h.Seq != seq {
				return false
			}
			if h.Flags&unix.NLM_F_DUMP_INTR != 0 {
				intr = true
			}
			switch h.Type {
			case unix.NLMSG_DONE:
				return true
			case unix.NLMSG_ERROR:
				if errno, _ := ackErrno(data); errno != 0 {
					failed = errno
				}
				return true
			case unix.RTM_NEWLINK:
				if li, ok := parseLinkInfo(data); ok {
					out = append(out, li)
				}
			}
			return false
		})
		if err == nil {
			err = failed
		}
		if err != nil {
			return nil, &OpError{Op: "list links", Err: err}
		}
		if !intr {
			return out, nil
		}
		if attempt == maxDumpRetries {
			return nil, &OpError{Op: "list links", Err: errors.New("dump interrupted by concurrent changes, retries exhausted")}
		}
	}
}

// Qdiscs reports each link's root queueing discipline by index, as `ip link`
// prints it ("noqueue", "noop", "htb", ...): the netlink library does not
// read IFLA_QDISC.
func (h *Handle) Qdiscs() (map[int]string, error) {
	b, err := OpenBatch(h.ns, nil)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	links, err := b.Links()
	if err != nil {
		return nil, err
	}
	out := make(map[int]string, len(links))
	for _, li := range links {
		if li.Qdisc != "" {
			out[li.Index] = li.Qdisc
		}
	}
	return out, nil
}

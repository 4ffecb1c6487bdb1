package delayer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	"github.com/florianl/go-nfqueue/v2"
	"golang.org/x/sys/unix"

	"github.com/nsnet/nsnet/netns"
)

// The delayer speaks nfnetlink_queue on a netlink socket of its own, with
// go-nfqueue's constants. go-nfqueue's reader hands every packet to a
// callback as a freshly allocated Attribute and sends every verdict in a
// system call of its own, with several allocations; at 40,000 packets/s
// that is the garbage collector's and the scheduler's work in the way of
// releases on time (measured: 20,000-38,000 packets/s, a quarter released
// more than 1 ms late). Here a packet costs no allocation: messages are read
// many at a time (recvmmsg) into buffers made once, and the verdicts of one
// turn of the loop are written into one buffer and sent in one sendmsg (the
// kernel reads every message of it in order).

// What go-nfqueue does not export (linux/netfilter/nfnetlink_queue.h).
const (
	subsysQueue     = 3 // NFNL_SUBSYS_QUEUE
	msgPacket       = subsysQueue<<8 | 0
	msgVerdict      = subsysQueue<<8 | 1
	msgConfig       = subsysQueue<<8 | 2
	msgVerdictBatch = subsysQueue<<8 | 3

	attrPacketHdr  = 1  // NFQA_PACKET_HDR
	attrVerdictHdr = 2  // NFQA_VERDICT_HDR
	attrPayload    = 10 // NFQA_PAYLOAD

	cfgCmd      = 1 // NFQA_CFG_CMD
	cfgParams   = 2 // NFQA_CFG_PARAMS
	cfgMaxlen   = 3 // NFQA_CFG_QUEUE_MAXLEN
	cfgMask     = 4 // NFQA_CFG_MASK
	cfgFlags    = 5 // NFQA_CFG_FLAGS
	cmdBind     = 1 // NFQNL_CFG_CMD_BIND
	maxCopy     = 0xffff - 4
	nlHdrLen    = 16
	nfgenLen    = 4
	verdictLen  = nlHdrLen + nfgenLen + 4 + 8
	nlaTypeMask = 0x3fff
)

// Receive side: slots for one recvmmsg. Metadata messages are ~100 bytes;
// whole packets (for corruption) up to 64 KiB.
const (
	metaSlots, metaSlot     = 128, 1024
	packetSlots, packetSlot = 16, 65536 + 1024
	// flushAt: the send buffer goes out when it is this full, well under
	// the socket's send buffer (a netlink message larger is refused).
	flushAt = 96 << 10
)

// sock is one NFQUEUE's netlink socket, used by the queue's loop only
// (counters excepted, which read the kernel's file).
type sock struct {
	fd    int
	num   uint16
	seq   uint32
	bufs  [][]byte
	iovs  []unix.Iovec
	msgs  []unix.Mmsghdr
	out   []byte
	procs int // /proc/net/netfilter/nfnetlink_queue of the namespace, or -1
	// sendErrs counts sendmsg calls that failed after retries.
	sendErrs uint64
}

// openSock makes the socket inside ns (it stays bound to ns) and sizes it.
func openSock(ns *netns.NS, num uint16, whole bool) (*sock, error) {
	s := &sock{fd: -1, procs: -1, num: num}
	err := ns.Do(func() error {
		fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_NETFILTER)
		if err != nil {
			return err
		}
		s.fd = fd
		// The kernel's per-queue counters, of this namespace: the
		// file is bound to the namespace it was opened in.
		if p, err := unix.Open("/proc/thread-self/net/netfilter/nfnetlink_queue", unix.O_RDONLY|unix.O_CLOEXEC, 0); err == nil {
			s.procs = p
		}
		return nil
	})
	if err != nil {
		s.close()
		return nil, err
	}
	// A burst while the loop is off the CPU waits in the socket: 16 MiB
	// is some 40,000 metadata messages.
	if unix.SetsockoptInt(s.fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 16<<20) != nil {
		_ = unix.SetsockoptInt(s.fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 16<<20)
	}
	if unix.SetsockoptInt(s.fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, 4<<20) != nil {
		_ = unix.SetsockoptInt(s.fd, unix.SOL_SOCKET, unix.SO_SNDBUF, 4<<20)
	}
	// A full socket loses the kernel's messages (it drops those packets,
	// which leaves gaps in the ids, counted as overload); keep reading
	// instead of failing with ENOBUFS. Acks of refused verdicts need not
	// echo the request.
	_ = unix.SetsockoptInt(s.fd, unix.SOL_NETLINK, unix.NETLINK_NO_ENOBUFS, 1)
	_ = unix.SetsockoptInt(s.fd, unix.SOL_NETLINK, unix.NETLINK_CAP_ACK, 1)
	if err := unix.Bind(s.fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		s.close()
		return nil, err
	}
	n, size := metaSlots, metaSlot
	if whole {
		n, size = packetSlots, packetSlot
	}
	s.bufs = make([][]byte, n)
	s.iovs = make([]unix.Iovec, n)
	s.msgs = make([]unix.Mmsghdr, n)
	for i := range s.bufs {
		s.bufs[i] = make([]byte, size)
		s.iovs[i].Base = &s.bufs[i][0]
		s.iovs[i].SetLen(size)
		s.msgs[i].Hdr.Iov = &s.iovs[i]
		s.msgs[i].Hdr.SetIovlen(1)
	}
	s.out = make([]byte, 0, flushAt+packetSlot)
	return s, nil
}

func (s *sock) close() {
	if s.fd >= 0 {
		unix.Close(s.fd)
		s.fd = -1
	}
	if s.procs >= 0 {
		unix.Close(s.procs)
		s.procs = -1
	}
}

// config is the queue's settings in one message: bind (when bind), what
// the kernel copies, how many packets it keeps waiting for a verdict, and
// the flags. Fail-open is always cleared explicitly: a packet the delayer
// cannot take is dropped, never passed unimpaired.
func (s *sock) config(bind, whole bool, maxlen uint32, ack bool) {
	mode, rng := uint8(nfqueue.NfQnlCopyMeta), uint32(0)
	flags := uint32(nfqueue.NfQaCfgFlagGSO) // metadata only: a GSO packet waits whole, as netem's would
	if whole {
		// Whole packets, to corrupt them: the kernel completes their
		// checksums first (which it skips with GSO), so a flipped
		// bit is caught where the packet arrives.
		mode, rng, flags = nfqueue.NfQnlCopyPacket, maxCopy, 0
	}
	start := len(s.out)
	s.seq++
	f := uint16(unix.NLM_F_REQUEST)
	if ack {
		f |= unix.NLM_F_ACK
	}
	s.header(msgConfig, f, s.seq)
	if bind {
		s.attr(cfgCmd, []byte{cmdBind, 0, 0, 0})
	}
	var p [5]byte
	binary.BigEndian.PutUint32(p[:], rng)
	p[4] = mode
	s.attr(cfgParams, p[:])
	s.attr(cfgMaxlen, be32(maxlen))
	s.attr(cfgFlags, be32(flags))
	s.attr(cfgMask, be32(nfqueue.NfQaCfgFlagFailOpen|nfqueue.NfQaCfgFlagGSO))
	binary.NativeEndian.PutUint32(s.out[start:], uint32(len(s.out)-start))
}

func be32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

// header starts a message to the queue's subsystem; its length is set by
// the caller once the attributes are in.
func (s *sock) header(typ, flags uint16, seq uint32) {
	var h [nlHdrLen + nfgenLen]byte
	binary.NativeEndian.PutUint16(h[4:], typ)
	binary.NativeEndian.PutUint16(h[6:], flags)
	binary.NativeEndian.PutUint32(h[8:], seq)
	// nfgenmsg: family AF_UNSPEC, version 0, the queue (big endian).
	binary.BigEndian.PutUint16(h[18:], s.num)
	s.out = append(s.out, h[:]...)
}

func (s *sock) attr(typ uint16, data []byte) {
	var h [4]byte
	binary.NativeEndian.PutUint16(h[0:], uint16(4+len(data)))
	binary.NativeEndian.PutUint16(h[2:], typ)
	s.out = append(s.out, h[:]...)
	s.out = append(s.out, data...)
	for len(s.out)%4 != 0 {
		s.out = append(s.out, 0)
	}
}

// verdict queues a verdict for packet id (all packets up to id, with
// batch), with altered as the packet's new content when it is not nil.
func (s *sock) verdict(id uint32, v uint32, batch bool, altered []byte) {
	if len(s.out) >= flushAt {
		s.flush()
	}
	typ := uint16(msgVerdict)
	if batch {
		typ = msgVerdictBatch
	}
	start := len(s.out)
	s.header(typ, unix.NLM_F_REQUEST, 0)
	var vh [12]byte
	binary.NativeEndian.PutUint16(vh[0:], 12)
	binary.NativeEndian.PutUint16(vh[2:], attrVerdictHdr)
	binary.BigEndian.PutUint32(vh[4:], v)
	binary.BigEndian.PutUint32(vh[8:], id)
	s.out = append(s.out, vh[:]...)
	if altered != nil {
		s.attr(attrPayload, altered)
	}
	binary.NativeEndian.PutUint32(s.out[start:], uint32(len(s.out)-start))
}

// flush sends what verdicts are queued, in one system call.
func (s *sock) flush() {
	if len(s.out) == 0 {
		return
	}
	for try := 0; ; try++ {
		_, err := unix.Write(s.fd, s.out)
		if err == nil {
			break
		}
		if (errors.Is(err, unix.EINTR) || errors.Is(err, unix.ENOBUFS) || errors.Is(err, unix.ENOMEM)) && try < 100 {
			continue
		}
		// Lost verdicts leave their packets queued in the kernel until
		// the socket closes (then dropped): never passed.
		s.sendErrs++
		break
	}
	s.out = s.out[:0]
}

// recv reads what messages are waiting, without blocking, and returns how
// many slots it filled (0 when there were none).
func (s *sock) recv() (int, error) {
	for {
		r, _, e := unix.Syscall6(unix.SYS_RECVMMSG, uintptr(s.fd), uintptr(unsafe.Pointer(&s.msgs[0])), uintptr(len(s.msgs)), unix.MSG_DONTWAIT, 0, 0)
		switch e {
		case 0:
			return int(r), nil
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return 0, nil
		case unix.ENOBUFS:
			// An overrun reported despite NO_ENOBUFS: read on.
			continue
		}
		return 0, e
	}
}

// message returns slot i's bytes.
func (s *sock) message(i int) []byte {
	n := int(s.msgs[i].Len)
	return s.bufs[i][:min(n, len(s.bufs[i]))]
}

// packet reads a packet message's id and, when copied, its content.
func packet(body []byte) (id uint32, payload []byte, ok bool) {
	if len(body) < nfgenLen {
		return 0, nil, false
	}
	b := body[nfgenLen:]
	for len(b) >= 4 {
		l := int(binary.NativeEndian.Uint16(b))
		t := binary.NativeEndian.Uint16(b[2:]) & nlaTypeMask
		if l < 4 || l > len(b) {
			break
		}
		switch t {
		case attrPacketHdr:
			if l >= 8 {
				id, ok = binary.BigEndian.Uint32(b[4:]), true
			}
		case attrPayload:
			payload = b[4:l]
		}
		b = b[min(len(b), (l+3)&^3):]
	}
	return id, payload, ok
}

// ackErr is the error of an NLMSG_ERROR body (nil for an ack).
func ackErr(body []byte) error {
	if len(body) < 4 {
		return errors.New("short netlink error message")
	}
	if e := int32(binary.NativeEndian.Uint32(body)); e != 0 {
		return syscall.Errno(-e)
	}
	return nil
}

// kernelDrops reads the kernel's counters of the queue: packets dropped
// because the queue was full (queue_dropped) and because the socket was
// (queue_user_dropped; these are also gaps in the ids).
func (s *sock) kernelDrops() (full, user uint64, ok bool) {
	if s.procs < 0 {
		return 0, 0, false
	}
	var buf [4096]byte
	n, err := unix.Pread(s.procs, buf[:], 0)
	if err != nil || n <= 0 {
		return 0, 0, false
	}
	return queueDrops(string(buf[:n]), s.num)
}

// queueDrops reads queue num's drop counters from the kernel's listing:
// "queue portid waiting copy_mode copy_range queue_dropped user_dropped
// id_sequence 1", one line per queue of the namespace.
func queueDrops(listing string, num uint16) (full, user uint64, ok bool) {
	for _, line := range strings.Split(listing, "\n") {
		f := strings.Fields(line)
		if len(f) < 7 || f[0] != strconv.Itoa(int(num)) {
			continue
		}
		full, err1 := strconv.ParseUint(f[5], 10, 64)
		user, err2 := strconv.ParseUint(f[6], 10, 64)
		return full, user, err1 == nil && err2 == nil
	}
	return 0, 0, false
}

// bindErr names what failed when the kernel refused the queue's config.
func bindErr(num uint16, err error) error {
	if errors.Is(err, unix.EBUSY) || errors.Is(err, unix.EPERM) {
		return fmt.Errorf("queue %d is bound by another process: %w", num, err)
	}
	return fmt.Errorf("configure queue %d: %w", num, err)
}

// Package probe sends test traffic from inside a network namespace: ICMP echo
// (ping), and connection probes. Sockets are created on a thread inside the
// namespace and then used from any goroutine: a socket stays in the namespace
// it was created in.
package probe

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nsnet/nsnet/netns"
)

// OpError describes a failed probe operation.
type OpError struct {
	Op   string // "socket", "connect", "send", "receive"
	Addr netip.Addr
	Err  error
}

func (e *OpError) Error() string {
	return fmt.Sprintf("%s %s: %v", e.Op, e.Addr, e.Err)
}

func (e *OpError) Unwrap() error { return e.Err }

// ErrTimeout is wrapped when no reply came in time.
var ErrTimeout = errors.New("no reply")

// Reply is one echo reply.
type Reply struct {
	From  netip.Addr
	Seq   int
	TTL   int // hop limit for IPv6; -1 when unknown
	Bytes int // ICMP bytes received (header included), as ping prints
	RTT   time.Duration
}

// PayloadSize is ping's default data size.
const PayloadSize = 56

// Pinger sends ICMP echo requests to one address from inside a namespace.
type Pinger struct {
	f   *os.File
	rc  syscall.RawConn
	dst netip.Addr
	v6  bool
	raw bool // raw socket (IP header included on IPv4, we filter by id)
	id  uint16
}

// NewPinger opens an ICMP socket in ns (nil: the caller's namespace) and
// connects it to dst, which fails like ping does ("network is unreachable")
// when there is no route. It uses a raw socket when CAP_NET_RAW allows and an
// unprivileged ping socket otherwise.
func NewPinger(ns *netns.NS, dst netip.Addr) (*Pinger, error) {
	dst = dst.Unmap()
	if !dst.IsValid() {
		return nil, &OpError{Op: "socket", Addr: dst, Err: errors.New("invalid address")}
	}
	v6 := dst.Is6()
	var fd int
	var raw bool
	var zone uint32
	open := func() error {
		var err error
		if zone, err = zoneIndex(dst.Zone()); err != nil {
			return err
		}
		fd, raw, err = icmpSocket(v6)
		return err
	}
	var err error
	if ns == nil {
		err = open()
	} else {
		err = ns.Do(open)
	}
	if err != nil {
		return nil, &OpError{Op: "socket", Addr: dst, Err: err}
	}
	if v6 {
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_RECVHOPLIMIT, 1)
	}
	sa := sockaddr(dst)
	if s6, ok := sa.(*unix.SockaddrInet6); ok {
		s6.ZoneId = zone
	}
	if err := unix.Connect(fd, sa); err != nil {
		unix.Close(fd)
		return nil, &OpError{Op: "connect", Addr: dst, Err: err}
	}
	f := os.NewFile(uintptr(fd), "icmp")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, &OpError{Op: "socket", Addr: dst, Err: err}
	}
	p := &Pinger{f: f, rc: rc, dst: dst, v6: v6, raw: raw}
	p.id = uint16(os.Getpid()) ^ uint16(fd<<8)
	return p, nil
}

func icmpSocket(v6 bool) (int, bool, error) {
	fam, proto := unix.AF_INET, unix.IPPROTO_ICMP
	if v6 {
		fam, proto = unix.AF_INET6, unix.IPPROTO_ICMPV6
	}
	fd, err := unix.Socket(fam, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, proto)
	if err == nil {
		return fd, true, nil
	}
	if !errors.Is(err, unix.EPERM) && !errors.Is(err, unix.EACCES) {
		return -1, false, err
	}
	fd, err2 := unix.Socket(fam, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, proto)
	if err2 != nil {
		return -1, false, fmt.Errorf("raw ICMP socket: %w; ping socket: %v (needs CAP_NET_RAW or net.ipv4.ping_group_range)", err, err2)
	}
	return fd, false, nil
}

// zoneIndex is the interface index of an IPv6 zone ("3" or "eth0", as in
// fe80::1%eth0), 0 for none. A name is looked up in the calling thread's
// namespace, so it is called where the socket is made.
func zoneIndex(zone string) (uint32, error) {
	if zone == "" {
		return 0, nil
	}
	if n, err := strconv.ParseUint(zone, 10, 32); err == nil {
		return uint32(n), nil
	}
	ifi, err := net.InterfaceByName(zone)
	if err != nil {
		return 0, fmt.Errorf("zone %s: %w", zone, err)
	}
	return uint32(ifi.Index), nil
}

func sockaddr(a netip.Addr) unix.Sockaddr {
	if a.Is4() {
		return &unix.SockaddrInet4{Addr: a.As4()}
	}
	return &unix.SockaddrInet6{Addr: a.As16()}
}

// Close releases the socket.
func (p *Pinger) Close() error { return p.f.Close() }

// Ping sends one echo request with the sequence number seq and waits up to
// timeout for its reply.
func (p *Pinger) Ping(seq int, timeout time.Duration) (Reply, error) {
	msg := make([]byte, 8+PayloadSize)
	if p.v6 {
		msg[0] = 128 // echo request
	} else {
		msg[0] = 8
	}
	binary.BigEndian.PutUint16(msg[4:], p.id)
	binary.BigEndian.PutUint16(msg[6:], uint16(seq))
	for i := 8; i < len(msg); i++ {
		msg[i] = byte(i)
	}
	if !p.v6 {
		binary.BigEndian.PutUint16(msg[2:], checksum(msg))
	}
	deadline := time.Now().Add(timeout)
	if err := p.f.SetDeadline(deadline); err != nil {
		return Reply{}, &OpError{Op: "send", Addr: p.dst, Err: err}
	}
	start := time.Now()
	if err := p.send(msg); err != nil {
		return Reply{}, err
	}
	buf := make([]byte, 1500)
	oob := make([]byte, 64)
	for {
		var n, oobn int
		var rerr error
		err := p.rc.Read(func(fd uintptr) bool {
			n, oobn, _, _, rerr = unix.Recvmsg(int(fd), buf, oob, 0)
			return !errors.Is(rerr, unix.EAGAIN)
		})
		if err == nil {
			err = rerr
		}
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return Reply{}, &OpError{Op: "receive", Addr: p.dst, Err: ErrTimeout}
			}
			return Reply{}, &OpError{Op: "receive", Addr: p.dst, Err: err}
		}
		rtt := time.Since(start)
		ttl := -1
		pkt := buf[:n]
		if !p.v6 && p.raw {
			if len(pkt) < 20 {
				continue
			}
			ihl := int(pkt[0]&0x0f) * 4
			ttl = int(pkt[8])
			if len(pkt) < ihl+8 {
				continue
			}
			pkt = pkt[ihl:]
		}
		if p.v6 {
			ttl = hopLimit(oob[:oobn])
		}
		if len(pkt) < 8 {
			continue
		}
		wantType := byte(0)
		if p.v6 {
			wantType = 129
		}
		if pkt[0] != wantType || int(binary.BigEndian.Uint16(pkt[6:])) != seq&0xffff {
			continue
		}
		// Raw sockets see every ICMP packet in the namespace; ping
		// sockets have the id rewritten and filtered by the kernel.
		if p.raw && binary.BigEndian.Uint16(pkt[4:]) != p.id {
			continue
		}
		return Reply{From: p.dst, Seq: seq, TTL: ttl, Bytes: len(pkt), RTT: rtt}, nil
	}
}

func hopLimit(oob []byte) int {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return -1
	}
	for _, m := range msgs {
		if m.Header.Level == unix.IPPROTO_IPV6 && m.Header.Type == unix.IPV6_HOPLIMIT && len(m.Data) >= 4 {
			return int(binary.NativeEndian.Uint32(m.Data))
		}
	}
	return -1
}

func checksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s>>16 != 0 {
		s = s>>16 + s&0xffff
	}
	return ^uint16(s)
}

package probe

import (
	"context"
	"encoding/binary"
	"errors"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nsnet/nsnet/netns"
)

// Pair is one ICMP reachability question: can From reach To?
type Pair struct {
	From *netns.NS
	To   netip.Addr
}

// PairResult answers one Pair.
type PairResult struct {
	Reply bool
	RTT   time.Duration
	// Err is why there was no reply when the kernel said so at once or by
	// an ICMP error: unix.ENETUNREACH (no route), unix.EHOSTUNREACH (no
	// neighbour answered), unix.ENOBUFS (the kernel's neighbour table, shared
	// by all namespaces and limited by net.ipv4.neigh.default.gc_thresh3 in
	// the initial namespace, is full), ... nil with Reply false means a
	// plain timeout.
	Err error
}

// Sweep sends one echo request for every pair, all at once (at most 128 in
// flight per socket), and waits up to timeout for each reply. It opens one socket per source namespace and
// family (not one per pair), sends from one goroutine per source and reads
// replies from one goroutine per socket, so 10,000 pairs cost 100 sockets
// and a few hundred goroutines. Results are in the order of pairs.
//
// A socket that cannot be opened fails every pair that needs it with that
// error: an error is never a "no reply".
func Sweep(ctx context.Context, pairs []Pair, timeout time.Duration) []PairResult {
	res := make([]PairResult, len(pairs))
	type key struct {
		ns *netns.NS
		v6 bool
	}
	groups := map[key][]int{}
	var order []key
	for i, p := range pairs {
		k := key{p.From, p.To.Unmap().Is6()}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], i)
	}
	var wg sync.WaitGroup
	for gi, k := range order {
		idx := groups[k]
		wg.Add(1)
		go func(id uint16) {
			defer wg.Done()
			sweepOne(ctx, k.ns, k.v6, id, pairs, idx, res, timeout)
		}(uint16(gi))
	}
	wg.Wait()
	return res
}

// sweepOne handles every pair of one source namespace and family. The echo
// identifier is the group's number and the sequence number is the position
// in idx, so replies are matched without shared state.
func sweepOne(ctx context.Context, ns *netns.NS, v6 bool, id uint16, pairs []Pair, idx []int, res []PairResult, timeout time.Duration) {
	fail := func(err error) {
		for _, i := range idx {
			res[i].Err = err
		}
	}
	if len(idx) > 0xffff {
		fail(errors.New("more than 65535 destinations from one namespace"))
		return
	}
	var fd int
	var raw bool
	err := do(ns, func() error {
		var err error
		fd, raw, err = icmpSocket(v6)
		return err
	})
	if err != nil {
		fail(&OpError{Op: "socket", Addr: pairs[idx[0]].To, Err: err})
		return
	}
	if v6 || raw {
		// Ask the kernel for ICMP errors too: they name the cause.
		if v6 {
			unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_RECVERR, 1)
		} else {
			unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_RECVERR, 1)
		}
	}
	// Replies queue in the socket until read; a window keeps them within
	// its receive buffer (about 250 replies at the default size).
	unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 1<<20)
	f := os.NewFile(uintptr(fd), "sweep")
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		fail(err)
		return
	}
	if !raw {
		// Ping sockets rewrite the identifier to their port; bind first
		// so the port is known before anything is sent.
		bindAny(fd, v6)
		if sa, err := unix.Getsockname(fd); err == nil {
			switch a := sa.(type) {
			case *unix.SockaddrInet4:
				id = uint16(a.Port)
			case *unix.SockaddrInet6:
				id = uint16(a.Port)
			}
		}
	}
	stop := context.AfterFunc(ctx, func() { f.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	sent := make([]time.Time, len(idx))
	state := make([]byte, len(idx)) // 0 not sent, 1 in flight, 2 done
	msg := make([]byte, 8+PayloadSize)
	buf := make([]byte, 1500)
	next, inflight, oldest := 0, 0, 0
	finish := func(seq int) {
		state[seq] = 2
		inflight--
	}
	for next < len(idx) || inflight > 0 {
		if ctx.Err() != nil {
			return
		}
		// Send while the window has room.
		for next < len(idx) && inflight < sweepWindow {
			seq := next
			next++
			i := idx[seq]
			echoRequest(msg, v6, id, uint16(seq))
			var serr error
			// Timed from before the send: on a veth the reply can be
			// queued before sendto even returns.
			sent[seq] = time.Now()
			f.SetWriteDeadline(sent[seq].Add(timeout))
			werr := rc.Write(func(fd uintptr) bool {
				serr = unix.Sendto(int(fd), msg, 0, sockaddr(pairs[i].To.Unmap()))
				// Only a full socket buffer is worth waiting for. ENOBUFS
				// usually means the kernel's neighbour table is full (its
				// gc_thresh3 is shared by all namespaces): report it.
				return !errors.Is(serr, unix.EAGAIN)
			})
			if werr != nil {
				serr = werr
			}
			if serr != nil {
				res[i].Err = serr
				state[seq] = 2
				continue
			}
			state[seq] = 1
			inflight++
		}
		// Expire requests whose time is up, oldest first.
		for oldest < next && (state[oldest] == 2 || time.Since(sent[oldest]) >= timeout) {
			if state[oldest] == 1 {
				finish(oldest)
			}
			oldest++
		}
		if inflight == 0 {
			continue
		}
		f.SetReadDeadline(sent[oldest].Add(timeout))
		var n int
		var from unix.Sockaddr
		var rerr error
		err := rc.Read(func(fd uintptr) bool {
			n, _, _, from, rerr = unix.Recvmsg(int(fd), buf, nil, 0)
			return !errors.Is(rerr, unix.EAGAIN)
		})
		if err != nil {
			continue // this request's deadline: expired above on the next turn
		}
		if rerr != nil {
			// An error is queued (IP_RECVERR): read it from the error queue.
			if seq, cause, ok := readErrQueue(fd, v6, raw, id, buf); ok && int(seq) < next && state[seq] == 1 {
				res[idx[seq]].Err = cause
				finish(int(seq))
			}
			continue
		}
		pkt := buf[:n]
		if !v6 && raw {
			if len(pkt) < 20 || len(pkt) < int(pkt[0]&0x0f)*4+8 {
				continue
			}
			pkt = pkt[int(pkt[0]&0x0f)*4:]
		}
		if len(pkt) < 8 || (v6 && pkt[0] != 129) || (!v6 && pkt[0] != 0) {
			continue
		}
		if raw && binary.BigEndian.Uint16(pkt[4:]) != id {
			continue
		}
		seq := int(binary.BigEndian.Uint16(pkt[6:]))
		if seq >= next || state[seq] != 1 || !fromMatches(from, pairs[idx[seq]].To) {
			continue
		}
		finish(seq)
		res[idx[seq]] = PairResult{Reply: true, RTT: time.Since(sent[seq])}
	}
}

// sweepWindow bounds the requests one socket has in flight, so replies never
// overflow its receive buffer.
const sweepWindow = 128

func bindAny(fd int, v6 bool) {
	if v6 {
		unix.Bind(fd, &unix.SockaddrInet6{})
	} else {
		unix.Bind(fd, &unix.SockaddrInet4{})
	}
}

func fromMatches(sa unix.Sockaddr, want netip.Addr) bool {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrFrom4(a.Addr) == want.Unmap()
	case *unix.SockaddrInet6:
		return netip.AddrFrom16(a.Addr) == want
	}
	return false
}

func echoRequest(msg []byte, v6 bool, id, seq uint16) {
	clear(msg[:8])
	if v6 {
		msg[0] = 128
	} else {
		msg[0] = 8
	}
	binary.BigEndian.PutUint16(msg[4:], id)
	binary.BigEndian.PutUint16(msg[6:], seq)
	for i := 8; i < len(msg); i++ {
		msg[i] = byte(i)
	}
	if !v6 {
		binary.BigEndian.PutUint16(msg[2:], checksum(msg))
	}
}

// readErrQueue reads one queued ICMP error and returns the sequence number
// of the request it answers and the errno it stands for.
func readErrQueue(fd int, v6, raw bool, id uint16, buf []byte) (uint16, error, bool) {
	oob := make([]byte, 512)
	n, oobn, _, _, err := unix.Recvmsg(fd, buf, oob, unix.MSG_ERRQUEUE|unix.MSG_DONTWAIT)
	if err != nil {
		return 0, nil, false
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil {
		return 0, nil, false
	}
	var cause error
	for _, m := range msgs {
		if (m.Header.Level == unix.IPPROTO_IP && m.Header.Type == unix.IP_RECVERR) ||
			(m.Header.Level == unix.IPPROTO_IPV6 && m.Header.Type == unix.IPV6_RECVERR) {
			if len(m.Data) >= 4 {
				cause = syscall.Errno(binary.NativeEndian.Uint32(m.Data[:4]))
			}
		}
	}
	// The payload is our original request (without IP header).
	pkt := buf[:n]
	if !v6 && raw && len(pkt) >= 20 && pkt[0]>>4 == 4 {
		pkt = pkt[int(pkt[0]&0x0f)*4:]
	}
	if cause == nil || len(pkt) < 8 || (raw && binary.BigEndian.Uint16(pkt[4:]) != id) {
		return 0, nil, false
	}
	return binary.BigEndian.Uint16(pkt[6:]), cause, true
}

package kernel

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"syscall"
	"unsafe"

	"github.com/mdlayher/netlink"
	"github.com/mdlayher/netlink/nlenc"
	"golang.org/x/sys/unix"

	"github.com/nsnet/nsnet/netns"
)

// Batch is an rtnetlink connection in one namespace that queues requests and
// sends them many at a time, in one sendmsg: the kernel processes the
// messages of one send in order, replying only to those that fail (and to the
// last, which asks for an acknowledgement). Labs build thousands of nodes
// through it: one system call per namespace and batch instead of a round
// trip per request.
//
// Every change this package makes is a request built once (see link.go,
// addr.go, route.go, neigh.go) and either queued here or sent alone by a
// Handle; OneAtATime makes a Batch send each request alone and wait for its
// answer, which is how a Handle sends them.
//
// Queued requests fail late, at Flush, which reports the first failure with
// the tag given when it was queued.
//
// The messages are mdlayher/netlink's types, but a Batch writes its requests
// and reads the answers itself: an up of 1,000 nodes sends and reads about
// 6,000 times, and the library's Receive peeks at each answer before reading
// it (two system calls) into a fresh page-sized buffer, and SendMessages
// encodes the queued messages into another. Done here, requests are encoded
// once, into the send buffer, as they are queued, and answers are read in
// one call into receive space that a lab's thousands of Batches share
// (Buffers). BenchmarkBatchFlush measures both ways.
//
// The socket is a bare descriptor (made inside the namespace, used from any
// goroutine), blocking, without the runtime's poller: rtnetlink answers a
// request while it is sent, so a read after a send never waits. A lab keeps
// a Batch per namespace, 10,000 of them at once, and the library's Conn
// (with its socket.Conn, os.File and poller registration) cost about 600
// bytes each, a third of what up held besides the lab.
type Batch struct {
	// Fields ordered to pack: a lab holds a Batch per namespace.
	fd int32
	// seq is the last sequence number a request written here used (dumps
	// included): each answer is matched to its request by it.
	seq  uint32
	open bool // fd is the Batch's socket (0 may be one: a caller closed stdin)
	// OneAtATime sends every request as soon as it is queued and waits for
	// the kernel's answer: the same requests, one round trip each.
	OneAtATime bool
	out        []byte // queued requests, encoded
	last       int    // offset of the last queued request's header in out
	pend       []pending
	bufs       *Buffers
	rx         []byte // receive space of a Batch that shares none
	// script, when set, stands in for the socket in a dump (tests script
	// an interrupted dump with it).
	script *dumpScript
}

// dumpScript stands in for a Batch's socket in a dump: wrote is given the
// request, read returns the answer's datagrams.
type dumpScript struct {
	wrote func(out []byte)
	read  func() ([]netlink.Message, error)
}

type pending struct {
	tag    int
	ignore syscall.Errno // an error that is not one (EEXIST for an add)
	what   string        // the operation, for errors (the tag tells which)
	name   string        // the object, for errors; may be empty
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

// rxSize is the receive space for one answer: an acknowledgement, an error
// (without a copy of the request), or one link, address or route, each a
// datagram of its own and a few kilobytes at most. A bigger one is an error,
// never a partial answer (MSG_TRUNC tells).
const rxSize = 64 << 10

// Buffers is receive space that Batches used one at a time, or a few at
// once, share: a lab keeps a Batch per namespace, thousands of them, and
// each would otherwise hold its own. Safe for concurrent use.
type Buffers struct {
	mu   sync.Mutex
	free [][]byte
}

func (bs *Buffers) get() []byte {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	if n := len(bs.free); n > 0 {
		b := bs.free[n-1]
		bs.free = bs.free[:n-1]
		return b
	}
	return make([]byte, rxSize)
}

func (bs *Buffers) put(b []byte) {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	bs.free = append(bs.free, b)
}

// OpenBatch opens a Batch bound to ns: its socket is created inside ns and
// stays there.
func OpenBatch(ns *netns.NS) (*Batch, error) {
	fd := -1
	// Created by netns.Do, which skips the namespace switch when the
	// thread is already in ns (an unprivileged process could not make
	// it).
	err := ns.Do(func() error {
		var err error
		fd, err = dialRoute()
		return err
	})
	if err != nil {
		return nil, &OpError{Op: "open netlink", Name: ns.String(), Err: err}
	}
	return &Batch{fd: int32(fd), open: true}, nil
}

// dialRoute opens an rtnetlink socket in the calling thread's namespace, as
// netlink.Dial does (bound, the kernel choosing the port) but blocking and
// without the poller, and with error replies that carry no copy of the
// request.
func dialRoute() (int, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return -1, os.NewSyscallError("socket", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return -1, os.NewSyscallError("bind", err)
	}
	_ = unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_CAP_ACK, 1)
	return fd, nil
}

// NewNetnsBatch creates a network namespace (netns.NewWith) with a Batch
// bound to it, the socket made by the thread that made the namespace, while
// it is there: a lab makes a namespace per node, and a second trip into each
// (OpenBatch's) would cost a locked thread's hand-over and two setns.
func NewNetnsBatch() (*netns.NS, *Batch, error) {
	fd := -1
	ns, err := netns.NewWith(func() error {
		var err error
		if fd, err = dialRoute(); err != nil {
			return &OpError{Op: "open netlink", Name: "new namespace", Err: err}
		}
		return nil
	})
	if err != nil {
		if fd >= 0 {
			unix.Close(fd)
		}
		return nil, nil, err
	}
	return ns, &Batch{fd: int32(fd), open: true}, nil
}

// ShareBuffers makes the Batch borrow its receive space from bs while it
// reads an answer, instead of keeping its own.
func (b *Batch) ShareBuffers(bs *Buffers) { b.bufs = bs }

// Close releases the socket; queued requests are dropped.
func (b *Batch) Close() {
	if b.open {
		unix.Close(int(b.fd))
		b.open = false
	}
	b.out, b.pend, b.rx = nil, nil, nil
}

// Pending reports whether requests are queued.
func (b *Batch) Pending() bool { return len(b.pend) > 0 }

// request is one change, built by the file of the object it changes, with
// what a failure is called.
type request struct {
	typ    netlink.HeaderType
	flags  netlink.HeaderFlags
	data   []byte
	what   string        // "set link", "add address", ...
	name   string        // the object, for errors
	ignore syscall.Errno // with Queue: an answer that is not a failure
}

// encode appends r to out as a netlink message with the next sequence
// number, and returns that number.
func (b *Batch) encode(r request, flags netlink.HeaderFlags) uint32 {
	b.seq++ // consecutive, wrapping through 0: Flush counts on it
	n := unix.SizeofNlMsghdr + len(r.data)
	b.last = len(b.out)
	b.out = slices.Grow(b.out, nlmsgAlign(n))
	b.out = b.out[:b.last+unix.SizeofNlMsghdr]
	h := b.out[b.last:]
	nlenc.PutUint32(h[0:4], uint32(n))
	nlenc.PutUint16(h[4:6], uint16(r.typ))
	nlenc.PutUint16(h[6:8], uint16(r.flags|flags|netlink.Request))
	nlenc.PutUint32(h[8:12], b.seq)
	nlenc.PutUint32(h[12:16], 0) // the kernel fills in the port
	b.out = append(b.out, r.data...)
	b.out = append(b.out, make([]byte, nlmsgAlign(n)-n)...)
	return b.seq
}

func nlmsgAlign(n int) int { return (n + unix.NLMSG_ALIGNTO - 1) &^ (unix.NLMSG_ALIGNTO - 1) }

// queue adds r to the batch, sending it at once when the batch is full or
// one at a time.
func (b *Batch) queue(r request, tag int) error {
	b.encode(r, 0)
	b.pend = append(b.pend, pending{tag: tag, ignore: r.ignore, what: r.what, name: r.name})
	if b.OneAtATime || len(b.out) >= maxBatch {
		return b.Flush()
	}
	return nil
}

// Flush sends what is queued and waits for the kernel's answers. It returns
// the first failure as a *BatchError.
func (b *Batch) Flush() error {
	if len(b.pend) == 0 {
		return nil
	}
	// Only the last message asks for an acknowledgement: failures are
	// answered anyway, in order, before it.
	flags := b.out[b.last+6 : b.last+8]
	nlenc.PutUint16(flags, nlenc.Uint16(flags)|uint16(netlink.Acknowledge))
	pend := b.pend
	last := b.seq
	first := last - uint32(len(pend)) + 1
	err := b.send()
	// Small batches (a node's few requests) give their memory back:
	// thousands of Batches are open at a time.
	if cap(b.out) < 4<<10 {
		b.out, b.pend = nil, nil
	} else {
		b.out, b.pend = b.out[:0], b.pend[:0]
	}
	if err != nil {
		return &BatchError{Tag: pend[0].tag, Err: &OpError{Op: "netlink send", Err: err}}
	}
	var failed error
	err = b.receive(func(m netlink.Message, errno syscall.Errno) bool {
		if m.Header.Type != netlink.Error {
			return false
		}
		// Sequence numbers are consecutive.
		if i := int(m.Header.Sequence - first); errno != 0 && i >= 0 && i < len(pend) && errno != pend[i].ignore && failed == nil {
			failed = &BatchError{Tag: pend[i].tag, Err: opErr(pend[i].what, pend[i].name, errno)}
		}
		return m.Header.Sequence == last
	})
	if err != nil && failed == nil {
		failed = &BatchError{Tag: pend[len(pend)-1].tag, Err: &OpError{Op: "netlink receive", Err: err}}
	}
	return failed
}

// send writes what is encoded in out to the kernel, in one system call; it
// leaves out as it is.
func (b *Batch) send() error {
	if b.script != nil {
		b.script.wrote(b.out)
		return nil
	}
	if !b.open {
		return netns.ErrClosed
	}
	for {
		// Unconnected, a netlink socket writes to the kernel.
		n, err := unix.Write(int(b.fd), b.out)
		if err == unix.EINTR {
			continue
		}
		if err == nil && n != len(b.out) {
			err = fmt.Errorf("short write (%d of %d bytes)", n, len(b.out))
		}
		return err
	}
}

// receive passes each message the kernel sends to fn, with the error code of
// an error message (0 for an acknowledgement or another message), until fn
// returns true. A message's data is valid only during the call.
func (b *Batch) receive(fn func(m netlink.Message, errno syscall.Errno) bool) error {
	if !b.open {
		return netns.ErrClosed
	}
	var rx []byte
	if b.bufs != nil {
		rx = b.bufs.get()
		defer b.bufs.put(rx)
	} else {
		if b.rx == nil {
			b.rx = make([]byte, rxSize)
		}
		rx = b.rx
	}
	for {
		n, err := recvTrunc(int(b.fd), rx)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if n > len(rx) {
			return fmt.Errorf("answer of %d bytes is longer than the %d read", n, len(rx))
		}
		for buf := rx[:n]; len(buf) > 0; {
			if len(buf) < unix.SizeofNlMsghdr {
				return errors.New("truncated netlink message")
			}
			l := int(nlenc.Uint32(buf[0:4]))
			if l < unix.SizeofNlMsghdr || l > len(buf) {
				return errors.New("netlink message with a bad length")
			}
			m := netlink.Message{
				Header: netlink.Header{
					Length:   uint32(l),
					Type:     netlink.HeaderType(nlenc.Uint16(buf[4:6])),
					Flags:    netlink.HeaderFlags(nlenc.Uint16(buf[6:8])),
					Sequence: nlenc.Uint32(buf[8:12]),
					PID:      nlenc.Uint32(buf[12:16]),
				},
				Data: buf[unix.SizeofNlMsghdr:l],
			}
			var errno syscall.Errno
			if m.Header.Type == netlink.Error && len(m.Data) >= 4 {
				errno = syscall.Errno(-nlenc.Int32(m.Data[:4]))
			}
			if fn(m, errno) {
				return nil
			}
			buf = buf[min(nlmsgAlign(l), len(buf)):]
		}
	}
}

// recvTrunc reads one datagram into p and returns its full length, which
// is more than len(p) when it did not fit (MSG_TRUNC). The raw system call
// reads no sender address: the kernel is the only one that writes here.
func recvTrunc(fd int, p []byte) (int, error) {
	n, _, e := unix.Syscall6(unix.SYS_RECVFROM, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)), unix.MSG_TRUNC, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// exchange sends requests that each get one answer (gets) and passes each
// answer (a reply, or an error with its code) to fn with the request's
// position.
func (b *Batch) exchange(reqs []request, fn func(i int, m netlink.Message, errno syscall.Errno)) error {
	if err := b.Flush(); err != nil {
		return err
	}
	if len(reqs) == 0 {
		return nil
	}
	first := b.seq + 1
	for _, r := range reqs {
		b.encode(r, 0)
	}
	err := b.send()
	b.out = b.out[:0]
	if err != nil {
		return &OpError{Op: "netlink send", Err: err}
	}
	left := len(reqs)
	err = b.receive(func(m netlink.Message, errno syscall.Errno) bool {
		i := int(m.Header.Sequence - first)
		if i < 0 || i >= len(reqs) || m.Header.Type == netlink.Done {
			return false
		}
		fn(i, m, errno)
		left--
		return left == 0
	})
	if err != nil {
		return &OpError{Op: "netlink receive", Err: err}
	}
	return nil
}

// maxDumpRetries bounds retries of a dump the kernel reported as interrupted
// by a concurrent change; a partial dump is never returned.
const maxDumpRetries = 20

// dump sends a dump request and passes each message of the answer to fn. A
// dump that a concurrent change interrupted (NLM_F_DUMP_INTR on any of its
// messages, the closing NLMSG_DONE included) is retried whole, so fn sees
// only a complete one; after maxDumpRetries the error matches
// ErrDumpInterrupted.
func (b *Batch) dump(op string, r request, fn func(m netlink.Message)) error {
	if err := b.Flush(); err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		msgs, intr, err := b.dumpOnce(r)
		if err != nil {
			return &OpError{Op: op, Err: err}
		}
		if !intr {
			for _, m := range msgs {
				fn(m)
			}
			return nil
		}
		if attempt == maxDumpRetries {
			return &OpError{Op: op, Err: ErrDumpInterrupted}
		}
	}
}

// dumpOnce sends one dump request and gathers its answer up to the kernel's
// NLMSG_DONE, reporting whether any message of it was flagged as
// interrupted. The datagrams are read here rather than by Conn.Receive:
// the library drops the closing NLMSG_DONE before its caller sees it, and
// the kernel may flag only that one (a change that lands after the last
// object was written).
func (b *Batch) dumpOnce(r request) (msgs []netlink.Message, intr bool, err error) {
	seq := b.encode(r, netlink.Dump)
	err = b.send()
	b.out = b.out[:0]
	if err != nil {
		return nil, false, err
	}
	read := b.datagram
	if b.script != nil {
		read = b.script.read
	}
	for {
		dg, err := read()
		if err != nil {
			return nil, false, err
		}
		for _, m := range dg {
			if m.Header.Sequence != seq {
				continue // the late answer of an earlier request
			}
			intr = intr || m.Header.Flags&netlink.DumpInterrupted != 0
			switch m.Header.Type {
			case netlink.Done, netlink.Error:
				// An error ends a dump the kernel refused; a done
				// carries the dump's own error code, 0 when it ran.
				if len(m.Data) >= 4 {
					if errno := syscall.Errno(-nlenc.Int32(m.Data[:4])); errno != 0 {
						return nil, false, errno
					}
				}
				return msgs, intr, nil
			default:
				msgs = append(msgs, m)
			}
		}
	}
}

// datagram reads the socket's next datagram and splits it into messages.
func (b *Batch) datagram() ([]netlink.Message, error) {
	if !b.open {
		return nil, netns.ErrClosed
	}
	for {
		// The datagram's size first (MSG_TRUNC reports it whole), so
		// that the buffer is made to fit.
		n, _, err := unix.Recvfrom(int(b.fd), nil, unix.MSG_PEEK|unix.MSG_TRUNC)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, os.NewSyscallError("recvmsg", err)
		}
		buf := make([]byte, n)
		n, err = unix.Read(int(b.fd), buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, os.NewSyscallError("recvmsg", err)
		}
		return splitMessages(buf[:n])
	}
}

// splitMessages cuts a datagram into its netlink messages.
func splitMessages(buf []byte) ([]netlink.Message, error) {
	nms, err := syscall.ParseNetlinkMessage(buf)
	if err != nil {
		return nil, fmt.Errorf("malformed netlink answer: %w", err)
	}
	msgs := make([]netlink.Message, len(nms))
	for i, m := range nms {
		msgs[i] = netlink.Message{
			Header: netlink.Header{Length: m.Header.Len, Type: netlink.HeaderType(m.Header.Type),
				Flags: netlink.HeaderFlags(m.Header.Flags), Sequence: m.Header.Seq, PID: m.Header.Pid},
			Data: m.Data,
		}
	}
	return msgs, nil
}

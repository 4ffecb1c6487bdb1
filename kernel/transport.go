package kernel

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"github.com/mdlayher/netlink"
	"github.com/mdlayher/netlink/nlenc"
	"golang.org/x/sys/unix"

	"github.com/nsnet/nsnet/netns"
)

// Batch is an rtnetlink connection in one namespace that queues requests and
// sends them many at a time, in one sendmsg (netlink.Conn.SendMessages): the
// kernel processes the messages of one send in order, replying only to those
// that fail (and to the last, which asks for an acknowledgement). Labs build
// thousands of nodes through it: one system call per namespace and batch
// instead of a round trip per request.
//
// Every change this package makes is a request built once (see link.go,
// addr.go, route.go, neigh.go) and either queued here or sent alone by a
// Handle; OneAtATime makes a Batch send each request alone and wait for its
// answer, which is how a Handle sends them.
//
// Queued requests fail late, at Flush, which reports the first failure with
// the tag given when it was queued.
type Batch struct {
	c    *netlink.Conn
	msgs []netlink.Message
	pend []pending
	size int // bytes queued
	// OneAtATime sends every request as soon as it is queued and waits for
	// the kernel's answer: the same requests, one round trip each.
	OneAtATime bool
	// read, when set, stands in for the socket's datagrams in a dump's
	// answer (tests script an interrupted dump with it).
	read func() ([]netlink.Message, error)
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

// OpenBatch opens a Batch bound to ns: its socket is created inside ns and
// stays there.
func OpenBatch(ns *netns.NS) (*Batch, error) {
	var c *netlink.Conn
	// Created by netns.Do rather than netlink.Config.NetNS: Do skips the
	// namespace switch when the thread is already in ns, which an
	// unprivileged process could not make.
	err := ns.Do(func() error {
		var err error
		c, err = netlink.Dial(unix.NETLINK_ROUTE, nil)
		return err
	})
	if err != nil {
		return nil, &OpError{Op: "open netlink", Name: ns.String(), Err: err}
	}
	// Error replies without a copy of the request.
	_ = c.SetOption(netlink.CapAcknowledge, true)
	return &Batch{c: c}, nil
}

// Close releases the socket; queued requests are dropped.
func (b *Batch) Close() {
	if b.c != nil {
		b.c.Close()
		b.c = nil
	}
	b.msgs, b.pend, b.size = nil, nil, 0
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

// queue adds r to the batch, sending it at once when the batch is full or
// one at a time.
func (b *Batch) queue(r request, tag int) error {
	b.msgs = append(b.msgs, netlink.Message{
		Header: netlink.Header{Type: r.typ, Flags: r.flags | netlink.Request},
		Data:   r.data,
	})
	b.pend = append(b.pend, pending{tag: tag, ignore: r.ignore, what: r.what, name: r.name})
	b.size += unix.SizeofNlMsghdr + len(r.data)
	if b.OneAtATime || b.size >= maxBatch {
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
	b.msgs[len(b.msgs)-1].Header.Flags |= netlink.Acknowledge
	msgs, pend := b.msgs, b.pend
	// Small batches (a node's few requests) give their memory back:
	// thousands of Batches are open at a time.
	if b.size < 4<<10 {
		b.msgs, b.pend = nil, nil
	} else {
		b.msgs, b.pend = b.msgs[:0], b.pend[:0]
	}
	b.size = 0
	sent, err := b.c.SendMessages(msgs)
	if err != nil {
		clear(msgs)
		return &BatchError{Tag: pend[0].tag, Err: &OpError{Op: "netlink send", Err: unwrapNetlink(err)}}
	}
	first, last := sent[0].Header.Sequence, sent[len(sent)-1].Header.Sequence
	clear(msgs) // sent (SendMessages numbers msgs in place): let their memory go
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

// receive passes each message the kernel sends to fn, with the error code of
// an error message (0 for an acknowledgement or another message), until fn
// returns true.
func (b *Batch) receive(fn func(m netlink.Message, errno syscall.Errno) bool) error {
	for {
		msgs, err := b.c.Receive()
		if err != nil {
			// An error message: the library reports it with its
			// sequence number and drops it from the reply.
			// (A failed system call carries an *os.SyscallError.)
			if seq, errno, ok := messageErrno(err); ok {
				if fn(netlink.Message{Header: netlink.Header{Type: netlink.Error, Sequence: seq}}, errno) {
					return nil
				}
				continue
			}
			return unwrapNetlink(err)
		}
		for _, m := range msgs {
			var errno syscall.Errno
			if m.Header.Type == netlink.Error && len(m.Data) >= 4 {
				errno = syscall.Errno(-nlenc.Int32(m.Data[:4]))
			}
			if fn(m, errno) {
				return nil
			}
		}
	}
}

// messageErrno is the sequence number and error code of an error message
// the library reported as err.
func messageErrno(err error) (seq uint32, errno syscall.Errno, ok bool) {
	var oe *netlink.OpError
	if !errors.As(err, &oe) {
		return 0, 0, false
	}
	errno, ok = oe.Err.(syscall.Errno)
	return oe.Sequence, errno, ok
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
	msgs := make([]netlink.Message, len(reqs))
	for i, r := range reqs {
		msgs[i] = netlink.Message{Header: netlink.Header{Type: r.typ, Flags: r.flags | netlink.Request}, Data: r.data}
	}
	sent, err := b.c.SendMessages(msgs)
	if err != nil {
		return &OpError{Op: "netlink send", Err: unwrapNetlink(err)}
	}
	first := sent[0].Header.Sequence
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
	sent, err := b.c.Send(netlink.Message{Header: netlink.Header{Type: r.typ, Flags: r.flags | netlink.Request | netlink.Dump}, Data: r.data})
	if err != nil {
		return nil, false, unwrapNetlink(err)
	}
	read := b.read
	if read == nil {
		read = b.datagram
	}
	for {
		dg, err := read()
		if err != nil {
			return nil, false, err
		}
		for _, m := range dg {
			if m.Header.Sequence != sent.Header.Sequence {
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
	rc, err := b.c.SyscallConn()
	if err != nil {
		return nil, err
	}
	var buf []byte
	var rerr error
	err = rc.Read(func(fd uintptr) bool {
		// The datagram's size first (MSG_TRUNC reports it whole), so
		// that the buffer is made to fit.
		var n int
		n, _, rerr = unix.Recvfrom(int(fd), nil, unix.MSG_PEEK|unix.MSG_TRUNC)
		if rerr == unix.EAGAIN || rerr == unix.EINTR {
			return false
		}
		if rerr != nil {
			return true
		}
		buf = make([]byte, n)
		n, rerr = unix.Read(int(fd), buf)
		if rerr == unix.EAGAIN || rerr == unix.EINTR {
			return false
		}
		buf = buf[:max(n, 0)]
		return true
	})
	if err == nil {
		err = rerr
	}
	if err != nil {
		return nil, os.NewSyscallError("recvmsg", err)
	}
	return splitMessages(buf)
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

// unwrapNetlink is the system call error inside the library's error, so
// that messages read as the kernel's ("no such device").
func unwrapNetlink(err error) error {
	var oe *netlink.OpError
	if errors.As(err, &oe) {
		return oe.Err
	}
	return err
}

package kernel

import (
	"syscall"
	"testing"

	"github.com/mdlayher/netlink"
	"github.com/mdlayher/netlink/nlenc"
	"golang.org/x/sys/unix"

	"github.com/nsnet/nsnet/netns"
)

// BenchmarkBatchFlush sends a node's worth of requests (five no-op changes
// of the loopback, as a lab node's lo, addresses, neighbour and routes are
// five requests) in one send and waits for the acknowledgement: through a
// Batch, which encodes as it queues and reads into shared space, and through
// the library's SendMessages and Receive on the same kind of socket, the
// way a Batch did before (the comment on Batch says why it no longer does).
func BenchmarkBatchFlush(b *testing.B) {
	// Inside the sandbox kernel_test's TestMain made (sandbox imports this
	// package, so this file cannot call it).
	ns, err := netns.New()
	if err != nil {
		b.Fatal(err)
	}
	defer ns.Close()
	up, err := setLink("set link", "lo", 1, LinkChange{Up: true})
	if err != nil {
		b.Fatal(err)
	}
	const perFlush = 5
	b.Run("batch", func(b *testing.B) {
		bt, err := OpenBatch(ns)
		if err != nil {
			b.Fatal(err)
		}
		defer bt.Close()
		bt.ShareBuffers(&Buffers{})
		b.ReportAllocs()
		for b.Loop() {
			for range perFlush {
				if err := bt.queue(up, 0); err != nil {
					b.Fatal(err)
				}
			}
			if err := bt.Flush(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("library", func(b *testing.B) {
		var c *netlink.Conn
		if err := ns.Do(func() (err error) { c, err = netlink.Dial(unix.NETLINK_ROUTE, nil); return err }); err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		_ = c.SetOption(netlink.CapAcknowledge, true)
		b.ReportAllocs()
		for b.Loop() {
			msgs := make([]netlink.Message, perFlush)
			for i := range msgs {
				msgs[i] = netlink.Message{Header: netlink.Header{Type: up.typ, Flags: netlink.Request}, Data: up.data}
			}
			msgs[perFlush-1].Header.Flags |= netlink.Acknowledge
			sent, err := c.SendMessages(msgs)
			if err != nil {
				b.Fatal(err)
			}
			last := sent[perFlush-1].Header.Sequence
			for done := false; !done; {
				ms, err := c.Receive()
				if err != nil {
					b.Fatal(err)
				}
				for _, m := range ms {
					if m.Header.Type == netlink.Error && m.Header.Sequence == last {
						if len(m.Data) >= 4 && nlenc.Int32(m.Data[:4]) != 0 {
							b.Fatal(syscall.Errno(-nlenc.Int32(m.Data[:4])))
						}
						done = true
					}
				}
			}
		}
	})
}

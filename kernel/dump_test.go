package kernel

import (
	"errors"
	"syscall"
	"testing"

	"github.com/jsimonetti/rtnetlink/v2"
	"github.com/mdlayher/netlink"
	"github.com/mdlayher/netlink/nlenc"
	"golang.org/x/sys/unix"
)

// scriptedDump is a Batch whose dumps are answered by answer: for each dump
// request, the datagrams (each a list of messages) of one attempt. It counts
// the attempts.
type scriptedDump struct {
	b        *Batch
	attempts int
	seq      uint32
	queue    [][]netlink.Message
}

func newScriptedDump(t *testing.T, answer func(attempt int, seq uint32) [][]netlink.Message) *scriptedDump {
	s := &scriptedDump{}
	s.b = &Batch{script: &dumpScript{wrote: func(out []byte) {
		req, err := splitMessages(out)
		if err != nil || len(req) != 1 || req[0].Header.Flags&netlink.Dump == 0 {
			t.Fatalf("dump request %v (%v), want one dump", req, err)
		}
		s.seq = req[0].Header.Sequence
		s.queue = answer(s.attempts, s.seq)
		s.attempts++
	}, read: func() ([]netlink.Message, error) {
		if len(s.queue) == 0 {
			return nil, errors.New("read past the scripted answer")
		}
		dg := s.queue[0]
		s.queue = s.queue[1:]
		return dg, nil
	}}}
	return s
}

// linkMsg is an RTM_NEWLINK answer of a dump for the link index/name.
func linkMsg(seq uint32, index int, name string, flags netlink.HeaderFlags) netlink.Message {
	m := rtnetlink.LinkMessage{Index: uint32(index), Attributes: &rtnetlink.LinkAttributes{Name: name}}
	data, err := m.MarshalBinary()
	if err != nil {
		panic(err)
	}
	return netlink.Message{Header: netlink.Header{Type: unix.RTM_NEWLINK, Flags: netlink.Multi | flags, Sequence: seq}, Data: data}
}

func doneMsg(seq uint32, flags netlink.HeaderFlags, errno int32) netlink.Message {
	return netlink.Message{Header: netlink.Header{Type: netlink.Done, Flags: netlink.Multi | flags, Sequence: seq}, Data: nlenc.Int32Bytes(-errno)}
}

func linkNames(t *testing.T, b *Batch) ([]string, error) {
	t.Helper()
	infos, err := b.Links()
	var names []string
	for _, li := range infos {
		names = append(names, li.Name)
	}
	return names, err
}

func TestDumpInterruptedIsRetriedWhole(t *testing.T) {
	for _, tc := range []struct {
		name string
		// first is the interrupted attempt.
		first func(seq uint32) [][]netlink.Message
	}{
		{"flag on a link message", func(seq uint32) [][]netlink.Message {
			return [][]netlink.Message{
				{linkMsg(seq, 1, "lo", 0), linkMsg(seq, 2, "a0", 0)},
				{linkMsg(seq, 4, "c0", netlink.DumpInterrupted), doneMsg(seq, netlink.DumpInterrupted, 0)},
			}
		}},
		{"flag on the closing done alone", func(seq uint32) [][]netlink.Message {
			return [][]netlink.Message{
				{linkMsg(seq, 1, "lo", 0), linkMsg(seq, 2, "a0", 0)},
				{doneMsg(seq, netlink.DumpInterrupted, 0)},
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newScriptedDump(t, func(attempt int, seq uint32) [][]netlink.Message {
				if attempt == 0 {
					return tc.first(seq)
				}
				return [][]netlink.Message{
					// A late answer to an earlier request is not part
					// of this dump.
					{linkMsg(seq-1, 9, "stale", 0), linkMsg(seq, 1, "lo", 0), linkMsg(seq, 2, "a0", 0)},
					{linkMsg(seq, 3, "b0", 0), doneMsg(seq, 0, 0)},
				}
			})
			names, err := linkNames(t, s.b)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := len(names), 3; got != want || names[0] != "lo" || names[1] != "a0" || names[2] != "b0" {
				t.Errorf("links %q, want [lo a0 b0] from the second, complete dump", names)
			}
			if s.attempts != 2 {
				t.Errorf("%d attempts, want 2", s.attempts)
			}
		})
	}
}

func TestDumpAlwaysInterruptedFailsWithoutPartialResult(t *testing.T) {
	s := newScriptedDump(t, func(_ int, seq uint32) [][]netlink.Message {
		return [][]netlink.Message{{linkMsg(seq, 1, "lo", netlink.DumpInterrupted), doneMsg(seq, netlink.DumpInterrupted, 0)}}
	})
	names, err := linkNames(t, s.b)
	if !errors.Is(err, ErrDumpInterrupted) || !errors.Is(err, unix.EINTR) {
		t.Fatalf("error %v, want one matching ErrDumpInterrupted and EINTR", err)
	}
	var oe *OpError
	if !errors.As(err, &oe) || oe.Op != "list links" {
		t.Errorf("error %#v, want an *OpError of list links", err)
	}
	if names != nil {
		t.Errorf("partial result %q returned", names)
	}
	if s.attempts != maxDumpRetries+1 {
		t.Errorf("%d attempts, want %d", s.attempts, maxDumpRetries+1)
	}
}

func TestDumpErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		answer func(seq uint32) []netlink.Message
	}{
		{"error message", func(seq uint32) []netlink.Message {
			return []netlink.Message{{Header: netlink.Header{Type: netlink.Error, Sequence: seq}, Data: nlenc.Int32Bytes(-int32(unix.EPERM))}}
		}},
		{"done with an error code", func(seq uint32) []netlink.Message {
			return []netlink.Message{linkMsg(seq, 1, "lo", 0), doneMsg(seq, 0, int32(unix.EPERM))}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newScriptedDump(t, func(_ int, seq uint32) [][]netlink.Message { return [][]netlink.Message{tc.answer(seq)} })
			names, err := linkNames(t, s.b)
			if !errors.Is(err, syscall.EPERM) || names != nil {
				t.Errorf("links %q, error %v; want no links and EPERM", names, err)
			}
		})
	}
}

// TestSplitMessages reads a datagram as the kernel writes it: messages
// back to back, each padded to four bytes.
func TestSplitMessages(t *testing.T) {
	var dg []byte
	want := []netlink.Message{
		{Header: netlink.Header{Type: unix.RTM_NEWLINK, Flags: netlink.Multi, Sequence: 7, PID: 3}, Data: []byte{1, 2, 3, 4, 5}},
		{Header: netlink.Header{Type: netlink.Done, Flags: netlink.Multi | netlink.DumpInterrupted, Sequence: 7, PID: 3}, Data: []byte{0, 0, 0, 0}},
	}
	for _, m := range want {
		// nlmsg_len counts the header and data, not the padding.
		h := m.Header
		dg = append(dg, nlenc.Uint32Bytes(uint32(unix.NLMSG_HDRLEN+len(m.Data)))...)
		dg = append(dg, nlenc.Uint16Bytes(uint16(h.Type))...)
		dg = append(dg, nlenc.Uint16Bytes(uint16(h.Flags))...)
		dg = append(dg, nlenc.Uint32Bytes(h.Sequence)...)
		dg = append(dg, nlenc.Uint32Bytes(h.PID)...)
		dg = append(dg, m.Data...)
		for len(dg)%4 != 0 {
			dg = append(dg, 0)
		}
	}
	got, err := splitMessages(dg)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("%d messages, want %d", len(got), len(want))
	}
	for i := range want {
		w := want[i]
		w.Header.Length = uint32(unix.NLMSG_HDRLEN + len(w.Data))
		if got[i].Header != w.Header || string(got[i].Data) != string(w.Data) {
			t.Errorf("message %d: %+v, want %+v", i, got[i], w)
		}
	}
	if _, err := splitMessages(dg[:len(dg)-2]); err == nil {
		t.Error("a cut datagram was read without an error")
	}
}

// TestUnreadAttrs reads the attributes rtnetlink/v2 does not, nested as
// the kernel nests them, and their absence.
func TestUnreadAttrs(t *testing.T) {
	ae := netlink.NewAttributeEncoder()
	ae.String(unix.IFLA_IFNAME, "eth0")
	ae.Nested(unix.IFLA_AF_SPEC, func(ae *netlink.AttributeEncoder) error {
		ae.Nested(unix.AF_INET, func(ae *netlink.AttributeEncoder) error {
			ae.Uint8(unix.IFLA_INET6_ADDR_GEN_MODE, 9) // not IPv6's: ignored
			return nil
		})
		ae.Nested(unix.AF_INET6, func(ae *netlink.AttributeEncoder) error {
			ae.Uint32(unix.IFLA_INET6_FLAGS, 0)
			ae.Uint8(unix.IFLA_INET6_ADDR_GEN_MODE, AddrGenModeNone)
			return nil
		})
		return nil
	})
	ae.Int32(unix.IFLA_LINK_NETNSID, 7)
	b, err := ae.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if id, mode := unreadAttrs(b); id != 7 || mode != AddrGenModeNone {
		t.Errorf("netnsid %d, mode %d; want 7, %d", id, mode, AddrGenModeNone)
	}
	if id, mode := unreadAttrs(b[:8]); id != -1 || mode != -1 {
		t.Errorf("without them: netnsid %d, mode %d; want -1, -1", id, mode)
	}
	if id, mode := unreadAttrs(b[:len(b)-3]); id != -1 || mode != AddrGenModeNone {
		t.Errorf("cut short: netnsid %d, mode %d; want -1, %d", id, mode, AddrGenModeNone)
	}
}

package delayer

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nsnet/nsnet/fault"
)

// These run without a kernel: the hold, the messages, and the loop's
// decisions written into the send buffer.

func TestHoldReleasesInDueOrder(t *testing.T) {
	var h hold
	r := rand.New(rand.NewPCG(1, 2))
	var want []int64
	due := int64(0)
	for i := range 5000 {
		// Mostly in order (a fixed delay), some not (jitter).
		inOrder := r.IntN(4) > 0
		if inOrder {
			due += int64(r.IntN(100))
		} else {
			due = int64(r.IntN(500_000))
		}
		h.push(slot{due: due, id: uint32(i)}, inOrder)
		want = append(want, due)
	}
	if h.len() != 5000 {
		t.Fatalf("holds %d", h.len())
	}
	last := int64(-1)
	n := 0
	for limit := int64(0); h.len() > 0; limit += 1000 {
		for {
			s, ok := h.ringDue(limit)
			if !ok {
				s, ok = h.heapDue(limit)
			}
			if !ok {
				break
			}
			if s.due > limit {
				t.Fatalf("released %d before its time (limit %d)", s.due, limit)
			}
			if s.due < last-1000 {
				t.Fatalf("released %d after %d", s.due, last)
			}
			last = max(last, s.due)
			n++
		}
		if next, ok := h.next(); ok && next <= limit {
			t.Fatalf("left %d due by %d", next, limit)
		}
	}
	if n != len(want) {
		t.Fatalf("released %d of %d", n, len(want))
	}
}

// fakeQueue is a queue with a socket that is never sent on: the verdicts
// stay in its buffer.
func fakeQueue(t *testing.T, words string) *queue {
	t.Helper()
	spec, err := fault.ParseWords(strings.Fields(words))
	if err != nil {
		t.Fatal(err)
	}
	q := &queue{s: &sock{fd: -1, procs: -1, num: 7, out: make([]byte, 0, flushAt+packetSlot)}}
	q.dec.Store(newDecider(spec, 1))
	q.sent = queueLen(spec)
	return q
}

// packetMsg is the body of a packet message for id, as the kernel sends
// it (metadata only).
func packetMsg(id uint32) []byte {
	b := []byte{0, 0, 0, 7} // nfgenmsg: AF_UNSPEC, v0, queue 7
	b = binary.NativeEndian.AppendUint16(b, 11)
	b = binary.NativeEndian.AppendUint16(b, attrPacketHdr)
	b = binary.BigEndian.AppendUint32(b, id)
	b = append(b, 0x08, 0x00, 3, 0) // ETH_P_IP, NF_INET_POST_ROUTING, pad
	b = binary.NativeEndian.AppendUint16(b, 8)
	b = binary.NativeEndian.AppendUint16(b, 6) // NFQA_IFINDEX_OUTDEV
	return binary.BigEndian.AppendUint32(b, 2)
}

// verdicts reads the send buffer back as lines: "accept 5", "accept<=9",
// "drop 3".
func verdicts(t *testing.T, out []byte) []string {
	t.Helper()
	var lines []string
	for b := out; len(b) > 0; {
		typ, _, body, rest, ok := next(b)
		if !ok {
			t.Fatalf("malformed buffer at %x", b)
		}
		b = rest
		if len(body) < 16 || binary.BigEndian.Uint16(body[2:]) != 7 || binary.NativeEndian.Uint16(body[6:]) != attrVerdictHdr {
			t.Fatalf("not a verdict for queue 7: %x", body)
		}
		v := map[uint32]string{0: "drop", 1: "accept"}[binary.BigEndian.Uint32(body[8:])]
		sep := " "
		if typ == msgVerdictBatch {
			sep = "<="
		} else if typ != msgVerdict {
			t.Fatalf("message type %#x", typ)
		}
		line := fmt.Sprintf("%s%s%d", v, sep, binary.BigEndian.Uint32(body[12:]))
		if len(body) > 16 {
			line += " altered"
		}
		lines = append(lines, line)
	}
	return lines
}

func TestVerdictBytes(t *testing.T) {
	q := fakeQueue(t, "delay 1ms")
	q.s.verdict(0x01020304, 1, false, nil)
	q.s.verdict(9, 0, true, nil)
	// nlmsghdr (len 32, type 0x301 or 0x303, NLM_F_REQUEST), nfgenmsg
	// (queue 7, big endian), NFQA_VERDICT_HDR {verdict, id} big endian.
	want := "20000000010301000000000000000000" + "00000007" + "0c000200" + "00000001" + "01020304" +
		"20000000030301000000000000000000" + "00000007" + "0c000200" + "00000000" + "00000009"
	if got := hex.EncodeToString(q.s.out); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestConfigClearsFailOpen(t *testing.T) {
	q := fakeQueue(t, "delay 1ms")
	q.s.config(true, false, 3750, true)
	typ, _, body, rest, ok := next(q.s.out)
	if !ok || len(rest) != 0 || typ != msgConfig {
		t.Fatalf("%x", q.s.out)
	}
	attrs := map[uint16][]byte{}
	for b := body[nfgenLen:]; len(b) >= 4; {
		l := int(binary.NativeEndian.Uint16(b))
		attrs[binary.NativeEndian.Uint16(b[2:])] = b[4:l]
		b = b[(l+3)&^3:]
	}
	if c := attrs[cfgCmd]; len(c) < 1 || c[0] != cmdBind {
		t.Errorf("no bind: %x", c)
	}
	if m := attrs[cfgMaxlen]; binary.BigEndian.Uint32(m) != 3750 {
		t.Errorf("maxlen %x", m)
	}
	flags, mask := binary.BigEndian.Uint32(attrs[cfgFlags]), binary.BigEndian.Uint32(attrs[cfgMask])
	if mask&1 == 0 || flags&1 != 0 {
		t.Errorf("fail-open not cleared: flags %#x mask %#x", flags, mask)
	}
}

func TestQueueLen(t *testing.T) {
	for words, want := range map[string]uint32{
		"delay 20ms 5ms": 3750, // as netem's limit for the same fault
		"delay 1ms":      1024,
		"delay 10s":      1 << 17,
	} {
		spec, err := fault.ParseWords(strings.Fields(words))
		if err != nil {
			t.Fatal(err)
		}
		if got := queueLen(spec); got != want {
			t.Errorf("%s: %d, want %d", words, got, want)
		}
	}
}

// A fixed delay releases a due run with one batch verdict; loss drops go
// before it; a gap in the ids is overload.
func TestReleaseFixedDelayBatches(t *testing.T) {
	q := fakeQueue(t, "delay 10ms")
	d := q.dec.Load()
	for id := uint32(1); id <= 5; id++ {
		q.onPacket(packetMsg(id), d, int64(id)*int64(time.Millisecond))
	}
	q.onPacket(packetMsg(8), d, 6*int64(time.Millisecond))
	if got := q.c.overload.Load(); got != 2 {
		t.Errorf("overload %d, want 2 (ids 6 and 7 missing)", got)
	}
	if len(q.s.out) != 0 {
		t.Fatalf("verdicts before any is due: %v", verdicts(t, q.s.out))
	}
	q.release(int64(13 * time.Millisecond))
	q.release(int64(20 * time.Millisecond))
	got := strings.Join(verdicts(t, q.s.out), ", ")
	if want := "accept<=3, accept<=8"; got != want {
		t.Errorf("verdicts %s, want %s", got, want)
	}
	if q.hold.len() != 0 || q.c.delayed.Load() != 6 {
		t.Errorf("held %d, delayed %d", q.hold.len(), q.c.delayed.Load())
	}
}

func TestReleaseJitterOneByOne(t *testing.T) {
	q := fakeQueue(t, "delay 10ms 5ms")
	d := q.dec.Load()
	for id := uint32(1); id <= 50; id++ {
		q.onPacket(packetMsg(id), d, 0)
	}
	q.release(int64(16 * time.Millisecond))
	v := verdicts(t, q.s.out)
	if len(v) != 50 {
		t.Fatalf("%d verdicts: %v", len(v), v)
	}
	for _, l := range v {
		if !strings.HasPrefix(l, "accept ") {
			t.Fatalf("%s: a batch would release packets not due", l)
		}
	}
}

func TestLossDropsBeforeTheBatch(t *testing.T) {
	q := fakeQueue(t, "delay 10ms loss 50%")
	d := q.dec.Load()
	for id := uint32(1); id <= 40; id++ {
		q.onPacket(packetMsg(id), d, 0)
	}
	q.release(int64(10 * time.Millisecond))
	v := verdicts(t, q.s.out)
	last := v[len(v)-1]
	for _, l := range v[:len(v)-1] {
		if !strings.HasPrefix(l, "drop ") {
			t.Fatalf("%v: a drop after the batch", v)
		}
	}
	if !strings.HasPrefix(last, "accept") || q.c.dropped.Load()+q.c.delayed.Load() != 40 || q.c.dropped.Load() == 0 {
		t.Errorf("%v; dropped %d delayed %d", v, q.c.dropped.Load(), q.c.delayed.Load())
	}
}

func TestReorderPassesAtOnce(t *testing.T) {
	q := fakeQueue(t, "delay 10ms reorder 25%")
	d := q.dec.Load()
	// Fewer than the hold takes (1,500 for 10 ms, and a margin).
	for id := uint32(1); id <= 2000; id++ {
		q.onPacket(packetMsg(id), d, 0)
	}
	passed := q.c.passed.Load()
	if len(verdicts(t, q.s.out)) != int(passed) {
		t.Fatalf("%d verdicts for %d passed", len(verdicts(t, q.s.out)), passed)
	}
	// 2,000 draws of 25%: sd 1 point.
	if share := float64(passed) / 2000; share < .21 || share > .29 {
		t.Errorf("%.1f%% passed at once, want 25%%", 100*share)
	}
}

// The loop allocates nothing per packet once its hold has grown.
func TestNoAllocationPerPacket(t *testing.T) {
	for _, words := range []string{"delay 10ms", "delay 10ms 5ms", "delay 10ms reorder 25% loss 1%"} {
		q := fakeQueue(t, words)
		d := q.dec.Load()
		msg := packetMsg(1)
		id, now := uint32(1), int64(0)
		turn := func() {
			for range 64 {
				binary.BigEndian.PutUint32(msg[8:], id)
				q.onPacket(msg, d, now)
				id++
				now += int64(10 * time.Microsecond)
			}
			q.release(now)
			q.s.out = q.s.out[:0]
		}
		for range 100 {
			turn()
		}
		if n := testing.AllocsPerRun(200, turn); n != 0 {
			t.Errorf("%s: %.1f allocations per 64 packets", words, n)
		}
	}
}

func TestQueueDrops(t *testing.T) {
	listing := "    1 -4123      0 2 65531     0     0        0  1\n" +
		"    7  1234    250 1     0    17     3    90210  1\n"
	full, user, ok := queueDrops(listing, 7)
	if !ok || full != 17 || user != 3 {
		t.Errorf("queue 7: %d %d %v", full, user, ok)
	}
	if _, _, ok := queueDrops(listing, 70); ok {
		t.Error("queue 70 found")
	}
}

// BenchmarkWakeup is the anchor of the delayer's precision: how late this
// machine wakes a thread like the loop's (ppoll, 1 ns timer slack) from a
// 1 ms sleep, now. A released packet cannot be more on time than this.
func BenchmarkWakeup(b *testing.B) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	_ = unix.Prctl(unix.PR_SET_TIMERSLACK, 1, 0, 0, 0)
	defer unix.Prctl(unix.PR_SET_TIMERSLACK, 50_000, 0, 0, 0)
	late := make([]time.Duration, 0, b.N)
	for range b.N {
		start := time.Now()
		ts := unix.NsecToTimespec(int64(time.Millisecond))
		_, _ = unix.Ppoll(nil, &ts, nil)
		late = append(late, time.Since(start)-time.Millisecond)
	}
	slices.Sort(late)
	us := func(q float64) float64 { return float64(late[min(len(late)-1, int(q*float64(len(late))))]) / 1e3 }
	b.ReportMetric(us(.5), "p50_late_us")
	b.ReportMetric(us(.99), "p99_late_us")
	b.ReportMetric(us(1), "max_late_us")
}

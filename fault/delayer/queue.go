package delayer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/florianl/go-nfqueue/v2"
	"golang.org/x/sys/unix"

	"github.com/nsnet/nsnet/fault"
	"github.com/nsnet/nsnet/netns"
)

// Counters are what one queue did, since it started.
type Counters struct {
	Received  uint64 `json:"received"`
	Delayed   uint64 `json:"delayed"`   // released after waiting
	Passed    uint64 `json:"passed"`    // released at once (reorder, no delay)
	Dropped   uint64 `json:"dropped"`   // lost on purpose (loss)
	Corrupted uint64 `json:"corrupted"` // sent with a flipped bit
	// Overload is packets dropped because the delayer could not keep
	// up: the kernel's queue was full, or its socket was (the kernel
	// could not hand the packet over), or the hold was.
	Overload uint64 `json:"overload"`
	Late     uint64 `json:"late"` // released more than a millisecond after their time
	Held     int    `json:"held"` // waiting now
}

// A queue is one NFQUEUE in one namespace, served by one loop on an OS
// thread of its own, like a scheduler: packets wait in one time-ordered
// hold, and the loop sleeps until the earliest is due (or a packet
// arrives), then reads what arrived, decides each, releases what is due and
// sends all the verdicts of that turn in one system call.
//
// Go's own timers could not do this: the runtime sleeps in epoll_wait,
// whose timeout is in milliseconds, so a timer fires up to a millisecond
// late (measured: every 20 ms delay came out 20.4-21 ms), and a timer or
// goroutine per packet is scheduling work per packet. The loop sleeps in
// ppoll, whose timeout is in nanoseconds, on a thread whose timer slack is
// 1 ns instead of 50 us.
type queue struct {
	name   string
	copies bool // the kernel sends whole packets (for corruption)
	s      *sock
	wake   int // eventfd: setSpec and close wake the loop
	stop   atomic.Bool
	done   chan struct{}
	epoch  time.Time
	dec    atomic.Pointer[decider]
	maxlen atomic.Uint32 // the kernel queue's length wanted
	sent   uint32        // and the one it has (loop only)

	// The loop's own.
	hold     hold
	nextID   uint32
	payloads [][]byte // altered packets waiting, by slot.alt
	free     []int32
	fds      [2]unix.PollFd
	ts       unix.Timespec
	rt       bool  // the thread runs SCHED_FIFO
	noRT     bool  // and may not
	window   int64 // start of the current busy window
	busy     int64 // time spent outside ppoll in it

	c struct {
		received, delayed, passed, dropped, corrupted, overload, late atomic.Uint64
		held                                                          atomic.Int64
	}
}

const (
	// lateAfter is how late a release may be before it counts as late.
	lateAfter = time.Millisecond
	// releaseEarly: a packet due within this of now leaves with those due
	// now, so that one wake-up serves several (at 40,000 packets/s one is
	// due every 25 us) at a cost of at most this much early.
	releaseEarly = 20 * time.Microsecond
	// designRate is the packet rate the kernel's queue is sized for, as
	// netem's limit is (1 Gbit/s of 1,250-byte packets).
	designRate = 100_000
	// rounds bounds the reads of one turn, so that a flood does not hold
	// back releases that are due.
	rounds = 8
	// bindWait bounds how long binding waits for the kernel's answer.
	bindWait = 3 * time.Second
)

// queueLen is the kernel queue's length for s: what designRate brings in
// over the longest hold, 1.5 times over, at least the kernel's default.
// Beyond it the kernel drops (counted as overload): never passes.
func queueLen(s fault.Spec) uint32 {
	longest := s.Delay + s.Jitter
	if s.Distribution == fault.Normal {
		longest = s.Delay + 3*s.Jitter
	}
	n := 1.5 * designRate * longest.Seconds()
	return uint32(math.Min(1<<17, math.Max(1024, math.Ceil(n))))
}

// openQueue binds queue num in ns and starts giving verdicts by spec.
func openQueue(name string, ns *netns.NS, num uint16, spec fault.Spec, seed uint64) (*queue, error) {
	copies := spec.Corrupt != 0
	s, err := openSock(ns, num, copies)
	if err != nil {
		return nil, fmt.Errorf("open queue %d for %s: %w", num, name, err)
	}
	wake, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		s.close()
		return nil, fmt.Errorf("open queue %d for %s: %w", num, name, err)
	}
	q := &queue{name: name, copies: copies, s: s, wake: wake, done: make(chan struct{}), epoch: time.Now()}
	q.dec.Store(newDecider(spec, seed))
	q.maxlen.Store(queueLen(spec))
	q.sent = q.maxlen.Load()
	q.fds = [2]unix.PollFd{{Fd: int32(s.fd), Events: unix.POLLIN}, {Fd: int32(wake), Events: unix.POLLIN}}
	bound := make(chan error, 1)
	go q.run(bound)
	if err := <-bound; err != nil {
		<-q.done
		q.s.close()
		unix.Close(q.wake)
		return nil, fmt.Errorf("bind queue %d for %s: %w", num, name, err)
	}
	return q, nil
}

func (q *queue) run(bound chan<- error) {
	// Never unlocked: the thread's timer slack and priority are the
	// loop's, and the thread ends with it.
	runtime.LockOSThread()
	defer close(q.done)
	// Wake when asked, not up to 50 us later.
	_ = unix.Prctl(unix.PR_SET_TIMERSLACK, 1, 0, 0, 0)
	q.rt = realtime(true)
	if !q.rt {
		// An ordinary thread, then, but with a short slice (0.1 ms
		// instead of ~3): the scheduler (EEVDF, Linux 6.6+) gives a
		// waking task with a shorter slice an earlier deadline, which
		// needs no privilege. Measured at load 25: a third fewer late
		// releases. Older kernels refuse or ignore it.
		a := unix.SchedAttr{Size: unix.SizeofSchedAttr, Flags: unix.SCHED_FLAG_RESET_ON_FORK, Runtime: 100_000}
		_ = unix.SchedSetAttr(0, &a, 0)
		q.noRT = true
	}
	err := q.bind()
	bound <- err
	if err == nil {
		q.loop()
	}
}

// bind binds the queue and waits for the kernel's answer; packets that
// arrive meanwhile are served as in the loop.
func (q *queue) bind() error {
	q.s.config(true, q.copies, q.sent, true)
	want := q.s.seq
	q.s.flush()
	if q.s.sendErrs > 0 {
		return errors.New("send the queue's config: refused")
	}
	deadline := time.Now().Add(bindWait)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return fmt.Errorf("no answer from the kernel in %v", bindWait)
		}
		q.ts = unix.NsecToTimespec(int64(left))
		if _, err := unix.Ppoll(q.fds[:1], &q.ts, nil); err != nil && !errors.Is(err, unix.EINTR) {
			return err
		}
		n, err := q.s.recv()
		if err != nil {
			return err
		}
		d, now := q.dec.Load(), q.now()
		for i := 0; i < n; i++ {
			for b := q.s.message(i); ; {
				typ, seq, body, rest, ok := next(b)
				if !ok {
					break
				}
				b = rest
				switch {
				case typ == unix.NLMSG_ERROR && seq == want:
					if err := ackErr(body); err != nil {
						return bindErr(q.s.num, err)
					}
					q.s.flush()
					return nil
				case typ == msgPacket:
					q.onPacket(body, d, now)
				}
			}
		}
	}
}

// next splits the first netlink message off b.
func next(b []byte) (typ uint16, seq uint32, body, rest []byte, ok bool) {
	if len(b) < nlHdrLen {
		return 0, 0, nil, nil, false
	}
	l := int(binary.NativeEndian.Uint32(b))
	if l < nlHdrLen || l > len(b) {
		return 0, 0, nil, nil, false
	}
	return binary.NativeEndian.Uint16(b[4:]), binary.NativeEndian.Uint32(b[8:]), b[nlHdrLen:l], b[min(len(b), (l+3)&^3):], true
}

func (q *queue) now() int64 { return int64(time.Since(q.epoch)) }

func (q *queue) loop() {
	readable := true
	start := q.now()
	q.window = start
	for !q.stop.Load() {
		if readable {
			q.receive()
		}
		q.release(q.now())
		if m := q.maxlen.Load(); m != q.sent {
			q.sent = m
			q.s.config(false, q.copies, m, false)
		}
		q.s.flush()
		q.c.held.Store(int64(q.hold.len()))
		var timeout *unix.Timespec
		if due, ok := q.hold.next(); ok {
			wait := due - int64(releaseEarly) - q.now()
			if wait <= 0 {
				readable = false
				continue
			}
			q.ts = unix.NsecToTimespec(wait)
			timeout = &q.ts
		}
		q.fds[0].Revents, q.fds[1].Revents = 0, 0
		q.account(start)
		if _, err := unix.Ppoll(q.fds[:], timeout, nil); err != nil && !errors.Is(err, unix.EINTR) {
			// Not expected; do not spin on it.
			time.Sleep(time.Millisecond)
		}
		start = q.now()
		readable = q.fds[0].Revents != 0
		if q.fds[1].Revents != 0 {
			var b [8]byte
			_, _ = unix.Read(q.wake, b[:])
		}
	}
}

// A real-time thread that cannot keep up would take a CPU from everything
// else; the loop gives up its priority for a window after one it spent
// mostly busy, and takes it back after one it did not.
const (
	busyWindow = 100 * time.Millisecond
	busyMost   = busyWindow / 2
)

// account adds the time since start to the busy window, and at the end of
// a window sets the thread's priority by it.
func (q *queue) account(start int64) {
	now := q.now()
	q.busy += now - start
	if now-q.window < int64(busyWindow) {
		return
	}
	busy := q.busy > int64(busyMost)
	if busy == q.rt && !q.noRT {
		q.rt = realtime(!busy)
	}
	q.window, q.busy = now, 0
}

// realtime puts the calling thread in SCHED_FIFO at the lowest priority,
// or back to SCHED_OTHER, and reports whether it is real-time now. Under
// load a thread of the ordinary class wakes late (measured on this 2-core
// machine at load 5: a 1 ms sleep p99 4 ms late, max 50 ms; at priority 1,
// p99 0.11 ms, max 1.8 ms), which is a late packet; netem's timer runs in
// the kernel, before any task. Only where the process may (CAP_SYS_NICE, as
// root outside a user namespace, or RLIMIT_RTPRIO): elsewhere the call
// fails and the thread stays as it was.
func realtime(on bool) bool {
	a := unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: 0} // SCHED_OTHER
	if on {
		a.Policy, a.Priority = unix.SCHED_FIFO, 1
	}
	// Reset on fork: a process started from this thread is not real-time.
	a.Flags = unix.SCHED_FLAG_RESET_ON_FORK
	return on && unix.SchedSetAttr(0, &a, 0) == nil
}

// receive reads and decides what packets are waiting.
func (q *queue) receive() {
	for r := 0; r < rounds; r++ {
		n, err := q.s.recv()
		if err != nil || n == 0 {
			return
		}
		d, now := q.dec.Load(), q.now()
		for i := 0; i < n; i++ {
			for b := q.s.message(i); ; {
				typ, _, body, rest, ok := next(b)
				if !ok {
					break
				}
				b = rest
				if typ == msgPacket {
					q.onPacket(body, d, now)
				}
				// Anything else is the error of a verdict for a
				// packet already gone (its queue flushed): nothing
				// to do.
			}
		}
		if n < len(q.s.msgs) {
			return
		}
	}
}

// onPacket decides a packet's fate as it arrives, at now.
func (q *queue) onPacket(body []byte, d *decider, now int64) {
	id, payload, ok := packet(body)
	if !ok {
		return
	}
	// Ids are consecutive per queue: a gap is packets the kernel could not
	// hand over (the socket was full), which it dropped.
	if q.nextID != 0 && id != q.nextID {
		if gap := id - q.nextID; gap < 1<<31 {
			q.c.overload.Add(uint64(gap))
		}
	}
	q.nextID = id + 1
	q.c.received.Add(1)
	if d.lose() {
		q.c.dropped.Add(1)
		q.s.verdict(id, nfqueue.NfDrop, false, nil)
		return
	}
	var altered []byte
	if d.spec.Corrupt != 0 && payload != nil && d.corrupt(payload) {
		q.c.corrupted.Add(1)
		altered = payload
	}
	wait := d.delay()
	if wait == 0 {
		q.c.passed.Add(1)
		q.s.verdict(id, nfqueue.NfAccept, false, altered)
		return
	}
	if q.hold.len() >= int(q.sent)+1024 {
		// Cannot happen while the kernel keeps to its queue's length;
		// if it does, fail closed.
		q.c.overload.Add(1)
		q.s.verdict(id, nfqueue.NfDrop, false, nil)
		return
	}
	s := slot{due: now + int64(wait), id: id, alt: -1}
	if altered != nil {
		s.alt = q.keep(altered)
	}
	q.hold.push(s, d.ordered())
}

// keep copies an altered packet for its release.
func (q *queue) keep(p []byte) int32 {
	var i int32
	if n := len(q.free); n > 0 {
		i, q.free = q.free[n-1], q.free[:n-1]
	} else {
		q.payloads = append(q.payloads, nil)
		i = int32(len(q.payloads) - 1)
	}
	q.payloads[i] = append(q.payloads[i][:0], p...)
	return i
}

// release gives every packet due by now (and releaseEarly) its verdict.
func (q *queue) release(now int64) {
	limit := now + int64(releaseEarly)
	// The ring is in id order. While nothing else is held, its due run is
	// every packet the kernel still queues up to the run's last id (the
	// rest already have their verdicts, earlier in the same buffer or
	// sent), so one batch verdict releases them all.
	batch := len(q.hold.heap) == 0
	plain, last := 0, uint32(0)
	for {
		s, ok := q.hold.ringDue(limit)
		if !ok {
			break
		}
		q.released(now, s, batch)
		if s.alt < 0 && batch {
			plain, last = plain+1, s.id
		}
	}
	if plain > 0 {
		q.s.verdict(last, nfqueue.NfAccept, plain > 1, nil)
	}
	for {
		s, ok := q.hold.heapDue(limit)
		if !ok {
			break
		}
		q.released(now, s, false)
	}
}

// released counts s as released and sends its verdict, unless it is plain
// and left to a batch.
func (q *queue) released(now int64, s slot, batch bool) {
	q.c.delayed.Add(1)
	if now-s.due > int64(lateAfter) {
		q.c.late.Add(1)
	}
	switch {
	case s.alt >= 0:
		q.s.verdict(s.id, nfqueue.NfAccept, false, q.payloads[s.alt])
		q.free = append(q.free, s.alt)
	case !batch:
		q.s.verdict(s.id, nfqueue.NfAccept, false, nil)
	}
}

// setSpec changes what the queue does from the next packet on.
func (q *queue) setSpec(s fault.Spec, seed uint64) {
	q.dec.Store(newDecider(s, seed))
	q.maxlen.Store(queueLen(s))
	q.poke()
}

func (q *queue) poke() {
	var b [8]byte
	binary.NativeEndian.PutUint64(b[:], 1)
	_, _ = unix.Write(q.wake, b[:])
}

func (q *queue) counters() Counters {
	c := Counters{
		Received: q.c.received.Load(), Delayed: q.c.delayed.Load(), Passed: q.c.passed.Load(),
		Dropped: q.c.dropped.Load(), Corrupted: q.c.corrupted.Load(), Overload: q.c.overload.Load(),
		Late: q.c.late.Load(), Held: int(q.c.held.Load()),
	}
	// Packets the kernel dropped because the queue was full never reach
	// the delayer; its own counter has them.
	if full, _, ok := q.s.kernelDrops(); ok {
		c.Overload += full
	}
	return c
}

// close stops the loop and closes the socket, which makes the kernel drop
// every packet still held: never pass it.
func (q *queue) close() {
	q.stop.Store(true)
	q.poke()
	<-q.done
	q.s.close()
	unix.Close(q.wake)
}

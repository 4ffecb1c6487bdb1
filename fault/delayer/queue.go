package delayer

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/florianl/go-nfqueue/v2"
	"github.com/mdlayher/netlink"

	"github.com/nsnet/nsnet/fault"
)

// Counters are what one queue did, since it started.
type Counters struct {
	Received  uint64 `json:"received"`
	Delayed   uint64 `json:"delayed"`   // released after waiting
	Passed    uint64 `json:"passed"`    // released at once (reorder, no delay)
	Dropped   uint64 `json:"dropped"`   // lost on purpose (loss)
	Corrupted uint64 `json:"corrupted"` // sent with a flipped bit
	Overload  uint64 `json:"overload"`  // dropped because the delayer could not keep up
	Late      uint64 `json:"late"`      // released more than a millisecond after their time
	Held      int    `json:"held"`      // waiting now
}

// holdLimit bounds the packets one queue holds; beyond it a packet is an
// overload drop. At 40,000 packets/s it is a second's worth of delay.
const holdLimit = 1 << 16

// kernelQueueLen is the kernel's queue length for one queue: packets handed
// to the delayer but without a verdict yet.
const kernelQueueLen = holdLimit + 1024

type held struct {
	id      uint32
	due     time.Time
	altered []byte // a corrupted packet to send instead
}

// fifo holds packets that leave in order; heapq those that do not.
type heapq []held

func (h heapq) Len() int           { return len(h) }
func (h heapq) Less(i, j int) bool { return h[i].due.Before(h[j].due) }
func (h heapq) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *heapq) Push(x any)        { *h = append(*h, x.(held)) }
func (h *heapq) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// queue is one NFQUEUE in one namespace and the packets it holds.
type queue struct {
	name string
	nf   *nfqueue.Nfqueue
	// copies: the kernel sends whole packets (for corruption).
	copies bool

	mu      sync.Mutex
	dec     *decider
	fifo    []held // ordered delays: due times never decrease
	hq      heapq  // jittered delays
	nextID  uint32
	c       Counters
	wake    chan struct{}
	verdict func(id uint32, v int, altered []byte) error
	batch   func(id uint32, v int) error
}

// openQueue binds queue num in the namespace behind fd and starts giving
// verdicts by spec.
func openQueue(ctx context.Context, name string, fd int, num uint16, spec fault.Spec, seed uint64) (*queue, error) {
	// Only corruption needs the packet; without it the kernel sends just
	// the metadata, a fraction of the bytes for each packet.
	copyMode, copyLen := uint8(nfqueue.NfQnlCopyMeta), uint32(0)
	if spec.Corrupt != 0 {
		copyMode, copyLen = nfqueue.NfQnlCopyPacket, 0xffff
	}
	nf, err := nfqueue.Open(&nfqueue.Config{
		NetNS: fd, NfQueue: num, MaxPacketLen: copyLen, MaxQueueLen: kernelQueueLen,
		Copymode: copyMode, WriteTimeout: time.Second,
	})
	if err != nil {
		return nil, fmt.Errorf("open queue %d for %s: %w", num, name, err)
	}
	// A full socket loses the kernel's messages (and the kernel drops the
	// packets: they are counted as gaps in the ids); keep reading.
	_ = nf.SetOption(netlink.NoENOBUFS, true)
	_ = nf.Con.SetReadBuffer(16 << 20)
	q := &queue{name: name, nf: nf, copies: spec.Corrupt != 0, dec: newDecider(spec, seed), wake: make(chan struct{}, 1)}
	q.verdict = func(id uint32, v int, altered []byte) error {
		if altered != nil {
			return nf.SetVerdictWithOption(id, v, nfqueue.WithAlteredPacket(altered))
		}
		return nf.SetVerdict(id, v)
	}
	q.batch = nf.SetVerdictBatch
	err = nf.RegisterWithErrorFunc(ctx, q.onPacket, func(e error) int {
		if errors.Is(e, context.Canceled) || ctx.Err() != nil {
			return 1
		}
		return 0 // a socket overrun or a timeout: go on
	})
	if err != nil {
		nf.Close()
		return nil, fmt.Errorf("bind queue %d for %s: %w", num, name, err)
	}
	go q.release(ctx)
	return q, nil
}

// setSpec changes what the queue does from the next packet on.
func (q *queue) setSpec(s fault.Spec, seed uint64) {
	q.mu.Lock()
	q.dec = newDecider(s, seed)
	q.mu.Unlock()
}

func (q *queue) counters() Counters {
	q.mu.Lock()
	defer q.mu.Unlock()
	c := q.c
	c.Held = len(q.fifo) + len(q.hq)
	return c
}

// onPacket decides a packet's fate as it arrives.
func (q *queue) onPacket(a nfqueue.Attribute) int {
	if a.PacketID == nil {
		return 0
	}
	id := *a.PacketID
	now := time.Now()
	q.mu.Lock()
	defer q.mu.Unlock()
	// Ids are consecutive per queue: a gap is packets the kernel could not
	// hand over, which it dropped. Count them; a late drop verdict for any
	// still queued makes sure none is released by a later batch.
	if q.nextID != 0 && id > q.nextID && id-q.nextID < holdLimit {
		for m := q.nextID; m < id; m++ {
			_ = q.verdict(m, nfqueue.NfDrop, nil)
			q.c.Overload++
		}
	}
	q.nextID = id + 1
	q.c.Received++
	d := q.dec
	if d.lose() {
		q.c.Dropped++
		_ = q.verdict(id, nfqueue.NfDrop, nil)
		return 0
	}
	var altered []byte
	if d.spec.Corrupt != 0 && a.Payload != nil {
		p := append([]byte(nil), *a.Payload...)
		if d.corrupt(p) {
			altered = p
			q.c.Corrupted++
		}
	}
	wait := d.delay()
	if wait == 0 {
		q.c.Passed++
		_ = q.verdict(id, nfqueue.NfAccept, altered)
		return 0
	}
	if len(q.fifo)+len(q.hq) >= holdLimit {
		q.c.Overload++
		_ = q.verdict(id, nfqueue.NfDrop, nil)
		return 0
	}
	h := held{id: id, due: now.Add(wait), altered: altered}
	next, waiting := q.nextDue()
	if d.ordered() && (len(q.fifo) == 0 || !h.due.Before(q.fifo[len(q.fifo)-1].due)) {
		q.fifo = append(q.fifo, h)
	} else {
		heap.Push(&q.hq, h)
	}
	// The releaser sleeps until the earliest due packet; it only needs
	// waking when this one is due sooner (with a fixed delay: when nothing
	// else was held), not for every packet.
	if !waiting || h.due.Before(next) {
		select {
		case q.wake <- struct{}{}:
		default:
		}
	}
	return 0
}

// release gives the held packets their verdicts when they are due.
func (q *queue) release(ctx context.Context) {
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		q.mu.Lock()
		next, ok := q.nextDue()
		q.mu.Unlock()
		wait := time.Hour
		if ok {
			wait = time.Until(next)
		}
		if wait > 0 {
			t.Reset(wait)
			select {
			case <-ctx.Done():
				return
			case <-q.wake:
				if !t.Stop() {
					<-t.C
				}
				continue
			case <-t.C:
			}
		}
		q.mu.Lock()
		q.releaseDue(time.Now())
		q.mu.Unlock()
	}
}

func (q *queue) nextDue() (time.Time, bool) {
	var next time.Time
	ok := false
	if len(q.fifo) > 0 {
		next, ok = q.fifo[0].due, true
	}
	if len(q.hq) > 0 && (!ok || q.hq[0].due.Before(next)) {
		next, ok = q.hq[0].due, true
	}
	return next, ok
}

// lateAfter is how late a release may be before it counts as late.
const lateAfter = time.Millisecond

func (q *queue) releaseDue(now time.Time) {
	// In order: altered ones one by one, then one batch verdict for the
	// last due id, which the kernel applies to every earlier id still
	// queued (all of them due, since the fifo is in id order).
	n := 0
	for n < len(q.fifo) && !q.fifo[n].due.After(now) {
		h := q.fifo[n]
		if h.altered != nil {
			_ = q.verdict(h.id, nfqueue.NfAccept, h.altered)
		}
		if now.Sub(h.due) > lateAfter {
			q.c.Late++
		}
		n++
	}
	if n > 0 {
		if n > 1 && len(q.hq) == 0 {
			_ = q.batch(q.fifo[n-1].id, nfqueue.NfAccept)
		} else {
			// A batch would also release held packets of the heap.
			for _, h := range q.fifo[:n] {
				if h.altered == nil {
					_ = q.verdict(h.id, nfqueue.NfAccept, nil)
				}
			}
		}
		q.c.Delayed += uint64(n)
		// Drop the released from the front without copying the rest on
		// every release; the slice is compacted once it is mostly spent.
		q.fifo = q.fifo[n:]
		if cap(q.fifo) > 4*len(q.fifo)+1024 {
			q.fifo = append(make([]held, 0, 2*len(q.fifo)+64), q.fifo...)
		}
	}
	for len(q.hq) > 0 && !q.hq[0].due.After(now) {
		h := heap.Pop(&q.hq).(held)
		if now.Sub(h.due) > lateAfter {
			q.c.Late++
		}
		_ = q.verdict(h.id, nfqueue.NfAccept, h.altered)
		q.c.Delayed++
	}
}

func (q *queue) close() { q.nf.Close() }

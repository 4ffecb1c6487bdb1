package delayer

// slot is one packet waiting for its time: 16 bytes, no pointers, so a
// queue of thousands costs the garbage collector nothing to scan.
type slot struct {
	due int64  // nanoseconds since the queue's epoch
	id  uint32 // the kernel's packet id
	alt int32  // index of its altered content in the queue's payloads, or -1
}

// hold is the packets one queue holds, in the order they are due: a ring
// for those that leave in the order they came (a fixed delay: each is due
// no sooner than the one before), and a binary heap by due time for the
// rest (jitter). Both grow by doubling and never shrink, so a queue in
// steady state allocates nothing.
type hold struct {
	ring []slot // len is a power of two
	head int
	n    int
	heap []slot
}

func (h *hold) len() int { return h.n + len(h.heap) }

// push adds s; inOrder says it may go to the ring, where it does when it
// is due no sooner than the ring's last.
func (h *hold) push(s slot, inOrder bool) {
	if inOrder && (h.n == 0 || s.due >= h.ring[(h.head+h.n-1)&(len(h.ring)-1)].due) {
		if h.n == len(h.ring) {
			h.grow()
		}
		h.ring[(h.head+h.n)&(len(h.ring)-1)] = s
		h.n++
		return
	}
	h.heap = append(h.heap, s)
	h.up(len(h.heap) - 1)
}

func (h *hold) grow() {
	n := max(64, 2*len(h.ring))
	r := make([]slot, n)
	for i := 0; i < h.n; i++ {
		r[i] = h.ring[(h.head+i)&(len(h.ring)-1)]
	}
	h.ring, h.head = r, 0
}

// next is the earliest due time held.
func (h *hold) next() (int64, bool) {
	switch {
	case h.n == 0 && len(h.heap) == 0:
		return 0, false
	case h.n == 0:
		return h.heap[0].due, true
	case len(h.heap) == 0:
		return h.ring[h.head].due, true
	}
	return min(h.ring[h.head].due, h.heap[0].due), true
}

// ringDue pops the ring's first packet when it is due by limit.
func (h *hold) ringDue(limit int64) (slot, bool) {
	if h.n == 0 || h.ring[h.head].due > limit {
		return slot{}, false
	}
	s := h.ring[h.head]
	h.head = (h.head + 1) & (len(h.ring) - 1)
	h.n--
	return s, true
}

// heapDue pops the heap's earliest packet when it is due by limit.
func (h *hold) heapDue(limit int64) (slot, bool) {
	if len(h.heap) == 0 || h.heap[0].due > limit {
		return slot{}, false
	}
	s := h.heap[0]
	last := len(h.heap) - 1
	h.heap[0] = h.heap[last]
	h.heap = h.heap[:last]
	h.down(0)
	return s, true
}

func (h *hold) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if h.heap[p].due <= h.heap[i].due {
			return
		}
		h.heap[p], h.heap[i] = h.heap[i], h.heap[p]
		i = p
	}
}

func (h *hold) down(i int) {
	n := len(h.heap)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && h.heap[r].due < h.heap[l].due {
			m = r
		}
		if h.heap[i].due <= h.heap[m].due {
			return
		}
		h.heap[i], h.heap[m] = h.heap[m], h.heap[i]
		i = m
	}
}

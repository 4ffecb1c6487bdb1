package kernel

import (
	"errors"
	"sync"

	"github.com/nsnet/nsnet/netns"
)

// Handle works on one network namespace one request at a time: each change
// is sent alone and answered before the call returns. It sends the same
// requests a Batch queues, and lists links, addresses, routes and
// neighbours through the same socket.
type Handle struct {
	mu sync.Mutex // b is one conversation at a time
	b  *Batch
	ns *netns.NS
}

// Open binds a new handle to ns. The handle does not own ns: closing the
// handle leaves ns open.
func Open(ns *netns.NS) (*Handle, error) {
	b, err := OpenBatch(ns)
	if err != nil {
		return nil, err
	}
	b.OneAtATime = true
	return &Handle{b: b, ns: ns}, nil
}

// OpenCurrent opens the calling goroutine's network namespace (which, for a
// goroutine outside netns.Do, is the process's) and a handle bound to it.
// The caller closes both.
func OpenCurrent() (*netns.NS, *Handle, error) {
	ns, err := netns.Current()
	if err != nil {
		return nil, nil, err
	}
	h, err := Open(ns)
	if err != nil {
		ns.Close()
		return nil, nil, err
	}
	return ns, h, nil
}

// NS returns the namespace the handle is bound to.
func (h *Handle) NS() *netns.NS { return h.ns }

// Close releases the netlink socket.
func (h *Handle) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.b != nil {
		h.b.Close()
		h.b = nil
	}
}

// do sends one request and waits for its answer.
func (h *Handle) do(r request) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	err := h.b.queue(r, 0)
	if be := (*BatchError)(nil); errors.As(err, &be) {
		return be.Err
	}
	return err
}

// batch runs fn with the handle's connection, for gets and dumps.
func (h *Handle) batch(fn func(b *Batch) error) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return fn(h.b)
}

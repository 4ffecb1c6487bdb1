package kernel

import (
	"errors"
	"sync"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/nsnet/nsnet/netns"
)

// Handle works on one network namespace one request at a time: each change
// is sent alone and answered before the call returns. It sends the same
// requests a Batch queues, and lists links, addresses and routes.
type Handle struct {
	mu sync.Mutex // b is one conversation at a time
	b  *Batch
	nl *netlink.Handle // dumps for listings
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
	var h *netlink.Handle
	// The socket is created on a locked thread inside ns by netns.Do rather
	// than by netlink.NewHandleAt, whose namespace switch unlocks the thread
	// even when switching back failed.
	err = ns.Do(func() error {
		var err error
		h, err = netlink.NewHandle(unix.NETLINK_ROUTE)
		return err
	})
	if err != nil {
		b.Close()
		return nil, &OpError{Op: "open netlink", Name: ns.String(), Err: err}
	}
	// Large dumps in labs of thousands of links need more than the default.
	_ = h.SetSocketReceiveBufferSize(4<<20, false)
	return &Handle{b: b, nl: h, ns: ns}, nil
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

// Close releases the netlink sockets.
func (h *Handle) Close() {
	if h.nl != nil {
		h.nl.Close()
		h.nl = nil
	}
	if h.b != nil {
		h.b.Close()
		h.b = nil
	}
}

// Netlink exposes the underlying handle for operations this package does not
// wrap yet. It stays bound to the same namespace.
func (h *Handle) Netlink() *netlink.Handle { return h.nl }

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

// maxDumpRetries bounds retries of a dump the kernel reported as interrupted
// by a concurrent change; a partial dump is never returned.
const maxDumpRetries = 20

func dump[T any](op string, f func() ([]T, error)) ([]T, error) {
	for i := 0; ; i++ {
		v, err := f()
		if err == nil {
			return v, nil
		}
		if !errors.Is(err, netlink.ErrDumpInterrupted) || i == maxDumpRetries {
			return nil, &OpError{Op: op, Err: err}
		}
	}
}

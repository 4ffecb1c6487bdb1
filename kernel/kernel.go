// Package kernel changes and reads the network configuration of one network
// namespace through netlink: links (veth, bridge), addresses, routes.
//
// A Handle is bound to its namespace when it is opened: its netlink socket is
// created inside the namespace and stays there, so a Handle can be used from
// any goroutine without switching threads.
package kernel

import (
	"errors"
	"fmt"
	"io/fs"
	"syscall"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/nsnet/nsnet/netns"
)

// OpError describes a failed kernel operation on a named object.
type OpError struct {
	Op   string // "add veth", "set up", "add address", ...
	Name string // the object the operation was about
	Err  error
}

func (e *OpError) Error() string {
	if e.Name == "" {
		return e.Op + ": " + e.Err.Error()
	}
	return fmt.Sprintf("%s %s: %v", e.Op, e.Name, e.Err)
}

func (e *OpError) Unwrap() error { return e.Err }

var errNoRoute = kindError{syscall.ENETUNREACH, fs.ErrNotExist}

// ErrPermission is wrapped by errors caused by missing privileges
// (CAP_NET_ADMIN in the namespace's owning user namespace).
var ErrPermission = fs.ErrPermission

// Handle is a netlink connection bound to one network namespace.
type Handle struct {
	nl *netlink.Handle
	ns *netns.NS
}

// Open binds a new handle to ns. The handle does not own ns: closing the
// handle leaves ns open.
func Open(ns *netns.NS) (*Handle, error) {
	var h *netlink.Handle
	// The socket is created on a locked thread inside ns by netns.Do rather
	// than by netlink.NewHandleAt, whose namespace switch unlocks the thread
	// even when switching back failed.
	err := ns.Do(func() error {
		var err error
		h, err = netlink.NewHandle(unix.NETLINK_ROUTE)
		return err
	})
	if err != nil {
		return nil, &OpError{Op: "open netlink", Name: ns.String(), Err: err}
	}
	// Large dumps in labs of thousands of links need more than the default.
	_ = h.SetSocketReceiveBufferSize(4<<20, false)
	return &Handle{nl: h, ns: ns}, nil
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
	if h.nl != nil {
		h.nl.Close()
		h.nl = nil
	}
}

// Netlink exposes the underlying handle for operations this package does not
// wrap yet. It stays bound to the same namespace.
func (h *Handle) Netlink() *netlink.Handle { return h.nl }

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

func opErr(op, name string, err error) error {
	if err == nil {
		return nil
	}
	return &OpError{Op: op, Name: name, Err: classify(err)}
}

// classify maps kernel errnos onto fs sentinels so callers can use errors.Is
// with fs.ErrNotExist / fs.ErrExist / fs.ErrPermission, while keeping the
// errno in the chain.
func classify(err error) error {
	var lnf netlink.LinkNotFoundError
	if errors.As(err, &lnf) {
		return kindError{errors.New("no such device"), fs.ErrNotExist}
	}
	var en syscall.Errno
	if errors.As(err, &en) {
		switch en {
		case unix.ENODEV, unix.ENOENT, unix.ESRCH, unix.EADDRNOTAVAIL:
			return kindError{err, fs.ErrNotExist}
		case unix.EEXIST:
			return kindError{err, fs.ErrExist}
		case unix.EPERM, unix.EACCES:
			return kindError{err, fs.ErrPermission}
		}
	}
	return err
}

// kindError reads as the kernel's message but also matches a fs sentinel.
type kindError struct {
	err  error
	kind error
}

func (e kindError) Error() string   { return e.err.Error() }
func (e kindError) Unwrap() []error { return []error{e.err, e.kind} }

package kernel

import (
	"errors"
	"fmt"
	"io/fs"
	"syscall"

	"golang.org/x/sys/unix"
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

// errNoDevice is a missing link, as the kernel words it.
var errNoDevice = kindError{errors.New("no such device"), fs.ErrNotExist}

// ErrDumpInterrupted is wrapped by a listing whose dump concurrent changes
// kept interrupting, retry after retry; it also matches unix.EINTR.
var ErrDumpInterrupted error = kindError{errors.New("dump interrupted by concurrent changes, retries exhausted"), unix.EINTR}

// ErrPermission is wrapped by errors caused by missing privileges
// (CAP_NET_ADMIN in the namespace's owning user namespace).
var ErrPermission = fs.ErrPermission

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

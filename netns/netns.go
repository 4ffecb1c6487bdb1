// Package netns holds network namespaces by open file descriptor and runs code
// inside them without leaking a namespace into the rest of the program.
//
// setns(2) changes the namespace of one OS thread, while Go schedules
// goroutines over many threads. Every function here that must enter a namespace
// does it on a fresh goroutine locked to its thread, starts no goroutine while
// inside, and restores the thread before unlocking it. When the restore fails
// the goroutine exits still locked, which makes the Go runtime terminate that
// thread instead of handing a thread in the wrong namespace to other code.
//
// Namespaces are always held by file descriptor (O_CLOEXEC), never by a
// /proc/PID path, so a recycled PID can never redirect an operation.
//
// netns owns namespaces themselves (create, open, pin, remove, enter, start a
// process in, sysctls) and nothing that lives in them: links, addresses and
// routes are package kernel's.
package netns

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/nsnet/nsnet/internal/echo"
)

// NS is an open network namespace. The zero value is not usable; get one from
// New, Open, Current or Dir.Open. An NS is safe for concurrent use.
type NS struct {
	mu   sync.Mutex
	fd   int
	name string // for messages: a path or a namespace name
}

// OpError describes a failed namespace operation.
type OpError struct {
	Op   string // "open", "create", "enter", "mount", ...
	Path string // the namespace path or name involved, if any
	Err  error
}

func (e *OpError) Error() string {
	if e.Path == "" {
		return fmt.Sprintf("netns %s: %v", e.Op, e.Err)
	}
	return fmt.Sprintf("netns %s %s: %v", e.Op, e.Path, e.Err)
}

func (e *OpError) Unwrap() error { return e.Err }

// ErrClosed is returned when a closed NS is used.
var ErrClosed = errors.New("namespace handle is closed")

// Open opens the network namespace file at path (an nsfs bind mount such as
// /run/netns/NAME, or /proc/self/ns/net).
func Open(path string) (*NS, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &OpError{Op: "open", Path: path, Err: err}
	}
	if err := checkNetNS(fd); err != nil {
		unix.Close(fd)
		return nil, &OpError{Op: "open", Path: path, Err: err}
	}
	return &NS{fd: fd, name: path}, nil
}

// Current opens the network namespace of the calling thread. Call it from a
// goroutine that is not inside another namespace (which is every goroutine
// outside this package's callbacks).
func Current() (*NS, error) {
	return Open("/proc/thread-self/ns/net")
}

// checkNetNS refuses a descriptor that is not a network namespace, so that a
// regular file at /run/netns/NAME is never mistaken for one.
func checkNetNS(fd int) error {
	var st unix.Statfs_t
	if err := unix.Fstatfs(fd, &st); err != nil {
		return err
	}
	// /proc/PID/ns/net opens as the nsfs file it points to, so only nsfs
	// is accepted: a procfs file such as /proc/version is refused too.
	if st.Type != unix.NSFS_MAGIC {
		return errors.New("not a network namespace file")
	}
	t, err := unix.IoctlRetInt(fd, unix.NS_GET_NSTYPE)
	if err != nil || t != unix.CLONE_NEWNET {
		return errors.New("not a network namespace file")
	}
	return nil
}

// New creates a new, unnamed network namespace with loopback down, and returns
// it open. The calling thread is left where it was.
func New() (*NS, error) { return NewWith(nil) }

// NewWith creates a namespace as New does and, unless fn is nil, runs fn
// inside it on the thread that made it, before that thread goes back: a
// socket fn makes is bound to the new namespace without a second trip into
// it (Do's). fn must start no goroutine (it would run elsewhere). If fn
// fails, the namespace is closed and its error returned.
func NewWith(fn func() error) (*NS, error) {
	fd := -1
	err := inFresh("create", "", func() error {
		var err error
		if fd, err = unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0); err != nil {
			return &OpError{Op: "create", Err: err}
		}
		if fn != nil {
			return fn()
		}
		return nil
	})
	if err != nil {
		if fd >= 0 {
			unix.Close(fd)
		}
		return nil, err
	}
	return &NS{fd: fd, name: "(unnamed)"}, nil
}

// Fd returns the descriptor, or -1 once closed. It stays owned by the NS.
func (n *NS) Fd() int {
	if n == nil {
		return -1
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.fd
}

// String names the namespace for messages.
func (n *NS) String() string { return n.name }

// Close releases the descriptor. Closing twice is not an error.
func (n *NS) Close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.fd < 0 {
		return nil
	}
	err := unix.Close(n.fd)
	n.fd = -1
	return err
}

// ID identifies the namespace (device and inode of its nsfs file): two NS
// values refer to the same namespace exactly when their IDs are equal.
type ID struct{ Dev, Ino uint64 }

// ID returns the namespace's identity.
func (n *NS) ID() (ID, error) {
	fd := n.Fd()
	if fd < 0 {
		return ID{}, ErrClosed
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return ID{}, err
	}
	return ID{Dev: st.Dev, Ino: st.Ino}, nil
}

// Do runs fn on a dedicated OS thread that is inside n for the duration of the
// call. fn must not start goroutines that depend on the namespace (they would
// run elsewhere) and must not change the thread's namespaces itself.
//
// Use Do only for what needs the thread itself: opening a socket (which stays
// bound to n afterwards and may be used from anywhere), starting a process,
// writing /proc/sys. Netlink handles are bound at creation instead.
func (n *NS) Do(fn func() error) error {
	fd := n.Fd()
	if fd < 0 {
		return ErrClosed
	}
	ch := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			ch <- &OpError{Op: "enter", Path: n.name, Err: err}
			return
		}
		defer unix.Close(orig)
		if sameNS(orig, fd) {
			// Already there: no setns, which would need CAP_SYS_ADMIN
			// even for read-only work such as listing links.
			err := fn()
			runtime.UnlockOSThread()
			ch <- err
			return
		}
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			ch <- &OpError{Op: "enter", Path: n.name, Err: err}
			return
		}
		fnErr := fn()
		if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
			// Never unlock: the runtime will terminate this thread.
			ch <- errors.Join(fnErr, &OpError{Op: "restore", Path: n.name, Err: err})
			return
		}
		runtime.UnlockOSThread()
		ch <- fnErr
	}()
	return <-ch
}

func sameNS(a, b int) bool {
	var sa, sb unix.Stat_t
	if unix.Fstat(a, &sa) != nil || unix.Fstat(b, &sb) != nil {
		return false
	}
	return sa.Dev == sb.Dev && sa.Ino == sb.Ino
}

// WriteSysctl sets a sysctl under /proc/sys inside n, e.g.
// ("net.ipv4.ip_forward", "1"). /proc/sys/net resolves to the namespace of
// the thread that opens it, hence Do.
func (n *NS) WriteSysctl(key, value string) error {
	path, err := SysctlPath(key)
	if err != nil {
		return err
	}
	return n.Do(func() error {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
		if err != nil {
			return err
		}
		_, werr := f.WriteString(value)
		cerr := f.Close()
		if werr != nil {
			return werr
		}
		return cerr
	})
}

// ReadSysctl reads a sysctl inside n.
func (n *NS) ReadSysctl(key string) (string, error) {
	path, err := SysctlPath(key)
	if err != nil {
		return "", err
	}
	var out string
	err = n.Do(func() error {
		b, err := os.ReadFile(path)
		out = string(trimNewline(b))
		return err
	})
	return out, err
}

func trimNewline(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == ' ') {
		b = b[:len(b)-1]
	}
	return b
}

// SysctlPath maps a dotted sysctl key to its /proc/sys path, refusing keys
// that could escape /proc/sys.
func SysctlPath(key string) (string, error) {
	if key == "" {
		return "", fmt.Errorf("sysctl key is empty")
	}
	p := make([]byte, 0, len(key))
	for i := 0; i < len(key); i++ {
		c := key[i]
		switch {
		case c == '.':
			p = append(p, '/')
		case c == '/' || c == 0 || c == ' ':
			return "", fmt.Errorf("sysctl key %s: must be dotted words without '/', spaces or NUL", echo.Quote(key))
		default:
			p = append(p, c)
		}
	}
	s := string(p)
	for _, part := range strings.Split(s, "/") {
		if part == "" {
			return "", fmt.Errorf("sysctl key %s: empty component", echo.Quote(key))
		}
	}
	return "/proc/sys/" + s, nil
}

// Scratch runs fn on a thread of its own inside a new network namespace that
// nothing else can see or enter: a place to ask the kernel what a fresh
// namespace holds (its /proc/sys/net, say) or to try a change harmlessly.
// The namespace ends when fn returns. fn must not start goroutines.
func Scratch(fn func() error) error { return inFresh("create scratch", "(scratch)", fn) }

// inFresh runs fn on a locked thread of its own that has unshared a new
// network namespace, then takes the thread back to the caller's namespace.
// op names the creation in errors, what the namespace in a restore error.
//
// The thread goes back to the caller's namespace before it is unlocked; if
// that fails it is never unlocked, and the runtime ends it. (Relying on the
// goroutine's exit alone is not enough: when it runs on the main thread, the
// runtime parks that thread for good instead, and the namespace lives on.)
func inFresh(op, what string, fn func() error) error {
	ch := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			ch <- &OpError{Op: op, Err: err}
			return
		}
		defer unix.Close(orig)
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			ch <- &OpError{Op: op, Err: err}
			return
		}
		fnErr := fn()
		if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
			// Never unlock: the runtime will terminate this thread.
			ch <- errors.Join(fnErr, &OpError{Op: "restore", Path: what, Err: err})
			return
		}
		runtime.UnlockOSThread()
		ch <- fnErr
	}()
	return <-ch
}

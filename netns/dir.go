package netns

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/nsnet/nsnet/internal/echo"
)

// DefaultDir is where iproute2 pins named namespaces; using the same place
// makes `ip netns` and nsnet see each other's namespaces.
const DefaultDir = "/run/netns"

// MaxNameLen is the longest namespace name: one path component (NAME_MAX).
const MaxNameLen = 255

// NameError reports a namespace name that breaks a rule.
type NameError struct {
	Name string
	Rule string
}

func (e *NameError) Error() string {
	return fmt.Sprintf("invalid namespace name %s: %s", echo.Quote(e.Name), e.Rule)
}

// ValidateName checks that name can only ever refer to a file directly inside
// the namespace directory: no path outside it is created or followed.
func ValidateName(name string) error {
	switch {
	case name == "":
		return &NameError{Name: name, Rule: "must not be empty"}
	case name == "." || name == "..":
		return &NameError{Name: name, Rule: `must not be "." or ".."`}
	case strings.ContainsRune(name, '/'):
		return &NameError{Name: name, Rule: `must not contain "/"`}
	case strings.ContainsRune(name, 0):
		return &NameError{Name: name, Rule: "must not contain NUL"}
	case len(name) > MaxNameLen:
		return &NameError{Name: name, Rule: fmt.Sprintf("must be at most %d bytes (is %d)", MaxNameLen, len(name))}
	}
	return nil
}

// Dir is a directory of named namespaces, each an nsfs bind mount.
type Dir struct {
	Path string
}

// Default returns the directory iproute2 uses.
func Default() Dir { return Dir{Path: DefaultDir} }

func (d Dir) path(name string) (string, error) {
	if err := ValidateName(name); err != nil {
		return "", err
	}
	return filepath.Join(d.Path, name), nil
}

// Path returns where the namespace name is pinned.
func (d Dir) PathOf(name string) (string, error) { return d.path(name) }

// Open opens the named namespace.
func (d Dir) Open(name string) (*NS, error) {
	p, err := d.path(name)
	if err != nil {
		return nil, err
	}
	ns, err := Open(p)
	if err != nil {
		return nil, err
	}
	ns.name = name
	return ns, nil
}

// Exists reports whether a namespace of that name is pinned.
func (d Dir) Exists(name string) bool {
	ns, err := d.Open(name)
	if err != nil {
		return false
	}
	ns.Close()
	return true
}

// ErrExists is wrapped by Add when the name is taken.
var ErrExists = fs.ErrExist

// Add creates a namespace and pins it as name, the way `ip netns add` does, and
// returns it open.
func (d Dir) Add(name string) (*NS, error) {
	p, err := d.path(name)
	if err != nil {
		return nil, err
	}
	if err := d.prepare(); err != nil {
		return nil, err
	}
	f, err := unix.Open(p, unix.O_RDONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.EEXIST) {
			return nil, &OpError{Op: "add", Path: name, Err: fmt.Errorf("namespace already exists: %w", fs.ErrExist)}
		}
		return nil, &OpError{Op: "add", Path: p, Err: err}
	}
	unix.Close(f)
	ns, err := New()
	if err != nil {
		os.Remove(p)
		return nil, err
	}
	if err := d.pin(ns, p); err != nil {
		ns.Close()
		os.Remove(p)
		return nil, err
	}
	ns.name = name
	return ns, nil
}

// Pin gives an existing namespace a name in d.
func (d Dir) Pin(ns *NS, name string) error {
	p, err := d.path(name)
	if err != nil {
		return err
	}
	if err := d.prepare(); err != nil {
		return err
	}
	f, err := unix.Open(p, unix.O_RDONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.EEXIST) {
			return &OpError{Op: "add", Path: name, Err: fmt.Errorf("namespace already exists: %w", fs.ErrExist)}
		}
		return &OpError{Op: "add", Path: p, Err: err}
	}
	unix.Close(f)
	if err := d.pin(ns, p); err != nil {
		os.Remove(p)
		return err
	}
	return nil
}

func (d Dir) pin(ns *NS, p string) error {
	fd := ns.Fd()
	if fd < 0 {
		return ErrClosed
	}
	src := fmt.Sprintf("/proc/self/fd/%d", fd)
	if err := unix.Mount(src, p, "none", unix.MS_BIND, ""); err != nil {
		return &OpError{Op: "mount", Path: p, Err: err}
	}
	return nil
}

// prepare creates the directory and makes it a shared mount point, as
// iproute2 does, so that namespaces pinned later propagate into mount
// namespaces (such as those of `netns exec`) that were copied earlier.
func (d Dir) prepare() error {
	if err := os.MkdirAll(d.Path, 0o755); err != nil {
		return &OpError{Op: "add", Path: d.Path, Err: unwrapPathErr(err)}
	}
	err := unix.Mount("", d.Path, "none", unix.MS_SHARED|unix.MS_REC, "")
	if errors.Is(err, unix.EINVAL) {
		if err := unix.Mount(d.Path, d.Path, "none", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return &OpError{Op: "mount", Path: d.Path, Err: err}
		}
		err = unix.Mount("", d.Path, "none", unix.MS_SHARED|unix.MS_REC, "")
	}
	if err != nil {
		return &OpError{Op: "mount", Path: d.Path, Err: err}
	}
	return nil
}

func unwrapPathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// Delete unpins the named namespace. The kernel frees it once no process or
// descriptor uses it any more. A missing namespace is reported with an error
// wrapping fs.ErrNotExist, so teardown code can treat it as done.
func (d Dir) Delete(name string) error {
	p, err := d.path(name)
	if err != nil {
		return err
	}
	uerr := unix.Unmount(p, unix.MNT_DETACH)
	rerr := unix.Unlink(p)
	switch {
	case rerr == nil:
		return nil
	case errors.Is(rerr, unix.ENOENT):
		return &OpError{Op: "delete", Path: name, Err: fmt.Errorf("no such namespace: %w", fs.ErrNotExist)}
	case uerr != nil && !errors.Is(uerr, unix.EINVAL):
		return &OpError{Op: "delete", Path: p, Err: uerr}
	default:
		return &OpError{Op: "delete", Path: p, Err: rerr}
	}
}

// List returns the names pinned in d, sorted. A missing directory is empty.
func (d Dir) List() ([]string, error) {
	ents, err := os.ReadDir(d.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, &OpError{Op: "list", Path: d.Path, Err: unwrapPathErr(err)}
	}
	var names []string
	for _, e := range ents {
		if ValidateName(e.Name()) == nil {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	return names, nil
}

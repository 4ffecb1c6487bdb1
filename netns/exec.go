package netns

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"

	"golang.org/x/sys/unix"
)

// Start starts cmd inside n. The child is forked from a thread that is inside
// n, so it inherits the namespace; the caller's threads are untouched.
//
// Any goroutines exec.Cmd starts to copy non-file stdio only move bytes
// between pipes and do not depend on the namespace.
func (n *NS) Start(cmd *exec.Cmd) error {
	return n.Do(cmd.Start)
}

// ExecOptions tune Exec.
type ExecOptions struct {
	// Name, when set, is the namespace's name: /sys is remounted to show
	// its devices and /etc/netns/Name/* is bound over /etc, as `ip netns
	// exec` does.
	Name string
	// EtcDir is where per-namespace configuration lives (default /etc/netns).
	EtcDir string
	Env    []string
	// Inherited is given back to the program: the signals nsnet's caller
	// ignored and the standard descriptors it had closed.
	Inherited Inherited
}

// Exec replaces the current process with argv running inside n, the way
// `ip netns exec` does: stdio, terminal, signals and exit status are then
// simply the child's, the signals the caller ignored are ignored (given
// opt.Inherited), a standard descriptor the caller closed is closed, and no
// descriptor of nsnet's survives (all are O_CLOEXEC). It only returns on failure; the calling thread may then be in
// n, so the caller must exit rather than go on.
func Exec(n *NS, argv []string, opt ExecOptions) error {
	if len(argv) == 0 {
		return errors.New("no command given")
	}
	path, err := exec.LookPath(argv[0])
	if err != nil {
		return err
	}
	fd := n.Fd()
	if fd < 0 {
		return ErrClosed
	}
	// Never unlocked: this thread either becomes the new program or the
	// process exits with an error.
	runtime.LockOSThread()
	if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
		return &OpError{Op: "enter", Path: n.name, Err: err}
	}
	if opt.Name != "" {
		if err := privateMounts(opt); err != nil {
			return err
		}
	}
	StdioOnlyOnExec()
	env := opt.Env
	if env == nil {
		env = os.Environ()
	}
	opt.Inherited.Restore()
	return unix.Exec(path, argv, env)
}

// privateMounts gives the thread its own mount namespace with a sysfs that
// describes the current network namespace and the namespace's /etc overrides.
func privateMounts(opt ExecOptions) error {
	if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
		return &OpError{Op: "unshare mount namespace", Err: err}
	}
	// Keep our mounts from propagating back to the caller's namespace.
	if err := unix.Mount("", "/", "none", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return &OpError{Op: "mount", Path: "/", Err: err}
	}
	var flags uintptr
	if err := unix.Unmount("/sys", unix.MNT_DETACH); err != nil {
		// Could not unmount (e.g. a locked mount in a user namespace):
		// overlay it instead; a read-only sysfs cannot be shadowed
		// read-write.
		var st unix.Statfs_t
		if unix.Statfs("/sys", &st) == nil && st.Flags&unix.ST_RDONLY != 0 {
			flags = unix.MS_RDONLY
		}
	}
	if err := unix.Mount(opt.Name, "/sys", "sysfs", flags, ""); err != nil {
		return &OpError{Op: "mount", Path: "/sys", Err: err}
	}
	etc := opt.EtcDir
	if etc == "" {
		etc = "/etc/netns"
	}
	dir := filepath.Join(etc, opt.Name)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil // no overrides for this namespace
	}
	for _, e := range ents {
		src := filepath.Join(dir, e.Name())
		dst := filepath.Join("/etc", e.Name())
		if err := unix.Mount(src, dst, "none", unix.MS_BIND, ""); err != nil {
			return &OpError{Op: "mount", Path: dst, Err: fmt.Errorf("bind %s: %w", src, err)}
		}
	}
	return nil
}

// StdioOnlyOnExec marks every descriptor above stderr close-on-exec, so that
// descriptors this process inherited without the flag do not leak into a
// program it execs: only stdin, stdout and stderr pass.
func StdioOnlyOnExec() {
	if unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC) == nil {
		return
	}
	// Kernels before 5.11 lack close_range.
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return
	}
	for _, e := range ents {
		var fd int
		if _, err := fmt.Sscan(e.Name(), &fd); err == nil && fd > 2 {
			unix.CloseOnExec(fd)
		}
	}
}

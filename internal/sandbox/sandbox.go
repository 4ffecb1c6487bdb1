// Package sandbox runs nsnet, or a test binary, inside a fresh user,
// network, mount and PID namespace in which the caller is root. Inside,
// loopback is up, /run is a private tmpfs (so /run/netns and nsnet's state
// are private), /sys shows the sandbox's own devices and /proc its own
// processes. Nothing made inside outlives the sandbox: not its interfaces
// and namespaces (they go with its network namespace), and not its
// processes (when the PID namespace's first process exits, the kernel kills
// the rest). The default namespace inside has no route anywhere, so a wrong
// address in a test cannot leave the machine.
//
// A Go process cannot move itself into a new user namespace once it has
// threads, so the sandbox is always a re-executed child: the parent starts
// /proc/self/exe with CLONE_NEWUSER|CLONE_NEWNET|CLONE_NEWNS|CLONE_NEWPID
// and the child finishes the setup before doing anything else.
package sandbox

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/nsnet/nsnet/kernel"
	"github.com/nsnet/nsnet/netns"
)

// InitArg is the hidden first argument that makes an nsnet binary act as the
// inside half of a sandbox; see Init.
const InitArg = "__nsnet-sandbox-init"

// testEnv marks a test binary that is already inside its sandbox.
const testEnv = "NSNET_TEST_SANDBOX"

// Error explains why a sandbox could not be made.
type Error struct {
	Step string
	Err  error
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("sandbox: %s: %v", e.Step, e.Err)
	if errors.Is(e.Err, unix.EPERM) || errors.Is(e.Err, unix.ENOSPC) || errors.Is(e.Err, unix.EACCES) {
		msg += " (this machine does not allow unprivileged user namespaces: enable them with " +
			"`sysctl -w kernel.unprivileged_userns_clone=1` / `user.max_user_namespaces`, or run as root)"
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// Command returns a command that re-executes the current binary inside a new
// sandbox with args, as the first process of its own PID namespace. Mappings
// make the caller root inside.
func Command(args ...string) *exec.Cmd {
	cmd := exec.Command("/proc/self/exe", args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:                 unix.CLONE_NEWUSER | unix.CLONE_NEWNET | unix.CLONE_NEWNS | unix.CLONE_NEWPID,
		UidMappings:                []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}},
		GidMappings:                []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}},
		GidMappingsEnableSetgroups: false,
		// The sandbox dies with its parent, so nothing made in it is left.
		Pdeathsig: unix.SIGKILL,
	}
	return cmd
}

// Setup prepares the namespaces of a freshly cloned child: private mount
// propagation, tmpfs on /run, sysfs for this network namespace, procfs for
// this PID namespace, loopback up.
// It must run in the sandbox child before anything else.
func Setup() error {
	if err := unix.Mount("", "/", "none", unix.MS_REC|unix.MS_SLAVE, ""); err != nil {
		return &Error{"make mounts private", err}
	}
	if err := unix.Mount("tmpfs", "/run", "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=755"); err != nil {
		return &Error{"mount tmpfs on /run", err}
	}
	if err := os.Mkdir(netns.DefaultDir, 0o755); err != nil {
		return &Error{"create /run/netns", err}
	}
	if err := privateEtcNetns(); err != nil {
		return err
	}
	// /sys as mounted by the parent describes the parent's network
	// namespace; a fresh sysfs describes ours. It may be locked, so mount
	// over it instead of unmounting.
	if err := unix.Mount("sysfs", "/sys", "sysfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return &Error{"mount sysfs", err}
	}
	// Likewise /proc for the PID namespace: PIDs read there (lab process
	// records, pidfds, process groups) must be the sandbox's own.
	if err := unix.Mount("proc", "/proc", "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return &Error{"mount /proc for the sandbox's PID namespace", err}
	}
	self, err := netns.Current()
	if err != nil {
		return &Error{"open own namespace", err}
	}
	defer self.Close()
	h, err := kernel.Open(self)
	if err != nil {
		return &Error{"netlink", err}
	}
	defer h.Close()
	if err := h.SetUp("lo"); err != nil {
		return &Error{"loopback up", err}
	}
	return nil
}

// EtcNetnsEnv moves the root of the namespaces' own /etc files (the lab
// package's variable of that name).
const EtcNetnsEnv = "NSNET_ETC_NETNS"

// privateEtcNetns keeps the hosts files labs write in the sandbox: over the
// machine's /etc/netns goes a tmpfs (so ip netns exec sees them too); a
// machine without one is not given one, and the files go to /run/etc-netns
// instead, named by NSNET_ETC_NETNS for nsnet run inside.
func privateEtcNetns() error {
	if fi, err := os.Stat("/etc/netns"); err == nil && fi.IsDir() {
		if err := unix.Mount("tmpfs", "/etc/netns", "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=755"); err == nil {
			os.Unsetenv(EtcNetnsEnv)
			return nil
		}
	}
	const dir = "/run/etc-netns"
	if err := os.Mkdir(dir, 0o755); err != nil {
		return &Error{"create " + dir, err}
	}
	// The sandbox's own environment: what it runs inherits it.
	return os.Setenv(EtcNetnsEnv, dir)
}

// Run starts argv (default: $SHELL or /bin/sh) in a new sandbox and waits.
// It returns the child's exit code.
//
// The sandbox has its own PID namespace, whose first process (init, see
// Init) starts argv and reaps what is orphaned inside. When argv exits, init
// exits with its status, and the kernel kills every process left in the
// namespace: a daemon, a lab's processes or a `cmd &` started inside do not
// outlive the sandbox. If nsnet itself dies, init gets SIGKILL, with the
// same effect.
//
// Signals: argv starts with the dispositions nsnet's caller had (in: an
// ignored signal stays ignored, nothing else is), so ^C at the terminal
// interrupts it. When nsnet has the terminal's foreground, argv gets it, in
// a process group of its own inside (as a shell starts a job), and nsnet
// takes it back afterwards; otherwise argv shares nsnet's group. nsnet and
// init only take note of SIGINT and SIGQUIT (the terminal sends them to
// argv itself). SIGTERM and SIGHUP sent to nsnet are passed on to argv.
func Run(argv []string, in netns.Inherited, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	shell := len(argv) == 0
	if shell {
		sh := os.Getenv("SHELL")
		if sh == "" {
			sh = "/bin/sh"
		}
		argv = []string{sh}
	}
	init := []string{InitArg, inheritFlag + in.String()}
	// In the foreground of a terminal, the command gets the terminal's
	// foreground (below): a shell's job control needs a process group it
	// can see, and the caller's is outside the PID namespace.
	fg := foreground(stdin)
	if fg != nil {
		init = append(init, foregroundFlag)
		defer fg()
	}
	cmd := Command(append(append(init, "--"), argv...)...)
	cmd.Env = append(os.Environ(), EnvVar+"=1")
	if shell {
		cmd.Env = append(cmd.Env, promptEnv+"=1")
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, stderr
	// Noted and dropped, never ignored: an ignored signal would stay
	// ignored in the sandbox (issue: ^C did nothing inside).
	quiet := make(chan os.Signal, 4)
	signal.Notify(quiet, unix.SIGINT, unix.SIGQUIT)
	defer signal.Stop(quiet)
	fwd := make(chan os.Signal, 4)
	signal.Notify(fwd, unix.SIGTERM, unix.SIGHUP)
	defer signal.Stop(fwd)
	// Pdeathsig fires when the thread that forked exits, not the process:
	// keep this one until the sandbox is gone.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := cmd.Start(); err != nil {
		return 0, &Error{"create namespaces", err}
	}
	done := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-fwd:
				_ = cmd.Process.Signal(s)
			case <-quiet:
			case <-done:
				return
			}
		}
	}()
	err := cmd.Wait()
	close(done)
	return ExitCode(err)
}

// EnvVar is set to 1 in everything that runs in a sandbox Run made, so that
// scripts and prompts can tell.
const EnvVar = "NSNET_SANDBOX"

// promptEnv asks Init to mark the interactive shell's prompt.
const promptEnv = "NSNET_SANDBOX_SHELL"

// Prompt starts the prompt of a sandbox's shell.
const Prompt = "(nsnet sandbox) "

// withPrompt makes the shell's prompt say it is the sandbox: PS1 for the
// shells that take it from the environment (sh, dash, zsh without a theme),
// and for bash, which a start-up file usually overrides, a start-up file of
// its own that reads ~/.bashrc first and then prefixes PS1. It lives in the
// sandbox's private /run.
func withPrompt(args []string) []string {
	os.Setenv("PS1", Prompt+`\$ `)
	if filepath.Base(args[0]) != "bash" || len(args) != 1 {
		return args
	}
	const rc = "/run/nsnet-sandbox.bashrc"
	body := "[ -f ~/.bashrc ] && . ~/.bashrc\nPS1=\"" + Prompt + "${PS1:-\\\\$ }\"\n"
	if err := os.WriteFile(rc, []byte(body), 0o644); err != nil {
		return args
	}
	return append(args, "--rcfile", rc)
}

// foreground reports whether in is a terminal whose foreground process
// group is this process's. If so, it returns a function that gives the
// foreground back to this group (a command in the sandbox took it, and
// when it has exited, its group is gone).
func foreground(in io.Reader) func() {
	f, ok := in.(*os.File)
	if !ok {
		return nil
	}
	fd := int(f.Fd())
	pgrp, err := unix.IoctlGetInt(fd, unix.TIOCGPGRP)
	if err != nil || pgrp != unix.Getpgrp() {
		return nil
	}
	return func() {
		if now, err := unix.IoctlGetInt(fd, unix.TIOCGPGRP); err == nil && now == pgrp {
			return
		}
		// From a background group, taking the terminal raises SIGTTOU,
		// which would stop this process: ignored only now, when no child
		// is left to inherit that.
		signal.Ignore(unix.SIGTTOU)
		defer signal.Reset(unix.SIGTTOU)
		unix.IoctlSetPointerInt(fd, unix.TIOCSPGRP, pgrp)
	}
}

// foregroundFlag tells Init to give the command the terminal's foreground.
const foregroundFlag = "--foreground"

// inheritFlag carries Run's netns.Inherited to the command inside.
const inheritFlag = "--inherit="

// execFlag makes Init the last hop: restore, then exec the command.
const execFlag = "--exec"

// ExitCode turns a Wait error into a shell-style exit code.
func ExitCode(err error) (int, error) {
	if err == nil {
		return 0, nil
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal()), nil
		}
		return ee.ExitCode(), nil
	}
	return 0, err
}

// Init is the inside half of Run, given the arguments after InitArg. As the
// sandbox's first process (PID 1 of its PID namespace) it sets the sandbox
// up, starts the command as its child and reaps every process orphaned
// inside until the command exits; it returns the command's exit status
// (128+N for a signal N), and when it exits the kernel kills what is left.
//
// The child is nsnet once more (with execFlag), which gives back the
// caller's ignored signals and closed descriptors and execs the command: Go
// cannot fork a child that ignores a signal its parent handles.
func Init(args []string) (int, error) {
	var in netns.Inherited
	last, fg := false, false
	for len(args) > 0 && args[0] != "--" {
		switch a := args[0]; {
		case a == execFlag:
			last = true
		case a == foregroundFlag:
			fg = true
		case strings.HasPrefix(a, inheritFlag):
			var err error
			if in, err = netns.ParseInherited(strings.TrimPrefix(a, inheritFlag)); err != nil {
				return 1, fmt.Errorf("sandbox: %w", err)
			}
		default:
			return 1, fmt.Errorf("sandbox: unknown init argument %q", a)
		}
		args = args[1:]
	}
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) == 0 {
		return 1, errors.New("sandbox: no command")
	}
	if last {
		path, err := exec.LookPath(args[0])
		if err != nil {
			return 127, err
		}
		netns.StdioOnlyOnExec()
		in.Restore()
		return 126, unix.Exec(path, args, os.Environ())
	}
	if err := Setup(); err != nil {
		return 1, err
	}
	if os.Getenv(promptEnv) == "1" {
		os.Unsetenv(promptEnv)
		args = withPrompt(args)
	}
	if _, err := exec.LookPath(args[0]); err != nil {
		return 127, err
	}
	// Noted before the child exists, so that none is lost: SIGTERM and
	// SIGHUP are for the command; SIGINT and SIGQUIT come from the
	// terminal, which sends them to the command too. (To the init of a PID
	// namespace, a signal without a handler is not delivered at all.)
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, unix.SIGTERM, unix.SIGHUP, unix.SIGINT, unix.SIGQUIT)
	defer signal.Stop(sigs)
	attr := &os.ProcAttr{Env: os.Environ(), Files: []*os.File{os.Stdin, os.Stdout, os.Stderr}}
	if fg {
		// Its own process group, the terminal's foreground, as a shell
		// puts a job: ^C goes to it, and a shell's job control (which
		// gives the terminal back to the group it found at exit) works.
		attr.Sys = &syscall.SysProcAttr{Setpgid: true, Foreground: true, Ctty: 0}
	}
	p, err := os.StartProcess("/proc/self/exe", append([]string{os.Args[0], InitArg, execFlag, inheritFlag + in.String(), "--"}, args...), attr)
	if err != nil {
		return 1, &Error{"start " + args[0], err}
	}
	go func() {
		for s := range sigs {
			if s == unix.SIGTERM || s == unix.SIGHUP {
				// Through the process's descriptor: never another
				// process that got its PID after it was reaped.
				_ = p.Signal(s)
			}
		}
	}()
	return reap(p.Pid)
}

// reap waits for every child until main exits and returns main's status.
func reap(main int) (int, error) {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, 0, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return 1, &Error{"wait", err}
		}
		if pid != main {
			continue // an orphan, reaped
		}
		if ws.Signaled() {
			return 128 + int(ws.Signal()), nil
		}
		return ws.ExitStatus(), nil
	}
}

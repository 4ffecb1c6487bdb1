// Package sandbox runs nsnet, or a test binary, inside a fresh user, network
// and mount namespace in which the caller is root. Inside, loopback is up,
// /run is a private tmpfs (so /run/netns and nsnet's state are private) and
// /sys shows the sandbox's own devices. Nothing made inside outlives the
// sandbox, and the default namespace inside has no route anywhere, so a wrong
// address in a test cannot leave the machine.
//
// A Go process cannot move itself into a new user namespace once it has
// threads, so the sandbox is always a re-executed child: the parent starts
// /proc/self/exe with CLONE_NEWUSER|CLONE_NEWNET|CLONE_NEWNS and the child
// finishes the setup before doing anything else.
package sandbox

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
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
// sandbox with args. Mappings make the caller root inside.
func Command(args ...string) *exec.Cmd {
	cmd := exec.Command("/proc/self/exe", args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:                 unix.CLONE_NEWUSER | unix.CLONE_NEWNET | unix.CLONE_NEWNS,
		UidMappings:                []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}},
		GidMappings:                []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}},
		GidMappingsEnableSetgroups: false,
		// The sandbox dies with its parent, so nothing made in it is left.
		Pdeathsig: unix.SIGKILL,
	}
	return cmd
}

// Setup prepares the namespaces of a freshly cloned child: private mount
// propagation, tmpfs on /run, sysfs for this network namespace, loopback up.
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
	// /sys as mounted by the parent describes the parent's network
	// namespace; a fresh sysfs describes ours. It may be locked, so mount
	// over it instead of unmounting.
	if err := unix.Mount("sysfs", "/sys", "sysfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return &Error{"mount sysfs", err}
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

// Run starts argv (default: $SHELL or /bin/sh) in a new sandbox and waits.
// It returns the child's exit code. Interrupts typed at the terminal reach the
// child (same process group); termination requests sent to nsnet are
// forwarded to it.
func Run(argv []string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	shell := len(argv) == 0
	if shell {
		sh := os.Getenv("SHELL")
		if sh == "" {
			sh = "/bin/sh"
		}
		argv = []string{sh}
	}
	cmd := Command(append([]string{InitArg, "--"}, argv...)...)
	cmd.Env = append(os.Environ(), EnvVar+"=1")
	if shell {
		cmd.Env = append(cmd.Env, promptEnv+"=1")
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, stderr
	signal.Ignore(unix.SIGINT, unix.SIGQUIT)
	defer signal.Reset(unix.SIGINT, unix.SIGQUIT)
	fwd := make(chan os.Signal, 4)
	signal.Notify(fwd, unix.SIGTERM, unix.SIGHUP)
	defer signal.Stop(fwd)
	if err := cmd.Start(); err != nil {
		return 0, &Error{"create namespaces", err}
	}
	done := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-fwd:
				_ = cmd.Process.Signal(s)
			case <-done:
				return
			}
		}
	}()
	err := cmd.Wait()
	close(done)
	return ExitCode(err)
}

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

// Init is the inside half of Run: given the arguments after InitArg, it sets
// the sandbox up and replaces the process with the requested command. It only
// returns on failure.
func Init(args []string) error {
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) == 0 {
		return errors.New("sandbox: no command")
	}
	if err := Setup(); err != nil {
		return err
	}
	if os.Getenv(promptEnv) == "1" {
		os.Unsetenv(promptEnv)
		args = withPrompt(args)
	}
	path, err := exec.LookPath(args[0])
	if err != nil {
		return err
	}
	netns.StdioOnlyOnExec()
	return unix.Exec(path, args, os.Environ())
}

package lab

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nsnet/nsnet/internal/echo"
	"github.com/nsnet/nsnet/lab/ledger"
	"github.com/nsnet/nsnet/netns"
)

// Processes are started behind a gate so that none ever runs without being
// in the ledger: the child is nsnet itself, waiting on a pipe; its PID and
// start time are written to the ledger; only then does the parent say "go"
// and the child exec the command. If nsnet dies before that, the pipe closes
// and the child exits without running anything. A second pipe, closed by a
// successful exec, carries the reason of a failed one back to up.

// GateArg is the hidden first argument of `nsnet exec` that runs the gate.
const GateArg = "--lab-gate"

// Descriptors of the gate: the go-ahead comes in on gateFD, a failure to
// exec goes out on statusFD.
const (
	gateFD   = 3
	statusFD = 4
)

// execWait bounds how long up waits for a released process to exec.
const execWait = 10 * time.Second

// goAhead is what the parent writes to open the gate.
const goAhead = "go\n"

// ProcError describes a failure to start or stop a lab process.
type ProcError struct {
	Op   string // "start", "stop"
	Node string
	Argv []string
	Err  error
}

func (e *ProcError) Error() string {
	return fmt.Sprintf("%s process %s in node %s: %v", e.Op, echo.Quote(quoteArgv(e.Argv)), e.Node, e.Err)
}

func (e *ProcError) Unwrap() error { return e.Err }

// Started is a process that waits behind its gate.
type Started struct {
	PID   int
	Start uint64
	Log   string
	// Release lets the process run its command.
	Release func() error
	// Abort makes it exit without running anything.
	Abort func()
}

// startGated starts argv in ns (nil: here) behind a gate, with its output
// appended to log.
func startGated(ns *netns.NS, exe, netnsDir, nsName, etcNetns string, argv []string, log string) (*Started, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	sr, sw, err := os.Pipe()
	if err != nil {
		w.Close()
		return nil, err
	}
	defer sw.Close()
	out, err := os.OpenFile(log, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		w.Close()
		sr.Close()
		return nil, err
	}
	defer out.Close()
	args := append([]string{"exec", GateArg, netnsDir, nsName, "--"}, argv...)
	cmd := exec.Command(exe, args...)
	cmd.Stdout, cmd.Stderr = out, out
	if etcNetns != "" {
		// The gate binds the node's hosts file from there.
		cmd.Env = append(os.Environ(), EtcNetnsEnv+"="+etcNetns)
	}
	cmd.ExtraFiles = []*os.File{r, sw}
	// Its own session: the terminal's signals and hangup do not reach it,
	// and its process group is the whole of what it starts.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if ns != nil {
		err = ns.Start(cmd)
	} else {
		err = cmd.Start()
	}
	if err != nil {
		w.Close()
		sr.Close()
		return nil, err
	}
	pid := cmd.Process.Pid
	start, _, err := procStat(pid)
	if err != nil {
		w.Close()
		sr.Close()
		cmd.Wait()
		return nil, err
	}
	return &Started{
		PID: pid, Start: start, Log: log,
		Release: func() error {
			defer sr.Close()
			_, err := io.WriteString(w, goAhead)
			w.Close()
			if err != nil {
				cmd.Wait()
				return err
			}
			// The status pipe closes when the exec succeeds; a failure
			// comes back as its reason.
			sr.SetReadDeadline(time.Now().Add(execWait))
			msg, rerr := io.ReadAll(io.LimitReader(sr, 4096))
			if len(msg) > 0 {
				cmd.Wait()
				return errors.New(string(msg))
			}
			// Not waited for: the process outlives nsnet.
			cmd.Process.Release()
			return rerr
		},
		Abort: func() {
			w.Close()
			sr.Close()
			cmd.Wait()
		},
	}, nil
}

// StartHelper starts argv, an nsnet helper of the lab (the fault delayer, a
// reverter), in the host's namespace behind the gate, with its output
// appended to log. The caller records it in the ledger, then releases it.
func StartHelper(exe string, argv []string, log string) (*Started, error) {
	return startGated(nil, exe, "", "", "", argv, log)
}

// StopHelper stops a helper recorded in the ledger, if it still runs.
func StopHelper(p ledger.Proc) error {
	if !procAlive(p) {
		return nil
	}
	return stopProc(p, 2*time.Second)
}

// HelperAlive reports whether the recorded process still runs (the same
// PID with the same start time).
func HelperAlive(p ledger.Proc) bool { return procAlive(p) }

// EtcNetnsEnv names the environment variable that moves the root of the
// nodes' per-namespace files (default /etc/netns): nsnet sandbox and tests
// point it into their own private directory.
const EtcNetnsEnv = "NSNET_ETC_NETNS"

// Gate is the child's side: it waits for the go-ahead on descriptor 3 and
// then becomes argv, inside the namespace named nsName of netnsDir with `ip
// netns exec` semantics (or here, for the host). It only returns on failure.
func Gate(netnsDir, nsName, etcNetns string, argv []string) error {
	f := os.NewFile(gateFD, "gate")
	if f == nil {
		return errors.New("lab gate: no descriptor 3")
	}
	b, _ := io.ReadAll(io.LimitReader(f, 16))
	f.Close()
	if string(b) != goAhead {
		// nsnet died before recording this process: run nothing.
		return errors.New("lab gate: closed without go-ahead")
	}
	// A lab process is no program run for the caller: it runs in its own
	// session with its log for output, and gets nothing of up's caller.
	err := execIn(netnsDir, nsName, etcNetns, argv, netns.Inherited{})
	if status := os.NewFile(statusFD, "status"); status != nil {
		io.WriteString(status, err.Error())
		status.Close()
	}
	return err
}

// execIn replaces the process with argv, in the named namespace with `ip
// netns exec` semantics, or here when nsName is empty, with in restored.
func execIn(netnsDir, nsName, etcNetns string, argv []string, in netns.Inherited) error {
	if len(argv) == 0 {
		return errors.New("no command given")
	}
	if nsName == "" {
		path, err := exec.LookPath(argv[0])
		if err != nil {
			return err
		}
		netns.StdioOnlyOnExec()
		in.Restore()
		return unix.Exec(path, argv, os.Environ())
	}
	ns, err := netns.Dir{Path: netnsDir}.Open(nsName)
	if err != nil {
		return err
	}
	return netns.Exec(ns, argv, netns.ExecOptions{Name: nsName, EtcDir: etcNetns, Inherited: in})
}

// statFields returns the fields of /proc/PID/stat after the command name
// (field 2), which may hold spaces and parentheses: state is [0], pgrp [2],
// starttime [19].
func statFields(pid string) ([][]byte, error) {
	b, err := os.ReadFile(filepath.Join("/proc", pid, "stat"))
	if err != nil {
		return nil, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil, fmt.Errorf("/proc/%s/stat: malformed", pid)
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 20 {
		return nil, fmt.Errorf("/proc/%s/stat: malformed", pid)
	}
	return f, nil
}

// procStat reads a process's start time (clock ticks after boot) and state
// letter.
func procStat(pid int) (start uint64, state byte, err error) {
	f, err := statFields(strconv.Itoa(pid))
	if err != nil {
		return 0, 0, err
	}
	start, err = strconv.ParseUint(string(f[19]), 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return start, f[0][0], nil
}

// procAlive reports whether the ledger's process still runs: same PID and
// same start time, and not a zombie. It may still be at its gate (see
// ProcessRunning): such a process is signalled by a stop like any other.
func procAlive(p ledger.Proc) bool {
	start, state, err := procStat(p.PID)
	return err == nil && start == p.Start && state != 'Z' && state != 'X'
}

// ProcessRunning reports whether the ledger's process runs its command: it
// is alive and past its gate. A process still at its gate while another
// nsnet holds the lab's lock was recorded by an nsnet that died before its
// go-ahead took effect: it will exit, or run its command, on its own. It is
// not kept as the lab's process then: it is stopped (it is alive) and
// started again, else an up repairing a killed one could leave the node
// without its process.
func ProcessRunning(p ledger.Proc) bool { return procAlive(p) && !atGate(p.PID) }

// atGate reports whether the process is still an nsnet gate (it has not
// become its command).
func atGate(pid int) bool {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	if err != nil {
		return false
	}
	args := strings.Split(string(b), "\x00")
	return len(args) > 2 && args[1] == "exec" && args[2] == GateArg
}

// stopProc stops a ledger process and its process group: SIGTERM, then
// SIGKILL after grace. It signals nothing unless the PID still has the
// recorded start time, checked through a pidfd so that the process checked
// is the process signalled.
func stopProc(p ledger.Proc, grace time.Duration) error {
	if p.PID <= 1 {
		return nil
	}
	fd, err := unix.PidfdOpen(p.PID, 0)
	if errors.Is(err, unix.ESRCH) {
		return nil
	}
	if err != nil {
		return &ProcError{Op: "stop", Node: p.Node, Argv: p.Argv, Err: err}
	}
	defer unix.Close(fd)
	if !procAlive(p) {
		return nil // exited, or the PID is another process's now
	}
	// The leader is alive and is ours, so its PID is its process group's
	// ID and no other group can have it.
	unix.Kill(-p.PID, unix.SIGTERM)
	unix.PidfdSendSignal(fd, unix.SIGTERM, nil, 0)
	if waitExit(fd, grace) && groupGone(p.PID, grace/4) {
		return nil
	}
	unix.Kill(-p.PID, unix.SIGKILL)
	unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0)
	if !waitExit(fd, 5*time.Second) {
		return &ProcError{Op: "stop", Node: p.Node, Argv: p.Argv, Err: fmt.Errorf("pid %d survived SIGKILL", p.PID)}
	}
	return nil
}

// waitExit waits until the pidfd's process has exited.
func waitExit(fd int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		ms := int(time.Until(deadline) / time.Millisecond)
		if ms < 0 {
			ms = 0
		}
		n, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, ms)
		if err == nil && n > 0 {
			return true
		}
		if errors.Is(err, unix.EINTR) {
			continue
		}
		return false
	}
}

// groupGone waits until no process of the group is left running. Exited
// members may stay zombies for a while (their reaper is not nsnet), which
// kill(-pgid, 0) cannot tell from running ones, so /proc is read.
func groupGone(pgid int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for delay := time.Millisecond; ; delay *= 2 {
		if err := unix.Kill(-pgid, 0); errors.Is(err, unix.ESRCH) || !groupRunning(pgid) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(min(delay, 50*time.Millisecond))
	}
}

// groupRunning reports whether a process of the group is alive and not a
// zombie.
func groupRunning(pgid int) bool {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return true
	}
	want := strconv.Itoa(pgid)
	for _, e := range ents {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		f, err := statFields(e.Name())
		if err == nil && string(f[2]) == want && f[0][0] != 'Z' && f[0][0] != 'X' {
			return true
		}
	}
	return false
}

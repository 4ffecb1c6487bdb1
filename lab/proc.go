package lab

import (
	"bytes"
	"encoding/json"
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

// A lab process outlives the up that starts it, so its parent would be
// whoever adopts orphans, and its exit status would be lost. So the gate is
// started by a reaper: a small nsnet (`nsnet exec --lab-reaper`) that forks
// the gate, tells up its PID, passes the go-ahead on, waits for the process
// and writes how it ended to NODE.INDEX.exit in the lab's directory. The
// process itself is as before: the PID in the ledger, a session of its own,
// the log for output, signals straight to it. The reaper lives exactly as
// long as the process (it exits once it has reaped it, and runs nothing if
// the go-ahead never comes), holds no namespace (it stays in the one up
// runs in) and is in the ledger with it, so that down waits for it.

// ReaperArg is the hidden first argument of `nsnet exec` that runs a
// reaper.
const ReaperArg = "--lab-reaper"

// exitFileEnv names the file the reaper writes the exit status to; the
// reaper takes it out of the environment the process gets.
const exitFileEnv = "NSNET_LAB_EXIT_FILE"

// reportFD is where the reaper writes the gate's PID.
const reportFD = 5

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
	// Reaper and ReaperStart identify the process's reaper, if it has one.
	Reaper      int
	ReaperStart uint64
	// Release lets the process run its command.
	Release func() error
	// ready, when set, waits until PID and Start are known.
	ready func() error
	// Abort makes it exit without running anything.
	Abort func()
}

// Ready waits until the process's PID and start time are known (with a
// reaper, when it has started the gate). On failure the process is gone.
func (s *Started) Ready() error {
	if s.ready == nil {
		return nil
	}
	f := s.ready
	s.ready = nil
	return f()
}

// reportWait bounds how long up waits for a reaper to say its gate's PID.
const reportWait = 10 * time.Second

// startGated starts argv behind a gate, with its output appended to log: in
// the namespace named nsName of netnsDir (which the gate enters as it
// becomes argv), or here. With exitFile set, the gate is started by a
// reaper that writes the process's exit status there.
func startGated(exe, netnsDir, nsName, etcNetns string, argv []string, log, exitFile string) (*Started, error) {
	var files []*os.File
	closeAll := func() {
		for _, f := range files {
			f.Close()
		}
	}
	pipe := func() (*os.File, *os.File, error) {
		r, w, err := os.Pipe()
		if err == nil {
			files = append(files, r, w)
		}
		return r, w, err
	}
	r, w, err := pipe()
	if err != nil {
		return nil, err
	}
	sr, sw, err := pipe()
	if err != nil {
		closeAll()
		return nil, err
	}
	out, err := os.OpenFile(log, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		closeAll()
		return nil, err
	}
	defer out.Close()
	args := append([]string{"exec", GateArg, netnsDir, nsName, "--"}, argv...)
	env := os.Environ()
	if etcNetns != "" {
		// The gate binds the node's hosts file from there.
		env = append(env, EtcNetnsEnv+"="+etcNetns)
	}
	extra := []*os.File{r, sw}
	var rr, rw *os.File
	if exitFile != "" {
		args[1] = ReaperArg
		env = append(env, exitFileEnv+"="+exitFile)
		if rr, rw, err = pipe(); err != nil {
			closeAll()
			return nil, err
		}
		extra = append(extra, rw)
	}
	cmd := exec.Command(exe, args...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = env
	cmd.ExtraFiles = extra
	// Its own session: the terminal's signals and hangup do not reach it,
	// and its process group is the whole of what it starts.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	// The child's ends.
	r.Close()
	sw.Close()
	if rw != nil {
		rw.Close()
	}
	if err != nil {
		w.Close()
		sr.Close()
		return nil, err
	}
	fail := func(err error) (*Started, error) {
		w.Close()
		sr.Close()
		if rr != nil {
			rr.Close()
		}
		cmd.Wait()
		return nil, err
	}
	st := &Started{PID: cmd.Process.Pid, Log: log}
	// The PID and start time of the process, once known: at once without
	// a reaper, when the reaper reports its gate's with one (Ready: so
	// that up starts all its reapers before it waits for the first).
	ident := func() error {
		if rr != nil {
			st.Reaper = st.PID
			if st.ReaperStart, _, err = procStat(st.Reaper); err != nil {
				return err
			}
			rr.SetReadDeadline(time.Now().Add(reportWait))
			b, _ := io.ReadAll(io.LimitReader(rr, 32))
			rr.Close()
			if st.PID, err = strconv.Atoi(strings.TrimSpace(string(b))); err != nil {
				return fmt.Errorf("reaper did not start the process (see %s)", log)
			}
		}
		st.Start, _, err = procStat(st.PID)
		return err
	}
	if rr == nil {
		if err := ident(); err != nil {
			return fail(err)
		}
	} else {
		st.ready = func() error {
			if err := ident(); err != nil {
				fail(err)
				return err
			}
			return nil
		}
	}
	st.Release = func() error {
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
		// Not waited for: the process (or its reaper) outlives nsnet.
		cmd.Process.Release()
		return rerr
	}
	st.Abort = func() {
		w.Close()
		sr.Close()
		cmd.Wait()
	}
	return st, nil
}

// Reaper is the reaper's side (see ReaperArg): descriptors 3 and 4 are the
// gate's, 5 takes the gate's PID. It starts the gate, passes the go-ahead
// on, waits for the process and writes its exit status to the file named
// by NSNET_LAB_EXIT_FILE. It returns when the process has ended, or at
// once when the go-ahead does not come.
func Reaper(netnsDir, nsName string, argv []string) error {
	in, status, report := os.NewFile(gateFD, "gate"), os.NewFile(statusFD, "status"), os.NewFile(reportFD, "report")
	if in == nil || status == nil || report == nil {
		return errors.New("lab reaper: no descriptors 3, 4 and 5")
	}
	// Inherited without close-on-exec: the gate must not hold them (up
	// reads the report to its end).
	unix.CloseOnExec(gateFD)
	unix.CloseOnExec(reportFD)
	exitFile := os.Getenv(exitFileEnv)
	os.Unsetenv(exitFileEnv)
	if exitFile == "" {
		return errors.New("lab reaper: " + exitFileEnv + " not set")
	}
	// The directory is held from now on: once down has removed it, the
	// status is written nowhere (a file cannot be made in a directory
	// that is gone), so a late reaper never leaves a file behind.
	dir, err := os.Open(filepath.Dir(exitFile))
	if err != nil {
		return err
	}
	defer dir.Close()
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	gr, gw, err := os.Pipe()
	if err != nil {
		return err
	}
	cmd := exec.Command(exe, append([]string{"exec", GateArg, netnsDir, nsName, "--"}, argv...)...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.ExtraFiles = []*os.File{gr, status}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	gr.Close()
	status.Close()
	if err != nil {
		return err
	}
	ex := ProcExit{PID: cmd.Process.Pid}
	// Read while the gate waits for its go-ahead: the ledger knows the
	// process by PID and start time, and so does the file.
	ex.Start, _, err = procStat(ex.PID)
	fmt.Fprintf(report, "%d\n", ex.PID)
	report.Close()
	b, _ := io.ReadAll(io.LimitReader(in, 16))
	in.Close()
	if string(b) != goAhead {
		// Never recorded: the gate exits without running anything, and
		// there is no status to keep.
		gw.Close()
		cmd.Wait()
		return nil
	}
	io.WriteString(gw, goAhead)
	gw.Close()
	cmd.Wait()
	if err != nil {
		return err // no start time: the file could not be matched
	}
	ex.At = time.Now().UTC()
	ws := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if ws.Signaled() {
		ex.Signal = int(ws.Signal())
	} else {
		ex.Code = ws.ExitStatus()
	}
	return writeExit(dir, filepath.Base(exitFile), ex)
}

// ProcExit is how a lab process ended, as its reaper saw it: the exit code,
// or the signal that killed it.
type ProcExit struct {
	PID    int       `json:"pid"`
	Start  uint64    `json:"start"`
	Code   int       `json:"code"`
	Signal int       `json:"signal,omitempty"`
	At     time.Time `json:"at"`
}

// exitName is the file, in the lab's directory, that holds how the node's
// process number index ended.
func exitName(node string, index int) string { return node + "." + strconv.Itoa(index) + ".exit" }

// writeExit writes the exit status into dir, atomically (a reader sees the
// whole file or none).
func writeExit(dir *os.File, name string, ex ProcExit) error {
	b, err := json.Marshal(ex)
	if err != nil {
		return err
	}
	fd := int(dir.Fd())
	tmp := "." + name + "." + strconv.Itoa(os.Getpid())
	f, err := unix.Openat(fd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return err
	}
	_, werr := unix.Write(f, append(b, '\n'))
	unix.Close(f)
	if werr == nil {
		werr = unix.Renameat(fd, tmp, fd, name)
	}
	if werr != nil {
		unix.Unlinkat(fd, tmp, 0)
	}
	return werr
}

// readExit reads how the ledger's process ended, if its reaper wrote it:
// nil when there is no file or it is another run's.
func readExit(dir string, p ledger.Proc) *ProcExit {
	b, err := os.ReadFile(filepath.Join(dir, exitName(p.Node, p.Index)))
	if err != nil {
		return nil
	}
	var ex ProcExit
	if json.Unmarshal(b, &ex) != nil || ex.PID != p.PID || ex.Start != p.Start {
		return nil
	}
	return &ex
}

// StartHelper starts argv, an nsnet helper of the lab (the fault delayer, a
// reverter), in the host's namespace behind the gate, with its output
// appended to log. The caller records it in the ledger, then releases it.
func StartHelper(exe string, argv []string, log string) (*Started, error) {
	return startGated(exe, "", "", "", argv, log, "")
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
//
// A process in the middle of execve shows an empty cmdline for a moment
// (its new memory has no argument pages yet, though exec has already
// closed its close-on-exec descriptors, which is when exec.Cmd.Start
// returns): that is neither the gate nor the command, so it is read again
// until the exec is over, for 200 ms at most. A zombie's cmdline is empty
// for good: it is no gate.
func atGate(pid int) bool {
	path := filepath.Join("/proc", strconv.Itoa(pid), "cmdline")
	for range 200 {
		b, err := os.ReadFile(path)
		if err != nil {
			return false
		}
		if len(b) > 0 {
			args := strings.Split(string(b), "\x00")
			return len(args) > 2 && args[1] == "exec" && args[2] == GateArg
		}
		if _, state, err := procStat(pid); err != nil || state == 'Z' || state == 'X' {
			return false
		}
		time.Sleep(time.Millisecond)
	}
	return false
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

// stopReaper waits for the process's reaper to exit, and kills it if it
// does not (it has nothing left to do once the process is gone).
func stopReaper(p ledger.Proc, grace time.Duration) {
	r := ledger.Proc{PID: p.Reaper, Start: p.ReaperStart}
	if r.PID <= 1 {
		return
	}
	fd, err := unix.PidfdOpen(r.PID, 0)
	if err != nil {
		return
	}
	defer unix.Close(fd)
	if !procAlive(r) || waitExit(fd, grace) {
		return
	}
	unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0)
	waitExit(fd, 5*time.Second)
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

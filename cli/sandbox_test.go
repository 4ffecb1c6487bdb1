package cli_test

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ignoredSet is what the caller of nsnet ignores in these tests, as
// `trap ” USR2 PIPE TERM QUIT` sets it: SigIgn 0x5804.
const ignoredSet = "USR2 PIPE TERM QUIT"

// sigIgnAfterTrap runs script in sh after the trap and returns what it
// printed; the script prints the SigIgn line of the program under test.
func sigIgnAfterTrap(t *testing.T, env []string, script string) string {
	t.Helper()
	// The binary under test by its path: "nsnet" in the script is it.
	script = strings.ReplaceAll(script, "nsnet ", nsnetBin+" ")
	cmd := exec.Command("sh", "-c", "trap '' "+ignoredSet+"; "+script)
	cmd.Env = append(os.Environ(), "PATH="+dirOfBin()+":"+os.Getenv("PATH"))
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", script, err, out)
	}
	return strings.TrimSpace(string(out))
}

// TestExecKeepsCallersSignalsAndStdin: every way nsnet runs a command for
// its caller gives it what `ip netns exec` gives it: the signals the caller
// ignores stay ignored (the Go runtime had replaced them with handlers,
// which an exec resets to the default), and a stdin the caller closed stays
// closed (the Go runtime had opened /dev/null on it).
func TestExecKeepsCallersSignalsAndStdin(t *testing.T) {
	leakCheck(t)
	removeLater(t, nil, []string{"signs"})
	must(t, "netns", "add", "signs")
	state := "NSNET_STATE_DIR=" + t.TempDir()
	labFile := filepath.Join(t.TempDir(), "sig.yaml")
	if err := os.WriteFile(labFile, []byte("lab: sig\nnodes:\n  x: {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := nsnetIn(t, []string{state}, "up", labFile); r.code != 0 {
		t.Fatalf("up: %+v", r)
	}
	t.Cleanup(func() { nsnetIn(t, []string{state}, "down", "sig") })

	want := "SigIgn:\t0000000000005804"
	if got := sigIgnAfterTrap(t, nil, "grep SigIgn /proc/self/status"); got != want {
		t.Fatalf("the caller itself: %q, want %q", got, want)
	}
	if got := sigIgnAfterTrap(t, nil, "ip netns exec signs grep SigIgn /proc/self/status"); got != want {
		t.Errorf("ip netns exec (the reference): %q", got)
	}
	for _, c := range []struct {
		name string
		env  []string
		run  string
	}{
		{"netns exec (C)", nil, "nsnet netns exec signs"},
		{"netns exec (Go)", []string{"NSNET_NO_FASTEXEC=1"}, "nsnet netns exec signs"},
		{"exec LAB NODE", []string{state}, "nsnet exec sig x --"},
		{"exec LAB host", []string{state}, "nsnet exec sig host --"},
		{"sandbox", nil, "nsnet sandbox --"},
	} {
		if got := sigIgnAfterTrap(t, c.env, c.run+" grep SigIgn /proc/self/status"); got != want {
			t.Errorf("%s: %q, want %q", c.name, got, want)
		}
		// The shell closes stdin for nsnet; nsnet's sh must see it closed.
		if got := sigIgnAfterTrap(t, c.env, c.run+" sh -c 'if [ -e /proc/self/fd/0 ]; then echo open; else echo closed; fi' <&-"); got != "closed" {
			t.Errorf("%s with stdin closed: the command saw it %s", c.name, got)
		}
	}
}

// TestSandboxDefaultSignals: inside the sandbox, a command has default
// dispositions when the caller ignores nothing (nsnet must not pass on what
// it ignores itself while it waits), so ^C stops it.
func TestSandboxDefaultSignals(t *testing.T) {
	r := nsnet(t, "sandbox", "--", "grep", "SigIgn", "/proc/self/status")
	if got := strings.TrimSpace(r.out); r.code != 0 || got != "SigIgn:\t0000000000000000" {
		t.Errorf("in the sandbox: %q (%+v)", got, r)
	}
}

// TestSandboxInterrupt types ^C at a terminal where `nsnet sandbox -- sleep`
// runs: the sleep ends and nsnet exits with 130, as without the sandbox.
func TestSandboxInterrupt(t *testing.T) {
	master, slave := openPTY(t)
	cmd := exec.Command(nsnetBin, "sandbox", "--", "sh", "-c", "echo ready; exec sleep 100")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	defer cmd.Process.Kill()
	lines := bufio.NewReader(master)
	for {
		line, err := lines.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the terminal: %v", err)
		}
		if strings.TrimSpace(line) == "ready" {
			break
		}
	}
	go func() {
		for range 100 {
			time.Sleep(50 * time.Millisecond)
			if _, err := master.Write([]byte{3}); err != nil { // ^C
				return
			}
		}
	}()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		t.Fatal("^C did not stop the command in the sandbox")
	}
	if code := cmd.ProcessState.ExitCode(); code != 130 {
		t.Errorf("exit status %d, want 130 (SIGINT)", code)
	}
}

// openPTY opens a pseudo-terminal pair.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here (/dev/ptmx): %v", err)
	}
	t.Cleanup(func() { m.Close() })
	var unlock int32
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, m.Fd(), unix.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); e != 0 {
		t.Fatal(e)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("pseudo-terminal %d: %v", n, err)
	}
	return m, s
}

// processesWith lists the live processes (here, and so in every sandbox
// started from here) whose command line has arg.
func processesWith(arg string) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		st, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if i := strings.LastIndexByte(string(st), ')'); i > 0 && strings.HasPrefix(string(st[i+1:]), " Z") {
			continue
		}
		for _, a := range strings.Split(string(b), "\x00") {
			if a == arg {
				out = append(out, pid)
			}
		}
	}
	return out
}

// gone fails the test if a process with arg is still running shortly after
// the sandbox exited, and kills it.
func gone(t *testing.T, what, arg string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		pids := processesWith(arg)
		if len(pids) == 0 {
			return
		}
		if time.Now().After(deadline) {
			for _, p := range pids {
				unix.Kill(p, unix.SIGKILL)
			}
			t.Errorf("%s: processes %v outlived the sandbox", what, pids)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSandboxContainsProcesses: what is started inside `nsnet sandbox` ends
// with it: a background job, a lab's processes (which nsnet up detaches into
// their own sessions), a server started with netns exec; and lab processes
// are still managed inside (down stops them, by PID and start time, through
// the sandbox's own /proc).
func TestSandboxContainsProcesses(t *testing.T) {
	tag := strconv.Itoa(100000 + rand.IntN(800000))
	dir := t.TempDir()
	labFile := filepath.Join(dir, "procs.yaml")
	lab := fmt.Sprintf("lab: procs\nnodes:\n  a:\n    processes: [{cmd: [sleep, '%s.1']}]\n  host:\n    processes: [{cmd: [sleep, '%s.2']}]\n", tag, tag)
	if err := os.WriteFile(labFile, []byte(lab), 0o644); err != nil {
		t.Fatal(err)
	}

	// A background job. (Its output goes elsewhere: a process left holding
	// the pipe nsnet's output goes to would make this test hang, not fail.)
	if r := nsnet(t, "sandbox", "--", "sh", "-c", "sleep "+tag+".3 >/dev/null 2>&1 & echo $!"); r.code != 0 {
		t.Fatalf("sandbox: %+v", r)
	}
	gone(t, "a background job", tag+".3")

	// A lab left up, and a daemon in a namespace.
	script := "nsnet up " + labFile + " >/dev/null && nsnet netns add d && " +
		"(nsnet netns exec d sleep " + tag + ".4 >/dev/null 2>&1 &) && nsnet status procs"
	r := nsnet(t, "sandbox", "--", "sh", "-c", script)
	if r.code != 0 || strings.Count(r.out, "running") < 2 {
		t.Fatalf("sandbox with a lab: %+v", r)
	}
	gone(t, "a lab process", tag+".1")
	gone(t, "a lab process on the host node", tag+".2")
	gone(t, "a process started with netns exec", tag+".4")

	// Inside, down still finds and stops the lab's processes.
	script = "nsnet up " + labFile + " >/dev/null && nsnet down procs >/dev/null && " +
		"for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline; echo; done | grep -c '^sleep " + tag + "' || true"
	r = nsnet(t, "sandbox", "--", "sh", "-c", script)
	if r.code != 0 || strings.TrimSpace(r.out) != "0" {
		t.Errorf("down inside the sandbox left processes (count %q): %+v", strings.TrimSpace(r.out), r)
	}
}

package lab_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nsnet/nsnet/lab"
	"github.com/nsnet/nsnet/lab/ledger"
)

const exitLab = `lab: exits
nodes:
  a:
    processes:
      - {cmd: [sh, -c, "echo failing; exit 3"]}
      - {cmd: sleep 9999.4}
      - {cmd: [sh, -c, "exit 0"]}
links:
  - {a: {node: host, name: ex0, addresses: [10.78.0.1/24]}, b: {node: a, name: eth0, addresses: [10.78.0.2/24]}}
`

// TestProcessExitStatus: the reaper keeps how a lab process ended, and
// status shows it (exit 3, exit 0, killed by SIGKILL) in both forms; a
// restarted process starts with no status; down waits for the reapers and
// leaves nothing.
func TestProcessExitStatus(t *testing.T) {
	// The nsnet binary's reaper runs without Go (internal/fastexec);
	// NSNET_NO_FASTEXEC=1 makes it lab.Reaper, which defines it.
	for _, path := range []string{"C", "Go"} {
		t.Run(path, func(t *testing.T) {
			e := newEnv(t)
			if path == "C" {
				// A build without cgo has no constructor: every reaper
				// is the Go one.
				out, err := exec.Command("go", "version", "-m", e.bin).Output()
				if err == nil && !strings.Contains(string(out), "CGO_ENABLED=1") {
					t.Skip("nsnet was built without cgo: no reaper without Go")
				}
			}
			if path == "Go" {
				e.extra = append(e.extra, "NSNET_NO_FASTEXEC=1")
			}
			exitStatus(t, e, path == "C")
		})
	}
}

func exitStatus(t *testing.T, e *env, native bool) {
	before := e.snap()
	file := e.write("exits.yaml", exitLab)
	wantIn(t, "up", e.must("up", file), "3 processes started")
	ended := func(p lab.ProcStatus) bool { return !p.Running && p.Ended() != "" }
	var st lab.LabStatus
	waitLong(t, "the exit statuses", func() bool {
		st = e.status("exits")
		ps := st.NodeStatus[1].Processes
		return ended(ps[0]) && ended(ps[2])
	})
	ps := st.NodeStatus[1].Processes
	if c := ps[0].ExitCode; c == nil || *c != 3 || ps[0].Signal != "" || ps[0].Exited == nil {
		t.Errorf("process 0: %+v, want exit_code 3", ps[0])
	}
	if c := ps[2].ExitCode; c == nil || *c != 0 {
		t.Errorf("process 2: %+v, want exit_code 0", ps[2])
	}
	if !ps[1].Running || ps[1].ExitCode != nil || ps[1].Signal != "" {
		t.Errorf("process 1: %+v, want running with no exit status", ps[1])
	}
	// The JSON names the fields as documented.
	raw := e.must("-j", "status", "exits")
	wantIn(t, "status -j", raw, `"exit_code": 3`, `"exit_code": 0`)
	wantIn(t, "status", e.must("status", "exits"), "degraded", "exited (exit 3)")
	wantIn(t, "status exits a", e.must("status", "exits", "a"), "EXITED (exit 3): sh -c", "EXITED (exit 0): sh -c", "running: sleep 9999.4")

	// The process is the ledger's PID, a child of its reaper, in a
	// session of its own; the reaper is recorded too.
	led := readLedger(t, e, "exits")
	var sleeper ledger.Proc
	for _, p := range led.Procs {
		if p.Index == 1 {
			sleeper = p
		}
	}
	if sleeper.Reaper == 0 || sleeper.ReaperStart == 0 {
		t.Fatalf("no reaper in the ledger: %+v", sleeper)
	}
	// The reaper without Go is one thread; the Go runtime starts several.
	b, err := os.ReadFile("/proc/" + itoa(sleeper.Reaper) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	if one := strings.Contains(string(b), "\nThreads:\t1\n"); one != native {
		t.Errorf("reaper without Go %v, want %v:\n%s", one, native, b)
	}
	if ppid := statField(t, sleeper.PID, 1); ppid != sleeper.Reaper {
		t.Errorf("process %d has parent %d, its reaper is %d", sleeper.PID, ppid, sleeper.Reaper)
	}
	if sid := statField(t, sleeper.PID, 3); sid != sleeper.PID {
		t.Errorf("process %d is in session %d, not its own", sleeper.PID, sid)
	}
	b, _ = os.ReadFile("/proc/" + itoa(sleeper.PID) + "/environ")
	if strings.Contains(string(b), "NSNET_LAB_EXIT_FILE") {
		t.Errorf("the reaper's variable reached the process")
	}
	if err := syscall.Kill(sleeper.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitLong(t, "the killed process's status", func() bool {
		st = e.status("exits")
		return ended(st.NodeStatus[1].Processes[1])
	})
	if p := st.NodeStatus[1].Processes[1]; p.Signal != "SIGKILL" || p.ExitCode != nil {
		t.Errorf("killed process: %+v, want signal SIGKILL", p)
	}
	wantIn(t, "status exits a", e.must("status", "exits", "a"), "EXITED (killed by SIGKILL): sleep 9999.4")
	waitLong(t, "the reaper to exit", func() bool { return !alive(sleeper.Reaper, sleeper.ReaperStart) })

	// up restarts all three; a restarted process has no status of its own
	// until it ends.
	wantIn(t, "second up", e.must("up", file), "3 processes started")
	st = e.status("exits")
	if p := st.NodeStatus[1].Processes[1]; !p.Running || p.Restarts != 1 || p.Ended() != "" {
		t.Errorf("restarted process: %+v", p)
	}
	led = readLedger(t, e, "exits")
	e.must("down", "exits")
	for _, p := range led.Procs {
		if alive(p.Reaper, p.ReaperStart) || alive(p.PID, p.Start) {
			t.Errorf("down left process %d or its reaper %d", p.PID, p.Reaper)
		}
	}
	e.sameAs(before, "after down")
}

// waitLong waits for a condition with a bound generous enough for a loaded
// machine.
func waitLong(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !ok(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func readLedger(t *testing.T, e *env, name string) *ledger.Ledger {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(e.state, name, "ledger.json"))
	if err != nil {
		t.Fatal(err)
	}
	var led ledger.Ledger
	if err := json.Unmarshal(b, &led); err != nil {
		t.Fatal(err)
	}
	return &led
}

// statField reads field i (0: state, 1: ppid, 2: pgrp, 3: session) after a
// process's name in /proc/PID/stat.
func statField(t *testing.T, pid, i int) int {
	t.Helper()
	b, err := os.ReadFile("/proc/" + itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	n, err := strconv.Atoi(f[i])
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// alive reports whether pid runs with that start time (field 22).
func alive(pid int, start uint64) bool {
	if pid <= 0 {
		return false
	}
	b, err := os.ReadFile("/proc/" + itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	return f[0] != "Z" && f[19] == itoa(int(start))
}

func itoa(n int) string { return strconv.Itoa(n) }

const alwaysLab = `lab: always
nodes:
  a: {responders: {serve: [tcp:7000, udp:7001, "http:7002"], always: true}}
  b: {}
links:
  - {a: {node: a, name: eth0, addresses: [10.79.0.1/24]}, b: {node: b, name: eth0, addresses: [10.79.0.2/24]}}
expect:
  - {from: b, to: a, proto: "tcp:7000"}
  - {from: b, to: a, proto: "udp:7001"}
  - {from: b, to: a, proto: "http:7002/"}
`

// TestRespondersAlwaysRun: responders with always: true answer while the
// lab is up, without check, as processes of their node; check then uses
// them (it starts none of its own there, which would find the ports
// taken); down stops them.
func TestRespondersAlwaysRun(t *testing.T) {
	e := newEnv(t)
	before := e.snap()
	file := e.write("always.yaml", alwaysLab)
	wantIn(t, "plan", e.must("plan", file), "ip netns exec always-a setsid nsnet serve tcp :7000 &")
	wantIn(t, "up", e.must("up", file), "3 processes started")
	st := e.status("always")
	if ps := st.NodeStatus[1].Processes; len(ps) != 3 || !ps[0].Running || !ps[1].Running || !ps[2].Running {
		t.Fatalf("responder processes: %+v", ps)
	}
	// No check running: the HTTP responder answers a fetch from b.
	var out string
	waitLong(t, "the http responder", func() bool {
		r := e.run("exec", "always", "b", e.bin, "fetch", "http://10.79.0.1:7002/")
		out = r.out
		return r.code == 0
	})
	if out == "" {
		t.Errorf("fetch: empty body")
	}
	r := e.run("check", file)
	if r.code != 0 {
		t.Fatalf("check: exit %d\n%s\n%s", r.code, r.out, r.err)
	}
	wantIn(t, "check", r.out, "3 passed, 0 failed")
	wantIn(t, "second up", e.must("up", file), "up to date: no changes")
	e.must("down", "always")
	e.sameAs(before, "after down")
}

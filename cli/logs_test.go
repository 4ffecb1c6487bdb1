package cli_test

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestLogs: nsnet logs prints a node's process output, picks one process by
// index or program, follows new output with -f, and names what is missing.
func TestLogs(t *testing.T) {
	leakCheck(t)
	dir := t.TempDir()
	env := []string{"NSNET_STATE_DIR=" + filepath.Join(dir, "state"), "NSNET_ETC_NETNS=" + filepath.Join(dir, "etc")}
	file := filepath.Join(dir, "logs.yaml")
	os.WriteFile(file, []byte(`lab: lgs
nodes:
  a:
    processes:
      - {cmd: [sh, -c, "echo first; exec sleep 100"]}
      - {cmd: [sh, -c, "i=0; while :; do i=$((i+1)); echo tick $i; sleep 0.1; done"]}
  b: {}
`), 0o644)
	if r := nsnetIn(t, env, "up", file); r.code != 0 {
		t.Fatalf("up: %+v", r)
	}
	t.Cleanup(func() { nsnetIn(t, env, "down", "lgs") })
	time.Sleep(300 * time.Millisecond)
	r := nsnetIn(t, env, "logs", "lgs", "a")
	if r.code != 0 || !strings.Contains(r.out, "==> a process 0: sh -c echo first; exec sleep 100 <==\nfirst\n") || !strings.Contains(r.out, "tick 1\n") {
		t.Errorf("logs lgs a: %+v", r)
	}
	if r := nsnetIn(t, env, "logs", "lgs", "a", "0"); r.code != 0 || r.out != "first\n" {
		t.Errorf("logs lgs a 0: %+v", r)
	}
	if r := nsnetIn(t, env, "logs", "lgs", "a", "sh"); r.code != 0 || !strings.Contains(r.out, "first") {
		t.Errorf("logs lgs a sh: %+v", r)
	}
	if r := nsnetIn(t, env, "logs", "lgs", "a", "7"); r.code != 1 || !strings.Contains(r.err, `has no process "7"`) {
		t.Errorf("logs lgs a 7: %+v", r)
	}
	if r := nsnetIn(t, env, "logs", "lgs", "c"); r.code != 1 || !strings.Contains(r.err, "no node c") {
		t.Errorf("logs lgs c: %+v", r)
	}
	if r := nsnetIn(t, env, "logs", "lgs", "b"); r.code != 0 || !strings.Contains(r.err, "runs no processes") {
		t.Errorf("logs lgs b: %+v", r)
	}
	// -f: lines written after it started arrive.
	before := strings.Count(nsnetIn(t, env, "logs", "lgs", "a", "1").out, "tick")
	cmd := exec.Command(nsnetBin, "logs", "lgs", "a", "1", "-f")
	cmd.Env = append(os.Environ(), env...)
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Signal(os.Interrupt)
	sc := bufio.NewScanner(out)
	n := 0
	deadline := time.Now().Add(10 * time.Second)
	for sc.Scan() && time.Now().Before(deadline) {
		if n++; n > before+5 {
			return
		}
	}
	t.Errorf("logs -f: %d lines, want more than %d", n, before+5)
}

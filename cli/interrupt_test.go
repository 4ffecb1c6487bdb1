package cli_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestInterruptedUp: Ctrl-C during up stops it between two steps; nsnet
// says how far it got, that the lab is incomplete and which commands finish
// or undo it, exits 130, and both commands then work.
func TestInterruptedUp(t *testing.T) {
	leakCheck(t)
	var b strings.Builder
	b.WriteString("lab: big\nnodes:\n")
	const pairs = 300
	for i := 0; i < pairs; i++ {
		fmt.Fprintf(&b, "  a%d: {}\n  b%d: {}\n", i, i)
	}
	b.WriteString("links:\n")
	for i := 0; i < pairs; i++ {
		fmt.Fprintf(&b, "  - a: {node: a%d, name: eth0, addresses: [10.%d.%d.1/30]}\n    b: {node: b%d, name: eth0, addresses: [10.%d.%d.2/30]}\n",
			i, 100+i/250, i%250, i, 100+i/250, i%250)
	}
	file := filepath.Join(t.TempDir(), "big.yaml")
	if err := os.WriteFile(file, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	state := t.TempDir()
	env := []string{"NSNET_STATE_DIR=" + state}
	t.Cleanup(func() { nsnetIn(t, env, "down", "big") })

	cmd := exec.Command(nsnetBin, "up", file)
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The ledger is written before the first change, after the handler is
	// in place: interrupt then.
	ledger := filepath.Join(state, "big", "ledger.json")
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := os.Stat(ledger); err == nil {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("no ledger after 20s: %s", stderr.String())
		}
		time.Sleep(time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGINT)
	err := cmd.Wait()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	}
	msg := stderr.String()
	for _, want := range []string{"nsnet: up big interrupted after ", " steps: the lab is incomplete",
		`run "nsnet up ` + file + `" to finish it, or "nsnet down big" to undo it`} {
		if !strings.Contains(msg, want) {
			t.Errorf("stderr %q lacks %q", msg, want)
		}
	}
	t.Log(msg)
	if code != 130 || strings.Count(msg, "\n") != 1 {
		t.Fatalf("exit %d, stderr %q: want 130 and one line", code, msg)
	}
	if r := nsnetIn(t, env, "labs"); !strings.Contains(r.out, "incomplete") {
		t.Errorf("labs after the interrupt: %+v", r)
	}
	// Either command the message names works from here.
	if r := nsnetIn(t, env, "up", file); r.code != 0 || !strings.Contains(r.out, "lab big is up") {
		t.Fatalf("up again: %+v", r)
	}
	if r := nsnetIn(t, env, "down", "big"); r.code != 0 {
		t.Fatalf("down: %+v", r)
	}
}

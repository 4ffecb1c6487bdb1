package cli_test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestIproute2SeesNsnet: what nsnet makes, ip lists and uses.
func TestIproute2SeesNsnet(t *testing.T) {
	leakCheck(t)
	removeLater(t, []string{"nsA"}, []string{"from-nsnet"})
	must(t, "netns", "add", "from-nsnet")
	if out := ip(t, "netns", "list"); !strings.Contains(out, "from-nsnet") {
		t.Fatalf("ip netns list = %q", out)
	}
	must(t, "link", "add", "nsA", "type", "veth", "peer", "name", "nsB")
	must(t, "link", "set", "nsB", "netns", "from-nsnet")
	must(t, "-n", "from-nsnet", "addr", "add", "fd00:1::2/64", "dev", "nsB")
	out := ip(t, "netns", "exec", "from-nsnet", "ip", "-br", "addr")
	if !strings.Contains(out, "nsB@if") || !strings.Contains(out, "fd00:1::2/64") {
		t.Fatalf("ip netns exec sees:\n%s", out)
	}
	// Full JSON agrees with ip -j on every key both print.
	compareJSON(t, must(t, "-n", "from-nsnet", "-j", "link"), ip(t, "-n", "from-nsnet", "-j", "link"))
	compareJSON(t, must(t, "-j", "link"), ip(t, "-j", "link"))
	must(t, "link", "del", "nsA")
	must(t, "netns", "del", "from-nsnet")
	if out := ip(t, "netns", "list"); strings.Contains(out, "from-nsnet") {
		t.Fatalf("ip still lists the deleted namespace: %q", out)
	}
}

// compareJSON checks that every key present in both listings has the same
// value, link by link.
func compareJSON(t *testing.T, ours, theirs string) {
	t.Helper()
	var a, b []map[string]any
	if err := json.Unmarshal([]byte(ours), &a); err != nil {
		t.Fatalf("nsnet JSON %q: %v", ours, err)
	}
	if err := json.Unmarshal([]byte(theirs), &b); err != nil {
		t.Fatalf("ip JSON: %v", err)
	}
	if len(a) != len(b) {
		t.Fatalf("nsnet lists %d links, ip %d", len(a), len(b))
	}
	for i := range a {
		shared := 0
		for k, v := range b[i] {
			w, ok := a[i][k]
			if !ok {
				if k != "link_netnsid" && k != "altnames" {
					t.Errorf("link %v: nsnet lacks key %q", b[i]["ifname"], k)
				}
				continue
			}
			shared++
			vb, _ := json.Marshal(v)
			wb, _ := json.Marshal(w)
			if !bytes.Equal(vb, wb) {
				t.Errorf("link %v key %q: nsnet %s, ip %s", b[i]["ifname"], k, wb, vb)
			}
		}
		if shared < 8 {
			t.Errorf("link %v: only %d keys in common", b[i]["ifname"], shared)
		}
	}
}

// TestNsnetSeesIproute2: what ip makes, nsnet lists and uses.
func TestNsnetSeesIproute2(t *testing.T) {
	leakCheck(t)
	removeLater(t, nil, []string{"from-ip"})
	ip(t, "netns", "add", "from-ip")
	if out := must(t, "netns", "list"); !strings.Contains(out, "from-ip") {
		t.Fatalf("nsnet netns list = %q", out)
	}
	ip(t, "-n", "from-ip", "link", "add", "ipA", "type", "veth", "peer", "name", "ipB")
	out := must(t, "netns", "exec", "from-ip", "nsnet", "-br", "link")
	if !strings.Contains(out, "ipA@ipB") || !strings.Contains(out, "ipB@ipA") {
		t.Fatalf("nsnet netns exec sees:\n%s", out)
	}
	if out != ip(t, "-n", "from-ip", "-br", "link") {
		t.Fatalf("nsnet -br link differs from ip's in an ip-made namespace")
	}
	must(t, "-n", "from-ip", "link", "set", "ipA", "up")
	if out := ip(t, "-n", "from-ip", "-br", "link", "show", "ipA"); !strings.Contains(out, "<NO-CARRIER,BROADCAST,MULTICAST,UP,M-DOWN>") {
		t.Fatalf("ip sees after nsnet set up: %q", out)
	}
	must(t, "netns", "del", "from-ip")
}

// TestNetnsExecProcess: netns exec is a plain exec: exit status, stdin,
// /sys of the namespace, no inherited descriptors, signals reach the child.
// Both the C fast path and the Go path (NSNET_NO_FASTEXEC=1) are checked.
func TestNetnsExecProcess(t *testing.T) {
	leakCheck(t)
	removeLater(t, nil, []string{"execns"})
	must(t, "netns", "add", "execns")
	must(t, "-n", "execns", "link", "add", "only-here", "type", "veth", "peer", "name", "only-peer")
	for _, path := range []struct {
		name string
		env  []string
	}{{"fast", nil}, {"go", []string{"NSNET_NO_FASTEXEC=1"}}} {
		t.Run(path.name, func(t *testing.T) { testExec(t, path.env) })
	}
	must(t, "netns", "del", "execns")
}

func testExec(t *testing.T, env []string) {
	if r := nsnetIn(t, env, "netns", "exec", "execns", "sh", "-c", "exit 7"); r.code != 7 {
		t.Errorf("exit status = %d, want 7", r.code)
	}
	cmd := exec.Command(nsnetBin, "netns", "exec", "execns", "cat")
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader("through stdin\n")
	if out, err := cmd.Output(); err != nil || string(out) != "through stdin\n" {
		t.Errorf("stdin: %q, %v", out, err)
	}
	out := nsnetIn(t, env, "netns", "exec", "execns", "ls", "/sys/class/net").out
	if f := strings.Fields(out); strings.Join(f, " ") != "lo only-here only-peer" {
		t.Errorf("/sys/class/net inside = %q", out)
	}
	// Only stdin, stdout, stderr and the directory ls itself opens, even
	// with a descriptor inherited without close-on-exec.
	stray, err := os.Open("/dev/null")
	if err != nil {
		t.Fatal(err)
	}
	defer stray.Close()
	cmd = exec.Command(nsnetBin, "netns", "exec", "execns", "ls", "/proc/self/fd")
	cmd.Env = append(os.Environ(), env...)
	cmd.ExtraFiles = []*os.File{stray} // fd 3 in nsnet, not close-on-exec
	b, err := cmd.Output()
	if f := strings.Fields(string(b)); err != nil || strings.Join(f, " ") != "0 1 2 3" {
		t.Errorf("descriptors in the child: %q %v", b, err)
	}
	if r := nsnetIn(t, env, "netns", "exec", "execns", "no-such-command-xyz"); r.code == 0 || !strings.Contains(r.err, "no-such-command-xyz") {
		t.Errorf("missing command: %+v", r)
	}
	if r := nsnetIn(t, env, "netns", "exec", "no-such-ns", "true"); r.code != 1 || !strings.Contains(r.err, `namespace "no-such-ns" does not exist`) {
		t.Errorf("missing namespace: %+v", r)
	}

	// The child is nsnet's own process: a signal to it reaches the command.
	c := exec.Command(nsnetBin, "netns", "exec", "execns", "sleep", "30")
	c.Env = append(os.Environ(), env...)
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	waitComm(t, c.Process.Pid, "sleep")
	c.Process.Signal(syscall.SIGTERM)
	err = c.Wait()
	ws, _ := c.ProcessState.Sys().(syscall.WaitStatus)
	if err == nil || !ws.Signaled() || ws.Signal() != syscall.SIGTERM {
		t.Errorf("child not ended by the forwarded SIGTERM: %v", err)
	}
}

// waitComm waits until pid has exec'd into comm.
func waitComm(t *testing.T, pid int, comm string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "comm"))
		if strings.TrimSpace(string(b)) == comm {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d never became %s", pid, comm)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestFullListingsMatchIproute2: `nsnet link` and `nsnet addr` print what
// `ip link` and `ip addr` print, byte for byte, qdisc and master included,
// in a namespace with a bridge, a veth pair on it and addresses of both
// families.
func TestFullListingsMatchIproute2(t *testing.T) {
	leakCheck(t)
	removeLater(t, nil, []string{"full"})
	must(t, "netns", "add", "full")
	for _, args := range [][]string{
		{"link", "add", "br0", "type", "bridge"},
		{"link", "add", "v0", "type", "veth", "peer", "name", "v1"},
		{"link", "set", "v0", "master", "br0"},
		{"addr", "add", "10.1.0.1/24", "dev", "br0"},
		{"addr", "add", "fd00::1/64", "dev", "v1", "nodad"},
		{"link", "set", "lo", "up"},
		{"link", "set", "v1", "up"},
	} {
		ip(t, append([]string{"-n", "full"}, args...)...)
	}
	for _, what := range []string{"link", "addr"} {
		ours := must(t, "-n", "full", what)
		theirs := ip(t, "-n", "full", what)
		if ours != theirs {
			t.Errorf("nsnet %s:\n%s\nip %s:\n%s", what, ours, what, theirs)
		}
		if what == "link" && (!strings.Contains(ours, "qdisc noop master br0") || !strings.Contains(ours, "qdisc noqueue state UNKNOWN")) {
			t.Errorf("nsnet link lacks the qdisc:\n%s", ours)
		}
	}
}

package cli_test

import (
	"os/exec"
	"reflect"
	"strings"
	"syscall"
	"testing"

	"github.com/nsnet/nsnet/internal/echo"
)

// TestBadInputChangesNothing: every bad input gets an error naming the rule,
// and the kernel and /run/netns are left exactly as they were.
func TestBadInputChangesNothing(t *testing.T) {
	leakCheck(t)
	removeLater(t, []string{"good0"}, []string{"goodns"})
	must(t, "link", "add", "good0", "type", "veth", "peer", "name", "good1")
	must(t, "netns", "add", "goodns")
	long := strings.Repeat("n", 256)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"link", "add", "", "type", "veth", "peer", "name", "x"}, "must not be empty"},
		{[]string{"link", "add", "sixteen-bytes-xx", "type", "veth", "peer", "name", "x"}, "at most 15 bytes"},
		{[]string{"link", "add", "a/b", "type", "veth", "peer", "name", "x"}, `must not contain "/"`},
		{[]string{"link", "add", "a b", "type", "veth", "peer", "name", "x"}, "whitespace"},
		{[]string{"link", "add", ".", "type", "veth", "peer", "name", "x"}, `must not be "." or ".."`},
		{[]string{"link", "add", "..", "type", "veth", "peer", "name", "x"}, `must not be "." or ".."`},
		{[]string{"link", "add", "a:1", "type", "veth", "peer", "name", "x"}, `must not contain ":"`},
		{[]string{"link", "add", "a%d", "type", "veth", "peer", "name", "x"}, `must not contain "%"`},
		{[]string{"link", "add", "v0", "type", "veth", "peer", "name", "bad/peer"}, `peer: invalid interface name "bad/peer"`},
		{[]string{"link", "add", "v0", "type", "veth"}, `veth needs "peer name PEER"`},
		{[]string{"link", "add", "v0", "type", "macvlan"}, `unsupported type "macvlan"`},
		{[]string{"link", "add", "v0", "type", "veth", "peer", "name", "v1", "mtu", "67"}, "mtu 67 out of range: must be 68-65535"},
		{[]string{"link", "add", "v0", "type", "veth", "peer", "name", "v1", "colour", "red"}, `unknown keyword "colour"`},
		{[]string{"link", "set", "good0", "sideways"}, `unknown keyword "sideways"`},
		{[]string{"link", "set", "nosuchdev", "up"}, "find device nosuchdev: no such device"},
		{[]string{"link", "set", "good0", "netns", "nosuchns"}, `namespace "nosuchns" does not exist`},
		{[]string{"link", "set", "good0", "up", "netns", "nosuchns"}, `namespace "nosuchns" does not exist`},
		{[]string{"link", "add", "good0", "type", "veth", "peer", "name", "other"}, "file exists"},
		{[]string{"link", "del", "nosuchdev"}, "no such device"},
		{[]string{"netns", "add", ""}, "must not be empty"},
		{[]string{"netns", "add", "a/b"}, `must not contain "/"`},
		{[]string{"netns", "add", "."}, `must not be "." or ".."`},
		{[]string{"netns", "add", ".."}, `must not be "." or ".."`},
		{[]string{"netns", "add", "../escape"}, `must not contain "/"`},
		{[]string{"netns", "add", long}, "at most 255 bytes"},
		{[]string{"netns", "add", "goodns"}, "namespace already exists"},
		{[]string{"netns", "del", "nosuchns"}, "no such namespace"},
		{[]string{"netns", "exec", "nosuchns", "true"}, `namespace "nosuchns" does not exist`},
		{[]string{"netns", "exec", "goodns"}, "missing command"},
		{[]string{"-n", "nosuchns", "link"}, `namespace "nosuchns" does not exist`},
		{[]string{"-n", "../x", "link"}, `must not contain "/"`},
		{[]string{"addr", "add", "10.200.0.300/24", "dev", "good0"}, `invalid prefix "10.200.0.300/24"`},
		{[]string{"addr", "add", "10.200.0.3/33", "dev", "good0"}, `invalid prefix "10.200.0.3/33"`},
		{[]string{"addr", "add", "fd00::1/129", "dev", "good0"}, `invalid prefix "fd00::1/129"`},
		{[]string{"addr", "add", "banana", "dev", "good0"}, `invalid address "banana"`},
		{[]string{"addr", "add", "10.200.0.3/24"}, `missing "dev NAME"`},
		{[]string{"addr", "add", "10.200.0.3/24", "dev", "nosuchdev"}, "no such device"},
		{[]string{"route", "add", "10.9.0.0/16", "via", "fd00::1"}, "different address families"},
		{[]string{"ping", "-c", "0", "127.0.0.1"}, "count must be a whole number"},
		{[]string{"ping", "no-such-node.example"}, "Name or service not known"},
		{[]string{"ping", "a/b"}, "or a name from the hosts file"},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"--frob", "link"}, `unknown option "--frob"`},
	} {
		before := takeSnapshot(t)
		r := nsnet(t, tc.args...)
		if r.code == 0 {
			t.Errorf("nsnet %q succeeded", tc.args)
			continue
		}
		if !strings.Contains(r.err, tc.want) {
			t.Errorf("nsnet %q: stderr %q, want it to contain %q", tc.args, r.err, tc.want)
		}
		if msg := errorLine(r.err); strings.Count(msg, "\n") != 0 || msg == "" {
			t.Errorf("nsnet %q: error is not one line (and the usage): %q", tc.args, r.err)
		}
		if after := takeSnapshot(t); !reflect.DeepEqual(before, after) {
			t.Errorf("nsnet %q changed state:\nbefore %+v\nafter  %+v", tc.args, before, after)
		}
	}
	must(t, "link", "del", "good0")
	must(t, "netns", "del", "goodns")
}

// TestUnprivilegedMessage: without privileges over the network namespace
// and /run/netns, nsnet says so in one line and offers sudo and the sandbox.
func TestUnprivilegedMessage(t *testing.T) {
	leakCheck(t)
	for _, args := range [][]string{
		{"link", "add", "v0", "type", "veth", "peer", "name", "v1"},
		{"netns", "add", "blue"},
	} {
		// A user namespace of its own with no mapping: an ordinary user with
		// no capability over the test's namespaces.
		cmd := exec.Command(nsnetBin, args...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWUSER}
		out, err := cmd.CombinedOutput()
		if err == nil {
			t.Fatalf("nsnet %q succeeded without privileges", args)
		}
		msg := string(out)
		for _, want := range []string{"sudo nsnet " + strings.Join(args, " "), "nsnet sandbox", "needs root"} {
			if !strings.Contains(msg, want) {
				t.Errorf("nsnet %q: %q lacks %q", args, msg, want)
			}
		}
		if strings.Count(strings.TrimSpace(msg), "\n") != 0 {
			t.Errorf("nsnet %q: more than one line: %q", args, msg)
		}
	}
}

// TestSandboxCommand: nsnet sandbox gives a private network where nsnet works
// without root, and nothing made there survives.
func TestSandboxCommand(t *testing.T) {
	leakCheck(t)
	script := "nsnet netns add inner && nsnet link add in0 type veth peer name in1 && " +
		"nsnet -br link && nsnet netns list && id -u"
	out := must(t, "sandbox", "--", "sh", "-c", script)
	for _, want := range []string{"lo               UNKNOWN", "in1@in0", "inner", "\n0\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("sandbox output lacks %q:\n%s", want, out)
		}
	}
	if r := nsnet(t, "sandbox", "--", "sh", "-c", "exit 3"); r.code != 3 {
		t.Errorf("sandbox exit code = %d, want 3", r.code)
	}
	// Scripts can tell they are in the sandbox.
	if out := must(t, "sandbox", "--", "sh", "-c", "echo $NSNET_SANDBOX"); out != "1\n" {
		t.Errorf("NSNET_SANDBOX in the sandbox: %q", out)
	}
}

// TestSandboxPrompt: the shell nsnet sandbox starts says in its prompt that
// it is the sandbox, for bash (through its start-up files) and for sh.
func TestSandboxPrompt(t *testing.T) {
	leakCheck(t)
	script, err := exec.LookPath("script")
	if err != nil {
		t.Skip("needs script (util-linux) for a terminal")
	}
	for _, sh := range []string{"/bin/bash", "/bin/sh"} {
		// script gives the shell a terminal, so it is interactive and prompts.
		cmd := exec.Command(script, "-qec", nsnetBin+" sandbox", "/dev/null")
		cmd.Env = append(cmd.Environ(), "SHELL="+sh, "HOME="+t.TempDir())
		cmd.Stdin = strings.NewReader("exit 0\n")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "(nsnet sandbox) ") {
			t.Errorf("%s in nsnet sandbox: %v, output %q", sh, err, out)
		}
	}
}

// errorLine is the error of an nsnet run's stderr: its first line, when the
// lines after it are the usage that follows a wrong command line; "" when
// there is more.
func errorLine(stderr string) string {
	lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
	for i, l := range lines[1:] {
		switch {
		case i == 0 && strings.HasPrefix(l, "usage: nsnet "):
		case i > 0 && strings.HasPrefix(l, "       nsnet "):
		case i == len(lines)-2 && strings.HasPrefix(l, "Run \"nsnet help"):
		default:
			return ""
		}
	}
	return lines[0]
}

// TestHugeArgumentsEchoedShort: an argument of 100 KB, wherever it goes, is
// echoed by a short prefix and its length (or, through errors nsnet does not
// format, cut in the middle): no line of the message is long.
func TestHugeArgumentsEchoedShort(t *testing.T) {
	leakCheck(t)
	x := strings.Repeat("x", 100_000)
	for _, args := range [][]string{
		{x}, {"--" + x}, {"-n", x, "link"}, {"link", x}, {"link", "show", x}, {"link", "add", x, "type", "veth", "peer", "name", "p"},
		{"link", "add", "v0", "type", x}, {"link", "set", x, "up"}, {"link", "del", x},
		{"addr", "add", x, "dev", "lo"}, {"addr", "add", "10.0.0.1/24", "dev", x},
		{"route", "add", x, "via", "10.0.0.1"}, {"route", "add", "10.0.0.0/24", "via", x},
		{"netns", "add", x}, {"netns", "del", x}, {"netns", "exec", x, "true"},
		{"ping", x}, {"ping", "-c", x, "127.0.0.1"}, {"serve", x, "127.0.0.1:1"}, {"serve", "tcp", x}, {"fetch", x},
		{"up", x}, {"plan", x}, {"down", x}, {"status", x}, {"check", x}, {"exec", x, x, "--", "true"},
		{"help", x}, {"bench", x},
	} {
		r := nsnet(t, args...)
		if r.code == 0 {
			t.Errorf("nsnet %.40q...: succeeded", args)
		}
		for _, line := range strings.Split(r.err, "\n") {
			if len(line) > echo.MaxLine+64 {
				t.Errorf("nsnet %.40q...: a line of %d bytes: %.200s", args, len(line), line)
			}
		}
	}
}

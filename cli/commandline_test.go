package cli_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestHelpEverywhere: every way of asking for help answers on stdout with
// exit 0, and says the command's usage first.
func TestHelpEverywhere(t *testing.T) {
	env := []string{"NSNET_STATE_DIR=" + t.TempDir()}
	for _, tc := range []struct {
		args []string
		want string // the start of stdout
	}{
		{nil, "nsnet: isolated Linux networks"},
		{[]string{"help"}, "nsnet: isolated Linux networks"},
		{[]string{"-h"}, "nsnet: isolated Linux networks"},
		{[]string{"--help"}, "nsnet: isolated Linux networks"},
		{[]string{"help", "up"}, "Usage: nsnet up FILE [-j]\n"},
		{[]string{"up", "--help"}, "Usage: nsnet up FILE [-j]\n"},
		{[]string{"up", "-h"}, "Usage: nsnet up FILE [-j]\n"},
		{[]string{"--help", "up"}, "Usage: nsnet up FILE [-j]\n"},
		{[]string{"check", "x.yaml", "-j", "--help"}, "Usage: nsnet check FILE|LAB"},
		{[]string{"help", "check"}, "Usage: nsnet check FILE|LAB"},
		{[]string{"sandbox", "--help"}, "Usage: nsnet sandbox [-- CMD [ARGS...]]\n"},
		{[]string{"sandbox", "-h"}, "Usage: nsnet sandbox"},
		{[]string{"link", "--help"}, "Usage: nsnet [-n NS] link add"},
		{[]string{"link", "help"}, "Usage: nsnet [-n NS] link add"},
		{[]string{"l", "h"}, "Usage: nsnet [-n NS] link add"},
		{[]string{"help", "link"}, "Usage: nsnet [-n NS] link add"},
		{[]string{"link", "add", "--help"}, "Usage: nsnet [-n NS] link add [name] NAME type veth"},
		{[]string{"help", "link", "add"}, "Usage: nsnet [-n NS] link add [name] NAME type veth"},
		{[]string{"help", "a", "s"}, "Usage: nsnet [-n NS] [-br] [-j] [-4|-6] addr show"},
		{[]string{"netns", "exec", "--help"}, "Usage: nsnet netns exec NAME CMD"},
		{[]string{"exec", "--help"}, "Usage: nsnet exec LAB NODE"},
		{[]string{"ping", "-h"}, "Usage: nsnet [-n NS] [-j] ping"},
		{[]string{"version", "--help"}, "Usage: nsnet version [-j]\n"},
		{[]string{"completion", "--help"}, "Usage: nsnet completion bash|zsh|fish\n"},
	} {
		r := nsnetIn(t, env, tc.args...)
		if r.code != 0 || !strings.HasPrefix(r.out, tc.want) || r.err != "" {
			t.Errorf("nsnet %s: exit %d, stdout %.80q, stderr %q; want exit 0 and stdout starting %q", strings.Join(tc.args, " "), r.code, r.out, r.err, tc.want)
		}
	}
}

// TestWrongCommandLines: a wrong command line says what is wrong in one
// line, then the command's usage, on stderr, exit 2 — including an option
// that does not apply, which is never ignored.
func TestWrongCommandLines(t *testing.T) {
	env := []string{"NSNET_STATE_DIR=" + t.TempDir()}
	for _, tc := range []struct {
		args       []string
		msg, usage string
	}{
		{[]string{"-br", "up", "x.yaml"}, `up: option -br does not apply to "nsnet up"`, "usage: nsnet up FILE [-j]\n"},
		{[]string{"up", "x.yaml", "-4"}, `up: option -4/-6 does not apply to "nsnet up"`, "usage: nsnet up FILE [-j]\n"},
		{[]string{"-j", "sandbox"}, `sandbox: option -j does not apply to "nsnet sandbox"`, "usage: nsnet sandbox"},
		{[]string{"-j", "exec", "lab", "node", "true"}, `exec: option -j does not apply`, "usage: nsnet exec LAB NODE"},
		{[]string{"-br", "status"}, `status: option -br does not apply`, "usage: nsnet status [FILE|LAB [NODE...]] [-j]\n"},
		{[]string{"status", "-x"}, `status: unknown option "-x"`, "usage: nsnet status"},
		{[]string{"check", "x.yaml", "--al"}, `check: unknown option "--al"; did you mean "--all"?`, "usage: nsnet check FILE|LAB"},
		{[]string{"check", "x.yaml", "--timeout"}, `check: option --timeout needs a value`, "usage: nsnet check"},
		{[]string{"check", "x.yaml", "--timeout", "0"}, `check: --timeout "0": must be seconds from 0.01 to 60`, "usage: nsnet check"},
		{[]string{"check", "x.yaml", "--all=yes"}, `check: option --all takes no value`, "usage: nsnet check"},
		{[]string{"link", "show", "-j"}, `link show: options go before the object, as in ip: nsnet -j link show`, "usage: nsnet [-n NS] [-br] [-j] link show"},
		{[]string{"link", "-j"}, `link: options go before the object, as in ip: nsnet -j link`, "usage: nsnet [-n NS] link add"},
		{[]string{"-j", "link", "add", "a", "type", "veth", "peer", "name", "b"}, `link add: option -j does not apply`, "usage: nsnet [-n NS] link add"},
		{[]string{"-br", "netns", "list"}, `netns list: option -br does not apply`, "usage: nsnet [-j] netns list\n"},
		{[]string{"-n", "x", "sandbox"}, `sandbox: option -n NS does not apply`, "usage: nsnet sandbox"},
		{[]string{"-4", "link"}, `link show: option -4/-6 does not apply`, "usage: nsnet [-n NS] [-br] [-j] link show"},
		{[]string{"labs", "x"}, `labs: unexpected argument "x"`, "usage: nsnet labs [-j]\n"},
		{[]string{"stauts"}, `unknown command "stauts"; did you mean "status"?`, `Run "nsnet help" for the commands.`},
		{[]string{"chek", "x"}, `unknown command "chek"; did you mean "check"?`, `Run "nsnet help"`},
		{[]string{"st"}, `"st" is ip's "stats" object, which nsnet does not implement; did you mean "status"?`, `Run "nsnet help"`},
		{[]string{"link", "replace"}, `link: "replace" is ip link's "replace", which nsnet does not implement`, "usage: nsnet [-n NS] link add"},
		{[]string{"help", "nosuch"}, `unknown command "nosuch"`, `Run "nsnet help"`},
		{[]string{"completion", "tcsh"}, `completion: unknown shell "tcsh"`, "usage: nsnet completion bash|zsh|fish\n"},
		{[]string{"-b", "link"}, `option "-b" is ip's -batch, which nsnet does not implement`, `Run "nsnet help"`},
	} {
		r := nsnetIn(t, env, tc.args...)
		line := errorLine(r.err)
		if r.code != 2 || r.out != "" || !strings.Contains(line, tc.msg) || !strings.Contains(r.err, tc.usage) {
			t.Errorf("nsnet %s: exit %d, stdout %q, stderr %q; want exit 2, one line with %q, then %q", strings.Join(tc.args, " "), r.code, r.out, r.err, tc.msg, tc.usage)
		}
	}
}

// TestFlagsAfterTheVerb: the lab commands take -j where the users
// put it.
func TestFlagsAfterTheVerb(t *testing.T) {
	env := []string{"NSNET_STATE_DIR=" + t.TempDir()}
	for _, args := range [][]string{{"status", "-j"}, {"-j", "status"}, {"status", "--json"}, {"labs", "-j"}, {"labs", "--json"}} {
		if r := nsnetIn(t, env, args...); r.code != 0 || r.out != "[]\n" {
			t.Errorf("nsnet %s: %+v", strings.Join(args, " "), r)
		}
	}
	// A lab that is not up is said so whatever the form.
	if r := nsnetIn(t, env, "status", "small", "-j"); r.code != 1 || !strings.Contains(r.err, "no lab named small is up") {
		t.Errorf("status small -j: %+v", r)
	}
	file := filepath.Join("..", "examples", "tenants.yaml")
	byFile := nsnetIn(t, env, "check", file, "-j", "--all")
	byName := nsnetIn(t, env, "check", "tenants", "--all", "-j")
	if byFile.code != 2 || byFile.err != byName.err || !strings.Contains(byFile.err, "lab tenants is not up") {
		t.Errorf("check FILE and check LAB on a lab that is not up:\n%+v\n%+v", byFile, byName)
	}
}

// TestMessagesSayWhatToDo: a missing node lists the lab's nodes, a lab that
// is not up says so, and neither ends in the error of a file lookup.
func TestMessagesSayWhatToDo(t *testing.T) {
	leakCheck(t)
	env := []string{"NSNET_STATE_DIR=" + t.TempDir()}
	file := filepath.Join(t.TempDir(), "complab.yaml")
	if err := os.WriteFile(file, []byte(completionLab), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := nsnetIn(t, env, "up", file, "-j"); r.code != 0 || !strings.HasPrefix(r.out, `{"lab":"complab","state":"up","changed":true,"summary":"`) {
		t.Fatalf("up -j: %+v", r)
	}
	if r := nsnetIn(t, env, "-j", "up", file); r.code != 0 || r.out != `{"lab":"complab","state":"up","changed":false}`+"\n" {
		t.Errorf("up -j again: %+v", r)
	}
	if r := nsnetIn(t, env, "-j", "plan", file); r.code != 0 || r.out != `{"lab":"complab","commands":[]}`+"\n" {
		t.Errorf("plan -j of a lab that is up: %+v", r)
	}
	t.Cleanup(func() {
		if r := nsnetIn(t, env, "down", "complab", "-j"); r.code != 0 || !strings.HasPrefix(r.out, `{"lab":"complab","state":"down","changed":true`) {
			t.Errorf("down -j: %+v", r)
		}
	})
	for _, tc := range []struct {
		args []string
		err  string
	}{
		{[]string{"exec", "complab", "gamma", "--", "true"}, "nsnet: exec complab gamma true: lab complab has no node gamma (nodes: host, alpha, beta)\n"},
		{[]string{"exec", "nolab", "alpha", "true"}, "nsnet: exec nolab alpha true: no lab named nolab is up (see nsnet labs)\n"},
		{[]string{"status", "nolab"}, "nsnet: no lab named nolab is up (see nsnet labs)\n"},
	} {
		if r := nsnetIn(t, env, tc.args...); r.code == 0 || r.err != tc.err {
			t.Errorf("nsnet %s: exit %d, stderr %q; want %q", strings.Join(tc.args, " "), r.code, r.err, tc.err)
		}
	}
}

// TestPingJSON: ping -j prints one object with iputils' summary and each
// reply, and keeps ping's exit codes.
func TestPingJSON(t *testing.T) {
	leakCheck(t)
	r := nsnet(t, "-j", "ping", "-c", "2", "-i", "0.01", "127.0.0.1")
	var rep struct {
		Addr                  string
		Transmitted, Received int
		LossPercent           int                              `json:"loss_percent"`
		RTT                   *struct{ Min, Avg, Max float64 } `json:"rtt_ms"`
		Replies               []struct {
			Seq    int     `json:"icmp_seq"`
			TimeMS float64 `json:"time_ms"`
		}
	}
	if err := json.Unmarshal([]byte(r.out), &rep); err != nil || r.code != 0 || strings.Count(r.out, "\n") != 1 {
		t.Fatalf("ping -j: %v %+v", err, r)
	}
	if rep.Addr != "127.0.0.1" || rep.Transmitted != 2 || rep.Received != 2 || rep.LossPercent != 0 || rep.RTT == nil || rep.RTT.Min > rep.RTT.Max || len(rep.Replies) != 2 || rep.Replies[1].Seq != 2 {
		t.Errorf("ping -j: %+v", rep)
	}
	// Nothing answers at an address with no route: exit 2 as without -j.
	if r := nsnet(t, "-j", "ping", "-c", "1", "10.255.0.1"); r.code != 2 {
		t.Errorf("ping -j with no route: %+v", r)
	}
}

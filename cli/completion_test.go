package cli_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const completionLab = `lab: complab
nodes:
  alpha: {}
  beta: {}
links:
  - a: {node: alpha, name: eth0, addresses: [10.77.1.1/24]}
    b: {node: beta, name: eth0, addresses: [10.77.1.2/24]}
`

// TestBashCompletion sources `nsnet completion bash` in a real bash and asks
// it, as bash asks when Tab is pressed, for commands, verbs, options, lab
// names, node names, namespaces and interfaces.
func TestBashCompletion(t *testing.T) {
	leakCheck(t)
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("needs bash")
	}
	state := t.TempDir()
	env := []string{"NSNET_STATE_DIR=" + state}
	dir := t.TempDir()
	file := filepath.Join(dir, "complab.yaml")
	if err := os.WriteFile(file, []byte(completionLab), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := nsnetIn(t, env, "up", file); r.code != 0 {
		t.Fatalf("up: %+v", r)
	}
	t.Cleanup(func() { nsnetIn(t, env, "down", "complab") })
	removeLater(t, []string{"compv0"}, []string{"compns"})
	must(t, "netns", "add", "compns")
	must(t, "link", "add", "compv0", "type", "veth", "peer", "name", "compv1")

	script := `set -e
source <(nsnet completion bash)
complete -p nsnet
comp() {
	COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]}-1))
	COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
	_nsnet
	echo "$* => $(printf '%s ' "${COMPREPLY[@]}")"
}
cd "$1"
comp nsnet st
comp nsnet ch
comp nsnet l
comp nsnet -
comp nsnet link ""
comp nsnet link set ""
comp nsnet link set compv0 ""
comp nsnet link set compv0 netns ""
comp nsnet l s compv0 master comp
comp nsnet -n compns link show ""
comp nsnet netns exec ""
comp nsnet netns ""
comp nsnet status ""
comp nsnet down comp
comp nsnet exec complab ""
comp nsnet exec complab alpha ""
comp nsnet check complab --
comp nsnet check complab --junit comp
comp nsnet completion ""
comp nsnet new ""
comp nsnet help ""
comp nsnet help link ""
comp nsnet perf complab alpha ""
`
	cmd := exec.Command(bash, "-c", script, "bash", dir)
	cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(nsnetBin)+":"+os.Getenv("PATH"))
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("bash: %v\n%s", err, out)
	}
	got := map[string]string{}
	for _, l := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(l, " => "); ok {
			got[k] = strings.TrimSpace(v)
		}
	}
	if !strings.Contains(string(out), "complete -o filenames -F _nsnet nsnet") {
		t.Errorf("complete -p nsnet: %s", out)
	}
	for line, want := range map[string]string{
		"nsnet st":                         "status",
		"nsnet ch":                         "check",
		"nsnet l":                          "labs link logs",
		"nsnet link ":                      "add del help set show",
		"nsnet link set ":                  "compv0 compv1 lo",
		"nsnet link set compv0 ":           "down master mtu netns nomaster up",
		"nsnet link set compv0 netns ":     "complab-alpha complab-beta compns",
		"nsnet l s compv0 master comp":     "compv0 compv1",
		"nsnet -n compns link show ":       "dev lo",
		"nsnet netns exec ":                "complab-alpha complab-beta compns",
		"nsnet netns ":                     "add del exec help list",
		"nsnet status ":                    "complab complab.yaml",
		"nsnet down comp":                  "complab complab.yaml",
		"nsnet exec complab ":              "alpha beta",
		"nsnet check complab --":           "--all --help --host --json --junit --matrix --timeout",
		"nsnet check complab --junit comp": "complab.yaml",
		"nsnet completion ":                "bash fish zsh",
		"nsnet new ":                       "clos linear mesh ring star tree",
		"nsnet help link ":                 "add del help set show",
		"nsnet perf complab alpha ":        "alpha beta",
	} {
		if got[line] != want {
			t.Errorf("completing %q: got %q, want %q", line, got[line], want)
		}
	}
	if g := got["nsnet -"]; !strings.Contains(g, "-j") || !strings.Contains(g, "--netns") {
		t.Errorf("completing options: %q", g)
	}
	if g := got["nsnet exec complab alpha "]; !strings.Contains(g, "complab.yaml") {
		t.Errorf("completing a command line in a node: %q (want file names)", g)
	}
	for _, c := range []string{"link", "up", "check", "completion", "version"} {
		if !strings.Contains(" "+got["nsnet help "]+" ", " "+c+" ") {
			t.Errorf("help topics lack %q: %q", c, got["nsnet help "])
		}
	}
}

// TestCompletionScripts: the zsh and fish scripts are well-formed for their
// shells where those are installed, and each relays to nsnet __complete.
func TestCompletionScripts(t *testing.T) {
	for _, sh := range []string{"bash", "zsh", "fish"} {
		r := nsnet(t, "completion", sh)
		if r.code != 0 || !strings.Contains(r.out, "__complete") {
			t.Errorf("completion %s: %+v", sh, r)
			continue
		}
		path, err := exec.LookPath(sh)
		if err != nil {
			t.Logf("%s is not installed: its script is checked only for the relay", sh)
			continue
		}
		f := filepath.Join(t.TempDir(), "script")
		os.WriteFile(f, []byte(r.out), 0o644)
		if out, err := exec.Command(path, "-n", f).CombinedOutput(); err != nil {
			t.Errorf("%s -n: %v\n%s", sh, err, out)
		}
		if sh == "fish" {
			// fish answers for a command line without a terminal.
			cmd := exec.Command(path, "-c", "source "+f+"; complete -C 'nsnet stat'; complete -C 'nsnet link s'")
			cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(nsnetBin)+":"+os.Getenv("PATH"), "HOME="+t.TempDir())
			out, err := cmd.Output()
			if err != nil || string(out) != "status\nset\nshow\n" {
				t.Errorf("fish complete -C: %v %q", err, out)
			}
		}
	}
}

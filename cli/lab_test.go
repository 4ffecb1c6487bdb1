package cli_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The lab commands' own tests (up, down, crash safety, ...) are in package
// lab; these check the command line around them.

func TestLabUsage(t *testing.T) {
	env := []string{"NSNET_STATE_DIR=" + t.TempDir()}
	for _, c := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"up"}, 2, "nsnet: up: missing FILE\nusage: nsnet up FILE [-j]\n"},
		{[]string{"plan", "a.yaml", "b.yaml"}, 2, "plan: unexpected argument \"b.yaml\"\nusage: nsnet plan FILE [-j]\n"},
		{[]string{"down"}, 2, "down: missing FILE|LAB\nusage: nsnet down FILE|LAB [-j]\n"},
		{[]string{"status", "a", "b"}, 1, "no lab named a is up"},
		{[]string{"labs", "x"}, 2, `labs: unexpected argument "x"`},
		{[]string{"exec", "lab", "node"}, 1, "no lab named lab is up"},
		{[]string{"exec", "lab"}, 2, "exec: missing NODE\nusage: nsnet exec LAB NODE [--] [CMD [ARGS...]]\n"},
		{[]string{"exec", "nolab", "node", "--", "true"}, 1, "no lab named nolab is up"},
		{[]string{"status", "nolab"}, 1, "no lab named nolab is up"},
		{[]string{"up", "/nonexistent/lab.yaml"}, 1, "read lab file: open /nonexistent/lab.yaml: no such file or directory"},
	} {
		r := nsnetIn(t, env, c.args...)
		if r.code != c.code || !strings.Contains(r.err, c.msg) {
			t.Errorf("nsnet %s: exit %d, stderr %q; want exit %d and %q", strings.Join(c.args, " "), r.code, r.err, c.code, c.msg)
		}
	}
	// Down of a lab that is not up has nothing to do, and succeeds, but
	// does not pretend there was a lab.
	if r := nsnetIn(t, env, "down", "nolab"); r.code != 0 || r.out != "no lab named nolab exists here: nothing to take down (there are no labs here)\n" {
		t.Errorf("down of an unknown lab: %+v", r)
	}
	if r := nsnetIn(t, env, "labs"); r.code != 0 || r.out != "no labs\n" {
		t.Errorf("labs: %+v", r)
	}
	if r := nsnetIn(t, env, "-j", "labs"); r.code != 0 || r.out != "[]\n" {
		t.Errorf("labs -j: %+v", r)
	}
}

// TestLabPlan: plan prints the example's steps and changes nothing, not
// even the state directory.
func TestLabPlan(t *testing.T) {
	state := t.TempDir()
	r := nsnetIn(t, []string{"NSNET_STATE_DIR=" + state}, "plan", filepath.Join("..", "examples", "seed.yaml"))
	if r.code != 0 {
		t.Fatalf("plan: %+v", r)
	}
	want, err := os.ReadFile(filepath.Join("..", "lab", "testdata", "seed.plan.golden"))
	if err != nil {
		t.Fatal(err)
	}
	if r.out != string(want) {
		t.Errorf("plan output:\n%s\nwant:\n%s", r.out, want)
	}
	r = nsnetIn(t, []string{"NSNET_STATE_DIR=" + state}, "plan", filepath.Join("..", "examples", "seed.yaml"), "-j")
	var pj struct {
		Lab      string
		Commands []string
	}
	if err := json.Unmarshal([]byte(r.out), &pj); err != nil || pj.Lab != "seed" || len(pj.Commands) == 0 || !strings.Contains(string(want), pj.Commands[0]+"\n") {
		t.Errorf("plan -j: %v %+v", err, r)
	}
	if ents, _ := os.ReadDir(state); len(ents) != 0 {
		t.Errorf("plan wrote to the state directory: %v", ents)
	}
}

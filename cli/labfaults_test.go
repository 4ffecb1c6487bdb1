package cli_test

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestUpFaults: the lab file's faults are made by up and asserted by check;
// a second up changes nothing; a qdisc removed or changed by hand comes back
// at the next up; a runtime fault elsewhere is left alone and one on a
// file's end is replaced, with a note; down removes it all.
func TestUpFaults(t *testing.T) {
	leakCheck(t)
	state := []string{"NSNET_STATE_DIR=" + t.TempDir()}
	file := filepath.Join("..", "examples", "faults.yaml")
	run := func(args ...string) result { return nsnetIn(t, state, args...) }
	want := func(r result, code int, subs ...string) {
		t.Helper()
		if r.code != code {
			t.Fatalf("exit %d, want %d: %+v", r.code, code, r)
		}
		for _, s := range subs {
			if !strings.Contains(r.out+r.err, s) {
				t.Errorf("%q not in:\n%s%s", s, r.out, r.err)
			}
		}
	}
	want(run("plan", file), 0, "# faults: 4 ends to impair", "[client] tc qdisc replace dev eth0 root handle 6e73: tbf rate 10mbit")
	want(run("up", file), 0, "lab faults is up: ", "; faults on 4 ends made")
	t.Cleanup(func() { run("down", "faults") })
	r := run("plan", file)
	want(r, 0, "nothing to do")
	if strings.Contains(r.out, "# faults") {
		t.Errorf("plan of an up-to-date lab has faults to make:\n%s", r.out)
	}
	want(run("up", file), 0, "lab faults is up to date: no changes")
	want(run("check", file), 0, "3 passed, 0 failed", "rate ", "(want >8mbit)")

	// Removed by hand, changed by hand.
	want(run("exec", "faults", "client", "--", "tc", "qdisc", "del", "dev", "eth0", "root"), 0)
	want(run("exec", "faults", "sw", "--", "tc", "qdisc", "change", "dev", "client-eth0", "root", "handle", "6e73:", "tbf", "rate", "5mbit", "burst", "6250b", "limit", "68750b"), 0)
	want(run("up", file), 0, "lab faults is up: faults on 2 ends made",
		"client:eth0: repaired the file's faults (nsnet's root qdisc is missing)",
		"sw:client-eth0: repaired the file's faults (tbf rate 625000 B/s, not 1250000)")
	r = run("exec", "faults", "sw", "--", "tc", "qdisc", "show", "dev", "client-eth0")
	want(r, 0, "rate 10Mbit")
	want(run("up", file), 0, "up to date: no changes")

	// Runtime faults: elsewhere left alone, on a file's end replaced.
	want(run("fault", "set", "faults", "sw:replica-eth0", "loss", "5%"), 0)
	want(run("up", file), 0, "up to date: no changes")
	want(run("fault", "set", "faults", "client:eth0", "rate", "1mbit"), 0)
	want(run("up", file), 0, "faults on 1 end made", "client:eth0: the file's faults (rate 10mbit) replace the runtime fault rate 1mbit")
	r = run("fault", "show", "faults")
	want(r, 0, "sw:replica-eth0", "loss 5%", "client:eth0")

	want(run("down", "faults"), 0)
}

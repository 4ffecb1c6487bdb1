package lab_test

import (
	"encoding/json"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/nsnet/nsnet/bench"
	"github.com/nsnet/nsnet/lab"
	"github.com/nsnet/nsnet/netns"
)

// TestFastPathSameState: up's fast path (requests queued per namespace and
// sent in batches, links created with their final attributes, namespaces
// made ahead by a worker) leaves exactly the kernel state of the plain path
// (one request per step through the netlink library): the same status -j
// and the same links, addresses, routes and neighbour entries in the host
// and in every node, as iproute2 shows them. Both tear down cleanly.
func TestFastPathSameState(t *testing.T) {
	e := newEnv(t)
	before := e.snap()
	files := map[string]string{
		"seed":     example(t, "seed"),
		"two-lans": example(t, "two-lans"),
		"routed":   example(t, "routed"),
		"benchfp":  e.write("ptp.yaml", string(bench.LabYAML(bench.Workload{Mode: bench.PTP, N: 4, Prefix: "fp"}))),
		"benchfq":  e.write("bridge.yaml", string(bench.LabYAML(bench.Workload{Mode: bench.Bridge, N: 4, Prefix: "fq"}))),
	}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		file := files[name]
		var got [2]string
		for i, plain := range []bool{false, true} {
			e.extra = nil
			if plain {
				e.extra = []string{lab.PlainEnv + "=1"}
			}
			e.must("up", file)
			got[i] = e.kernelState(name)
			// The fast path's repair finds nothing to do after the plain
			// path, and the other way round.
			e.extra = nil
			wantIn(t, name+" plan after up", e.must("plan", file), "nothing to do")
			e.must("down", file)
		}
		if got[0] != got[1] {
			t.Errorf("%s: fast and plain up differ:\n--- fast\n%s\n--- plain\n%s", name, got[0], got[1])
		}
		if !strings.Contains(got[0], "PERMANENT") && name != "two-lans" && name != "benchfq" {
			t.Errorf("%s: no permanent neighbour entries:\n%s", name, got[0])
		}
	}
	e.sameAs(before, "down after both paths")
}

var (
	ifIndexes    = regexp.MustCompile(`@if\d+|link-netnsid \d+|^\d+: `)
	volatile     = regexp.MustCompile(`valid_lft \S+ preferred_lft \S+|numtxqueues.*`)
	bridgeTimers = regexp.MustCompile(`\b(bridge_slave|bridge) .*? addrgenmode`)
)

// kernelState is status -j and, for the host and each node of the lab,
// iproute2's view of its links (with details: alias, addrgenmode, master,
// MTU), addresses, routes and neighbours, without interface indexes (the
// host's grow with every link made).
func (e *env) kernelState(name string) string {
	e.t.Helper()
	st := e.status(name)
	st.File, st.Updated = "", time.Time{}
	js, _ := json.MarshalIndent(st, "", " ")
	var b strings.Builder
	b.Write(js)
	nss := []string{""}
	for _, n := range st.NodeStatus {
		if n.Netns != "" {
			nss = append(nss, n.Netns)
		}
	}
	for _, ns := range nss {
		args := func(a ...string) []string {
			if ns == "" {
				return a
			}
			return append([]string{"-n", ns}, a...)
		}
		b.WriteString("\n## " + ns + "\n")
		for _, cmd := range [][]string{
			{"-d", "-o", "link", "show"},
			{"-o", "addr", "show"},
			{"route", "show"},
			{"-6", "route", "show"},
			{"neigh", "show", "nud", "permanent"},
		} {
			out := ip(e.t, args(cmd...)...)
			var lines []string
			for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
				l = ifIndexes.ReplaceAllString(l, "")
				// Lifetimes and counters change while we look.
				l = volatile.ReplaceAllString(l, "")
				l = bridgeTimers.ReplaceAllString(l, "$1 addrgenmode")
				lines = append(lines, strings.TrimRight(l, " "))
			}
			sort.Strings(lines)
			b.WriteString(strings.Join(lines, "\n") + "\n")
		}
	}
	return b.String()
}

// TestTeardownInProcess: up and down of a 200-node ptp lab in this process
// (so that the race detector sees the two workers that read the marks, and
// the namespaces held until their names are gone): down leaves nothing, and
// a second down is a no-op.
func TestTeardownInProcess(t *testing.T) {
	e := newEnv(t)
	before := e.snap()
	text := bench.LabYAML(bench.Workload{Mode: bench.PTP, N: 200, Prefix: "ip"})
	l, err := lab.Parse("ip.yaml", text)
	if err != nil {
		t.Fatal(err)
	}
	opt := lab.Options{Netns: netns.Default(), StateDir: e.state}
	if _, err := lab.Up(l, opt); err != nil {
		t.Fatal(err)
	}
	names, err := opt.Netns.List()
	if err != nil || len(names) != 200 {
		t.Fatalf("after up: %d namespaces, %v", len(names), err)
	}
	r, err := lab.Down(l.Name, opt)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(r.Plan.Steps); n < 201 { // 200 namespaces and the wait for the host ends
		t.Errorf("down planned %d steps", n)
	}
	if names, _ := opt.Netns.List(); len(names) != 0 {
		t.Errorf("after down: namespaces %v", names)
	}
	if r, err := lab.Down(l.Name, opt); err != nil || len(r.Plan.Steps) != 0 {
		t.Errorf("second down: %v, %d steps", err, len(r.Plan.Steps))
	}
	e.sameAs(before, "after an in-process down")
}

// TestDownWithNamespaceHeld: a process outside the lab holds a node's
// namespace open, so the kernel keeps it, and its veth with the host end,
// after down removes its name. down waits Settle, then deletes the host end
// itself (it is the lab's), and returns with nothing of the lab left.
func TestDownWithNamespaceHeld(t *testing.T) {
	e := newEnv(t)
	before := e.snap()
	l, err := lab.Parse("held.yaml", []byte("lab: held\nnodes: {n: {}}\nlinks:\n  - {a: {node: n, name: eth0}, b: {node: host, name: held0}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	opt := lab.Options{Netns: netns.Default(), StateDir: e.state, Settle: 300 * time.Millisecond}
	if _, err := lab.Up(l, opt); err != nil {
		t.Fatal(err)
	}
	ns, err := opt.Netns.Open(l.Node("n").Netns)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	start := time.Now()
	if _, err := lab.Down(l.Name, opt); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Errorf("down returned after %v, before Settle: did the host end go by itself?", d)
	}
	if names, _ := opt.Netns.List(); len(names) != 0 {
		t.Errorf("after down: namespaces %v", names)
	}
	e.sameAs(before, "after down with a held namespace")
}

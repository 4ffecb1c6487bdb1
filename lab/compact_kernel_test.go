package lab_test

import "testing"

// TestCompactUp: a lab of compact entries comes up as written out: hosts on
// a bridge and spokes of a router, each reaching the others, and goes down
// leaving nothing.
func TestCompactUp(t *testing.T) {
	e := newEnv(t)
	before := e.snap()
	file := e.write("compact.yaml", `lab: cpt
bridges:
  lan: {node: sw, subnets: [10.81.0.0/24]}
nodes:
  sw: {}
  h%d: {count: 4}
links:
  - a: {node: h%d, name: eth0, addresses: [auto]}
    b: {bridge: lan}
`)
	wantIn(t, "plan", e.must("plan", file), "# expands nodes.h%d (line 6): 4 nodes, h1 to h4", "ip netns add cpt-h4")
	wantIn(t, "up", e.must("up", file), "5 namespaces")
	e.mustPing("cpt", "h1", "10.81.0.4")
	e.mustPing("cpt", "h4", "10.81.0.1")
	if st := e.status("cpt"); st.State != "up" || st.Nodes != 5 {
		t.Errorf("status: %s, %d nodes", st.State, st.Nodes)
	}
	wantIn(t, "second up", e.must("up", file), "up to date: no changes")
	e.must("down", "cpt")
	e.sameAs(before, "after down")
}

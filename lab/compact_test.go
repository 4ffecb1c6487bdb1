package lab_test

import (
	"strings"
	"testing"

	"github.com/nsnet/nsnet/lab"
)

const compactLab = `lab: c
bridges:
  lan: {node: sw, subnets: [10.5.0.0/24, "fd00:5::/64"]}
nodes:
  sw: {}
  r:
    sysctls: {net.ipv4.ip_forward: 1}
  h%d:
    count: 3
    routes: [{to: default, via: 10.5.0.1}]
    processes: [{cmd: sleep 9999}]
  s%d: {count: 2}
links:
  - {a: {node: r, name: eth0, addresses: [10.5.0.1/24]}, b: {bridge: lan}}
  - a: {node: h%d, name: eth0, addresses: [auto]}
    b: {bridge: lan}
  - {a: {node: r, name: "s%d"}, b: {node: "s%d", name: up0}}
`

// compactWritten is compactLab written out by hand: what it must stand for.
const compactWritten = `lab: c
bridges:
  lan: {node: sw, subnets: [10.5.0.0/24, "fd00:5::/64"]}
nodes:
  sw: {}
  r:
    sysctls: {net.ipv4.ip_forward: 1}
  h1: {routes: [{to: default, via: 10.5.0.1}], processes: [{cmd: sleep 9999}]}
  h2: {routes: [{to: default, via: 10.5.0.1}], processes: [{cmd: sleep 9999}]}
  h3: {routes: [{to: default, via: 10.5.0.1}], processes: [{cmd: sleep 9999}]}
  s1: {}
  s2: {}
links:
  - {a: {node: r, name: eth0, addresses: [10.5.0.1/24]}, b: {bridge: lan}}
  - {a: {node: h1, name: eth0, addresses: [auto]}, b: {bridge: lan}}
  - {a: {node: h2, name: eth0, addresses: [auto]}, b: {bridge: lan}}
  - {a: {node: h3, name: eth0, addresses: [auto]}, b: {bridge: lan}}
  - {a: {node: r, name: s1}, b: {node: s1, name: up0}}
  - {a: {node: r, name: s2}, b: {node: s2, name: up0}}
`

// TestCompactRoundTrip: a lab file with compact entries plans exactly what
// the same lab written out node by node plans, and plan says what each
// entry stands for.
func TestCompactRoundTrip(t *testing.T) {
	compact, written := parse(t, compactLab), parse(t, compactWritten)
	got, want := planLines(t, compact, &lab.State{}), planLines(t, written, &lab.State{})
	wantLines(t, got, want...)
	var names []string
	for _, n := range compact.Nodes {
		names = append(names, n.Name)
	}
	if s := strings.Join(names, " "); s != "host sw r h1 h2 h3 s1 s2" {
		t.Errorf("nodes: %s", s)
	}
	p, err := lab.PlanUp(compact, &lab.State{})
	if err != nil {
		t.Fatal(err)
	}
	wantIn(t, "plan", render(t, p),
		"# expands nodes.h%d (line 8): 3 nodes, h1 to h3\n",
		"# expands nodes.s%d (line 12): 2 nodes, s1 to s2\n",
		"# expands links[1] (line 15): 3 links\n",
		"# expands links[2] (line 17): 2 links\n",
		"ip netns add c-h3\n")
	// The hosts' auto addresses are handed out in order, as written.
	if a := compact.Node("h3").Addresses(); len(a) != 2 || a[0].String() != "10.5.0.4/24" {
		t.Errorf("h3's addresses: %v", a)
	}
}

func TestCompactRules(t *testing.T) {
	const base = "lab: c\nbridges: {lan: {subnets: [10.5.0.0/24]}}\nnodes:\n  r: {}\n"
	for _, tc := range []struct{ yaml, want string }{
		{"  h%d: {}\n", `c.yaml:5:3: nodes.h%d: a name with %d stands for many nodes: say how many with count: N`},
		{"  h: {count: 3}\n", `c.yaml:5:14: nodes.h.count: count: makes this entry stand for h1 to hN: its name must hold %d once (e.g. h%d)`},
		{"  h%d%d: {count: 3}\n", `c.yaml:5:18: nodes.h%d%d.count: count: makes this entry stand for`},
		{"  h%d: {count: 0}\n", `c.yaml:5:16: nodes.h%d.count: count 0: must be from 1 to 10000`},
		{"  h%d: {count: 10001}\n", `c.yaml:5:16: nodes.h%d.count: count 10001: must be from 1 to 10000`},
		{"  h%d: {count: two}\n", `c.yaml:5:16: nodes.h%d.count: must be a whole number, not "two"`},
		{"  h%d: {count: 2, netns: x}\n", `c.yaml:5:26: nodes.h%d.netns: a compact entry's nodes get their own namespaces (LAB-h%d): drop netns`},
		{"  h2: {}\n  h%d: {count: 3}\n", `c.yaml:6:3: nodes.h%d: h%d stands for h2, which is already a node (nodes.h2, line 5)`},
		{"  h%d: {count: 2}\nlinks:\n  - {a: {node: h%d, name: e, addresses: [10.5.0.9/24]}, b: {bridge: lan}}\n",
			`c.yaml:7:42: links[0].a.addresses[0]: a link of a compact entry stands for 2 links: its addresses are auto (or none), not 10.5.0.9/24`},
		{"  h%d: {count: 2}\nlinks:\n  - {a: {node: h%d, name: e}, b: {node: r, name: e}}\n",
			`c.yaml:7:34: links[0].b: this end is on node r for each of the 2 links: its name must hold %d (e.g. name: eth%d)`},
		{"  h%d: {count: 2}\n  k%d: {count: 3}\nlinks:\n  - {a: {node: h%d, name: e}, b: {node: k%d, name: e}}\n",
			`c.yaml:8:41: links[0].b.node: k%d has 3 nodes and h%d 2: a link between two compact entries pairs them one to one`},
		{"links:\n  - {a: {node: x%d, name: e}, b: {node: r, name: e%d}}\n",
			`c.yaml:6:16: links[0].a.node: no compact node entry x%d (with count:) in this lab`},
		// A problem of the entry is said once, not once per node.
		{"  h%d:\n    count: 50\n    routes: [{to: default, via: 10.9.0.1}]\n", "c.yaml:7:33: nodes.h%d.routes[0].via: "},
	} {
		_, err := lab.Parse("c.yaml", []byte(base+tc.yaml))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q:\n got %v\nwant %s", tc.yaml, err, tc.want)
			continue
		}
		if n := strings.Count(err.Error(), "\n"); n > 0 {
			t.Errorf("%q: %d problems, want one:\n%v", tc.yaml, n+1, err)
		}
	}
}

package lab_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/nsnet/nsnet/lab"
)

const staticLab = `lab: st
nodes:
  switch: {}
  h1: {}
  h2: {}
  h3: {}
bridges:
  lan: {node: switch, subnets: [10.5.0.0/24, "fd00:5::/64"], addresses: [10.5.0.254/24], static_neighbours: true}
  other: {node: switch, subnets: [10.6.0.0/24]}
links:
  - {a: {node: h1, name: eth0, addresses: [auto]}, b: {bridge: lan}}
  - {a: {node: h2, name: eth0, addresses: [auto]}, b: {bridge: lan}}
  - {a: {node: h3, name: eth0, addresses: [auto]}, b: {bridge: lan}}
  - {a: {node: h3, name: eth1, addresses: [auto]}, b: {bridge: other}}
`

// TestStaticNeighbours: a bridge with static_neighbours gives each station
// (each node's end on it, and the bridge with its address) a permanent
// entry for every other station's addresses on its subnets and its IPv6
// link-local address; a bridge without gets none; a lab that is up plans
// nothing; an entry deleted by hand brings back that station's entries
// alone.
func TestStaticNeighbours(t *testing.T) {
	l := parse(t, staticLab)
	h1 := l.Node("h1").Interface("eth0")
	mac := func(node, iface string) string { return l.Node(node).Interface(iface).MAC.String() }
	var got []string
	for _, e := range lab.StaticNeighbours(h1) {
		got = append(got, e.IP.String()+" "+e.MAC.String())
	}
	h2, h3 := l.Node("h2").Interface("eth0"), l.Node("h3").Interface("eth0")
	want := []string{
		"10.5.0.254 " + mac("switch", "lan"),
		h2.Addrs[0].Addr().String() + " " + mac("h2", "eth0"), h2.Addrs[1].Addr().String() + " " + mac("h2", "eth0"), h2.LinkLocal().Addr().String() + " " + mac("h2", "eth0"),
		h3.Addrs[0].Addr().String() + " " + mac("h3", "eth0"), h3.Addrs[1].Addr().String() + " " + mac("h3", "eth0"), h3.LinkLocal().Addr().String() + " " + mac("h3", "eth0"),
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("h1:eth0's entries:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// The bridge has only an IPv4 address: the others' IPv4 ones.
	if n := len(lab.StaticNeighbours(l.Node("switch").Interface("lan"))); n != 3 {
		t.Errorf("bridge lan has %d entries, want 3", n)
	}
	if n := len(lab.StaticNeighbours(l.Node("h3").Interface("eth1"))); n != 0 {
		t.Errorf("h3:eth1 on a bridge without static_neighbours has %d entries", n)
	}

	lines := planLines(t, l, &lab.State{})
	var neigh []string
	for _, s := range lines {
		if strings.Contains(s, " neigh ") {
			neigh = append(neigh, s)
		}
	}
	// h1, h2, h3: 7 entries each (the bridge, two others with three
	// addresses); the bridge: 3.
	if len(neigh) != 3*7+3 {
		t.Errorf("%d neighbour lines, want 24:\n%s", len(neigh), strings.Join(neigh, "\n"))
	}
	first := "ip -n st-h1 neigh replace 10.5.0.254 lladdr " + mac("switch", "lan") + " dev eth0 nud permanent"
	at := -1
	for k, s := range lines {
		if s == first {
			at = k
		}
	}
	if at < 0 || !lineBefore(lines, "ip -n st-h1 link set eth0 up", at) {
		t.Errorf("no %q after h1's eth0 is up in:\n%s", first, strings.Join(lines, "\n"))
	}
	p, err := lab.PlanUp(l, &lab.State{})
	if err != nil {
		t.Fatal(err)
	}
	if s := p.Summary(); !strings.Contains(s, "24 neighbours") {
		t.Errorf("summary %q does not count 24 neighbours", s)
	}

	st := upState(l)
	if lines := planLines(t, l, st); len(lines) != 0 {
		t.Errorf("a lab that is up plans:\n%s", strings.Join(lines, "\n"))
	}
	delete(st.Netns["st-h2"].Neighs, lab.NeighKey{Dev: "eth0", IP: netip.MustParseAddr("10.5.0.254")})
	lines = planLines(t, l, st)
	if len(lines) != 7 || !strings.HasPrefix(lines[0], "ip -n st-h2 neigh replace ") {
		t.Errorf("after one entry of h2 went, the plan is:\n%s", strings.Join(lines, "\n"))
	}
}

func lineBefore(lines []string, want string, at int) bool {
	for _, s := range lines[:at] {
		if s == want {
			return true
		}
	}
	return false
}

func TestStaticNeighboursValidated(t *testing.T) {
	_, err := lab.Parse("bad.yaml", []byte("lab: x\nnodes: {s: {}}\nbridges:\n  br: {node: s, static_neighbours: yes}\n"))
	if err == nil || !strings.Contains(err.Error(), `bad.yaml:4:36: bridges.br.static_neighbours: static_neighbours "yes": must be true or false`) {
		t.Errorf("got %v", err)
	}
}

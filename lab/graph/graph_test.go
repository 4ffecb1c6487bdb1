package graph_test

import (
	"bytes"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/nsnet/nsnet/lab"
	"github.com/nsnet/nsnet/lab/graph"
)

// dot is a DOT graph as WriteDOT writes it, read back by a small parser of
// that subset: a graph line, node statements, edge statements, "}".
type dot struct {
	name  string
	nodes map[string]map[string]string
	edges []dotEdge
}

type dotEdge struct {
	a, b  string
	attrs map[string]string
}

var (
	headRE  = regexp.MustCompile(`^graph ("(?:[^"\\]|\\.)*") \{$`)
	nodeRE  = regexp.MustCompile(`^  ("(?:[^"\\]|\\.)*") \[(.*)\];$`)
	edgeRE  = regexp.MustCompile(`^  ("(?:[^"\\]|\\.)*") -- ("(?:[^"\\]|\\.)*") \[(.*)\];$`)
	attrRE  = regexp.MustCompile(`^([a-z]+)=("(?:[^"\\]|\\.)*"|[a-z]+)$`)
	splitRE = regexp.MustCompile(`, (?:[a-z]+=)`)
)

func unquote(s string) string {
	s = strings.TrimSuffix(strings.TrimPrefix(s, `"`), `"`)
	return strings.NewReplacer(`\"`, `"`, `\\`, `\`).Replace(s)
}

func attrs(t *testing.T, s string) map[string]string {
	out := map[string]string{}
	// Split on ", key=" boundaries, keeping the key with its value.
	idx := splitRE.FindAllStringIndex(s, -1)
	start := 0
	var parts []string
	for _, ix := range idx {
		parts = append(parts, s[start:ix[0]])
		start = ix[0] + 2
	}
	parts = append(parts, s[start:])
	for _, p := range parts {
		m := attrRE.FindStringSubmatch(p)
		if m == nil {
			t.Fatalf("bad attribute %q in %q", p, s)
		}
		out[m[1]] = unquote(m[2])
	}
	return out
}

func parseDOT(t *testing.T, text string) dot {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	m := headRE.FindStringSubmatch(lines[0])
	if m == nil || lines[len(lines)-1] != "}" {
		t.Fatalf("not a DOT graph:\n%s", text)
	}
	d := dot{name: unquote(m[1]), nodes: map[string]map[string]string{}}
	for _, l := range lines[1 : len(lines)-1] {
		if l == "  node [shape=ellipse];" {
			continue
		}
		if m := edgeRE.FindStringSubmatch(l); m != nil {
			a, b := unquote(m[1]), unquote(m[2])
			if d.nodes[a] == nil || d.nodes[b] == nil {
				t.Fatalf("edge before its nodes: %q", l)
			}
			d.edges = append(d.edges, dotEdge{a, b, attrs(t, m[3])})
			continue
		}
		if m := nodeRE.FindStringSubmatch(l); m != nil {
			d.nodes[unquote(m[1])] = attrs(t, m[2])
			continue
		}
		t.Fatalf("not a DOT statement: %q", l)
	}
	return d
}

func load(t *testing.T, path string) *lab.Lab {
	t.Helper()
	l, err := lab.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestDOTMatchesLab: every example's DOT has one node statement per node
// (the host only when the lab uses it) and bridge, and one edge per link
// between its ends' nodes or bridges, with their interface names.
func TestDOTMatchesLab(t *testing.T) {
	for _, ex := range []string{"two-lans", "routed", "tenants", "seed", "faults"} {
		t.Run(ex, func(t *testing.T) {
			l := load(t, "../../examples/"+ex+".yaml")
			var b bytes.Buffer
			if err := graph.Of(l, nil).WriteDOT(&b); err != nil {
				t.Fatal(err)
			}
			d := parseDOT(t, b.String())
			if d.name != l.Name {
				t.Errorf("graph %q, lab %q", d.name, l.Name)
			}
			var want []string
			for _, n := range l.Nodes {
				if !n.IsHost() || len(n.Interfaces) > 0 {
					want = append(want, n.Name)
				}
			}
			for _, br := range l.Bridges {
				want = append(want, "bridge:"+br.Name)
				if d.nodes["bridge:"+br.Name]["shape"] != "box" {
					t.Errorf("bridge %s is not a box", br.Name)
				}
			}
			var got []string
			for n, a := range d.nodes {
				got = append(got, n)
				if a["color"] != "" {
					t.Errorf("node %s drawn as drifted from a file alone", n)
				}
			}
			slices.Sort(want)
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("nodes %v, want %v", got, want)
			}
			if len(d.edges) != len(l.Links) {
				t.Fatalf("%d edges, %d links", len(d.edges), len(l.Links))
			}
			for i, lk := range l.Links {
				e := d.edges[i]
				for _, c := range []struct {
					v    string
					end  *lab.Interface
					attr string
				}{{e.a, lk.A, "taillabel"}, {e.b, lk.B, "headlabel"}} {
					want := c.end.Node.Name
					if c.end.Master != nil {
						want = "bridge:" + c.end.Master.Bridge.Name
					}
					if c.v != want || e.attrs[c.attr] != c.end.Name {
						t.Errorf("link %d: end %s %s=%s, want %s %s", i, c.v, c.attr, e.attrs[c.attr], want, c.end.Name)
					}
				}
			}
		})
	}
}

// TestDrift: a node whose namespace is gone and a link end that is down
// are drawn dashed and red in DOT, dotted and in class drift in Mermaid;
// nothing else is.
func TestDrift(t *testing.T) {
	l := load(t, "../../examples/two-lans.yaml")
	st := lab.LabStatus{}
	for _, n := range l.Nodes {
		ns := lab.NodeStatus{Node: n.Name, Present: n.Name != "h5"}
		for _, i := range n.Interfaces {
			ns.Links = append(ns.Links, lab.LinkStatus{Name: i.Name, Present: true, Up: !(n.Name == "router" && i.Name == "eth2")})
		}
		st.NodeStatus = append(st.NodeStatus, ns)
	}
	g := graph.Of(l, graph.DriftOf(st))
	var b bytes.Buffer
	if err := g.WriteDOT(&b); err != nil {
		t.Fatal(err)
	}
	d := parseDOT(t, b.String())
	for n, a := range d.nodes {
		if (a["color"] == "red") != (n == "h5") {
			t.Errorf("node %s: %v", n, a)
		}
	}
	var red []string
	for _, e := range d.edges {
		if e.attrs["color"] == "red" {
			if e.attrs["style"] != "dashed" {
				t.Errorf("red edge not dashed: %v", e)
			}
			red = append(red, e.a+"/"+e.attrs["taillabel"])
		}
	}
	if want := []string{"router/eth2", "h5/eth0"}; !slices.Equal(red, want) {
		t.Errorf("drifted edges %v, want %v", red, want)
	}
	b.Reset()
	if err := g.WriteMermaid(&b); err != nil {
		t.Fatal(err)
	}
	m := b.String()
	if !strings.HasPrefix(m, "flowchart LR\n") || strings.Count(m, " -.-|") != 2 || strings.Count(m, " ---|") != len(l.Links)-2 {
		t.Errorf("mermaid:\n%s", m)
	}
	h5 := -1
	for i, v := range g.Vertices {
		if v.ID == "h5" {
			h5 = i
		}
	}
	for _, want := range []string{fmt.Sprintf("  class n%d drift\n", h5), "(missing)\"", "  linkStyle "} {
		if !strings.Contains(m, want) {
			t.Errorf("mermaid lacks %q:\n%s", want, m)
		}
	}
}

// TestReadmeOutput: README shows what nsnet graph examples/routed.yaml prints.
func TestReadmeOutput(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(b), "`nsnet graph examples/routed.yaml` prints:\n\n```dot\n")
	block, _, ok2 := strings.Cut(after, "```\n")
	if !ok || !ok2 {
		t.Fatal("README has no output of nsnet graph examples/routed.yaml")
	}
	var out bytes.Buffer
	if err := graph.Of(load(t, "../../examples/routed.yaml"), nil).WriteDOT(&out); err != nil {
		t.Fatal(err)
	}
	if block != out.String() {
		t.Errorf("README's graph is stale:\n%s\nwant:\n%s", block, out.String())
	}
}

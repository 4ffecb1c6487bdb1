package lab_test

import (
	"encoding/xml"
	"strings"
	"testing"

	"github.com/nsnet/nsnet/lab"
)

// TestGeneratedTopologies: a ring (routes the shorter way round) and a
// small clos (routes through a spine), printed by nsnet new, come up as
// written and every node reaches every other node's address; check --all
// agrees; down leaves nothing.
func TestGeneratedTopologies(t *testing.T) {
	for _, shape := range [][]string{{"ring", "4"}, {"clos", "2", "2", "1"}} {
		t.Run(strings.Join(shape, "-"), func(t *testing.T) {
			e := newEnv(t)
			before := e.snap()
			text := e.must(append([]string{"new"}, shape...)...)
			l, err := lab.Parse("gen.yaml", []byte(text))
			if err != nil {
				t.Fatal(err)
			}
			file := e.write(l.Name+".yaml", text)
			e.must("up", file)
			for _, from := range l.Nodes {
				for _, to := range l.Nodes {
					if from != to && !from.IsHost() && !to.IsHost() {
						e.mustPing(l.Name, from.Name, to.FirstAddr().String())
					}
				}
			}
			if r := e.run("check", "--all", l.Name); r.code != 0 {
				t.Errorf("check --all: exit %d\n%s%s", r.code, r.out, r.err)
			}
			e.must("down", l.Name)
			e.sameAs(before, "after down")
		})
	}
}

// TestGraphDrift: nsnet graph of a lab that is up draws a link set down by
// hand dashed and red, and only that one; up repairs it and the graph is
// clean again.
func TestGraphDrift(t *testing.T) {
	e := newEnv(t)
	file := e.write("ring-3.yaml", e.must("new", "ring", "3"))
	e.must("up", file)
	defer e.must("down", "ring-3")
	red := func() []string {
		var out []string
		for _, l := range strings.Split(e.must("graph", "ring-3"), "\n") {
			if strings.Contains(l, "color=red") {
				out = append(out, strings.TrimSpace(l))
			}
		}
		return out
	}
	if r := red(); len(r) != 0 {
		t.Fatalf("drift drawn on a lab as written: %q", r)
	}
	e.must("exec", "ring-3", "r1", "--", e.bin, "link", "set", "eth1", "down")
	r := red()
	if len(r) != 1 || !strings.HasPrefix(r[0], `"r1" -- "r2" [taillabel="eth1", headlabel="eth1", style=dashed`) {
		t.Errorf("after eth1 of r1 was set down: %q", r)
	}
	if m := e.must("graph", "ring-3", "--format", "mermaid"); strings.Count(m, " -.-|") != 1 {
		t.Errorf("mermaid after eth1 of r1 was set down:\n%s", m)
	}
	if st := svgStates(t, e.must("graph", "ring-3", "--format", "svg")); st["r1 -- r2"] != "down" || len(st) != 1 {
		t.Errorf("svg after eth1 of r1 was set down: drifted %v", st)
	}
	// A namespace deleted by hand: its node is missing, its link down.
	ip(t, "netns", "del", "ring-3-h2")
	if st := svgStates(t, e.must("graph", "ring-3", "--format", "svg")); len(st) != 3 ||
		st["h2"] != "missing" || st["r2 -- h2"] != "down" && st["h2 -- r2"] != "down" {
		t.Errorf("svg after ring-3-h2 was deleted: drifted %v", st)
	}
	if r := red(); len(r) != 3 || !strings.HasPrefix(r[0], `"h2" [label="h2", style=dashed, color=red, xlabel="missing"]`) {
		t.Errorf("dot after ring-3-h2 was deleted: %q", r)
	}
	e.must("up", file)
	if r := red(); len(r) != 0 {
		t.Errorf("drift drawn after up repaired it: %q", r)
	}
	if st := svgStates(t, e.must("graph", "ring-3", "--format", "svg")); len(st) != 0 {
		t.Errorf("svg drift drawn after up repaired it: %v", st)
	}
}

// svgStates reads nsnet graph --format svg as XML: the title and state of
// each vertex and link drawn as drifted.
func svgStates(t *testing.T, text string) map[string]string {
	t.Helper()
	var doc struct {
		Groups []struct {
			Class string `xml:"class,attr"`
			State string `xml:"data-state,attr"`
			Title string `xml:"title"`
		} `xml:"g"`
	}
	if err := xml.Unmarshal([]byte(text), &doc); err != nil {
		t.Fatalf("svg: %v\n%s", err, text)
	}
	out := map[string]string{}
	n := 0
	for _, g := range doc.Groups {
		n++
		if g.State != "ok" {
			out[g.Title] = g.State
		}
	}
	if n == 0 {
		t.Fatalf("svg draws nothing:\n%s", text)
	}
	return out
}

package graph_test

import (
	"bytes"
	"encoding/xml"
	"math"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/nsnet/nsnet/lab"
	"github.com/nsnet/nsnet/lab/graph"
	"github.com/nsnet/nsnet/lab/topo"
)

// svgDoc is the part of the SVG that WriteSVG writes that a program reads:
// the root's size, and the groups of vertices and links.
type svgDoc struct {
	XMLName xml.Name `xml:"svg"`
	Width   string   `xml:"width,attr"`
	Height  string   `xml:"height,attr"`
	ViewBox string   `xml:"viewBox,attr"`
	Title   string   `xml:"title"`
	Groups  []svgG   `xml:"g"`
}

type svgG struct {
	Class  string    `xml:"class,attr"`
	Kind   string    `xml:"data-kind,attr"`
	State  string    `xml:"data-state,attr"`
	From   string    `xml:"data-from,attr"`
	FromIf string    `xml:"data-from-if,attr"`
	To     string    `xml:"data-to,attr"`
	ToIf   string    `xml:"data-to-if,attr"`
	VNI    string    `xml:"data-vni,attr"`
	Title  string    `xml:"title"`
	Rect   *svgShape `xml:"rect"`
	Path   *svgShape `xml:"path"`
	Texts  []string  `xml:"text"`
}

type svgShape struct {
	X      float64 `xml:"x,attr"`
	Y      float64 `xml:"y,attr"`
	W      float64 `xml:"width,attr"`
	H      float64 `xml:"height,attr"`
	D      string  `xml:"d,attr"`
	Stroke string  `xml:"stroke,attr"`
	Dash   string  `xml:"stroke-dasharray,attr"`
}

func parseSVG(t *testing.T, b []byte) svgDoc {
	t.Helper()
	var d svgDoc
	if err := xml.Unmarshal(b, &d); err != nil {
		t.Fatalf("not XML: %v\n%s", err, b)
	}
	return d
}

func svgOf(t *testing.T, l *lab.Lab, d *graph.Drift) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := graph.Of(l, d).WriteSVG(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// labs are every example and every generated shape.
func labs(t *testing.T) map[string]*lab.Lab {
	out := map[string]*lab.Lab{}
	for _, ex := range []string{"two-lans", "routed", "tenants", "seed", "faults", "multi"} {
		out[ex] = load(t, "../../examples/"+ex+".yaml")
	}
	args := map[string][]string{"linear": {"4"}, "star": {"5"}, "ring": {"5"}, "mesh": {"4"}, "tree": {"2", "3"}, "clos": {"2", "4", "2"}}
	for _, shape := range topo.Shapes() {
		tp, err := topo.New(shape, args[shape], "")
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		if err := tp.Write(&b, "nsnet new "+shape); err != nil {
			t.Fatal(err)
		}
		l, err := lab.Parse(shape+".yaml", b.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		out[shape] = l
	}
	return out
}

var pathNums = regexp.MustCompile(`-?[0-9.]+`)

// TestSVGMatchesLab: the SVG of every example and generated shape is XML
// with one node group per node and bridge (a node that only holds bridges
// is named by them instead), one edge group per link between its ends'
// vertices with each end's interface name and addresses written in it;
// every box lies inside the picture, no two boxes overlap and each line
// starts and ends on the boxes of its ends.
func TestSVGMatchesLab(t *testing.T) {
	for name, l := range labs(t) {
		t.Run(name, func(t *testing.T) {
			d := parseSVG(t, svgOf(t, l, nil))
			if d.Title != "lab "+l.Name {
				t.Errorf("title %q", d.Title)
			}
			vb := strings.Fields(d.ViewBox)
			if len(vb) != 4 || vb[2] != d.Width || vb[3] != d.Height {
				t.Fatalf("viewBox %q, size %s x %s", d.ViewBox, d.Width, d.Height)
			}
			width, _ := strconv.ParseFloat(d.Width, 64)
			height, _ := strconv.ParseFloat(d.Height, 64)
			var want []string
			bridgeNodes := map[string]bool{}
			for _, br := range l.Bridges {
				want = append(want, "bridge:"+br.Name)
				bridgeNodes[br.Node.Name] = true
			}
			for _, n := range l.Nodes {
				ends := false
				for _, i := range n.Interfaces {
					ends = ends || (i.Kind != lab.KindBridge && i.Master == nil)
				}
				if (n.IsHost() && len(n.Interfaces) == 0) || (bridgeNodes[n.Name] && !ends) {
					continue
				}
				want = append(want, n.Name)
			}
			boxes := map[string]svgShape{}
			var edges []svgG
			for _, g := range d.Groups {
				switch g.Class {
				case "node":
					if g.Rect == nil || g.State != "ok" {
						t.Fatalf("node %s: %+v", g.Title, g)
					}
					if (g.Kind == "bridge") != strings.HasPrefix(g.Title, "bridge:") {
						t.Errorf("node %s of kind %s", g.Title, g.Kind)
					}
					r := *g.Rect
					if r.X < 0 || r.Y < 0 || r.X+r.W > width || r.Y+r.H > height {
						t.Errorf("node %s at %+v outside %v x %v", g.Title, r, width, height)
					}
					for o, q := range boxes {
						if r.X < q.X+q.W && q.X < r.X+r.W && r.Y < q.Y+q.H && q.Y < r.Y+r.H {
							t.Errorf("boxes of %s and %s overlap", g.Title, o)
						}
					}
					boxes[g.Title] = r
				case "edge":
					edges = append(edges, g)
				default:
					t.Errorf("group of class %q", g.Class)
				}
			}
			var got []string
			for n := range boxes {
				got = append(got, n)
			}
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Fatalf("nodes %v, want %v", got, want)
			}
			if len(edges) != len(l.Links) {
				t.Fatalf("%d edges, %d links", len(edges), len(l.Links))
			}
			vertex := func(i *lab.Interface) string {
				if i.Master != nil {
					return "bridge:" + i.Master.Bridge.Name
				}
				return i.Node.Name
			}
			for k, lk := range l.Links {
				e := edges[k]
				if e.From != vertex(lk.A) || e.To != vertex(lk.B) || e.FromIf != lk.A.Name || e.ToIf != lk.B.Name ||
					e.Title != e.From+" -- "+e.To || e.State != "ok" {
					t.Errorf("link %d (%s/%s - %s/%s): %+v", k, lk.A.Node.Name, lk.A.Name, lk.B.Node.Name, lk.B.Name, e)
				}
				if (e.VNI != "") != (lk.VNI != 0) || (lk.VNI != 0 && e.VNI != strconv.Itoa(int(lk.VNI))) {
					t.Errorf("link %d: VNI %q, want %d", k, e.VNI, lk.VNI)
				}
				text := strings.Join(e.Texts, " ")
				for _, end := range []*lab.Interface{lk.A, lk.B} {
					if !end.Faults().IsZero() && !strings.Contains(text, end.Faults().String()) {
						t.Errorf("link %d: faults %q of %s not written in %q", k, end.Faults(), end.Name, text)
					}
					for _, w := range append([]string{end.Name}, addrStrings(end)...) {
						if !slices.Contains(strings.Fields(text), w) {
							t.Errorf("link %d: %q not written in %q", k, w, text)
						}
					}
				}
				nums := pathNums.FindAllString(e.Path.D, -1)
				if len(nums) < 4 {
					t.Fatalf("link %d: path %q", k, e.Path.D)
				}
				f := func(s string) float64 { v, _ := strconv.ParseFloat(s, 64); return v }
				for _, c := range []struct {
					v    string
					x, y float64
				}{{e.From, f(nums[0]), f(nums[1])}, {e.To, f(nums[len(nums)-2]), f(nums[len(nums)-1])}} {
					r := boxes[c.v]
					if !onBoundary(r, c.x, c.y) {
						t.Errorf("link %d: end %v,%v not on the box of %s %+v", k, c.x, c.y, c.v, r)
					}
				}
			}
		})
	}
}

func addrStrings(i *lab.Interface) []string {
	var out []string
	for _, a := range i.Addrs {
		out = append(out, a.String())
	}
	return out
}

// onBoundary: (x, y) is on the rectangle's edge, to a rounding.
func onBoundary(r svgShape, x, y float64) bool {
	const eps = 0.15
	inX := x >= r.X-eps && x <= r.X+r.W+eps
	inY := y >= r.Y-eps && y <= r.Y+r.H+eps
	onX := math.Abs(x-r.X) < eps || math.Abs(x-r.X-r.W) < eps
	onY := math.Abs(y-r.Y) < eps || math.Abs(y-r.Y-r.H) < eps
	return (inX && onY) || (inY && onX)
}

// TestSVGDrift: a node whose namespace is gone is drawn red and dashed
// with "(missing)", and a link with an end down (and the missing node's
// link) red and dashed with "down"; nothing else is.
func TestSVGDrift(t *testing.T) {
	l := load(t, "../../examples/two-lans.yaml")
	st := lab.LabStatus{}
	for _, n := range l.Nodes {
		ns := lab.NodeStatus{Node: n.Name, Present: n.Name != "h5"}
		for _, i := range n.Interfaces {
			ns.Links = append(ns.Links, lab.LinkStatus{Name: i.Name, Present: true, Up: !(n.Name == "router" && i.Name == "eth2")})
		}
		st.NodeStatus = append(st.NodeStatus, ns)
	}
	d := parseSVG(t, svgOf(t, l, graph.DriftOf(st)))
	var down []string
	for _, g := range d.Groups {
		switch g.Class {
		case "node":
			missing := g.Title == "h5"
			if (g.State == "missing") != missing || (g.Rect.Stroke == "#d00000") != missing || (g.Rect.Dash != "") != missing ||
				slices.Contains(g.Texts, "(missing)") != missing {
				t.Errorf("node %s: %+v", g.Title, g)
			}
		case "edge":
			red := g.Path.Stroke == "#d00000" && g.Path.Dash != ""
			if (g.State == "down") != red || slices.Contains(g.Texts, "down") != red {
				t.Errorf("edge %s: %+v", g.Title, g)
			}
			if red {
				down = append(down, g.From+"/"+g.FromIf)
			}
		}
	}
	if want := []string{"router/eth2", "h5/eth0"}; !slices.Equal(down, want) {
		t.Errorf("drifted edges %v, want %v", down, want)
	}
}

// TestSVGDeterministic: the same lab gives the same bytes, drawn twice.
func TestSVGDeterministic(t *testing.T) {
	for name, l := range labs(t) {
		if a, b := svgOf(t, l, nil), svgOf(t, l, nil); !bytes.Equal(a, b) {
			t.Errorf("%s: two drawings differ", name)
		}
	}
}

// TestDocsPicture: README shows docs/two-lans.svg, and that file is what
// nsnet graph --format svg examples/two-lans.yaml draws now, so README
// never shows a stale picture.
func TestDocsPicture(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), "](docs/two-lans.svg)") {
		t.Error("README does not show docs/two-lans.svg")
	}
	have, err := os.ReadFile("../../docs/two-lans.svg")
	if err != nil {
		t.Fatal(err)
	}
	if want := svgOf(t, load(t, "../../examples/two-lans.yaml"), nil); !bytes.Equal(have, want) {
		t.Error("docs/two-lans.svg is stale: run nsnet graph --format svg examples/two-lans.yaml > docs/two-lans.svg")
	}
}

// BenchmarkSVG draws a clos fabric of 4 spines, 16 leaves and 8 hosts a
// leaf (148 vertices, 192 links): the layout's cost on a big lab.
func BenchmarkSVG(b *testing.B) {
	tp, err := topo.New("clos", []string{"4", "16", "8"}, "")
	if err != nil {
		b.Fatal(err)
	}
	var text bytes.Buffer
	if err := tp.Write(&text, "nsnet new clos 4 16 8"); err != nil {
		b.Fatal(err)
	}
	l, err := lab.Parse("clos.yaml", text.Bytes())
	if err != nil {
		b.Fatal(err)
	}
	g := graph.Of(l, nil)
	for b.Loop() {
		var out bytes.Buffer
		if err := g.WriteSVG(&out); err != nil {
			b.Fatal(err)
		}
	}
}

// TestSVGFolds: a router with 1,000 hosts (nsnet new star 1000) is drawn
// with its first hosts, one box for the middle ones (naming the first and
// last, with its count) and the last host, a picture of a normal width;
// a host that drifted is drawn on its own, out of the fold.
func TestSVGFolds(t *testing.T) {
	tp, err := topo.New("star", []string{"1000"}, "")
	if err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	if err := tp.Write(&text, "nsnet new star 1000"); err != nil {
		t.Fatal(err)
	}
	l, err := lab.Parse("star.yaml", text.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		missing string
		nodes   []string
		folded  string
	}{
		{"", []string{"fold:r1", "h1", "h1000", "h2", "h3", "h4", "r1"}, "995"},
		{"h500", []string{"fold:r1", "h1", "h1000", "h2", "h3", "h4", "h500", "r1"}, "994"},
	} {
		var drift *graph.Drift
		if c.missing != "" {
			drift = graph.DriftOf(lab.LabStatus{NodeStatus: []lab.NodeStatus{{Node: c.missing}}})
		}
		d := parseSVG(t, svgOf(t, l, drift))
		var nodes []string
		var folds []svgG
		for _, g := range d.Groups {
			if g.Class == "node" {
				nodes = append(nodes, g.Title)
			}
			if g.Kind == "fold" || (g.Class == "edge" && g.To == "fold:r1") {
				folds = append(folds, g)
			}
		}
		slices.Sort(nodes)
		if !slices.Equal(nodes, c.nodes) {
			t.Errorf("missing %q: nodes %v, want %v", c.missing, nodes, c.nodes)
		}
		// Edges are written before nodes.
		if len(folds) != 2 || !slices.Contains(folds[1].Texts, c.folded+" more") || !slices.Contains(folds[1].Texts, "h5 … h999") ||
			folds[1].Rect == nil {
			t.Errorf("missing %q: folds %+v", c.missing, folds)
		}
		if e := folds[0]; !slices.Contains(e.Texts, "eth5 … eth999") || !slices.Contains(e.Texts, "10.0.0.18/30 … 10.0.15.154/30") {
			t.Errorf("missing %q: fold's link %+v", c.missing, e)
		}
		if w, _ := strconv.ParseFloat(d.Width, 64); w > 2500 {
			t.Errorf("missing %q: %s px wide", c.missing, d.Width)
		}
	}
}

// TestSVGSeenOn: the drift of a lab across machines comes from one
// machine's part: the picture says which, and marks no node of the other
// machine as missing.
func TestSVGSeenOn(t *testing.T) {
	l := load(t, "../../examples/multi.yaml")
	st := lab.LabStatus{Summary: lab.Summary{Host: "m1"}}
	for _, n := range l.Nodes {
		if n.Host != nil && n.Host.Name == "m1" {
			ns := lab.NodeStatus{Node: n.Name, Present: true}
			for _, i := range n.Interfaces {
				ns.Links = append(ns.Links, lab.LinkStatus{Name: i.Name, Present: true, Up: true})
			}
			st.NodeStatus = append(st.NodeStatus, ns)
		}
	}
	b := svgOf(t, l, graph.DriftOf(st))
	if !bytes.Contains(b, []byte(">drift as seen on m1: the other machines' nodes are not checked from here</text>")) {
		t.Errorf("no word of whose kernel was read:\n%s", b)
	}
	for _, g := range parseSVG(t, b).Groups {
		if g.State != "ok" {
			t.Errorf("%s drawn %s", g.Title, g.State)
		}
	}
	if b := svgOf(t, l, nil); bytes.Contains(b, []byte("seen on")) {
		t.Error("a drawing from the file alone says whose kernel was read")
	}
}

// Package graph draws a lab as Graphviz DOT or Mermaid text, written by
// hand (no dependency): nodes, bridges and links, and, for a lab that is up,
// what drifted from the file (a node whose namespace is gone, a link end
// missing or down), drawn dashed and red.
package graph

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/nsnet/nsnet/lab"
)

// Graph is what is drawn: vertices (nodes and bridges) and edges (links).
type Graph struct {
	Lab string
	// Hosts are the machines of a lab across machines, in file order.
	Hosts []string
	// SeenOn is, for the drift of a lab across machines, the machine whose
	// kernel was read: the other machines' nodes were not checked.
	SeenOn   string
	Vertices []Vertex
	Edges    []Edge
}

// Vertex is a node or a bridge.
type Vertex struct {
	ID     string // node name, or "bridge:NAME"
	Label  string
	Bridge bool
	// In is the node a bridge is in.
	In string
	// Host is the machine the node (or the bridge's node) is on, empty in a
	// lab on one machine.
	Host string
	// Missing: the lab is up but this node's namespace is gone.
	Missing bool
	// Folded is, for a vertex standing for many leaves (Folded), how
	// many.
	Folded int
}

// Edge is one link, between the vertices of its ends (a bridge port's end
// is its bridge).
type Edge struct {
	From, To         string
	FromIf, ToIf     string
	FromNode, ToNode string // the nodes the ends are in
	// FromAddrs, ToAddrs are each end's addresses, as in the file (auto
	// ones resolved).
	FromAddrs, ToAddrs []string
	// FromFaults, ToFaults are the faults the file puts on what leaves
	// each end, in netem's words ("" for none).
	FromFaults, ToFaults string
	// VNI is the VXLAN network identifier of a link across machines, 0
	// for a link on one machine.
	VNI uint32
	// Down: the lab is up but an end is missing or down.
	Down bool
	// Folded is, for the edge to a fold, how many links it stands for.
	Folded int
}

// Drift is what the kernel shows of a lab that is up: nodes and their
// interfaces. Nil for a lab drawn from its file alone.
type Drift struct {
	missingNode map[string]bool
	downIface   map[string]bool // "node/ifname"
	here        string          // the machine read, in a lab across machines
}

// DriftOf reads a lab's status.
func DriftOf(st lab.LabStatus) *Drift {
	// A lab across machines' status holds this machine's part alone.
	d := &Drift{missingNode: map[string]bool{}, downIface: map[string]bool{}, here: st.Host}
	for _, n := range st.NodeStatus {
		if !n.Present {
			d.missingNode[n.Node] = true
		}
		for _, l := range n.Links {
			if !l.Present || !l.Up {
				d.downIface[n.Node+"/"+l.Name] = true
			}
		}
	}
	return d
}

func bridgeID(b *lab.Bridge) string { return "bridge:" + b.Name }

// Of builds the graph of l; d (may be nil) marks what drifted.
func Of(l *lab.Lab, d *Drift) *Graph {
	g := &Graph{Lab: l.Name}
	if d != nil && len(l.Hosts) > 0 {
		g.SeenOn = d.here
	}
	for _, h := range l.Hosts {
		g.Hosts = append(g.Hosts, h.Name)
	}
	host := func(n *lab.Node) string {
		if n.Host == nil {
			return ""
		}
		return n.Host.Name
	}
	addrs := func(i *lab.Interface) []string {
		var out []string
		for _, a := range i.Addrs {
			out = append(out, a.String())
		}
		return out
	}
	faults := func(i *lab.Interface) string {
		if i.Faults().IsZero() {
			return ""
		}
		return i.Faults().String()
	}
	missing := func(n *lab.Node) bool { return d != nil && d.missingNode[n.Name] }
	down := func(i *lab.Interface) bool {
		return d != nil && (d.missingNode[i.Node.Name] || d.downIface[i.Node.Name+"/"+i.Name])
	}
	for _, n := range l.Nodes {
		if n.IsHost() && len(n.Interfaces) == 0 {
			continue // a lab that leaves the host alone does not draw it
		}
		g.Vertices = append(g.Vertices, Vertex{ID: n.Name, Label: n.Name, Host: host(n), Missing: missing(n)})
	}
	for _, b := range l.Bridges {
		g.Vertices = append(g.Vertices, Vertex{ID: bridgeID(b), Label: b.Name + " (bridge in " + b.Node.Name + ")", Bridge: true,
			In: b.Node.Name, Host: host(b.Node), Missing: missing(b.Node) || down(b.Iface)})
	}
	end := func(i *lab.Interface) string {
		if i.Master != nil && i.Master.Bridge != nil {
			return bridgeID(i.Master.Bridge)
		}
		return i.Node.Name
	}
	for _, lk := range l.Links {
		g.Edges = append(g.Edges, Edge{From: end(lk.A), To: end(lk.B), FromIf: lk.A.Name, ToIf: lk.B.Name,
			FromNode: lk.A.Node.Name, ToNode: lk.B.Node.Name, FromAddrs: addrs(lk.A), ToAddrs: addrs(lk.B),
			FromFaults: faults(lk.A), ToFaults: faults(lk.B),
			VNI: lk.VNI, Down: down(lk.A) || down(lk.B)})
	}
	return g
}

// quote is a DOT ID in double quotes.
func quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// WriteDOT writes the graph in Graphviz's DOT language: one statement a
// line, nodes first, then edges ("A" -- "B" with each end's interface).
func (g *Graph) WriteDOT(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "graph %s {\n", quote(g.Lab))
	b.WriteString("  node [shape=ellipse];\n")
	for _, v := range g.Vertices {
		attrs := []string{"label=" + quote(v.Label)}
		if v.Bridge {
			attrs = append(attrs, "shape=box")
		}
		if v.Missing {
			attrs = append(attrs, "style=dashed", "color=red", `xlabel="missing"`)
		}
		fmt.Fprintf(&b, "  %s [%s];\n", quote(v.ID), strings.Join(attrs, ", "))
	}
	for _, e := range g.Edges {
		attrs := []string{"taillabel=" + quote(e.FromIf), "headlabel=" + quote(e.ToIf)}
		if e.Down {
			attrs = append(attrs, "style=dashed", "color=red", `label="down"`)
		}
		fmt.Fprintf(&b, "  %s -- %s [%s];\n", quote(e.From), quote(e.To), strings.Join(attrs, ", "))
	}
	b.WriteString("}\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteMermaid writes the graph as a Mermaid flowchart: node ids n0, n1...
// (a lab's names may hold characters Mermaid ids cannot), labels quoted,
// drifted edges dotted (-.-) and both they and missing nodes in class drift.
func (g *Graph) WriteMermaid(w io.Writer) error {
	var b strings.Builder
	b.WriteString("flowchart LR\n")
	id := map[string]string{}
	for i, v := range g.Vertices {
		id[v.ID] = "n" + strconv.Itoa(i)
		open, closing := "(", ")"
		if v.Bridge {
			open, closing = "[", "]"
		}
		label := v.Label
		if v.Missing {
			label += " (missing)"
		}
		fmt.Fprintf(&b, "  %s%s\"%s\"%s\n", id[v.ID], open, mermaidText(label), closing)
	}
	var drifted []string
	for i, e := range g.Edges {
		arrow := "---"
		if e.Down {
			arrow = "-.-"
			drifted = append(drifted, strconv.Itoa(i))
		}
		fmt.Fprintf(&b, "  %s %s|\"%s\"| %s\n", id[e.From], arrow, mermaidText(e.FromIf+" - "+e.ToIf), id[e.To])
	}
	b.WriteString("  classDef drift stroke:#d00,stroke-dasharray:4\n")
	for _, v := range g.Vertices {
		if v.Missing {
			fmt.Fprintf(&b, "  class %s drift\n", id[v.ID])
		}
	}
	if len(drifted) > 0 {
		fmt.Fprintf(&b, "  linkStyle %s stroke:#d00,stroke-dasharray:4\n", strings.Join(drifted, ","))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// mermaidText escapes what would end a quoted Mermaid label.
func mermaidText(s string) string { return strings.ReplaceAll(s, `"`, "#quot;") }

package graph

// Why nsnet draws SVG itself rather than through Graphviz: the pure-Go
// Graphviz (github.com/goccy/go-graphviz v0.2.10) runs Graphviz compiled to
// WebAssembly under wazero, and its package init builds that runtime and
// writes a compilation cache under $TMPDIR/go-graphviz. Linked into nsnet,
// every command paid for it: `nsnet version` went from about 5 ms and
// 13 MiB to about 50 ms and 29 MiB (10x, whole-process figures paired
// run by run), and the binary grew by 5.7 MB. A second binary (nsnet-graph)
// would have kept that off every other command, but then `go run
// ./cmd/nsnet graph --format svg` and a plain `go install` of nsnet could not
// draw, and the module would carry wazero for one picture. A lab is a small,
// regular graph (hosts under bridges under routers), which a layered layout
// (layout.go) draws clearly in a few hundred lines, with what Graphviz would
// not show without help: each end's interface and addresses beside its
// line, machines of a lab across machines as colours, VXLAN links blue.
// Anyone who prefers Graphviz's drawing still has `nsnet graph LAB | dot
// -Tsvg`.

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// Colours of the drawing.
const (
	inkLine   = "#555555"
	inkText   = "#222222"
	inkPort   = "#444444"
	inkDrift  = "#d00000"
	inkVXLAN  = "#1f5fbf"
	inkFault  = "#a34d00"
	fillNode  = "#eef3fb"
	fillBrdg  = "#f2f2f2"
	strokeBox = "#4a4a4a"
	dashDrift = "6 4"
)

// hostFill tells the machines of a lab across machines apart.
func hostFill(i int) string {
	fills := [...]string{"#dbe8fb", "#fde4cf", "#d9f2e0", "#f6dcec", "#efe9c8", "#e4defa"}
	return fills[i%len(fills)]
}

func num(x float64) string {
	return strconv.FormatFloat(math.Round(x*10)/10, 'f', -1, 64)
}

// esc escapes text and attribute values (a Replacer built per call cost
// half the drawing of a big lab).
func esc(s string) string {
	if !strings.ContainsAny(s, `&<>"`) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '&':
			b.WriteString("&amp;")
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		case '"':
			b.WriteString("&quot;")
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// WriteSVG draws the graph as an SVG image: nodes as rounded boxes,
// bridges as square ones (with the node they are in), each link with its
// ends' interface names and addresses, a lab across machines' machines as
// fills (with a legend) and its VXLAN links blue, and what drifted red and
// dashed ("missing", "down"). Each vertex is a <g class="node"> and each
// link a <g class="edge">, each with a <title> naming it as DOT does and
// data-* attributes for programs; the same graph always gives the same
// bytes.
//
// A vertex with more than FoldAbove leaves has the middle ones folded into
// one box (see Folded).
func (g *Graph) WriteSVG(w io.Writer) error {
	g = g.Folded()
	header := lineH * 1.6
	if len(g.Hosts) > 0 {
		header += lineH * 1.4
	}
	L := layOut(g, header)
	width := max(L.width, textW([]string{"lab " + g.Lab})+2*margin)
	if len(g.Hosts) > 0 {
		width = max(width, legendWidth(g)+2*margin)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%s" height="%s" viewBox="0 0 %s %s" font-family="DejaVu Sans Mono, Menlo, Consolas, monospace" font-size="%s">`+"\n",
		num(width), num(L.height), num(width), num(L.height), num(fontSize))
	fmt.Fprintf(&b, "<title>lab %s</title>\n", esc(g.Lab))
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="#ffffff"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%s" y="%s" font-weight="bold" fill="%s">lab %s</text>`+"\n", num(margin), num(margin+fontSize), inkText, esc(g.Lab))
	if len(g.Hosts) > 0 {
		x := margin
		y := margin + lineH*1.6
		for i, h := range g.Hosts {
			fmt.Fprintf(&b, `<rect x="%s" y="%s" width="%s" height="%s" rx="3" fill="%s" stroke="%s"/>`+"\n",
				num(x), num(y), num(fontSize), num(fontSize), hostFill(i), strokeBox)
			fmt.Fprintf(&b, `<text x="%s" y="%s" fill="%s">on %s</text>`+"\n", num(x+fontSize+labelGap), num(y+fontSize-1.5), inkText, esc(h))
			x += fontSize + labelGap + textW([]string{"on " + h}) + vertexGap
		}
		if g.SeenOn != "" {
			fmt.Fprintf(&b, `<text x="%s" y="%s" fill="%s" class="seen-on">%s</text>`+"\n", num(x), num(y+fontSize-1.5), inkPort, esc(seenOn(g.SeenOn)))
		}
	}
	for k, e := range g.Edges {
		L.writeEdge(&b, k, e)
	}
	for i, v := range g.Vertices {
		if !L.skip[i] {
			L.writeVertex(&b, i, v)
		}
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// seenOn says whose kernel the drift was read from.
func seenOn(host string) string {
	return "drift as seen on " + host + ": the other machines' nodes are not checked from here"
}

func legendWidth(g *Graph) float64 {
	w := 0.0
	if g.SeenOn != "" {
		w += textW([]string{seenOn(g.SeenOn)})
	}
	for _, h := range g.Hosts {
		w += fontSize + labelGap + textW([]string{"on " + h}) + vertexGap
	}
	return w
}

func (g *Graph) fill(v Vertex) string {
	for i, h := range g.Hosts {
		if h == v.Host {
			return hostFill(i)
		}
	}
	if v.Bridge {
		return fillBrdg
	}
	return fillNode
}

func (L *layout) writeVertex(b *strings.Builder, i int, v Vertex) {
	box := L.v[i]
	state := "ok"
	stroke, dash := strokeBox, ""
	if v.Missing {
		state, stroke, dash = "missing", inkDrift, ` stroke-dasharray="`+dashDrift+`"`
	}
	kind, rx, extra := "node", box.h/2, ""
	switch {
	case v.Bridge:
		kind, rx = "bridge", 3.0
	case v.Folded > 0:
		kind, dash, extra = "fold", ` stroke-dasharray="2 3"`, fmt.Sprintf(` data-folded="%d"`, v.Folded)
	}
	rx = min(rx, 12)
	fmt.Fprintf(b, `<g class="node" id="node%d" data-kind="%s" data-state="%s"%s>`+"<title>%s</title>\n", i+1, kind, state, extra, esc(v.ID))
	fmt.Fprintf(b, `<rect x="%s" y="%s" width="%s" height="%s" rx="%s" fill="%s" stroke="%s" stroke-width="1.3"%s/>`+"\n",
		num(box.cx-box.w/2), num(box.cy-box.h/2), num(box.w), num(box.h), num(rx), L.g.fill(v), stroke, dash)
	lines := box.lines
	top := box.cy - float64(len(lines))*lineH/2
	for n, line := range lines {
		attr := ""
		ink := inkText
		switch {
		case n == 0:
			attr = ` font-weight="bold"`
		case line == "(missing)":
			ink = inkDrift
		}
		fmt.Fprintf(b, `<text x="%s" y="%s" text-anchor="middle" fill="%s"%s>%s</text>`+"\n",
			num(box.cx), num(top+float64(n)*lineH+10.5), ink, attr, esc(line))
	}
	b.WriteString("</g>\n")
}

func (L *layout) writeEdge(b *strings.Builder, k int, e Edge) {
	a, z := L.ends[k][0], L.ends[k][1]
	state, ink, dash, width := "ok", inkLine, "", 1.4
	mid := e.midLabel()
	if e.VNI != 0 {
		ink, width = inkVXLAN, 1.8
	}
	if e.Down {
		state, ink, dash = "down", inkDrift, ` stroke-dasharray="`+dashDrift+`"`
	}
	fmt.Fprintf(b, `<g class="edge" id="edge%d" data-from="%s" data-from-if="%s" data-to="%s" data-to-if="%s" data-state="%s"`,
		k+1, esc(e.From), esc(e.FromIf), esc(e.To), esc(e.ToIf), state)
	if e.VNI != 0 {
		fmt.Fprintf(b, ` data-vni="%d"`, e.VNI)
	}
	if e.Folded > 0 {
		fmt.Fprintf(b, ` data-folded="%d"`, e.Folded)
	}
	fmt.Fprintf(b, "><title>%s -- %s</title>\n", esc(e.From), esc(e.To))
	var d, anchor string
	var mx, my float64
	switch {
	case L.loops[k]:
		r := 22.0
		d = fmt.Sprintf("M%s,%s C%s,%s %s,%s %s,%s", num(a.x), num(a.y), num(a.x+2*r), num(a.y-r), num(z.x+2*r), num(z.y+r), num(z.x), num(z.y))
		mx, my, anchor = a.x+2*r, (a.y+z.y)/2+4, "start"
	case L.arcs[k]:
		rise := arcRise(a.x, z.x)
		d = fmt.Sprintf("M%s,%s C%s,%s %s,%s %s,%s", num(a.x), num(a.y), num(a.x), num(a.y-rise), num(z.x), num(z.y-rise), num(z.x), num(z.y))
		mx, my, anchor = (a.x+z.x)/2, (a.y+z.y)/2-0.75*rise-5, "middle"
	case a.side == left || a.side == right:
		d = fmt.Sprintf("M%s,%s L%s,%s", num(a.x), num(a.y), num(z.x), num(z.y))
		mx, my, anchor = (a.x+z.x)/2, (a.y+z.y)/2+13, "middle" // below: the ends' labels are above
	default:
		ym := (a.y + z.y) / 2
		d = fmt.Sprintf("M%s,%s C%s,%s %s,%s %s,%s", num(a.x), num(a.y), num(a.x), num(ym), num(z.x), num(ym), num(z.x), num(z.y))
		mx, my, anchor = (a.x+z.x)/2+6, ym+4, "start"
	}
	fmt.Fprintf(b, `<path d="%s" fill="none" stroke="%s" stroke-width="%s"%s/>`+"\n", d, ink, num(width), dash)
	for _, end := range [2]*end{a, z} {
		writePortLabel(b, end)
	}
	if mid != "" {
		fmt.Fprintf(b, `<text x="%s" y="%s" text-anchor="%s" fill="%s" %s>%s</text>`+"\n", num(mx), num(my), anchor, ink, halo, esc(mid))
	}
	b.WriteString("</g>\n")
}

// midLabel is what is written along a link: "down" when it drifted, its
// VNI when it crosses machines.
func (e Edge) midLabel() string {
	switch {
	case e.Down:
		return "down"
	case e.VNI != 0:
		return fmt.Sprintf("vxlan %d", e.VNI)
	}
	return ""
}

// halo keeps a label readable where a line passes under it.
const halo = `stroke="#ffffff" stroke-width="3" stroke-linejoin="round" paint-order="stroke"`

// writePortLabel writes an end's interface name and addresses beside its
// port: right of it and away from the box above or below, above the line
// on a side.
func writePortLabel(b *strings.Builder, e *end) {
	n := len(e.lines)
	for i, line := range e.lines {
		x, anchor := e.x+labelGap, "start"
		var y float64
		if (e.side == top || e.side == bottom) && e.hang == left {
			x, anchor = e.x-labelGap, "end"
		}
		switch e.side {
		case top:
			y = e.y - labelGap - 3 - float64(n-1-i)*lineH
		case bottom:
			y = e.y + labelGap + 10 + float64(i)*lineH
		case right:
			y = e.y - 4 - float64(n-1-i)*lineH
		case left:
			x, anchor = e.x-labelGap, "end"
			y = e.y - 4 - float64(n-1-i)*lineH
		}
		weight, ink := "", inkPort
		if i == 0 && n > 1 {
			weight = ` font-weight="bold"`
		}
		if e.faults && i == n-1 {
			ink = inkFault
		}
		fmt.Fprintf(b, `<text x="%s" y="%s" text-anchor="%s" fill="%s" font-size="11"%s %s>%s</text>`+"\n",
			num(x), num(y), anchor, ink, weight, halo, esc(line))
	}
}

package graph

import (
	"cmp"
	"slices"
	"strings"
)

// The layout is a layered drawing (Sugiyama's frame) cut to the shape of
// labs: the hosts, which end a lab's links, sit on the bottom row and every
// other vertex sits as many rows up as it is links away from the nearest of
// them, so routers come out on top, the bridges and switches they serve
// below them, and a link never spans more than one row (a breadth-first
// distance differs by at most one across an edge): no dummy vertices. Rows
// are ordered by barycenters to cut crossings, then placed by isotonic
// regression (the closest placement to the neighbours' barycenters that
// keeps the order and the spacing). Everything is a pure function of the
// graph, so the same lab always gives the same bytes.

// Metrics of the drawing, in SVG user units (px). The font is monospace so
// that a label's width is known without a font: 0.6 em a character.
const (
	fontSize   = 12.0
	charW      = 7.3 // a little over 0.6 em, so no text overflows its box
	lineH      = 14.0
	boxPadX    = 10.0
	boxPadY    = 6.0
	vertexGap  = 28.0 // between two footprints in a row
	labelGap   = 4.0  // between a port and its label
	portSlot   = 14.0 // between two labels of one side
	rowGapMin  = 44.0 // of bare line between two rows' labels
	margin     = 16.0
	sideLineW  = 36.0 // of bare line on a link inside a row
	arcRiseMin = 26.0
)

func textW(lines []string) float64 {
	w := 0
	for _, l := range lines {
		w = max(w, len([]rune(l)))
	}
	return float64(w) * charW
}

type side int

const (
	top side = iota
	bottom
	left
	right
)

// end is one end of an edge drawn at a vertex.
type end struct {
	edge  int
	other int // the vertex at the other end
	lines []string
	// faults: the last line is the end's faults.
	faults bool
	side   side
	// hang is where the label hangs from a top or bottom port: left or
	// right of it, away from where the line bends.
	hang side
	x, y float64 // the port, on the box's boundary
}

type vbox struct {
	lines   []string
	row     int
	w, h    float64
	cx, cy  float64
	ends    []*end
	lx, rx  float64 // footprint left and right of cx
	comp    int
	visited bool
}

type layout struct {
	g      *Graph
	v      []*vbox
	skip   []bool  // a node that only holds bridges: they name it
	rows   [][]int // vertex indices, left to right
	pos    []int   // index of each vertex in its row
	ends   [][2]*end
	arcs   []bool    // an edge drawn as an arc above its row
	loops  []bool    // an edge with both ends at one vertex
	rowY   []float64 // top of each row's boxes
	width  float64
	height float64
	header float64
}

func vertexLines(v Vertex, hosts bool) []string {
	if v.Folded > 0 {
		return foldLines(v)
	}
	lines := []string{v.ID}
	if v.Bridge {
		lines = []string{strings.TrimPrefix(v.ID, "bridge:"), "bridge in " + v.In}
	}
	if hosts && v.Host != "" {
		lines = append(lines, "on "+v.Host)
	}
	if v.Missing {
		lines = append(lines, "(missing)")
	}
	return lines
}

func endLines(ifname string, addrs []string, faults string) []string {
	lines := append([]string{ifname}, addrs...)
	if faults != "" {
		lines = append(lines, faults)
	}
	return lines
}

// layOut places g's vertices, ports and labels.
func layOut(g *Graph, header float64) *layout {
	L := &layout{g: g, header: header}
	idx := map[string]int{}
	for i, v := range g.Vertices {
		lines := vertexLines(v, len(g.Hosts) > 0)
		L.v = append(L.v, &vbox{lines: lines, w: textW(lines) + 2*boxPadX, h: float64(len(lines))*lineH + 2*boxPadY})
		idx[v.ID] = i
	}
	L.skip = make([]bool, len(L.v))
	for _, v := range g.Vertices {
		if v.Bridge {
			L.skip[idx[v.In]] = true
		}
	}
	for _, e := range g.Edges {
		L.skip[idx[e.From]], L.skip[idx[e.To]] = false, false
	}
	adj := make([][]int, len(L.v))
	L.ends = make([][2]*end, len(g.Edges))
	L.arcs = make([]bool, len(g.Edges))
	L.loops = make([]bool, len(g.Edges))
	for k, e := range g.Edges {
		a, b := idx[e.From], idx[e.To]
		ea := &end{edge: k, other: b, lines: endLines(e.FromIf, e.FromAddrs, e.FromFaults), faults: e.FromFaults != ""}
		eb := &end{edge: k, other: a, lines: endLines(e.ToIf, e.ToAddrs, e.ToFaults), faults: e.ToFaults != ""}
		L.ends[k] = [2]*end{ea, eb}
		L.v[a].ends = append(L.v[a].ends, ea)
		L.v[b].ends = append(L.v[b].ends, eb)
		if a == b {
			L.loops[k] = true
			continue
		}
		adj[a] = append(adj[a], b)
		adj[b] = append(adj[b], a)
	}
	L.assignRows(adj)
	L.order(adj)
	L.sides()
	L.footprints()
	L.placeX(adj)
	L.placeY()
	L.ports()
	return L
}

// assignRows puts each vertex as many rows up as it is links away from the
// nearest leaf (a vertex with at most one neighbour). A component with no
// leaf (a ring) starts from its vertices of fewest neighbours.
func (L *layout) assignRows(adj [][]int) {
	n := len(L.v)
	deg := make([]int, n)
	for i := range adj {
		seen := map[int]bool{}
		for _, j := range adj[i] {
			seen[j] = true
		}
		deg[i] = len(seen)
	}
	dist := make([]int, n)
	for i := range dist {
		dist[i] = -1
	}
	// Components, in the order of their first vertex.
	comp := make([]int, n)
	for i := range comp {
		comp[i] = -1
	}
	var comps [][]int
	for i := range n {
		if comp[i] >= 0 {
			continue
		}
		c := len(comps)
		var members []int
		stack := []int{i}
		comp[i] = c
		for len(stack) > 0 {
			u := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			members = append(members, u)
			for _, w := range adj[u] {
				if comp[w] < 0 {
					comp[w] = c
					stack = append(stack, w)
				}
			}
		}
		slices.Sort(members)
		comps = append(comps, members)
	}
	for _, members := range comps {
		minDeg := deg[members[0]]
		for _, u := range members {
			minDeg = min(minDeg, deg[u])
		}
		var queue []int
		for _, u := range members {
			if deg[u] <= 1 || deg[u] == minDeg {
				dist[u] = 0
				queue = append(queue, u)
			}
		}
		for len(queue) > 0 {
			u := queue[0]
			queue = queue[1:]
			for _, w := range adj[u] {
				if dist[w] < 0 {
					dist[w] = dist[u] + 1
					queue = append(queue, w)
				}
			}
		}
	}
	top := 0
	for _, d := range dist {
		top = max(top, d)
	}
	L.rows = make([][]int, top+1)
	for i, v := range L.v {
		v.row = top - dist[i] // row 0 on top
		v.comp = comp[i]
	}
	// First order: by component, then file order, so that components
	// stay apart and the barycenters start from the file.
	all := make([]int, n)
	for i := range all {
		all[i] = i
	}
	slices.SortStableFunc(all, func(a, b int) int { return cmp.Compare(comp[a], comp[b]) })
	for _, i := range all {
		if !L.skip[i] {
			L.rows[L.v[i].row] = append(L.rows[L.v[i].row], i)
		}
	}
	L.pos = make([]int, n)
	L.index()
}

func (L *layout) index() {
	for _, row := range L.rows {
		for p, i := range row {
			L.pos[i] = p
		}
	}
}

// crossings counts the pairs of edges that cross between rows r and r+1,
// and the lengths of the edges inside a row beyond their neighbour (a
// chain of routers in one row is best drawn in its order).
func (L *layout) crossings(adj [][]int) int {
	total := 0
	for r := range L.rows {
		var segs [][2]int
		for _, i := range L.rows[r] {
			for _, j := range adj[i] {
				switch {
				case L.v[j].row == r+1:
					segs = append(segs, [2]int{L.pos[i], L.pos[j]})
				case L.v[j].row == r && i < j:
					d := L.pos[i] - L.pos[j]
					total += max(d, -d) - 1
				}
			}
		}
		for a := range segs {
			for b := a + 1; b < len(segs); b++ {
				if (segs[a][0]-segs[b][0])*(segs[a][1]-segs[b][1]) < 0 {
					total++
				}
			}
		}
	}
	return total
}

// order cuts crossings: sweeps down and up, each row sorted by the mean
// position of its vertices' neighbours in the row just placed (a vertex
// with none keeps its place), keeping the best order seen. Components
// stay in their own stretch of each row.
func (L *layout) order(adj [][]int) {
	best := L.crossings(adj)
	bestRows := cloneRows(L.rows)
	sweep := func(r, ref int) {
		row := L.rows[r]
		bary := make(map[int]float64, len(row))
		for _, i := range row {
			sum, n := 0.0, 0
			for _, j := range adj[i] {
				if L.v[j].row == ref {
					sum += float64(L.pos[j])
					n++
				}
			}
			if n > 0 {
				bary[i] = sum / float64(n)
			} else {
				bary[i] = float64(L.pos[i])
			}
		}
		slices.SortStableFunc(row, func(a, b int) int {
			if c := cmp.Compare(L.v[a].comp, L.v[b].comp); c != 0 {
				return c
			}
			return cmp.Compare(bary[a], bary[b])
		})
		for p, i := range row {
			L.pos[i] = p
		}
	}
	iterations := 12
	if len(adj) > 400 {
		iterations = 4 // the count is quadratic in a row's edges
	}
	for it := 0; it < iterations && best > 0; it++ {
		for r := 1; r < len(L.rows); r++ {
			sweep(r, r-1)
		}
		for r := len(L.rows) - 2; r >= 0; r-- {
			sweep(r, r+1)
		}
		if c := L.crossings(adj); c < best {
			best, bestRows = c, cloneRows(L.rows)
		}
	}
	L.rows = bestRows
	L.index()
}

func cloneRows(rows [][]int) [][]int {
	out := make([][]int, len(rows))
	for i, r := range rows {
		out[i] = slices.Clone(r)
	}
	return out
}

// sides puts each end on the side of its box that faces the other end: top
// or bottom across rows, left or right to a neighbour in the row, top for
// an arc to a vertex further along the row or a loop.
func (L *layout) sides() {
	for k, pair := range L.ends {
		a, b := pair[1].other, pair[0].other
		va, vb := L.v[a], L.v[b]
		switch {
		case L.loops[k]:
			pair[0].side, pair[1].side = right, right
		case va.row < vb.row:
			pair[0].side, pair[1].side = bottom, top
		case va.row > vb.row:
			pair[0].side, pair[1].side = top, bottom
		case L.pos[a]+1 == L.pos[b]:
			pair[0].side, pair[1].side = right, left
		case L.pos[b]+1 == L.pos[a]:
			pair[0].side, pair[1].side = left, right
		default:
			pair[0].side, pair[1].side = top, top
			L.arcs[k] = true
		}
		for _, e := range pair {
			if e.side == left || e.side == right {
				// One line beside a line inside a row, so that it
				// stays clear of the labels above and below the box.
				e.lines, e.faults = []string{strings.Join(e.lines, " ")}, false
			}
		}
	}
}

// span is at most how far apart the first and last ports of side s are,
// whichever way their labels hang.
func span(ends []*end, s side) (ports, widest float64, n int) {
	for _, e := range ends {
		if e.side == s {
			widest = max(widest, textW(e.lines))
			n++
		}
	}
	if n > 1 {
		// At most one pair of neighbouring labels hangs between their
		// two ports (ports finds where).
		ports = float64(n-1)*(widest+labelGap+portSlot) + widest + labelGap
	}
	return ports, widest, n
}

// footprints sizes each box for its ports and each vertex's reach with
// its labels (a link inside a row is made room for by gap).
func (L *layout) footprints() {
	for _, v := range L.v {
		v.lx, v.rx = v.w/2, v.w/2
		for _, s := range []side{top, bottom} {
			ports, widest, n := span(v.ends, s)
			if n == 0 {
				continue
			}
			v.lx = max(v.lx, ports/2+labelGap+widest)
			v.rx = max(v.rx, ports/2+labelGap+widest)
		}
		sideEnds := 0
		for _, e := range v.ends {
			if e.side == left || e.side == right {
				sideEnds++
			}
		}
		if sideEnds > 0 {
			v.h = max(v.h, float64(sideEnds+1)*lineH)
		}
	}
}

// gap is the space between the boxes of the vertices at positions p and
// p+1 of a row: their footprints, and the labels of a link between them.
func (L *layout) gap(a, b int) float64 {
	g := L.v[a].rx + L.v[b].lx + vertexGap
	var la, lb, mid float64
	linked := false
	for _, e := range L.v[a].ends {
		if e.side == right && e.other == b {
			la, linked = max(la, textW(e.lines)), true
			mid = max(mid, textW([]string{L.g.Edges[e.edge].midLabel()}))
		}
	}
	for _, e := range L.v[b].ends {
		if e.side == left && e.other == a {
			lb = max(lb, textW(e.lines))
		}
	}
	if linked {
		// The box's own footprint right of it is replaced by the link.
		g = max(g, L.halfW(a)+L.halfW(b)+max(la+lb+2*labelGap, mid)+sideLineW)
	}
	return g
}

// halfW is at most half the width ports will give i's box.
func (L *layout) halfW(i int) float64 {
	v := L.v[i]
	h := v.w / 2
	for _, s := range []side{top, bottom} {
		if ports, _, n := span(v.ends, s); n > 0 {
			h = max(h, ports/2+boxPadX)
		}
	}
	return h
}

// placeX sets each box's center: rows packed left to right, then, sweeping
// down and up, each row as close to its neighbours' mean as its order and
// spacing allow.
func (L *layout) placeX(adj [][]int) {
	for _, row := range L.rows {
		x := 0.0
		for p, i := range row {
			if p > 0 {
				x += L.gap(row[p-1], i)
			}
			L.v[i].cx = x
		}
	}
	settle := func(r int, refs ...int) {
		row := L.rows[r]
		want := make([]float64, len(row))
		for p, i := range row {
			sum, n := 0.0, 0
			for _, j := range adj[i] {
				if slices.Contains(refs, L.v[j].row) {
					sum += L.v[j].cx
					n++
				}
			}
			if n > 0 {
				want[p] = sum / float64(n)
			} else {
				want[p] = L.v[i].cx
			}
		}
		gaps := make([]float64, len(row))
		for p := 1; p < len(row); p++ {
			gaps[p] = L.gap(row[p-1], row[p])
		}
		for p, x := range isotonic(want, gaps) {
			L.v[row[p]].cx = x
		}
	}
	// Start from the widest row, which packing placed without slack.
	widest := 0
	for r, row := range L.rows {
		if len(row) > 0 && L.rowWidth(r) > L.rowWidth(widest) {
			widest = r
		}
	}
	for it := 0; it < 6; it++ {
		for r := widest - 1; r >= 0; r-- {
			settle(r, r+1)
		}
		for r := widest + 1; r < len(L.rows); r++ {
			settle(r, r-1)
		}
		if it < 5 {
			for r := range L.rows {
				if r != widest || it > 0 {
					settle(r, r-1, r+1)
				}
			}
		}
	}
	minX := 0.0
	first := true
	maxX := 0.0
	for i, v := range L.v {
		if L.skip[i] {
			continue
		}
		if first || v.cx-v.lx < minX {
			minX = v.cx - v.lx
		}
		if first || v.cx+v.rx > maxX {
			maxX = v.cx + v.rx
		}
		first = false
	}
	for _, v := range L.v {
		v.cx += margin - minX
	}
	L.width = maxX - minX + 2*margin
}

func (L *layout) rowWidth(r int) float64 {
	row := L.rows[r]
	if len(row) == 0 {
		return 0
	}
	return L.v[row[len(row)-1]].cx - L.v[row[0]].cx + L.v[row[0]].lx + L.v[row[len(row)-1]].rx
}

// isotonic returns the x closest to want (least squares) with
// x[p] >= x[p-1] + gaps[p]: pool adjacent violators on x minus the
// cumulative gaps.
func isotonic(want, gaps []float64) []float64 {
	n := len(want)
	off := make([]float64, n)
	for p := 1; p < n; p++ {
		off[p] = off[p-1] + gaps[p]
	}
	type block struct {
		sum   float64
		count int
	}
	var blocks []block
	for p := range n {
		blocks = append(blocks, block{want[p] - off[p], 1})
		for len(blocks) > 1 {
			a, b := blocks[len(blocks)-2], blocks[len(blocks)-1]
			if a.sum/float64(a.count) <= b.sum/float64(b.count) {
				break
			}
			blocks = append(blocks[:len(blocks)-2], block{a.sum + b.sum, a.count + b.count})
		}
	}
	out := make([]float64, 0, n)
	for _, b := range blocks {
		m := b.sum / float64(b.count)
		for range b.count {
			out = append(out, m+off[len(out)])
		}
	}
	return out
}

// labelsH is how tall the tallest label on side s of the row's boxes is.
func (L *layout) labelsH(r int, s side) float64 {
	h := 0.0
	for _, i := range L.rows[r] {
		for _, e := range L.v[i].ends {
			if e.side == s {
				h = max(h, float64(len(e.lines))*lineH)
			}
		}
	}
	return h
}

// arcRise is how far above its row an arc from x1 to x2 rises.
func arcRise(x1, x2 float64) float64 {
	d := x2 - x1
	return min(arcRiseMin+0.08*max(d, -d), 140)
}

// placeY sets each row's height: its tallest box, with room above for
// the labels of its top ports and its arcs, and below for its bottom
// ports' labels.
func (L *layout) placeY() {
	y := margin + L.header
	L.rowY = make([]float64, len(L.rows))
	for r := range L.rows {
		above := L.labelsH(r, top)
		for k, isArc := range L.arcs {
			if isArc && L.v[L.ends[k][0].other].row == r {
				a, b := L.v[L.ends[k][1].other], L.v[L.ends[k][0].other]
				above = max(above, arcRise(a.cx, b.cx)+lineH)
			}
		}
		if r > 0 {
			// Lines that run far sideways get room to bend clear of
			// the labels at their ends.
			reach := 0.0
			for _, pair := range L.ends {
				va, vb := L.v[pair[1].other], L.v[pair[0].other]
				if min(va.row, vb.row) == r-1 && max(va.row, vb.row) == r {
					d := va.cx - vb.cx
					reach = max(reach, d, -d)
				}
			}
			y += max(rowGapMin, L.labelsH(r-1, bottom)+above+rowGapMin*0.6+min(0.1*reach, 120))
		} else {
			y += above
		}
		L.rowY[r] = y
		h := 0.0
		for _, i := range L.rows[r] {
			h = max(h, L.v[i].h)
		}
		for _, i := range L.rows[r] {
			L.v[i].cy = y + h/2
		}
		y += h
	}
	if len(L.rows) > 0 {
		y += L.labelsH(len(L.rows)-1, bottom)
	}
	L.height = y + margin
}

// ports spreads each side's ports along its box, and sizes the box to
// them now that the order of their other ends is known.
func (L *layout) ports() {
	for _, v := range L.v {
		text := textW(v.lines) + 2*boxPadX
		for _, s := range []side{top, bottom} {
			es := L.sideEnds(v, s)
			if len(es) == 0 {
				continue
			}
			// A label hangs on the side its line leaves from, so the
			// line does not run through it: right of a line that bends
			// left, left of one that bends right.
			for _, e := range es {
				e.hang = right
				if L.v[e.other].cx > v.cx+8 {
					e.hang = left
				}
			}
			xs := make([]float64, len(es))
			for p := 1; p < len(es); p++ {
				xs[p] = xs[p-1] + portSlot
				if es[p-1].hang == right {
					xs[p] += textW(es[p-1].lines) + labelGap
				}
				if es[p].hang == left {
					xs[p] += textW(es[p].lines) + labelGap
				}
			}
			spread := xs[len(xs)-1]
			text = max(text, spread+2*boxPadX)
			y := v.cy - v.h/2
			if s == bottom {
				y = v.cy + v.h/2
			}
			for p, e := range es {
				e.x, e.y = v.cx-spread/2+xs[p], y
			}
		}
		v.w = text
		for _, s := range []side{left, right} {
			es := L.sideEnds(v, s)
			if len(es) == 0 {
				continue
			}
			x := v.cx - v.w/2
			if s == right {
				x = v.cx + v.w/2
			}
			step := v.h / float64(len(es)+1)
			for p, e := range es {
				e.x, e.y = x, v.cy-v.h/2+step*float64(p+1)
			}
		}
	}
}

// sideEnds are the ends on side s of v's box, ordered by where their other
// ends are so that lines do not cross at the box.
func (L *layout) sideEnds(v *vbox, s side) []*end {
	var es []*end
	for _, e := range v.ends {
		if e.side == s {
			es = append(es, e)
		}
	}
	slices.SortStableFunc(es, func(a, b *end) int {
		if c := cmp.Compare(L.v[a.other].cx, L.v[b.other].cx); c != 0 {
			return c
		}
		return cmp.Compare(a.edge, b.edge)
	})
	return es
}

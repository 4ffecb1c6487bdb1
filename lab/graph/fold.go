package graph

import (
	"strconv"
	"strings"
)

// FoldAbove is how many leaves (nodes with one link) one vertex may have
// before the picture folds the middle ones into one box: a thousand hosts
// on one bridge would otherwise be a row 140,000 px wide, which no viewer
// shows usefully.
const FoldAbove = 12

// foldKeepFirst and foldKeepLast are the leaves kept on either side of a
// fold, so the picture still shows how the leaves are named and addressed.
const (
	foldKeepFirst = 4
	foldKeepLast  = 1
)

// Folded is the graph with the middle leaves of each vertex that has more
// than FoldAbove folded into one vertex (ID "fold:PARENT", Folded its
// count) on one edge that names the first and last of them. A leaf that
// drifted (missing, or its link down) is never folded. Vertices and edges
// keep their order; a fold takes the place of its first leaf.
func (g *Graph) Folded() *Graph {
	degree := map[string]int{}
	for _, e := range g.Edges {
		degree[e.From]++
		degree[e.To]++
	}
	vertex := map[string]*Vertex{}
	for i := range g.Vertices {
		vertex[g.Vertices[i].ID] = &g.Vertices[i]
	}
	// leaves of each parent: the edges to its foldable leaves, in order.
	leaves := map[string][]int{}
	leafOf := func(e Edge) (leaf, parent string, ok bool) {
		switch {
		case e.From == e.To || e.Down:
			return "", "", false
		case degree[e.From] == 1 && degree[e.To] > 1:
			leaf, parent = e.From, e.To
		case degree[e.To] == 1 && degree[e.From] > 1:
			leaf, parent = e.To, e.From
		default:
			return "", "", false
		}
		v := vertex[leaf]
		if v.Bridge || v.Missing {
			return "", "", false
		}
		return leaf, parent, true
	}
	for k, e := range g.Edges {
		if _, p, ok := leafOf(e); ok {
			leaves[p] = append(leaves[p], k)
		}
	}
	folded := map[int]string{} // edge -> its fold's parent
	foldAt := map[int]string{} // the first folded edge of each parent
	for p, ks := range leaves {
		if len(ks) <= FoldAbove {
			continue
		}
		middle := ks[foldKeepFirst : len(ks)-foldKeepLast]
		for _, k := range middle {
			folded[k] = p
		}
		foldAt[middle[0]] = p
	}
	if len(folded) == 0 {
		return g
	}
	out := &Graph{Lab: g.Lab, Hosts: g.Hosts, SeenOn: g.SeenOn}
	foldedLeaf := map[string]bool{}
	for k := range folded {
		l, _, _ := leafOf(g.Edges[k])
		foldedLeaf[l] = true
	}
	firstLeaf := map[string]string{} // leaf vertex -> parent, where a fold vertex goes
	for k, p := range foldAt {
		l, _, _ := leafOf(g.Edges[k])
		firstLeaf[l] = p
	}
	for _, v := range g.Vertices {
		if p, ok := firstLeaf[v.ID]; ok {
			out.Vertices = append(out.Vertices, g.fold(p, leaves[p]))
		}
		if !foldedLeaf[v.ID] {
			out.Vertices = append(out.Vertices, v)
		}
	}
	for k, e := range g.Edges {
		if p, ok := foldAt[k]; ok {
			out.Edges = append(out.Edges, g.foldEdge(p, leaves[p]))
		}
		if _, ok := folded[k]; !ok {
			out.Edges = append(out.Edges, e)
		}
	}
	return out
}

func (g *Graph) middle(ks []int) []int { return ks[foldKeepFirst : len(ks)-foldKeepLast] }

// fold is the vertex standing for parent p's middle leaves.
func (g *Graph) fold(p string, ks []int) Vertex {
	m := g.middle(ks)
	name := func(k int) string {
		if e := g.Edges[k]; e.To == p {
			return e.From
		}
		return g.Edges[k].To
	}
	n := len(m)
	return Vertex{ID: "fold:" + p, Label: strconv.Itoa(n) + " more: " + name(m[0]) + " … " + name(m[n-1]),
		Folded: n, Host: foldHost(g, p)}
}

func foldHost(g *Graph, p string) string {
	for _, v := range g.Vertices {
		if v.ID == p {
			return v.Host
		}
	}
	return ""
}

// foldEdge is the one edge from p to its fold, with the first and last
// folded ends' interfaces and addresses.
func (g *Graph) foldEdge(p string, ks []int) Edge {
	m := g.middle(ks)
	type side struct {
		ifname string
		addrs  []string
	}
	ends := func(k int) (parent, leaf side) {
		e := g.Edges[k]
		if e.From == p {
			return side{e.FromIf, e.FromAddrs}, side{e.ToIf, e.ToAddrs}
		}
		return side{e.ToIf, e.ToAddrs}, side{e.FromIf, e.FromAddrs}
	}
	pa, la := ends(m[0])
	pz, lz := ends(m[len(m)-1])
	span := func(a, z string) string {
		if a == z {
			return a
		}
		return a + " … " + z
	}
	spans := func(a, z side) []string {
		var out []string
		for i := range min(len(a.addrs), len(z.addrs)) {
			out = append(out, span(a.addrs[i], z.addrs[i]))
		}
		return out
	}
	// No VNI: each folded link across machines has its own.
	return Edge{From: p, To: "fold:" + p, FromIf: span(pa.ifname, pz.ifname), ToIf: span(la.ifname, lz.ifname),
		FromAddrs: spans(pa, pz), ToAddrs: spans(la, lz), Folded: len(m)}
}

// foldLines are the lines of a fold's box.
func foldLines(v Vertex) []string {
	head, rest, _ := strings.Cut(v.Label, ": ")
	return []string{head, rest}
}

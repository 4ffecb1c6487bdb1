package lab

import (
	"fmt"
	"strconv"
	"strings"
)

// A compact entry stands for many similar nodes: a node whose name holds
// %d and says count: N is the nodes NAME1 to NAMEN (h%d: h1, h2, ...), each
// with the entry's routes, sysctls, processes and responders. A link with an
// end on such a node is one link per node (h%d's eth0 to a bridge, or to
// r's port h%d); its addresses are auto or none, since one written address
// cannot be on N nodes. The expansion happens before anything else is
// checked, so every rule applies to each node and link as if written out,
// and a problem points into the compact entry (once, however many nodes it
// concerns).

// MaxCount bounds count: a small file must not stand for an enormous lab.
const MaxCount = 10000

// countBad stands for a count that is not a number (already reported).
const countBad = -1

// countMark is what a compact name holds where the index goes.
const countMark = "%d"

// nth is pattern with its %d replaced by i.
func nth(pattern string, i int) string {
	return strings.Replace(pattern, countMark, strconv.Itoa(i), 1)
}

// compactOK checks a compact name: one %d and no other %.
func compactOK(name string) bool {
	return strings.Count(name, "%") == 1 && strings.Count(name, countMark) == 1
}

// expand replaces the spec's compact node entries and the links to them by
// what they stand for.
func (r *resolver) expand(s *spec) {
	counts := map[string]int{}
	var nodes []*nodeSpec
	// Names written out, and those compact entries make so far: a name
	// is one node's.
	named := map[string]loc{}
	for _, ns := range s.Nodes {
		if !ns.Count.set() {
			named[ns.Name.V] = ns.Name.At
		}
	}
	for _, ns := range s.Nodes {
		name := ns.Name.V
		pattern := strings.Contains(name, "%")
		switch {
		case ns.Count.V == countBad:
			continue // not a number: said so
		case !pattern && !ns.Count.set():
			nodes = append(nodes, ns)
			continue
		case !ns.Count.set():
			r.add(ns.Name.At, "a name with %s stands for many nodes: say how many with count: N", countMark)
			continue
		case !pattern || !compactOK(name):
			r.add(ns.Count.At, "count: makes this entry stand for %s1 to %sN: its name must hold %s once (e.g. h%s)", name, name, countMark, countMark)
			continue
		case ns.Count.V < 1 || ns.Count.V > MaxCount:
			r.add(ns.Count.At, "count %d: must be from 1 to %d", ns.Count.V, MaxCount)
			continue
		case ns.Netns.set():
			r.add(ns.Netns.in(ns.Name.At, ".netns"), "a compact entry's nodes get their own namespaces (LAB-%s): drop netns", name)
			continue
		}
		clash := false
		for i := 1; i <= ns.Count.V && !clash; i++ {
			if prev, dup := named[nth(name, i)]; dup {
				r.add(ns.Name.At, "%s stands for %s, which is already a node (%s, line %d)", name, nth(name, i), prev.Path, prev.Line)
				clash = true
			}
		}
		if clash {
			continue
		}
		counts[name] = ns.Count.V
		r.inCompactEntry(ns.Name.At.Path)
		for i := 1; i <= ns.Count.V; i++ {
			n := *ns
			n.Name.V = nth(name, i)
			named[n.Name.V] = ns.Name.At
			n.Count = ival{}
			nodes = append(nodes, &n)
		}
		r.lab.Compact = append(r.lab.Compact, fmt.Sprintf("nodes.%s (line %d): %d nodes, %s to %s", name, ns.Name.At.Line, ns.Count.V, nth(name, 1), nth(name, ns.Count.V)))
	}
	s.Nodes = nodes
	var links []*linkSpec
	for i, ls := range s.Links {
		n, ok := r.linkCount(ls, counts)
		if !ok {
			continue
		}
		if n == 0 {
			links = append(links, ls)
			continue
		}
		r.inCompactEntry(ls.At.Path)
		for j := 1; j <= n; j++ {
			l := *ls
			l.A, l.B = ls.A.nth(j), ls.B.nth(j)
			links = append(links, &l)
		}
		r.lab.Compact = append(r.lab.Compact, fmt.Sprintf("links[%d] (line %d): %d links", i, ls.At.Line, n))
	}
	s.Links = links
}

// linkCount says how many links ls stands for: 0 for a plain link, the
// count of the compact node an end is on, or not ok (a problem reported).
func (r *resolver) linkCount(ls *linkSpec, counts map[string]int) (int, bool) {
	n := 0
	var first *endSpec
	for _, e := range []*endSpec{ls.A, ls.B} {
		if e == nil || !strings.Contains(e.Node.V, "%") {
			continue
		}
		c, ok := counts[e.Node.V]
		if !ok {
			r.add(e.Node.in(e.At, ".node"), "no compact node entry %s (with count:) in this lab", e.Node.V)
			return 0, false
		}
		if first != nil && c != n {
			r.add(e.Node.in(e.At, ".node"), "%s has %d nodes and %s %d: a link between two compact entries pairs them one to one", e.Node.V, c, first.Node.V, n)
			return 0, false
		}
		n, first = c, e
	}
	if n == 0 {
		return 0, true
	}
	ok := true
	for _, e := range []*endSpec{ls.A, ls.B} {
		if e == nil {
			continue
		}
		for _, a := range e.Addresses {
			if a.V != "auto" {
				r.add(a.At, "a link of a compact entry stands for %d links: its addresses are auto (or none), not %s", n, a.V)
				ok = false
			}
		}
		if e.Name.set() && strings.Contains(e.Name.V, "%") && !compactOK(e.Name.V) {
			r.add(e.Name.in(e.At, ".name"), "an interface name of a compact link holds %s once, for the node's index", countMark)
			ok = false
		}
		if e.Node.set() && !strings.Contains(e.Node.V, "%") && !strings.Contains(e.Name.V, countMark) {
			r.add(e.At, "this end is on node %s for each of the %d links: its name must hold %s (e.g. name: eth%s)", e.Node.V, n, countMark, countMark)
			ok = false
		}
	}
	return n, ok
}

// nth is the end as it is in the i-th link of a compact link.
func (e *endSpec) nth(i int) *endSpec {
	if e == nil {
		return nil
	}
	c := *e
	if strings.Contains(c.Node.V, countMark) {
		c.Node.V = nth(c.Node.V, i)
	}
	if strings.Contains(c.Name.V, countMark) {
		c.Name.V = nth(c.Name.V, i)
	}
	return &c
}

// inCompactEntry marks path as a compact entry's, for problems there.
func (r *resolver) inCompactEntry(path string) {
	if r.compact == nil {
		r.compact = map[string]bool{}
	}
	r.compact[path] = true
}

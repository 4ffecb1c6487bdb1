package fault

import (
	"fmt"
	"slices"
	"strings"
)

// Partition cuts groups of nodes off from each other: no packet passes
// between a node of one group and a node of another. Nodes in no group are
// not affected. With OneWay there are exactly two groups and only packets
// from the first to the second are dropped (Jepsen's asymmetric partition);
// replies and anything the second group sends still arrive.
type Partition struct {
	Groups [][]string `json:"groups"`
	OneWay bool       `json:"oneway,omitempty"`
}

// ParsePartition reads groups written as comma-separated node names, one
// argument per group: ["h1,h2", "h3,h4"].
func ParsePartition(groups []string, oneway bool) (Partition, error) {
	p := Partition{OneWay: oneway}
	for _, g := range groups {
		var names []string
		for _, n := range strings.Split(g, ",") {
			if n = strings.TrimSpace(n); n != "" {
				names = append(names, n)
			}
		}
		p.Groups = append(p.Groups, names)
	}
	return p, p.Validate()
}

// Validate checks the shape: at least two groups, none empty, no node in two
// groups, and two groups for a one-way partition.
func (p Partition) Validate() error {
	if len(p.Groups) < 2 {
		return &Error{Field: "partition", Rule: "needs at least two groups of nodes (h1,h2 h3,h4)"}
	}
	if p.OneWay && len(p.Groups) != 2 {
		return &Error{Field: "partition", Rule: fmt.Sprintf("a one-way partition has exactly two groups, from and to (got %d)", len(p.Groups))}
	}
	in := map[string]int{}
	for i, g := range p.Groups {
		if len(g) == 0 {
			return &Error{Field: "partition", Rule: fmt.Sprintf("group %d is empty", i+1)}
		}
		for _, n := range g {
			if n == "" {
				return &Error{Field: "partition", Rule: fmt.Sprintf("group %d has an empty node name", i+1)}
			}
			if j, ok := in[n]; ok {
				if j == i {
					return &Error{Field: "partition", Value: n, Rule: fmt.Sprintf("named twice in group %d", i+1)}
				}
				return &Error{Field: "partition", Value: n, Rule: fmt.Sprintf("is in groups %d and %d; a node belongs to one side", j+1, i+1)}
			}
			in[n] = i
		}
	}
	return nil
}

// Group returns the index of the group holding node, or -1.
func (p Partition) Group(node string) int {
	for i, g := range p.Groups {
		if slices.Contains(g, node) {
			return i
		}
	}
	return -1
}

// Blocks reports whether a packet from node from to node to is dropped.
func (p Partition) Blocks(from, to string) bool {
	a, b := p.Group(from), p.Group(to)
	if a < 0 || b < 0 || a == b {
		return false
	}
	return !p.OneWay || a == 0 && b == 1
}

// Nodes lists every node named, group by group.
func (p Partition) Nodes() []string {
	var out []string
	for _, g := range p.Groups {
		out = append(out, g...)
	}
	return out
}

// String is "h1,h2 | h3,h4", or "h1,h2 -> h3,h4" for a one-way partition.
func (p Partition) String() string {
	gs := make([]string, len(p.Groups))
	for i, g := range p.Groups {
		gs[i] = strings.Join(g, ",")
	}
	if p.OneWay {
		return strings.Join(gs, " -> ")
	}
	return strings.Join(gs, " | ")
}

// End names one link end of a lab: a node and one of its interfaces.
type End struct {
	Node  string `json:"node"`
	Iface string `json:"iface"`
}

func (e End) String() string { return e.Node + ":" + e.Iface }

// ParseEnd reads "NODE:IFACE".
func ParseEnd(s string) (End, error) {
	n, i, ok := strings.Cut(s, ":")
	if !ok || n == "" || i == "" || strings.Contains(i, ":") {
		return End{}, &Error{Field: "link end", Value: s, Rule: "must be NODE:IFACE, e.g. h1:eth0"}
	}
	return End{Node: n, Iface: i}, nil
}

package check

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"
)

// MatrixShownUpTo is the most nodes whose matrix check --all prints by
// default: wider than that, a terminal cannot show it and a summary of the
// causes says more.
const MatrixShownUpTo = 30

// CauseGroup is the failed pairs that share one cause.
type CauseGroup struct {
	Cause Cause
	Pairs int
	// Examples are a few of the pairs, as [from, to] node names.
	Examples [][2]string
}

// maxExamples is how many pairs a group shows.
const maxExamples = 4

// Groups gathers m.Failures by cause, the largest group first.
func (m *Matrix) Groups() []CauseGroup {
	at := map[Cause]int{}
	var gs []CauseGroup
	for _, f := range m.Failures {
		k, ok := at[f.Cause]
		if !ok {
			k = len(gs)
			at[f.Cause] = k
			gs = append(gs, CauseGroup{Cause: f.Cause})
		}
		g := &gs[k]
		g.Pairs++
		if len(g.Examples) < maxExamples {
			g.Examples = append(g.Examples, [2]string{m.Nodes[f.From], m.Nodes[f.To]})
		}
	}
	slices.SortStableFunc(gs, func(a, b CauseGroup) int {
		if c := cmp.Compare(b.Pairs, a.Pairs); c != 0 {
			return c
		}
		return cmp.Compare(strings.Index(causeKindsInOrder, a.Cause.Kind), strings.Index(causeKindsInOrder, b.Cause.Kind))
	})
	return gs
}

// Failed counts the failures, and those nsnet was told to make.
func (m *Matrix) Failed() (failed, told int) {
	for _, f := range m.Failures {
		failed++
		if f.Cause.Told {
			told++
		}
	}
	return failed, told
}

// maxGroups is how many causes the summary lists.
const maxGroups = 20

// WriteSummary prints how many pairs were reached and the failed pairs
// grouped by cause, each with its count, a few of its pairs and, when
// nsnet knows one, the fix.
func (m *Matrix) WriteSummary(w io.Writer) error {
	r, t := m.Pairs()
	failed, told := m.Failed()
	fmt.Fprintf(w, "all pairs (icmp to each node's first address): %d/%d ordered pairs reached", r, t)
	var notes []string
	if failed > 0 {
		notes = append(notes, fmt.Sprintf("%d failed", failed))
	}
	if told > 0 {
		notes = append(notes, fmt.Sprintf("%d of them as nsnet was told", told))
	}
	if m.Isolated > 0 {
		notes = append(notes, fmt.Sprintf("%d not reached as the lab expects (isolated)", m.Isolated))
	}
	if len(notes) > 0 {
		fmt.Fprintf(w, "; %s", strings.Join(notes, ", "))
	}
	fmt.Fprintln(w)
	if n := m.SkippedRows(); n > 0 {
		var on []string
		for _, s := range m.Skipped {
			on = append(on, s.Host+": "+strings.Join(s.Nodes, ", "))
		}
		fmt.Fprintf(w, "skipped %d rows, from nodes on other machines (%s): run nsnet check --all there\n", n, strings.Join(on, "; "))
	}
	gs := m.Groups()
	width := len("PAIRS")
	if len(gs) > 0 {
		width = max(width, len(fmt.Sprint(gs[0].Pairs)))
		fmt.Fprintf(w, "%*s  CAUSE\n", width, "PAIRS")
	}
	pad := strings.Repeat(" ", width+2)
	for k, g := range gs {
		if k == maxGroups {
			rest := 0
			for _, g := range gs[k:] {
				rest += g.Pairs
			}
			fmt.Fprintf(w, "%s... and %d more causes of %d pairs (nsnet check -j lists every pair)\n", pad, len(gs)-k, rest)
			break
		}
		c := g.Cause.String()
		if g.Cause.Told {
			c += " (as told)"
		}
		fmt.Fprintf(w, "%*d  %s\n", width, g.Pairs, c)
		ex := make([]string, len(g.Examples))
		for e, p := range g.Examples {
			ex[e] = p[0] + " -> " + p[1]
		}
		more := ""
		if g.Pairs > len(g.Examples) {
			more = ", ..."
		}
		fmt.Fprintf(w, "%se.g. %s%s\n", pad, strings.Join(ex, ", "), more)
		if g.Cause.Fix != "" {
			fmt.Fprintf(w, "%sfix: %s\n", pad, g.Cause.Fix)
		}
	}
	return nil
}

// MatrixReport is the JSON form of an all-pairs check.
type MatrixReport struct {
	Nodes []string `json:"nodes"`
	// Reach is the matrix itself (Reach[i][j]: node i reached node j),
	// given when it is shown: up to MatrixShownUpTo nodes, or --matrix.
	Reach    [][]bool `json:"reach,omitempty"`
	Reached  int      `json:"reached"`
	Pairs    int      `json:"pairs"`
	Failed   int      `json:"failed"`
	Told     int      `json:"failed_as_told"`
	Isolated int      `json:"isolated_as_expected"`
	// Skipped are the rows (sources) on other machines, not probed from
	// here; their Reach rows are null.
	Skipped []Skipped `json:"skipped,omitempty"`
	// Failures lists every pair not reached with its cause.
	Failures []PairReport `json:"failures"`
	// Causes are the failures grouped, the largest group first.
	Causes []GroupReport `json:"causes"`
}

// PairReport is one failed pair.
type PairReport struct {
	From   string `json:"from"`
	To     string `json:"to"`
	Addr   string `json:"addr"`
	Cause  string `json:"cause"`
	Detail string `json:"detail,omitempty"`
	Told   bool   `json:"as_told,omitempty"`
}

// GroupReport is one cause with its pairs' count and a few of them.
type GroupReport struct {
	Cause    string      `json:"cause"`
	Detail   string      `json:"detail,omitempty"`
	Fix      string      `json:"fix,omitempty"`
	Told     bool        `json:"as_told,omitempty"`
	Pairs    int         `json:"pairs"`
	Examples [][2]string `json:"examples"`
}

// Report is m as JSON; withMatrix includes the matrix itself. addrs are
// the nodes' probed addresses, by index.
func (m *Matrix) Report(nodes []Node, withMatrix bool) MatrixReport {
	rep := MatrixReport{Nodes: m.Nodes, Failures: []PairReport{}, Causes: []GroupReport{}, Isolated: m.Isolated, Skipped: m.Skipped}
	rep.Reached, rep.Pairs = m.Pairs()
	rep.Failed, rep.Told = m.Failed()
	if withMatrix {
		rep.Reach = m.Reach
	}
	for _, f := range m.Failures {
		rep.Failures = append(rep.Failures, PairReport{From: m.Nodes[f.From], To: m.Nodes[f.To], Addr: nodes[f.To].Addr.String(),
			Cause: f.Cause.Kind, Detail: f.Cause.Detail, Told: f.Cause.Told})
	}
	for _, g := range m.Groups() {
		rep.Causes = append(rep.Causes, GroupReport{Cause: g.Cause.Kind, Detail: g.Cause.Detail, Fix: g.Cause.Fix, Told: g.Cause.Told, Pairs: g.Pairs, Examples: g.Examples})
	}
	return rep
}

package check

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"time"

	"github.com/nsnet/nsnet/netns"
	"github.com/nsnet/nsnet/probe"
)

// Node is a probe source and target for the all-pairs matrix.
type Node struct {
	Name string
	NS   *netns.NS
	Addr netip.Addr // the address other nodes ping; invalid: not a target
}

// Matrix is the outcome of pinging every node from every other.
type Matrix struct {
	Nodes []string
	// Reach[i][j] is true when node i got a reply from node j's address.
	Reach [][]bool
	// Err[i][j] is set when that probe could not run.
	Err [][]error
}

// All pings every node's address from every other node, all at once.
func All(ctx context.Context, nodes []Node, timeout time.Duration) Matrix {
	m := Matrix{Nodes: make([]string, len(nodes)), Reach: make([][]bool, len(nodes)), Err: make([][]error, len(nodes))}
	var pairs []probe.Pair
	type ij struct{ i, j int }
	var where []ij
	for i, a := range nodes {
		m.Nodes[i] = a.Name
		m.Reach[i] = make([]bool, len(nodes))
		m.Err[i] = make([]error, len(nodes))
		for j, b := range nodes {
			if i == j || !b.Addr.IsValid() {
				continue
			}
			pairs = append(pairs, probe.Pair{From: a.NS, To: b.Addr})
			where = append(where, ij{i, j})
		}
	}
	for k, r := range probe.Sweep(ctx, pairs, timeout) {
		m.Reach[where[k].i][where[k].j] = r.Reply
		m.Err[where[k].i][where[k].j] = runError(r.Err)
	}
	return m
}

// Pairs counts the ordered pairs that were probed.
func (m Matrix) Pairs() (reached, total int) {
	for i := range m.Reach {
		for j := range m.Reach[i] {
			if i == j {
				continue
			}
			total++
			if m.Reach[i][j] {
				reached++
			}
		}
	}
	return reached, total
}

// Write prints the matrix: rows are sources, columns targets; "ok" replied,
// "--" did not, "!!" could not be probed, "." is the node itself. Columns
// are as wide as the longest name, so every column is headed by its node's
// full name.
func (m Matrix) Write(w io.Writer) error {
	width := len("from\\to")
	col := 4
	for _, n := range m.Nodes {
		width = max(width, len(n)+1)
		col = max(col, len(n))
	}
	fmt.Fprintf(w, "%-*s", width, "from\\to")
	for _, n := range m.Nodes {
		fmt.Fprintf(w, " %*s", col, n)
	}
	fmt.Fprintln(w)
	for i, n := range m.Nodes {
		fmt.Fprintf(w, "%-*s", width, n)
		for j := range m.Nodes {
			cell := "--"
			switch {
			case i == j:
				cell = "."
			case m.Err[i][j] != nil:
				cell = "!!"
			case m.Reach[i][j]:
				cell = "ok"
			}
			fmt.Fprintf(w, " %*s", col, cell)
		}
		fmt.Fprintln(w)
	}
	r, t := m.Pairs()
	_, err := fmt.Fprintf(w, "%d/%d ordered pairs reached\n", r, t)
	return err
}

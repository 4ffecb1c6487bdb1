package check

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/nsnet/nsnet/kernel"
	"github.com/nsnet/nsnet/netns"
	"github.com/nsnet/nsnet/probe"
)

// Node is a probe source and target for the all-pairs matrix.
type Node struct {
	Name string
	// NS is the node's namespace; nil when it could not be opened (the
	// pairs from and to it are then not probed, and Missing says why).
	NS      *netns.NS
	Missing string
	Addr    netip.Addr // the address other nodes ping; invalid: not a target
	// Iface is the interface that holds Addr, when known (an IPv6
	// address leaves a link taken down, so the kernel cannot tell).
	Iface string
	// Host is the machine the node is on when it is not this one (a lab
	// across machines): its row is not probed from here, but it is a
	// target (its address is reached through the links across machines),
	// and its kernel state cannot be read to explain a failure.
	Host string
}

// Matrix is the outcome of pinging every node from every other.
type Matrix struct {
	Nodes []string
	// Reach[i][j] is true when node i got a reply from node j's address;
	// Reach[i] is nil for a node on another machine (not probed from here).
	Reach [][]bool
	// Skipped are the rows not probed because their nodes are on other
	// machines, by host, in the nodes' order.
	Skipped []Skipped
	// Err[i][j] is set when that probe could not run.
	Err [][]error
	// Failures are the pairs not reached, with their causes, once Explain
	// has run; Isolated counts the pairs not reached that the lab expects
	// to be isolated (not failures).
	Failures []Failure
	Isolated int

	// raw[i][j] is the probe's own answer (ENOBUFS, EHOSTUNREACH, ...),
	// rows made only for sources with one.
	raw [][]error
	// The kernel's neighbour tables before and after the probes: a rise
	// of their table_fulls means the shared table overflowed meanwhile.
	tablesBefore, tablesAfter []kernel.NeighTable
	// backlogDrops counts the packets the kernel's receive backlogs
	// dropped while the probes ran (all of the machine's).
	backlogDrops uint64
	// timeout is the probes' own, for Explain's second asking.
	timeout time.Duration
}

// Skipped is the nodes of one other machine, whose rows check --all
// leaves to that machine.
type Skipped struct {
	Host  string   `json:"host"`
	Nodes []string `json:"nodes"`
}

// maxRetries is how many times Explain asks again the pairs that got no
// answer for no reason it can see.
const maxRetries = 2

// backlogDrops sums the second column of /proc/net/softnet_stat: the
// packets each CPU's receive backlog dropped since boot. The figures are
// the machine's whatever namespace reads them.
func backlogDrops() (uint64, bool) {
	b, err := os.ReadFile("/proc/net/softnet_stat")
	if err != nil {
		return 0, false
	}
	var sum uint64
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		v, err := strconv.ParseUint(f[1], 16, 64)
		if err != nil {
			return 0, false
		}
		sum += v
	}
	return sum, true
}

func (m *Matrix) probeErr(i, j int) error {
	if m.raw == nil || m.raw[i] == nil {
		return nil
	}
	return m.raw[i][j]
}

// neighTables reads the kernel's neighbour tables from the first namespace
// at hand (they are the machine's, the same from every namespace).
func neighTables(nodes []Node) []kernel.NeighTable {
	for _, n := range nodes {
		if n.NS == nil {
			continue
		}
		h, err := kernel.Open(n.NS)
		if err != nil {
			return nil
		}
		defer h.Close()
		ts, _ := h.NeighTables()
		return ts
	}
	return nil
}

// All pings every node's address from every other node, all at once.
func All(ctx context.Context, nodes []Node, timeout time.Duration) Matrix {
	m := Matrix{Nodes: make([]string, len(nodes)), Reach: make([][]bool, len(nodes)), Err: make([][]error, len(nodes)), raw: make([][]error, len(nodes))}
	var pairs []probe.Pair
	type ij struct{ i, j int }
	var where []ij
	for i, a := range nodes {
		m.Nodes[i] = a.Name
		m.Err[i] = make([]error, len(nodes))
		if a.Host != "" {
			m.skip(a)
			continue
		}
		m.Reach[i] = make([]bool, len(nodes))
		for j, b := range nodes {
			if i == j || !b.Addr.IsValid() || a.NS == nil || (b.NS == nil && b.Host == "") {
				continue
			}
			pairs = append(pairs, probe.Pair{From: a.NS, To: b.Addr})
			where = append(where, ij{i, j})
		}
	}
	m.tablesBefore = neighTables(nodes)
	dropsBefore, dropsOK := backlogDrops()
	for k, r := range probe.Sweep(ctx, pairs, timeout) {
		m.set(where[k].i, where[k].j, r)
	}
	if after, ok := backlogDrops(); ok && dropsOK && after > dropsBefore {
		m.backlogDrops = after - dropsBefore
	}
	m.tablesAfter = neighTables(nodes)
	m.timeout = timeout
	return m
}

// skip records a row left to its node's machine.
func (m *Matrix) skip(n Node) {
	for k := range m.Skipped {
		if m.Skipped[k].Host == n.Host {
			m.Skipped[k].Nodes = append(m.Skipped[k].Nodes, n.Name)
			return
		}
	}
	m.Skipped = append(m.Skipped, Skipped{Host: n.Host, Nodes: []string{n.Name}})
}

// SkippedRows counts the rows left to other machines.
func (m Matrix) SkippedRows() int {
	n := 0
	for _, s := range m.Skipped {
		n += len(s.Nodes)
	}
	return n
}

// set records one probe's answer.
func (m *Matrix) set(i, j int, r probe.PairResult) {
	m.Reach[i][j] = r.Reply
	m.Err[i][j] = runError(r.Err)
	if r.Err != nil && m.raw[i] == nil {
		m.raw[i] = make([]error, len(m.Nodes))
	}
	if m.raw[i] != nil {
		m.raw[i][j] = r.Err
	}
}

// Pairs counts the ordered pairs that were probed (rows of nodes on
// other machines are not).
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
// full name. WriteSummary prints the counts and the causes.
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
		if m.Reach[i] == nil {
			continue // a node on another machine: its row is checked there
		}
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
	return nil
}

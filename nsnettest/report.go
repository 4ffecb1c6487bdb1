package nsnettest

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/nsnet/nsnet/kernel"
	"github.com/nsnet/nsnet/lab/faults"
	"github.com/nsnet/nsnet/netns"
)

// begin records a fault the test put in force; end forgets it once undone.
func (l *Lab) begin(what string) *change {
	c := &change{what: what}
	l.mu.Lock()
	l.active[c] = struct{}{}
	l.mu.Unlock()
	return c
}

// end forgets c and reports whether it was still in force.
func (l *Lab) end(c *change) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, ok := l.active[c]
	delete(l.active, c)
	return ok
}

// endLink forgets the link downs of key (NODE:IFACE), which the test undid.
func (l *Lab) endLink(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for c := range l.active {
		if c.link == key {
			delete(l.active, c)
		}
	}
}

// linkDown reports whether the test has key (NODE:IFACE) down.
func (l *Lab) linkDown(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for c := range l.active {
		if key != "" && c.link == key {
			return true
		}
	}
	return false
}

// Active lists the faults the test has put in force and not yet undone
// (links set down, impairments, partitions), sorted.
func (l *Lab) Active() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]string, 0, len(l.active))
	for c := range l.active {
		out = append(out, c.what)
	}
	sort.Strings(out)
	return out
}

// reportFailure logs, once and only when the test has failed, the faults in
// force and what each node looks like. Every cleanup calls it before it
// undoes anything, so the first one to run sees the lab as it was when the
// test ended.
func (l *Lab) reportFailure(t testing.TB) {
	if !t.Failed() {
		return
	}
	l.mu.Lock()
	done := l.dumped
	l.dumped = true
	l.mu.Unlock()
	if done {
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "nsnettest: lab %s when the test failed:\n", l.spec.Name)
	if a := l.Active(); len(a) > 0 {
		fmt.Fprintf(&b, "faults the test has in force: %s\n", strings.Join(a, "; "))
	} else {
		b.WriteString("faults the test has in force: none\n")
	}
	// What the lab's ledger and the kernel say, with the counters: what
	// each fault did to the test's traffic.
	if st, err := faults.Show(l.opt, l.spec.Name); err != nil {
		fmt.Fprintf(&b, "nsnet fault show: %v\n", err)
	} else if len(st.Faults) > 0 || st.Partition != nil {
		b.WriteString("nsnet fault show:\n")
		faults.Write(&b, st, false)
	}
	for _, node := range l.Nodes() {
		fmt.Fprintf(&b, "node %s:\n", node.Name)
		if err := node.with(func(ns *netns.NS) error { return describe(&b, ns) }); err != nil {
			fmt.Fprintf(&b, "  (cannot read: %v)\n", err)
		}
	}
	t.Log(b.String())
}

// describe writes a namespace's links (as ip -br addr, with the qdisc) and
// routes.
func describe(b *strings.Builder, ns *netns.NS) error {
	h, err := kernel.Open(ns)
	if err != nil {
		return err
	}
	defer h.Close()
	links, err := h.Links()
	if err != nil {
		return err
	}
	addrs, err := h.Addrs()
	if err != nil {
		return err
	}
	qd, _ := h.Qdiscs()
	byLink := map[int][]string{}
	for _, a := range addrs {
		byLink[a.LinkIndex] = append(byLink[a.LinkIndex], a.Prefix.String())
	}
	names := map[int]string{}
	for _, l := range links {
		names[l.Index] = l.Name
		state := l.OperState
		if !l.Up() {
			state = "DOWN(admin)"
		} else if l.Flags&unix.IFF_LOWER_UP == 0 && l.Flags&unix.IFF_LOOPBACK == 0 {
			state = "NO-CARRIER"
		}
		fmt.Fprintf(b, "  %-12s %-11s qdisc %-8s %s\n", l.Name, state, qd[l.Index], strings.Join(byLink[l.Index], " "))
	}
	routes, err := h.Routes()
	if err != nil {
		return err
	}
	for _, r := range routes {
		dst := "default"
		if r.Dst.IsValid() && r.Dst.Bits() > 0 {
			dst = r.Dst.String()
		}
		line := "  route " + dst
		if r.Gateway.IsValid() {
			line += " via " + r.Gateway.String()
		}
		fmt.Fprintf(b, "%s dev %s\n", line, names[r.LinkIndex])
	}
	return nil
}

package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/nsnet/nsnet/check"
	"github.com/nsnet/nsnet/fault"
	"github.com/nsnet/nsnet/lab"
	"github.com/nsnet/nsnet/lab/ledger"
	"github.com/nsnet/nsnet/netns"
	"github.com/nsnet/nsnet/probe"
)

// checkArgs are nsnet check's arguments.
type checkArgs struct {
	target  string // lab file or lab name
	all     bool
	matrix  bool
	junit   string
	timeout time.Duration
}

func parseCheckArgs(c Command) (checkArgs, error) {
	ca := checkArgs{timeout: time.Second, target: c.Args[0], all: c.has("--all"), matrix: c.has("--matrix"), junit: c.Flags["--junit"]}
	if v, ok := c.Flags["--timeout"]; ok {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f < 0.01 || f > 60 {
			return ca, usagef("check", "--timeout %q: must be seconds from 0.01 to 60", v)
		}
		ca.timeout = time.Duration(f * float64(time.Second))
	}
	if ca.matrix && !ca.all {
		return ca, usagef("check", "--matrix is the matrix of --all: give --all too")
	}
	return ca, nil
}

// checkReport is check's JSON output.
type checkReport struct {
	Lab string `json:"lab"`
	check.JSONReport
	Matrix *check.MatrixReport `json:"matrix,omitempty"`
}

// check runs a lab's expectations (and with --all, every pair of nodes by
// ICMP). Exit 1 when an expectation fails, 2 when the check could not run.
func (e *Env) check(c Command) (int, error) {
	ca, err := parseCheckArgs(c)
	if err != nil {
		return 2, err
	}
	opt := lab.Options{Netns: e.Netns, StateDir: e.StateDir, EtcNetns: e.EtcNetns, Exe: e.Exe, Host: c.Flags["--host"]}
	whole, led, err := e.checkLab(ca.target, opt)
	if err != nil {
		return 2, err
	}
	// A lab across machines is checked from each machine: the
	// expectations whose from is here, to targets anywhere.
	l, err := lab.Part(whole, opt)
	if err != nil {
		return 2, err
	}
	nodes := map[string]*netns.NS{}
	defer func() {
		for _, ns := range nodes {
			ns.Close()
		}
	}()
	open := func(name string) (*netns.NS, error) {
		if ns, ok := nodes[name]; ok {
			return ns, nil
		}
		ns, err := lab.OpenNode(l.Name, name, opt)
		if err != nil {
			return nil, fmt.Errorf("node %s: %w", name, err)
		}
		nodes[name] = ns
		return ns, nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := startResponders(ctx, l, open); err != nil {
		return 2, err
	}
	var exps []check.Expectation
	for _, x := range l.Expect {
		if l.Here != nil && l.Node(x.From) == nil {
			fmt.Fprintf(e.Stderr, "check: skipped here (%s): %s -> %s, from a node on %s\n", l.Here.Name, x.From, x.To, whole.Node(x.From).Host.Name)
			continue
		}
		ns, err := open(x.From)
		if err != nil {
			return 2, err
		}
		ce := check.Expectation{From: x.From, FromNS: ns, To: x.To, Addr: x.Addr, Proto: x.Proto, Want: x.Want, Bounds: x.Bounds, Probes: x.Probes}
		if x.ToNode != "" && l.Node(x.ToNode) != nil {
			// For a rate's receiver, and to name the target's link
			// when it is down.
			if ce.ToNS, err = open(x.ToNode); err != nil {
				return 2, err
			}
			ce.ToNode = x.ToNode
			if i := l.Node(x.ToNode).InterfaceWith(x.Addr); i != nil {
				ce.ToIface = i.Name
			}
		}
		exps = append(exps, ce)
	}
	if len(exps) == 0 && !ca.all {
		return 2, fmt.Errorf("check: lab %s has no expectations (add an expect: section, or use --all)", l.Name)
	}
	results := check.Run(ctx, exps, check.Options{Timeout: ca.timeout})
	var m *check.Matrix
	var mnodes []check.Node
	if ca.all {
		var topo check.Topology
		mnodes, topo = allPairs(l, led, opt, nodes)
		mm := check.All(ctx, mnodes, ca.timeout)
		mm.Explain(ctx, mnodes, topo)
		m = &mm
	}
	showMatrix := m != nil && (ca.matrix || len(m.Nodes) <= check.MatrixShownUpTo)
	if ca.junit != "" {
		f, err := os.Create(ca.junit)
		if err != nil {
			return 2, err
		}
		werr := check.WriteJUnit(f, "nsnet check "+l.Name, results)
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			return 2, werr
		}
	}
	if c.Opts.JSON {
		rep := checkReport{Lab: l.Name}
		rep.JSONReport = check.Report(results)
		if m != nil {
			mr := m.Report(mnodes, showMatrix)
			rep.Matrix = &mr
		}
		if err := writeJSON(e.Stdout, rep); err != nil {
			return 2, err
		}
	} else {
		if len(results) > 0 {
			if err := check.WriteTable(e.Stdout, results); err != nil {
				return 2, err
			}
		}
		if m != nil {
			if len(results) > 0 {
				fmt.Fprintln(e.Stdout)
			}
			if showMatrix {
				m.Write(e.Stdout)
			}
			m.WriteSummary(e.Stdout)
		}
	}
	s := check.Summarize(results)
	switch {
	case s.Errors > 0:
		return 2, fmt.Errorf("check: %d probes could not run", s.Errors)
	case s.Failed > 0:
		return 1, nil
	}
	if m != nil {
		if failed, told := m.Failed(); failed > told {
			return 1, nil
		}
	}
	return 0, nil
}

// allPairs gives check --all its nodes (each with the namespace and the
// address it is pinged at; a node whose namespace cannot be opened is
// probed neither from nor to, and said missing) and what the lab and its
// ledger know of its links, bridges, faults and partition, to name the
// causes of failures. open holds the namespaces already open, and keeps
// those opened here.
func allPairs(l *lab.Lab, led *ledger.Ledger, opt lab.Options, open map[string]*netns.NS) ([]check.Node, check.Topology) {
	nsOf := func(name string) (*netns.NS, error) {
		if ns, ok := open[name]; ok {
			return ns, nil
		}
		ln := led.Node(name)
		if ln == nil {
			return nil, fmt.Errorf("not in the lab's ledger")
		}
		var ns *netns.NS
		var err error
		if ln.Owned() {
			ns, err = opt.Netns.Open(ln.Netns)
		} else {
			ns, err = netns.Current()
		}
		if err != nil {
			return nil, err
		}
		open[name] = ns
		return ns, nil
	}
	topo := check.Topology{NS: map[string]*netns.NS{}, Peers: map[check.End]check.End{}, Ports: map[check.End]string{},
		Bridges: map[string]string{}, Static: map[string]bool{}, Faults: map[check.End]fault.Spec{}, Isolated: map[[2]string]bool{}, Remote: map[string]string{}}
	var nodes []check.Node
	// A lab across machines: every node of the lab is a target, in the
	// file's order; the rows of nodes on other machines are theirs to
	// probe.
	for _, n := range l.Whole().Nodes {
		if l.Node(n.Name) != nil {
			n = l.Node(n.Name)
		} else {
			if n.IsHost() {
				continue // the other machine's own namespace
			}
			topo.Remote[n.Name] = n.Host.Name
			if a := n.FirstAddr(); a.IsValid() {
				cn := check.Node{Name: n.Name, Addr: a, Host: n.Host.Name}
				if i := n.InterfaceWith(a); i != nil {
					cn.Iface = i.Name
				}
				nodes = append(nodes, cn)
			}
			continue
		}
		a := n.FirstAddr()
		ns, err := nsOf(n.Name)
		if !a.IsValid() {
			// Nothing to ping it at (a node that only holds bridges),
			// but its links' state names causes.
			if err == nil {
				topo.NS[n.Name] = ns
			}
			continue
		}
		cn := check.Node{Name: n.Name, NS: ns, Addr: a}
		if err != nil {
			cn.Missing = fmt.Sprintf("its namespace %s cannot be opened: %v", n.Netns, err)
		}
		if i := n.InterfaceWith(a); i != nil {
			cn.Iface = i.Name
		}
		nodes = append(nodes, cn)
	}
	for _, k := range l.Links {
		if k.A == nil || k.B == nil {
			continue
		}
		a, b := check.End{Node: k.A.Node.Name, Iface: k.A.Name}, check.End{Node: k.B.Node.Name, Iface: k.B.Name}
		topo.Peers[a], topo.Peers[b] = b, a
		for _, i := range []*lab.Interface{k.A, k.B} {
			if i.Master != nil {
				topo.Ports[check.End{Node: i.Node.Name, Iface: i.Name}] = i.Master.Name
			}
		}
	}
	for _, b := range l.Bridges {
		topo.Bridges[b.Name] = b.Node.Name
	}
	for _, x := range l.Expect {
		if x.Want == check.Isolated && x.ToNode != "" {
			topo.Isolated[[2]string{x.From, x.ToNode}] = true
		}
	}
	if p := led.Partition; p != nil {
		topo.Partition = &fault.Partition{Groups: p.Groups, OneWay: p.OneWay}
	}
	for _, f := range led.Faults {
		s, err := fault.ParseWords(strings.Fields(f.Spec))
		if err != nil {
			continue
		}
		s.Down = s.Down || f.Down
		topo.Faults[check.End{Node: f.Node, Iface: f.Iface}] = s
	}
	return nodes, topo
}

// checkLab finds the lab with its expectations: from the file given, or
// from the file the lab was brought up from.
func (e *Env) checkLab(target string, opt lab.Options) (*lab.Lab, *ledger.Ledger, error) {
	var fromFile *lab.Lab
	name := ""
	if fi, err := os.Stat(target); err == nil && fi.Mode().IsRegular() {
		l, err := lab.Load(target)
		if err != nil {
			return nil, nil, err
		}
		fromFile, name = l, l.Name
	} else if name, err = lab.NameOf(target, opt); err != nil {
		return nil, nil, err
	}
	// The ledger says whether the lab is up and names its file; no need to
	// observe the kernel for that. A file and a name say the same when the
	// lab is not up.
	led, err := ledger.Store{Dir: opt.StateDir}.Read(name)
	if errors.Is(err, fs.ErrNotExist) || (err == nil && led.File == "") {
		return nil, nil, fmt.Errorf("check: lab %s is not up (bring it up with: nsnet up FILE; see nsnet labs)", name)
	}
	if err != nil {
		return nil, nil, err
	}
	if fromFile != nil {
		return fromFile, led, nil
	}
	l, err := lab.Load(led.File)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("check: lab %s was brought up from %s, which is gone: name a lab file", name, led.File)
	}
	return l, led, err
}

// startResponders starts each node's built-in servers for the check; they
// stop when ctx ends.
func startResponders(ctx context.Context, l *lab.Lab, open func(string) (*netns.NS, error)) error {
	for _, n := range l.Nodes {
		if n.RespondersAlways {
			continue // they run while the lab is up: processes of the node
		}
		for _, r := range n.Responders {
			p, err := check.ParseProto(r)
			if err != nil {
				return err
			}
			ns, err := open(n.Name)
			if err != nil {
				return err
			}
			addr := fmt.Sprintf(":%d", p.Port)
			if p.Name == "udp" {
				pc, err := probe.ListenPacket(ns, "udp", addr)
				if err != nil {
					return fmt.Errorf("responder %s in %s: %w", r, n.Name, err)
				}
				go probe.ServeUDPEcho(ctx, pc)
				continue
			}
			ln, err := probe.Listen(ns, "tcp", addr)
			if err != nil {
				return fmt.Errorf("responder %s in %s: %w", r, n.Name, err)
			}
			if p.Name == "http" {
				go probe.ServeHTTP(ctx, ln)
			} else {
				go probe.ServeTCPEcho(ctx, ln)
			}
		}
	}
	return nil
}

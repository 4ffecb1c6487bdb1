package lab

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nsnet/nsnet/lab/ledger"
)

// Lab states as status and labs report them.
const (
	StateUp         = "up"         // the last up finished
	StateIncomplete = "incomplete" // an up was interrupted: run up again, or down
	StateBusy       = "busy"       // an nsnet is changing the lab right now
	// StateDegraded: the lab is up but the kernel no longer shows it as
	// written (a link set down or deleted by hand, a namespace gone, a
	// process exited, a hosts file changed); Summary.Degraded says what.
	// nsnet up repairs it.
	StateDegraded = "degraded"
	// StateMissing is a node whose namespace is gone.
	StateMissing = "missing"
)

// Summary is one line of `nsnet labs`.
type Summary struct {
	Lab   string `json:"lab"`
	State string `json:"state"`
	File  string `json:"file,omitempty"`
	Nodes int    `json:"nodes"`
	// Links counts veth pairs and bridges, as up's summary does.
	Links     int       `json:"links"`
	Processes int       `json:"processes"`
	Updated   time.Time `json:"updated"`
	// Host is, in a lab across machines, the host whose part this
	// machine holds.
	Host string `json:"host,omitempty"`
	// Degraded lists what drifted, when State is degraded.
	Degraded []string `json:"degraded,omitempty"`
}

// LabStatus is what exists of one lab, node by node.
type LabStatus struct {
	Summary
	NodeStatus []NodeStatus `json:"node_status"`
	// Elsewhere are, in a lab across machines, the other hosts and the
	// nodes the lab file puts on them (their status is theirs to show).
	Elsewhere []HostNodes `json:"elsewhere,omitempty"`
}

// HostNodes is another machine of a lab and its nodes.
type HostNodes struct {
	Host    string   `json:"host"`
	Address string   `json:"address"`
	Nodes   []string `json:"nodes"`
}

// elsewhereNodes lists the lab's other hosts with their nodes, in the file's
// order.
func elsewhereNodes(l *Lab, here string) []HostNodes {
	var out []HostNodes
	for _, h := range l.Hosts {
		if h.Name == here {
			continue
		}
		hn := HostNodes{Host: h.Name, Address: h.Address.String(), Nodes: []string{}}
		for _, n := range l.Nodes {
			if n.Host == h && !n.IsHost() {
				hn.Nodes = append(hn.Nodes, n.Name)
			}
		}
		out = append(out, hn)
	}
	return out
}

// NodeStatus is one node as the kernel shows it.
type NodeStatus struct {
	Node    string `json:"node"`
	Netns   string `json:"netns,omitempty"`
	Present bool   `json:"present"`
	// State is up, degraded (an interface missing or down, a process
	// exited) or missing (no namespace).
	State string `json:"state"`
	// IfacesUp of IfacesTotal interfaces are there and up.
	IfacesUp    int          `json:"ifaces_up"`
	IfacesTotal int          `json:"ifaces_total"`
	Links       []LinkStatus `json:"links"`
	Processes   []ProcStatus `json:"processes,omitempty"`
}

// LinkStatus is one interface of the lab.
type LinkStatus struct {
	Name      string   `json:"ifname"`
	Kind      string   `json:"kind"`
	Present   bool     `json:"present"`
	State     string   `json:"operstate,omitempty"`
	Up        bool     `json:"up"`
	MTU       int      `json:"mtu,omitempty"`
	Master    string   `json:"master,omitempty"`
	Peer      string   `json:"peer,omitempty"`
	Addresses []string `json:"addresses"`
	// A VXLAN half of a link across machines: the peer's host (by the lab
	// file, when it can be read), the underlay address it sends to, and the
	// VNI, as the kernel says.
	PeerHost string `json:"peer_host,omitempty"`
	Remote   string `json:"remote,omitempty"`
	VNI      uint32 `json:"vni,omitempty"`
}

// ProcStatus is one process of the lab.
type ProcStatus struct {
	PID     int      `json:"pid"`
	Argv    []string `json:"argv"`
	Running bool     `json:"running"`
	Log     string   `json:"log,omitempty"`
	// Restarts counts the times up restarted it after it died.
	Restarts int `json:"restarts"`
	// How it ended, once it has and its reaper said so: ExitCode, or
	// the Signal that killed it (its name, e.g. SIGKILL), and when.
	ExitCode *int       `json:"exit_code,omitempty"`
	Signal   string     `json:"signal,omitempty"`
	Exited   *time.Time `json:"exited,omitempty"`
}

// Ended says how the process ended ("exit 3", "killed by SIGKILL"), or
// nothing when it runs or nobody knows.
func (p ProcStatus) Ended() string {
	switch {
	case p.Signal != "":
		return "killed by " + p.Signal
	case p.ExitCode != nil:
		return fmt.Sprintf("exit %d", *p.ExitCode)
	}
	return ""
}

// Labs lists the labs that have a ledger, each looked at in the kernel so
// that one that drifted shows as degraded.
func Labs(opt Options) ([]Summary, error) {
	store := opt.store()
	names, err := store.Labs()
	if err != nil {
		return nil, err
	}
	out := []Summary{}
	for _, name := range names {
		led, err := store.Read(name)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		sum := summarize(store, led)
		if sum.State == StateUp {
			ls, err := status(led, store, opt)
			if err != nil {
				return nil, err
			}
			sum = ls.Summary
		}
		out = append(out, sum)
	}
	return out, nil
}

func summarize(store ledger.Store, led *ledger.Ledger) Summary {
	s := Summary{Lab: led.Lab, File: led.File, Host: led.HostName, Processes: len(led.Procs), Updated: led.Updated}
	for _, lk := range led.Links {
		// A veth pair is one link: counted at the end that sorts first.
		if lk.Kind != KindVeth || lk.Peer == "" || lk.Node+":"+lk.Name < lk.Peer {
			s.Links++
		}
	}
	for _, n := range led.Nodes {
		if n.Owned() {
			s.Nodes++
		}
	}
	s.State = StateIncomplete
	if led.Complete {
		s.State = StateUp
	}
	if busy, err := store.Busy(led.Lab); err == nil && busy {
		s.State = StateBusy
	}
	return s
}

// Status shows what exists of the named lab, or of every lab when name is
// empty, from the ledgers and the kernel. It changes nothing.
func Status(name string, opt Options) ([]LabStatus, error) {
	store := opt.store()
	names := []string{name}
	if name == "" {
		var err error
		if names, err = store.Labs(); err != nil {
			return nil, err
		}
	}
	out := []LabStatus{}
	for _, n := range names {
		led, err := store.Read(n)
		if errors.Is(err, fs.ErrNotExist) {
			if name != "" {
				return nil, &NotUpError{Lab: name, Err: err}
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		if err := CheckHost(led, opt.Host); err != nil {
			if name != "" {
				return nil, err
			}
			continue // status --host NAME: only the labs whose part this is
		}
		ls, err := status(led, store, opt)
		if err != nil {
			return nil, err
		}
		out = append(out, ls)
	}
	return out, nil
}

func status(led *ledger.Ledger, store ledger.Store, opt Options) (LabStatus, error) {
	ls := LabStatus{Summary: summarize(store, led)}
	sys, err := NewSystem(opt.Netns, opt.Exe, store.LabDir(led.Lab), led.Mark)
	if err != nil {
		return ls, err
	}
	defer sys.Close()
	links := map[string][]*ledger.Link{}
	for i := range led.Links {
		lk := &led.Links[i]
		links[lk.Node] = append(links[lk.Node], lk)
	}
	var drift []string
	// The names of the lab's hosts, by underlay address, for the far ends
	// of VXLAN halves (the ledger knows only this machine's part).
	hostOf := map[netip.Addr]string{}
	if led.HostName != "" && led.File != "" {
		if l, err := Load(led.File); err == nil {
			ls.Elsewhere = elsewhereNodes(l, led.HostName)
			for _, h := range l.Hosts {
				hostOf[h.Address] = h.Name
			}
		}
	}
	procs := map[string][]ledger.Proc{}
	for _, p := range led.Procs {
		procs[p.Node] = append(procs[p.Node], p)
	}
	for _, n := range led.Nodes {
		ns := NodeStatus{Node: n.Name, Netns: n.Netns, Links: []LinkStatus{}}
		var c *conn
		if !n.Owned() {
			c = sys.host
		} else if h, err := opt.Netns.Open(n.Netns); err == nil {
			// Opened once, not checked and then opened: a down running
			// beside this unmounts each name before it removes it, and
			// a name opened in between is a plain file. Whatever does
			// not open is not there, as Exists would say.
			if c, err = sys.adopt(n.Netns, h); err != nil {
				return ls, err
			}
		}
		var st *NSState
		if c != nil {
			st, err = sys.observeNS(c, nil, false, false, nil)
			c.dropHandle()
			if err != nil {
				return ls, err
			}
			ns.Present = n.Owned() && st.Mark == led.Mark || !n.Owned()
		}
		for _, lk := range links[n.Name] {
			v := LinkStatus{Name: lk.Name, Kind: lk.Kind, Peer: lk.Peer, Addresses: []string{}}
			if st != nil && ns.Present {
				if k := st.Links[lk.Name]; k != nil && (n.Owned() || ownsHostLink(led.Mark, k, lk)) {
					v.Present, v.Up, v.MTU, v.Master = true, k.Up, k.MTU, k.Master
					if x := k.VXLAN; x != nil {
						v.VNI, v.Remote, v.PeerHost = x.VNI, x.Remote.String(), hostOf[x.Remote]
					}
					v.State = "DOWN"
					if k.Up {
						v.State = "UP"
					}
					for _, a := range k.Addrs {
						if a.Addr().IsLinkLocalUnicast() {
							continue
						}
						v.Addresses = append(v.Addresses, a.String())
					}
				}
			}
			ns.Links = append(ns.Links, v)
		}
		for _, p := range procs[n.Name] {
			ps := ProcStatus{PID: p.PID, Argv: p.Argv, Running: ProcessRunning(p), Log: p.Log, Restarts: p.Restarts}
			if !ps.Running {
				if ex := readExit(store.LabDir(led.Lab), p); ex != nil {
					ps.Exited = &ex.At
					if ex.Signal != 0 {
						ps.Signal = unix.SignalName(syscall.Signal(ex.Signal))
						if ps.Signal == "" {
							ps.Signal = fmt.Sprintf("signal %d", ex.Signal)
						}
					} else {
						ps.ExitCode = &ex.Code
					}
				}
			}
			ns.Processes = append(ns.Processes, ps)
		}
		drift = append(drift, nodeState(&ns)...)
		ls.NodeStatus = append(ls.NodeStatus, ns)
	}
	drift = append(drift, hostsDrift(nil, led)...)
	if len(drift) > 0 && ls.State == StateUp {
		ls.State, ls.Degraded = StateDegraded, drift
	}
	return ls, nil
}

// nodeState sets the node's state and interface counts and says what of it
// drifted.
func nodeState(ns *NodeStatus) []string {
	var drift []string
	ns.IfacesTotal = len(ns.Links)
	for _, lk := range ns.Links {
		switch {
		case !ns.Present:
		case !lk.Present:
			drift = append(drift, ns.Node+":"+lk.Name+" missing")
		case !lk.Up:
			drift = append(drift, ns.Node+":"+lk.Name+" down")
		default:
			ns.IfacesUp++
		}
	}
	for _, p := range ns.Processes {
		if !p.Running {
			what := "exited"
			if e := p.Ended(); e != "" {
				what += " (" + e + ")"
			}
			drift = append(drift, fmt.Sprintf("%s: process %d %s", ns.Node, p.PID, what))
		}
	}
	switch {
	case !ns.Present:
		ns.State = StateMissing
		drift = append([]string{ns.Node + " missing"}, drift...)
	case len(drift) > 0:
		ns.State = StateDegraded
	default:
		ns.State = StateUp
	}
	return drift
}

// WriteLabs prints `nsnet labs`, as a table or JSON; what drifted in a
// degraded lab follows the table.
func WriteLabs(w io.Writer, labs []Summary, asJSON bool) error {
	if asJSON {
		return writeJSON(w, labs)
	}
	if len(labs) == 0 {
		_, err := fmt.Fprintln(w, "no labs")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	// HOST, the host whose part of a lab across machines this machine
	// holds, only when there is one: labs on one machine have none.
	hosts := false
	for _, s := range labs {
		hosts = hosts || s.Host != ""
	}
	if hosts {
		fmt.Fprintln(tw, "LAB\tSTATE\tHOST\tNODES\tLINKS\tPROCESSES\tFILE")
	} else {
		fmt.Fprintln(tw, "LAB\tSTATE\tNODES\tLINKS\tPROCESSES\tFILE")
	}
	for _, s := range labs {
		if hosts {
			h := s.Host
			if h == "" {
				h = "-"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%s\n", s.Lab, s.State, h, s.Nodes, s.Links, s.Processes, s.File)
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s\n", s.Lab, s.State, s.Nodes, s.Links, s.Processes, s.File)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, s := range labs {
		if len(s.Degraded) > 0 {
			fmt.Fprintf(w, "%s is degraded: %s (nsnet up repairs it)\n", s.Lab, driftList(s.Degraded))
		}
	}
	return nil
}

// driftList shows the first few things that drifted and how many more.
func driftList(d []string) string {
	const shown = 5
	if len(d) <= shown {
		return strings.Join(d, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(d[:shown], ", "), len(d)-shown)
}

// WriteStatus prints `nsnet status`: per lab a heading and one row per node
// (node, namespace, state, interfaces up/total, addresses, processes), or
// JSON.
func WriteStatus(w io.Writer, labs []LabStatus, asJSON bool) error {
	if asJSON {
		return writeJSON(w, labs)
	}
	if len(labs) == 0 {
		_, err := fmt.Fprintln(w, "no labs")
		return err
	}
	var b strings.Builder
	for i, l := range labs {
		if i > 0 {
			b.WriteString("\n")
		}
		labHeading(&b, l)
		tw := tabwriter.NewWriter(&b, 0, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "NODE\tNETNS\tSTATE\tIFACES\tADDRESSES\tPROCESSES")
		for _, n := range l.NodeStatus {
			if n.Netns == "" && len(n.Links) == 0 && len(n.Processes) == 0 {
				continue // the host, untouched by this lab
			}
			where := n.Netns
			if where == "" {
				where = "(host)"
			}
			var addrs []string
			for _, lk := range n.Links {
				addrs = append(addrs, lk.Addresses...)
			}
			if len(addrs) == 0 {
				addrs = []string{"-"}
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d/%d\t%s\t%s\n", n.Node, where, n.State, n.IfacesUp, n.IfacesTotal, strings.Join(addrs, " "), procSummary(n.Processes))
		}
		tw.Flush()
		for _, h := range l.Elsewhere {
			fmt.Fprintf(&b, "on %s (%s): %s (nsnet status there)\n", h.Host, h.Address, nodeList(h.Nodes))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// nodeList names a few nodes and counts the rest.
func nodeList(ns []string) string {
	const shown = 5
	switch {
	case len(ns) == 0:
		return "no nodes"
	case len(ns) == 1:
		return "node " + ns[0]
	case len(ns) <= shown:
		return fmt.Sprintf("%d nodes: %s", len(ns), strings.Join(ns, ", "))
	}
	return fmt.Sprintf("%d nodes: %s and %d more", len(ns), strings.Join(ns[:shown], ", "), len(ns)-shown)
}

func labHeading(b *strings.Builder, l LabStatus) {
	fmt.Fprintf(b, "lab %s: %s", l.Lab, l.State)
	if l.File != "" {
		fmt.Fprintf(b, " (%s)", l.File)
	}
	if l.Host != "" {
		fmt.Fprintf(b, ", host %s's part", l.Host)
	}
	fmt.Fprintf(b, ", %d nodes, %d links, %d processes\n", l.Nodes, l.Links, l.Processes)
	if len(l.Degraded) > 0 {
		fmt.Fprintf(b, "degraded: %s (nsnet up repairs it)\n", driftList(l.Degraded))
	}
}

func procSummary(ps []ProcStatus) string {
	if len(ps) == 0 {
		return "-"
	}
	run := 0
	for _, p := range ps {
		if p.Running {
			run++
		}
	}
	if run == len(ps) {
		return fmt.Sprintf("%d running", run)
	}
	return fmt.Sprintf("%d running, %d exited", run, len(ps)-run)
}

// FilterNodes keeps only the named nodes of a lab's status, in the order
// asked; a name the lab does not have is an error listing its nodes.
func FilterNodes(ls LabStatus, nodes []string) (LabStatus, error) {
	var out []NodeStatus
	for _, want := range nodes {
		i := slices.IndexFunc(ls.NodeStatus, func(n NodeStatus) bool { return n.Node == want })
		if i < 0 {
			if err := elsewhere(ls.Lab, ls.File, ls.Host, want); err != nil {
				return ls, err
			}
			e := &NoNodeError{Lab: ls.Lab, Node: want}
			for _, n := range ls.NodeStatus {
				e.Nodes = append(e.Nodes, n.Node)
			}
			return ls, e
		}
		out = append(out, ls.NodeStatus[i])
	}
	ls.NodeStatus = out
	return ls, nil
}

// WriteNodeStatus prints the detail of a lab's nodes: each interface with
// its state, addresses, kind, peer, bridge and MTU, and each process with
// its log.
func WriteNodeStatus(w io.Writer, l LabStatus, asJSON bool) error {
	if asJSON {
		return writeJSON(w, l)
	}
	var b strings.Builder
	labHeading(&b, l)
	for _, n := range l.NodeStatus {
		where := "host namespace"
		if n.Netns != "" {
			where = "netns " + n.Netns
		}
		fmt.Fprintf(&b, "node %s (%s): %s, %d/%d interfaces up\n", n.Node, where, n.State, n.IfacesUp, n.IfacesTotal)
		tw := tabwriter.NewWriter(&b, 0, 8, 2, ' ', 0)
		for _, lk := range n.Links {
			state := lk.State
			if !lk.Present {
				state = "MISSING"
			}
			extra := lk.Kind
			if lk.Peer != "" {
				extra += " to " + lk.Peer
			}
			switch {
			case lk.PeerHost != "":
				extra += fmt.Sprintf(" on %s (vni %d, remote %s)", lk.PeerHost, lk.VNI, lk.Remote)
			case lk.VNI != 0:
				extra += fmt.Sprintf(" at %s (vni %d)", lk.Remote, lk.VNI)
			}
			if lk.Master != "" {
				extra += ", port of " + lk.Master
			}
			if lk.MTU != 0 {
				extra += fmt.Sprintf(", mtu %d", lk.MTU)
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", lk.Name, state, strings.Join(lk.Addresses, " "), extra)
		}
		tw.Flush()
		for _, p := range n.Processes {
			state, more := "running", []string{}
			if !p.Running {
				state = "EXITED"
				if e := p.Ended(); e != "" {
					more = append(more, e)
				}
			}
			switch {
			case p.Restarts == 1:
				more = append(more, "restarted once")
			case p.Restarts > 1:
				more = append(more, fmt.Sprintf("restarted %d times", p.Restarts))
			}
			if len(more) > 0 {
				state += " (" + strings.Join(more, ", ") + ")"
			}
			fmt.Fprintf(&b, "  process %d %s: %s\n", p.PID, state, quoteArgv(p.Argv))
			if p.Log != "" {
				fmt.Fprintf(&b, "    log %s\n", p.Log)
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

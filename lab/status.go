package lab

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nsnet/nsnet/lab/ledger"
)

// Lab states as status and labs report them.
const (
	StateUp         = "up"         // the last up finished
	StateIncomplete = "incomplete" // an up was interrupted: run up again, or down
	StateBusy       = "busy"       // an nsnet is changing the lab right now
)

// Summary is one line of `nsnet labs`.
type Summary struct {
	Lab       string    `json:"lab"`
	State     string    `json:"state"`
	File      string    `json:"file,omitempty"`
	Nodes     int       `json:"nodes"`
	Links     int       `json:"links"`
	Processes int       `json:"processes"`
	Updated   time.Time `json:"updated"`
}

// LabStatus is what exists of one lab, node by node.
type LabStatus struct {
	Summary
	NodeStatus []NodeStatus `json:"node_status"`
}

// NodeStatus is one node as the kernel shows it.
type NodeStatus struct {
	Node      string       `json:"node"`
	Netns     string       `json:"netns,omitempty"`
	Present   bool         `json:"present"`
	Links     []LinkStatus `json:"links"`
	Processes []ProcStatus `json:"processes,omitempty"`
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
}

// ProcStatus is one process of the lab.
type ProcStatus struct {
	PID     int      `json:"pid"`
	Argv    []string `json:"argv"`
	Running bool     `json:"running"`
	Log     string   `json:"log,omitempty"`
}

// Labs lists the labs that have a ledger.
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
		out = append(out, summarize(store, led))
	}
	return out, nil
}

func summarize(store ledger.Store, led *ledger.Ledger) Summary {
	s := Summary{Lab: led.Lab, File: led.File, Links: len(led.Links), Processes: len(led.Procs), Updated: led.Updated}
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
	procs := map[string][]ledger.Proc{}
	for _, p := range led.Procs {
		procs[p.Node] = append(procs[p.Node], p)
	}
	for _, n := range led.Nodes {
		ns := NodeStatus{Node: n.Name, Netns: n.Netns, Links: []LinkStatus{}}
		var c *conn
		if !n.Owned() {
			c = sys.host
		} else if opt.Netns.Exists(n.Netns) {
			if c, err = sys.conn(n.Netns); err != nil {
				return ls, err
			}
		}
		var st *NSState
		if c != nil {
			st, err = sys.observeNS(c, nil, false, false)
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
			ns.Processes = append(ns.Processes, ProcStatus{PID: p.PID, Argv: p.Argv, Running: procAlive(p), Log: p.Log})
		}
		ls.NodeStatus = append(ls.NodeStatus, ns)
	}
	return ls, nil
}

// WriteLabs prints `nsnet labs`, as a table or JSON.
func WriteLabs(w io.Writer, labs []Summary, asJSON bool) error {
	if asJSON {
		return writeJSON(w, labs)
	}
	if len(labs) == 0 {
		_, err := fmt.Fprintln(w, "no labs")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "LAB\tSTATE\tNODES\tLINKS\tPROCESSES\tFILE")
	for _, s := range labs {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s\n", s.Lab, s.State, s.Nodes, s.Links, s.Processes, s.File)
	}
	return tw.Flush()
}

// WriteStatus prints `nsnet status`, node by node, or JSON.
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
		fmt.Fprintf(&b, "lab %s: %s", l.Lab, l.State)
		if l.File != "" {
			fmt.Fprintf(&b, " (%s)", l.File)
		}
		b.WriteString("\n")
		for _, n := range l.NodeStatus {
			if n.Netns == "" && len(n.Links) == 0 && len(n.Processes) == 0 {
				continue // the host, untouched by this lab
			}
			where := "host namespace"
			if n.Netns != "" {
				where = "netns " + n.Netns
			}
			state := ""
			if !n.Present {
				state = ": MISSING"
			}
			fmt.Fprintf(&b, "  node %s (%s)%s\n", n.Node, where, state)
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
				if lk.Master != "" {
					extra += ", port of " + lk.Master
				}
				if lk.MTU != 0 {
					extra += fmt.Sprintf(", mtu %d", lk.MTU)
				}
				fmt.Fprintf(tw, "    %s\t%s\t%s\t%s\n", lk.Name, state, strings.Join(lk.Addresses, " "), extra)
			}
			tw.Flush()
			for _, p := range n.Processes {
				state := "running"
				if !p.Running {
					state = "EXITED"
				}
				fmt.Fprintf(&b, "    process %d %s: %s\n", p.PID, state, quoteArgv(p.Argv))
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

package faults

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nsnet/nsnet/fault"
	"github.com/nsnet/nsnet/fault/backend"
	"github.com/nsnet/nsnet/fault/delayer"
	"github.com/nsnet/nsnet/lab"
	"github.com/nsnet/nsnet/lab/ledger"
	"github.com/nsnet/nsnet/netns"
)

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// Active is one fault in force, with what it did.
type Active struct {
	End     string    `json:"end"`
	Spec    string    `json:"spec"`
	Backend string    `json:"backend"`
	Until   time.Time `json:"until,omitzero"`
	// Impaired counts the packets a fault mechanism handled: sent
	// through nsnet's qdisc, matched by its rules, or given to the delayer.
	Impaired uint64 `json:"impaired"`
	// Dropped on purpose (loss, black hole).
	Dropped uint64 `json:"dropped"`
	// Delayed by the delayer, or held by netem.
	Delayed    uint64 `json:"delayed"`
	Duplicated uint64 `json:"duplicated"`
	Corrupted  uint64 `json:"corrupted"`
	// Overload drops: packets the delayer could not keep up with.
	Overload uint64 `json:"overload"`
	Late     uint64 `json:"late"`
	Error    string `json:"error,omitempty"`
}

// PartitionState is the partition in force.
type PartitionState struct {
	Groups  [][]string `json:"groups"`
	OneWay  bool       `json:"oneway,omitempty"`
	Dropped uint64     `json:"dropped"`
}

// State is a lab's faults.
type State struct {
	Lab       string          `json:"lab"`
	Faults    []Active        `json:"faults"`
	Partition *PartitionState `json:"partition,omitempty"`
	Delayer   int             `json:"delayer_pid,omitempty"`
}

// Show reads the lab's faults and their counters (taking no lock).
func Show(opt lab.Options, name string) (*State, error) {
	store := ledger.Store{Dir: opt.StateDir}
	led, err := store.Read(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, &Error{Lab: name, Msg: "is not up (see nsnet labs)", Err: err}
	}
	if err != nil {
		return nil, err
	}
	s := &session{opt: opt, name: name, store: store, led: led, open: map[string]*netns.NS{}, conns: backend.NewConns()}
	defer func() {
		s.conns.Close()
		for _, ns := range s.open {
			ns.Close()
		}
	}()
	st := &State{Lab: name, Faults: []Active{}}
	stats, _ := delayer.ReadStats(filepath.Join(store.LabDir(name), delayerStats))
	for _, p := range led.Procs {
		if p.Role == RoleDelayer && lab.HelperAlive(p) {
			st.Delayer = p.PID
		}
	}
	for _, f := range led.Faults {
		end := fault.End{Node: f.Node, Iface: f.Iface}
		a := Active{End: end.String(), Spec: f.Spec, Backend: f.Backend, Until: f.Until}
		l, err := s.link(end)
		if err == nil {
			var c backend.Counts
			c, err = s.conns.Read(name, l)
			a.Impaired = c.Sent + c.Queued
			a.Dropped = c.Dropped + c.QdiscDrops
			a.Duplicated = c.Duplicated
			if strings.Contains(f.Backend, "netem") {
				a.Delayed = c.Sent
			}
			if a.Impaired == 0 {
				a.Impaired = c.Dropped + c.Duplicated
			}
		}
		if q, ok := stats.Queues[end.String()]; ok {
			a.Delayed += q.Delayed
			a.Dropped += q.Dropped
			a.Corrupted = q.Corrupted
			a.Overload = q.Overload
			a.Late = q.Late
		}
		if err != nil {
			a.Error = err.Error()
		}
		st.Faults = append(st.Faults, a)
	}
	if p := led.Partition; p != nil {
		ps := &PartitionState{Groups: p.Groups, OneWay: p.OneWay}
		byName, _, err := s.members(fault.Partition{Groups: p.Groups})
		if err == nil {
			for _, n := range (fault.Partition{Groups: p.Groups}).Nodes() {
				d, _ := backend.PartitionDrops(name, byName[n])
				ps.Dropped += d
			}
		}
		st.Partition = ps
	}
	return st, nil
}

// Write prints st as a table, or as JSON.
func Write(w io.Writer, st *State, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	if len(st.Faults) == 0 && st.Partition == nil {
		_, err := fmt.Fprintf(w, "lab %s has no faults\n", st.Lab)
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if len(st.Faults) > 0 {
		fmt.Fprintln(tw, "END\tFAULT\tBACKEND\tIMPAIRED\tDROPPED\tDELAYED\tOVERLOAD\tUNTIL")
		for _, a := range st.Faults {
			until := "-"
			if !a.Until.IsZero() {
				until = a.Until.Local().Format("15:04:05")
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%s\n", a.End, a.Spec, a.Backend, a.Impaired, a.Dropped, a.Delayed, a.Overload, until)
			if a.Error != "" {
				fmt.Fprintf(tw, "\t  error: %s\n", a.Error)
			}
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if p := st.Partition; p != nil {
		fmt.Fprintf(w, "partition: %s (dropped %d)\n", fault.Partition{Groups: p.Groups, OneWay: p.OneWay}, p.Dropped)
	}
	return nil
}

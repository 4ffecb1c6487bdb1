package lab

import (
	"errors"
	"slices"

	"github.com/nsnet/nsnet/lab/ledger"
)

// Executor carries out steps. System does it on the kernel; tests record
// the steps instead.
type Executor interface {
	Run(Step) error
	// Start starts a process step behind a gate: it does not run its
	// command until Release.
	Start(Step) (*Started, error)
}

// LedgerWriter saves a ledger; ledger.Store is one.
type LedgerWriter interface {
	Write(*ledger.Ledger) error
}

// ApplyOptions are what Apply needs besides the plan.
type ApplyOptions struct {
	// Host identifies the namespace the lab's host node is.
	Host ledger.NSID
	// Progress, when set, is called after each step.
	Progress func(done, total int)
	// Stop, when it closes, ends the run before its next step with
	// ErrInterrupted; what was done stays recorded in the ledger.
	Stop <-chan struct{}
}

// ErrInterrupted is returned when Stop closed before a run finished. The
// lab is left as the steps done so far made it, and its ledger says so
// (incomplete after an up): up again finishes it, down undoes it.
var ErrInterrupted = errors.New("interrupted")

func stopped(stop <-chan struct{}) bool {
	select {
	case <-stop:
		return true
	default:
		return false
	}
}

// Apply carries out a plan and keeps the ledger ahead of the kernel: removals
// run first and are then dropped from the ledger; everything the plan
// creates is written to the ledger before the first creation; processes are
// recorded (PID and start time) before they are let run. It returns the
// ledger as it stands. A teardown plan (p.Lab nil) returns the ledger with
// everything removed dropped; the caller deletes it.
func Apply(p *Plan, ex Executor, w LedgerWriter, opt ApplyOptions) (*ledger.Ledger, error) {
	led := &ledger.Ledger{Lab: p.Name, Mark: p.Mark, Host: opt.Host}
	if p.Ledger != nil {
		cp := *p.Ledger
		led = &cp
	}
	// The processes as they were, so that a restarted one keeps its count.
	oldProcs := led.Procs
	total, done := len(p.Steps), 0
	step := func(s Step) error {
		if stopped(opt.Stop) {
			// What was queued is sent, so the lab is as the steps so far
			// made it.
			if f, ok := ex.(interface{ Flush() error }); ok {
				return errors.Join(ErrInterrupted, f.Flush())
			}
			return ErrInterrupted
		}
		err := ex.Run(s)
		done++
		if opt.Progress != nil {
			opt.Progress(done, total)
		}
		return err
	}
	i := 0
	removed := false
	for ; i < len(p.Steps) && p.Steps[i].Op <= OpAwaitGone; i++ {
		if err := step(p.Steps[i]); err != nil {
			return led, err
		}
		removed = true
	}
	if p.Lab == nil {
		*led = ledger.Ledger{Lab: led.Lab, Mark: led.Mark, Host: led.Host, File: led.File}
		return led, nil
	}
	next := record(p, led, opt.Host)
	if removed || i < len(p.Steps) || !led.Complete || next.File != led.File {
		if err := w.Write(next); err != nil {
			return led, err
		}
	}
	led = next
	var starts []Step
	for ; i < len(p.Steps); i++ {
		if p.Steps[i].Op == OpStartProcess {
			starts = append(starts, p.Steps[i])
			continue
		}
		if err := step(p.Steps[i]); err != nil {
			return led, err
		}
	}
	if f, ok := ex.(interface{ Flush() error }); ok {
		// Requests an Executor queued fail here, if at all.
		if err := f.Flush(); err != nil {
			return led, err
		}
	}
	if len(starts) > 0 {
		if stopped(opt.Stop) {
			return led, ErrInterrupted
		}
		if err := startAll(starts, ex, w, led, oldProcs); err != nil {
			return led, err
		}
		done += len(starts)
		if opt.Progress != nil {
			opt.Progress(done, total)
		}
	}
	led.Complete = true
	return led, w.Write(led)
}

// record is the ledger once the plan has run: exactly the lab's nodes and
// links, the host sysctls it set with the values to restore, and the
// processes that keep running. Apply writes it before creating anything.
func record(p *Plan, old *ledger.Ledger, host ledger.NSID) *ledger.Ledger {
	l := p.Lab
	led := &ledger.Ledger{Lab: l.Name, File: l.File, Mark: p.Mark, Host: host}
	if g := l.guard(); g != nil {
		led.Guard = g.Table
		led.VXLAN = &ledger.VXLAN{Port: g.Port, IPv6: l.Here.Address.Is6()}
		for _, a := range g.Allow {
			led.VXLAN.Allow = append(led.VXLAN.Allow, a.String())
		}
	}
	if l.Here != nil {
		led.HostName = l.Here.Name
	}
	if old.Host != (ledger.NSID{}) {
		led.Host = old.Host
	}
	// Exactly sized: at 10,000 nodes the links are 2 MB, held until up
	// returns.
	links := 0
	for _, n := range l.Nodes {
		links += len(n.Interfaces)
	}
	led.Nodes = make([]ledger.Node, 0, len(l.Nodes))
	led.Links = make([]ledger.Link, 0, links)
	for _, n := range l.Nodes {
		led.Nodes = append(led.Nodes, ledger.Node{Name: n.Name, Netns: n.Netns})
		for _, i := range n.Interfaces {
			lk := ledger.Link{Node: n.Name, Netns: n.Netns, Name: i.Name, Kind: i.Kind, MAC: i.MAC.String()}
			if i.Peer != nil {
				lk.Peer = i.Peer.Node.Name + ":" + i.Peer.Name
			}
			if i.Kind == KindVXLAN {
				lk.VNI = i.Link.VNI
			}
			led.Links = append(led.Links, lk)
		}
		if !n.IsHost() {
			continue
		}
		for _, sc := range n.Sysctls {
			if sc.Iface != nil {
				// A key of a host end the lab makes goes with it.
				continue
			}
			e := ledger.Sysctl{Node: n.Name, Key: sc.Key, New: sc.Value}
			if i := slices.IndexFunc(old.Sysctls, func(o ledger.Sysctl) bool { return o.Key == sc.Key }); i >= 0 {
				// The value from before the first up is the one to
				// restore.
				e.Old = old.Sysctls[i].Old
			} else if v, ok := p.Old[sc.Key]; ok {
				e.Old = v
			} else {
				e.Old = sc.Value
			}
			led.Sysctls = append(led.Sysctls, e)
		}
	}
	// Processes: those that keep running (not stopped, not restarted).
	restart := map[[2]any]bool{}
	for _, s := range p.Steps {
		if s.Op == OpStartProcess {
			restart[[2]any{s.Node.Name, int(s.Index)}] = true
		}
	}
	for _, pr := range old.Procs {
		if restart[[2]any{pr.Node, pr.Index}] {
			continue
		}
		n := l.Node(pr.Node)
		if n == nil || n.Netns != pr.Netns || pr.Index >= len(n.Processes) || !slices.Equal(n.Processes[pr.Index].Argv, pr.Argv) {
			continue
		}
		led.Procs = append(led.Procs, pr)
	}
	// Runtime faults, and the processes that keep them, are not the
	// file's: up leaves them as they are.
	led.Faults, led.Partition = old.Faults, old.Partition
	// The hosts files are synced after the plan has run (syncHosts).
	led.Files = old.Files
	for _, pr := range old.Procs {
		if pr.Role != "" {
			led.Procs = append(led.Procs, pr)
		}
	}
	return led
}

// startAll starts the processes behind their gates, records them all in one
// ledger write, and only then lets them run.
func startAll(steps []Step, ex Executor, w LedgerWriter, led *ledger.Ledger, old []ledger.Proc) error {
	var started []*Started
	abort := func() {
		for _, s := range started {
			s.Abort()
		}
	}
	for _, s := range steps {
		st, err := ex.Start(s)
		if err != nil {
			abort()
			return err
		}
		started = append(started, st)
	}
	for i, s := range steps {
		st := started[i]
		if err := st.Ready(); err != nil {
			started = slices.Delete(started, i, i+1)
			abort()
			return &ProcError{Op: "start", Node: s.Node.Name, Argv: s.Node.Processes[s.Index].Argv, Err: err}
		}
		argv := s.Node.Processes[s.Index].Argv
		pr := ledger.Proc{
			Node: s.Node.Name, Netns: s.Node.Netns, Index: int(s.Index), Argv: argv,
			PID: st.PID, Start: st.Start, Log: st.Log, Reaper: st.Reaper, ReaperStart: st.ReaperStart,
		}
		if i := slices.IndexFunc(old, func(o ledger.Proc) bool {
			return o.Role == "" && o.Node == pr.Node && o.Index == pr.Index && slices.Equal(o.Argv, argv)
		}); i >= 0 {
			// The same process again: it had died (or its namespace was
			// made anew).
			pr.Restarts = old[i].Restarts + 1
		}
		led.Procs = append(led.Procs, pr)
	}
	if err := w.Write(led); err != nil {
		abort()
		return err
	}
	var errs []error
	for i, s := range started {
		if err := s.Release(); err != nil {
			n := steps[i].Node
			errs = append(errs, &ProcError{Op: "start", Node: n.Name, Argv: n.Processes[steps[i].Index].Argv, Err: err})
		}
	}
	return errors.Join(errs...)
}

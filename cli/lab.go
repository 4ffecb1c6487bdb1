package cli

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nsnet/nsnet/internal/echo"
	"github.com/nsnet/nsnet/lab"
	"github.com/nsnet/nsnet/lab/faults"
)

// lab runs the lab commands (up, down, plan, status, labs, exec). The work is
// in package lab; this only reads the arguments and prints.
func (e *Env) lab(c Command) (int, error) {
	// Labs of thousands of nodes make garbage fast (netlink replies, the
	// YAML tree): a soft limit keeps nsnet's footprint near what it really
	// holds instead of twice that. GOMEMLIMIT, when set, is the user's.
	limit := os.Getenv("GOMEMLIMIT") == ""
	if limit {
		debug.SetMemoryLimit(memoryLimit(0, 0))
	}
	opt := lab.Options{Netns: e.Netns, StateDir: e.StateDir, EtcNetns: e.EtcNetns, Exe: e.Exe, Log: e.Stderr, Inherited: e.Inherited, Host: c.Flags["--host"]}
	args := c.Args
	switch c.Object {
	case "plan", "up":
		if limit {
			if fi, err := os.Stat(args[0]); err == nil {
				debug.SetMemoryLimit(memoryLimit(fi.Size(), 0))
			}
		}
		l, err := lab.Load(args[0])
		if err != nil {
			return 1, err
		}
		if limit {
			debug.SetMemoryLimit(memoryLimit(0, labObjects(l)))
		}
		if c.Object == "plan" {
			p, err := lab.PlanFor(l, opt)
			if err != nil {
				return 1, err
			}
			fr, err := faults.SyncFile(opt, l, faults.SyncOptions{DryRun: true})
			if err != nil {
				return 1, err
			}
			if c.Opts.JSON {
				r := planReport(p)
				r.Notes = append(r.Notes, fr.Notes...)
				r.Commands = append(r.Commands, fr.Lines...)
				if fr.Made+fr.Cleared > 0 {
					r.Faults = &faultCounts{Impair: fr.Made, Clear: fr.Cleared}
				}
				return 0, writeJSON(e.Stdout, r)
			}
			if err := p.Write(e.Stdout); err != nil {
				return 1, err
			}
			return 0, writeFilePlan(e.Stdout, fr)
		}
		done := e.progress("up " + l.Name)
		opt.Progress = done.update
		stop, release := interrupts()
		opt.Stop = stop
		res, err := lab.Up(l, opt)
		release()
		done.finish()
		if errors.Is(err, lab.ErrInterrupted) {
			return 130, fmt.Errorf("up %s interrupted after %s: the lab is incomplete (nsnet labs shows it so); "+
				"run \"nsnet up %s\" to finish it, or \"nsnet down %s\" to undo it", l.Name, done.steps(), args[0], l.Name)
		}
		if err != nil {
			return 1, err
		}
		printNotes(e, res.Plan)
		fr, err := faults.SyncFile(opt, l, faults.SyncOptions{Ledger: res.Ledger})
		if err != nil {
			return 1, fmt.Errorf("up %s: the lab is up, its faults are not: %w", l.Name, err)
		}
		if c.Opts.JSON {
			sum := summary(res.Plan)
			if fr.Made+fr.Cleared > 0 {
				sum = strings.TrimPrefix(sum+"; "+faultSummary(fr), "; ")
			}
			return 0, writeJSON(e.Stdout, labResult{Lab: l.Name, State: "up", Changed: !res.Plan.Empty() || fr.Made+fr.Cleared > 0, Summary: sum, Notes: append(notes(res.Plan), fr.Notes...)})
		}
		for _, n := range fr.Notes {
			fmt.Fprintln(e.Stderr, "nsnet: note:", n)
		}
		switch {
		case res.Plan.Empty() && fr.Made+fr.Cleared == 0:
			fmt.Fprintf(e.Stdout, "lab %s is up to date: no changes\n", l.Name)
		case res.Plan.Empty():
			fmt.Fprintf(e.Stdout, "lab %s is up: %s\n", l.Name, faultSummary(fr))
		case fr.Made+fr.Cleared > 0:
			fmt.Fprintf(e.Stdout, "lab %s is up: %s; %s\n", l.Name, res.Plan.Summary(), faultSummary(fr))
		default:
			fmt.Fprintf(e.Stdout, "lab %s is up: %s\n", l.Name, res.Plan.Summary())
		}
		return 0, nil
	case "down":
		name, err := lab.NameOf(args[0], opt)
		if err != nil {
			return 1, err
		}
		done := e.progress("down " + name)
		opt.Progress = done.update
		stop, release := interrupts()
		opt.Stop = stop
		res, err := lab.Down(name, opt)
		release()
		done.finish()
		if errors.Is(err, lab.ErrInterrupted) {
			if done.done == 0 {
				return 130, fmt.Errorf("down %s interrupted before it removed anything: the lab is as it was; "+
					"run \"nsnet down %s\" to take it down", name, name)
			}
			return 130, fmt.Errorf("down %s interrupted after %s: the lab is partly removed; "+
				"run \"nsnet down %s\" again to finish", name, done.steps(), name)
		}
		if err != nil {
			return 1, err
		}
		printNotes(e, res.Plan)
		if c.Opts.JSON {
			r := labResult{Lab: name, State: "down", Changed: !res.Plan.Empty(), Summary: summary(res.Plan), Notes: notes(res.Plan)}
			switch {
			case res.TakenDown:
				r.Summary = "another nsnet took it down while this one waited"
			case res.NoLab:
				r.State, r.Summary, r.Labs = "none", "no lab of this name exists here", res.Labs
			}
			return 0, writeJSON(e.Stdout, r)
		}
		switch {
		case res.TakenDown:
			fmt.Fprintf(e.Stdout, "lab %s is down: another nsnet took it down while this one waited\n", name)
		case res.NoLab:
			// Exit 0 (down is idempotent), but a mistyped name must
			// not pass for a lab taken down.
			fmt.Fprintf(e.Stdout, "no lab named %s exists here: nothing to take down (%s)\n", name, labsHere(res.Labs))
		case res.Plan.Empty():
			fmt.Fprintf(e.Stdout, "lab %s is down: nothing was left to remove\n", name)
		default:
			fmt.Fprintf(e.Stdout, "lab %s is down: %s\n", name, res.Plan.Summary())
		}
		return 0, nil
	case "status":
		name := ""
		if len(args) == 1 {
			var err error
			if name, err = lab.NameOf(args[0], opt); err != nil {
				return 1, err
			}
		}
		st, err := lab.Status(name, opt)
		if err != nil {
			return 1, err
		}
		if len(c.Argv) > 0 {
			one, err := lab.FilterNodes(st[0], c.Argv)
			if err != nil {
				return 1, err
			}
			return 0, lab.WriteNodeStatus(e.Stdout, one, c.Opts.JSON)
		}
		return 0, lab.WriteStatus(e.Stdout, st, c.Opts.JSON)
	case "labs":
		ls, err := lab.Labs(opt)
		if err != nil {
			return 1, err
		}
		return 0, lab.WriteLabs(e.Stdout, ls, c.Opts.JSON)
	case "exec":
		if c.has(labReaperFlag) {
			// The parent of a lab process, which keeps its exit status.
			if err := lab.Reaper(args[0], args[1], c.Argv); err != nil {
				return 1, fmt.Errorf("lab process reaper: %w", err)
			}
			return 0, nil
		}
		if c.has(labGateFlag) {
			// A lab process waiting to be recorded before it runs.
			err := lab.Gate(args[0], args[1], e.EtcNetns, c.Argv)
			return 127, fmt.Errorf("lab process: %w", err)
		}
		err := lab.Exec(args[0], args[1], c.Argv, opt)
		// Exec only returns on failure, possibly inside the namespace:
		// report and exit.
		what := "a shell"
		if len(c.Argv) > 0 {
			what = echo.Clip(c.Argv[0])
		}
		return 1, fmt.Errorf("exec %s %s %s: %w", echo.Clip(args[0]), echo.Clip(args[1]), what, err)
	}
	return 2, fmt.Errorf("%s: not implemented yet", c.Object)
}

// labGateFlag marks the exec that nsnet up starts for a lab process: it
// waits until the process is recorded, then becomes it.
const labGateFlag = lab.GateArg

// labReaperFlag marks the exec that starts a lab process's gate and waits
// for the process, to keep its exit status.
const labReaperFlag = lab.ReaperArg

// labsHere names the labs that exist, for a message about one that does
// not: at most ten.
func labsHere(labs []string) string {
	const most = 10
	switch {
	case len(labs) == 0:
		return "there are no labs here"
	case len(labs) > most:
		return fmt.Sprintf("labs here: %s and %d more (nsnet labs)", strings.Join(labs[:most], ", "), len(labs)-most)
	}
	return "labs here: " + strings.Join(labs, ", ")
}

// labResult is up's and down's JSON output.
type labResult struct {
	Lab     string   `json:"lab"`
	State   string   `json:"state"` // up, down, or none (down of a name that is no lab)
	Changed bool     `json:"changed"`
	Summary string   `json:"summary,omitempty"`
	Notes   []string `json:"notes,omitempty"`
	Labs    []string `json:"labs,omitempty"` // state none: the labs there are
}

// planJSON is plan's JSON output: the commands plan prints, one a string.
type planJSON struct {
	Lab      string   `json:"lab"`
	Summary  string   `json:"summary,omitempty"`
	Notes    []string `json:"notes,omitempty"`
	Commands []string `json:"commands"`
	// Faults counts the ends whose file faults up would make or clear;
	// their commands are among Commands, after the lab's.
	Faults *faultCounts `json:"faults,omitempty"`
}

type faultCounts struct {
	Impair int `json:"impair"`
	Clear  int `json:"clear"`
}

func planReport(p *lab.Plan) planJSON {
	r := planJSON{Lab: p.Name, Summary: summary(p), Notes: notes(p), Commands: []string{}}
	for _, s := range p.Steps {
		r.Commands = append(r.Commands, s.Lines(p.Mark)...)
	}
	return r
}

func summary(p *lab.Plan) string {
	if p.Empty() {
		return ""
	}
	return p.Summary()
}

func notes(p *lab.Plan) []string { return p.Notes }

func printNotes(e *Env, p *lab.Plan) {
	for _, n := range p.Notes {
		fmt.Fprintln(e.Stderr, "nsnet: note:", n)
	}
}

// memoryLimit is the Go heap's soft limit for a lab command that reads a
// lab file of fileSize bytes or holds a resolved lab of objects nodes,
// interfaces and routes. The collector works hard only when the live heap
// comes near the limit, so the limit stays about 1.6 times what such a lab
// keeps live: a lab of 10,000 nodes (a 2.8 MB file, 60,000 objects) keeps up
// to 28 MB live and gets 44 MiB (RSS 54 MB with the binary's 14 MB; 40 MiB
// made up's CPU time 1.7x, 56 MiB gave 66 MB RSS). Reading the file keeps
// about 10 bytes live per byte of it; the resolved lab, its plan and ledger
// about 470 bytes per object. Smaller labs never come near the floor; bigger
// ones are not starved of headroom.
func memoryLimit(fileSize int64, objects int) int64 {
	return max(memoryLimitFloor, 16*fileSize, 750*int64(objects))
}

const memoryLimitFloor = 44 << 20

// labObjects counts what memoryLimit scales with.
func labObjects(l *lab.Lab) int {
	n := len(l.Nodes)
	for _, nd := range l.Nodes {
		n += len(nd.Interfaces) + len(nd.Routes)
	}
	return n
}

// progressLine shows how far a long up or down is, on a terminal only, at
// most ten times a second.
type progressLine struct {
	f           *os.File
	what        string
	last        time.Time
	shown       bool
	done, total int
}

func (e *Env) progress(what string) *progressLine {
	p := &progressLine{what: what}
	if f, ok := e.Stderr.(*os.File); ok {
		if _, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS); err == nil {
			p.f = f
		}
	}
	return p
}

func (p *progressLine) update(done, total int) {
	p.done, p.total = done, total
	if p.f == nil || total < 200 || time.Since(p.last) < 100*time.Millisecond && done < total {
		return
	}
	p.last = time.Now()
	p.shown = true
	fmt.Fprintf(p.f, "\r\033[Knsnet: %s: %d/%d steps", p.what, done, total)
}

// steps says how far the run got: "120/400 steps".
func (p *progressLine) steps() string {
	if p.total == 0 {
		return "0 steps"
	}
	return fmt.Sprintf("%d/%d steps", p.done, p.total)
}

// interrupts turns the first Ctrl-C (or SIGTERM) into a closed channel, so
// that up and down stop between two steps and say where they are; a second
// one ends nsnet at once, as it would have without this. release stops
// listening.
func interrupts() (stop <-chan struct{}, release func()) {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, unix.SIGTERM)
	ch := make(chan struct{})
	quit := make(chan struct{})
	go func() {
		select {
		case <-sigs:
			signal.Stop(sigs)
			close(ch)
		case <-quit:
		}
	}()
	return ch, func() {
		signal.Stop(sigs)
		close(quit)
	}
}

func (p *progressLine) finish() {
	if p.shown {
		fmt.Fprint(p.f, "\r\033[K")
	}
}

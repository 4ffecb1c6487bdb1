package cli

import (
	"errors"
	"io/fs"
	"os"

	"github.com/nsnet/nsnet/lab"
	"github.com/nsnet/nsnet/lab/graph"
	"github.com/nsnet/nsnet/lab/ledger"
)

// graph prints a lab's picture (nsnet graph FILE|LAB), from its file, with
// what drifted marked when the lab is up.
func (e *Env) graph(c Command) (int, error) {
	format := c.Flags["--format"]
	if format == "" {
		format = "dot"
	}
	if format != "dot" && format != "mermaid" && format != "svg" {
		return 2, usagef("graph", "--format %q: must be dot, mermaid or svg", format)
	}
	opt := lab.Options{Netns: e.Netns, StateDir: e.StateDir, EtcNetns: e.EtcNetns, Exe: e.Exe, Inherited: e.Inherited}
	target := c.Args[0]
	var l *lab.Lab
	if fi, err := os.Stat(target); err == nil && fi.Mode().IsRegular() {
		if l, err = lab.Load(target); err != nil {
			return 1, err
		}
	} else {
		name, err := lab.NameOf(target, opt)
		if err != nil {
			return 1, err
		}
		led, err := ledger.Store{Dir: opt.StateDir}.Read(name)
		if errors.Is(err, fs.ErrNotExist) || (err == nil && led.File == "") {
			return 1, errors.New("graph: no lab file named " + target + " and no lab of that name is up")
		}
		if err != nil {
			return 1, err
		}
		if l, err = lab.Load(led.File); err != nil {
			return 1, err
		}
	}
	var drift *graph.Drift
	st, err := lab.Status(l.Name, opt)
	var notUp *lab.NotUpError
	switch {
	case errors.As(err, &notUp):
	case err != nil:
		return 1, err
	case len(st) == 1 && st[0].State != lab.StateIncomplete && st[0].State != lab.StateBusy:
		drift = graph.DriftOf(st[0])
	}
	g := graph.Of(l, drift)
	switch format {
	case "mermaid":
		return 0, g.WriteMermaid(e.Stdout)
	case "svg":
		return 0, g.WriteSVG(e.Stdout)
	}
	return 0, g.WriteDOT(e.Stdout)
}

package cli

import (
	"bytes"
	"errors"
	"fmt"
	"github.com/nsnet/nsnet/lab"
	"github.com/nsnet/nsnet/lab/ledger"
	"strings"

	"github.com/nsnet/nsnet/lab/topo"
)

// newTopology prints a generated lab file (nsnet new SHAPE ARGS...).
func (e *Env) newTopology(c Command) (int, error) {
	shape, args := c.Args[0], c.Args[1:]
	if name := c.Flags["--name"]; name != "" && !ledger.ValidName(name) {
		return 2, usagef("new", "--name %q: %s", name, ledger.NameRule)
	}
	t, err := topo.New(shape, args, c.Flags["--name"])
	if errors.Is(err, topo.ErrUsage) {
		return 2, usagef("new", "%s", strings.TrimPrefix(err.Error(), topo.ErrUsage.Error()+": "))
	}
	if err != nil {
		return 1, err
	}
	cmd := "nsnet new " + strings.Join(append([]string{shape}, args...), " ")
	if name := c.Flags["--name"]; name != "" {
		cmd += " --name " + name
	}
	// Valid as written: the file goes out only once the lab parser took it
	// (a --name that is no lab name is refused here, not at up).
	var b bytes.Buffer
	if err := t.Write(&b, cmd); err != nil {
		return 1, err
	}
	if _, err := lab.Parse(t.Name+".yaml", b.Bytes()); err != nil {
		return 1, fmt.Errorf("new: the generated file does not parse (a bug): %w", err)
	}
	_, err = e.Stdout.Write(b.Bytes())
	return 0, err
}

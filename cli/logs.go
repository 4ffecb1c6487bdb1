package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nsnet/nsnet/internal/echo"
	"github.com/nsnet/nsnet/lab"
	"github.com/nsnet/nsnet/lab/ledger"
)

// logs prints the output of a node's processes (their logs under the state
// directory), and with -f follows them until interrupted, as tail -f does.
func (e *Env) logs(c Command) (int, error) {
	name, node := c.Args[0], c.Args[1]
	led, err := ledger.Store{Dir: e.StateDir}.Read(name)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return 1, &lab.NotUpError{Lab: name, Err: err}
		}
		return 1, err
	}
	if err := lab.CheckHost(led, c.Flags["--host"]); err != nil {
		return 1, err
	}
	if led.Node(node) == nil {
		return 1, lab.NoNode(led, node)
	}
	var procs []ledger.Proc
	for _, p := range led.Procs {
		if p.Node == node && p.Role == "" && p.Log != "" {
			procs = append(procs, p)
		}
	}
	if len(c.Args) > 2 {
		want := c.Args[2]
		var keep []ledger.Proc
		for _, p := range procs {
			if strconv.Itoa(p.Index) == want || len(p.Argv) > 0 && filepath.Base(p.Argv[0]) == want {
				keep = append(keep, p)
			}
		}
		if len(keep) == 0 {
			return 1, fmt.Errorf("node %s of lab %s has no process %s (processes are named by their index from 0, or by their program; see nsnet status %s %s)", node, name, echo.Quote(want), name, node)
		}
		procs = keep
	}
	if len(procs) == 0 {
		fmt.Fprintf(e.Stderr, "node %s of lab %s runs no processes\n", node, name)
		return 0, nil
	}
	offsets := make([]int64, len(procs))
	last := -1
	show := func(i int) error {
		f, err := os.Open(procs[i].Log)
		if err != nil {
			return err
		}
		defer f.Close()
		if _, err := f.Seek(offsets[i], io.SeekStart); err != nil {
			return err
		}
		head := len(procs) > 1
		var buf [32 << 10]byte
		for {
			n, err := f.Read(buf[:])
			if n > 0 {
				if head && last != i {
					fmt.Fprintf(e.Stdout, "==> %s process %d: %s <==\n", node, procs[i].Index, quoteArgs(procs[i].Argv))
					last = i
				}
				e.Stdout.Write(buf[:n])
				offsets[i] += int64(n)
			}
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
		}
	}
	for i := range procs {
		if err := show(i); err != nil {
			return 1, err
		}
	}
	if !c.has("-f") {
		return 0, nil
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, unix.SIGTERM)
	defer signal.Stop(sig)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-sig:
			return 0, nil
		case <-tick.C:
		}
		for i := range procs {
			if err := show(i); err != nil {
				return 1, err
			}
		}
	}
}

// quoteArgs shows a command line, each argument cut short when long.
func quoteArgs(argv []string) string {
	shown := make([]string, len(argv))
	for i, a := range argv {
		shown[i] = echo.Clip(a)
	}
	return strings.Join(shown, " ")
}

package cli

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nsnet/nsnet/internal/echo"
	"github.com/nsnet/nsnet/internal/sandbox"
	"github.com/nsnet/nsnet/kernel"
	"github.com/nsnet/nsnet/netns"
	"github.com/nsnet/nsnet/probe"
)

// demoInsideArg marks the half of the demo that runs inside its sandbox.
const demoInsideArg = "--inside-sandbox"

// demoStep is one command of the walkthrough and what it must show.
type demoStep struct {
	say      string   // explanation printed before the command
	args     []string // nsnet arguments
	fail     bool     // the command must fail
	want     []string // substrings the output must contain
	wantNot  []string // substrings it must not contain
	start    bool     // start in the background and leave running
	stopLast bool     // stop the last background command instead
	settle   []string // wait until these links are gone (kernel cleanup is asynchronous)
}

func demoSteps() []demoStep {
	const url = "http://127.0.0.1:8080/"
	return []demoStep{
		{say: "A veth pair is two interfaces joined by a cable.", args: []string{"link", "add", "veth0", "type", "veth", "peer", "name", "veth1"}},
		{args: []string{"-br", "link"}, want: []string{"veth1@veth0", "veth0@veth1", "DOWN", "M-DOWN"}},
		{say: "A network namespace is a separate network stack.", args: []string{"netns", "add", "direct_netns"}},
		{args: []string{"netns", "list"}, want: []string{"direct_netns"}},
		{say: "Inside it there is only a loopback, and it is down.", args: []string{"netns", "exec", "direct_netns", "nsnet", "-br", "link"}, want: []string{"lo ", "DOWN"}, wantNot: []string{"veth"}},
		{args: []string{"netns", "exec", "direct_netns", "nsnet", "link", "set", "lo", "up"}},
		{say: "Each namespace has its own loopback: a server inside...", args: []string{"netns", "exec", "direct_netns", "nsnet", "serve", "http", "127.0.0.1:8080"}, start: true},
		{say: "...cannot be reached from the default namespace's 127.0.0.1,", args: []string{"fetch", url}, fail: true, want: []string{"connection refused"}},
		{say: "but answers inside its own namespace.", args: []string{"netns", "exec", "direct_netns", "nsnet", "fetch", url}, want: []string{probe.HTTPBody}},
		{stopLast: true},
		{say: "The same holds the other way round.", args: []string{"serve", "http", "127.0.0.1:8080"}, start: true},
		{args: []string{"fetch", url}, want: []string{probe.HTTPBody}},
		{args: []string{"netns", "exec", "direct_netns", "nsnet", "fetch", url}, fail: true, want: []string{"connection refused"}},
		{stopLast: true},
		{say: "Move one end of the cable into the namespace.", args: []string{"link", "set", "veth1", "netns", "direct_netns"}},
		{args: []string{"-br", "link"}, want: []string{"veth0@if"}, wantNot: []string{"veth1"}},
		{args: []string{"-n", "direct_netns", "-br", "link"}, want: []string{"veth1@if"}},
		{say: "Give both ends an address.", args: []string{"a", "add", "10.200.0.2/24", "dev", "veth0"}},
		{args: []string{"netns", "exec", "direct_netns", "nsnet", "a", "add", "10.200.0.3/24", "dev", "veth1"}},
		{say: "The links are still down, so there is no route yet.", args: []string{"netns", "exec", "direct_netns", "nsnet", "ping", "-c", "1", "10.200.0.2"}, fail: true, want: []string{"Network is unreachable"}},
		{say: "Bring both ends up.", args: []string{"link", "set", "veth0", "up"}},
		{args: []string{"-n", "direct_netns", "link", "set", "veth1", "up"}},
		{say: "Now packets cross, both ways.", args: []string{"ping", "-c", "1", "-W", "2", "10.200.0.3"}, want: []string{"64 bytes from 10.200.0.3: icmp_seq=1", "1 received"}},
		{args: []string{"netns", "exec", "direct_netns", "nsnet", "ping", "-c", "1", "-W", "2", "10.200.0.2"}, want: []string{"64 bytes from 10.200.0.2: icmp_seq=1", "1 received"}},
		{say: "Deleting the namespace destroys veth1, and with it veth0.", args: []string{"netns", "del", "direct_netns"}},
		{args: []string{"-br", "link"}, wantNot: []string{"veth0"}, settle: []string{"veth0"}},
	}
}

// demo replays the walkthrough in a fresh sandbox, so it needs no root and
// leaves nothing behind.
func (e *Env) demo() (int, error) {
	return sandbox.Run([]string{e.Exe, "demo", demoInsideArg}, netns.Inherited{}, e.Stdin, e.Stdout, e.Stderr)
}

func (e *Env) demoInside() (int, error) {
	fmt.Fprintln(e.Stdout, "# nsnet demo: the iproute2 walkthrough, run by nsnet in a private sandbox")
	var running []*exec.Cmd
	defer func() {
		for _, c := range running {
			c.Process.Signal(unix.SIGTERM)
			c.Wait()
		}
	}()
	for i, s := range demoSteps() {
		if s.stopLast {
			c := running[len(running)-1]
			running = running[:len(running)-1]
			c.Process.Signal(unix.SIGTERM)
			c.Wait()
			continue
		}
		if s.say != "" {
			fmt.Fprintf(e.Stdout, "\n# %s\n", s.say)
		}
		line := "$ nsnet " + strings.Join(s.args, " ")
		if s.start {
			line += " &"
		}
		fmt.Fprintln(e.Stdout, line)
		cmd := exec.Command(e.Exe, s.args...)
		// The demo's own steps call "nsnet" inside netns exec: use this binary.
		cmd.Env = append(cmd.Environ(), "PATH="+filepath.Dir(e.Exe)+":"+os.Getenv("PATH"))
		if s.start {
			cmd.Stdout, cmd.Stderr = nil, nil
			if err := cmd.Start(); err != nil {
				return 1, err
			}
			running = append(running, cmd)
			if err := e.waitHTTP(s.args); err != nil {
				return 1, fmt.Errorf("demo step %d: server did not start: %w", i+1, err)
			}
			continue
		}
		if len(s.settle) > 0 {
			e.waitGone(s.settle)
		}
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		e.Stdout.Write(out.Bytes())
		if s.fail != (err != nil) {
			return 1, fmt.Errorf("demo step %d (%s) did not behave as the walkthrough says: %v", i+1, line, err)
		}
		for _, w := range s.want {
			if !strings.Contains(out.String(), w) {
				return 1, echo.Errorf("demo step %d (%s): expected %q in its output", i+1, line, w)
			}
		}
		for _, w := range s.wantNot {
			if strings.Contains(out.String(), w) {
				return 1, echo.Errorf("demo step %d (%s): did not expect %q in its output", i+1, line, w)
			}
		}
	}
	fmt.Fprintln(e.Stdout, "\n# done: every step behaved as the walkthrough says; the sandbox is gone with everything in it.")
	return 0, nil
}

// waitHTTP waits until the server a step started answers.
func (e *Env) waitHTTP(args []string) error {
	ns, err := netns.Current()
	if err != nil {
		return err
	}
	defer ns.Close()
	if len(args) > 2 && args[0] == "netns" {
		n, err := e.Netns.Open(args[2])
		if err != nil {
			return err
		}
		defer n.Close()
		ns = n
	}
	addr := args[len(args)-1]
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, _, err := probe.Fetch(context.Background(), ns, "http://"+addr+"/", time.Second)
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitGone re-lists links until none of names is present (at most 5s).
func (e *Env) waitGone(names []string) {
	ns, h, err := kernel.OpenCurrent()
	if err != nil {
		return
	}
	defer ns.Close()
	defer h.Close()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		gone := true
		links, err := h.Links()
		if err != nil {
			return
		}
		for _, l := range links {
			for _, n := range names {
				if l.Name == n {
					gone = false
				}
			}
		}
		if gone {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

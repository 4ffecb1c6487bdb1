package cli

import (
	"fmt"
	"os/exec"
	"strconv"
	"strings"

	"github.com/nsnet/nsnet/bench"
	"github.com/nsnet/nsnet/internal/sandbox"
	"github.com/nsnet/nsnet/kernel"
	"github.com/nsnet/nsnet/netns"
)

const benchInsideArg = "--inside-sandbox"

// bench compares nsnet with iproute2 and a tuned netlink loop, always in a
// fresh sandbox.
func (e *Env) bench(c Command) (int, error) {
	flags := benchFlagArgs(c)
	if c.has(benchInsideArg) {
		return e.benchInside(flags, c.Opts.JSON)
	}
	if _, err := parseBenchArgs(flags); err != nil {
		return 2, err
	}
	args := []string{e.Exe}
	if c.Opts.JSON {
		args = append(args, "-j")
	}
	args = append(args, "bench", benchInsideArg)
	return sandbox.Run(append(args, flags...), netns.Inherited{}, e.Stdin, e.Stdout, e.Stderr)
}

// benchFlagArgs turns bench's parsed options back into arguments, for its
// own parser and for the run inside the sandbox.
func benchFlagArgs(c Command) []string {
	var args []string
	for _, f := range []string{"--mode", "--n", "--reps", "--runners", "--each-max", "--ping", "--exec", "--hosts"} {
		v, ok := c.Flags[f]
		switch {
		case !ok:
		case f == "--ping":
			args = append(args, f)
		default:
			args = append(args, f, v)
		}
	}
	return args
}

// benchArgs are bench's parsed arguments.
type benchArgs struct {
	bench.Options
	ping bool
	exec int // netns exec iterations; 0: skip
	// hosts is the node count of the benchmark of a lab across machines
	// (bench --hosts N), which then runs alone; 0: the usual workloads.
	hosts int
}

func parseBenchArgs(args []string) (benchArgs, error) {
	var ba benchArgs
	err := ba.parse(args)
	return ba, err
}

func (ba *benchArgs) parse(args []string) error {
	opt := &ba.Options
	*opt = bench.Options{Reps: 3, SkipEachAbove: 1000}
	modes := []bench.Mode{bench.Bridge, bench.PTP}
	ns := []int{10, 100}
	ping := false
	for len(args) > 0 {
		a := args[0]
		val := func() (string, error) {
			if len(args) < 2 {
				return "", usagef("bench", "%s needs a value", a)
			}
			v := args[1]
			args = args[2:]
			return v, nil
		}
		switch a {
		case "--mode":
			v, err := val()
			if err != nil {
				return err
			}
			modes = nil
			for _, m := range strings.Split(v, ",") {
				if m != string(bench.Bridge) && m != string(bench.PTP) {
					return usagef("bench", "--mode %q: must be bridge, ptp or both (bridge,ptp)", m)
				}
				modes = append(modes, bench.Mode(m))
			}
		case "--n":
			v, err := val()
			if err != nil {
				return err
			}
			ns = nil
			for _, s := range strings.Split(v, ",") {
				n, err := strconv.Atoi(s)
				if err != nil || n < 1 || n > 60000 {
					return usagef("bench", "--n %q: must be node counts from 1 to 60000, e.g. 10,100,1000", v)
				}
				ns = append(ns, n)
			}
		case "--reps":
			v, err := val()
			if err != nil {
				return err
			}
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 100 {
				return usagef("bench", "--reps %q: must be 1-100", v)
			}
			opt.Reps = n
		case "--runners":
			v, err := val()
			if err != nil {
				return err
			}
			opt.Runners = strings.Split(v, ",")
		case "--each-max":
			v, err := val()
			if err != nil {
				return err
			}
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return usagef("bench", "--each-max %q: must be a node count", v)
			}
			opt.SkipEachAbove = n
		case "--ping":
			ping = true
			args = args[1:]
		case "--hosts":
			v, err := val()
			if err != nil {
				return err
			}
			n, err := strconv.Atoi(v)
			if err != nil || n < 6 || n > 3000 || n%2 != 0 {
				return usagef("bench", "--hosts %q: must be an even node count from 6 to 3000", v)
			}
			ba.hosts = n
		case "--exec":
			v, err := val()
			if err != nil {
				return err
			}
			n, err := strconv.Atoi(v)
			if err != nil || n < 20 || n > 100000 {
				return usagef("bench", "--exec %q: must be 20-100000 iterations", v)
			}
			ba.exec = n
		default:
			return usagef("bench", "unknown argument %q (bench [--mode bridge,ptp] [--n 10,100,1000] [--reps 3] [--runners ip-each,ip-batch,tuned,nsnet] [--each-max N] [--ping] [--exec ITERATIONS])", a)
		}
	}
	for _, m := range modes {
		for _, n := range ns {
			if m == bench.Bridge && n > bench.MaxBridgeNodes {
				continue // a bridge holds at most 1023 ports
			}
			opt.Workloads = append(opt.Workloads, bench.Workload{Mode: m, N: n, Prefix: "b"})
		}
	}
	if len(opt.Workloads) == 0 {
		return usagef("bench", "no workload: bridge mode holds at most %d nodes", bench.MaxBridgeNodes)
	}
	opt.Ping = ping
	ba.ping = ping
	return nil
}

func (e *Env) benchInside(args []string, asJSON bool) (int, error) {
	ba, err := parseBenchArgs(args)
	if err != nil {
		return 2, err
	}
	opt := ba.Options
	if ba.hosts > 0 {
		return e.benchHosts(ba, asJSON)
	}
	ipPath, err := exec.LookPath("ip")
	if err != nil && (len(opt.Runners) == 0 || strings.Contains(strings.Join(opt.Runners, ","), "ip-")) {
		return 2, fmt.Errorf("bench: iproute2 (ip) is needed to compare with it: install it, or use --runners tuned,nsnet")
	}
	self, h, err := kernel.OpenCurrent()
	if err != nil {
		return 1, err
	}
	defer self.Close()
	defer h.Close()
	env := &bench.Env{Host: h, Netns: e.Netns, IP: ipPath, Nsnet: e.Exe, StateDir: "/run/nsnet-bench"}
	opt.Progress = e.Stderr
	reports, err := bench.Run(env, opt)
	if err != nil {
		return 1, err
	}
	var ex *bench.ExecResult
	if ba.exec > 0 {
		r, err := bench.Exec(env, ba.exec)
		if err != nil {
			return 1, err
		}
		ex = &r
	}
	if asJSON {
		return 0, bench.WriteJSON(e.Stdout, bench.Results{Workloads: reports, Exec: ex})
	}
	if err := bench.WriteTable(e.Stdout, reports, ba.ping); err != nil {
		return 1, err
	}
	if ex != nil {
		fmt.Fprintf(e.Stdout, "netns exec NS true (median of %d, batches of 20): ip %.0f us, nsnet %.0f us, nsnet/ip %.2f\n", ex.Iterations, ex.IPMicros, ex.NsnetMicro, ex.Ratio)
	}
	return 0, nil
}

// benchHosts runs the benchmark of a lab across machines (bench --hosts N)
// inside the bench's sandbox.
func (e *Env) benchHosts(ba benchArgs, asJSON bool) (int, error) {
	ipPath, err := exec.LookPath("ip")
	if err != nil {
		return 2, fmt.Errorf("bench --hosts: iproute2 (ip) is needed to cable the simulated machines: install it")
	}
	env := &bench.Env{IP: ipPath, Nsnet: e.Exe}
	r, err := bench.Hosts(env, bench.HostsOptions{N: ba.hosts, Reps: ba.Reps, Progress: e.Stderr})
	if err != nil {
		return 1, err
	}
	if asJSON {
		return 0, writeJSON(e.Stdout, r)
	}
	return 0, bench.WriteHosts(e.Stdout, r)
}

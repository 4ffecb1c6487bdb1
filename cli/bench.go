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
	if len(c.Argv) > 0 && c.Argv[0] == benchInsideArg {
		return e.benchInside(c.Argv[1:], c.Opts.JSON)
	}
	if _, _, err := parseBenchArgs(c.Argv); err != nil {
		return 2, err
	}
	args := []string{e.Exe}
	if c.Opts.JSON {
		args = append(args, "-j")
	}
	args = append(args, "bench", benchInsideArg)
	return sandbox.Run(append(args, c.Argv...), e.Stdin, e.Stdout, e.Stderr)
}

func parseBenchArgs(args []string) (bench.Options, bool, error) {
	opt := bench.Options{Reps: 3, SkipEachAbove: 1000}
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
				return opt, false, err
			}
			modes = nil
			for _, m := range strings.Split(v, ",") {
				if m != string(bench.Bridge) && m != string(bench.PTP) {
					return opt, false, usagef("bench", "--mode %q: must be bridge, ptp or both (bridge,ptp)", m)
				}
				modes = append(modes, bench.Mode(m))
			}
		case "--n":
			v, err := val()
			if err != nil {
				return opt, false, err
			}
			ns = nil
			for _, s := range strings.Split(v, ",") {
				n, err := strconv.Atoi(s)
				if err != nil || n < 1 || n > 60000 {
					return opt, false, usagef("bench", "--n %q: must be node counts from 1 to 60000, e.g. 10,100,1000", v)
				}
				ns = append(ns, n)
			}
		case "--reps":
			v, err := val()
			if err != nil {
				return opt, false, err
			}
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 100 {
				return opt, false, usagef("bench", "--reps %q: must be 1-100", v)
			}
			opt.Reps = n
		case "--runners":
			v, err := val()
			if err != nil {
				return opt, false, err
			}
			opt.Runners = strings.Split(v, ",")
		case "--each-max":
			v, err := val()
			if err != nil {
				return opt, false, err
			}
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return opt, false, usagef("bench", "--each-max %q: must be a node count", v)
			}
			opt.SkipEachAbove = n
		case "--ping":
			ping = true
			args = args[1:]
		default:
			return opt, false, usagef("bench", "unknown argument %q (bench [--mode bridge,ptp] [--n 10,100,1000] [--reps 3] [--runners ip-each,ip-batch,tuned,nsnet] [--each-max N] [--ping])", a)
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
		return opt, false, usagef("bench", "no workload: bridge mode holds at most %d nodes", bench.MaxBridgeNodes)
	}
	opt.Ping = ping
	return opt, ping, nil
}

func (e *Env) benchInside(args []string, asJSON bool) (int, error) {
	opt, ping, err := parseBenchArgs(args)
	if err != nil {
		return 2, err
	}
	ipPath, err := exec.LookPath("ip")
	if err != nil && (len(opt.Runners) == 0 || strings.Contains(strings.Join(opt.Runners, ","), "ip-")) {
		return 2, fmt.Errorf("bench: iproute2 (ip) is needed to compare with it: install it, or use --runners tuned,nsnet")
	}
	self, err := netns.Current()
	if err != nil {
		return 1, err
	}
	defer self.Close()
	h, err := kernel.Open(self)
	if err != nil {
		return 1, err
	}
	defer h.Close()
	env := &bench.Env{Host: h, Netns: e.Netns, IP: ipPath, Nsnet: e.Exe, StateDir: "/run/nsnet-bench"}
	opt.Progress = e.Stderr
	reports, err := bench.Run(env, opt)
	if err != nil {
		return 1, err
	}
	if asJSON {
		return 0, bench.WriteJSON(e.Stdout, reports)
	}
	return 0, bench.WriteTable(e.Stdout, reports, ping)
}

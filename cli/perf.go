package cli

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nsnet/nsnet/lab"
	"github.com/nsnet/nsnet/probe"
)

const perfUsage = "usage: nsnet perf LAB FROM TO [-t SECONDS] [-j] | nsnet perf LAB FROM TO --icmp [-c COUNT] [-i SECONDS] [-W SECONDS] [-j]"

// perfArgs are nsnet perf's arguments.
type perfArgs struct {
	lab, from, to string
	host          string // --host: this machine's host in a lab across machines
	icmp          bool
	json          bool
	duration      time.Duration // tcp
	series        probe.SeriesOptions
}

func parsePerfArgs(args []string) (perfArgs, error) {
	pa := perfArgs{duration: 10 * time.Second, series: probe.SeriesOptions{Count: 100, Interval: 10 * time.Millisecond, Timeout: time.Second}}
	var pos []string
	seconds := func(flag, v string, lo, hi float64) (time.Duration, error) {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f < lo || f > hi {
			return 0, usagef("perf", "%s %q: must be seconds from %g to %g", flag, v, lo, hi)
		}
		return time.Duration(f * float64(time.Second)), nil
	}
	set := map[string]bool{}
	for len(args) > 0 {
		a := args[0]
		switch a {
		case "-j", "--json":
			pa.json, args = true, args[1:]
			continue
		case "--icmp":
			pa.icmp, args = true, args[1:]
			continue
		case "--host":
			if len(args) < 2 {
				return pa, usagef("perf", "--host needs a host name (%s)", perfUsage)
			}
			pa.host, args = args[1], args[2:]
			continue
		case "-t", "-c", "-i", "-W":
			if len(args) < 2 {
				return pa, usagef("perf", "%s needs a value (%s)", a, perfUsage)
			}
			v := args[1]
			args = args[2:]
			set[a] = true
			var err error
			switch a {
			case "-t":
				pa.duration, err = seconds(a, v, 0.1, 3600)
			case "-i":
				pa.series.Interval, err = seconds(a, v, 0.00001, 60)
			case "-W":
				pa.series.Timeout, err = seconds(a, v, 0.001, 60)
			case "-c":
				n, cerr := strconv.Atoi(v)
				if cerr != nil || n < 1 || n > 10_000_000 {
					err = usagef("perf", "-c %q: must be a count from 1 to 10000000", v)
				}
				pa.series.Count = n
			}
			if err != nil {
				return pa, err
			}
			continue
		}
		if len(a) > 1 && a[0] == '-' {
			return pa, usagef("perf", "unknown option %q (%s)", a, perfUsage)
		}
		pos, args = append(pos, a), args[1:]
	}
	if len(pos) != 3 {
		return pa, usagef("perf", "expected a lab, a source node and a target (%s)", perfUsage)
	}
	pa.lab, pa.from, pa.to = pos[0], pos[1], pos[2]
	if pa.icmp && set["-t"] {
		return pa, usagef("perf", "-t is for the TCP run; with --icmp the run is -c requests every -i seconds")
	}
	if !pa.icmp && (set["-c"] || set["-i"] || set["-W"]) {
		return pa, usagef("perf", "-c, -i and -W shape an --icmp run (%s)", perfUsage)
	}
	return pa, nil
}

// perfReport is perf's JSON output: one of TCP or ICMP is set.
type perfReport struct {
	Lab  string `json:"lab"`
	From string `json:"from"`
	To   string `json:"to"`
	Addr string `json:"addr"`
	TCP  *struct {
		probe.Throughput
		BitsPerSecond float64 `json:"bits_per_second"`
	} `json:"tcp,omitempty"`
	ICMP *struct {
		probe.Stats
		Loss          float64 `json:"loss"`
		DuplicateRate float64 `json:"duplicate_rate"`
		ReorderRate   float64 `json:"reorder_rate"`
	} `json:"icmp,omitempty"`
}

// perf measures a lab's path from one node to another: TCP throughput (nsnet
// runs the receiver itself in the target node, as iperf -s would), or with
// --icmp round-trip and loss statistics over many echo requests.
func (e *Env) perf(c Command) (int, error) {
	pa, err := parsePerfArgs(append(c.Args, c.flagArgs()...))
	if err != nil {
		return 2, err
	}
	pa.json = pa.json || c.Opts.JSON
	opt := lab.Options{Netns: e.Netns, StateDir: e.StateDir, EtcNetns: e.EtcNetns, Exe: e.Exe, Host: pa.host}
	l, _, err := e.checkLab(pa.lab, opt)
	if err != nil {
		return 2, err
	}
	// In a lab across machines, this machine's part: FROM must be here.
	if l, err = lab.Part(l, opt); err != nil {
		return 2, err
	}
	if err := lab.NodeHere(l, pa.from); err != nil {
		return 2, err
	}
	addr, toNode, err := perfTarget(l.Whole(), pa.to)
	if err != nil {
		return 2, err
	}
	from, err := lab.OpenNode(l.Name, pa.from, opt)
	if err != nil {
		return 2, err
	}
	defer from.Close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, unix.SIGTERM)
	defer stop()
	rep := perfReport{Lab: l.Name, From: pa.from, To: pa.to, Addr: addr.String()}
	if pa.icmp {
		p, err := probe.NewPinger(from, addr)
		if err != nil {
			return 2, err
		}
		defer p.Close()
		st := p.Series(ctx, pa.series)
		rep.ICMP = &struct {
			probe.Stats
			Loss          float64 `json:"loss"`
			DuplicateRate float64 `json:"duplicate_rate"`
			ReorderRate   float64 `json:"reorder_rate"`
		}{st, st.Loss(), st.DuplicateRate(), st.ReorderRate()}
		if pa.json {
			if err := writeJSON(e.Stdout, rep); err != nil {
				return 2, err
			}
		} else {
			writeSeries(e, rep, st)
		}
		if st.Received == 0 {
			return 1, nil
		}
		return 0, nil
	}
	if toNode == nil {
		return 2, usagef("perf", "%s is not an address of a node of lab %s: the TCP run needs a node to run its receiver in", pa.to, l.Name)
	}
	if err := lab.NodeHere(l, toNode.Name); err != nil {
		// The receiver runs in TO's namespace, which is on another
		// machine; --icmp needs nothing there.
		return 2, fmt.Errorf("perf: the TCP run starts its receiver in %s: %w (or measure round trips with --icmp)", toNode.Name, err)
	}
	srv, err := lab.OpenNode(l.Name, toNode.Name, opt)
	if err != nil {
		return 2, err
	}
	defer srv.Close()
	t, err := probe.MeasureThroughput(ctx, from, srv, addr, probe.ThroughputOptions{Duration: pa.duration})
	if err != nil {
		return 1, fmt.Errorf("perf %s %s -> %s: %w", l.Name, pa.from, pa.to, err)
	}
	rep.TCP = &struct {
		probe.Throughput
		BitsPerSecond float64 `json:"bits_per_second"`
	}{t, t.BitsPerSecond()}
	if pa.json {
		return 0, writeJSON(e.Stdout, rep)
	}
	fmt.Fprintf(e.Stdout, "perf %s: %s -> %s (%s), TCP for %s\n", l.Name, pa.from, pa.to, addr, pa.duration)
	for _, iv := range t.Intervals {
		fmt.Fprintf(e.Stdout, "[%6.2f-%6.2f s] %10s  %s\n", iv.Start.Seconds(), iv.End.Seconds(), formatBytes(iv.Bytes), formatRate(iv.BitsPerSecond()))
	}
	fmt.Fprintf(e.Stdout, "[%6.2f-%6.2f s] %10s  %s  receiver\n", 0.0, t.Elapsed.Seconds(), formatBytes(t.Bytes), formatRate(t.BitsPerSecond()))
	return 0, nil
}

// perfTarget resolves TO: a node (its first address) or an address, with
// the node that holds it when there is one.
func perfTarget(l *lab.Lab, to string) (netip.Addr, *lab.Node, error) {
	if n := l.Node(to); n != nil {
		a := n.FirstAddr()
		if !a.IsValid() {
			return a, nil, usagef("perf", "node %s has no address to measure to: give one of its addresses", to)
		}
		return a, n, nil
	}
	a, err := netip.ParseAddr(to)
	if err != nil {
		return a, nil, usagef("perf", "%q is neither a node of lab %s nor an IP address", to, l.Name)
	}
	a = a.Unmap()
	return a, l.NodeWith(a), nil
}

func writeSeries(e *Env, rep perfReport, st probe.Stats) {
	w := e.Stdout
	fmt.Fprintf(w, "--- %s %s -> %s (%s) icmp statistics ---\n", rep.Lab, rep.From, rep.To, rep.Addr)
	fmt.Fprintf(w, "%d packets transmitted, %d received, %.2f%% packet loss, %d duplicates (%.2f%%), %d reordered (%.2f%%), time %dms\n",
		st.Sent, st.Received, 100*st.Loss(), st.Duplicates, 100*st.DuplicateRate(), st.Reordered, 100*st.ReorderRate(), st.Elapsed.Milliseconds())
	if st.Errors > 0 {
		fmt.Fprintf(w, "%d errors, the last: %s\n", st.Errors, errText(st.LastErr))
	}
	if st.Received == 0 {
		return
	}
	r := st.RTT
	f := func(d time.Duration) float64 { return float64(d) / 1e6 }
	fmt.Fprintf(w, "rtt min/avg/max/mdev = %.3f/%.3f/%.3f/%.3f ms\n", f(r.Min), f(r.Mean), f(r.Max), f(r.StdDev))
	fmt.Fprintf(w, "rtt p50/p90/p99 = %.3f/%.3f/%.3f ms\n", f(r.P50), f(r.P90), f(r.P99))
}

// formatRate prints bits per second in tc's units.
func formatRate(bps float64) string {
	switch {
	case bps >= 1e9:
		return fmt.Sprintf("%.2f Gbit/s", bps/1e9)
	case bps >= 1e6:
		return fmt.Sprintf("%.2f Mbit/s", bps/1e6)
	case bps >= 1e3:
		return fmt.Sprintf("%.2f Kbit/s", bps/1e3)
	}
	return fmt.Sprintf("%.0f bit/s", bps)
}

func formatBytes(b int64) string {
	switch {
	case b >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(b)/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.2f MiB", float64(b)/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(b)/(1<<10))
	}
	return fmt.Sprintf("%d B", b)
}

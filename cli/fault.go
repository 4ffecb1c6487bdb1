package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/nsnet/nsnet/fault"
	"github.com/nsnet/nsnet/fault/backend"
	"github.com/nsnet/nsnet/lab"
	"github.com/nsnet/nsnet/lab/faults"
	"github.com/nsnet/nsnet/netns"
)

// faultCommands are the command table's entries for faults.
func faultCommands() []*cmdSpec {
	run := func(e *Env, c Command) (int, error) { return e.fault(c) }
	lab := argSpec{name: "LAB", kind: argLab}
	return []*cmdSpec{
		{
			name: "fault", group: groupFaults, dflt: "show",
			summary: "impair a link end of a lab: delay, loss, rate, duplicates, reordering, corruption",
			help: "Sets, clears and shows runtime faults on the link ends of a lab that is up. A fault\n" +
				"shapes what leaves NODE:IFACE and is written in netem's word order:\n" +
				"  delay 20ms [5ms [25%]] [distribution normal]   loss 10% [25%]\n" +
				"  loss gemodel 1% 25% (bursty: p into a burst, r out of it)\n" +
				"  duplicate 1%   reorder 25% (needs a delay)   corrupt 0.1%\n" +
				"  rate 10mbit [burst 32kb] [limit 64kb]   down | blackhole\n" +
				"Faults are recorded in the lab's ledger before they are made, so down removes them\n" +
				"after any crash. The backend (netem, or tbf, nftables and nsnet's userspace delayer\n" +
				"where sch_netem is missing) is chosen by probing the kernel: see nsnet doctor.",
			verbs: []*cmdSpec{
				{
					name: "set", usage: []string{"LAB NODE:IFACE FAULT... [--for DURATION]"},
					summary: "put a fault on a link end, replacing the one it had",
					help: "Puts FAULT on NODE:IFACE and returns once it is in force. Bad input, an end the lab\n" +
						"does not own, or a field no backend of this kernel can do is refused in one line,\n" +
						"and nothing changes. --for reverts the fault by itself after DURATION, even if this\n" +
						"nsnet dies: a reverter process, recorded in the ledger, clears it.",
					args:  []argSpec{lab, {name: "NODE:IFACE"}},
					rest:  &argSpec{name: "FAULT"},
					flags: []flagSpec{{name: "--for", value: "DURATION", help: "revert by itself after DURATION (30s, 5m)"}},
					examples: []string{"fault set two-lans h1:eth0 delay 20ms 5ms loss 1%",
						"fault set two-lans h4:eth0 rate 10mbit --for 30s", "fault set two-lans h2:eth0 down"},
				},
				{
					name: "clear", usage: []string{"LAB [NODE:IFACE...]"},
					summary: "remove the faults of some ends, or all (idempotent)",
					help:    "Removes the faults of the ends named, or of every end. Clearing an end without a\nfault is success.",
					args:    []argSpec{lab}, rest: &argSpec{name: "NODE:IFACE", optional: true},
					examples: []string{"fault clear two-lans", "fault clear two-lans h1:eth0"},
				},
				{
					name: "show", usage: []string{"LAB"}, opts: optJSON,
					summary: "the faults in force, their backends and counters",
					help: "One line per fault: the end, the fault, the backend, and the packets impaired,\n" +
						"dropped, delayed, and dropped because the delayer could not keep up (overload),\n" +
						"then the partition in force.",
					args: []argSpec{lab}, examples: []string{"fault show two-lans", "fault show two-lans -j"},
				},
				{name: faults.DelayerArg, hidden: true, rest: &argSpec{name: "DIR"}},
				{name: faults.RevertArg, hidden: true, rest: &argSpec{name: "ARGS"}},
			},
			run: run,
		},
		{
			name: "partition", group: groupFaults,
			usage:   []string{"LAB NODE[,NODE...] NODE[,NODE...]... [--oneway]"},
			summary: "cut groups of nodes off from each other, on any topology",
			help: "No packet passes between a node of one group and a node of another, in either\n" +
				"direction; nodes not named are not affected. With --oneway only packets from the\n" +
				"first group to the second are dropped (Jepsen's asymmetric partition). The drops\n" +
				"are by source address in each receiving node, so they hold across shared bridges\n" +
				"and routers. A new partition replaces the one in force.",
			args:     []argSpec{lab},
			rest:     &argSpec{name: "GROUPS"},
			flags:    []flagSpec{{name: "--oneway", help: "drop only from the first group to the second"}},
			examples: []string{"partition two-lans h1,h2 h3,h4", "partition two-lans h1 h4 --oneway"},
			run:      run,
		},
		{
			name: "heal", group: groupFaults,
			usage: []string{"LAB"}, summary: "remove the partition (idempotent)",
			help: "Removes the partition in force from every node of the lab.",
			args: []argSpec{lab}, examples: []string{"heal two-lans"}, run: run,
		},
		{
			name: "doctor", group: groupFaults, opts: optJSON,
			summary: "which fault features this kernel has, and through which backend",
			help: "Tries each mechanism (netem, tbf, nftables hooks, NFQUEUE) in a scratch namespace\n" +
				"and prints what works, which backend each kind of fault would use, and the fix for\n" +
				"what is missing.",
			examples: []string{"doctor", "doctor -j"}, run: run,
		},
	}
}

// fault runs fault, partition, heal and doctor.
func (e *Env) fault(c Command) (int, error) {
	opt := lab.Options{Netns: e.Netns, StateDir: e.StateDir, EtcNetns: e.EtcNetns, Exe: e.Exe, Log: e.Stderr}
	args := append(append([]string{}, c.Args...), c.Argv...)
	if v, ok := c.Flags["--for"]; ok {
		args = append(args, "--for", v)
	}
	if c.has("--oneway") {
		args = append(args, "--oneway")
	}
	switch c.Object {
	case "doctor":
		if len(args) > 0 {
			return 2, usagef("doctor", "unexpected argument %q", args[0])
		}
		return e.doctor(c.Opts.JSON)
	case "partition":
		oneway := false
		var groups []string
		for _, a := range args {
			if a == "--oneway" {
				oneway = true
			} else {
				groups = append(groups, a)
			}
		}
		if len(groups) < 1 {
			return 2, usagef("partition", "expected: nsnet partition LAB NODE,NODE... NODE,NODE... [--oneway]")
		}
		p, err := fault.ParsePartition(groups[1:], oneway)
		if err != nil {
			return 2, err
		}
		if err := faults.Partition(opt, groups[0], p); err != nil {
			return 1, err
		}
		fmt.Fprintf(e.Stdout, "lab %s: partition %s\n", groups[0], p)
		return 0, nil
	case "heal":
		if len(args) != 1 {
			return 2, usagef("heal", "expected: nsnet heal LAB")
		}
		if err := faults.Heal(opt, args[0]); err != nil {
			return 1, err
		}
		fmt.Fprintf(e.Stdout, "lab %s: healed\n", args[0])
		return 0, nil
	}
	verb := c.Verb
	switch verb {
	case faults.DelayerArg:
		if len(args) != 1 {
			return 2, usagef("fault", "%s DIR", faults.DelayerArg)
		}
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
		defer stop()
		reload := make(chan os.Signal, 1)
		signal.Notify(reload, syscall.SIGHUP)
		return 0, faults.RunDelayer(ctx, args[0], reload)
	case faults.RevertArg:
		if len(args) != 5 {
			return 2, usagef("fault", "%s STATEDIR NETNSDIR LAB END UNTIL", faults.RevertArg)
		}
		end, err := fault.ParseEnd(args[3])
		if err != nil {
			return 2, err
		}
		ns, err := strconv.ParseInt(args[4], 10, 64)
		if err != nil {
			return 2, err
		}
		opt.StateDir, opt.Netns = args[0], netns.Dir{Path: args[1]}
		return 0, faults.Revert(opt, args[2], end, time.Unix(0, ns))
	case "set":
		var d time.Duration
		var words []string
		for i := 0; i < len(args); i++ {
			if args[i] == "--for" {
				if i+1 >= len(args) {
					return 2, usagef("fault set", "--for needs a duration such as 30s")
				}
				var err error
				if d, err = time.ParseDuration(args[i+1]); err != nil || d <= 0 {
					return 2, usagef("fault set", "--for %s: must be a duration such as 30s", args[i+1])
				}
				i++
				continue
			}
			words = append(words, args[i])
		}
		if len(words) < 3 {
			return 2, usagef("fault set", "expected: nsnet fault set LAB NODE:IFACE FAULT... [--for DURATION]")
		}
		end, err := fault.ParseEnd(words[1])
		if err != nil {
			return 2, err
		}
		spec, err := fault.ParseWords(words[2:])
		if err != nil {
			return 2, err
		}
		f, err := faults.Set(opt, words[0], end, spec, faults.SetOptions{For: d})
		if err != nil {
			return 1, err
		}
		if f == nil {
			fmt.Fprintf(e.Stdout, "lab %s: %s: cleared\n", words[0], end)
			return 0, nil
		}
		msg := fmt.Sprintf("lab %s: %s: %s (%s)", words[0], end, f.Spec, f.Backend)
		if !f.Until.IsZero() {
			msg += " until " + f.Until.Local().Format("15:04:05")
		}
		fmt.Fprintln(e.Stdout, msg)
		return 0, nil
	case "clear":
		if len(args) < 1 {
			return 2, usagef("fault clear", "expected: nsnet fault clear LAB [NODE:IFACE...]")
		}
		var ends []fault.End
		for _, a := range args[1:] {
			end, err := fault.ParseEnd(a)
			if err != nil {
				return 2, err
			}
			ends = append(ends, end)
		}
		if err := faults.Clear(opt, args[0], ends...); err != nil {
			return 1, err
		}
		fmt.Fprintf(e.Stdout, "lab %s: faults cleared\n", args[0])
		return 0, nil
	case "show":
		if len(args) != 1 {
			return 2, usagef("fault show", "expected: nsnet fault show LAB")
		}
		st, err := faults.Show(opt, args[0])
		if err != nil {
			return 1, err
		}
		return 0, faults.Write(e.Stdout, st, c.Opts.JSON)
	}
	return 2, usagef("fault", "unknown command %q (want set, clear or show)", verb)
}

// doctorRow is one feature and what it serves.
type doctorRow struct {
	Feature string   `json:"feature"`
	OK      bool     `json:"ok"`
	Serves  []string `json:"serves"`
	Error   string   `json:"error,omitempty"`
	Fix     string   `json:"fix,omitempty"`
}

// doctor probes the kernel in a scratch namespace and says which fault
// features work and through which backend.
func (e *Env) doctor(asJSON bool) (int, error) {
	c, err := backend.Probe()
	if err != nil {
		return 1, err
	}
	serves := map[string][]string{
		backend.FeatNetem:   {"delay", "jitter", "loss", "duplicate", "reorder", "corrupt (netem backend)"},
		backend.FeatTBF:     {"rate"},
		backend.FeatNetdev:  {"loss", "blackhole (without netem, at the far end's ingress)"},
		backend.FeatNumgen:  {"random loss and duplication in nftables"},
		backend.FeatEgress:  {"duplicate (without netem, at the sender's egress)"},
		backend.FeatDup:     {"duplicate (without netem)"},
		backend.FeatInet:    {"partition", "the delayer's queue rules"},
		backend.FeatNFQueue: {"delay", "jitter", "reorder", "corrupt", "correlated and bursty loss (userspace delayer)"},
	}
	var rows []doctorRow
	for f, s := range serves {
		r := doctorRow{Feature: f, OK: c.OK[f], Serves: s}
		if !r.OK {
			r.Error, r.Fix = c.Missing[f], backend.Fix(f)
		}
		rows = append(rows, r)
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].Feature < rows[j].Feature })
	kinds := doctorKinds(c)
	if asJSON {
		enc := json.NewEncoder(e.Stdout)
		enc.SetIndent("", "  ")
		return 0, enc.Encode(map[string]any{"features": rows, "faults": kinds})
	}
	tw := tabwriter.NewWriter(e.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FEATURE\tSTATE\tSERVES")
	for _, r := range rows {
		state := "ok"
		if !r.OK {
			state = "missing"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", r.Feature, state, strings.Join(r.Serves, ", "))
	}
	tw.Flush()
	fmt.Fprintln(e.Stdout)
	tw = tabwriter.NewWriter(e.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FAULT\tBACKEND")
	for _, k := range kinds {
		fmt.Fprintf(tw, "%s\t%s\n", k.Fault, k.Backend)
	}
	tw.Flush()
	for _, r := range rows {
		if !r.OK && r.Fix != "" {
			fmt.Fprintf(e.Stdout, "\n%s missing: %s\n", r.Feature, r.Fix)
		}
	}
	return 0, nil
}

type doctorKind struct {
	Fault   string `json:"fault"`
	Backend string `json:"backend"`
}

// doctorKinds plans one fault of each kind on a typical node end and says
// which backend would make it.
func doctorKinds(c backend.Caps) []doctorKind {
	l := backend.Link{End: fault.End{Node: "node", Iface: "eth0"}, Dev: "eth0", Ifindex: 2, PeerNode: "peer", PeerDev: "p0", PeerIfindex: 2}
	var out []doctorKind
	for _, w := range []string{"delay 20ms 5ms", "delay 20ms 5ms distribution normal", "loss 10%", "loss gemodel 1% 25%", "duplicate 1%", "delay 10ms reorder 25%", "corrupt 0.1%", "rate 10mbit", "down", "blackhole"} {
		s, _ := fault.ParseWords(strings.Fields(w))
		k := doctorKind{Fault: w}
		if p, err := backend.For(s, l, c); err != nil {
			k.Backend = "not possible: " + err.Error()
		} else {
			k.Backend = p.Backend()
		}
		out = append(out, k)
	}
	out = append(out, doctorKind{Fault: "partition", Backend: map[bool]string{true: "nftables", false: "not possible: nftables inet missing"}[c.OK[backend.FeatInet]]})
	return out
}

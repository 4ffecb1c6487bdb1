package cli

import (
	"slices"

	"github.com/nsnet/nsnet/internal/sandbox"
)

// The groups `nsnet help` lists commands under, in order.
const (
	groupIP     = "iproute2 objects (ip's grammar and abbreviations; options before the object)"
	groupTools  = "Tools"
	groupLabs   = "Labs (declarative topologies from a YAML file; options before or after the verb)"
	groupFaults = "Faults (on a lab that is up)"
	groupOther  = "Help and shell"
)

func groups() []string { return []string{groupIP, groupTools, groupLabs, groupFaults, groupOther} }

// commands is nsnet's command table. To add a command, add an entry: name,
// group, usage, summary, help, examples, the global options that apply, its
// own flags and arguments, and a run function; parsing, `nsnet help`,
// `--help`, usage errors and completion all come from the entry (a golden
// help text in testdata/help shows it in review: go test ./cli -run
// TestHelpGolden -update).
func commands() []*cmdSpec {
	return slices.Concat([]*cmdSpec{
		linkCommand(), addrCommand(), routeCommand(), netnsCommand(),
		{
			name: "ping", group: groupTools, opts: optNS | optJSON,
			usage:   []string{"[-c COUNT] [-W TIMEOUT] [-i INTERVAL] [-q] ADDR|NAME"},
			summary: "built-in ICMP echo, like iputils ping (no ping binary needed)",
			help: "Sends ICMP echo requests to ADDR (IPv4 or IPv6) or NAME from the command's namespace\n" +
				"and prints each reply and a summary as iputils ping does. NAME comes from the hosts\n" +
				"file only (never DNS): inside a lab node (nsnet exec) that lists the lab's nodes. Without\n" +
				"-c it runs until interrupted. Exit 0 when any reply came, 1 when none did, 2 when it\n" +
				"could not send at all (\"Network is unreachable\" when there is no route). With -j\n" +
				"(before ping) it prints one JSON object at the end: the summary and each reply.",
			flags: []flagSpec{
				{name: "-c", value: "COUNT", help: "stop after COUNT replies or timeouts (1-1000000)"},
				{name: "-W", value: "TIMEOUT", help: "seconds to wait for each reply (default 1)"},
				{name: "-i", value: "INTERVAL", help: "seconds between requests (default 1)"},
				{name: "-q", help: "quiet: only the summary"},
			},
			examples: []string{"ping -c 1 10.200.0.3", "-n direct_netns -j ping -c 3 -i 0.2 fd00::1", "exec two-lans h1 nsnet ping -c1 h4"},
			parse:    parsePing,
			run:      func(e *Env, c Command) (int, error) { return e.ping(c) },
		},
		{
			name: "serve", group: groupTools, opts: optNS,
			usage:   []string{"http|tcp|udp [IP]:PORT"},
			summary: "built-in HTTP responder, TCP or UDP echo, until interrupted",
			help: "Listens on IP:PORT (:PORT: every address, IPv4 and IPv6) in the command's namespace\n" +
				"and answers until interrupted: http answers every GET with a fixed body, tcp and udp\n" +
				"echo what they receive.",
			examples: []string{"serve http 127.0.0.1:8080", "netns exec direct_netns nsnet serve udp [::]:9000"},
			parse:    parseServe,
			run:      func(e *Env, c Command) (int, error) { return e.serve(c) },
		},
		{
			name: "fetch", group: groupTools, opts: optNS,
			usage:   []string{"[-W SECONDS] http://HOST:PORT/PATH"},
			summary: "GET a URL and print the body, a minimal curl",
			help: "Fetches the URL from the command's namespace and prints the body. HOST is an address\n" +
				"or a name from the hosts file (a lab's node inside the lab). Exit codes follow curl: 6\n" +
				"could not resolve, 7 could not connect, 28 timed out, 22 an HTTP error status.",
			flags:    []flagSpec{{name: "-W", value: "SECONDS", help: "give up after SECONDS (default 2)"}},
			examples: []string{"fetch http://127.0.0.1:8080/", "-n direct_netns fetch -W 0.5 http://10.200.0.2:8080/"},
			parse:    parseFetch,
			run:      func(e *Env, c Command) (int, error) { return e.fetch(c) },
		},
		{
			name: "sandbox", group: groupTools,
			usage:   []string{"[-- CMD [ARGS...]]"},
			summary: "rootless: a shell (or CMD) in a new user+net+mount+pid namespace",
			help: "Starts CMD (default: $SHELL) as root of a new user, network, mount and PID namespace,\n" +
				"with a private /run and /proc. Everything nsnet does in there needs no privileges on\n" +
				"the machine and disappears when CMD exits, processes included (a lab's, a server left\n" +
				"in the background: the kernel kills what is left in the PID namespace); the machine's\n" +
				"own network is not reachable. ^C interrupts CMD as it would outside, and signals the\n" +
				"caller ignores stay ignored. Inside, the environment has NSNET_SANDBOX=1, and the\n" +
				"default shell's prompt is (nsnet sandbox) # (unless its rc file sets one). The exit\n" +
				"status is CMD's.",
			rest:     &argSpec{name: "CMD", kind: argCommand, optional: true},
			examples: []string{"sandbox", "sandbox -- sh -c 'nsnet up examples/two-lans.yaml && nsnet status'"},
			run: func(e *Env, c Command) (int, error) {
				return sandbox.Run(c.Argv, e.Inherited, e.Stdin, e.Stdout, e.Stderr)
			},
		},
		{
			name: "demo", group: groupTools,
			summary: "replay the iproute2 walkthrough in a private sandbox, checking each step",
			help: "Runs the walkthrough of README (veth pair, namespace, addresses, ping both ways) with\n" +
				"nsnet in a fresh sandbox, checks that each step behaves as it says, and leaves nothing\n" +
				"behind. Needs no root.",
			flags:    []flagSpec{{name: demoInsideArg, hidden: true}},
			examples: []string{"demo"},
			run: func(e *Env, c Command) (int, error) {
				if c.has(demoInsideArg) {
					return e.demoInside()
				}
				return e.demo()
			},
		},
		{
			name: "bench", group: groupTools, opts: optJSON,
			usage:   []string{"[OPTIONS]"},
			summary: "time nsnet against iproute2 and a tuned netlink loop, in a sandbox",
			help: "Builds the same topology with each runner (ip-each: one ip command per change,\n" +
				"ip-batch: ip -batch, tuned: a hand-tuned netlink loop, nsnet: nsnet up) in a fresh\n" +
				"sandbox and prints the median times and ratios.",
			flags: []flagSpec{
				{name: "--mode", value: "MODES", help: "bridge, ptp or both (bridge,ptp; default both)"},
				{name: "--n", value: "COUNTS", help: "node counts, e.g. 10,100,1000 (default 10,100)"},
				{name: "--reps", value: "N", help: "repetitions of each (1-100, default 3)"},
				{name: "--runners", value: "LIST", help: "ip-each,ip-batch,tuned,nsnet (default all); nsnet=BINARY: another build"},
				{name: "--each-max", value: "N", help: "skip ip-each above N nodes (default 1000)"},
				{name: "--ping", help: "also time a first ping across each topology"},
				{name: "--exec", value: "N", help: "also time N runs of netns exec NS true (20-100000)"},
				{name: "--hosts", value: "N", help: "instead: a lab across 3 simulated machines, a ring of N nodes (even, 6-3000) with every other link across, up/down in parallel against one machine"},
				{name: benchInsideArg, hidden: true},
			},
			examples: []string{"bench", "bench --mode ptp --n 1000 --runners tuned,nsnet -j", "bench --hosts 1000 --reps 3"},
			run:      func(e *Env, c Command) (int, error) { return e.bench(c) },
		},
		{
			name: "new", group: groupLabs,
			usage: []string{"SHAPE N... [--name LAB]", "linear|star|ring|mesh N [--name LAB]",
				"tree DEPTH FANOUT [--name LAB]", "clos SPINES LEAVES HOSTS_PER_LEAF [--name LAB]"},
			summary: "print a generated lab file: linear, star, ring, mesh, tree, clos",
			help: "Prints a lab file of that shape on stdout, like Mininet's --topo: routers (r1...,\n" +
				"spine1... and leaf1... for clos) joined by point-to-point links, hosts h1... each on a\n" +
				"link to its router. Every link is a /30 of 10.0.0.0/8; routers forward and have a\n" +
				"static route to every subnet along a shortest path, hosts a default route through\n" +
				"their router, so every node reaches every other. linear: a chain of N routers with a\n" +
				"host each; star: N hosts on one router; ring: N routers in a ring (N >= 3), a host\n" +
				"each; mesh: N routers all linked, a host each; tree: routers in a tree of depth DEPTH\n" +
				"and fanout FANOUT, FANOUT^DEPTH hosts at the leaves; clos: every leaf linked to every\n" +
				"spine, HOSTS_PER_LEAF hosts on each leaf (one path, no ECMP). The lab is named\n" +
				"SHAPE-ARGS (linear-3) unless --name says otherwise. The file is valid as written.",
			// A shape takes one to three numbers: the generator checks how many.
			args: []argSpec{{name: "SHAPE", kind: argShape}, {name: "N"},
				{name: "ARG", optional: true}, {name: "ARG", optional: true}},
			flags: []flagSpec{{name: "--name", value: "LAB", help: "the lab's name (default SHAPE-ARGS, e.g. tree-2-3)"}},
			examples: []string{"new linear 3 > linear-3.yaml && nsnet up linear-3.yaml && nsnet check --all linear-3",
				"new tree 2 3", "new clos 2 4 8 --name fabric"},
			run: func(e *Env, c Command) (int, error) { return e.newTopology(c) },
		},
		{
			name: "graph", group: groupLabs,
			usage:   []string{"FILE|LAB [--format dot|mermaid|svg]"},
			summary: "draw a lab as Graphviz DOT, Mermaid or an SVG picture, marking what drifted",
			help: "Prints the lab's nodes, bridges (boxes) and links (each end's interface) as Graphviz\n" +
				"DOT (the default; nsnet graph LAB | dot -Tsvg > lab.svg), a Mermaid flowchart, or an\n" +
				"SVG picture drawn by nsnet itself (no Graphviz needed), with each end's addresses, the\n" +
				"machines of a lab across machines as colours and its VXLAN links blue. From a FILE, or\n" +
				"from the file a LAB was brought up from. When the lab is up, what drifted from the file\n" +
				"is drawn dashed and red: a node whose namespace is gone (\"missing\"), a link with an\n" +
				"end missing or down (\"down\").",
			args:     []argSpec{{name: "FILE|LAB", kind: argLabFile}},
			flags:    []flagSpec{{name: "--format", value: "FORMAT", help: "dot (default), mermaid or svg"}},
			examples: []string{"graph examples/two-lans.yaml", "graph two-lans --format mermaid", "graph two-lans --format svg > two-lans.svg"},
			run:      func(e *Env, c Command) (int, error) { return e.graph(c) },
		},
		{
			name: "plan", group: groupLabs, opts: optJSON,
			usage:   []string{"FILE"},
			summary: "print what up would do, as ip commands; changes nothing",
			help: "Validates the lab file and prints what `nsnet up` would do now, one iproute2 command\n" +
				"line per change. Changes nothing, not even the state directory.",
			args:     []argSpec{{name: "FILE", kind: argFile}},
			flags:    []flagSpec{hostFlag()},
			examples: []string{"plan examples/two-lans.yaml", "plan examples/two-lans.yaml -j", "plan examples/multi.yaml --host m2"},
			run:      func(e *Env, c Command) (int, error) { return e.lab(c) },
		},
		{
			name: "up", group: groupLabs, opts: optJSON,
			usage:   []string{"FILE"},
			summary: "create the lab (idempotent: repairs drift, or says no changes)",
			help: "Validates the lab file, then creates what is missing and repairs what drifted. An\n" +
				"unchanged lab makes no kernel change. Objects the file no longer has are removed.\n" +
				"Interrupted (Ctrl-C), up stops after the step in progress and says how to finish\n" +
				"(run up again) or undo (nsnet down LAB).",
			args:     []argSpec{{name: "FILE", kind: argFile}},
			flags:    []flagSpec{hostFlag()},
			examples: []string{"up examples/two-lans.yaml", "up examples/multi.yaml --host m1"},
			run:      func(e *Env, c Command) (int, error) { return e.lab(c) },
		},
		{
			name: "down", group: groupLabs, opts: optJSON,
			usage:   []string{"FILE|LAB"},
			summary: "remove everything the lab made, and only that",
			help: "Removes everything the lab made, from its ledger alone: the file may be gone (then\n" +
				"name the lab). Idempotent: a lab that is already down is success.",
			args:     []argSpec{{name: "FILE|LAB", kind: argLabFile}},
			flags:    []flagSpec{hostFlag()},
			examples: []string{"down two-lans", "down examples/two-lans.yaml"},
			run:      func(e *Env, c Command) (int, error) { return e.lab(c) },
		},
		{
			name: "status", group: groupLabs, opts: optJSON,
			usage:   []string{"[FILE|LAB [NODE...]]"},
			summary: "one row per node of each lab (or one); the detail of named nodes",
			help: "Shows each lab that is up (or one) with one row per node: its namespace, state (up,\n" +
				"degraded when an interface is missing or down or a process exited, missing), interfaces\n" +
				"up/total, addresses and processes. With NODEs, the detail of those nodes: every\n" +
				"interface with its state, addresses, peer and bridge, every process with its log.",
			args:     []argSpec{{name: "FILE|LAB", kind: argLabFile, optional: true}},
			flags:    []flagSpec{hostFlag()},
			rest:     &argSpec{name: "NODE", kind: argNode, optional: true},
			examples: []string{"status", "status two-lans -j", "status two-lans h1 router"},
			run:      func(e *Env, c Command) (int, error) { return e.lab(c) },
		},
		{
			name: "labs", group: groupLabs, opts: optJSON,
			summary: "list labs: state, nodes, links, processes, file",
			help: "One line per lab: its state (up, incomplete after an interrupted up, busy while\n" +
				"another nsnet works on it), nodes, links, processes and the file it came from.",
			examples: []string{"labs", "labs -j"},
			run:      func(e *Env, c Command) (int, error) { return e.lab(c) },
		},
		{
			name: "exec", group: groupLabs,
			usage:   []string{"LAB NODE [--] [CMD [ARGS...]]"},
			summary: "run a command, or a shell, in a node of a lab",
			help: "Runs CMD in NODE's namespace with `ip netns exec` semantics: nsnet becomes the\n" +
				"command, with the node's /sys and /etc/netns files (its hosts file names the lab's\n" +
				"nodes). The exit status is CMD's. Everything after NODE (or after --) is CMD's own.\n" +
				"Without CMD, starts $SHELL (or /bin/sh) there, its prompt starting with (LAB NODE).",
			args:     []argSpec{{name: "LAB", kind: argLab}, {name: "NODE", kind: argNode}},
			rest:     &argSpec{name: "CMD", kind: argCommand, optional: true},
			flags:    []flagSpec{{name: labGateFlag, hidden: true}, {name: labReaperFlag, hidden: true}, hostFlag()},
			examples: []string{"exec two-lans h1 nsnet ping -c1 h6", "exec two-lans h1 nsnet -br addr", "exec two-lans router"},
			run:      func(e *Env, c Command) (int, error) { return e.lab(c) },
		},
		{
			name: "logs", group: groupLabs,
			usage:   []string{"LAB NODE [PROC] [-f]"},
			summary: "print (and follow) the output of a node's processes",
			help: "Prints what the node's processes wrote to stdout and stderr (their logs in the state\n" +
				"directory, kept across restarts), each headed by its command line when there are\n" +
				"several. PROC picks one: its index in the node's processes: list (from 0) or its\n" +
				"program's name. With -f, keeps printing what they write until interrupted.",
			args: []argSpec{{name: "LAB", kind: argLab}, {name: "NODE", kind: argNode}, {name: "PROC", optional: true}},
			flags: []flagSpec{
				{name: "-f", help: "follow: print new output as it comes, until interrupted"},
				hostFlag(),
			},
			examples: []string{"logs procs web", "logs procs web 0 -f"},
			run:      func(e *Env, c Command) (int, error) { return e.logs(c) },
		},
		{
			name: "check", group: groupLabs, opts: optJSON,
			usage:   []string{"FILE|LAB [--all [--matrix]] [--junit FILE] [--timeout SECONDS]"},
			summary: "prove the lab's reachability and isolation expectations",
			help: "Runs the lab's expect: section against the lab that is up: each expectation is a\n" +
				"probe (icmp, tcp:PORT, udp:PORT, http:PORT) that must reach or must be isolated; a\n" +
				"failure is explained by its cause. Exit 0 when all pass, 1 when one fails, 2 when the\n" +
				"check could not run (the lab is not up, a probe could not be sent).\n\n" +
				"--all also pings every node from every other node and expects every pair to reach,\n" +
				"except the pairs the expect: section says are isolated: each failed pair is\n" +
				"explained (node missing, link down and which end, partitioned or faulted by nsnet,\n" +
				"no route, neighbour table full with its limit and fix, no answer) and the pairs are\n" +
				"grouped by cause; the matrix is printed up to 30 nodes, or with --matrix. A pair\n" +
				"that fails because of a partition or fault nsnet set fails as told: it is listed\n" +
				"but does not make the exit status 1.",
			args: []argSpec{{name: "FILE|LAB", kind: argLabFile}},
			flags: []flagSpec{
				{name: "--all", help: "also ping every ordered pair of nodes: failed pairs grouped by cause"},
				{name: "--matrix", help: "with --all: print the matrix however many nodes (default: up to 30)"},
				hostFlag(),
				{name: "--junit", value: "FILE", kind: argFile, help: "also write a JUnit XML report to FILE"},
				{name: "--timeout", value: "SECONDS", help: "per-probe timeout, 0.01-60 (default 1)"},
			},
			examples: []string{"check examples/tenants.yaml", "check tenants --all -j"},
			run:      func(e *Env, c Command) (int, error) { return e.check(c) },
		},
		{
			name: "perf", group: groupLabs, opts: optJSON,
			usage:   []string{"LAB FROM TO [-t SECONDS]", "LAB FROM TO --icmp [-c COUNT] [-i SECONDS] [-W SECONDS]"},
			summary: "measure a lab's path: TCP throughput, or ICMP round trips and loss",
			help: "Measures the path from node FROM to TO (a node of the lab, or an IP address). By\n" +
				"default a TCP bulk run for -t seconds, with nsnet's own receiver in TO (as iperf -s\n" +
				"would be); with --icmp, COUNT echo requests every -i seconds, many in flight at\n" +
				"once: round trips (percentiles), loss, duplicates and reordering.",
			args: []argSpec{{name: "LAB", kind: argLab}, {name: "FROM", kind: argNode}, {name: "TO", kind: argNode}},
			flags: []flagSpec{
				{name: "-t", value: "SECONDS", help: "length of the TCP run (0.1-3600, default 10)"},
				{name: "--icmp", help: "ICMP echo series instead of TCP"},
				{name: "-c", value: "COUNT", help: "--icmp: echo requests (default 100)"},
				{name: "-i", value: "SECONDS", help: "--icmp: interval between requests (default 0.01)"},
				{name: "-W", value: "SECONDS", help: "--icmp: wait for each reply (default 1)"},
				hostFlag(),
			},
			examples: []string{"perf two-lans h1 h2 -t 2", "perf two-lans h1 10.2.0.4 --icmp -c 1000 -i 0.001 -j"},
			run:      func(e *Env, c Command) (int, error) { return e.perf(c) },
		},
	}, faultCommands(), []*cmdSpec{
		{
			name: "help", group: groupOther,
			usage:    []string{"[COMMAND [VERB]]"},
			summary:  "this help, or one command's (also: nsnet COMMAND --help)",
			help:     "Prints the list of commands, or the usage, options and examples of one.",
			args:     []argSpec{{name: "COMMAND", kind: argCommandName, optional: true}, {name: "VERB", kind: argCommandName, optional: true}},
			examples: []string{"help", "help link add", "check --help"},
			run:      func(e *Env, c Command) (int, error) { return e.help(c) },
		},
		{
			name: "version", group: groupOther, opts: optJSON,
			summary: "module version, VCS revision and time of this build (also: --version)",
			help: "Prints the module version and the VCS revision and commit time that the go command\n" +
				"recorded in this build, and the Go version. A build from a checkout has version\n" +
				"(devel) unless -ldflags \"-X github.com/nsnet/nsnet/internal/version.Stamp=VERSION\"\n" +
				"set one.",
			examples: []string{"version", "version -j"},
			run:      func(e *Env, c Command) (int, error) { return e.version(c) },
		},
		{
			name: "completion", group: groupOther,
			usage:   []string{"bash|zsh|fish"},
			summary: "print a shell completion script",
			help: "Prints a script that completes nsnet's commands, verbs, options, lab files, lab\n" +
				"names, node names, namespace names and interface names. Load it from your shell's\n" +
				"start-up file.",
			args: []argSpec{{name: "SHELL", kind: argShell}},
			examples: []string{
				"completion bash > /etc/bash_completion.d/nsnet",
				"completion zsh > \"${fpath[1]}/_nsnet\"",
				"completion fish > ~/.config/fish/completions/nsnet.fish",
			},
			run: func(e *Env, c Command) (int, error) { return e.completion(c) },
		},
		{
			name: completeCmd, hidden: true, group: groupOther,
			rest: &argSpec{name: "WORDS", optional: true},
			run:  func(e *Env, c Command) (int, error) { return e.complete(c.Argv) },
		},
	})
}

// The verbs of the iproute2 objects, in the order ip tries them (so that
// abbreviations resolve as in ip); "missing" ones are ip's, not nsnet's.

func ipHelpVerb() *cmdSpec { return &cmdSpec{name: "help", summary: "this help"} }

func missingVerbs(names ...string) []*cmdSpec {
	var vs []*cmdSpec
	for _, n := range names {
		vs = append(vs, &cmdSpec{name: n, missing: true})
	}
	return vs
}

func linkCommand() *cmdSpec {
	run := func(e *Env, c Command) (int, error) { return 0, e.link(c) }
	verbs := []*cmdSpec{
		{
			name: "add", opts: optNS, parse: parseLinkAdd,
			usage:   []string{"[name] NAME type veth peer [name] PEER [mtu N]", "[name] NAME type bridge [mtu N]"},
			summary: "create a veth pair or a bridge",
			help:    "Creates a veth pair (two interfaces joined like a cable) or a bridge, down.",
			examples: []string{"link add veth0 type veth peer name veth1",
				"link add br0 type bridge mtu 9000"},
		},
		{
			name: "set", aliases: []string{"change"}, opts: optNS, parse: parseLinkSet,
			usage:   []string{"[dev] NAME [up|down] [netns NS] [mtu N] [master BRIDGE|nomaster]"},
			summary: "change a link: state, namespace, MTU, bridge",
			help: "Changes a link. Every value is checked before anything changes; a link moved with\n" +
				"netns and set up in the same command is set up in its new namespace.",
			examples: []string{"link set veth0 up", "link set veth1 netns direct_netns"},
		},
	}
	verbs = append(verbs, missingVerbs("replace")...)
	verbs = append(verbs,
		&cmdSpec{
			name: "del", aliases: []string{"delete"}, opts: optNS, parse: parseLinkDel,
			usage:    []string{"[dev] NAME"},
			summary:  "delete a link (a veth takes its peer with it)",
			help:     "Deletes a link. Deleting one end of a veth pair deletes the other.",
			examples: []string{"link del veth0"},
		},
		&cmdSpec{
			name: "show", aliases: []string{"lst", "list"}, opts: optNS | optBrief | optJSON, parse: parseLinkShow,
			usage:   []string{"[[dev] NAME]"},
			summary: "list links, as ip link prints them",
			help: "Lists the links of the command's namespace, or one, exactly as `ip link` prints\n" +
				"them (-br as `ip -br link`, -j with ip -j's keys).",
			examples: []string{"link", "-br link", "-n direct_netns -j link show veth1"},
		})
	verbs = append(verbs, missingVerbs("xstats", "afstats", "property")...)
	verbs = append(verbs, ipHelpVerb())
	return &cmdSpec{
		name: "link", group: groupIP, ip: true, dflt: "show", verbs: verbs, run: run,
		summary: "network interfaces: veth pairs and bridges",
		help:    "Creates, changes, deletes and lists network interfaces, with ip link's grammar.",
	}
}

func addrCommand() *cmdSpec {
	verbs := []*cmdSpec{{
		name: "add", opts: optNS, parse: parseAddrModify,
		usage:    []string{"ADDR/LEN dev NAME"},
		summary:  "add an IPv4 or IPv6 address",
		help:     "Adds an address to an interface; ADDR keeps its host bits (10.200.0.2/24).",
		examples: []string{"addr add 10.200.0.2/24 dev veth0", "a add fd00::2/64 dev veth0"},
	}}
	verbs = append(verbs, missingVerbs("change")...)
	verbs[len(verbs)-1].exact = []string{"chg"}
	verbs = append(verbs, missingVerbs("replace")...)
	verbs = append(verbs,
		&cmdSpec{
			name: "del", aliases: []string{"delete"}, opts: optNS, parse: parseAddrModify,
			usage:    []string{"ADDR/LEN dev NAME"},
			summary:  "remove an address",
			help:     "Removes an address from an interface.",
			examples: []string{"addr del 10.200.0.2/24 dev veth0"},
		},
		&cmdSpec{
			name: "show", aliases: []string{"list", "lst"}, opts: optNS | optBrief | optJSON | optFamily, parse: parseAddrShow,
			usage:   []string{"[[dev] NAME]"},
			summary: "list addresses, as ip addr prints them",
			help: "Lists the interfaces of the command's namespace with their addresses, exactly as\n" +
				"`ip addr` prints them (-br as `ip -br addr`, -4/-6 one family, -j with ip -j's keys).",
			examples: []string{"addr", "-br -4 a", "-j addr show veth0"},
		})
	verbs = append(verbs, missingVerbs("flush", "save", "showdump", "restore")...)
	verbs = append(verbs, ipHelpVerb())
	return &cmdSpec{
		name: "addr", aliases: []string{"address"}, group: groupIP, ip: true, dflt: "show", verbs: verbs,
		run:     func(e *Env, c Command) (int, error) { return 0, e.addr(c) },
		summary: "IPv4 and IPv6 addresses of interfaces",
		help:    "Adds, removes and lists addresses, with ip address's grammar.",
	}
}

func routeCommand() *cmdSpec {
	verbs := []*cmdSpec{{
		name: "add", opts: optNS, parse: parseRouteModify,
		usage:    []string{"PREFIX|default [via GW] [dev NAME]"},
		summary:  "add a route to the main table",
		help:     "Adds a route to the main table; it needs a gateway (via) or a device (dev) or both.",
		examples: []string{"route add default via 10.200.0.1", "route add 10.9.0.0/16 dev veth0"},
	}}
	verbs = append(verbs, missingVerbs("change")...)
	verbs[len(verbs)-1].exact = []string{"chg"}
	verbs = append(verbs, missingVerbs("replace", "prepend", "append", "test")...)
	verbs = append(verbs,
		&cmdSpec{
			name: "del", aliases: []string{"delete"}, opts: optNS, parse: parseRouteModify,
			usage:    []string{"PREFIX|default [via GW] [dev NAME]"},
			summary:  "delete a route",
			help:     "Deletes a route from the main table.",
			examples: []string{"route del default via 10.200.0.1"},
		},
		&cmdSpec{
			name: "show", aliases: []string{"list", "lst"}, opts: optNS | optJSON | optFamily, parse: parseRouteShow,
			summary:  "list the main table",
			help:     "Lists the routes of the main table, as ip route prints them (-4/-6 one family).",
			examples: []string{"route", "-6 -j route show"},
		})
	verbs = append(verbs, missingVerbs("get", "flush", "save", "restore", "showdump")...)
	verbs = append(verbs, ipHelpVerb())
	return &cmdSpec{
		name: "route", group: groupIP, ip: true, dflt: "show", verbs: verbs,
		run:     func(e *Env, c Command) (int, error) { return 0, e.route(c) },
		summary: "routes of the main table",
		help:    "Adds, deletes and lists routes of the main table, with ip route's grammar.",
	}
}

func netnsCommand() *cmdSpec {
	verbs := []*cmdSpec{{
		name: "list", aliases: []string{"show", "lst"}, opts: optJSON, parse: parseNetnsList,
		summary:  "list named namespaces, by name",
		help:     "Lists the namespaces named in /run/netns (shared with ip netns), sorted by name.",
		examples: []string{"netns", "-j netns list"},
	}}
	verbs = append(verbs, missingVerbs("list-id")...)
	verbs = append(verbs, ipHelpVerb(),
		&cmdSpec{
			name: "add", parse: parseNetnsName,
			usage:    []string{"NAME"},
			summary:  "create a named namespace",
			help:     "Creates a network namespace named NAME, pinned in /run/netns as ip netns add does.",
			examples: []string{"netns add direct_netns"},
		})
	verbs = append(verbs, missingVerbs("set")...)
	verbs = append(verbs, &cmdSpec{
		name: "del", aliases: []string{"delete"}, parse: parseNetnsName,
		usage:    []string{"NAME"},
		summary:  "delete a named namespace",
		help:     "Deletes the name; the namespace goes when nothing else holds it.",
		examples: []string{"netns del direct_netns"},
	})
	verbs = append(verbs, missingVerbs("identify", "pids")...)
	verbs = append(verbs, &cmdSpec{
		name: "exec", parse: parseNetnsExec,
		usage:   []string{"NAME CMD [ARGS...]"},
		summary: "run a command in a named namespace",
		help: "Runs CMD in the namespace with ip netns exec's semantics: nsnet enters it, gets a\n" +
			"private mount namespace with that namespace's /sys and /etc/netns/NAME/* over /etc, and\n" +
			"becomes CMD. Everything after NAME is CMD's own.",
		args:     []argSpec{{name: "NAME", kind: argNetns}},
		rest:     &argSpec{name: "CMD", kind: argCommand},
		examples: []string{"netns exec direct_netns nsnet -br link"},
	})
	verbs = append(verbs, missingVerbs("monitor", "attach")...)
	return &cmdSpec{
		name: "netns", group: groupIP, ip: true, dflt: "list", verbs: verbs,
		run:     func(e *Env, c Command) (int, error) { return e.netnsCmd(c) },
		summary: "named network namespaces, shared with ip netns",
		help:    "Creates, deletes, lists and runs commands in named namespaces (/run/netns).",
	}
}

// hostFlag is --host, the host of a lab across machines this machine is,
// taken by every command that works on a lab.
func hostFlag() flagSpec {
	return flagSpec{name: "--host", value: "NAME", help: "in a lab across machines, the host this machine is (default: the one whose address is here)"}
}

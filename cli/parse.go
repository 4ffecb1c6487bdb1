// Package cli implements the nsnet command line: iproute2's grammar for links,
// addresses, routes and namespaces, plus nsnet's own commands. Parsing is
// pure (Parse), so the grammar is tested and fuzzed without a kernel; Run then
// executes a parsed Command.
package cli

import (
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nsnet/nsnet/internal/echo"
	"github.com/nsnet/nsnet/kernel"
	"github.com/nsnet/nsnet/netns"
)

// Options are the global options that precede the object.
type Options struct {
	NS     string // -n NS: run the command against that named namespace
	Brief  bool   // -br
	JSON   bool   // -j
	Family int    // -4 / -6, 0 for both
}

// Command is one parsed command line.
type Command struct {
	Opts   Options
	Object string // the command's name in the table (commands.go): link, addr, ..., up, check
	Verb   string // its verb (add, del, set, show, list, exec), for commands that have verbs

	Name  string // link, namespace or device name
	Peer  string // link add ... peer name PEER
	Type  string // link add ... type veth|bridge
	MTU   int    // link add/set ... mtu N
	Up    *bool  // link set ... up|down
	SetNS string // link set ... netns NS
	// Master is the bridge for link set ... master BR; NoMaster detaches.
	Master   string
	NoMaster bool

	Prefix  netip.Prefix // addr add/del PREFIX, route add PREFIX
	Gateway netip.Addr   // route add ... via GW

	Count    int           // ping -c
	Timeout  time.Duration // ping -W
	Interval time.Duration // ping -i
	Quiet    bool          // ping -q
	Addr     netip.Addr    // ping ADDR
	Host     string        // ping NAME, resolved from the hosts file

	Proto  string // serve PROTO
	Listen string // serve PROTO HOST:PORT
	URL    string // fetch URL

	// Args are a table command's positional arguments and Flags its own
	// options given (a switch maps to ""); Argv is a command line passed on
	// as given (netns exec NAME ARGV..., sandbox -- ARGV..., exec LAB NODE
	// ARGV...).
	Args  []string
	Flags map[string]string
	Argv  []string
}

// UsageError is a command line that cannot be parsed. It names the rule.
type UsageError struct {
	Context string // e.g. "link add"
	Msg     string
}

func (e *UsageError) Error() string {
	if e.Context == "" {
		return e.Msg
	}
	return e.Context + ": " + e.Msg
}

func usagef(ctx, format string, a ...any) error {
	return &UsageError{Context: ctx, Msg: echo.Sprintf(format, a...)}
}

// Parse parses a command line (without the program name).
func Parse(args []string) (Command, error) {
	var c Command
	if len(args) > 0 && args[0] == completeCmd {
		// The words being completed are data, options and all.
		return Command{Object: completeCmd, Argv: args[1:]}, nil
	}
	help := false
	i := 0
	for ; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			i++
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			break
		}
		n, err := c.optionBefore(args[i:], &help)
		if err != nil {
			return c, err
		}
		i += n - 1
	}
	rest := args[i:]
	if help {
		return helpCommand(rest), nil
	}
	if c.Object == "version" {
		if len(rest) > 0 {
			return c, usagef("version", "unexpected argument %q", rest[0])
		}
		return c, nil
	}
	if len(rest) == 0 {
		return helpCommand(nil), nil
	}
	s, err := lookup(rest[0])
	if err != nil {
		return c, err
	}
	return parseFor(c, s, rest[1:])
}

// helpCommand is "nsnet help TOPIC...".
func helpCommand(topic []string) Command {
	return Command{Object: "help", Args: topic}
}

// lookup finds the command a word names: a command's own name first, then
// ip's object abbreviations in ip's order.
func lookup(word string) (*cmdSpec, error) {
	specs := commands()
	for _, s := range specs {
		if s.is(word, false) {
			return s, nil
		}
	}
	for _, o := range ipObjects() {
		if !matches(word, o) {
			continue
		}
		for _, s := range specs {
			if s.is(o, false) {
				return s, nil
			}
		}
		return nil, usagef("", "%q is ip's %q object, which nsnet does not implement%s", word, o, suggest(word, specs))
	}
	return nil, usagef("", "unknown command %q%s", word, suggest(word, specs))
}

// parseFor parses the arguments after command s's name.
func parseFor(c Command, s *cmdSpec, args []string) (Command, error) {
	c.Object = s.name
	leaf, path := s, s.name
	if len(s.verbs) > 0 {
		switch {
		case len(args) == 0:
			leaf = s.verb(s.dflt)
		case isHelpFlag(args[0]):
			return helpCommand([]string{s.name}), nil
		default:
			v := s.verb(args[0])
			switch {
			case v == nil && s.ip && isGlobalOption(args[0]):
				return c, usagef(s.name, "options go before the object, as in ip: nsnet %s %s ...", args[0], s.name)
			case v == nil:
				return c, usagef(s.name, "unknown command %q (commands: %s)", args[0], strings.Join(verbNames(s), ", "))
			case v.missing:
				return c, usagef(s.name, "%q is ip %s's %q, which nsnet does not implement (commands: %s)", args[0], s.name, v.name, strings.Join(verbNames(s), ", "))
			case v.name == "help":
				return helpCommand([]string{s.name}), nil
			}
			leaf, args = v, args[1:]
		}
		c.Verb = leaf.name
		path += " " + leaf.name
	}
	if leaf.parse != nil {
		if wantsHelp(leaf, args) {
			return helpCommand(strings.Fields(path)), nil
		}
		if s.ip {
			for _, a := range args[:helpScan(leaf, args)] {
				if isGlobalOption(a) {
					return c, usagef(path, "options go before the object, as in ip: nsnet %s %s ...", a, path)
				}
			}
		}
		var err error
		if c, err = leaf.parse(c, args); err != nil {
			return c, err
		}
	} else {
		var help bool
		var err error
		if c, help, err = parseFlags(leaf, path, c, args); err != nil || help {
			if help {
				return helpCommand(strings.Fields(path)), nil
			}
			return c, err
		}
	}
	if extra := c.Opts.given() &^ leaf.opts; extra != 0 {
		return c, usagef(path, "option %s does not apply to \"nsnet %s\"%s", extra.names(), path, leaf.opts.applies())
	}
	return c, nil
}

func verbNames(s *cmdSpec) []string {
	var ns []string
	for _, v := range s.verbs {
		if !v.missing && !v.hidden {
			ns = append(ns, v.name)
		}
	}
	return ns
}

func isHelpFlag(a string) bool { return a == "-h" || a == "--help" || a == "-help" }

// helpScan is how many of args are nsnet's before a command line that is
// passed on as given (netns exec NAME CMD...).
func helpScan(s *cmdSpec, args []string) int {
	n := len(args)
	if s.rest != nil && len(s.args) < n {
		n = len(s.args)
	}
	for i, a := range args[:n] {
		if a == "--" {
			return i
		}
	}
	return n
}

func wantsHelp(s *cmdSpec, args []string) bool {
	for _, a := range args[:helpScan(s, args)] {
		if isHelpFlag(a) {
			return true
		}
	}
	return false
}

// parseFlags reads a command's own options, the global options (which the
// lab commands take after the verb too), positional arguments and the
// command line passed on after them. help is true for -h or --help.
func parseFlags(s *cmdSpec, path string, c Command, args []string) (Command, bool, error) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			if s.rest == nil {
				return c, false, usagef(path, "unexpected argument %q", a)
			}
			c.Argv = args[i+1:]
			break
		}
		flag := strings.HasPrefix(a, "-") && a != "-"
		if !flag && s.rest != nil && len(c.Args) == len(s.args) {
			c.Argv = args[i:]
			break
		}
		if !flag {
			if len(c.Args) == len(s.args) {
				return c, false, usagef(path, "unexpected argument %q", a)
			}
			c.Args = append(c.Args, a)
			continue
		}
		if isHelpFlag(a) {
			return c, true, nil
		}
		name, val, hasVal := strings.Cut(a, "=")
		if f := s.flag(name); f != nil {
			switch {
			case f.value == "" && hasVal:
				return c, false, usagef(path, "option %s takes no value", name)
			case f.value != "" && !hasVal:
				if i+1 >= len(args) {
					return c, false, usagef(path, "option %s needs a value (%s %s)", name, name, f.value)
				}
				i++
				val = args[i]
			}
			if c.Flags == nil {
				c.Flags = map[string]string{}
			}
			c.Flags[name] = val
			continue
		}
		n, err := c.optionAfter(args[i:])
		if err != nil {
			return c, false, usagef(path, "%v%s", err, suggestFlag(name, s))
		}
		i += n - 1
	}
	if len(c.Args) < s.required() {
		return c, false, usagef(path, "missing %s", s.args[len(c.Args)].name)
	}
	if s.rest != nil && !s.rest.optional && len(c.Argv) == 0 && !c.has(labGateFlag) && !c.has(labReaperFlag) {
		return c, false, usagef(path, "missing %s", s.rest.name)
	}
	return c, false, nil
}

func (s *cmdSpec) required() int {
	n := 0
	for _, a := range s.args {
		if !a.optional {
			n++
		}
	}
	return n
}

// has reports whether the command line gave one of the command's switches.
func (c Command) has(flag string) bool {
	_, ok := c.Flags[flag]
	return ok
}

// flagArgs are the command's own options as arguments again ("-t", "2",
// "--icmp"), sorted, for a command that reads them with a parser of its own.
func (c Command) flagArgs() []string {
	names := make([]string, 0, len(c.Flags))
	for n := range c.Flags {
		names = append(names, n)
	}
	sort.Strings(names)
	var args []string
	for _, n := range names {
		args = append(args, n)
		if v := c.Flags[n]; v != "" {
			args = append(args, v)
		}
	}
	return args
}

// given is the set of global options the command line gave.
func (o Options) given() optSet {
	var s optSet
	if o.NS != "" {
		s |= optNS
	}
	if o.Brief {
		s |= optBrief
	}
	if o.JSON {
		s |= optJSON
	}
	if o.Family != 0 {
		s |= optFamily
	}
	return s
}

func (s optSet) list() []string {
	var ns []string
	for _, o := range []struct {
		bit  optSet
		name string
	}{{optNS, "-n NS"}, {optBrief, "-br"}, {optJSON, "-j"}, {optFamily, "-4/-6"}} {
		if s&o.bit != 0 {
			ns = append(ns, o.name)
		}
	}
	return ns
}

func (s optSet) names() string { return strings.Join(s.list(), " and ") }

func (s optSet) applies() string {
	if s == 0 {
		return " (it takes none of -n, -br, -j, -4, -6)"
	}
	return " (options that apply: " + strings.Join(s.list(), ", ") + ")"
}

// ipOptionNames are ip's options in the order ip (ip/ip.c) tries them;
// ip reads "--x" as "-x" and takes the first option the word is a prefix
// of, except for the ones it compares whole (exactOpt).
func ipOptionNames() []string {
	return []string{
		"-loops", "-family", "-4", "-6", "-0", "-M", "-B", "-human", "-human-readable",
		"-iec", "-stats", "-statistics", "-details", "-resolve", "-oneline", "-timestamp",
		"-tshort", "-Version", "-force", "-batch", "-brief", "-json", "-pretty", "-rcvbuf",
		"-color", "-help", "-netns", "-Numeric", "-all", "-echo",
	}
}

func exactOpt(o string) bool {
	switch o {
	case "-4", "-6", "-0", "-M", "-B", "-echo":
		return true
	}
	return false
}

// optionBefore reads one option before the object, as ip reads it, and
// returns how many arguments it took. -h is help (ip reads it as -human,
// which nsnet has no use for; every other tool reads it as help).
func (c *Command) optionBefore(args []string, help *bool) (int, error) {
	a := args[0]
	switch a {
	case "-h":
		*help = true
		return 1, nil
	case "-v", "-version", "--version":
		// ip spells it -V / -Version; everyone else --version.
		c.Object = "version"
		return 1, nil
	}
	opt := a
	if strings.HasPrefix(opt, "--") {
		opt = opt[1:]
	}
	for _, o := range ipOptionNames() {
		if !(opt == o || !exactOpt(o) && matches(opt, o)) {
			continue
		}
		switch o {
		case "-help":
			*help = true
		case "-Version":
			c.Object = "version"
		case "-brief":
			c.Opts.Brief = true
		case "-json":
			c.Opts.JSON = true
		case "-4":
			c.Opts.Family = 4
		case "-6":
			c.Opts.Family = 6
		case "-netns":
			return c.setNS(a, args)
		default:
			return 0, usagef("", "option %q is ip's %s, which nsnet does not implement (options: -n NS, -br, -j, -4, -6, -h, -V)", a, o)
		}
		return 1, nil
	}
	return 0, usagef("", "unknown option %q (options: -n NS, -br, -j, -4, -6, -h, -V)", a)
}

// optionAfter reads a global option given after a lab command's verb. Only
// the full forms are taken there: abbreviations would collide with the
// command's own options.
func (c *Command) optionAfter(args []string) (int, error) {
	a := args[0]
	name, val, hasVal := strings.Cut(a, "=")
	switch name {
	case "-j", "--json", "-json":
		c.Opts.JSON = true
	case "-br", "--brief", "-brief":
		c.Opts.Brief = true
	case "-4":
		c.Opts.Family = 4
	case "-6":
		c.Opts.Family = 6
	case "-n", "--netns", "-netns":
		if hasVal {
			return c.setNS(name, []string{name, val})
		}
		return c.setNS(a, args)
	default:
		return 0, echo.Errorf("unknown option %q", a)
	}
	if hasVal {
		return 0, fmt.Errorf("option %s takes no value", name)
	}
	return 1, nil
}

func (c *Command) setNS(opt string, args []string) (int, error) {
	if len(args) < 2 {
		return 0, usagef("", "option %s needs a namespace name", opt)
	}
	if err := netns.ValidateName(args[1]); err != nil {
		return 0, usagef("", "option %s: %v", opt, err)
	}
	c.Opts.NS = args[1]
	return 2, nil
}

// isGlobalOption reports the options that belong before an iproute2 object.
func isGlobalOption(a string) bool {
	switch a {
	case "-j", "--json", "-json", "-br", "--brief", "-brief", "-4", "-6", "-n", "--netns", "-netns":
		return true
	}
	return false
}

// devName reads "NAME" or "dev NAME".
func devName(ctx string, args []string) (string, []string, error) {
	if len(args) == 0 {
		return "", nil, usagef(ctx, "missing device name")
	}
	if args[0] == "dev" {
		args = args[1:]
		if len(args) == 0 {
			return "", nil, usagef(ctx, `"dev" needs a device name`)
		}
	}
	if err := kernel.ValidateLinkName(args[0]); err != nil {
		return "", nil, usagef(ctx, "%v", err)
	}
	return args[0], args[1:], nil
}

func noMore(ctx string, args []string) error {
	if len(args) > 0 {
		return usagef(ctx, "unexpected argument %q", args[0])
	}
	return nil
}

func parseLinkAdd(c Command, args []string) (Command, error) {
	const ctx = "link add"
	for len(args) > 0 {
		kw := args[0]
		switch kw {
		case "name", "dev":
			if len(args) < 2 {
				return c, usagef(ctx, "%q needs a value", kw)
			}
			if err := kernel.ValidateLinkName(args[1]); err != nil {
				return c, usagef(ctx, "%v", err)
			}
			c.Name, args = args[1], args[2:]
		case "type":
			if len(args) < 2 {
				return c, usagef(ctx, `"type" needs a value (veth or bridge)`)
			}
			c.Type, args = args[1], args[2:]
			if c.Type != "veth" && c.Type != "bridge" {
				return c, usagef(ctx, "unsupported type %q (supported: veth, bridge)", c.Type)
			}
			if c.Type == "veth" && len(args) > 0 && args[0] == "peer" {
				if len(args) < 2 {
					return c, usagef(ctx, `"peer" needs "name PEER"`)
				}
				p := args[1:]
				if p[0] == "name" {
					p = p[1:]
				}
				if len(p) == 0 {
					return c, usagef(ctx, "missing peer name")
				}
				if err := kernel.ValidateLinkName(p[0]); err != nil {
					return c, usagef(ctx, "peer: %v", err)
				}
				c.Peer, args = p[0], p[1:]
			}
		case "mtu":
			if len(args) < 2 {
				return c, usagef(ctx, `"mtu" needs a value`)
			}
			m, err := parseMTU(args[1])
			if err != nil {
				return c, usagef(ctx, "%v", err)
			}
			c.MTU, args = m, args[2:]
		default:
			if c.Name == "" && c.Type == "" {
				if err := kernel.ValidateLinkName(kw); err != nil {
					return c, usagef(ctx, "%v", err)
				}
				c.Name, args = kw, args[1:]
				continue
			}
			return c, usagef(ctx, "unknown keyword %q (expected: NAME, type veth peer name PEER, type bridge, mtu N)", kw)
		}
	}
	switch {
	case c.Name == "":
		return c, usagef(ctx, "missing interface name")
	case c.Type == "":
		return c, usagef(ctx, `missing "type" (veth or bridge)`)
	case c.Type == "veth" && c.Peer == "":
		return c, usagef(ctx, `veth needs "peer name PEER"`)
	case c.Type == "veth" && c.Peer == c.Name:
		return c, usagef(ctx, "peer name %q is the same as the interface name", c.Peer)
	}
	return c, nil
}

func parseMTU(s string) (int, error) {
	m, err := strconv.Atoi(s)
	if err != nil {
		return 0, echo.Errorf("mtu %q is not a number", s)
	}
	if err := kernel.ValidateMTU(m, false); err != nil {
		return 0, err
	}
	return m, nil
}

func parseLinkSet(c Command, args []string) (Command, error) {
	const ctx = "link set"
	name, args, err := devName(ctx, args)
	if err != nil {
		return c, err
	}
	c.Name = name
	if len(args) == 0 {
		return c, usagef(ctx, "nothing to set (expected: up, down, netns NS, mtu N, master BR, nomaster)")
	}
	for len(args) > 0 {
		kw := args[0]
		switch kw {
		case "up", "down":
			up := kw == "up"
			c.Up, args = &up, args[1:]
		case "netns":
			if len(args) < 2 {
				return c, usagef(ctx, `"netns" needs a namespace name`)
			}
			if err := netns.ValidateName(args[1]); err != nil {
				return c, usagef(ctx, "%v", err)
			}
			c.SetNS, args = args[1], args[2:]
		case "mtu":
			if len(args) < 2 {
				return c, usagef(ctx, `"mtu" needs a value`)
			}
			m, err := parseMTU(args[1])
			if err != nil {
				return c, usagef(ctx, "%v", err)
			}
			c.MTU, args = m, args[2:]
		case "master":
			if len(args) < 2 {
				return c, usagef(ctx, `"master" needs a bridge name`)
			}
			if err := kernel.ValidateLinkName(args[1]); err != nil {
				return c, usagef(ctx, "master: %v", err)
			}
			c.Master, args = args[1], args[2:]
		case "nomaster":
			c.NoMaster, args = true, args[1:]
		default:
			return c, usagef(ctx, "unknown keyword %q (expected: up, down, netns NS, mtu N, master BR, nomaster)", kw)
		}
	}
	return c, nil
}

// ParsePrefix parses "ADDR/LEN" (or a bare address, as a host prefix) the way
// `ip addr add` does, keeping the host bits: 10.200.0.2/24 stays as written.
func ParsePrefix(s string) (netip.Prefix, error) {
	if s == "" {
		return netip.Prefix{}, fmt.Errorf("empty address")
	}
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, echo.Errorf("invalid address %q: expected IPv4 or IPv6 address with /LEN", s)
		}
		if a.Zone() != "" {
			return netip.Prefix{}, echo.Errorf("invalid address %q: zones are not allowed", s)
		}
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, echo.Errorf("invalid prefix %q: expected ADDR/LEN with LEN 0-32 for IPv4, 0-128 for IPv6", s)
	}
	if p.Addr().Is4In6() {
		return netip.Prefix{}, echo.Errorf("invalid prefix %q: IPv4-mapped IPv6 addresses are not allowed", s)
	}
	return p, nil
}

func parsePing(c Command, args []string) (Command, error) {
	const ctx = "ping"
	c.Count = -1
	c.Timeout = 1 * time.Second
	c.Interval = 1 * time.Second
	for len(args) > 0 {
		a := args[0]
		if len(a) > 2 && (strings.HasPrefix(a, "-c") || strings.HasPrefix(a, "-W") || strings.HasPrefix(a, "-i")) {
			// ping accepts "-c1" as well as "-c 1".
			args = append([]string{a[:2], a[2:]}, args[1:]...)
			a = a[:2]
		}
		switch a {
		case "-c", "-W", "-i":
			if len(args) < 2 {
				return c, usagef(ctx, "option %s needs a value", a)
			}
			v := args[1]
			args = args[2:]
			switch a {
			case "-c":
				n, err := strconv.Atoi(v)
				if err != nil || n < 1 || n > 1_000_000 {
					return c, usagef(ctx, "-c %q: count must be a whole number from 1 to 1000000", v)
				}
				c.Count = n
			default:
				f, err := strconv.ParseFloat(v, 64)
				if err != nil || f < 0.001 || f > 3600 {
					return c, usagef(ctx, "%s %q: must be seconds from 0.001 to 3600", a, v)
				}
				d := time.Duration(f * float64(time.Second))
				if a == "-i" {
					c.Interval = d
				} else {
					c.Timeout = d
				}
			}
		case "-q":
			c.Quiet, args = true, args[1:]
		default:
			if strings.HasPrefix(a, "-") {
				return c, usagef(ctx, "unknown option %q (options: -c COUNT, -W TIMEOUT, -i INTERVAL, -q)", a)
			}
			if c.Addr.IsValid() || c.Host != "" {
				return c, usagef(ctx, "unexpected argument %q", a)
			}
			addr, err := netip.ParseAddr(a)
			if err == nil && addr.Zone() == "" {
				c.Addr, args = addr.Unmap(), args[1:]
				continue
			}
			if err == nil || !hostnameRE.MatchString(a) {
				return c, usagef(ctx, "invalid address %q: expected an IPv4 or IPv6 address or a name from the hosts file", a)
			}
			c.Host, args = a, args[1:]
		}
	}
	if !c.Addr.IsValid() && c.Host == "" {
		return c, usagef(ctx, "missing address")
	}
	return c, nil
}

func parseServe(c Command, args []string) (Command, error) {
	const ctx = "serve"
	if len(args) != 2 {
		return c, usagef(ctx, "expected PROTO HOST:PORT with PROTO one of http, tcp, udp")
	}
	switch args[0] {
	case "http", "tcp", "udp":
		c.Proto = args[0]
	default:
		return c, usagef(ctx, "unknown protocol %q (expected http, tcp or udp)", args[0])
	}
	if port, ok := strings.CutPrefix(args[1], ":"); ok {
		// Every address, both families (what a lab's responders use).
		if n, err := strconv.ParseUint(port, 10, 16); err == nil && n > 0 {
			c.Listen = ":" + port
			return c, nil
		}
	}
	ap, err := netip.ParseAddrPort(args[1])
	if err != nil {
		return c, usagef(ctx, "invalid listen address %q: expected IP:PORT or :PORT (every address), e.g. 127.0.0.1:8080, [::1]:8080 or :8080", args[1])
	}
	c.Listen = ap.String()
	return c, nil
}

func parseFetch(c Command, args []string) (Command, error) {
	const ctx = "fetch"
	c.Timeout = 2 * time.Second
	for len(args) > 0 {
		switch a := args[0]; {
		case a == "-W":
			if len(args) < 2 {
				return c, usagef(ctx, "option -W needs a value")
			}
			f, err := strconv.ParseFloat(args[1], 64)
			if err != nil || f < 0.001 || f > 3600 {
				return c, usagef(ctx, "-W %q: must be seconds from 0.001 to 3600", args[1])
			}
			c.Timeout, args = time.Duration(f*float64(time.Second)), args[2:]
		case c.URL == "" && (strings.HasPrefix(a, "http://")):
			c.URL, args = a, args[1:]
		default:
			return c, usagef(ctx, "unexpected argument %q (usage: fetch [-W SECONDS] http://HOST:PORT/PATH)", a)
		}
	}
	if c.URL == "" {
		return c, usagef(ctx, "missing URL (http://HOST:PORT/PATH)")
	}
	return c, nil
}

func parseLinkDel(c Command, args []string) (Command, error) {
	name, rest, err := devName("link del", args)
	if err != nil {
		return c, err
	}
	c.Name = name
	return c, noMore("link del", rest)
}

func parseLinkShow(c Command, args []string) (Command, error) {
	return parseShowDev("link show", c, args)
}
func parseAddrShow(c Command, args []string) (Command, error) {
	return parseShowDev("addr show", c, args)
}

// parseShowDev reads "show [[dev] NAME]" of link and addr.
func parseShowDev(ctx string, c Command, args []string) (Command, error) {
	if len(args) == 0 {
		return c, nil
	}
	name, rest, err := devName(ctx, args)
	if err != nil {
		return c, err
	}
	c.Name = name
	return c, noMore(ctx, rest)
}

func parseAddrModify(c Command, args []string) (Command, error) {
	ctx := "addr " + c.Verb
	for len(args) > 0 {
		switch kw := args[0]; {
		case kw == "dev":
			name, rest, err := devName(ctx, args)
			if err != nil {
				return c, err
			}
			c.Name, args = name, rest
		case kw == "local":
			if len(args) < 2 {
				return c, usagef(ctx, `"local" needs an address`)
			}
			args = args[1:]
		case !c.Prefix.IsValid():
			p, err := ParsePrefix(kw)
			if err != nil {
				return c, usagef(ctx, "%v", err)
			}
			c.Prefix, args = p, args[1:]
		default:
			return c, usagef(ctx, "unknown keyword %q (expected: ADDR/LEN dev NAME)", kw)
		}
	}
	if !c.Prefix.IsValid() {
		return c, usagef(ctx, "missing address (ADDR/LEN)")
	}
	if c.Name == "" {
		return c, usagef(ctx, `missing "dev NAME"`)
	}
	return c, nil
}

func parseRouteModify(c Command, args []string) (Command, error) {
	ctx := "route " + c.Verb
	dstSet := false
	for len(args) > 0 {
		switch kw := args[0]; {
		case kw == "via":
			if len(args) < 2 {
				return c, usagef(ctx, `"via" needs a gateway address`)
			}
			gw, err := netip.ParseAddr(args[1])
			if err != nil || gw.Zone() != "" {
				return c, usagef(ctx, "invalid gateway %q: expected an IPv4 or IPv6 address", args[1])
			}
			c.Gateway, args = gw.Unmap(), args[2:]
		case kw == "dev":
			name, rest, err := devName(ctx, args)
			if err != nil {
				return c, err
			}
			c.Name, args = name, rest
		case !dstSet && kw == "default":
			dstSet, args = true, args[1:]
		case !dstSet:
			p, err := ParsePrefix(kw)
			if err != nil {
				return c, usagef(ctx, "%v", err)
			}
			c.Prefix, dstSet, args = p.Masked(), true, args[1:]
		default:
			return c, usagef(ctx, "unknown keyword %q (expected: PREFIX|default [via GW] [dev NAME])", kw)
		}
	}
	if !dstSet {
		return c, usagef(ctx, "missing destination (PREFIX or default)")
	}
	if !c.Gateway.IsValid() && c.Name == "" {
		return c, usagef(ctx, `needs "via GW" or "dev NAME"`)
	}
	if c.Prefix.IsValid() && c.Gateway.IsValid() && c.Prefix.Addr().Is4() != c.Gateway.Is4() {
		return c, usagef(ctx, "destination %s and gateway %s are different address families", c.Prefix, c.Gateway)
	}
	return c, nil
}

func parseRouteShow(c Command, args []string) (Command, error) {
	return c, noMore("route show", args)
}

func parseNetnsList(c Command, args []string) (Command, error) {
	return c, noMore("netns list", args)
}

func parseNetnsName(c Command, args []string) (Command, error) {
	ctx := "netns " + c.Verb
	if len(args) == 0 {
		return c, usagef(ctx, "missing namespace name")
	}
	if err := netns.ValidateName(args[0]); err != nil {
		return c, usagef(ctx, "%v", err)
	}
	c.Name = args[0]
	return c, noMore(ctx, args[1:])
}

func parseNetnsExec(c Command, args []string) (Command, error) {
	if len(args) == 0 {
		return c, usagef("netns exec", "missing namespace name")
	}
	if err := netns.ValidateName(args[0]); err != nil {
		return c, usagef("netns exec", "%v", err)
	}
	c.Name = args[0]
	c.Argv = args[1:]
	if len(c.Argv) > 0 && c.Argv[0] == "--" {
		c.Argv = c.Argv[1:]
	}
	if len(c.Argv) == 0 {
		return c, usagef("netns exec", "missing command")
	}
	return c, nil
}

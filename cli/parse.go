// Package cli implements the nsnet command line: iproute2's grammar for links,
// addresses, routes and namespaces, plus nsnet's own commands. Parsing is
// pure (Parse), so the grammar is tested and fuzzed without a kernel; Run then
// executes a parsed Command.
package cli

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

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
	Object string // link, addr, route, netns, ping, sandbox, demo, help, version, or a lab command
	Verb   string // add, del, set, show, list, exec

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

	Proto  string // serve PROTO
	Listen string // serve PROTO HOST:PORT
	URL    string // fetch URL

	Argv []string // netns exec NAME ARGV..., sandbox -- ARGV..., lab commands' arguments
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
	return &UsageError{Context: ctx, Msg: fmt.Sprintf(format, a...)}
}

// isLabCommand reports the commands handled by the lab and check packages;
// Parse only collects their arguments.
func isLabCommand(obj string) bool {
	switch obj {
	case "up", "down", "plan", "status", "labs", "exec", "check", "bench", "perf":
		return true
	}
	return false
}

// Parse parses a command line (without the program name).
func Parse(args []string) (Command, error) {
	var c Command
	i := 0
	for ; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") || a == "-" {
			break
		}
		opt := strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-")
		switch opt {
		case "n", "netns":
			if i+1 >= len(args) {
				return c, usagef("", "option %s needs a namespace name", a)
			}
			i++
			if err := netns.ValidateName(args[i]); err != nil {
				return c, usagef("", "option %s: %v", a, err)
			}
			c.Opts.NS = args[i]
		case "br", "brief":
			c.Opts.Brief = true
		case "j", "json":
			c.Opts.JSON = true
		case "4":
			c.Opts.Family = 4
		case "6":
			c.Opts.Family = 6
		case "h", "help":
			c.Object = "help"
			return c, nil
		case "V", "version":
			c.Object = "version"
			return c, nil
		default:
			return c, usagef("", "unknown option %q (options: -n NS, -br, -j, -4, -6, -h, -V)", a)
		}
	}
	rest := args[i:]
	if len(rest) == 0 {
		c.Object = "help"
		return c, nil
	}
	obj, rest := rest[0], rest[1:]
	switch {
	case matches(obj, "link", 1):
		c.Object = "link"
		return parseLink(c, rest)
	case matches(obj, "address", 1) || obj == "addr":
		c.Object = "addr"
		return parseAddr(c, rest)
	case matches(obj, "route", 1):
		c.Object = "route"
		return parseRoute(c, rest)
	case obj == "netns":
		c.Object = "netns"
		return parseNetns(c, rest)
	case obj == "ping":
		c.Object = "ping"
		return parsePing(c, rest)
	case obj == "sandbox":
		c.Object = "sandbox"
		if len(rest) > 0 && rest[0] == "--" {
			rest = rest[1:]
		}
		c.Argv = rest
		return c, nil
	case obj == "serve":
		c.Object = "serve"
		return parseServe(c, rest)
	case obj == "fetch":
		c.Object = "fetch"
		return parseFetch(c, rest)
	case obj == "demo" && len(rest) == 1 && rest[0] == demoInsideArg:
		c.Object = obj
		c.Argv = rest
		return c, nil
	case obj == "demo", obj == "help", obj == "version":
		c.Object = obj
		if len(rest) > 0 {
			return c, usagef(obj, "unexpected argument %q", rest[0])
		}
		return c, nil
	case isLabCommand(obj):
		c.Object = obj
		c.Argv = rest
		return c, nil
	}
	return c, usagef("", "unknown object %q (objects: link, addr, route, netns, ping, serve, fetch, sandbox, demo, up, down, plan, status, labs, exec, check)", obj)
}

// matches reports whether word is a prefix of full at least min bytes long,
// which is how iproute2 accepts "l", "li", "lin" for "link".
func matches(word, full string, min int) bool {
	return len(word) >= min && len(word) <= len(full) && full[:len(word)] == word
}

func parseLink(c Command, args []string) (Command, error) {
	if len(args) == 0 {
		c.Verb = "show"
		return c, nil
	}
	verb, args := args[0], args[1:]
	switch {
	case verb == "add":
		c.Verb = "add"
		return parseLinkAdd(c, args)
	case verb == "del" || verb == "delete":
		c.Verb = "del"
		name, rest, err := devName("link del", args)
		if err != nil {
			return c, err
		}
		c.Name = name
		return c, noMore("link del", rest)
	case verb == "set":
		c.Verb = "set"
		return parseLinkSet(c, args)
	case verb == "show" || verb == "list" || verb == "ls" || verb == "lst":
		c.Verb = "show"
		if len(args) == 0 {
			return c, nil
		}
		name, rest, err := devName("link show", args)
		if err != nil {
			return c, err
		}
		c.Name = name
		return c, noMore("link show", rest)
	}
	return c, usagef("link", "unknown command %q (commands: add, del, set, show)", verb)
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
		return 0, fmt.Errorf("mtu %q is not a number", s)
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
			return netip.Prefix{}, fmt.Errorf("invalid address %q: expected IPv4 or IPv6 address with /LEN", s)
		}
		if a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("invalid address %q: zones are not allowed", s)
		}
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("invalid prefix %q: expected ADDR/LEN with LEN 0-32 for IPv4, 0-128 for IPv6", s)
	}
	if p.Addr().Is4In6() {
		return netip.Prefix{}, fmt.Errorf("invalid prefix %q: IPv4-mapped IPv6 addresses are not allowed", s)
	}
	return p, nil
}

func parseAddr(c Command, args []string) (Command, error) {
	if len(args) == 0 {
		c.Verb = "show"
		return c, nil
	}
	verb, args := args[0], args[1:]
	switch {
	case verb == "add" || verb == "del" || verb == "delete":
		c.Verb = verb
		if verb == "delete" {
			c.Verb = "del"
		}
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
	case verb == "show" || verb == "list" || verb == "ls" || verb == "lst":
		c.Verb = "show"
		if len(args) == 0 {
			return c, nil
		}
		name, rest, err := devName("addr show", args)
		if err != nil {
			return c, err
		}
		c.Name = name
		return c, noMore("addr show", rest)
	}
	return c, usagef("addr", "unknown command %q (commands: add, del, show)", verb)
}

func parseRoute(c Command, args []string) (Command, error) {
	if len(args) == 0 {
		c.Verb = "show"
		return c, nil
	}
	verb, args := args[0], args[1:]
	switch {
	case verb == "add" || verb == "del" || verb == "delete":
		c.Verb = verb
		if verb == "delete" {
			c.Verb = "del"
		}
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
	case verb == "show" || verb == "list" || verb == "ls":
		c.Verb = "show"
		return c, noMore("route show", args)
	}
	return c, usagef("route", "unknown command %q (commands: add, del, show)", verb)
}

func parseNetns(c Command, args []string) (Command, error) {
	if len(args) == 0 {
		c.Verb = "list"
		return c, nil
	}
	verb, args := args[0], args[1:]
	switch verb {
	case "add", "del", "delete":
		c.Verb = verb
		if verb == "delete" {
			c.Verb = "del"
		}
		ctx := "netns " + c.Verb
		if len(args) == 0 {
			return c, usagef(ctx, "missing namespace name")
		}
		if err := netns.ValidateName(args[0]); err != nil {
			return c, usagef(ctx, "%v", err)
		}
		c.Name = args[0]
		return c, noMore(ctx, args[1:])
	case "list", "ls", "show":
		c.Verb = "list"
		return c, noMore("netns list", args)
	case "exec":
		c.Verb = "exec"
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
	return c, usagef("netns", "unknown command %q (commands: add, del, list, exec)", verb)
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
			if c.Addr.IsValid() {
				return c, usagef(ctx, "unexpected argument %q", a)
			}
			addr, err := netip.ParseAddr(a)
			if err != nil || addr.Zone() != "" {
				return c, usagef(ctx, "invalid address %q: expected an IPv4 or IPv6 address (names are not resolved)", a)
			}
			c.Addr, args = addr.Unmap(), args[1:]
		}
	}
	if !c.Addr.IsValid() {
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
	ap, err := netip.ParseAddrPort(args[1])
	if err != nil {
		return c, usagef(ctx, "invalid listen address %q: expected IP:PORT, e.g. 127.0.0.1:8080 or [::1]:8080", args[1])
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

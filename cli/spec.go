package cli

// This file holds the shape of nsnet's command table (commands.go): what
// parsing, dispatch, help and completion need to know about a command.
//
// nsnet keeps its own parser instead of a library such as spf13/cobra
// (pflag): iproute2's grammar has single-dash long options (-br, -json,
// -netns NS) that pflag reads as bundles of short ones, options that go
// before the object, keywords rather than flags (link add NAME type veth peer
// name PEER), and abbreviations resolved by ip's first match in a fixed
// order (`ip link s` is set, `ip a` is address) rather than by unique
// prefix; cobra's prefix matching is a package-level switch and unique-prefix
// only. What cobra would add — help and completion generated from one
// description of each command — is what this table gives.

// optSet is a set of the global options (-n, -br, -j, -4/-6).
type optSet uint8

const (
	optNS optSet = 1 << iota
	optBrief
	optJSON
	optFamily
)

// argKind says what an argument or a flag's value is, for completion.
type argKind int

const (
	argWord        argKind = iota // anything: nothing to offer
	argFile                       // a file name
	argLab                        // a lab that is up (nsnet labs)
	argLabFile                    // a lab file or a lab that is up
	argNode                       // a node of the lab named by the argument before
	argNetns                      // a named namespace
	argDev                        // an interface of the command's namespace
	argCommand                    // a command line, run as given
	argCommandName                // a command of nsnet (help TOPIC)
	argShell                      // bash, zsh or fish
	argShape                      // a generated topology's shape (nsnet new)
)

// flagSpec is one of a command's own options.
type flagSpec struct {
	name   string  // "--all"
	value  string  // the value's name ("FILE"), "" for a switch
	help   string  // one line
	kind   argKind // what the value is
	hidden bool    // internal (nsnet starting itself): not in help or completion
}

// argSpec is one positional argument.
type argSpec struct {
	name     string // as help shows it: "FILE|LAB"
	kind     argKind
	optional bool
}

// cmdSpec is one entry of the command table: a command, an iproute2 object,
// or one verb of either. Adding a command to nsnet is adding one of these to
// commands(): a name, its usage, its help, its options and a run function.
type cmdSpec struct {
	name    string
	aliases []string // other names, matched like name (and abbreviated like it when ip is set)
	exact   []string // names matched only when typed in full (ip's "chg")
	// missing marks an iproute2 object or verb nsnet does not implement: it is
	// listed only so that abbreviations resolve in ip's order.
	missing bool
	hidden  bool   // internal: not in help or completion
	group   string // the heading `nsnet help` lists it under (top-level commands)

	usage    []string // synopsis lines after "nsnet NAME [VERB]", e.g. "FILE|LAB [--all]"
	summary  string   // one line for listings
	help     string   // what it does, in paragraphs
	examples []string // command lines, without "nsnet "

	opts  optSet     // the global options that apply (anything else is an error)
	flags []flagSpec // the command's own options, accepted anywhere before "--"
	args  []argSpec  // positional arguments
	rest  *argSpec   // a command line after args, passed on as given (exec, sandbox)

	verbs []*cmdSpec // sub-commands, for an iproute2 object in the order ip tries them
	dflt  string     // the verb when none is given
	ip    bool       // iproute2's grammar: ip's abbreviations, options before the object

	// parse reads the arguments after the command (and verb) when they are
	// not flags and positional arguments: iproute2's keywords, ping's options.
	parse func(c Command, args []string) (Command, error)
	// run executes the command; a verb without one uses its command's.
	run func(e *Env, c Command) (int, error)
}

// verb finds a verb by name as the command matches them: for an iproute2
// object, ip's rule (the first verb, in ip's order, that the word is a
// prefix of); otherwise the exact name.
func (s *cmdSpec) verb(word string) *cmdSpec {
	for _, v := range s.verbs {
		if v.is(word, s.ip) {
			return v
		}
	}
	return nil
}

// is reports whether word names s; abbrev allows ip's prefixes.
func (s *cmdSpec) is(word string, abbrev bool) bool {
	for _, n := range s.exact {
		if word == n {
			return true
		}
	}
	for _, n := range append([]string{s.name}, s.aliases...) {
		if word == n || abbrev && matches(word, n) {
			return true
		}
	}
	return false
}

// flag finds one of s's own options.
func (s *cmdSpec) flag(name string) *flagSpec {
	for i := range s.flags {
		if s.flags[i].name == name {
			return &s.flags[i]
		}
	}
	return nil
}

// matches is iproute2's matches() (lib/utils.c) with the sense of its
// result inverted: word is a non-empty prefix of full. ip tries the
// candidates in a fixed order and takes the first that matches, so "ip l"
// is link (before l2tp) and "ip link s" is set (before show).
func matches(word, full string) bool {
	return word != "" && len(word) <= len(full) && full[:len(word)] == word
}

// ipObjects are ip's objects in the order ip (ip/ip.c, iproute2 6.1) tries
// them, so an abbreviation resolves to the object ip would pick, or to one
// nsnet does not implement, which is then said.
func ipObjects() []string {
	return []string{
		"address", "addrlabel", "maddress", "route", "rule", "neighbor", "neighbour",
		"ntable", "ntbl", "link", "l2tp", "fou", "ila", "macsec", "tunnel", "tunl",
		"tuntap", "tap", "token", "tcpmetrics", "tcp_metrics", "monitor", "xfrm",
		"mroute", "mrule", "netns", "netconf", "vrf", "sr", "nexthop", "mptcp", "ioam",
		"help", "stats",
	}
}

package cli

import (
	"fmt"
	"io"
	"strings"
)

// help prints `nsnet help [COMMAND [VERB]]` on stdout.
func (e *Env) help(c Command) (int, error) {
	if len(c.Args) == 0 {
		writeOverview(e.Stdout)
		return 0, nil
	}
	s, v, err := topic(c.Args)
	if err != nil {
		return 2, err
	}
	writeHelp(e.Stdout, s, v)
	return 0, nil
}

// topic resolves "COMMAND [VERB]" the way the command line does.
func topic(words []string) (*cmdSpec, *cmdSpec, error) {
	s, err := lookup(words[0])
	if err != nil {
		return nil, nil, err
	}
	if len(words) == 1 {
		return s, nil, nil
	}
	if len(words) > 2 || len(s.verbs) == 0 {
		return nil, nil, usagef("help", "unexpected argument %q", words[len(words)-1])
	}
	v := s.verb(words[1])
	if v == nil || v.missing {
		return nil, nil, usagef("help", "%s has no command %q (commands: %s)", s.name, words[1], strings.Join(verbNames(s), ", "))
	}
	if v.name == "help" {
		return s, nil, nil
	}
	return s, v, nil
}

func writeOverview(w io.Writer) {
	fmt.Fprint(w, `nsnet: isolated Linux networks from namespaces and veth pairs

Usage: nsnet [OPTIONS] COMMAND [ARGS...]
       nsnet help COMMAND [VERB]      (or: nsnet COMMAND [VERB] --help)

Options (before the command, as in ip; lab commands also take them after it):
`)
	writeGlobalOptions(w, optNS|optBrief|optJSON|optFamily)
	fmt.Fprintf(w, "  %-18s %s\n", "-h, --help", "help")
	fmt.Fprintf(w, "  %-18s %s\n", "-V, --version", "version")
	specs := commands()
	for _, g := range groups() {
		fmt.Fprintf(w, "\n%s:\n", g)
		for _, s := range specs {
			if s.group != g || s.hidden {
				continue
			}
			syn := strings.TrimSpace(s.name + " " + first(s.usage))
			if len(s.verbs) > 0 {
				var vs []string
				for _, v := range verbNames(s) {
					if v != "help" {
						vs = append(vs, v)
					}
				}
				syn = s.name + " " + strings.Join(vs, "|")
			}
			if len(syn) > 32 {
				fmt.Fprintf(w, "  %s\n  %-32s %s\n", syn, "", s.summary)
				continue
			}
			fmt.Fprintf(w, "  %-32s %s\n", syn, s.summary)
		}
	}
	fmt.Fprint(w, `
Abbreviations: objects and verbs of link, addr, route and netns are taken as ip takes them
(the first, in ip's order, that the word begins: l, a, r, net; link s is set, link sh show);
nsnet's own commands are typed in full. "nsnet help link" lists each verb's shortest form.
`)
}

func first(ss []string) string {
	if len(ss) == 0 {
		return ""
	}
	return ss[0]
}

// usageLines are the synopsis lines of a command (or of its verb v).
func usageLines(s, v *cmdSpec) []string {
	leaf, path := s, s.name
	if v != nil {
		leaf, path = v, s.name+" "+v.name
	}
	var lines []string
	add := func(leaf *cmdSpec, path string) {
		us := leaf.usage
		if len(us) == 0 {
			us = []string{""}
		}
		for _, u := range us {
			// Commands with a grammar of their own (the iproute2 objects,
			// ping) take the global options before them, as ip does; the
			// others before or after.
			before := leaf.parse != nil
			line := "nsnet "
			if before {
				line += optUsage(leaf.opts) + path
			} else {
				line += path
			}
			if u != "" {
				line += " " + u
			}
			if !before {
				line += strings.TrimRight(" "+optUsage(leaf.opts), " ")
			}
			lines = append(lines, line)
		}
	}
	if v == nil && len(s.verbs) > 0 {
		for _, vv := range s.verbs {
			if !vv.missing && !vv.hidden && vv.name != "help" {
				add(vv, path+" "+vv.name)
			}
		}
		return lines
	}
	add(leaf, path)
	return lines
}

// optUsage is "[-n NS] [-br] [-j] [-4|-6] " for the options in set.
func optUsage(set optSet) string {
	var b strings.Builder
	for _, o := range []struct {
		bit  optSet
		text string
	}{{optNS, "[-n NS] "}, {optBrief, "[-br] "}, {optJSON, "[-j] "}, {optFamily, "[-4|-6] "}} {
		if set&o.bit != 0 {
			b.WriteString(o.text)
		}
	}
	return b.String()
}

func writeGlobalOptions(w io.Writer, set optSet) {
	for _, o := range []struct {
		bit        optSet
		name, help string
	}{
		{optNS, "-n, --netns NS", "run in the named namespace (like ip -n)"},
		{optBrief, "-br, --brief", "brief output, as ip -br"},
		{optJSON, "-j, --json", "JSON output (shaped like ip -j where ip has one)"},
		{optFamily, "-4, -6", "only IPv4 / only IPv6"},
	} {
		if set&o.bit != 0 {
			fmt.Fprintf(w, "  %-18s %s\n", o.name, o.help)
		}
	}
}

// writeHelp prints one command's help, or one verb's.
func writeHelp(w io.Writer, s, v *cmdSpec) {
	leaf, path := s, s.name
	if v != nil {
		leaf, path = v, s.name+" "+v.name
	}
	for i, l := range usageLines(s, v) {
		if i == 0 {
			fmt.Fprintf(w, "Usage: %s\n", l)
		} else {
			fmt.Fprintf(w, "       %s\n", l)
		}
	}
	if leaf.help != "" {
		fmt.Fprintf(w, "\n%s\n", leaf.help)
	}
	if v == nil && len(s.verbs) > 0 {
		fmt.Fprintln(w, "\nCommands:")
		for _, vv := range s.verbs {
			if vv.missing || vv.hidden {
				continue
			}
			fmt.Fprintf(w, "  %-8s %s\n", vv.name, vv.summary)
		}
		fmt.Fprintf(w, "With no command: %s.\n", s.dflt)
		if s.ip {
			fmt.Fprintf(w, "\nAbbreviations, as ip takes them (the first of ip's verbs, in ip's order, that the\nword begins; the shortest form of each, any longer prefix works too):\n  %s\n", abbreviations(s))
		}
		fmt.Fprintf(w, "\nRun \"nsnet help %s COMMAND\" for a command's options and examples.\n", s.name)
		return
	}
	var flags []flagSpec
	for _, f := range leaf.flags {
		if !f.hidden {
			flags = append(flags, f)
		}
	}
	fmt.Fprintln(w, "\nOptions:")
	for _, f := range flags {
		fmt.Fprintf(w, "  %-18s %s\n", strings.TrimSpace(f.name+" "+f.value), f.help)
	}
	writeGlobalOptions(w, leaf.opts)
	fmt.Fprintf(w, "  %-18s %s\n", "-h, --help", "this help")
	if leaf.parse != nil && leaf.opts != 0 {
		fmt.Fprintf(w, "The -n, -br, -j, -4 and -6 options go before %s, as in ip: nsnet %s%s ...\n", s.name, optUsage(leaf.opts), path)
	}
	if len(leaf.examples) > 0 {
		fmt.Fprintln(w, "\nExamples:")
		for _, ex := range leaf.examples {
			fmt.Fprintf(w, "  nsnet %s\n", ex)
		}
	}
	_ = path
}

// abbreviations lists, for each verb of an iproute2 object, the shortest
// prefix of each of its names that ip resolves to it.
func abbreviations(s *cmdSpec) string {
	var parts []string
	for _, v := range s.verbs {
		if v.missing {
			continue
		}
		var forms []string
		seen := map[string]bool{}
		for _, n := range append([]string{v.name}, v.aliases...) {
			for i := 1; i <= len(n); i++ {
				if s.verb(n[:i]) == v {
					if !seen[n[:i]] {
						seen[n[:i]] = true
						forms = append(forms, n[:i])
					}
					break
				}
			}
		}
		parts = append(parts, v.name+" "+strings.Join(forms, "/"))
	}
	return strings.Join(parts, ", ")
}

// usageHint is what follows a usage error: the command's synopsis and where
// its help is.
func usageHint(ctx string) string {
	words := strings.Fields(ctx)
	if len(words) == 0 {
		return "Run \"nsnet help\" for the commands.\n"
	}
	s, v, err := topic(words)
	if err != nil {
		return "Run \"nsnet help\" for the commands.\n"
	}
	var b strings.Builder
	for i, l := range usageLines(s, v) {
		if i == 0 {
			fmt.Fprintf(&b, "usage: %s\n", l)
		} else {
			fmt.Fprintf(&b, "       %s\n", l)
		}
	}
	fmt.Fprintf(&b, "Run \"nsnet help %s\" for details.\n", strings.Join(words, " "))
	return b.String()
}

// suggest is `; did you mean "status"?` for the command nearest to word.
func suggest(word string, specs []*cmdSpec) string {
	var names []string
	for _, s := range specs {
		if !s.hidden {
			names = append(names, s.name)
			names = append(names, s.aliases...)
		}
	}
	if n := nearest(word, names); n != "" {
		return fmt.Sprintf("; did you mean %q?", n)
	}
	return " (see \"nsnet help\")"
}

func suggestFlag(word string, s *cmdSpec) string {
	var names []string
	for _, f := range s.flags {
		if !f.hidden {
			names = append(names, f.name)
		}
	}
	if s.opts&optJSON != 0 {
		names = append(names, "--json")
	}
	if n := nearest(word, names); n != "" {
		return fmt.Sprintf("; did you mean %q?", n)
	}
	return ""
}

// nearest is the name at the smallest edit distance from word, if that is
// small enough to be a typo (at most 2, and less than half the word).
func nearest(word string, names []string) string {
	best, bestD := "", 3
	for _, n := range names {
		d := distance(word, n)
		if strings.HasPrefix(n, word) && len(word) >= 2 {
			d = 1
		}
		if d < bestD && 2*d < len(n)+1 {
			best, bestD = n, d
		}
	}
	return best
}

// distance is the Damerau-Levenshtein distance (with adjacent swaps, the
// commonest typo: "stauts").
func distance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}

package cli

import (
	"fmt"
	"github.com/nsnet/nsnet/lab/topo"
	"sort"
	"strings"

	"github.com/nsnet/nsnet/kernel"
	"github.com/nsnet/nsnet/lab/ledger"
	"github.com/nsnet/nsnet/netns"
)

// completeCmd is the hidden command the completion scripts call: nsnet
// __complete WORDS... CURRENT prints the candidates for the last word, one a
// line; a line ":files" asks the shell to offer file names too. All the
// knowledge is here, in Go and tested; the scripts only relay.
const completeCmd = "__complete"

// completion prints `nsnet completion bash|zsh|fish`.
func (e *Env) completion(c Command) (int, error) {
	switch c.Args[0] {
	case "bash":
		fmt.Fprint(e.Stdout, bashCompletion)
	case "zsh":
		fmt.Fprint(e.Stdout, zshCompletion)
	case "fish":
		fmt.Fprint(e.Stdout, fishCompletion)
	default:
		return 2, usagef("completion", "unknown shell %q (bash, zsh or fish)", c.Args[0])
	}
	return 0, nil
}

const bashCompletion = `# bash completion for nsnet. Load it with:  source <(nsnet completion bash)
# or install it:  nsnet completion bash > /etc/bash_completion.d/nsnet
_nsnet() {
	local cur=${COMP_WORDS[COMP_CWORD]} line files=
	COMPREPLY=()
	while IFS= read -r line; do
		if [[ $line == :files ]]; then
			files=1
		elif [[ -n $line ]]; then
			COMPREPLY+=("$line")
		fi
	done < <("${COMP_WORDS[0]}" __complete "${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null)
	if [[ -n $files ]]; then
		local IFS=$'\n'
		COMPREPLY+=($(compgen -f -- "$cur"))
	fi
}
complete -o filenames -F _nsnet nsnet
`

const zshCompletion = `#compdef nsnet
# zsh completion for nsnet. Install it as _nsnet in a directory of $fpath:
#   nsnet completion zsh > "${fpath[1]}/_nsnet"
# or load it in a running shell:  source <(nsnet completion zsh)
_nsnet() {
	local -a lines cands
	local line files=0
	lines=("${(@f)$(${words[1]} __complete "${(@)words[2,CURRENT]}" 2>/dev/null)}")
	for line in $lines; do
		if [[ $line == :files ]]; then
			files=1
		elif [[ -n $line ]]; then
			cands+=("$line")
		fi
	done
	(( ${#cands} )) && compadd -a cands
	(( files )) && _files
	return 0
}
if [[ $funcstack[1] == _nsnet ]]; then
	_nsnet "$@"
else
	compdef _nsnet nsnet
fi
`

const fishCompletion = `# fish completion for nsnet. Install it:
#   nsnet completion fish > ~/.config/fish/completions/nsnet.fish
function __nsnet_complete
    set -l words (commandline -opc) (commandline -ct)
    for line in ($words[1] __complete $words[2..-1] 2>/dev/null)
        if test "$line" = ":files"
            __fish_complete_path (commandline -ct)
        else
            echo $line
        end
    end
end
complete -c nsnet -f -a '(__nsnet_complete)'
`

// complete prints the candidates for the last of words.
func (e *Env) complete(words []string) (int, error) {
	if len(words) == 0 {
		words = []string{""}
	}
	cands, files := e.candidates(words[:len(words)-1], words[len(words)-1])
	cur := words[len(words)-1]
	sort.Strings(cands)
	seen := map[string]bool{}
	for _, c := range cands {
		if strings.HasPrefix(c, cur) && !seen[c] {
			seen[c] = true
			fmt.Fprintln(e.Stdout, c)
		}
	}
	if files {
		fmt.Fprintln(e.Stdout, ":files")
	}
	return 0, nil
}

func globalOptionNames() []string {
	return []string{"-n", "-br", "-j", "-4", "-6", "-h", "-V", "--netns", "--brief", "--json", "--help", "--version"}
}

// candidates are the words that may stand where cur is after done; files
// says file names fit there too.
func (e *Env) candidates(done []string, cur string) ([]string, bool) {
	var c Command
	i := 0
	// Options before the command.
	for ; i < len(done); i++ {
		a := done[i]
		if !strings.HasPrefix(a, "-") {
			break
		}
		if a == "-n" || a == "--netns" || a == "-netns" {
			if i+1 == len(done) {
				return e.netnsNames(), false
			}
			i++
			c.Opts.NS = done[i]
		}
	}
	if i == len(done) {
		if strings.HasPrefix(cur, "-") {
			return globalOptionNames(), false
		}
		return commandNames(), false
	}
	s, err := lookup(done[i])
	if err != nil {
		return nil, false
	}
	rest := done[i+1:]
	leaf := s
	if len(s.verbs) > 0 {
		if len(rest) == 0 {
			if strings.HasPrefix(cur, "-") {
				return []string{"--help"}, false
			}
			return verbNames(s), false
		}
		if leaf = s.verb(rest[0]); leaf == nil || leaf.missing {
			return nil, false
		}
		rest = rest[1:]
	}
	if leaf.parse != nil {
		return e.keywordCandidates(c, s, leaf, rest, cur)
	}
	return e.flagCandidates(c, leaf, rest, cur)
}

// flagCandidates completes a table command's flags and arguments.
func (e *Env) flagCandidates(c Command, s *cmdSpec, rest []string, cur string) ([]string, bool) {
	var args []string
	for i := 0; i < len(rest); i++ {
		a := rest[i]
		if a == "--" {
			return nil, true // a command line of its own
		}
		if strings.HasPrefix(a, "-") && a != "-" {
			if f := s.flag(a); f != nil && f.value != "" {
				if i+1 == len(rest) {
					return e.kindCandidates(c, f.kind, nil, "")
				}
				i++
			}
			continue
		}
		if s.rest != nil && len(args) == len(s.args) {
			return nil, true
		}
		args = append(args, a)
	}
	if strings.HasPrefix(cur, "-") {
		var fs []string
		for _, f := range s.flags {
			if !f.hidden {
				fs = append(fs, f.name)
			}
		}
		if s.opts&optJSON != 0 {
			fs = append(fs, "-j", "--json")
		}
		return append(fs, "--help"), false
	}
	if len(args) < len(s.args) {
		lab := ""
		for i, a := range s.args[:len(args)] {
			if a.kind == argLab || a.kind == argLabFile {
				lab = args[i]
			}
		}
		return e.kindCandidates(c, s.args[len(args)].kind, args, lab)
	}
	if s.rest != nil {
		return nil, true
	}
	return nil, false
}

// keywordCandidates completes iproute2's keyword grammar.
func (e *Env) keywordCandidates(c Command, s, v *cmdSpec, rest []string, cur string) ([]string, bool) {
	prev := ""
	if len(rest) > 0 {
		prev = rest[len(rest)-1]
	}
	switch prev {
	case "dev", "master":
		return e.devNames(c.Opts.NS), false
	case "netns":
		if s.name == "link" {
			return e.netnsNames(), false
		}
	case "type":
		return []string{"veth", "bridge"}, false
	case "peer":
		return []string{"name"}, false
	case "mtu", "name", "via":
		return nil, false
	}
	if cur != "" && strings.HasPrefix(cur, "-") {
		return []string{"--help"}, false
	}
	switch s.name + " " + v.name {
	case "link set":
		if len(rest) == 0 {
			return e.devNames(c.Opts.NS), false
		}
		return []string{"up", "down", "netns", "mtu", "master", "nomaster"}, false
	case "link del", "link show", "addr show":
		if len(rest) == 0 {
			return append(e.devNames(c.Opts.NS), "dev"), false
		}
	case "link add":
		if len(rest) > 0 {
			return []string{"type", "mtu"}, false
		}
	case "addr add", "addr del":
		if len(rest) > 0 {
			return []string{"dev"}, false
		}
	case "route add", "route del":
		if len(rest) == 0 {
			return []string{"default"}, false
		}
		return []string{"via", "dev"}, false
	case "netns del", "netns exec":
		if len(rest) == 0 {
			return e.netnsNames(), false
		}
		return nil, true
	}
	switch s.name {
	case "ping":
		return []string{"-c", "-W", "-i", "-q"}, false
	case "serve":
		if len(rest) == 0 {
			return []string{"http", "tcp", "udp"}, false
		}
	}
	return nil, false
}

// kindCandidates are the candidates for an argument of kind k; before are
// the arguments already given, lab the lab among them.
func (e *Env) kindCandidates(c Command, k argKind, before []string, lab string) ([]string, bool) {
	switch k {
	case argFile:
		return nil, true
	case argLab:
		return e.labNames(), false
	case argLabFile:
		return e.labNames(), true
	case argNode:
		if lab == "" {
			return nil, false
		}
		return e.nodeNames(lab), false
	case argNetns:
		return e.netnsNames(), false
	case argDev:
		return e.devNames(c.Opts.NS), false
	case argCommandName:
		if len(before) == 1 {
			if s, err := lookup(before[0]); err == nil {
				return verbNames(s), false
			}
			return nil, false
		}
		return commandNames(), false
	case argShell:
		return []string{"bash", "zsh", "fish"}, false
	case argShape:
		return topo.Shapes(), false
	case argCommand:
		return nil, true
	}
	return nil, false
}

func commandNames() []string {
	var ns []string
	for _, s := range commands() {
		if !s.hidden {
			ns = append(ns, s.name)
		}
	}
	return ns
}

func (e *Env) labNames() []string {
	names, _ := ledger.Store{Dir: e.StateDir}.Labs()
	return names
}

func (e *Env) nodeNames(labName string) []string {
	led, err := ledger.Store{Dir: e.StateDir}.Read(labName)
	if err != nil {
		return nil
	}
	var ns []string
	for _, n := range led.Nodes {
		if n.Netns != "" {
			ns = append(ns, n.Name)
		}
	}
	return ns
}

func (e *Env) netnsNames() []string {
	names, _ := e.Netns.List()
	return names
}

// devNames are the interfaces of the named namespace (or nsnet's own).
func (e *Env) devNames(ns string) []string {
	var n *netns.NS
	var err error
	if ns != "" {
		n, err = e.Netns.Open(ns)
	} else {
		n, err = netns.Current()
	}
	if err != nil {
		return nil
	}
	defer n.Close()
	h, err := kernel.Open(n)
	if err != nil {
		return nil
	}
	defer h.Close()
	links, err := h.Links()
	if err != nil {
		return nil
	}
	var names []string
	for _, l := range links {
		names = append(names, l.Name)
	}
	return names
}

package cli

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"runtime/pprof"
	"sort"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/nsnet/nsnet/internal/echo"
	"github.com/nsnet/nsnet/internal/sandbox"
	"github.com/nsnet/nsnet/kernel"
	"github.com/nsnet/nsnet/lab"
	"github.com/nsnet/nsnet/netns"
)

// Env is where a command runs: its streams and the directories it uses.
type Env struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// Netns is the directory of named namespaces (iproute2's /run/netns).
	Netns netns.Dir
	// StateDir holds lab ledgers (default /run/nsnet).
	StateDir string
	// EtcNetns holds each namespace's /etc files (default /etc/netns,
	// NSNET_ETC_NETNS): the nodes' hosts files go there.
	EtcNetns string
	// Exe is the nsnet binary, for commands that start nsnet again.
	Exe string
	// Inherited is what nsnet's caller ignored and closed, given back to
	// the programs nsnet execs for it (netns exec, exec, sandbox).
	Inherited netns.Inherited
}

// DefaultStateDir is where lab ledgers live unless NSNET_STATE_DIR says
// otherwise.
const DefaultStateDir = "/run/nsnet"

// DefaultEtcNetns is where namespaces' own /etc files live (as for ip netns
// exec) unless NSNET_ETC_NETNS says otherwise.
const DefaultEtcNetns = "/etc/netns"

// Main is the whole program: it parses args (without the program name), runs
// the command and returns the exit code. in is what the process inherited
// that the Go runtime hides (see netns.Inherited).
func Main(args []string, in netns.Inherited) int {
	if len(args) > 0 && args[0] == sandbox.InitArg {
		code, err := sandbox.Init(args[1:])
		if err != nil {
			fmt.Fprintln(os.Stderr, "nsnet:", err)
		}
		return code
	}
	exe, err := os.Executable()
	if err != nil {
		exe = "/proc/self/exe"
	}
	state := os.Getenv("NSNET_STATE_DIR")
	if state == "" {
		state = DefaultStateDir
	}
	etc := os.Getenv(lab.EtcNetnsEnv)
	if etc == "" {
		etc = DefaultEtcNetns
	}
	e := &Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Netns: netns.Default(), StateDir: state, EtcNetns: etc, Exe: exe, Inherited: in}
	if path := os.Getenv(CPUProfileEnv); path != "" {
		stop, err := startCPUProfile(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, "nsnet:", err)
			return 1
		}
		defer stop()
	}
	return e.Main(args)
}

// CPUProfileEnv names a file to write a CPU profile of the command to (go
// tool pprof reads it): how up's and down's time is found.
const CPUProfileEnv = "NSNET_CPUPROFILE"

func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", CPUProfileEnv, err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", CPUProfileEnv, err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// Main runs one command line in e. A wrong command line is said in one
// line followed by the command's usage, on stderr, exit 2.
func (e *Env) Main(args []string) int {
	c, err := Parse(args)
	if err != nil {
		fmt.Fprintf(e.Stderr, "nsnet: %s\n", echo.Lines(err.Error()))
		fmt.Fprint(e.Stderr, usageHint(usageContext(err)))
		return 2
	}
	code, err := e.Run(c)
	if err != nil {
		// Values nsnet formats are quoted short; others reach the
		// message through errors it does not format (a path in an
		// *os.PathError): no line of it is unbounded.
		fmt.Fprintln(e.Stderr, "nsnet: "+echo.Lines(Explain(err, args)))
		var ue *UsageError
		if errors.As(err, &ue) {
			fmt.Fprint(e.Stderr, usageHint(ue.Context))
			return 2
		}
		if code == 0 {
			code = 1
		}
	}
	return code
}

func usageContext(err error) string {
	var ue *UsageError
	if errors.As(err, &ue) {
		return ue.Context
	}
	return ""
}

// Explain renders err as one line and adds the way out where there is one.
func Explain(err error, args []string) string {
	msg := err.Error()
	if errors.Is(err, fs.ErrPermission) {
		shown := make([]string, len(args))
		for i, a := range args {
			shown[i] = echo.Clip(a)
		}
		msg += "; this needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN): run it as root (sudo nsnet " +
			strings.Join(shown, " ") + ") or work rootless inside `nsnet sandbox`"
	}
	return msg
}

// Run executes a parsed command and returns its exit code.
func (e *Env) Run(c Command) (int, error) {
	for _, s := range commands() {
		if s.name != c.Object {
			continue
		}
		run := s.run
		if v := s.verb(c.Verb); c.Verb != "" && v != nil && v.run != nil {
			run = v.run
		}
		return run(e, c)
	}
	return 2, usagef("", "unknown command %q", c.Object)
}

func (e *Env) target(c Command) (*netns.NS, error) {
	if c.Opts.NS != "" {
		ns, err := e.Netns.Open(c.Opts.NS)
		if err != nil {
			return nil, missingNS(c.Opts.NS, err)
		}
		return ns, nil
	}
	return netns.Current()
}

func missingNS(name string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return echo.Errorf("namespace %q does not exist (see \"nsnet netns list\"): %w", name, err)
	}
	return err
}

// handle opens a netlink handle for the command's namespace.
func (e *Env) handle(c Command) (*kernel.Handle, func(), error) {
	ns, err := e.target(c)
	if err != nil {
		return nil, nil, err
	}
	h, err := kernel.Open(ns)
	if err != nil {
		ns.Close()
		return nil, nil, err
	}
	return h, func() { h.Close(); ns.Close() }, nil
}

func (e *Env) link(c Command) error {
	h, done, err := e.handle(c)
	if err != nil {
		return err
	}
	defer done()
	switch c.Verb {
	case "add":
		if c.Type == "bridge" {
			return h.AddBridge(c.Name, c.MTU, "")
		}
		return h.AddVeth(kernel.Veth{Name: c.Name, Peer: c.Peer, MTU: c.MTU})
	case "del":
		return h.DelLink(c.Name)
	case "set":
		return e.linkSet(h, c)
	}
	return e.showLinks(h, c, false)
}

func (e *Env) linkSet(h *kernel.Handle, c Command) error {
	// Everything is checked before anything changes.
	if _, err := h.LinkByName(c.Name); err != nil {
		return err
	}
	var target *netns.NS
	if c.SetNS != "" {
		ns, err := e.Netns.Open(c.SetNS)
		if err != nil {
			return missingNS(c.SetNS, err)
		}
		defer ns.Close()
		target = ns
	}
	if c.Master != "" {
		if _, err := h.LinkByName(c.Master); err != nil {
			return err
		}
	}
	if c.MTU != 0 {
		if err := h.SetMTU(c.Name, c.MTU); err != nil {
			return err
		}
	}
	if c.NoMaster {
		if err := h.SetMaster(c.Name, ""); err != nil {
			return err
		}
	}
	if c.Master != "" {
		if err := h.SetMaster(c.Name, c.Master); err != nil {
			return err
		}
	}
	if target != nil {
		if err := h.SetNS(c.Name, target); err != nil {
			return err
		}
		if c.Up == nil {
			return nil
		}
		th, err := kernel.Open(target)
		if err != nil {
			return err
		}
		defer th.Close()
		h = th
	}
	if c.Up != nil {
		if *c.Up {
			return h.SetUp(c.Name)
		}
		return h.SetDown(c.Name)
	}
	return nil
}

// nsNames maps netnsids, as seen from h's namespace, to the names of
// namespaces pinned in e.Netns, so peers show as "link-netns NAME".
func (e *Env) nsNames(h *kernel.Handle) func(int) string {
	var m map[int]string
	return func(id int) string {
		if m == nil {
			m = map[int]string{}
			names, _ := e.Netns.List()
			for _, n := range names {
				ns, err := e.Netns.Open(n)
				if err != nil {
					continue
				}
				if nid, err := h.NSID(ns); err == nil && nid >= 0 {
					m[nid] = n
				}
				ns.Close()
			}
		}
		return m[id]
	}
}

func (e *Env) linkViews(h *kernel.Handle, c Command) ([]linkView, error) {
	links, err := h.Links()
	if err != nil {
		return nil, err
	}
	vs := views(links, e.nsNames(h))
	if c.Name != "" {
		for _, v := range vs {
			if v.IfName == c.Name {
				return []linkView{v}, nil
			}
		}
		return nil, &kernel.OpError{Op: "find device", Name: c.Name, Err: fmt.Errorf("no such device: %w", fs.ErrNotExist)}
	}
	return vs, nil
}

func (e *Env) showLinks(h *kernel.Handle, c Command, withAddrs bool) error {
	vs, err := e.linkViews(h, c)
	if err != nil {
		return err
	}
	if !c.Opts.Brief {
		// The netlink library does not read the qdisc: one more dump.
		qd, err := h.Qdiscs()
		if err != nil {
			return err
		}
		for i := range vs {
			vs[i].Qdisc = qd[vs[i].IfIndex]
		}
	}
	if withAddrs {
		addrs, err := h.Addrs()
		if err != nil {
			return err
		}
		vs = attachAddrs(vs, addrs, c.Opts.Family)
	}
	switch {
	case c.Opts.JSON && c.Opts.Brief && withAddrs:
		return writeJSON(e.Stdout, briefAddrsJSON(vs))
	case c.Opts.JSON && c.Opts.Brief:
		return writeJSON(e.Stdout, briefLinksJSON(vs))
	case c.Opts.JSON:
		if !withAddrs {
			for i := range vs {
				vs[i].AddrInfo = nil
			}
		} else {
			for i := range vs {
				vs[i].LinkMode = ""
				if vs[i].AddrInfo == nil {
					vs[i].AddrInfo = []addrView{}
				}
			}
		}
		return writeJSON(e.Stdout, vs)
	case c.Opts.Brief && withAddrs:
		printAddrsBrief(e.Stdout, vs)
	case c.Opts.Brief:
		printLinksBrief(e.Stdout, vs)
	case withAddrs:
		printAddrs(e.Stdout, vs)
	default:
		printLinks(e.Stdout, vs, true)
	}
	return nil
}

func (e *Env) addr(c Command) error {
	h, done, err := e.handle(c)
	if err != nil {
		return err
	}
	defer done()
	switch c.Verb {
	case "add":
		return h.AddAddr(c.Name, c.Prefix, kernel.AddrOptions{})
	case "del":
		return h.DelAddr(c.Name, c.Prefix)
	}
	return e.showLinks(h, c, true)
}

type routeView struct {
	Dst      string `json:"dst"`
	Gateway  string `json:"gateway,omitempty"`
	Dev      string `json:"dev,omitempty"`
	Protocol string `json:"protocol,omitempty"`
	Scope    string `json:"scope,omitempty"`
	PrefSrc  string `json:"prefsrc,omitempty"`
	family   int
}

func (e *Env) route(c Command) error {
	h, done, err := e.handle(c)
	if err != nil {
		return err
	}
	defer done()
	switch c.Verb {
	case "add", "del":
		r := kernel.Route{Gateway: c.Gateway, Dev: c.Name}
		if c.Prefix.IsValid() {
			r.Dst = c.Prefix
		}
		if c.Verb == "add" {
			return h.AddRoute(r)
		}
		return h.DelRoute(r)
	}
	routes, err := h.Routes()
	if err != nil {
		return err
	}
	links, err := h.Links()
	if err != nil {
		return err
	}
	names := map[int]string{}
	for _, l := range links {
		names[l.Index] = l.Name
	}
	var out []routeView
	for _, r := range routes {
		v := routeView{Dst: "default", Dev: names[r.LinkIndex], family: 4}
		if r.Dst.IsValid() && !(r.Dst.Bits() == 0 && r.Gateway.IsValid()) {
			v.Dst = r.Dst.String()
			if r.Dst.Bits() == r.Dst.Addr().BitLen() {
				v.Dst = r.Dst.Addr().String()
			}
		}
		if (r.Dst.IsValid() && r.Dst.Addr().Is6()) || r.Gateway.Is6() {
			v.family = 6
		}
		if c.Opts.Family != 0 && v.family != c.Opts.Family {
			continue
		}
		if r.Gateway.IsValid() {
			v.Gateway = r.Gateway.String()
		}
		switch r.Protocol {
		case unix.RTPROT_KERNEL:
			v.Protocol = "kernel"
		case unix.RTPROT_BOOT:
		default:
			v.Protocol = fmt.Sprint(r.Protocol)
		}
		if r.Scope == unix.RT_SCOPE_LINK {
			v.Scope = "link"
		}
		if r.Src.IsValid() {
			v.PrefSrc = r.Src.String()
		}
		out = append(out, v)
	}
	if c.Opts.JSON {
		if out == nil {
			out = []routeView{}
		}
		return writeJSON(e.Stdout, out)
	}
	for _, v := range out {
		line := v.Dst
		if v.Gateway != "" {
			line += " via " + v.Gateway
		}
		if v.Dev != "" {
			line += " dev " + v.Dev
		}
		if v.Protocol != "" {
			line += " proto " + v.Protocol
		}
		if v.Scope != "" {
			line += " scope " + v.Scope
		}
		if v.PrefSrc != "" {
			line += " src " + v.PrefSrc
		}
		fmt.Fprintln(e.Stdout, line)
	}
	return nil
}

type netnsView struct {
	Name string `json:"name"`
	ID   *int   `json:"id,omitempty"`
}

func (e *Env) netnsCmd(c Command) (int, error) {
	switch c.Verb {
	case "add":
		ns, err := e.Netns.Add(c.Name)
		if err != nil {
			return 1, err
		}
		ns.Close()
		return 0, nil
	case "del":
		return 0, e.Netns.Delete(c.Name)
	case "exec":
		ns, err := e.Netns.Open(c.Name)
		if err != nil {
			return 1, missingNS(c.Name, err)
		}
		err = netns.Exec(ns, c.Argv, netns.ExecOptions{Name: c.Name, EtcDir: e.EtcNetns, Inherited: e.Inherited})
		// Exec only returns on failure, and the thread may be inside the
		// namespace by then: report and exit, nothing else.
		return 1, fmt.Errorf("netns exec %s %s: %w", c.Name, c.Argv[0], err)
	}
	names, err := e.Netns.List()
	if err != nil {
		return 1, err
	}
	views := make([]netnsView, 0, len(names))
	self, err := netns.Current()
	if err == nil {
		defer self.Close()
	}
	var h *kernel.Handle
	if self != nil {
		if h, err = kernel.Open(self); err == nil {
			defer h.Close()
		}
	}
	for _, n := range names {
		v := netnsView{Name: n}
		if h != nil {
			if ns, err := e.Netns.Open(n); err == nil {
				if id, err := h.NSID(ns); err == nil && id >= 0 {
					v.ID = &id
				}
				ns.Close()
			}
		}
		views = append(views, v)
	}
	// iproute2 lists newest first; nsnet lists by name, which is stable.
	sort.Slice(views, func(i, j int) bool { return views[i].Name < views[j].Name })
	if c.Opts.JSON {
		return 0, writeJSON(e.Stdout, views)
	}
	for _, v := range views {
		if v.ID != nil {
			fmt.Fprintf(e.Stdout, "%s (id: %d)\n", v.Name, *v.ID)
		} else {
			fmt.Fprintln(e.Stdout, v.Name)
		}
	}
	return 0, nil
}

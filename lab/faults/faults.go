// Package faults makes and removes the runtime faults of a lab that is up
// (nsnet fault set / clear / show, partition, heal): it finds the link ends
// in the lab's ledger, records each fault there before making it, and runs
// the lab's helpers (the userspace delayer, the --for reverters) as lab
// processes, so that down removes everything after any crash.
package faults

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nsnet/nsnet/fault"
	"github.com/nsnet/nsnet/fault/backend"
	"github.com/nsnet/nsnet/fault/delayer"
	"github.com/nsnet/nsnet/lab"
	"github.com/nsnet/nsnet/lab/ledger"
	"github.com/nsnet/nsnet/netns"
)

// Roles of the lab's helper processes in the ledger.
const (
	RoleDelayer  = "fault-delayer"
	RoleReverter = "fault-reverter"
)

// Files in the lab's state directory.
const (
	delayerConfig = "delayer.json"
	delayerStats  = "delayer-stats.json"
	capsFile      = "kernel-caps.json"
)

// Error is a refused request: nothing was changed. Err, when set, is what
// errors.Is matches (fs.ErrNotExist for an unknown node or interface); it
// is part of the message only when Cause is set.
type Error struct {
	Lab   string
	Msg   string
	Err   error
	Cause bool
}

func (e *Error) Error() string {
	if e.Cause && e.Err != nil {
		return "lab " + e.Lab + ": " + e.Msg + ": " + e.Err.Error()
	}
	return "lab " + e.Lab + ": " + e.Msg
}

func (e *Error) Unwrap() error { return e.Err }

// session is one locked change of a lab's faults.
type session struct {
	opt   lab.Options
	name  string
	store ledger.Store
	lock  *ledger.Lock
	led   *ledger.Ledger
	mu    sync.Mutex           // guards open, for ends resolved in parallel
	open  map[string]*netns.NS // by node
	// conns are the session's kernel connections, one of each kind per
	// namespace.
	conns *backend.Conns
	// raised are ends a cleared fault had taken down and that are up
	// again; once the lock is released, restore puts back what the kernel
	// flushed when they went down.
	raised []fault.End
}

func begin(opt lab.Options, name string) (*session, error) {
	store := ledger.Store{Dir: opt.StateDir}
	lock, err := store.Lock(name, func(pid int) {
		if opt.Log != nil {
			fmt.Fprintf(opt.Log, "nsnet: lab %s is busy (pid %d); waiting\n", name, pid)
		}
	})
	if err != nil {
		return nil, err
	}
	s := &session{opt: opt, name: name, store: store, lock: lock, open: map[string]*netns.NS{}, conns: backend.NewConns()}
	s.led, err = store.Read(name)
	if err != nil {
		lock.Release()
		if errors.Is(err, fs.ErrNotExist) {
			return nil, &Error{Lab: name, Msg: "is not up (see nsnet labs)", Err: fs.ErrNotExist}
		}
		return nil, err
	}
	return s, nil
}

func (s *session) close() {
	s.conns.Close()
	for _, ns := range s.open {
		ns.Close()
	}
	s.lock.Release()
}

// restore runs after close: taking a link down makes the kernel flush its
// routes, IPv6 addresses and neighbour entries, which setting it up does not
// bring back; lab.SetLink puts back what the lab file gives the interface
// and waits for carrier. It takes the lab's lock itself, hence after close.
// Without the file, the link is up but what was flushed stays gone.
func (s *session) restore() error {
	if len(s.raised) == 0 || s.led.File == "" {
		return nil
	}
	l, err := lab.Load(s.led.File)
	if err != nil || l.Name != s.name {
		return nil
	}
	for _, e := range s.raised {
		if err := lab.SetLink(l, e.Node, e.Iface, true, s.opt); err != nil {
			return err
		}
	}
	return nil
}

// done closes the session, then restores the ends it raised.
func (s *session) done(err error) error {
	s.close()
	if err != nil {
		return err
	}
	return s.restore()
}

func (s *session) dir() string { return s.store.LabDir(s.name) }

// ns opens a node's namespace (the host's for a node the lab does not own).
func (s *session) ns(node string) (*netns.NS, bool, error) {
	n := s.led.Node(node)
	if n == nil {
		if err := lab.Elsewhere(s.led, node); err != nil {
			return nil, false, err
		}
		return nil, false, &Error{Lab: s.name, Msg: "has no node " + node, Err: fs.ErrNotExist}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if ns, ok := s.open[node]; ok {
		return ns, !n.Owned(), nil
	}
	var ns *netns.NS
	var err error
	if n.Owned() {
		ns, err = s.opt.Netns.Open(n.Netns)
	} else {
		ns, err = netns.Current()
	}
	if err != nil {
		return nil, false, err
	}
	s.open[node] = ns
	return ns, !n.Owned(), nil
}

// link resolves a link end of the lab and its peer.
func (s *session) link(end fault.End) (backend.Link, error) {
	var lk *ledger.Link
	var names []string
	for i := range s.led.Links {
		l := &s.led.Links[i]
		if l.Node == end.Node {
			names = append(names, l.Name)
			if l.Name == end.Iface {
				lk = l
			}
		}
	}
	if s.led.Node(end.Node) == nil {
		if err := lab.Elsewhere(s.led, end.Node); err != nil {
			return backend.Link{}, err
		}
		return backend.Link{}, &Error{Lab: s.name, Msg: "has no node " + end.Node, Err: fs.ErrNotExist}
	}
	if lk == nil {
		return backend.Link{}, &Error{Lab: s.name, Msg: fmt.Sprintf("node %s has no interface %s of the lab's (it has: %s)", end.Node, end.Iface, strings.Join(names, ", ")), Err: fs.ErrNotExist}
	}
	if lk.Kind != "veth" {
		return backend.Link{}, &Error{Lab: s.name, Msg: fmt.Sprintf("%s is a %s, not a link end: put the fault on a veth end", end, lk.Kind)}
	}
	ns, host, err := s.ns(end.Node)
	if err != nil {
		return backend.Link{}, err
	}
	h, done, err := s.conns.Handle(ns)
	if err != nil {
		return backend.Link{}, err
	}
	defer done()
	kl, err := h.LinkByName(end.Iface)
	if err != nil {
		return backend.Link{}, &Error{Lab: s.name, Msg: "link end " + end.String(), Err: err, Cause: true}
	}
	l := backend.Link{End: end, NS: ns, Dev: end.Iface, Ifindex: kl.Index, Bridged: kl.MasterIndex != 0, Host: host}
	peerNode, peerDev, ok := strings.Cut(lk.Peer, ":")
	if ok {
		pns, phost, err := s.ns(peerNode)
		if err != nil {
			return backend.Link{}, err
		}
		ph, pdone, err := s.conns.Handle(pns)
		if err != nil {
			return backend.Link{}, err
		}
		defer pdone()
		pl, err := ph.LinkByName(peerDev)
		if err != nil {
			return backend.Link{}, &Error{Lab: s.name, Msg: "peer " + lk.Peer, Err: err, Cause: true}
		}
		l.PeerNS, l.PeerNode, l.PeerDev, l.PeerIfindex, l.PeerHost = pns, peerNode, peerDev, pl.Index, phost
	}
	for _, f := range s.led.Faults {
		if f.Node == end.Node && f.Iface == end.Iface {
			l.WasDown = f.Down
		}
	}
	return l, nil
}

// Caps probes the kernel once per boot and lab: a probe costs a scratch
// namespace, more than a fault set may take.
func (s *session) caps() (backend.Caps, error) {
	boot, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
	path := filepath.Join(s.dir(), capsFile)
	var cached struct {
		Boot string       `json:"boot"`
		Caps backend.Caps `json:"caps"`
	}
	if b, err := os.ReadFile(path); err == nil && jsonUnmarshal(b, &cached) == nil && cached.Boot == string(boot) && cached.Caps.OK != nil {
		return cached.Caps, nil
	}
	c, err := backend.Probe()
	if err != nil {
		return c, err
	}
	cached.Boot, cached.Caps = string(boot), c
	_ = delayer.WriteJSON(path, cached)
	return c, nil
}

// SetOptions are the options of Set.
type SetOptions struct {
	// For reverts the fault by itself after this long, even if the
	// caller dies: a reverter process recorded in the ledger clears it.
	For time.Duration
}

// Set puts spec on a link end of the lab, replacing the fault it had. It
// returns once the fault is in force. Bad input, an end the lab does not
// own, or a field no backend of this kernel can do is refused before
// anything changes.
func Set(opt lab.Options, name string, end fault.End, spec fault.Spec, so SetOptions) (*ledger.Fault, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	if so.For < 0 {
		return nil, &Error{Lab: name, Msg: "--for must not be negative"}
	}
	s, err := begin(opt, name)
	if err != nil {
		return nil, err
	}
	if err := s.expire(); err != nil {
		return nil, s.done(err)
	}
	f, err := s.set(end, spec, so)
	return f, s.done(err)
}

// expire clears the faults whose --for deadline has passed with no reverter
// left to clear them (one killed, or a machine suspended past it): a fault
// set for a while never outlives the next change of the lab's faults.
func (s *session) expire() error {
	now := time.Now()
	var links []backend.Link
	for _, f := range s.led.Faults {
		if f.Until.IsZero() || f.Until.After(now) {
			continue
		}
		end := fault.End{Node: f.Node, Iface: f.Iface}
		alive := slices.ContainsFunc(s.led.Procs, func(p ledger.Proc) bool {
			return p.Role == RoleReverter && len(p.Argv) >= 7 && p.Argv[6] == end.String() && lab.HelperAlive(p)
		})
		if alive {
			continue
		}
		l, err := s.link(end)
		if err != nil {
			return err
		}
		links = append(links, l)
	}
	if len(links) == 0 {
		return nil
	}
	return s.clear(links)
}

func (s *session) set(end fault.End, spec fault.Spec, so SetOptions) (*ledger.Fault, error) {
	name := s.name
	l, err := s.link(end)
	if err != nil {
		return nil, err
	}
	caps, err := s.caps()
	if err != nil {
		return nil, err
	}
	p, err := backend.For(spec, l, caps)
	if err != nil {
		return nil, err
	}
	if spec.IsZero() {
		return nil, s.clear([]backend.Link{l})
	}
	f := ledger.Fault{Node: end.Node, Iface: end.Iface, Spec: spec.String(), Backend: p.Backend(), Down: spec.Down || l.WasDown, Set: time.Now().UTC()}
	if p.UsesDelayer() {
		f.Delayer, f.Queue = p.DelayerSpec(), p.Queue
	}
	if so.For > 0 {
		f.Until = f.Set.Add(so.For)
	}
	// Recorded first: a crash from here on leaves a ledger entry that down
	// (or clear) acts on, never an object nobody knows of.
	s.putFault(f)
	s.stopReverters(end)
	if err := s.store.Write(s.led); err != nil {
		return nil, err
	}
	if so.For > 0 {
		// The reverter starts before the fault is made: this process may
		// die at any moment from here on and the fault still goes at its
		// deadline (the reverter waits for the lab's lock if this session
		// still holds it then).
		if err := s.startReverter(end, f.Until); err != nil {
			return nil, err
		}
	}
	if err := s.syncDelayer(); err != nil {
		return nil, err
	}
	if err := s.conns.Apply(name, p, l); err != nil {
		return nil, err
	}
	if l.WasDown && !spec.Down {
		s.raised = append(s.raised, end)
	}
	if f.Down != spec.Down {
		// What the first record overstated (a link that was down and is
		// up now) is written once it is true.
		f.Down = spec.Down
		s.putFault(f)
		if err := s.store.Write(s.led); err != nil {
			return nil, err
		}
	}
	// A delayer no longer needed (the end's old fault used it) goes last.
	return &f, s.syncDelayer()
}

func (s *session) putFault(f ledger.Fault) {
	for i := range s.led.Faults {
		if s.led.Faults[i].Node == f.Node && s.led.Faults[i].Iface == f.Iface {
			s.led.Faults[i] = f
			return
		}
	}
	s.led.Faults = append(s.led.Faults, f)
}

// Clear removes the faults of the given ends, or of every end when none is
// given. Clearing an end without a fault is not an error.
func Clear(opt lab.Options, name string, ends ...fault.End) error {
	s, err := begin(opt, name)
	if err != nil {
		return err
	}
	if err := s.expire(); err != nil {
		return s.done(err)
	}
	return s.done(s.clearEnds(ends))
}

func (s *session) clearEnds(ends []fault.End) error {
	var links []backend.Link
	if len(ends) == 0 {
		for _, f := range s.led.Faults {
			ends = append(ends, fault.End{Node: f.Node, Iface: f.Iface})
		}
	}
	for _, e := range ends {
		l, err := s.link(e)
		if err != nil {
			return err
		}
		links = append(links, l)
	}
	return s.clear(links)
}

func (s *session) clear(links []backend.Link) error {
	for _, l := range links {
		if err := s.conns.Clear(s.name, l); err != nil {
			return err
		}
		if l.WasDown {
			s.raised = append(s.raised, l.End)
		}
		s.led.Faults = slices.DeleteFunc(s.led.Faults, func(f ledger.Fault) bool { return f.Node == l.End.Node && f.Iface == l.End.Iface })
		s.stopReverters(l.End)
		if err := s.store.Write(s.led); err != nil {
			return err
		}
	}
	return s.syncDelayer()
}

// syncDelayer makes the delayer serve exactly the queues of the ledger's
// faults: it starts it (recorded before it runs) when the first is needed,
// reloads it on a change and waits until it serves every queue, and stops it
// when none is left.
func (s *session) syncDelayer() error {
	var cfg delayer.Config
	for _, f := range s.led.Faults {
		if f.Delayer == "" {
			continue
		}
		n := s.led.Node(f.Node)
		if n == nil || !n.Owned() {
			continue
		}
		path, err := s.opt.Netns.PathOf(n.Netns)
		if err != nil {
			return err
		}
		cfg.Queues = append(cfg.Queues, delayer.Entry{Name: f.Node + ":" + f.Iface, Netns: path, Queue: f.Queue, Spec: f.Delayer})
	}
	cfgPath := filepath.Join(s.dir(), delayerConfig)
	old, _ := delayer.ReadConfig(cfgPath)
	i := slices.IndexFunc(s.led.Procs, func(p ledger.Proc) bool { return p.Role == RoleDelayer })
	running := i >= 0 && lab.HelperAlive(s.led.Procs[i])
	if len(cfg.Queues) == 0 {
		if i >= 0 {
			if err := lab.StopHelper(s.led.Procs[i]); err != nil {
				return err
			}
			s.led.Procs = slices.Delete(s.led.Procs, i, i+1)
			if err := s.store.Write(s.led); err != nil {
				return err
			}
		}
		os.Remove(cfgPath)
		return nil
	}
	if running && slices.Equal(old.Queues, cfg.Queues) {
		return nil
	}
	if err := delayer.WriteJSON(cfgPath, cfg); err != nil {
		return err
	}
	statsPath := filepath.Join(s.dir(), delayerStats)
	before := time.Now()
	if running {
		if err := syscall.Kill(s.led.Procs[i].PID, syscall.SIGHUP); err != nil {
			return err
		}
	} else {
		if i >= 0 {
			s.led.Procs = slices.Delete(s.led.Procs, i, i+1)
		}
		os.Remove(statsPath)
		argv := []string{s.opt.Exe, "fault", DelayerArg, s.dir()}
		st, err := lab.StartHelper(s.opt.Exe, argv, filepath.Join(s.dir(), "delayer.log"))
		if err != nil {
			return fmt.Errorf("start the fault delayer: %w", err)
		}
		s.led.Procs = append(s.led.Procs, ledger.Proc{Role: RoleDelayer, Argv: argv, PID: st.PID, Start: st.Start, Log: st.Log})
		if err := s.store.Write(s.led); err != nil {
			st.Abort()
			return err
		}
		if err := st.Release(); err != nil {
			return fmt.Errorf("start the fault delayer: %w", err)
		}
	}
	return awaitServed(statsPath, cfg, before)
}

// serveWait bounds how long a change waits for the delayer to bind.
const serveWait = 5 * time.Second

// awaitServed waits until the delayer's stats, written after since, show
// every queue of cfg.
func awaitServed(path string, cfg delayer.Config, since time.Time) error {
	deadline := time.Now().Add(serveWait)
	for {
		st, _ := delayer.ReadStats(path)
		if !st.Updated.Before(since.Add(-time.Millisecond)) {
			missing := ""
			for _, e := range cfg.Queues {
				if _, ok := st.Queues[e.Name]; !ok {
					missing = e.Name
					if msg, ok := st.Errors[e.Name]; ok {
						return fmt.Errorf("fault delayer: %s: %s", e.Name, msg)
					}
				}
			}
			if missing == "" {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("fault delayer: does not serve its queues after %v (see %s)", serveWait, filepath.Join(filepath.Dir(path), "delayer.log"))
		}
		// A reload takes a few milliseconds: look often at first (a
		// 2 ms step was up to 2 ms of every fault set), then less.
		step := 200 * time.Microsecond
		if time.Since(since) > 20*time.Millisecond {
			step = 2 * time.Millisecond
		}
		time.Sleep(step)
	}
}

// DelayerArg is the hidden argument of `nsnet fault` that runs the delayer.
const DelayerArg = "--delayer"

// RevertArg is the hidden argument of `nsnet fault` that runs a reverter.
const RevertArg = "--revert"

// RunDelayer is the delayer process: it serves the lab directory's config
// until SIGTERM, rereading it on SIGHUP.
func RunDelayer(ctx context.Context, dir string, reload <-chan os.Signal) error {
	return delayer.Run(ctx, filepath.Join(dir, delayerConfig), filepath.Join(dir, delayerStats), reload)
}

func (s *session) startReverter(end fault.End, until time.Time) error {
	argv := []string{s.opt.Exe, "fault", RevertArg, s.opt.StateDir, s.opt.Netns.Path, s.name, end.String(), strconv.FormatInt(until.UnixNano(), 10)}
	st, err := lab.StartHelper(s.opt.Exe, argv, filepath.Join(s.dir(), "reverter.log"))
	if err != nil {
		return fmt.Errorf("start the reverter: %w", err)
	}
	s.led.Procs = append(s.led.Procs, ledger.Proc{Role: RoleReverter, Node: end.Node, Argv: argv, PID: st.PID, Start: st.Start, Log: st.Log})
	if err := s.store.Write(s.led); err != nil {
		st.Abort()
		return err
	}
	return st.Release()
}

// stopReverters stops the reverters of an end (its fault was replaced or
// cleared) and forgets them.
func (s *session) stopReverters(end fault.End) {
	s.led.Procs = slices.DeleteFunc(s.led.Procs, func(p ledger.Proc) bool {
		if p.Role != RoleReverter || len(p.Argv) < 7 || p.Argv[6] != end.String() || p.PID == os.Getpid() {
			return false
		}
		_ = lab.StopHelper(p)
		return true
	})
}

// Revert is the reverter process: it sleeps until the deadline and then
// clears the end's fault, if it is still the one it was started for.
func Revert(opt lab.Options, name string, end fault.End, until time.Time) error {
	time.Sleep(time.Until(until))
	s, err := begin(opt, name)
	if err != nil {
		return err
	}
	return s.done(s.revert(end, until))
}

func (s *session) revert(end fault.End, until time.Time) error {
	// This process is done once it runs: forget it first.
	me := os.Getpid()
	s.led.Procs = slices.DeleteFunc(s.led.Procs, func(p ledger.Proc) bool { return p.Role == RoleReverter && p.PID == me })
	i := slices.IndexFunc(s.led.Faults, func(f ledger.Fault) bool { return f.Node == end.Node && f.Iface == end.Iface })
	if i < 0 || !s.led.Faults[i].Until.Equal(until) {
		return s.store.Write(s.led)
	}
	l, err := s.link(end)
	if err != nil {
		return err
	}
	return s.clear([]backend.Link{l})
}

// members are the lab's own nodes with their addresses, for partitions.
func (s *session) members(only ...fault.Partition) (map[string]backend.Member, []backend.Member, error) {
	byName := map[string]backend.Member{}
	var all []backend.Member
	for _, n := range s.led.Nodes {
		if !n.Owned() {
			continue
		}
		if len(only) > 0 && !slices.ContainsFunc(only, func(p fault.Partition) bool { return p.Group(n.Name) >= 0 }) {
			continue
		}
		ns, _, err := s.ns(n.Name)
		if err != nil {
			return nil, nil, err
		}
		h, done, err := s.conns.Handle(ns)
		if err != nil {
			return nil, nil, err
		}
		addrs, err := h.Addrs()
		done()
		if err != nil {
			return nil, nil, err
		}
		m := backend.Member{Node: n.Name, NS: ns}
		for _, a := range addrs {
			// Link-local addresses count: a partition blocks what is
			// sent from them too.
			ip := a.Prefix.Addr()
			if ip.IsLoopback() {
				continue
			}
			m.Addrs = append(m.Addrs, ip)
		}
		slices.SortFunc(m.Addrs, netip.Addr.Compare)
		byName[n.Name] = m
		all = append(all, m)
	}
	return byName, all, nil
}

// Partition cuts the lab's groups of nodes off from each other, replacing
// the partition in force. Nodes not named are not affected.
func Partition(opt lab.Options, name string, p fault.Partition) error {
	if err := p.Validate(); err != nil {
		return err
	}
	s, err := begin(opt, name)
	if err != nil {
		return err
	}
	defer s.close()
	for _, n := range p.Nodes() {
		ln := s.led.Node(n)
		if ln == nil {
			if err := lab.Elsewhere(s.led, n); err != nil {
				return err
			}
			return &Error{Lab: name, Msg: "has no node " + n, Err: fs.ErrNotExist}
		}
		if !ln.Owned() {
			return &Error{Lab: name, Msg: "node " + n + " is the host's namespace, which a partition does not touch"}
		}
	}
	// The nodes of this partition and of the one it replaces: no other
	// node has partition rules.
	only := []fault.Partition{p}
	if old := s.led.Partition; old != nil {
		only = append(only, fault.Partition{Groups: old.Groups})
	}
	byName, all, err := s.members(only...)
	if err != nil {
		return err
	}
	for _, n := range p.Nodes() {
		if len(byName[n].Addrs) == 0 {
			return &Error{Lab: name, Msg: "node " + n + " has no address to tell its packets by"}
		}
	}
	s.led.Partition = &ledger.Partition{Groups: p.Groups, OneWay: p.OneWay, Set: time.Now().UTC()}
	if err := s.store.Write(s.led); err != nil {
		return err
	}
	return backend.SetPartition(name, backend.PartitionChains(p, byName), all)
}

// Heal removes the partition in force, if any, from every node.
func Heal(opt lab.Options, name string) error {
	s, err := begin(opt, name)
	if err != nil {
		return err
	}
	defer s.close()
	if s.led.Partition == nil {
		return nil
	}
	// Only the nodes of the partition in force have its rules: it was
	// recorded before any was made.
	_, all, err := s.members(fault.Partition{Groups: s.led.Partition.Groups})
	if err != nil {
		return err
	}
	if err := backend.SetPartition(name, nil, all); err != nil {
		return err
	}
	s.led.Partition = nil
	return s.store.Write(s.led)
}

// parallel bounds how many ends a session resolves or changes at once: the
// work is round trips to the kernel in different namespaces, which overlap.
const parallel = 8

// each runs fn for 0..n-1 on up to parallel goroutines and returns the
// first error (by index).
func each(n int, fn func(i int) error) error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	next := make(chan int)
	for range min(parallel, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				errs[i] = fn(i)
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

package lab

import (
	"container/list"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nsnet/nsnet/kernel"
	"github.com/nsnet/nsnet/lab/ledger"
	"github.com/nsnet/nsnet/netns"
)

// loIndex is the loopback's ifindex, the same in every namespace.
const loIndex = 1

// maxOpen bounds the namespaces a System keeps open.
const maxOpen = 1024

// System is the Executor that changes the kernel. It keeps one netlink
// handle per namespace, opened on first use and reused, up to a bound set by
// the descriptor limit (least recently used handles are closed first), so a
// lab of 10,000 nodes neither reopens handles per step nor runs out of
// descriptors.
type System struct {
	dir      netns.Dir
	exe      string
	logDir   string
	mark     string
	host     *conn
	conns    map[string]*list.Element
	lru      *list.List // of *conn, most recent first
	maxConns int
	// Grace is how long a stopped process gets between SIGTERM and
	// SIGKILL; Settle bounds the wait for the kernel to remove links of
	// deleted namespaces.
	Grace  time.Duration
	Settle time.Duration
}

// conn is an open namespace with its netlink handle and the indexes of its
// links learnt so far.
type conn struct {
	name string
	ns   *netns.NS
	h    *kernel.Handle
	idx  map[string]int
}

func (c *conn) close() {
	if c.h != nil {
		c.h.Close()
	}
	if c.ns != nil {
		c.ns.Close()
	}
}

// index returns a link's ifindex, from the cache or the kernel.
func (c *conn) index(name string) (int, error) {
	if i, ok := c.idx[name]; ok {
		return i, nil
	}
	l, err := c.h.LinkByName(name)
	if err != nil {
		return 0, err
	}
	c.idx[name] = l.Index
	return l.Index, nil
}

// NewSystem opens the host namespace (the one nsnet runs in).
func NewSystem(dir netns.Dir, exe, logDir, mark string) (*System, error) {
	self, err := netns.Current()
	if err != nil {
		return nil, err
	}
	h, err := kernel.Open(self)
	if err != nil {
		self.Close()
		return nil, err
	}
	s := &System{
		dir: dir, exe: exe, logDir: logDir, mark: mark,
		host:  &conn{ns: self, h: h, idx: map[string]int{}},
		conns: map[string]*list.Element{}, lru: list.New(),
		Grace: 3 * time.Second, Settle: 10 * time.Second,
	}
	// Two descriptors per namespace (nsfs and netlink), and room for
	// everything else. More than maxOpen handles cost memory (a few
	// kilobytes each) for little: a plan touches a node's namespace in a
	// few runs of consecutive steps, so reopening is rare.
	s.maxConns = maxOpen
	var rl unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &rl) == nil && rl.Cur < 2*maxOpen+256 {
		s.maxConns = max(16, int(rl.Cur)-256) / 2
	}
	return s, nil
}

// HostID identifies the namespace the System works in as the host.
func (s *System) HostID() (ledger.NSID, error) {
	id, err := s.host.ns.ID()
	return ledger.NSID{Dev: id.Dev, Ino: id.Ino}, err
}

// Close releases every handle.
func (s *System) Close() {
	for e := s.lru.Front(); e != nil; e = e.Next() {
		e.Value.(*conn).close()
	}
	s.lru.Init()
	clear(s.conns)
	s.host.close()
}

// conn returns the open namespace name ("" for the host).
func (s *System) conn(name string) (*conn, error) {
	if name == "" {
		return s.host, nil
	}
	if e, ok := s.conns[name]; ok {
		s.lru.MoveToFront(e)
		return e.Value.(*conn), nil
	}
	ns, err := s.dir.Open(name)
	if err != nil {
		return nil, err
	}
	h, err := kernel.Open(ns)
	if err != nil {
		ns.Close()
		return nil, err
	}
	return s.keep(&conn{name: name, ns: ns, h: h, idx: map[string]int{}}), nil
}

func (s *System) keep(c *conn) *conn {
	s.conns[c.name] = s.lru.PushFront(c)
	for s.lru.Len() > s.maxConns {
		old := s.lru.Remove(s.lru.Back()).(*conn)
		delete(s.conns, old.name)
		old.close()
	}
	return c
}

func (s *System) forget(name string) {
	if e, ok := s.conns[name]; ok {
		s.lru.Remove(e)
		delete(s.conns, name)
		e.Value.(*conn).close()
	}
}

// ifaceConn returns the connection of an interface's namespace and its index.
func (s *System) ifaceConn(i *Interface) (*conn, int, error) {
	c, err := s.conn(i.Node.Netns)
	if err != nil {
		return nil, 0, err
	}
	idx, err := c.index(i.Name)
	return c, idx, err
}

// StepError is a step that failed, with the command it stands for.
type StepError struct {
	Step string
	Err  error
}

func (e *StepError) Error() string { return e.Step + ": " + e.Err.Error() }
func (e *StepError) Unwrap() error { return e.Err }

// Run performs one step.
func (s *System) Run(st Step) error {
	if err := s.run(st); err != nil {
		return &StepError{Step: st.Lines(s.mark)[0], Err: err}
	}
	return nil
}

func ignore(err error, kinds ...error) error {
	for _, k := range kinds {
		if errors.Is(err, k) {
			return nil
		}
	}
	return err
}

func (s *System) run(st Step) error {
	switch st.Op {
	case OpStopProcess:
		return stopProc(*st.Old.Proc, s.Grace)
	case OpRestoreSysctl:
		return s.host.ns.WriteSysctl(st.Old.Sysctl.Key, st.Old.Sysctl.Old)
	case OpDelNetns:
		s.forget(st.Old.Node.Netns)
		return ignore(s.dir.Delete(st.Old.Node.Netns), fs.ErrNotExist)
	case OpDelLink:
		netnsName, name := st.Netns(), ""
		if st.Old != nil {
			name = st.Old.Link.Name
		} else {
			name = st.Iface.Name
		}
		c, err := s.conn(netnsName)
		if err != nil {
			return err
		}
		delete(c.idx, name)
		return ignore(c.h.DelLink(name), fs.ErrNotExist)
	case OpAwaitGone:
		return s.awaitGone(st.Old.Links)
	case OpAddNetns:
		return s.addNetns(st.Node.Netns)
	case OpLoUp:
		c, err := s.conn(st.Node.Netns)
		if err != nil {
			return err
		}
		return c.h.SetUpIndex(loIndex)
	case OpSysctl:
		c, err := s.conn(st.Node.Netns)
		if err != nil {
			return err
		}
		sc := st.Node.Sysctls[st.Index]
		return c.ns.WriteSysctl(sc.Key, sc.Value)
	case OpAddBridge:
		c, err := s.conn(st.Iface.Node.Netns)
		if err != nil {
			return err
		}
		idx, err := c.h.AddBridgeMAC(st.Iface.Name, st.Iface.MTU, st.Iface.MAC)
		if err != nil {
			return err
		}
		c.idx[st.Iface.Name] = idx
		return nil
	case OpAddVeth:
		return s.addVeth(st.Iface)
	case OpSetAlias:
		c, idx, err := s.ifaceConn(st.Iface)
		if err != nil {
			return err
		}
		return c.h.SetAliasIndex(idx, s.mark)
	case OpAddrGenNone:
		c, idx, err := s.ifaceConn(st.Iface)
		if err != nil {
			return err
		}
		return c.h.SetAddrGenModeNone(idx)
	case OpSetMaster:
		c, idx, err := s.ifaceConn(st.Iface)
		if err != nil {
			return err
		}
		m, err := c.index(st.Iface.Master.Name)
		if err != nil {
			return err
		}
		return c.h.SetMasterIndex(idx, m)
	case OpSetMTU:
		c, idx, err := s.ifaceConn(st.Iface)
		if err != nil {
			return err
		}
		return c.h.SetMTUIndex(idx, st.Iface.MTU)
	case OpAddAddr, OpLinkLocal:
		c, idx, err := s.ifaceConn(st.Iface)
		if err != nil {
			return err
		}
		return ignore(c.h.AddAddrIndex(idx, st.Addr(), kernel.AddrOptions{NoDAD: true}), fs.ErrExist)
	case OpSetUp:
		c, idx, err := s.ifaceConn(st.Iface)
		if err != nil {
			return err
		}
		return c.h.SetUpIndex(idx)
	case OpAddRoute:
		c, err := s.conn(st.Node.Netns)
		if err != nil {
			return err
		}
		r := st.Node.Routes[st.Index]
		kr := kernel.Route{Dst: r.To, Gateway: r.Via}
		if r.Dev != "" {
			if kr.LinkIndex, err = c.index(r.Dev); err != nil {
				return err
			}
		}
		return ignore(c.h.AddRoute(kr), fs.ErrExist)
	case OpStartProcess:
		return errors.New("processes are started with Start")
	}
	return fmt.Errorf("unknown step %v", st.Op)
}

// addNetns creates a namespace, marks its loopback with the lab's alias and
// only then gives it its name: a named namespace without the mark is never
// the lab's, even if nsnet dies half-way.
func (s *System) addNetns(name string) error {
	ns, err := netns.New()
	if err != nil {
		return err
	}
	h, err := kernel.Open(ns)
	if err != nil {
		ns.Close()
		return err
	}
	c := &conn{name: name, ns: ns, h: h, idx: map[string]int{"lo": loIndex}}
	if err := h.SetAliasIndex(loIndex, s.mark); err != nil {
		c.close()
		return err
	}
	if err := s.dir.Pin(ns, name); err != nil {
		c.close()
		return err
	}
	s.keep(c)
	return nil
}

func (s *System) addVeth(a *Interface) error {
	b := a.Peer
	c, err := s.conn(a.Node.Netns)
	if err != nil {
		return err
	}
	v := kernel.Veth{Name: a.Name, Peer: b.Name, MTU: a.MTU}
	if b.Node != a.Node {
		pc, err := s.conn(b.Node.Netns)
		if err != nil {
			return err
		}
		v.PeerNS = pc.ns
		delete(pc.idx, b.Name)
	} else {
		delete(c.idx, b.Name)
	}
	idx, err := c.h.AddVethMAC(v, kernel.LinkMAC{MAC: a.MAC, PeerMAC: b.MAC})
	if err != nil {
		return err
	}
	c.idx[a.Name] = idx
	return nil
}

// awaitGone waits until the host links deleted with their peers' namespaces
// are gone: namespace teardown runs asynchronously in the kernel, and the
// names must be free before down returns (an up right after would otherwise
// find them). Links still there after Settle (a process holding the
// namespace open keeps them alive) are deleted one by one.
func (s *System) awaitGone(links []*ledger.Link) error {
	deadline := time.Now().Add(s.Settle)
	for delay := 200 * time.Microsecond; ; delay *= 2 {
		left, err := s.ownedHostLinks(links)
		if err != nil || len(left) == 0 {
			return err
		}
		if time.Now().After(deadline) {
			var errs []error
			for _, name := range left {
				errs = append(errs, ignore(s.host.h.DelLink(name), fs.ErrNotExist))
			}
			return errors.Join(errs...)
		}
		time.Sleep(min(delay, 20*time.Millisecond))
	}
}

// ownedHostLinks returns which of the ledger's host links still exist and
// are the lab's.
func (s *System) ownedHostLinks(links []*ledger.Link) ([]string, error) {
	ls, err := s.host.h.Links()
	if err != nil {
		return nil, err
	}
	by := make(map[string]kernel.Link, len(ls))
	for _, l := range ls {
		by[l.Name] = l
	}
	var left []string
	for _, lk := range links {
		l, ok := by[lk.Name]
		if ok && ownsHostLink(s.mark, &LinkState{Alias: l.Alias, MAC: l.MAC.String()}, lk) {
			left = append(left, lk.Name)
		}
	}
	return left, nil
}

// Start starts a process step behind its gate.
func (s *System) Start(st Step) (*Started, error) {
	n := st.Node
	argv := n.Processes[st.Index].Argv
	if err := os.MkdirAll(s.logDir, 0o755); err != nil {
		return nil, &ProcError{Op: "start", Node: n.Name, Argv: argv, Err: err}
	}
	log := filepath.Join(s.logDir, n.Name+"."+strconv.Itoa(int(st.Index))+".log")
	var ns *netns.NS
	if !n.IsHost() {
		c, err := s.conn(n.Netns)
		if err != nil {
			return nil, &ProcError{Op: "start", Node: n.Name, Argv: argv, Err: err}
		}
		ns = c.ns
	}
	started, err := startGated(ns, s.exe, s.dir.Path, n.Netns, argv, log)
	if err != nil {
		return nil, &ProcError{Op: "start", Node: n.Name, Argv: argv, Err: err}
	}
	return started, nil
}

// routeState converts a kernel route, naming its device.
func routeState(r kernel.Route, names map[int]string) RouteState {
	to := r.Dst
	if !to.IsValid() || to.Bits() == 0 {
		zero := netip.IPv4Unspecified()
		if r.Gateway.Is6() || to.IsValid() && to.Addr().Is6() {
			zero = netip.IPv6Unspecified()
		}
		to = netip.PrefixFrom(zero, 0)
	}
	return RouteState{To: to, Via: r.Gateway, Dev: names[r.LinkIndex]}
}

// AwaitCarrier waits until every veth end the plan brought up has carrier
// (IFF_RUNNING). The kernel turns carrier on asynchronously, in its link
// watch work, which batches events for up to a second, and a link passes no
// traffic until then: without this wait, a ping right after up could fail.
// It returns the links still without carrier after d.
func (s *System) AwaitCarrier(p *Plan, d time.Duration) ([]string, error) {
	byNS := map[string][]*Interface{}
	var order []string
	for _, st := range p.Steps {
		if st.Op != OpSetUp || st.Iface.Kind != KindVeth {
			continue
		}
		ns := st.Iface.Node.Netns
		if _, ok := byNS[ns]; !ok {
			order = append(order, ns)
		}
		byNS[ns] = append(byNS[ns], st.Iface)
	}
	deadline := time.Now().Add(d)
	var late []string
	for _, ns := range order {
		c, err := s.conn(ns)
		if err != nil {
			return nil, err
		}
		want := byNS[ns]
		for delay := 200 * time.Microsecond; ; delay *= 2 {
			running, err := runningLinks(c, want)
			if err != nil {
				return nil, err
			}
			var left []*Interface
			for _, i := range want {
				if !running[i.Name] {
					left = append(left, i)
				}
			}
			if want = left; len(want) == 0 {
				break
			}
			if time.Now().After(deadline) {
				for _, i := range want {
					late = append(late, i.Node.Name+":"+i.Name)
				}
				break
			}
			time.Sleep(min(delay, 20*time.Millisecond))
		}
	}
	return late, nil
}

// runningLinks reports which of the links have carrier: by one dump when
// there are many, one by one when few are left (a namespace with a big bridge
// holds thousands of links, and a dump of them is megabytes).
func runningLinks(c *conn, want []*Interface) (map[string]bool, error) {
	running := make(map[string]bool, len(want))
	if len(want) <= 16 {
		for _, i := range want {
			l, err := c.h.LinkByName(i.Name)
			if err != nil {
				return nil, err
			}
			running[i.Name] = l.Flags&unix.IFF_RUNNING != 0
		}
		return running, nil
	}
	links, err := c.h.Links()
	if err != nil {
		return nil, err
	}
	for _, l := range links {
		running[l.Name] = l.Flags&unix.IFF_RUNNING != 0
	}
	return running, nil
}

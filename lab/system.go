package lab

import (
	"cmp"
	"container/list"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nsnet/nsnet/kernel"
	"github.com/nsnet/nsnet/lab/ledger"
	"github.com/nsnet/nsnet/netns"
)

// loIndex is the loopback's ifindex, the same in every namespace.
const loIndex = 1

// maxOpen bounds the descriptors a System keeps open for namespaces: a raw
// netlink socket for each namespace it works in, and the namespace itself
// while it is among the most recently used (a namespace is reopened by name
// when needed again, which is rare: a plan needs the namespace itself only
// to create links into it and to set sysctls). Each costs a few hundred
// bytes.
const maxOpen = 1 << 16

// PlainEnv is the environment variable that, set to 1, makes a System send
// every request alone and wait for its answer: the same requests as the
// batched path, one round trip each. A test builds labs both ways and
// compares the kernel state, so batching (requests queued per namespace,
// failures reported late, as the step that queued them) is checked against
// the plain order of the plan.
const PlainEnv = "NSNET_LAB_PLAIN"

// System is the Executor that changes the kernel. It keeps one netlink
// handle per namespace, opened on first use and reused, up to a bound set by
// the descriptor limit (least recently used handles are closed first), so a
// lab of 10,000 nodes neither reopens handles per step nor runs out of
// descriptors.
type System struct {
	dir    netns.Dir
	exe    string
	logDir string
	mark   string
	host   *conn
	conns  map[string]*list.Element
	lru    *list.List // of *conn, most recent first
	maxFDs int        // descriptors the connections may hold
	fds    int        // descriptors they hold
	// Grace is how long a stopped process gets between SIGTERM and
	// SIGKILL; Settle bounds the wait for the kernel to remove links of
	// deleted namespaces.
	Grace time.Duration
	// reapers are those of the processes stopped so far.
	reapers []ledger.Proc
	Settle  time.Duration
	// EtcNetns is where the nodes' hosts files are (Options.EtcNetns).
	EtcNetns string

	// bufs is the receive space all the connections' batches share.
	bufs *kernel.Buffers

	// dirty are the connections with queued requests.
	dirty map[*conn]bool
	// plain sends every request alone and waits for its answer (see
	// PlainEnv).
	plain bool
	// last is the node connection requests were last queued on.
	last *conn
	// held keeps a teardown's namespaces alive while their names are
	// removed (see hold).
	held []*netns.NS
}

// conn is an open namespace with its raw netlink socket (requests are
// queued there and sent in batches), a netlink handle for dumps (opened
// when first needed), and the indexes of its links learnt so far.
type conn struct {
	name string
	ns   *netns.NS
	b    *kernel.Batch
	h    *kernel.Handle
	idx  linkIndexes
	sys  *System
	// loUp is set once the loopback was brought up with its mark.
	loUp bool
	// steps are the steps of the requests queued on b, by tag.
	steps []Step
}

func (c *conn) close() {
	if c.b != nil {
		c.b.Close()
		c.b = nil
		c.sys.fds--
	}
	if c.h != nil {
		c.h.Close()
		c.h = nil
	}
	if c.ns != nil {
		c.ns.Close()
		c.ns = nil
		c.sys.fds--
	}
}

// netns returns the connection's namespace, reopening it by name if it was
// closed to save descriptors.
func (c *conn) netns() (*netns.NS, error) {
	if c.ns == nil {
		ns, err := c.sys.dir.Open(c.name)
		if err != nil {
			return nil, err
		}
		c.ns = ns
		c.sys.fds++
		c.sys.trim(c)
	}
	return c.ns, nil
}

// dropNS closes a node's namespace descriptor; its socket stays, and the
// namespace is reopened by name when next needed, which a plan rarely does
// (a veth's peer is made in it, a sysctl written). Held open, 10,000
// namespaces are 10,000 descriptors and their objects for the whole run.
func (c *conn) dropNS() {
	if c.ns != nil && c.h == nil && c != c.sys.host {
		c.ns.Close()
		c.ns = nil
		c.sys.fds--
	}
}

// handle returns the connection's netlink handle, after sending what is
// queued (so that what it reads or changes comes after).
func (c *conn) handle() (*kernel.Handle, error) {
	if err := c.sys.flush(c); err != nil {
		return nil, err
	}
	if c.h == nil {
		ns, err := c.netns()
		if err != nil {
			return nil, err
		}
		h, err := kernel.Open(ns)
		if err != nil {
			return nil, err
		}
		c.h = h
	}
	return c.h, nil
}

// dropHandle closes the netlink handle (a few kilobytes of buffers): the
// raw socket serves the rest.
func (c *conn) dropHandle() {
	if c.h != nil && c != c.sys.host {
		c.h.Close()
		c.h = nil
	}
}

// index returns a link's ifindex, from the cache or the kernel.
func (c *conn) index(name string) (int, error) {
	if i, ok := c.idx.get(name); ok {
		return i, nil
	}
	h, err := c.handle()
	if err != nil {
		return 0, err
	}
	l, err := h.LinkByName(name)
	if err != nil {
		return 0, err
	}
	c.idx.set(name, l.Index)
	return l.Index, nil
}

// NewSystem opens the host namespace (the one nsnet runs in).
func NewSystem(dir netns.Dir, exe, logDir, mark string) (*System, error) {
	self, h, err := kernel.OpenCurrent()
	if err != nil {
		return nil, err
	}
	b, err := kernel.OpenBatch(self)
	if err != nil {
		h.Close()
		self.Close()
		return nil, err
	}
	s := &System{
		dir: dir, exe: exe, logDir: logDir, mark: mark,
		conns: map[string]*list.Element{}, lru: list.New(),
		Grace: 3 * time.Second, Settle: 10 * time.Second,
		dirty: map[*conn]bool{},
		plain: os.Getenv(PlainEnv) == "1",
	}
	b.OneAtATime = s.plain
	s.bufs = &kernel.Buffers{}
	b.ShareBuffers(s.bufs)
	s.host = &conn{ns: self, h: h, b: b, sys: s}
	// Up to two descriptors per namespace (netlink, and nsfs while it is
	// needed: dropNS), and room for everything else. A plan touches every
	// node's namespace in three passes (namespaces, links, routes):
	// keeping every socket open spares making each twice more.
	s.maxFDs = maxOpen
	var rl unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &rl) == nil && rl.Cur < maxOpen+256 {
		s.maxFDs = max(32, int(rl.Cur)-256)
	}
	return s, nil
}

// growFDTable makes room for n open descriptors in one step. The kernel
// doubles a process's descriptor table as it fills, and in a multi-threaded
// process (every Go program) each doubling waits for an RCU grace period,
// 5 to 12 ms here: opening 2,000 namespace handles one by one pays it five
// times. F_DUPFD picks the lowest free descriptor at or above n, so it never
// replaces an open one, and the table keeps its size after the close.
func (s *System) growFDTable(n int) {
	n = min(n, s.maxFDs)
	if n <= 64 { // the size every process starts with
		return
	}
	if fd, err := unix.FcntlInt(uintptr(s.host.ns.Fd()), unix.F_DUPFD_CLOEXEC, n); err == nil {
		unix.Close(fd)
	}
}

// HostID identifies the namespace the System works in as the host.
func (s *System) HostID() (ledger.NSID, error) {
	id, err := s.host.ns.ID()
	return ledger.NSID{Dev: id.Dev, Ino: id.Ino}, err
}

// hold keeps namespaces alive until release. A teardown holds every
// namespace it deletes from when it reads its mark: removing a name is an
// unmount, which waits for an RCU grace period, and while the kernel is
// already destroying the first namespaces beside it those waits grow long
// (a thousand unmounts took from 15 to 320 ms from one run to the next).
// Held, no namespace dies before all names are gone; then all are released
// together and the kernel destroys them in as few batches as it can.
func (s *System) hold(ns ...*netns.NS) { s.held = append(s.held, ns...) }

// release lets the held namespaces go.
func (s *System) release() {
	for _, ns := range s.held {
		ns.Close()
	}
	s.held = nil
}

// Close releases every handle. Queued requests are dropped: Apply flushes.
func (s *System) Close() {
	s.release()
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
	return s.adopt(name, ns)
}

// adopt is conn for a namespace the caller opened: it takes ns over.
func (s *System) adopt(name string, ns *netns.NS) (*conn, error) {
	if e, ok := s.conns[name]; ok {
		ns.Close()
		s.lru.MoveToFront(e)
		return e.Value.(*conn), nil
	}
	c, err := s.newConn(name, ns)
	if err != nil {
		return nil, err
	}
	return s.keep(c)
}

// newConn wraps ns, which it takes over, with a request batch of its own.
func (s *System) newConn(name string, ns *netns.NS) (*conn, error) {
	b, err := kernel.OpenBatch(ns)
	if err != nil {
		ns.Close()
		return nil, err
	}
	return s.wrap(name, ns, b), nil
}

// wrap makes a connection of a namespace and its Batch.
func (s *System) wrap(name string, ns *netns.NS, b *kernel.Batch) *conn {
	b.OneAtATime = s.plain
	b.ShareBuffers(s.bufs)
	return &conn{name: name, ns: ns, b: b, sys: s}
}

func (s *System) keep(c *conn) (*conn, error) {
	s.conns[c.name] = s.lru.PushFront(c)
	s.fds++ // the socket
	if c.ns != nil {
		s.fds++
	}
	return c, s.trim(c)
}

// trim keeps the descriptors within bounds, sparing c: first it closes the
// namespaces of the least recently used connections (their sockets stay),
// then whole connections.
func (s *System) trim(c *conn) error {
	if s.fds <= s.maxFDs {
		return nil
	}
	low := s.maxFDs * 7 / 8
	for e := s.lru.Back(); e != nil && s.fds > low; e = e.Prev() {
		if o := e.Value.(*conn); o != c && o.ns != nil && o.h == nil {
			o.ns.Close()
			o.ns = nil
			s.fds--
		}
	}
	var err error
	for e := s.lru.Back(); e != nil && s.fds > low; {
		o := e.Value.(*conn)
		e = e.Prev()
		if o == c {
			continue
		}
		s.lru.Remove(s.conns[o.name])
		delete(s.conns, o.name)
		if s.last == o {
			s.last = nil
		}
		if ferr := s.flush(o); ferr != nil && err == nil {
			err = ferr
		}
		o.close()
	}
	return err
}

func (s *System) forget(name string) {
	if e, ok := s.conns[name]; ok {
		if s.last == e.Value.(*conn) {
			s.last = nil
		}
		s.lru.Remove(e)
		delete(s.conns, name)
		c := e.Value.(*conn)
		s.dropQueued(c)
		c.close()
	}
}

// tag registers a step for a request about to be queued on c. A node's
// requests are sent once nsnet moves on to another node (the host's, which
// every node's link touches, when its batch is full): few steps wait for
// their answer at any time.
func (s *System) tag(c *conn, st Step) (int, error) {
	var err error
	if c != s.host && s.last != c {
		if s.last != nil {
			err = s.flush(s.last)
		}
		s.last = c
	}
	c.steps = append(c.steps, st)
	s.dirty[c] = true
	return len(c.steps) - 1, err
}

// flush sends a connection's queued requests. A failure is reported as the
// step that queued the request.
func (s *System) flush(c *conn) error {
	if !s.dirty[c] {
		return nil
	}
	delete(s.dirty, c)
	return s.sent(c, c.b.Flush())
}

// sent turns a failure of c's queued requests into the error of the step
// that queued the request, and forgets the steps sent.
func (s *System) sent(c *conn, err error) error {
	var be *kernel.BatchError
	if errors.As(err, &be) && be.Tag >= 0 && be.Tag < len(c.steps) {
		err = &StepError{Step: c.steps[be.Tag].Lines(s.mark)[0], Err: be.Err}
	}
	if c == s.host {
		clear(c.steps)
		c.steps = c.steps[:0]
	} else {
		c.steps = nil // thousands of nodes: keep nothing
	}
	return err
}

// dropQueued forgets what a connection has queued (its namespace is being
// deleted).
func (s *System) dropQueued(c *conn) {
	delete(s.dirty, c) // closing the socket drops them
}

// Flush sends every queued request and reports the first failure.
func (s *System) Flush() error {
	var errs []error
	for c := range s.dirty {
		errs = append(errs, s.flush(c))
	}
	return errors.Join(errs...)
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

// ifaceStep is the start of every step about one interface: its
// namespace's connection and index, and the step registered on it.
func (s *System) ifaceStep(st Step) (*conn, int, int, error) {
	c, idx, err := s.ifaceConn(st.Iface)
	if err != nil {
		return nil, 0, 0, err
	}
	tag, err := s.tag(c, st)
	return c, idx, tag, err
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
		err := stopProc(*st.Old.Proc, s.Grace)
		// Its reaper exits on its own now; down waits for them all at
		// once (AwaitReapers) rather than for each in turn.
		s.reapers = append(s.reapers, *st.Old.Proc)
		return err
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
		h, err := c.handle()
		if err != nil {
			return err
		}
		c.idx.del(name)
		return ignore(h.DelLink(name), fs.ErrNotExist)
	case OpAwaitGone:
		return s.awaitGone(st.Old.Links)
	case OpAddNetns:
		c, err := s.makeNetns(st.Node.Netns)
		if err != nil {
			return err
		}
		_, err = s.keep(c)
		c.dropNS()
		return err
	case OpLoUp:
		c, err := s.conn(st.Node.Netns)
		if err != nil || c.loUp {
			return err // addNetns brought it up with its mark
		}
		tag, err := s.tag(c, st)
		if err != nil {
			return err
		}
		return c.b.SetLink(loIndex, kernel.LinkChange{Up: true}, tag)
	case OpSysctl:
		c, err := s.conn(st.Node.Netns)
		if err != nil {
			return err
		}
		if err := s.flush(c); err != nil {
			return err
		}
		sc := st.Node.Sysctls[st.Index]
		ns, err := c.netns()
		if err != nil {
			return err
		}
		return ns.WriteSysctl(sc.Key, sc.Value)
	case OpAddBridge:
		c, err := s.conn(st.Iface.Node.Netns)
		if err != nil {
			return err
		}
		delete(s.dirty, c)
		idx, _, err := c.b.AddLink(kernel.NewLink{Name: st.Iface.Name, MTU: st.Iface.MTU, MAC: st.Iface.MAC[:], Kind: kernel.Bridge{}})
		if err != nil {
			return s.sent(c, err)
		}
		s.sent(c, nil)
		c.idx.set(st.Iface.Name, idx)
		return nil
	case OpAddVeth:
		return s.addVeth(st.Iface)
	case OpAddVXLAN:
		return s.addVXLAN(st.Iface)
	case OpSetGuard, OpDelGuard:
		return s.guard(st)
	case OpSetAlias, OpAddrGenNone, OpSetMAC, OpSetMaster, OpSetMTU, OpSetUp:
		c, idx, err := s.ifaceConn(st.Iface)
		if err != nil {
			return err
		}
		var ch kernel.LinkChange
		switch st.Op {
		case OpSetAlias:
			ch.Alias = s.mark
		case OpAddrGenNone:
			ch.AddrGenNone = true
		case OpSetMAC:
			ch.MAC = st.Iface.MAC[:]
		case OpSetMaster:
			if ch.MasterIndex, err = c.index(st.Iface.Master.Name); err != nil {
				return err
			}
		case OpSetMTU:
			if err := kernel.ValidateMTU(st.Iface.MTU, false); err != nil {
				return err
			}
			ch.MTU = st.Iface.MTU
		case OpSetUp:
			ch.Up = true
		}
		tag, err := s.tag(c, st)
		if err != nil {
			return err
		}
		return c.b.SetLink(idx, ch, tag)
	case OpAddAddr, OpLinkLocal:
		c, idx, tag, err := s.ifaceStep(st)
		if err != nil {
			return err
		}
		return c.b.AddAddr(idx, st.Addr(), kernel.AddrOptions{NoDAD: true}, tag)
	case OpDelAddr:
		c, idx, tag, err := s.ifaceStep(st)
		if err != nil {
			return err
		}
		return c.b.DelAddr(idx, st.Addr(), tag)
	case OpAddNeigh:
		c, idx, tag, err := s.ifaceStep(st)
		if err != nil {
			return err
		}
		return c.b.SetNeigh(idx, st.Neigh(), st.Iface.Peer.MAC[:], tag)
	case OpAddBridgeNeighs:
		c, idx, tag, err := s.ifaceStep(st)
		if err != nil {
			return err
		}
		for _, e := range StaticNeighbours(st.Iface) {
			if err := c.b.SetNeigh(idx, e.IP, e.MAC, tag); err != nil {
				return err
			}
		}
		return nil
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
		tag, err := s.tag(c, st)
		if err != nil {
			return err
		}
		return c.b.AddRoute(kr, tag)
	case OpStartProcess:
		return errors.New("processes are started with Start")
	}
	return fmt.Errorf("unknown step %v", st.Op)
}

// makeNetns creates a namespace, marks its loopback with the lab's alias (and
// brings it up, in the same request) and only then gives it its name: a
// named namespace without the mark is never the lab's, even if nsnet dies
// half-way.
func (s *System) makeNetns(name string) (*conn, error) {
	ns, b, err := kernel.NewNetnsBatch()
	if err != nil {
		return nil, err
	}
	c := s.wrap(name, ns, b)
	if err := c.b.SetLink(loIndex, kernel.LinkChange{Alias: s.mark, Up: true}, 0); err == nil {
		err = c.b.Flush()
	}
	if err != nil {
		c.close()
		return nil, err
	}
	c.loUp = true
	if err := s.dir.Pin(ns, name); err != nil {
		c.close()
		return nil, err
	}
	return c, nil
}

func (s *System) addVeth(a *Interface) error {
	b := a.Peer
	c, err := s.conn(a.Node.Netns)
	if err != nil {
		return err
	}
	pc := c
	peer := kernel.VethPeer{Name: b.Name, MAC: b.MAC[:], MTU: a.MTU}
	if b.Node != a.Node {
		if pc, err = s.conn(b.Node.Netns); err != nil {
			return err
		}
		if peer.NS, err = pc.netns(); err != nil {
			return err
		}
	}
	nl := kernel.NewLink{Name: a.Name, MTU: a.MTU, MAC: a.MAC[:], Kind: peer}
	pc.idx.del(b.Name)
	delete(s.dirty, c)
	idx, peerIdx, err := c.b.AddLink(nl)
	if err != nil {
		return s.sent(c, err)
	}
	s.sent(c, nil)
	c.idx.set(a.Name, idx)
	pc.idx.set(b.Name, peerIdx)
	if pc != c {
		pc.dropNS()
	}
	return nil
}

// addVXLAN creates this machine's half of a link across machines: sent from
// the machine's namespace, so that the device's UDP socket is bound there,
// with the node's namespace as the device's own (born there, never moved).
func (s *System) addVXLAN(i *Interface) error {
	pc, err := s.conn(i.Node.Netns)
	if err != nil {
		return err
	}
	nl := kernel.NewLink{Name: i.Name, MTU: i.MTU, MAC: i.MAC[:],
		Kind: kernel.VXLAN{VNI: i.Link.VNI, Remote: i.Remote(), Local: i.Local(), Port: i.Link.Port}}
	if !i.Node.IsHost() {
		if nl.NS, err = pc.netns(); err != nil {
			return err
		}
	}
	c := s.host
	delete(s.dirty, c)
	idx, _, err := c.b.AddLink(nl)
	// The VNI may still be held by a half of this machine whose namespace
	// the kernel is destroying (a down just before: PlanDown): wait for
	// it, a while. The name cannot be what exists: the planner deleted a
	// link of that name that was not this half.
	for deadline := time.Now().Add(vxlanRelease); errors.Is(err, fs.ErrExist) && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		idx, _, err = c.b.AddLink(nl)
	}
	if errors.Is(err, fs.ErrExist) {
		err = fmt.Errorf("VNI %d on UDP port %d is held on this machine by a VXLAN device nsnet cannot see (in a namespace it does not know of, or still being destroyed after %v): %w", i.Link.VNI, i.Link.Port, vxlanRelease, err)
	}
	if err != nil {
		return s.sent(c, err)
	}
	s.sent(c, nil)
	if idx != 0 && i.Node.IsHost() {
		pc.idx.set(i.Name, idx)
	} else {
		pc.idx.del(i.Name) // looked up by name in the node when next needed
	}
	return nil
}

// awaitGone waits until the host links deleted with their peers' namespaces
// are gone: namespace teardown runs asynchronously in the kernel, and the
// names must be free before down returns (an up right after would otherwise
// find them). Links still there after Settle (a process holding the
// namespace open keeps them alive) are deleted one by one.
func (s *System) awaitGone(links []*ledger.Link) error {
	s.release()
	deadline := time.Now().Add(s.Settle)
	for _, lk := range links {
		s.host.idx.del(lk.Name) // gone, or not the lab's: not to be used
	}
	// The kernel destroys the devices of namespaces dropped together in
	// batches: wait for the first link still there to go, then ask about
	// all the others at once (sixty-four requests per send), and go on
	// with what is left. Asking about every link on every poll, or dumping
	// the host's thousands of links, would take the kernel's time from the
	// cleanup it waits for (filling in a host end scans the host's ids of
	// all peer namespaces).
	left := links
	for delay := 100 * time.Microsecond; len(left) > 0; delay = min(2*delay, 5*time.Millisecond) {
		first, err := s.ownedHostLinks(left[:1])
		if err != nil {
			return err
		}
		if len(first) == 0 {
			if left, err = s.ownedHostLinks(left[1:]); err != nil || len(left) == 0 {
				return err
			}
		}
		if time.Now().After(deadline) {
			// Only what is still there and still the lab's.
			if left, err = s.ownedHostLinks(left); err != nil {
				return err
			}
			h, err := s.host.handle()
			if err != nil {
				return err
			}
			var errs []error
			for _, lk := range left {
				errs = append(errs, ignore(h.DelLink(lk.Name), fs.ErrNotExist))
			}
			return errors.Join(errs...)
		}
		time.Sleep(delay)
	}
	return nil
}

// ownedHostLinks returns which of these ledger links still exist in the host
// and are the lab's (by alias, or by MAC when there is no alias).
func (s *System) ownedHostLinks(links []*ledger.Link) ([]*ledger.Link, error) {
	names := make([]string, len(links))
	for i, lk := range links {
		names[i] = lk.Name
	}
	infos, ok, err := s.host.b.LinksByName(names)
	if err != nil {
		return nil, err
	}
	var left []*ledger.Link
	for i, lk := range links {
		if ok[i] && ownsHostLink(s.mark, &LinkState{Alias: infos[i].Alias, MAC: infos[i].MAC.String()}, lk) {
			left = append(left, lk)
		}
	}
	return left, nil
}

// AwaitReapers waits until the reapers of the processes stopped so far have
// exited (killing one that does not), so that nothing of the lab is left.
func (s *System) AwaitReapers() {
	for _, p := range s.reapers {
		stopReaper(p, s.Grace)
	}
	s.reapers = nil
}

// Start starts a process step behind its gate, with a reaper that keeps its
// exit status. Both start in the namespace nsnet runs in; the gate enters
// the node's by name as it becomes the process.
func (s *System) Start(st Step) (*Started, error) {
	n := st.Node
	argv := n.Processes[st.Index].Argv
	if n.Processes[st.Index].Self {
		argv = append([]string{s.exe}, argv[1:]...)
	}
	if err := os.MkdirAll(s.logDir, 0o755); err != nil {
		return nil, &ProcError{Op: "start", Node: n.Name, Argv: argv, Err: err}
	}
	log := filepath.Join(s.logDir, n.Name+"."+strconv.Itoa(int(st.Index))+".log")
	started, err := startGated(s.exe, s.dir.Path, n.Netns, s.EtcNetns, argv, log, filepath.Join(s.logDir, exitName(n.Name, int(st.Index))))
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

// AwaitCarrier waits until every veth end the plan brought up, and its peer,
// is operationally up (IF_OPER_UP). The kernel turns carrier on
// asynchronously, in its link watch work, which batches events for up to a
// second, and a link passes no traffic until then: without this wait, a
// ping right after up could fail. The peer counts too: a repair that brings
// up one end of a pair whose other end was up already (an interrupted up)
// changes the carrier of both; so do the links it found up without
// carrier (Plan.Carrier: veths, and bridges with ports). A bridge port must
// forward, too. It returns the links still not up after d.
func (s *System) AwaitCarrier(p *Plan, d time.Duration) ([]string, error) {
	// The ends and their peers, grouped by namespace and without
	// repeats by sorting: at 10,000 nodes, maps of them (by namespace,
	// and of those seen) cost more than everything else up holds then.
	var wait []*Interface
	add := func(i *Interface) {
		wait = append(wait, i)
		if i.Peer != nil {
			wait = append(wait, i.Peer)
		}
	}
	for _, i := range p.Carrier {
		add(i)
	}
	for _, st := range p.Steps {
		if st.Op == OpSetUp && st.Iface.Kind == KindVeth {
			add(st.Iface)
		}
	}
	slices.SortFunc(wait, func(a, b *Interface) int {
		return cmp.Or(strings.Compare(a.Node.Netns, b.Node.Netns), strings.Compare(a.Name, b.Name))
	})
	wait = slices.Compact(wait)
	deadline := time.Now().Add(d)
	var late []string
	for len(wait) > 0 {
		// A namespace's ends, at most carrierChunk at a time (the host of
		// 10,000 point-to-point links holds 10,000 of them).
		ns := wait[0].Node.Netns
		n := 1
		for n < len(wait) && n < carrierChunk && wait[n].Node.Netns == ns {
			n++
		}
		want := wait[:n:n]
		wait = wait[n:]
		c, err := s.conn(ns)
		if err != nil {
			return nil, err
		}
		for delay := 200 * time.Microsecond; ; delay *= 2 {
			running, err := runningLinks(c, want)
			if err != nil {
				return nil, err
			}
			var left []*Interface
			for k, i := range want {
				if !running[k] {
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

// carrierChunk bounds the links AwaitCarrier reads in one go, and so the
// requests and answers it holds.
const carrierChunk = 256

// runningLinks reports which of the links are up with carrier, reading them
// by index, many per send: a namespace with a big bridge (or the host of
// 10,000 point-to-point links) holds thousands of links, and a dump of them
// is megabytes. running[k] is about want[k].
func runningLinks(c *conn, want []*Interface) (running []bool, err error) {
	if err := c.sys.flush(c); err != nil {
		return nil, err
	}
	idx := make([]int, len(want))
	for k, i := range want {
		var err error
		if idx[k], err = c.index(i.Name); err != nil {
			return nil, err
		}
	}
	links, err := c.b.LinksByIndex(idx)
	if err != nil {
		return nil, err
	}
	running = make([]bool, len(want))
	for k, l := range links {
		// A bridge port passes frames once the link watch that turned
		// its carrier on has also enabled it.
		running[k] = l.Flags&unix.IFF_RUNNING != 0 && l.OperState == kernel.OperUp &&
			(!l.BridgePort || l.PortState == kernel.PortForwarding)
	}
	return running, nil
}

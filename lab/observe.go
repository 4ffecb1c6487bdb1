package lab

import (
	"errors"
	"io/fs"
	"os"
	"slices"

	"golang.org/x/sys/unix"

	"github.com/nsnet/nsnet/kernel"

	"github.com/nsnet/nsnet/lab/ledger"
	"github.com/nsnet/nsnet/netns"
)

// Observe reads what exists of the lab l (nil for a teardown) and of its
// ledger led (nil if none): the host's links, addresses and routes; every
// namespace the lab or its ledger names that exists; other labs' claims;
// whether the ledger's processes still run. It changes nothing.
func (s *System) Observe(l *Lab, led *ledger.Ledger, store ledger.Store) (*State, error) {
	st := &State{Ledger: led, Netns: map[string]*NSState{}}
	names, err := s.dir.List()
	if err != nil {
		return nil, err
	}
	exists := make(map[string]bool, len(names))
	for _, n := range names {
		exists[n] = true
	}
	// Sysctl keys to read, and whether routes matter, per namespace ("" is
	// the host).
	keys := map[string][]string{}
	routes := map[string]bool{}
	neighs := map[string]bool{}
	static := map[string][]*Interface{}
	want := map[string]bool{}
	if l != nil {
		for _, n := range l.Nodes {
			if !n.IsHost() {
				want[n.Netns] = true
			}
			for _, sc := range n.Sysctls {
				keys[n.Netns] = append(keys[n.Netns], sc.Key)
			}
			routes[n.Netns] = len(n.Routes) > 0
			for _, i := range n.Interfaces {
				if ptp(i) {
					neighs[n.Netns] = true
				}
				if staticBridge(i) != nil {
					static[n.Netns] = append(static[n.Netns], i)
				}
			}
		}
	}
	if led != nil {
		for _, n := range led.Nodes {
			if n.Owned() {
				want[n.Netns] = true
			}
		}
		for _, sc := range led.Sysctls {
			keys[""] = append(keys[""], sc.Key)
		}
	}
	if l == nil {
		if err := s.observeMarks(st, want, exists); err != nil {
			return nil, err
		}
		st.Host, err = s.observeHostLinks(led, st, keys[""])
	} else {
		st.Host, err = s.observeNS(s.host, keys[""], routes[""], neighs[""], static[""])
	}
	if err != nil {
		return nil, err
	}
	for name := range want {
		if _, done := st.Netns[name]; done || !exists[name] {
			continue
		}
		c, err := s.conn(name)
		if err != nil {
			if stale, serr := s.stale(name); serr == nil && stale {
				st.Netns[name] = &NSState{Stale: true}
				continue
			}
			return nil, err
		}
		if l == nil {
			// A teardown deletes the lab's namespaces whole: it needs
			// only their mark.
			st.Netns[name], err = s.observeMark(c)
		} else {
			st.Netns[name], err = s.observeNS(c, keys[name], routes[name], neighs[name], static[name])
			c.dropHandle()
		}
		if err != nil {
			return nil, err
		}
	}
	if st.Claims, err = claims(store, l, led); err != nil {
		return nil, err
	}
	if st.Host == nil {
		st.Host = &NSState{}
	}
	if err := s.observeGuard(st, l, led); err != nil {
		return nil, err
	}

	if led != nil {
		st.Alive = make([]bool, len(led.Procs))
		st.Gated = make([]bool, len(led.Procs))
		for i, p := range led.Procs {
			st.Alive[i] = procAlive(p)
			st.Gated[i] = st.Alive[i] && atGate(p.PID)
		}
	}
	return st, nil
}

// stale reports whether a name in the namespace directory is the empty
// regular file an interrupted creation leaves (created, never mounted).
func (s *System) stale(name string) (bool, error) {
	p, err := s.dir.PathOf(name)
	if err != nil {
		return false, err
	}
	fi, err := os.Stat(p)
	if err != nil {
		return false, err
	}
	return fi.Mode().IsRegular() && fi.Size() == 0, nil
}

// observeNS reads one namespace: its links with their addresses, its routes
// when the lab has routes there, its permanent neighbour entries when it
// has point-to-point ends (a dump) or else the sample of its static
// stations' entries (lookups, see staticneigh.go), and the sysctls keys.
func (s *System) observeNS(c *conn, keys []string, withRoutes, withNeighs bool, static []*Interface) (*NSState, error) {
	h, err := c.handle()
	if err != nil {
		return nil, err
	}
	links, err := h.Links()
	if err != nil {
		return nil, err
	}
	addrs, err := h.Addrs()
	if err != nil {
		return nil, err
	}
	ns := &NSState{Links: make(map[string]*LinkState, len(links))}
	names := make(map[int]string, len(links))
	byIndex := make(map[int]*LinkState, len(links))
	for _, l := range links {
		names[l.Index] = l.Name
	}
	for _, l := range links {
		if l.Index == loIndex {
			ns.Mark, ns.LoUp = l.Alias, l.Up()
		}
		ls := &LinkState{
			Index: l.Index, Kind: l.Type, Alias: l.Alias, MAC: l.MAC.String(), Up: l.Up(), Running: l.OperState == "UP", MTU: l.MTU,
			Master: names[l.MasterIndex], PeerIndex: l.ParentIndex,
		}
		if v := l.VXLAN; v != nil {
			ls.VXLAN = &VXLANState{VNI: v.VNI, Remote: v.Remote, Local: v.Local, Port: v.Port, Learning: v.Learning}
		}
		if l.Index != loIndex {
			ls.AddrGenAuto = l.AddrGenMode >= 0 && l.AddrGenMode != kernel.AddrGenModeNone
		}
		ns.Links[l.Name] = ls
		byIndex[l.Index] = ls
		c.idx.set(l.Name, l.Index)
	}
	for _, a := range addrs {
		ls := byIndex[a.LinkIndex]
		switch {
		case ls == nil:
		case a.Prefix.Addr().Is6() && a.Flags&unix.IFA_F_NODAD == 0:
			ls.DAD = append(ls.DAD, a.Prefix)
		default:
			ls.Addrs = append(ls.Addrs, a.Prefix)
		}
	}
	if withRoutes {
		routes, err := h.Routes()
		if err != nil {
			return nil, err
		}
		for _, r := range routes {
			ns.Routes = append(ns.Routes, routeState(r, names))
		}
	}
	if withNeighs {
		if ns.Neighs, err = permanentNeighs(h, names); err != nil {
			return nil, err
		}
	} else if len(static) > 0 {
		if ns.Neighs, err = sampleNeighs(c, static); err != nil {
			return nil, err
		}
	}
	return ns, readSysctls(c, ns, keys)
}

func readSysctls(c *conn, ns *NSState, keys []string) error {
	if len(keys) > 0 {
		ns.Sysctls = make(map[string]string, len(keys))
	}
	for _, k := range keys {
		nsh, err := c.netns()
		if err != nil {
			return err
		}
		v, err := nsh.ReadSysctl(k)
		if err == nil {
			ns.Sysctls[k] = normSysctl(v)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// observeHostLinks reads, for a teardown, only what it needs of the host:
// the links the ledger lists there, by name, and the sysctls to restore.
// The host may hold thousands of other links, addresses and routes that a
// teardown would read and then ignore. Nor does it read the host ends of
// veths whose peers are in the lab's marked namespaces (st already holds
// the marks): deleting the namespace destroys them, and awaitGone checks by
// name that what it waits for is the lab's. (Reading a host end is not
// cheap for the kernel either: it scans the host's ids of all peer
// namespaces to fill in the peer's.)
func (s *System) observeHostLinks(led *ledger.Ledger, st *State, keys []string) (*NSState, error) {
	netnsOf := make(map[string]string, len(led.Nodes))
	for _, n := range led.Nodes {
		netnsOf[n.Name] = n.Netns
	}
	var names []string
	for _, lk := range led.Links {
		if lk.Netns != "" {
			continue
		}
		if node, _, ok := cutPeer(lk.Peer); ok && lk.Kind == KindVeth {
			if ns := st.Netns[netnsOf[node]]; netnsOf[node] != "" && ns != nil && ns.Mark == s.mark {
				continue
			}
		}
		names = append(names, lk.Name)
	}
	infos, ok, err := s.host.b.LinksByName(names)
	if err != nil {
		return nil, err
	}
	ns := &NSState{Links: make(map[string]*LinkState, len(names))}
	for i, name := range names {
		if !ok[i] {
			continue
		}
		li := infos[i]
		ns.Links[name] = &LinkState{Index: li.Index, Alias: li.Alias, MAC: li.MAC.String(), Up: li.Flags&unix.IFF_UP != 0}
		s.host.idx.set(name, li.Index)
	}
	return ns, readSysctls(s.host, ns, keys)
}

// claims collects the names other labs' ledgers hold, which this lab must
// not take even while they do not exist yet (another up is creating them).
func claims(store ledger.Store, l *Lab, led *ledger.Ledger) (Claims, error) {
	c := Claims{Netns: map[string]string{}, HostLinks: map[string]string{}}
	if l == nil {
		return c, nil
	}
	labs, err := store.Labs()
	if err != nil {
		return c, err
	}
	for _, name := range labs {
		if name == l.Name {
			continue
		}
		other, err := store.Read(name)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, ledger.ErrVersion) {
				continue // removed meanwhile, or not readable by this nsnet
			}
			return c, err
		}
		for _, n := range other.Nodes {
			if n.Owned() {
				c.Netns[n.Netns] = name
			}
		}
		for _, lk := range other.Links {
			if lk.Netns == "" {
				c.HostLinks[lk.Name] = name
			}
		}
	}
	return c, nil
}

// observeMark reads a namespace's mark and whether its loopback is up: one
// request, where a full observation dumps links, addresses and routes.
func (s *System) observeMark(c *conn) (*NSState, error) {
	if err := s.flush(c); err != nil {
		return nil, err
	}
	lo, err := c.b.GetLink(loIndex)
	if err != nil {
		return nil, err
	}
	return &NSState{Mark: lo.Alias, LoUp: lo.Flags&unix.IFF_UP != 0, Links: map[string]*LinkState{}}, nil
}

// permanentNeighs reads a namespace's permanent neighbour entries.
func permanentNeighs(h *kernel.Handle, names map[int]string) (map[NeighKey]string, error) {
	ns, err := h.PermanentNeighs()
	if err != nil {
		return nil, err
	}
	out := map[NeighKey]string{}
	for _, n := range ns {
		out[NeighKey{names[n.LinkIndex], n.IP}] = n.MAC.String()
	}
	return out, nil
}

// sampleNeighs looks up the sample of each static station's entries whose
// link exists.
func sampleNeighs(c *conn, static []*Interface) (map[NeighKey]string, error) {
	var want []kernel.Neigh
	var keys []NeighKey
	for _, i := range static {
		idx, ok := c.idx.get(i.Name)
		if !ok {
			continue
		}
		for _, e := range neighSample(i) {
			want = append(want, kernel.Neigh{LinkIndex: idx, IP: e.IP})
			keys = append(keys, NeighKey{i.Name, e.IP})
		}
	}
	macs, err := c.b.LookupPermanentNeighs(want)
	if err != nil {
		return nil, err
	}
	out := make(map[NeighKey]string, len(keys))
	for k, m := range macs {
		if m != nil {
			out[keys[k]] = m.String()
		}
	}
	return out, nil
}

// observeMarks reads, for a teardown, the mark of each namespace through the
// host's sockets, many at a time, by the kernel's id for the namespace (which
// it has when a veth of the lab crossed into it from the host): opening a
// socket inside each namespace costs about ten times more. Namespaces
// without an id here are left to the per-namespace path. Two workers, each
// with its own socket, share the work: the kernel answers these requests
// without its global lock, and a teardown's namespaces are not deleted
// before every mark is read. The namespaces stay open, held until their
// names are gone (see System.hold).
func (s *System) observeMarks(st *State, want, exists map[string]bool) error {
	var names []string
	for name := range want {
		if exists[name] {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return nil
	}
	s.growFDTable(len(names) + 64)
	half := len(names) / 2
	var other []*NSState
	var otherErr error
	var otherHeld []*netns.NS
	done := make(chan struct{})
	if half >= 64 {
		go func() {
			defer close(done)
			b, err := kernel.OpenBatch(s.host.ns)
			if err != nil {
				otherErr = err
				return
			}
			defer b.Close()
			b.ShareBuffers(s.bufs)
			other, otherHeld, otherErr = s.marks(b, names[:half])
		}()
	} else {
		half = 0
		close(done)
	}
	mine, held, err := s.marks(s.host.b, names[half:])
	<-done
	s.hold(otherHeld...)
	s.hold(held...)
	if err = errors.Join(err, otherErr); err != nil {
		return err
	}
	for i, ns := range slices.Concat(other, mine) {
		if ns != nil {
			st.Netns[names[i]] = ns
		}
	}
	return nil
}

// marks reads the loopback of each named namespace through b (see
// observeMarks); an entry is nil where it could not. It returns the
// namespaces it opened, still open.
func (s *System) marks(b *kernel.Batch, names []string) ([]*NSState, []*netns.NS, error) {
	out := make([]*NSState, len(names))
	var held []*netns.NS
	const chunk = 64 // requests per send
	for lo := 0; lo < len(names); lo += chunk {
		var at []int
		var fds []int
		for i := lo; i < min(lo+chunk, len(names)); i++ {
			ns, err := s.dir.Open(names[i])
			if err != nil {
				continue // stale, or gone: the per-namespace path tells
			}
			held = append(held, ns)
			at, fds = append(at, i), append(fds, ns.Fd())
		}
		infos, ok, err := b.LoopbackInfo(fds)
		if err != nil {
			return nil, held, err
		}
		for j, i := range at {
			if ok[j] {
				out[i] = &NSState{Mark: infos[j].Alias, LoUp: infos[j].Flags&unix.IFF_UP != 0, Links: map[string]*LinkState{}}
			}
		}
	}
	return out, held, nil
}

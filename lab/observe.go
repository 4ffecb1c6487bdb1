package lab

import (
	"errors"
	"io/fs"
	"net/netip"
	"os"

	"github.com/vishvananda/netlink"
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
	if st.Host, err = s.observeNS(s.host, keys[""], routes[""], neighs[""]); err != nil {
		return nil, err
	}
	if l == nil {
		if err := s.observeMarks(st, want, exists); err != nil {
			return nil, err
		}
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
			st.Netns[name], err = s.observeNS(c, keys[name], routes[name], neighs[name])
			c.dropHandle()
		}
		if err != nil {
			return nil, err
		}
	}
	if st.Claims, err = claims(store, l, led); err != nil {
		return nil, err
	}
	if led != nil {
		st.Alive = make([]bool, len(led.Procs))
		for i, p := range led.Procs {
			st.Alive[i] = procAlive(p)
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
// when the lab has routes there, and the sysctls keys.
func (s *System) observeNS(c *conn, keys []string, withRoutes, withNeighs bool) (*NSState, error) {
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
			Index: l.Index, Kind: l.Type, Alias: l.Alias, MAC: l.MAC.String(), Up: l.Up(), MTU: l.MTU,
			Master: names[l.MasterIndex], PeerIndex: l.ParentIndex,
		}
		ns.Links[l.Name] = ls
		byIndex[l.Index] = ls
		c.idx[l.Name] = l.Index
	}
	for _, a := range addrs {
		if ls := byIndex[a.LinkIndex]; ls != nil {
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
	}
	if len(keys) > 0 {
		ns.Sysctls = make(map[string]string, len(keys))
	}
	for _, k := range keys {
		nsh, err := c.netns()
		if err != nil {
			return nil, err
		}
		v, err := nsh.ReadSysctl(k)
		if err == nil {
			ns.Sysctls[k] = normSysctl(v)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	return ns, nil
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
	ns, err := h.Netlink().NeighList(0, 0)
	if err != nil {
		return nil, err
	}
	out := map[NeighKey]string{}
	for _, n := range ns {
		if n.State&netlink.NUD_PERMANENT == 0 || n.HardwareAddr == nil {
			continue
		}
		a, ok := netip.AddrFromSlice(n.IP)
		if !ok {
			continue
		}
		out[NeighKey{names[n.LinkIndex], a.Unmap()}] = n.HardwareAddr.String()
	}
	return out, nil
}

// observeMarks reads, for a teardown, the mark of each namespace through the
// host's socket, many at a time, by the kernel's id for the namespace (which
// it has when a veth of the lab crossed into it from the host): opening a
// socket inside each namespace costs about ten times more. Namespaces
// without an id here are left to the per-namespace path.
func (s *System) observeMarks(st *State, want, exists map[string]bool) error {
	var names []string
	for name := range want {
		if exists[name] {
			names = append(names, name)
		}
	}
	const chunk = 1024 // descriptors open at a time
	for lo := 0; lo < len(names); lo += chunk {
		var opened []string
		var nss []*netns.NS
		var fds []int
		for _, name := range names[lo:min(lo+chunk, len(names))] {
			ns, err := s.dir.Open(name)
			if err != nil {
				continue // stale, or gone: the per-namespace path tells
			}
			opened, nss, fds = append(opened, name), append(nss, ns), append(fds, ns.Fd())
		}
		infos, ok, err := s.host.b.LoopbackInfo(fds)
		for _, ns := range nss {
			ns.Close()
		}
		if err != nil {
			return err
		}
		for i, name := range opened {
			if ok[i] {
				st.Netns[name] = &NSState{Mark: infos[i].Alias, LoUp: infos[i].Flags&unix.IFF_UP != 0, Links: map[string]*LinkState{}}
			}
		}
	}
	return nil
}

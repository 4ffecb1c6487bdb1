package lab

import (
	"errors"
	"io/fs"
	"os"

	"github.com/nsnet/nsnet/lab/ledger"
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
	if st.Host, err = s.observeNS(s.host, keys[""], routes[""]); err != nil {
		return nil, err
	}
	for name := range want {
		if !exists[name] {
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
		if st.Netns[name], err = s.observeNS(c, keys[name], routes[name]); err != nil {
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
func (s *System) observeNS(c *conn, keys []string, withRoutes bool) (*NSState, error) {
	links, err := c.h.Links()
	if err != nil {
		return nil, err
	}
	addrs, err := c.h.Addrs()
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
		routes, err := c.h.Routes()
		if err != nil {
			return nil, err
		}
		for _, r := range routes {
			ns.Routes = append(ns.Routes, routeState(r, names))
		}
	}
	if len(keys) > 0 {
		ns.Sysctls = make(map[string]string, len(keys))
	}
	for _, k := range keys {
		v, err := c.ns.ReadSysctl(k)
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

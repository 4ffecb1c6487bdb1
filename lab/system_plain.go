package lab

import (
	"io/fs"

	"github.com/nsnet/nsnet/kernel"
	"github.com/nsnet/nsnet/netns"
)

// The plain path: one netlink round trip per step, through the netlink
// library, namespaces created in line. It is what the fast path (queued
// requests sent in batches, namespaces made ahead by a worker) must match:
// the test suite builds the same labs both ways and compares what the
// kernel holds. NSNET_LAB_PLAIN=1 selects it.

// PlainEnv is the environment variable that selects the plain path.
const PlainEnv = "NSNET_LAB_PLAIN"

// runPlain performs a creation step the plain way; handled reports whether
// the step is one (removals and processes have one path).
func (s *System) runPlain(st Step) (handled bool, err error) {
	switch st.Op {
	case OpAddNetns:
		c, err := s.makeNetnsPlain(st.Node.Netns)
		if err == nil {
			_, err = s.keep(c)
		}
		return true, err
	case OpLoUp:
		h, err := s.plainHandle(st.Node.Netns)
		if err != nil {
			return true, err
		}
		return true, h.SetUpIndex(loIndex)
	case OpAddBridge:
		c, err := s.conn(st.Iface.Node.Netns)
		if err != nil {
			return true, err
		}
		h, err := c.handle()
		if err != nil {
			return true, err
		}
		idx, err := h.AddBridgeMAC(st.Iface.Name, st.Iface.MTU, st.Iface.MAC)
		if err == nil {
			c.idx[st.Iface.Name] = idx
		}
		return true, err
	case OpAddVeth:
		a, b := st.Iface, st.Iface.Peer
		c, err := s.conn(a.Node.Netns)
		if err != nil {
			return true, err
		}
		h, err := c.handle()
		if err != nil {
			return true, err
		}
		v := kernel.Veth{Name: a.Name, Peer: b.Name, MTU: a.MTU}
		pc := c
		if b.Node != a.Node {
			if pc, err = s.conn(b.Node.Netns); err != nil {
				return true, err
			}
			if v.PeerNS, err = pc.netns(); err != nil {
				return true, err
			}
		}
		delete(pc.idx, b.Name)
		idx, err := h.AddVethMAC(v, kernel.LinkMAC{MAC: a.MAC, PeerMAC: b.MAC})
		if err == nil {
			c.idx[a.Name] = idx
		}
		return true, err
	case OpSetAlias, OpAddrGenNone, OpSetMAC, OpSetMaster, OpSetMTU, OpSetUp, OpDelAddr, OpAddAddr, OpLinkLocal, OpAddNeigh:
		c, err := s.conn(st.Iface.Node.Netns)
		if err != nil {
			return true, err
		}
		h, err := c.handle()
		if err != nil {
			return true, err
		}
		idx, err := c.index(st.Iface.Name)
		if err != nil {
			return true, err
		}
		switch st.Op {
		case OpSetAlias:
			return true, h.SetAliasIndex(idx, s.mark)
		case OpAddrGenNone:
			return true, h.SetAddrGenModeNone(idx)
		case OpSetMAC:
			return true, h.SetHardwareAddr(st.Iface.Name, st.Iface.MAC)
		case OpDelAddr:
			return true, ignore(h.DelAddr(st.Iface.Name, st.Addr()), fs.ErrNotExist)
		case OpSetMaster:
			m, err := c.index(st.Iface.Master.Name)
			if err != nil {
				return true, err
			}
			return true, h.SetMasterIndex(idx, m)
		case OpSetMTU:
			return true, h.SetMTUIndex(idx, st.Iface.MTU)
		case OpSetUp:
			return true, h.SetUpIndex(idx)
		case OpAddNeigh:
			return true, h.AddPermanentNeigh(st.Iface.Name, *st.Neigh, st.Iface.Peer.MAC)
		}
		return true, ignore(h.AddAddrIndex(idx, st.Addr(), kernel.AddrOptions{NoDAD: true}), fs.ErrExist)
	case OpAddRoute:
		c, err := s.conn(st.Node.Netns)
		if err != nil {
			return true, err
		}
		h, err := c.handle()
		if err != nil {
			return true, err
		}
		r := st.Node.Routes[st.Index]
		kr := kernel.Route{Dst: r.To, Gateway: r.Via}
		if r.Dev != "" {
			if kr.LinkIndex, err = c.index(r.Dev); err != nil {
				return true, err
			}
		}
		return true, ignore(h.AddRoute(kr), fs.ErrExist)
	}
	return false, nil
}

func (s *System) plainHandle(name string) (*kernel.Handle, error) {
	c, err := s.conn(name)
	if err != nil {
		return nil, err
	}
	return c.handle()
}

// makeNetnsPlain creates a namespace, marks its loopback and names it, one
// request at a time.
func (s *System) makeNetnsPlain(name string) (*conn, error) {
	ns, err := netns.New()
	if err != nil {
		return nil, err
	}
	c, err := s.newConn(name, ns, map[string]int{"lo": loIndex})
	if err != nil {
		return nil, err
	}
	h, err := c.handle()
	if err == nil {
		err = h.SetAliasIndex(loIndex, s.mark)
	}
	if err == nil {
		err = s.dir.Pin(ns, name)
	}
	if err != nil {
		c.close()
		return nil, err
	}
	return c, nil
}

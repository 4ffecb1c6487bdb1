package lab

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nsnet/nsnet/kernel"
)

// ErrNotUp is matched when an operation needs a lab that is up.
var ErrNotUp = errors.New("lab is not up")

// SetLink takes an interface of a lab that is up down (a fault) or brings it
// back (its repair), and returns only once that is in force.
//
// Down is in force as soon as the kernel has it: a veth whose end is down
// drops what it is given at once. Up is more: taking a link down makes the
// kernel flush the link's IPv4 routes, IPv6 addresses and neighbour
// entries, which setting it up again does not bring back, and carrier comes
// on asynchronously (the kernel's link watch), on both ends, then a bridge
// port starts forwarding; a packet sent before is dropped. So up puts back
// what the lab file gives the interface and the routes that leave by it,
// and waits until both ends have carrier and every bridge port among them
// forwards. Nothing else of the lab is touched: other faults stay.
func SetLink(l *Lab, node, iface string, up bool, opt Options) error {
	n := l.Node(node)
	if n == nil {
		e := &NoNodeError{Lab: l.Name, Node: node}
		for _, x := range l.Nodes {
			e.Nodes = append(e.Nodes, x.Name)
		}
		return e
	}
	i := n.Interface(iface)
	if i == nil {
		var names []string
		for _, x := range n.Interfaces {
			names = append(names, x.Name)
		}
		return fmt.Errorf("node %s of lab %s has no interface %s (interfaces: %v)", node, l.Name, iface, names)
	}
	s, err := open(l.Name, opt)
	if err != nil {
		return err
	}
	defer s.close()
	if s.led == nil {
		return fmt.Errorf("lab %s: %w", l.Name, ErrNotUp)
	}
	if !up {
		c, err := s.sys.conn(n.Netns)
		if err != nil {
			return err
		}
		h, err := c.handle()
		if err != nil {
			return err
		}
		return h.SetDown(iface)
	}
	st, err := s.sys.Observe(l, s.led, opt.store())
	if err != nil {
		return err
	}
	p, err := PlanUp(l, st)
	if err != nil {
		return err
	}
	for _, step := range repairSteps(p, i) {
		if step.Op == OpAddVeth || step.Op == OpAddBridge || step.Op == OpAddNetns {
			return fmt.Errorf("%s:%s of lab %s is gone (nsnet up %s makes it again)", node, iface, l.Name, l.File)
		}
		if err := s.sys.Run(step); err != nil {
			return err
		}
	}
	if err := s.sys.Flush(); err != nil {
		return err
	}
	return s.sys.awaitForwarding(i, settleTime)
}

// repairSteps are the steps of an up plan that bring interface i back after
// it was down: its own (addresses, up, neighbour entries) and the routes of
// its node that leave by it. Steps that would create i (or its namespace)
// are included so that the caller can refuse them.
func repairSteps(p *Plan, i *Interface) []Step {
	var out []Step
	for _, st := range p.Steps {
		switch st.Op {
		case OpAddNetns:
			if st.Node == i.Node {
				out = append(out, st)
			}
		case OpAddVeth:
			if st.Iface == i || st.Iface == i.Peer {
				out = append(out, st)
			}
		case OpAddBridge, OpLinkLocal, OpAddAddr, OpSetUp, OpAddNeigh:
			if st.Iface == i {
				out = append(out, st)
			}
		case OpAddRoute:
			if st.Node == i.Node && routeDev(st.Node, st.Node.Routes[st.Index]) == i {
				out = append(out, st)
			}
		}
	}
	return out
}

// awaitForwarding waits until interface i and, for a veth, its peer are
// running (up, with carrier, and seen by the link watch), each of them that
// is a bridge port forwards, and the kernel takes their addresses as its
// own: an IPv6 address added while its link was down gets its local route
// only after the link watch, and a packet to it is dropped until then. A peer that is down is an error at once: it
// would never come.
func (s *System) awaitForwarding(i *Interface, d time.Duration) error {
	// The peer first: if it is down, say so at once.
	ends := []*Interface{i}
	if i.Kind == KindVeth && i.Peer != nil {
		ends = []*Interface{i.Peer, i}
	}
	deadline := time.Now().Add(d)
	for _, e := range ends {
		c, err := s.conn(e.Node.Netns)
		if err != nil {
			return err
		}
		idx, err := c.index(e.Name)
		if err != nil {
			return err
		}
		name := e.Node.Name + ":" + e.Name
		for delay := 100 * time.Microsecond; ; delay = min(2*delay, 20*time.Millisecond) {
			li, err := c.b.GetLink(idx)
			if err != nil {
				return err
			}
			if li.Flags&unix.IFF_UP == 0 {
				return fmt.Errorf("%s:%s cannot work: its peer %s is down (SetLink it up)", i.Node.Name, i.Name, name)
			}
			what := ""
			switch {
			case li.Flags&unix.IFF_RUNNING == 0:
				what = "no carrier"
			case li.BridgePort && li.PortState != kernel.PortForwarding:
				what = fmt.Sprintf("bridge port state %d, not forwarding", li.PortState)
			default:
				h, err := c.handle()
				if err != nil {
					return err
				}
				if a, err := notLocal(h, e); err != nil {
					return err
				} else if a.IsValid() {
					what = "address " + a.String() + " not in force (no local route)"
				}
			}
			if what == "" {
				break
			}
			if time.Now().After(deadline) {
				return &kernel.OpError{Op: "await link", Name: name, Err: fmt.Errorf("%s after %v", what, d)}
			}
			time.Sleep(delay)
		}
		// The kernel publishes a link's new state, or an address's, before
		// it has finished acting on it (activating the link's queue,
		// enabling the bridge port, adding the address's local route),
		// all in one section under the rtnl lock. A request that takes
		// that lock returns only after the section ended: setting the
		// link up again, which changes nothing, is one.
		h, err := c.handle()
		if err != nil {
			return err
		}
		if err := h.SetUp(e.Name); err != nil {
			return err
		}
		// A packet sent the moment the link came back (a retransmission of
		// an old connection) can have started a neighbour resolution whose
		// answer was dropped, the addresses not in force yet: that entry
		// would hold the next packets for a second.
		if _, err := h.FlushUnresolved(idx); err != nil {
			return err
		}
	}
	return nil
}

// notLocal returns an address of the interface that the kernel does not
// take as its own yet, or the zero Addr.
func notLocal(h *kernel.Handle, i *Interface) (netip.Addr, error) {
	addrs := i.Addrs
	if i.IPv6() {
		addrs = append([]netip.Prefix{i.LinkLocal()}, addrs...)
	}
	for _, p := range addrs {
		ok, err := h.Local(p.Addr())
		if err != nil || !ok {
			return p.Addr(), err
		}
	}
	return netip.Addr{}, nil
}

package lab

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nsnet/nsnet/kernel"
	"github.com/nsnet/nsnet/lab/ledger"
)

// What the kernel refuses, and what it shares, among VXLAN devices whose
// UDP socket is in one network namespace (drivers/net/vxlan/vxlan_core.c):
//
//   - Two devices with the same VNI, destination port and address family
//     (IPv4 or IPv6 underlay) are refused when the second is created:
//     vxlan_vni_in_use, "File exists". The local and remote addresses do
//     not tell them apart.
//   - A port held by another UDP socket (a process's) is refused when the
//     device is set up, which is when the kernel binds its socket:
//     "Address already in use".
//   - Devices with different VNIs on one port and family share one socket,
//     silently; IPv4 and IPv6 devices on one port have a socket each.
//
// A lab across machines adds its guard, which drops datagrams to its port
// from every address but its other hosts'. So nsnet refuses before up
// changes anything: a VNI of this machine's part that another lab or a
// hand-made device has on the same port and family (what the kernel would
// refuse in the middle of the up), the port of a hand-made VXLAN device or
// of a socket nsnet cannot name (whose traffic the guard would drop), and
// the port of another lab whose guard admits other hosts (each guard would
// drop the other's). Two labs over the same hosts share a port: their
// guards admit the same addresses, and their VNIs must differ. Down leaves
// the halves to the kernel's destruction of their namespaces (PlanDown),
// so a socket nsnet cannot name, or a VNI taken by a device it does not
// see, is given a few seconds to go before it counts.
//
// Other labs are known by their ledgers in the same state directory;
// devices by the links of the machine's namespace; anything else (a
// process, a VXLAN device moved into a namespace nsnet does not see) by
// binding the port for an instant. Two ups that race past these checks
// meet the kernel's own refusal.

// checkVXLANUse refuses, with the file position of the link or of the
// port, a VNI or UDP port of this machine's part of l that something else
// on this machine uses. st is what Observe found of l (its own halves hold
// the port once they are up).
func (s *System) checkVXLANUse(l *Lab, st *State, store ledger.Store) error {
	g := l.guard()
	if g == nil {
		return nil
	}
	if err := s.checkUnderlayMTU(l); err != nil {
		return err
	}
	port, v6 := l.VXLAN.Port, l.Here.Address.Is6()
	fam := family(l.Here.Address)
	what := fmt.Sprintf("vxlan.port %d", port)
	if !l.VXLAN.portSet {
		what = fmt.Sprintf("UDP port %d (the default vxlan.port)", port)
	}
	other := fmt.Sprintf("give this lab another port (vxlan: {port: %d})", port+1)
	pr := problems{file: l.src}
	vnis := map[uint32]*Link{}
	for _, lk := range l.Links {
		if lk.CrossHost() {
			vnis[lk.VNI] = lk
		}
	}
	allow := make([]string, len(g.Allow))
	for i, a := range g.Allow {
		allow[i] = a.String()
	}
	slices.Sort(allow)

	// Other labs on this machine, by their ledgers.
	shared := false
	names, err := store.Labs()
	if err != nil {
		return err
	}
	for _, name := range names {
		if name == l.Name {
			continue
		}
		o, err := store.Read(name)
		if err != nil || o.VXLAN == nil || o.VXLAN.Port != port || o.VXLAN.IPv6 != v6 {
			// Unreadable: the checks of the kernel below still apply.
			continue
		}
		theirs := slices.Sorted(slices.Values(o.VXLAN.Allow))
		if !slices.Equal(theirs, allow) {
			pr.add(l.VXLAN.portAt, "%s is in use on this machine by lab %s, whose VXLAN guard admits other hosts (%s; this lab's: %s) and would drop this lab's traffic: %s",
				what, name, strings.Join(theirs, ", "), strings.Join(allow, ", "), other)
			continue
		}
		shared = true
		for _, ol := range o.Links {
			if lk := vnis[ol.VNI]; ol.Kind == KindVXLAN && lk != nil {
				pr.add(lk.vniAt, "VNI %d on UDP port %d over %s is in use on this machine by lab %s (its %s:%s): the kernel takes one device per VNI, port and family; set this link's vni: or the lab's vxlan.vni range",
					ol.VNI, port, fam, name, ol.Node, ol.Name)
			}
		}
	}

	// VXLAN devices in the machine's namespace that no lab made.
	infos, err := s.host.b.Links()
	if err != nil {
		return err
	}
	for _, li := range infos {
		v := li.VXLAN
		if v == nil || strings.HasPrefix(li.Alias, MarkPrefix) || v.Port != port || (v.Remote.Is6() || v.Local.Is6()) != v6 {
			continue
		}
		if lk := vnis[v.VNI]; lk != nil {
			pr.add(lk.vniAt, "VNI %d on UDP port %d over %s is VXLAN device %s's on this machine, which is not this lab's: the kernel takes one device per VNI, port and family; set this link's vni: or the lab's vxlan.vni range, or give the lab another port",
				v.VNI, port, fam, li.Name)
			continue
		}
		pr.add(l.VXLAN.portAt, "%s is used on this machine by VXLAN device %s (vni %d), which is not this lab's: the lab's guard admits only the lab's hosts and would drop its peers' traffic; %s",
			what, li.Name, v.VNI, other)
	}
	if err := pr.err(); err != nil {
		return err
	}

	// Anything else that holds the port: a process's socket, a VXLAN
	// device this machine's namespace does not show.
	ns, err := s.host.netns()
	if err != nil {
		return err
	}
	if shared || ownsPort(l, st, port) {
		return nil
	}
	// The halves of a lab taken down a moment ago hold the socket until
	// the kernel has destroyed their namespaces: a while is allowed them.
	deadline := time.Now().Add(vxlanRelease)
	for delay := time.Millisecond; ; delay = min(2*delay, 50*time.Millisecond) {
		held, err := kernel.UDPPortHeld(ns, port, v6)
		if err != nil || !held {
			return err
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(delay)
	}
	pr.add(l.VXLAN.portAt, "%s is in use on this machine over %s by a socket nsnet did not make (a process's, or a VXLAN device's in a namespace nsnet does not see; still held after %v): %s",
		what, fam, vxlanRelease, other)
	return pr.err()
}

// vxlanRelease bounds the wait for the kernel to release the VNIs and the
// port of VXLAN halves whose namespaces it is destroying. A thousand
// namespaces take it about a second on a quiet machine.
const vxlanRelease = 5 * time.Second

// ownsPort reports whether one of the lab's own VXLAN halves on this machine
// exists with the port (and so may be what holds it).
func ownsPort(l *Lab, st *State, port int) bool {
	for _, lk := range l.Links {
		if !lk.CrossHost() {
			continue
		}
		if ls := st.link(l.Local(lk)); ls != nil && ls.VXLAN != nil && ls.VXLAN.Port == port {
			return true
		}
	}
	return false
}

// checkUnderlayMTU refuses a lab whose underlay MTU (vxlan.underlay-mtu, or
// the default 1500) is larger than the MTU of this machine's interface that
// holds its underlay address: the VXLAN packets of a full-size frame would
// not fit, and would be fragmented or dropped on the way. Every machine
// reads the same file and so gives its links the same MTU; the file is
// what must change. A larger interface MTU (jumbo frames) is fine.
func (s *System) checkUnderlayMTU(l *Lab) error {
	h, err := s.host.handle()
	if err != nil {
		return err
	}
	addrs, err := h.Addrs()
	if err != nil {
		return err
	}
	index := 0
	for _, a := range addrs {
		if a.Prefix.Addr() == l.Here.Address {
			index = a.LinkIndex
			break
		}
	}
	if index == 0 {
		return nil // SelectHost found it here; gone since: the kernel will say
	}
	links, err := h.Links()
	if err != nil {
		return err
	}
	for _, lk := range links {
		if lk.Index != index || lk.MTU >= l.VXLAN.UnderlayMTU {
			continue
		}
		pr := problems{file: l.src}
		if l.VXLAN.mtuSet {
			pr.add(l.VXLAN.mtuAt, "underlay MTU %d is larger than the MTU %d of %s, the interface of host %s's underlay address %s on this machine: set vxlan.underlay-mtu to the smallest of the machines' (links across machines then default to it minus %d)",
				l.VXLAN.UnderlayMTU, lk.MTU, lk.Name, l.Here.Name, l.Here.Address, l.VXLAN.UnderlayMTU-l.VXLAN.MaxLinkMTU(l.Here.Address.Is6()))
		} else {
			pr.add(l.Here.addrAt, "the underlay interface %s of host %s's address %s has MTU %d, less than the %d a lab assumes: set vxlan.underlay-mtu: %d (every machine reads the same file, so its links across machines get the same MTU)",
				lk.Name, l.Here.Name, l.Here.Address, lk.MTU, l.VXLAN.UnderlayMTU, lk.MTU)
		}
		return pr.err()
	}
	return nil
}

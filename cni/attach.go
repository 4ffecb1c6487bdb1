package cni

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"

	"github.com/nsnet/nsnet/kernel"
	"github.com/nsnet/nsnet/netns"
)

// wired is what setup built, for the result.
type wired struct {
	bridge kernel.Link // bridge mode only
	host   kernel.Link
	cont   kernel.Link
}

// fullPrefix is a as a host prefix: /32 or /128.
func fullPrefix(a netip.Addr) netip.Prefix { return netip.PrefixFrom(a, a.BitLen()) }

// setup builds the attachment in r. It runs after r is recorded; on error
// the caller tears down whatever exists, by the same record.
func setup(host, cont *kernel.Handle, contNS *netns.NS, network string, r *record) (wired, error) {
	var w wired
	if r.Mode == ModeBridge {
		br, err := ensureBridge(host, r)
		if err != nil {
			return w, err
		}
		w.bridge = br
	}
	veth := kernel.Veth{
		Name:   r.HostVeth,
		Peer:   r.IfName,
		PeerNS: contNS,
		MTU:    r.MTU,
		Alias:  ownerAlias(network, r.ContainerID, r.IfName),
	}
	if r.MAC != "" {
		mac, err := net.ParseMAC(r.MAC)
		if err != nil {
			return w, fmt.Errorf("record of %s: mac %q: %w", r.key(), r.MAC, err)
		}
		veth.PeerMAC = mac
	}
	err := host.AddVeth(veth)
	if errors.Is(err, fs.ErrExist) && replaceOrphan(host, veth) {
		err = host.AddVeth(veth)
	}
	if errors.Is(err, fs.ErrExist) {
		// The spec requires an error when CNI_IFNAME is taken in the
		// container; say which side it was.
		if _, cerr := cont.LinkByName(r.IfName); cerr == nil {
			return w, &ExistsError{What: fmt.Sprintf("interface %s in CNI_NETNS %s", r.IfName, r.Netns)}
		}
		return w, &ExistsError{What: fmt.Sprintf("host interface %s", r.HostVeth)}
	}
	if err != nil {
		return w, err
	}
	if w.host, err = host.LinkByName(r.HostVeth); err != nil {
		return w, err
	}
	if r.Mode == ModeBridge {
		if err := host.SetMasterIndex(w.host.Index, w.bridge.Index); err != nil {
			return w, err
		}
		if r.Hairpin {
			if err := host.SetHairpinIndex(w.host.Index, true); err != nil {
				return w, err
			}
		}
	} else {
		// The gateways live on the host end of every veth: the
		// container reaches them over its point-to-point link.
		for _, ip := range r.IPs {
			if err := host.AddAddrIndex(w.host.Index, fullPrefix(ip.Gateway), kernel.AddrOptions{NoDAD: true}); err != nil {
				return w, err
			}
		}
	}
	if err := host.SetUpIndex(w.host.Index); err != nil {
		return w, err
	}
	if r.Mode == ModePTP {
		for _, ip := range r.IPs {
			if err := host.AddRoute(kernel.Route{Dst: fullPrefix(ip.Addr.Addr()), LinkIndex: w.host.Index}); err != nil {
				return w, err
			}
		}
	}

	if w.cont, err = cont.LinkByName(r.IfName); err != nil {
		return w, err
	}
	for _, ip := range r.IPs {
		if err := cont.AddAddrIndex(w.cont.Index, ip.Addr, kernel.AddrOptions{NoDAD: true}); err != nil {
			return w, err
		}
	}
	// Routes through a gateway need the link up.
	if err := cont.SetUpIndex(w.cont.Index); err != nil {
		return w, err
	}
	for _, rt := range containerRoutes(r) {
		if err := cont.AddRoute(kernel.Route{Dst: rt.Dst, Gateway: rt.GW, LinkIndex: w.cont.Index}); err != nil {
			return w, err
		}
	}
	return w, nil
}

// containerRoutes are the routes setup installs in the container, in order:
// in ptp mode the gateway's host route and the subnet through the gateway
// first, since the address itself is a /32 or /128 with no subnet route.
func containerRoutes(r *record) []Route {
	var out []Route
	has := func(dst netip.Prefix) bool {
		return slices.ContainsFunc(out, func(x Route) bool { return x.Dst == dst })
	}
	if r.Mode == ModePTP {
		for _, ip := range r.IPs {
			out = append(out, Route{Dst: fullPrefix(ip.Gateway)})
		}
		for _, ip := range r.IPs {
			// The rest of the subnet lies behind the gateway too; a
			// default route of the family already says so.
			covered := slices.ContainsFunc(r.Routes, func(x Route) bool {
				return x.Dst == ip.Subnet || (x.Dst.Bits() == 0 && x.Dst.Addr().Is6() == ip.Subnet.Addr().Is6())
			})
			if ip.Subnet.Bits() < ip.Subnet.Addr().BitLen() && !has(ip.Subnet) && !covered {
				out = append(out, Route{Dst: ip.Subnet, GW: ip.Gateway})
			}
		}
	}
	for _, rt := range r.Routes {
		if !rt.GW.IsValid() {
			rt.GW = gatewayFor(r, rt.Dst.Addr().Is6())
		}
		if !has(rt.Dst) {
			out = append(out, rt)
		}
	}
	return out
}

func gatewayFor(r *record, v6 bool) netip.Addr {
	for _, ip := range r.IPs {
		if ip.Addr.Addr().Is6() == v6 && ip.Gateway.IsValid() {
			return ip.Gateway
		}
	}
	return netip.Addr{}
}

// ensureBridge finds or creates the bridge, up, with the gateways on it.
// Concurrent ADDs race to create it; the loser finds it.
func ensureBridge(host *kernel.Handle, r *record) (kernel.Link, error) {
	br, err := host.LinkByName(r.Bridge)
	if errors.Is(err, fs.ErrNotExist) {
		err = host.AddBridge(r.Bridge, r.MTU, bridgeAlias)
		if err == nil {
			err = host.SetHardwareAddr(r.Bridge, bridgeMAC(r.Bridge))
		} else if errors.Is(err, fs.ErrExist) {
			err = nil
		}
		if err != nil {
			return br, err
		}
		br, err = host.LinkByName(r.Bridge)
	}
	if err != nil {
		return br, err
	}
	if br.Type != "bridge" {
		return br, &ConfigError{Field: "bridge", Rule: fmt.Sprintf("host interface %s exists and is a %s, not a bridge", r.Bridge, br.Type)}
	}
	if !br.Up() {
		if err := host.SetUpIndex(br.Index); err != nil {
			return br, err
		}
	}
	if r.Gateway {
		for _, ip := range r.IPs {
			if !ip.Gateway.IsValid() {
				continue
			}
			p := netip.PrefixFrom(ip.Gateway, ip.Subnet.Bits())
			if err := host.AddAddrIndex(br.Index, p, kernel.AddrOptions{NoDAD: true}); err != nil && !errors.Is(err, fs.ErrExist) {
				return br, err
			}
		}
	}
	return br, nil
}

// replaceOrphan deletes a host end that carries this attachment's alias: the
// attachment was just recorded afresh, so no record owns that link; it is
// left by a DEL in the background whose process has not finished (or died),
// or by a plugin killed mid-way. It reports whether it deleted one.
func replaceOrphan(host *kernel.Handle, v kernel.Veth) bool {
	l, err := host.LinkByName(v.Name)
	if err != nil || l.Alias != v.Alias {
		return false
	}
	err = host.DelLinkIndex(l.Index)
	return err == nil || errors.Is(err, fs.ErrNotExist)
}

// teardown removes the attachment's interfaces: deleting the host end of the
// veth deletes the container end too, wherever it is, with every address and
// route on either end. So DEL needs neither the container's namespace nor
// its previous result. An interface that exists under the name but is not
// marked as this attachment's is left alone.
func teardown(host *kernel.Handle, network, containerID, ifName string, reap func(index int, alias string) error) error {
	name := hostVethName(network, containerID, ifName)
	l, err := host.LinkByName(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	alias := ownerAlias(network, containerID, ifName)
	if l.Alias != alias {
		return nil
	}
	if reap != nil {
		// Taking the host end down costs no grace period, and at once
		// removes its routes and stops all traffic through the pair: the
		// addresses can be handed out again. Destroying the pair waits
		// for the kernel's RCU barrier (about 20 ms): a detached process
		// does it. If it never does (killed), GC finds the link (its
		// record is gone) and an ADD of the same attachment replaces it.
		if err := host.SetDownIndex(l.Index); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if err := reap(l.Index, alias); err == nil {
			return nil
		}
		// No reaper: delete in place.
	}
	if err := host.DelLinkIndex(l.Index); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// enableForwarding turns on routing in the host namespace for the families
// in use, as the reference plugins do: without it, traffic between the
// containers and anything beyond the host end is dropped.
//
// /proc/sys/net belongs to the namespace of the thread that opens it, so
// the files are opened inside host.Do, in one visit for all keys.
func enableForwarding(host *netns.NS, ips []recordIP) error {
	var keys []string
	for _, ip := range ips {
		k := "net.ipv4.ip_forward"
		if ip.Addr.Addr().Is6() {
			k = "net.ipv6.conf.all.forwarding"
		}
		if !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	paths := make([]string, len(keys))
	for i, k := range keys {
		p, err := netns.SysctlPath(k)
		if err != nil {
			return err
		}
		paths[i] = p
	}
	return host.Do(func() error {
		for i, p := range paths {
			// Read first: writing the IPv6 switch resets settings of
			// every interface, so it is only written when it changes.
			if b, err := os.ReadFile(p); err == nil && strings.TrimSpace(string(b)) == "1" {
				continue
			}
			if err := os.WriteFile(p, []byte("1"), 0); err != nil {
				return fmt.Errorf("enable forwarding (%s): %w", keys[i], err)
			}
		}
		return nil
	})
}

// checkAttachment compares the kernel with the record and the previous
// result, and reports the first thing missing.
func checkAttachment(host, cont *kernel.Handle, cfg *Config, r *record) error {
	hl, err := host.LinkByName(r.HostVeth)
	if err != nil {
		return &CheckError{What: fmt.Sprintf("host interface %s: %v", r.HostVeth, err)}
	}
	if hl.Alias != ownerAlias(cfg.Network, r.ContainerID, r.IfName) {
		return &CheckError{What: fmt.Sprintf("host interface %s is not this attachment's (alias %q)", r.HostVeth, hl.Alias)}
	}
	if !hl.Up() {
		return &CheckError{What: fmt.Sprintf("host interface %s is down", r.HostVeth)}
	}
	if cfg.MTU != 0 && hl.MTU != cfg.MTU {
		return &CheckError{What: fmt.Sprintf("host interface %s has mtu %d, configuration says %d", r.HostVeth, hl.MTU, cfg.MTU)}
	}
	cl, err := cont.LinkByName(r.IfName)
	if err != nil {
		return &CheckError{What: fmt.Sprintf("interface %s in CNI_NETNS: %v", r.IfName, err)}
	}
	if cl.Type != "veth" || cl.ParentIndex != hl.Index {
		return &CheckError{What: fmt.Sprintf("interface %s in CNI_NETNS is not the peer of host interface %s", r.IfName, r.HostVeth)}
	}
	if !cl.Up() {
		return &CheckError{What: fmt.Sprintf("interface %s in CNI_NETNS is down", r.IfName)}
	}
	if r.MAC != "" && !strings.EqualFold(cl.MAC.String(), r.MAC) {
		return &CheckError{What: fmt.Sprintf("interface %s in CNI_NETNS has MAC %s, the runtime asked for %s", r.IfName, cl.MAC, r.MAC)}
	}
	if cfg.MTU != 0 && cl.MTU != cfg.MTU {
		return &CheckError{What: fmt.Sprintf("interface %s in CNI_NETNS has mtu %d, configuration says %d", r.IfName, cl.MTU, cfg.MTU)}
	}
	if r.Mode == ModeBridge {
		br, err := host.LinkByName(r.Bridge)
		if err != nil {
			return &CheckError{What: fmt.Sprintf("bridge %s: %v", r.Bridge, err)}
		}
		if !br.Up() {
			return &CheckError{What: fmt.Sprintf("bridge %s is down", r.Bridge)}
		}
		if hl.MasterIndex != br.Index {
			return &CheckError{What: fmt.Sprintf("host interface %s is not attached to bridge %s", r.HostVeth, r.Bridge)}
		}
		if r.Hairpin {
			on, err := host.HairpinIndex(hl.Index)
			if err != nil {
				return err
			}
			if !on {
				return &CheckError{What: fmt.Sprintf("bridge port %s is not in hairpin mode", r.HostVeth)}
			}
		}
	}

	hostAddrs, err := host.Addrs()
	if err != nil {
		return err
	}
	contAddrs, err := cont.Addrs()
	if err != nil {
		return err
	}
	hasAddr := func(as []kernel.Addr, index int, p netip.Prefix) bool {
		return slices.ContainsFunc(as, func(a kernel.Addr) bool { return a.LinkIndex == index && a.Prefix == p })
	}
	for _, ip := range r.IPs {
		if !hasAddr(contAddrs, cl.Index, ip.Addr) {
			return &CheckError{What: fmt.Sprintf("address %s missing on %s in CNI_NETNS", ip.Addr, r.IfName)}
		}
		switch {
		case r.Mode == ModePTP:
			if !hasAddr(hostAddrs, hl.Index, fullPrefix(ip.Gateway)) {
				return &CheckError{What: fmt.Sprintf("gateway %s missing on host interface %s", ip.Gateway, r.HostVeth)}
			}
		case r.Gateway && ip.Gateway.IsValid():
			br, _ := host.LinkByName(r.Bridge)
			if !hasAddr(hostAddrs, br.Index, netip.PrefixFrom(ip.Gateway, ip.Subnet.Bits())) {
				return &CheckError{What: fmt.Sprintf("gateway %s/%d missing on bridge %s", ip.Gateway, ip.Subnet.Bits(), r.Bridge)}
			}
		}
	}

	contRoutes, err := cont.Routes()
	if err != nil {
		return err
	}
	for _, rt := range containerRoutes(r) {
		ok := slices.ContainsFunc(contRoutes, func(k kernel.Route) bool {
			return k.LinkIndex == cl.Index && k.Dst == rt.Dst && k.Gateway == rt.GW
		})
		if !ok && !(rt.Dst.Bits() == 0 && slices.ContainsFunc(contRoutes, func(k kernel.Route) bool {
			// The kernel reports a default route with no destination.
			return k.LinkIndex == cl.Index && !k.Dst.IsValid() && k.Gateway == rt.GW
		})) {
			return &CheckError{What: fmt.Sprintf("route %s missing in CNI_NETNS", routeString(rt))}
		}
	}
	if r.Mode == ModePTP {
		hostRoutes, err := host.Routes()
		if err != nil {
			return err
		}
		for _, ip := range r.IPs {
			dst := fullPrefix(ip.Addr.Addr())
			if !slices.ContainsFunc(hostRoutes, func(k kernel.Route) bool { return k.LinkIndex == hl.Index && k.Dst == dst }) {
				return &CheckError{What: fmt.Sprintf("host route %s dev %s missing", dst, r.HostVeth)}
			}
		}
	}
	return checkPrevResult(cfg, r, hl, cl, contAddrs, contRoutes)
}

// checkPrevResult checks what the previous result lists, which may include
// changes made by plugins chained after nsnet.
func checkPrevResult(cfg *Config, r *record, hl, cl kernel.Link, contAddrs []kernel.Addr, contRoutes []kernel.Route) error {
	prev := cfg.PrevResult
	if prev == nil {
		return &ConfigError{Field: "prevResult", Rule: "required for CHECK (the result of the ADD being checked)"}
	}
	contIdx := -1
	for i, itf := range prev.Interfaces {
		switch {
		case itf.Name == r.HostVeth && itf.Sandbox == "":
			if itf.Mac != "" && itf.Mac != hl.MAC.String() {
				return &CheckError{What: fmt.Sprintf("host interface %s has MAC %s, previous result says %s", r.HostVeth, hl.MAC, itf.Mac)}
			}
		case itf.Name == r.IfName && itf.Sandbox != "":
			contIdx = i
			if itf.Mac != "" && itf.Mac != cl.MAC.String() {
				return &CheckError{What: fmt.Sprintf("interface %s in CNI_NETNS has MAC %s, previous result says %s", r.IfName, cl.MAC, itf.Mac)}
			}
		}
	}
	if contIdx < 0 {
		return &CheckError{What: fmt.Sprintf("previous result lists no interface %s in a sandbox", r.IfName)}
	}
	for _, ip := range prev.IPs {
		if ip.Interface == nil || *ip.Interface != contIdx {
			continue
		}
		p, ok := prefixOf(ip.Address)
		if !ok {
			return &DecodeError{What: "prevResult", Err: fmt.Errorf("bad address %v", ip.Address)}
		}
		if !slices.ContainsFunc(contAddrs, func(a kernel.Addr) bool { return a.LinkIndex == cl.Index && a.Prefix == p }) {
			return &CheckError{What: fmt.Sprintf("address %s from the previous result missing on %s in CNI_NETNS", p, r.IfName)}
		}
	}
	for _, rt := range prev.Routes {
		dst, ok := prefixOf(rt.Dst)
		if !ok {
			return &DecodeError{What: "prevResult", Err: fmt.Errorf("bad route destination %v", rt.Dst)}
		}
		dst = dst.Masked()
		gw, _ := netip.AddrFromSlice(rt.GW)
		gw = gw.Unmap()
		if !gw.IsValid() {
			gw = gatewayFor(r, dst.Addr().Is6())
		}
		ok = slices.ContainsFunc(contRoutes, func(k kernel.Route) bool {
			kd := k.Dst
			if !kd.IsValid() && k.Gateway.IsValid() {
				kd = netip.PrefixFrom(zero(k.Gateway), 0)
			}
			return kd == dst && k.Gateway == gw
		})
		if !ok {
			return &CheckError{What: fmt.Sprintf("route %s from the previous result missing in CNI_NETNS", routeString(Route{Dst: dst, GW: gw}))}
		}
	}
	return nil
}

func routeString(r Route) string {
	if r.GW.IsValid() {
		return r.Dst.String() + " via " + r.GW.String()
	}
	return r.Dst.String()
}

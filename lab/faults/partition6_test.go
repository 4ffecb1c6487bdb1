package faults_test

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/nsnet/nsnet/kernel"
	"github.com/nsnet/nsnet/probe"
)

// v6Addrs are a node's eth0 addresses: its global IPv6 one, and its
// link-local one with the zone a peer on the same link dials it by.
func (e *env) v6Addrs(node string) (global, linkLocal netip.Addr) {
	e.t.Helper()
	h, err := kernel.Open(e.node(node))
	if err != nil {
		e.t.Fatal(err)
	}
	defer h.Close()
	l, err := h.LinkByName("eth0")
	if err != nil {
		e.t.Fatal(err)
	}
	as, err := h.Addrs()
	if err != nil {
		e.t.Fatal(err)
	}
	for _, a := range as {
		ip := a.Prefix.Addr()
		switch {
		case a.LinkIndex != l.Index || !ip.Is6():
		case ip.IsLinkLocalUnicast():
			linkLocal = ip
		case !ip.IsLoopback():
			global = ip
		}
	}
	if !global.IsValid() || !linkLocal.IsValid() {
		e.t.Fatalf("%s:eth0 has no global and link-local IPv6 address: %v", node, as)
	}
	return global, linkLocal
}

// dst is the address from reaches the node to by: over IPv6, globally or
// through the link-local address (zoned by from's eth0, the same index in
// every node of this lab: each has lo and eth0).
func (e *env) dst(from, to string, linkLocal bool) netip.Addr {
	e.t.Helper()
	g, ll := e.v6Addrs(to)
	if !linkLocal {
		return g
	}
	h, err := kernel.Open(e.node(from))
	if err != nil {
		e.t.Fatal(err)
	}
	defer h.Close()
	l, err := h.LinkByName("eth0")
	if err != nil {
		e.t.Fatal(err)
	}
	return ll.WithZone(fmt.Sprint(l.Index))
}

// reaches6 is reaches over IPv6 to addr: a round trip of proto.
func (e *env) reaches6(proto, from, to string, addr netip.Addr) bool {
	e.t.Helper()
	switch proto {
	case "icmp":
		p, err := probe.NewPinger(e.node(from), addr)
		if err != nil {
			e.t.Fatal(err)
		}
		defer p.Close()
		for i := range 2 {
			if _, err := p.Ping(i+1, 150*time.Millisecond); err == nil {
				return true
			}
		}
		return false
	case "tcp":
		ln, err := probe.Listen(e.node(to), "tcp", "[::]:7011")
		if err != nil {
			e.t.Fatal(err)
		}
		defer ln.Close()
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		c, err := probe.DialContext(ctx, e.node(from), nil, "tcp", netip.AddrPortFrom(addr, 7011).String())
		if err != nil {
			return false
		}
		c.Close()
		return true
	case "udp":
		pc, err := probe.ListenPacket(e.node(to), "udp", "[::]:7012")
		if err != nil {
			e.t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go probe.ServeUDPEcho(ctx, pc)
		defer pc.Close()
		return e.udpEcho(from, addr, 7012)
	}
	panic(proto)
}

// udpEcho sends up to three datagrams from a node to addr:port and
// reports whether one came back.
func (e *env) udpEcho(from string, addr netip.Addr, port uint16) bool {
	e.t.Helper()
	c, err := probe.DialContext(context.Background(), e.node(from), nil, "udp", netip.AddrPortFrom(addr, port).String())
	if err != nil {
		e.t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 8)
	for range 3 {
		c.SetDeadline(time.Now().Add(100 * time.Millisecond))
		if _, err := c.Write([]byte("x")); err != nil {
			continue
		}
		if _, err := c.Read(buf); err == nil {
			return true
		}
	}
	return false
}

// oneWay6 reports whether a UDP datagram from one node arrives at the other
// over IPv6 (addr: the receiver's, as from dials it).
func (e *env) oneWay6(from, to string, addr netip.Addr) bool {
	e.t.Helper()
	pc, err := probe.ListenPacket(e.node(to), "udp", "[::]:7013")
	if err != nil {
		e.t.Fatal(err)
	}
	defer pc.Close()
	c, err := probe.DialContext(context.Background(), e.node(from), nil, "udp", netip.AddrPortFrom(addr, 7013).String())
	if err != nil {
		e.t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 8)
	for range 3 {
		c.Write([]byte("x"))
		pc.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		if _, _, err := pc.ReadFrom(buf); err == nil {
			return true
		}
	}
	return false
}

// TestPartitionIPv6: the partition of TestPartitionSharedBridge holds for
// IPv6 too, global and link-local (fe80::/10, which a partition once let
// through): TCP, UDP and ICMP, both directions, on the shared bridge, with
// the nodes not named unaffected; one-way passes one way only, over both
// kinds of address; heal restores all.
func TestPartitionIPv6(t *testing.T) {
	e := up(t)
	type pair struct{ from, to string }
	check := func(what string, want map[pair]bool) {
		t.Helper()
		for p, ok := range want {
			for _, ll := range []bool{false, true} {
				addr := e.dst(p.from, p.to, ll)
				for _, proto := range []string{"icmp", "tcp", "udp"} {
					if got := e.reaches6(proto, p.from, p.to, addr); got != ok {
						t.Errorf("%s: %s %s -> %s (%s): reached %v, want %v", what, proto, p.from, p.to, addr, got, ok)
					}
				}
			}
		}
	}
	// Both kinds of address work before: the test can fail.
	check("before", map[pair]bool{{"h1", "h3"}: true, {"h3", "h2"}: true})
	e.must("partition", "flt", "h1,h2", "h3")
	check("partition", map[pair]bool{
		{"h1", "h2"}: true, {"h2", "h1"}: true,
		{"h1", "h3"}: false, {"h3", "h1"}: false, {"h2", "h3"}: false, {"h3", "h2"}: false,
		{"r", "h3"}: true, {"h1", "r"}: true, // r is not named
	})
	e.must("partition", "flt", "h1", "h3", "--oneway")
	for _, ll := range []bool{false, true} {
		to1, to3 := e.dst("h3", "h1", ll), e.dst("h1", "h3", ll)
		if !e.oneWay6("h3", "h1", to1) {
			t.Errorf("one-way h1 -> h3: a datagram h3 -> h1 (%s) did not arrive", to1)
		}
		if e.oneWay6("h1", "h3", to3) {
			t.Errorf("one-way h1 -> h3: a datagram h1 -> h3 (%s) arrived", to3)
		}
		for _, proto := range []string{"icmp", "tcp", "udp"} {
			if e.reaches6(proto, "h1", "h3", to3) || e.reaches6(proto, "h3", "h1", to1) {
				t.Errorf("one-way: %s round trip between h1 and h3 (link-local %v) passed", proto, ll)
			}
		}
	}
	check("one-way, the others", map[pair]bool{{"h2", "h3"}: true, {"h3", "h2"}: true, {"h1", "h2"}: true})
	e.must("heal", "flt")
	check("healed", map[pair]bool{{"h1", "h3"}: true, {"h3", "h1"}: true, {"h2", "h3"}: true, {"h3", "h2"}: true})
}

package nsnettest

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/nsnet/nsnet/netns"
	"github.com/nsnet/nsnet/probe"
)

// target resolves a node name (its first IPv4 address, else IPv6) or an
// address, with the node that holds it, if any.
func (l *Lab) target(to string) (netip.Addr, *Node, error) {
	if a, err := netip.ParseAddr(to); err == nil {
		a = a.Unmap()
		if n := l.spec.NodeWith(a); n != nil {
			return a, &Node{Name: n.Name, lab: l, spec: n}, nil
		}
		return a, nil, nil
	}
	n := l.spec.Node(to)
	if n == nil {
		return netip.Addr{}, nil, fmt.Errorf("%q is neither a node of lab %s nor an IP address", to, l.spec.Name)
	}
	a := n.FirstAddr()
	if !a.IsValid() {
		return a, nil, fmt.Errorf("node %s has no address", to)
	}
	return a, &Node{Name: to, lab: l, spec: n}, nil
}

// Series sends echo requests from a node to another node or an address
// (opt.Count of them, opt.Interval apart, all in flight at once) and returns
// loss, duplicates, reordering and round-trip statistics, as nsnet perf
// --icmp prints them.
func (l *Lab) Series(ctx context.Context, from, to string, opt probe.SeriesOptions) (probe.Stats, error) {
	addr, _, err := l.target(to)
	if err != nil {
		return probe.Stats{}, err
	}
	var st probe.Stats
	err = l.Node(from).with(func(ns *netns.NS) error {
		p, err := probe.NewPinger(ns, addr)
		if err != nil {
			return err
		}
		defer p.Close()
		st = p.Series(ctx, opt)
		return nil
	})
	return st, err
}

// Throughput runs TCP from a node to another node (or an address of one)
// for d, with a receiver nsnet runs in the target, as nsnet perf does.
func (l *Lab) Throughput(ctx context.Context, from, to string, d time.Duration) (probe.Throughput, error) {
	addr, node, err := l.target(to)
	if err != nil {
		return probe.Throughput{}, err
	}
	if node == nil {
		return probe.Throughput{}, fmt.Errorf("%s is not an address of a node of lab %s: the receiver runs in a node", to, l.spec.Name)
	}
	var t probe.Throughput
	err = l.Node(from).with(func(src *netns.NS) error {
		return node.with(func(dst *netns.NS) error {
			var err error
			t, err = probe.MeasureThroughput(ctx, src, dst, addr, probe.ThroughputOptions{Duration: d})
			return err
		})
	})
	return t, err
}

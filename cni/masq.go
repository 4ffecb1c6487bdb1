package cni

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/nsnet/nsnet/ipalloc"
	"github.com/nsnet/nsnet/netns"
)

// Outbound masquerade, through nftables' netlink interface. Each network
// has its own table, so networks never touch each other's rules and GC can
// drop a network's masquerade in one operation:
//
//	table inet nsnet-NETWORK {
//	  set src4   { type ipv4_addr }                 # container addresses
//	  set src6   { type ipv6_addr }
//	  set local4 { type ipv4_addr; flags interval } # never masqueraded:
//	  set local6 { type ipv6_addr; flags interval } # subnets, multicast
//	  chain postrouting {
//	    type nat hook postrouting priority srcnat
//	    meta nfproto ipv4 ip saddr @src4 ip daddr != @local4 masquerade
//	    meta nfproto ipv6 ip6 saddr @src6 ip6 daddr != @local6 masquerade
//	  }
//	}
//
// ADD and DEL only add and remove set elements; the rules are rewritten in
// the same atomic transaction as ADD's element, so they are never missing or
// doubled, whatever runs concurrently.

// MasqError reports a failed nftables operation.
type MasqError struct {
	Op  string
	Err error
}

func (e *MasqError) Error() string { return fmt.Sprintf("masquerade: %s: %v", e.Op, e.Err) }
func (e *MasqError) Unwrap() error { return e.Err }

func masqTable(network string) *nftables.Table {
	return &nftables.Table{Name: "nsnet-" + network, Family: nftables.TableFamilyINet}
}

type masqSets struct {
	src4, src6, local4, local6 *nftables.Set
}

func newMasqSets(t *nftables.Table) masqSets {
	return masqSets{
		src4:   &nftables.Set{Table: t, Name: "src4", KeyType: nftables.TypeIPAddr},
		src6:   &nftables.Set{Table: t, Name: "src6", KeyType: nftables.TypeIP6Addr},
		local4: &nftables.Set{Table: t, Name: "local4", KeyType: nftables.TypeIPAddr, Interval: true},
		local6: &nftables.Set{Table: t, Name: "local6", KeyType: nftables.TypeIP6Addr, Interval: true},
	}
}

// nftConn opens a netfilter netlink socket in ns. The socket is created on
// a locked thread inside ns (no goroutine is started there) and stays bound
// to ns afterwards.
func nftConn(ns *netns.NS) (*nftables.Conn, error) {
	var c *nftables.Conn
	err := ns.Do(func() error {
		var err error
		c, err = nftables.New(nftables.AsLasting())
		return err
	})
	if err != nil {
		return nil, &MasqError{Op: "open nftables", Err: err}
	}
	return c, nil
}

// addMasq masquerades traffic from the addresses to anywhere outside their
// subnets.
func addMasq(ns *netns.NS, network string, ips []recordIP) error {
	c, err := nftConn(ns)
	if err != nil {
		return err
	}
	defer c.CloseLasting()
	t := c.AddTable(masqTable(network))
	s := newMasqSets(t)
	for _, set := range []*nftables.Set{s.src4, s.src6, s.local4, s.local6} {
		if err := c.AddSet(set, nil); err != nil {
			return &MasqError{Op: "add set " + set.Name, Err: err}
		}
	}
	ch := c.AddChain(&nftables.Chain{
		Name:     "postrouting",
		Table:    t,
		Type:     nftables.ChainTypeNAT,
		Hooknum:  nftables.ChainHookPostrouting,
		Priority: nftables.ChainPriorityNATSource,
	})
	c.FlushChain(ch)
	c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: masqRule(unix.NFPROTO_IPV4, 12, 16, 4, s.src4, s.local4)})
	c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: masqRule(unix.NFPROTO_IPV6, 8, 24, 16, s.src6, s.local6)})
	for _, ip := range ips {
		// Multicast stays link-local to the network, like its subnet.
		src, local, mc := s.src4, s.local4, netip.MustParsePrefix("224.0.0.0/4")
		if ip.Addr.Addr().Is6() {
			src, local, mc = s.src6, s.local6, netip.MustParsePrefix("ff00::/8")
		}
		if err := c.SetAddElements(src, []nftables.SetElement{{Key: ip.Addr.Addr().AsSlice()}}); err != nil {
			return &MasqError{Op: "add element", Err: err}
		}
		els := append(interval(ip.Subnet), interval(mc)...)
		if err := c.SetAddElements(local, els); err != nil {
			return &MasqError{Op: "add element", Err: err}
		}
	}
	if err := c.Flush(); err != nil {
		return &MasqError{Op: "add " + masqTable(network).Name, Err: err}
	}
	return nil
}

// masqRule: meta nfproto P, saddr in src, daddr not in local, masquerade.
func masqRule(proto byte, saddrOff, daddrOff, alen uint32, src, local *nftables.Set) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: saddrOff, Len: alen},
		&expr.Lookup{SourceRegister: 1, SetName: src.Name, SetID: src.ID},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: daddrOff, Len: alen},
		&expr.Lookup{SourceRegister: 1, SetName: local.Name, SetID: local.ID, Invert: true},
		&expr.Masq{},
	}
}

// interval is p as the start and end elements of an interval set.
func interval(p netip.Prefix) []nftables.SetElement {
	p = p.Masked()
	els := []nftables.SetElement{{Key: p.Addr().AsSlice()}}
	if end := ipalloc.LastAddr(p).Next(); end.IsValid() {
		els = append(els, nftables.SetElement{Key: end.AsSlice(), IntervalEnd: true})
	}
	return els
}

// delMasq stops masquerading the addresses. Elements or a table already gone
// are fine.
func delMasq(ns *netns.NS, network string, ips []recordIP) error {
	if len(ips) == 0 {
		return nil
	}
	c, err := nftConn(ns)
	if err != nil {
		return err
	}
	defer c.CloseLasting()
	s := newMasqSets(masqTable(network))
	// One transaction per element: a missing element fails the whole
	// transaction, and must not keep the others from going.
	for _, ip := range ips {
		set := s.src4
		if ip.Addr.Addr().Is6() {
			set = s.src6
		}
		if err := c.SetDeleteElements(set, []nftables.SetElement{{Key: ip.Addr.Addr().AsSlice()}}); err != nil {
			return &MasqError{Op: "delete element", Err: err}
		}
		if err := c.Flush(); err != nil && !errors.Is(err, unix.ENOENT) {
			return &MasqError{Op: "delete " + ip.Addr.Addr().String(), Err: err}
		}
	}
	return nil
}

// dropMasq deletes the network's table.
func dropMasq(ns *netns.NS, network string) error {
	c, err := nftConn(ns)
	if err != nil {
		return err
	}
	defer c.CloseLasting()
	c.DelTable(masqTable(network))
	if err := c.Flush(); err != nil && !errors.Is(err, unix.ENOENT) {
		return &MasqError{Op: "delete table " + masqTable(network).Name, Err: err}
	}
	return nil
}

// checkMasq verifies that the addresses are masqueraded.
func checkMasq(ns *netns.NS, network string, ips []recordIP) error {
	c, err := nftConn(ns)
	if err != nil {
		return err
	}
	defer c.CloseLasting()
	t := masqTable(network)
	ch, err := c.ListChain(t, "postrouting")
	if err != nil {
		return &CheckError{What: fmt.Sprintf("masquerade chain %s/postrouting: %v", t.Name, err)}
	}
	rules, err := c.GetRules(t, ch)
	if err != nil || len(rules) != 2 {
		return &CheckError{What: fmt.Sprintf("masquerade rules of %s: %d rules (%v), want 2", t.Name, len(rules), err)}
	}
	s := newMasqSets(t)
	for _, ip := range ips {
		set := s.src4
		if ip.Addr.Addr().Is6() {
			set = s.src6
		}
		els, err := c.GetSetElements(set)
		if err != nil {
			return &CheckError{What: fmt.Sprintf("masquerade set %s/%s: %v", t.Name, set.Name, err)}
		}
		want := ip.Addr.Addr().AsSlice()
		if !slices.ContainsFunc(els, func(e nftables.SetElement) bool { return slices.Equal(e.Key, want) }) {
			return &CheckError{What: fmt.Sprintf("%s is not masqueraded (missing from %s/%s)", ip.Addr.Addr(), t.Name, set.Name)}
		}
	}
	return nil
}

// masqAvailable checks that nftables answers in ns.
func masqAvailable(ns *netns.NS) error {
	c, err := nftConn(ns)
	if err != nil {
		return err
	}
	defer c.CloseLasting()
	if _, err := c.ListTablesOfFamily(nftables.TableFamilyINet); err != nil {
		return &MasqError{Op: "list tables", Err: err}
	}
	return nil
}

package backend

import (
	"errors"
	"io/fs"

	"github.com/nsnet/nsnet/kernel"
)

// Apply makes p on l: the shaper, then the end's chains, then the far end's,
// then the link state. Where p uses the delayer, it must already listen on
// p.Queue (until it does, the queue rule would drop everything).
func Apply(lab string, p *Plan, l Link) error { return (*Conns)(nil).Apply(lab, p, l) }

// Apply is Apply through c's connections.
func (c *Conns) Apply(lab string, p *Plan, l Link) error {
	table := Table(lab)
	local, far := Chains(l)
	tc, done, err := c.TC(l.NS)
	if err != nil {
		return err
	}
	defer done()
	if p.Shaper.Netem != nil || p.Shaper.TBF != nil {
		if err := tc.SetShaper(l.Ifindex, l.Dev, p.Shaper); err != nil {
			return err
		}
	} else if err := tc.DeleteShaper(l.Ifindex, l.Dev); err != nil {
		return err
	}
	if len(p.Local) > 0 || !l.Host {
		if err := c.setChains(l, false, table, p.Local, local); err != nil {
			return err
		}
	}
	if len(p.Far) > 0 || l.PeerNS != nil && !l.PeerHost {
		if err := c.setChains(l, true, table, p.Far, far); err != nil {
			return err
		}
	}
	if !p.Down && !l.WasDown {
		return nil
	}
	return c.setDown(l, p.Down)
}

// setChains replaces the end's (or the far end's) fault chains with want;
// chains of all that a plan could make there and want lacks are deleted.
func (c *Conns) setChains(l Link, atFar bool, table string, want, all []kernel.FaultChain) error {
	ns, host := l.NS, l.Host
	if atFar {
		ns, host = l.PeerNS, l.PeerHost
	}
	if ns == nil || host {
		if len(want) > 0 {
			return &kernel.OpError{Op: "set fault rules", Name: l.End.String(), Err: errors.New("nsnet puts no nftables rules in the host's namespace")}
		}
		return nil
	}
	n, done, err := c.NFT(ns)
	if err != nil {
		return err
	}
	defer done()
	var drop []kernel.FaultChain
	for _, a := range all {
		keep := false
		for _, w := range want {
			keep = keep || w.Family == a.Family && w.Name == a.Name
		}
		if !keep {
			drop = append(drop, a)
		}
	}
	return n.SetChains(table, want, drop...)
}

func (c *Conns) setDown(l Link, down bool) error {
	h, done, err := c.Handle(l.NS)
	if err != nil {
		return err
	}
	defer done()
	cur, err := h.LinkByName(l.Dev)
	if err != nil {
		return err
	}
	switch {
	case down && cur.Up():
		return h.SetDownIndex(l.Ifindex)
	case !down && !cur.Up():
		return h.SetUpIndex(l.Ifindex)
	}
	return nil
}

// Clear removes every fault object from l: nsnet's qdisc, the end's and the
// far end's chains; with l.WasDown, it sets the end up again. Clearing what
// is not there is not an error.
func Clear(lab string, l Link) error { return (*Conns)(nil).Clear(lab, l) }

// Clear is Clear through c's connections.
func (c *Conns) Clear(lab string, l Link) error {
	return c.Apply(lab, &Plan{End: l.End}, l)
}

// Counts are what the kernel counted for one end's faults.
type Counts struct {
	Shaper     []string `json:"qdiscs,omitempty"`
	Sent       uint64   `json:"sent"`        // by nsnet's root qdisc
	QdiscDrops uint64   `json:"qdisc_drops"` // netem's losses, a full queue
	Dropped    uint64   `json:"dropped"`     // by the far end's rules
	Duplicated uint64   `json:"duplicated"`  // copies made at the egress
	Queued     uint64   `json:"queued"`      // handed to the delayer
}

// Read reads the counters of l's fault objects.
func Read(lab string, l Link) (Counts, error) { return (*Conns)(nil).Read(lab, l) }

// Read is Read through cs's connections.
func (cs *Conns) Read(lab string, l Link) (Counts, error) {
	var c Counts
	table := Table(lab)
	tc, done, err := cs.TC(l.NS)
	if err != nil {
		return c, err
	}
	st, err := tc.Shaper(l.Ifindex)
	done()
	if err != nil {
		return c, err
	}
	c.Shaper, c.Sent, c.QdiscDrops = st.Kinds, st.Packets, st.Drops
	local, far := Chains(l)
	sum := func(v []uint64) (s uint64) {
		for _, x := range v {
			s += x
		}
		return
	}
	if !l.Host {
		n, done, err := cs.NFT(l.NS)
		if err != nil {
			return c, err
		}
		for _, ch := range local {
			v, err := n.Counters(table, ch)
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				done()
				return c, err
			}
			if ch.Family == kernel.Netdev {
				c.Duplicated += sum(v)
			} else {
				c.Queued += sum(v)
			}
		}
		done()
	}
	if l.PeerNS != nil && !l.PeerHost {
		n, done, err := cs.NFT(l.PeerNS)
		if err != nil {
			return c, err
		}
		defer done()
		for _, ch := range far {
			v, err := n.Counters(table, ch)
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return c, err
			}
			c.Dropped += sum(v)
		}
	}
	return c, nil
}

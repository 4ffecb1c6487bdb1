package backend

import (
	"errors"
	"io/fs"

	"github.com/nsnet/nsnet/kernel"
)

// Apply makes p on l: the shaper, then the end's chains, then the far end's,
// then the link state. Where p uses the delayer, it must already listen on
// p.Queue (until it does, the queue rule would drop everything).
func Apply(lab string, p *Plan, l Link) error {
	table := Table(lab)
	local, far := Chains(l)
	tc, err := kernel.OpenTC(l.NS)
	if err != nil {
		return err
	}
	defer tc.Close()
	if p.Shaper.Netem != nil || p.Shaper.TBF != nil {
		if err := tc.SetShaper(l.Ifindex, l.Dev, p.Shaper); err != nil {
			return err
		}
	} else if err := tc.DeleteShaper(l.Ifindex, l.Dev); err != nil {
		return err
	}
	if len(p.Local) > 0 || !l.Host {
		if err := setChains(l, false, table, p.Local, local); err != nil {
			return err
		}
	}
	if len(p.Far) > 0 || l.PeerNS != nil && !l.PeerHost {
		if err := setChains(l, true, table, p.Far, far); err != nil {
			return err
		}
	}
	if !p.Down && !l.WasDown {
		return nil
	}
	return setDown(l, p.Down)
}

// setChains replaces the end's (or the far end's) fault chains with want;
// chains of all that a plan could make there and want lacks are deleted.
func setChains(l Link, atFar bool, table string, want, all []kernel.FaultChain) error {
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
	n, err := kernel.OpenNFT(ns)
	if err != nil {
		return err
	}
	defer n.Close()
	var drop []kernel.FaultChain
	for _, c := range all {
		keep := false
		for _, w := range want {
			keep = keep || w.Family == c.Family && w.Name == c.Name
		}
		if !keep {
			drop = append(drop, c)
		}
	}
	return n.SetChains(table, want, drop...)
}

func setDown(l Link, down bool) error {
	h, err := kernel.Open(l.NS)
	if err != nil {
		return err
	}
	defer h.Close()
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
func Clear(lab string, l Link) error {
	return Apply(lab, &Plan{End: l.End}, l)
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
func Read(lab string, l Link) (Counts, error) {
	var c Counts
	table := Table(lab)
	tc, err := kernel.OpenTC(l.NS)
	if err != nil {
		return c, err
	}
	st, err := tc.Shaper(l.Ifindex)
	tc.Close()
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
		n, err := kernel.OpenNFT(l.NS)
		if err != nil {
			return c, err
		}
		defer n.Close()
		for _, ch := range local {
			v, err := n.Counters(table, ch)
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return c, err
			}
			if ch.Family == kernel.Netdev {
				c.Duplicated += sum(v)
			} else {
				c.Queued += sum(v)
			}
		}
	}
	if l.PeerNS != nil && !l.PeerHost {
		n, err := kernel.OpenNFT(l.PeerNS)
		if err != nil {
			return c, err
		}
		defer n.Close()
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

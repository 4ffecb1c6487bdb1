package backend

import (
	"github.com/nsnet/nsnet/kernel"
)

// Drift names the first way the kernel differs from p on l, or "" when p
// is in force as made: nsnet's qdiscs and their values, the end's and the
// far end's chains and their rules, and the end's link state. up uses it to
// repair what was removed or changed by hand, and to change nothing
// otherwise. (The delayer's share is the delayer's: its config is compared
// where it is kept.)
func Drift(lab string, p *Plan, l Link) (string, error) { return (*Conns)(nil).Drift(lab, p, l) }

// Drift is Drift through c's connections.
func (c *Conns) Drift(lab string, p *Plan, l Link) (string, error) {
	t, done, err := c.TC(l.NS)
	if err != nil {
		return "", err
	}
	d, err := t.ShaperDrift(l.Ifindex, p.Shaper)
	done()
	if d != "" || err != nil {
		return d, err
	}
	table := Table(lab)
	for _, side := range []struct {
		on     bool
		chains []kernel.FaultChain
		l      Link
		far    bool
	}{{len(p.Local) > 0, p.Local, l, false}, {len(p.Far) > 0, p.Far, l, true}} {
		if !side.on {
			continue
		}
		ns := l.NS
		if side.far {
			ns = l.PeerNS
		}
		n, done, err := c.NFT(ns)
		if err != nil {
			return "", err
		}
		d, err := n.ChainsDrift(table, side.chains)
		done()
		if d != "" || err != nil {
			return d, err
		}
	}
	h, done, err := c.Handle(l.NS)
	if err != nil {
		return "", err
	}
	defer done()
	cur, err := h.LinkByName(l.Dev)
	if err != nil {
		return "", err
	}
	if p.Down && cur.Up() {
		return "the link is up", nil
	}
	return "", nil
}

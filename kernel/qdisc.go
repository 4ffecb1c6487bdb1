package kernel

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"

	tc "github.com/florianl/go-tc"
	"github.com/florianl/go-tc/core"
	"golang.org/x/sys/unix"

	"github.com/nsnet/nsnet/netns"
)

// FaultQdiscMajor is the major handle of the root qdisc nsnet puts on a link
// to shape it ("6e73:", "ns"): nsnet replaces or deletes a root qdisc only
// when it carries this handle, so a qdisc someone else put there is never
// touched.
const FaultQdiscMajor = 0x6e73

// faultChildMajor is the handle of a child qdisc under nsnet's root (a tbf
// under netem).
const faultChildMajor = 0x6e74

// TC is a traffic-control (rtnetlink qdisc) connection bound to one
// namespace when it is opened.
type TC struct {
	c *tc.Tc
}

// OpenTC binds a traffic-control connection to ns.
func OpenTC(ns *netns.NS) (*TC, error) {
	c, err := tc.Open(&tc.Config{NetNS: ns.Fd()})
	if err != nil {
		return nil, &OpError{Op: "open tc", Name: ns.String(), Err: classify(err)}
	}
	return &TC{c: c}, nil
}

// Close releases the connection.
func (t *TC) Close() error { return t.c.Close() }

// Shaper is what nsnet puts at the root of a link: a netem, a tbf, or a
// netem with a tbf under it (delay first, then the rate, as on a slow wire
// far away). At least one is set.
type Shaper struct {
	Netem *Netem
	TBF   *TBF
}

// Lines are the tc commands that make s on dev.
func (s Shaper) Lines(dev string) []string {
	root := fmt.Sprintf("tc qdisc replace dev %s root handle %x:", dev, FaultQdiscMajor)
	switch {
	case s.Netem != nil && s.TBF != nil:
		return []string{root + " " + s.Netem.args(),
			fmt.Sprintf("tc qdisc replace dev %s parent %x:1 handle %x: %s", dev, FaultQdiscMajor, faultChildMajor, s.TBF.args())}
	case s.Netem != nil:
		return []string{root + " " + s.Netem.args()}
	case s.TBF != nil:
		return []string{root + " " + s.TBF.args()}
	}
	return nil
}

// SetShaper replaces the root qdisc of the link ifindex with s, unless the
// root is a qdisc nsnet did not put there (fs.ErrExist).
func (t *TC) SetShaper(ifindex int, dev string, s Shaper) error {
	cur, err := t.root(ifindex)
	if err != nil {
		return &OpError{Op: "read qdisc", Name: dev, Err: err}
	}
	if cur != nil && !defaultRoot(cur) && cur.Handle != core.BuildHandle(FaultQdiscMajor, 0) {
		return &OpError{Op: "set qdisc", Name: dev, Err: kindError{fmt.Errorf("root qdisc %s %x: is not nsnet's", cur.Kind, cur.Handle>>16), fs.ErrExist}}
	}
	rootAttr, childAttr := tc.Attribute{}, (*tc.Attribute)(nil)
	switch {
	case s.Netem != nil:
		rootAttr = tc.Attribute{Kind: "netem", Netem: s.Netem.attr()}
		if s.TBF != nil {
			childAttr = &tc.Attribute{Kind: "tbf", Tbf: s.TBF.attr()}
		}
	case s.TBF != nil:
		rootAttr = tc.Attribute{Kind: "tbf", Tbf: s.TBF.attr()}
	default:
		return t.DeleteShaper(ifindex, dev)
	}
	if cur != nil && cur.Kind != rootAttr.Kind && cur.Handle == core.BuildHandle(FaultQdiscMajor, 0) {
		// A root of another kind cannot be changed into this one.
		if err := t.DeleteShaper(ifindex, dev); err != nil {
			return err
		}
	}
	msg := tc.Msg{Family: unix.AF_UNSPEC, Ifindex: uint32(ifindex), Handle: core.BuildHandle(FaultQdiscMajor, 0), Parent: tc.HandleRoot}
	if err := t.c.Qdisc().Replace(&tc.Object{Msg: msg, Attribute: rootAttr}); err != nil {
		return &OpError{Op: "set qdisc " + rootAttr.Kind, Name: dev, Err: classify(err)}
	}
	if childAttr != nil {
		msg := tc.Msg{Family: unix.AF_UNSPEC, Ifindex: uint32(ifindex), Handle: core.BuildHandle(faultChildMajor, 0), Parent: core.BuildHandle(FaultQdiscMajor, 1)}
		if err := t.c.Qdisc().Replace(&tc.Object{Msg: msg, Attribute: *childAttr}); err != nil {
			return &OpError{Op: "set qdisc tbf", Name: dev, Err: classify(err)}
		}
	}
	return nil
}

// DeleteShaper removes nsnet's root qdisc from the link, if it has one; any
// other root qdisc stays. Deleting what is not there is not an error.
func (t *TC) DeleteShaper(ifindex int, dev string) error {
	cur, err := t.root(ifindex)
	if err != nil {
		return &OpError{Op: "read qdisc", Name: dev, Err: err}
	}
	if cur == nil || cur.Handle != core.BuildHandle(FaultQdiscMajor, 0) {
		return nil
	}
	msg := tc.Msg{Family: unix.AF_UNSPEC, Ifindex: uint32(ifindex), Handle: cur.Handle, Parent: tc.HandleRoot}
	err = t.c.Qdisc().Delete(&tc.Object{Msg: msg, Attribute: tc.Attribute{Kind: cur.Kind, Tbf: cur.Tbf, Netem: cur.Netem}})
	if err != nil && !errors.Is(classify(err), fs.ErrNotExist) {
		return &OpError{Op: "delete qdisc", Name: dev, Err: classify(err)}
	}
	return nil
}

// ShaperState is nsnet's qdiscs on one link as the kernel reports them.
type ShaperState struct {
	Kinds   []string // root first: "netem", "tbf"
	Packets uint64   // sent by the root
	Drops   uint64   // dropped by any of them (netem's loss, a full queue)
}

// Shaper reports nsnet's qdiscs on the link; zero when there are none.
func (t *TC) Shaper(ifindex int) (ShaperState, error) {
	var st ShaperState
	all, err := t.qdiscs()
	if err != nil {
		return st, err
	}
	for _, q := range all {
		if int(q.Ifindex) != ifindex || q.Handle>>16 != FaultQdiscMajor && q.Handle>>16 != faultChildMajor {
			continue
		}
		if q.Handle>>16 == FaultQdiscMajor {
			st.Kinds = append([]string{q.Kind}, st.Kinds...)
		} else {
			st.Kinds = append(st.Kinds, q.Kind)
		}
		// TCA_STATS (struct tc_stats), which the library decodes
		// right; its reading of TCA_STATS2 is misaligned.
		if q.Stats != nil {
			if q.Handle>>16 == FaultQdiscMajor {
				st.Packets = uint64(q.Stats.Packets)
			}
			st.Drops += uint64(q.Stats.Drops)
		}
	}
	return st, nil
}

func (t *TC) qdiscs() ([]tc.Object, error) {
	for i := 0; ; i++ {
		all, err := t.c.Qdisc().Get()
		if err == nil {
			return all, nil
		}
		if !errors.Is(err, unix.EINTR) && !strings.Contains(err.Error(), "dump interrupted") || i == maxDumpRetries {
			return nil, classify(err)
		}
	}
}

func (t *TC) root(ifindex int) (*tc.Object, error) {
	all, err := t.qdiscs()
	if err != nil {
		return nil, err
	}
	for i := range all {
		if int(all[i].Ifindex) == ifindex && all[i].Parent == tc.HandleRoot {
			return &all[i], nil
		}
	}
	return nil, nil
}

// defaultRoot reports whether q is a root qdisc the kernel put there by
// itself (noqueue on veth, pfifo_fast or mq elsewhere), which a shaper may
// replace.
func defaultRoot(q *tc.Object) bool {
	return q.Handle == 0 || q.Kind == "noqueue"
}

// Queueing disciplines. A link's root qdisc is what `ip link` prints after
// "qdisc"; the link dump carries it (IFLA_QDISC), which the listing library
// does not read.

// Qdiscs reports each link's root queueing discipline by index, as `ip link`
// prints it ("noqueue", "noop", "htb", ...).
func (h *Handle) Qdiscs() (map[int]string, error) {
	var links []LinkInfo
	err := h.batch(func(b *Batch) error {
		var err error
		links, err = b.Links()
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make(map[int]string, len(links))
	for _, li := range links {
		if li.Qdisc != "" {
			out[li.Index] = li.Qdisc
		}
	}
	return out, nil
}

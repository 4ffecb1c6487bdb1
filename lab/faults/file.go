package faults

import (
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"time"

	"github.com/nsnet/nsnet/fault"
	"github.com/nsnet/nsnet/fault/backend"
	"github.com/nsnet/nsnet/kernel"
	"github.com/nsnet/nsnet/lab"
	"github.com/nsnet/nsnet/lab/ledger"
	"github.com/nsnet/nsnet/netns"
)

// The lab file's faults (faults: on a link or an end) are recorded in the
// ledger like runtime ones, marked File, and made by the same backends.
// SyncFile, which up runs after the lab's own steps, makes the ledger and
// the kernel agree with the file:
//
//   - a fault the file gives and the kernel lacks is made; one whose
//     qdisc, rule, value or delayer was removed or changed by hand is made
//     again; one in force as the file says is not touched (no change);
//   - a fault of the file's that the file no longer has is cleared;
//   - a runtime fault (nsnet fault set) is left alone, unless the file
//     gives a fault for the same end: then the file's replaces it, and a
//     note says so. Partitions are never the file's and stay.

// FileResult is what SyncFile did, or with DryRun would do.
type FileResult struct {
	// Lines are the changes as the commands a person would type: tc, nft
	// and ip lines for a fault made, nsnet fault clear for one removed.
	Lines []string
	// Made and Cleared count the ends changed.
	Made, Cleared int
	// Notes name runtime faults the file's replaced and what was repaired.
	Notes []string
}

// SyncOptions tune SyncFile.
type SyncOptions struct {
	// DryRun computes the changes without making them (nsnet plan).
	DryRun bool
	// Ledger, when set, is the lab's ledger as the up just before left it
	// (lab.Result.Ledger): it tells whether there is anything to do
	// instead of a read of the ledger's file, which at 10,000 nodes
	// would hold a second copy of it beside the first.
	Ledger *ledger.Ledger
}

type fileItem struct {
	end    fault.End
	spec   fault.Spec
	link   backend.Link
	plan   *backend.Plan
	reason string
}

// SyncFile brings the lab's file faults in force, as described above, for
// the lab l, which is up. Every fault is planned before anything changes:
// one no backend of this kernel can make is refused, naming the end and the
// field, and nothing changes.
func SyncFile(opt lab.Options, l *lab.Lab, so SyncOptions) (*FileResult, error) {
	res := &FileResult{}
	want := l.Faulted()
	// Read without the lock first: a plan writes nothing, and a lab
	// without faults in the file or the ledger needs nothing more.
	led, err := so.Ledger, error(nil)
	if led == nil {
		led, err = ledger.Store{Dir: opt.StateDir}.Read(l.Name)
	}
	switch {
	case errors.Is(err, fs.ErrNotExist) && so.DryRun:
		// Not up: every fault of the file would be made.
		return res, fileLines(l, want, res)
	case errors.Is(err, fs.ErrNotExist) && len(want) == 0:
		// Taken down since (a down raced the up): nothing of the file's
		// to make.
		return res, nil
	case err != nil:
		return nil, err
	case len(want) == 0 && !slices.ContainsFunc(led.Faults, func(f ledger.Fault) bool { return f.File }):
		return res, nil
	}
	s, err := begin(opt, l.Name)
	if err != nil {
		return nil, err
	}
	err = s.syncFile(l, want, so, res)
	if so.DryRun {
		s.close()
		return res, err
	}
	return res, s.done(err)
}

func (s *session) syncFile(l *lab.Lab, want []*lab.Interface, so SyncOptions, res *FileResult) error {
	fromFile := false
	for _, f := range s.led.Faults {
		fromFile = fromFile || f.File
	}
	if len(want) == 0 && !fromFile {
		return nil
	}
	var items []fileItem
	wanted := map[fault.End]bool{}
	if len(want) > 0 {
		caps, err := s.caps()
		if err != nil {
			return err
		}
		items = make([]fileItem, len(want))
		if err := each(len(want), func(k int) error {
			i := want[k]
			end := fault.End{Node: i.Node.Name, Iface: i.Name}
			lk, err := s.link(end)
			if err != nil {
				return err
			}
			p, err := backend.For(i.Faults(), lk, caps)
			if err != nil {
				return fmt.Errorf("%s: faults of %s: %w", l.Name, end, err)
			}
			items[k] = fileItem{end: end, spec: i.Faults(), link: lk, plan: p}
			return nil
		}); err != nil {
			return err
		}
		for _, it := range items {
			wanted[it.end] = true
		}
	}
	var stale []backend.Link
	for _, f := range s.led.Faults {
		end := fault.End{Node: f.Node, Iface: f.Iface}
		if !f.File || wanted[end] {
			continue
		}
		res.Lines = append(res.Lines, fmt.Sprintf("nsnet fault clear %s %s", l.Name, end))
		res.Cleared++
		if so.DryRun {
			continue
		}
		lk, err := s.link(end)
		if err != nil {
			return err
		}
		stale = append(stale, lk)
	}
	// The drift of ends in force as the file says, checked in parallel.
	drift := make([]string, len(items))
	if err := each(len(items), func(k int) error {
		it := items[k]
		if cur := s.fault(it.end); cur != nil && cur.File && cur.Spec == it.spec.String() {
			var err error
			drift[k], err = s.conns.Drift(l.Name, it.plan, it.link)
			return err
		}
		return nil
	}); err != nil {
		return err
	}
	var todo []fileItem
	for k, it := range items {
		cur := s.fault(it.end)
		switch {
		case cur == nil:
			it.reason = "new"
		case !cur.File:
			res.Notes = append(res.Notes, fmt.Sprintf("%s: the file's faults (%s) replace the runtime fault %s", it.end, it.spec, cur.Spec))
			it.reason = "replaces a runtime fault"
		case cur.Spec != it.spec.String():
			it.reason = "changed in the file"
		default:
			d := drift[k]
			if d == "" {
				continue
			}
			res.Notes = append(res.Notes, fmt.Sprintf("%s: repaired the file's faults (%s)", it.end, d))
			it.reason = d
		}
		todo = append(todo, it)
		res.Lines = append(res.Lines, it.plan.Lines(l.Name, it.link)...)
		res.Made++
	}
	if so.DryRun {
		return nil
	}
	if len(stale) > 0 {
		if err := s.clear(stale); err != nil {
			return err
		}
	}
	// Recorded first, all of them: a crash from here on leaves entries
	// that down acts on, never an object nobody knows of.
	now := time.Now().UTC()
	for _, it := range todo {
		f := ledger.Fault{Node: it.end.Node, Iface: it.end.Iface, Spec: it.spec.String(), Backend: it.plan.Backend(),
			Down: it.spec.Down || it.link.WasDown, Set: now, File: true}
		if it.plan.UsesDelayer() {
			f.Delayer, f.Queue = it.plan.DelayerSpec(), it.plan.Queue
		}
		s.putFault(f)
		s.stopReverters(it.end)
	}
	if len(todo) > 0 {
		if err := s.store.Write(s.led); err != nil {
			return err
		}
	}
	// Also restarts a delayer that died or was killed by hand.
	if err := s.syncDelayer(); err != nil {
		return err
	}
	if err := s.applyAll(l.Name, todo); err != nil {
		return err
	}
	for _, it := range todo {
		if it.link.WasDown && !it.spec.Down {
			s.raised = append(s.raised, it.end)
		}
		if f := s.fault(it.end); f != nil {
			f.Down = it.spec.Down
		}
	}
	if len(todo) > 0 {
		return s.store.Write(s.led)
	}
	return nil
}

// fault is the ledger's fault of end, or nil.
func (s *session) fault(end fault.End) *ledger.Fault {
	for i := range s.led.Faults {
		if f := &s.led.Faults[i]; f.Node == end.Node && f.Iface == end.Iface {
			return f
		}
	}
	return nil
}

// fileLines plans every fault of a lab that is not up, for the kernel as
// probed now.
func fileLines(l *lab.Lab, want []*lab.Interface, res *FileResult) error {
	if len(want) == 0 {
		return nil
	}
	caps, err := backend.Probe()
	if err != nil {
		return err
	}
	lines, err := FileLines(l, caps)
	res.Lines, res.Made = lines, len(want)
	return err
}

// FileLines is the lab file's faults as the commands a person would type
// (tc, nft and ip, each in the node named at the start of the line) on a
// kernel with caps: pure, for plans and their golden transcripts. Interface
// indexes are not known before up; a delayer's queue number, which is the
// end's index, shows as 0.
func FileLines(l *lab.Lab, caps backend.Caps) ([]string, error) {
	var out []string
	for _, i := range l.Faulted() {
		lk := ModelLink(i)
		p, err := backend.For(i.Faults(), lk, caps)
		if err != nil {
			return nil, fmt.Errorf("%s: faults of %s: %w", l.Name, lk.End, err)
		}
		out = append(out, p.Lines(l.Name, lk)...)
	}
	return out, nil
}

// ModelLink is what the backend needs of an interface, from the lab model
// alone.
func ModelLink(i *lab.Interface) backend.Link {
	lk := backend.Link{End: fault.End{Node: i.Node.Name, Iface: i.Name}, Dev: i.Name, Bridged: i.Master != nil, Host: i.Node.IsHost()}
	if p := i.Peer; p != nil {
		lk.PeerNode, lk.PeerDev, lk.PeerHost = p.Node.Name, p.Name, p.Node.IsHost()
	}
	return lk
}

// applyAll makes the plans of items as backend.Apply would, one end after
// another, but with the nftables chains of each namespace in a few
// transactions: on a lab whose ends share a far end (a hub, a router), one
// rule set change per end would list and rewrite that namespace's whole
// table each time, which made faults on 1,000 such links take three times
// as long as the lab itself.
//
// An end that had no fault in the ledger has no chains to remove: a fault
// is recorded before it is made, and down takes the namespaces with
// everything in them. Its namespaces are not even listed, which on a new
// lab of a thousand faulted links was half the faults' time.
func (s *session) applyAll(name string, items []fileItem) error {
	table := backend.Table(name)
	type nsChains struct {
		ns           *netns.NS
		want, remove []kernel.FaultChain
	}
	var order []*netns.NS
	byNS := map[*netns.NS]*nsChains{}
	add := func(ns *netns.NS, host bool, want, all []kernel.FaultChain, end fault.End) error {
		if ns == nil || host {
			if len(want) > 0 {
				return &kernel.OpError{Op: "set fault rules", Name: end.String(), Err: errors.New("nsnet puts no nftables rules in the host's namespace")}
			}
			return nil
		}
		c := byNS[ns]
		if c == nil {
			c = &nsChains{ns: ns}
			byNS[ns] = c
			order = append(order, ns)
		}
		c.want = append(c.want, want...)
		for _, x := range all {
			if !slices.ContainsFunc(want, func(w kernel.FaultChain) bool { return w.Family == x.Family && w.Name == x.Name }) {
				c.remove = append(c.remove, x)
			}
		}
		return nil
	}
	// The qdiscs, in parallel: each end's are its own.
	if err := each(len(items), func(k int) error {
		p, l := items[k].plan, items[k].link
		if p.Shaper.Netem == nil && p.Shaper.TBF == nil && items[k].reason == "new" {
			return nil
		}
		t, done, err := s.conns.TC(l.NS)
		if err != nil {
			return err
		}
		defer done()
		if p.Shaper.Netem != nil || p.Shaper.TBF != nil {
			return t.SetShaper(l.Ifindex, l.Dev, p.Shaper)
		}
		return t.DeleteShaper(l.Ifindex, l.Dev)
	}); err != nil {
		return err
	}
	for _, it := range items {
		p, l := it.plan, it.link
		fresh := it.reason == "new"
		local, far := backend.Chains(l)
		if fresh {
			local, far = nil, nil
		}
		if err := add(l.NS, l.Host, p.Local, local, l.End); err != nil {
			return err
		}
		if err := add(l.PeerNS, l.PeerHost, p.Far, far, l.End); err != nil {
			return err
		}
	}
	for _, ns := range order {
		c := byNS[ns]
		if len(c.want) == 0 && len(c.remove) == 0 {
			continue
		}
		n, done, err := s.conns.NFT(ns)
		if err != nil {
			return err
		}
		// A netlink message holds a few hundred chains' rules, and the
		// kernel's acknowledgements and echoes of 200 overflow the
		// socket's receive buffer (ENOBUFS): batches of 64.
		const batch = 64
		for i := 0; i < max(len(c.want), len(c.remove)) && err == nil; i += batch {
			w := c.want[min(i, len(c.want)):min(i+batch, len(c.want))]
			r := c.remove[min(i, len(c.remove)):min(i+batch, len(c.remove))]
			err = n.SetChains(table, w, r...)
		}
		done()
		if err != nil {
			return err
		}
	}
	for _, it := range items {
		if !it.plan.Down && !it.link.WasDown {
			continue
		}
		h, done, err := s.conns.Handle(it.link.NS)
		if err != nil {
			return err
		}
		if it.plan.Down {
			err = h.SetDownIndex(it.link.Ifindex)
		} else {
			err = h.SetUpIndex(it.link.Ifindex)
		}
		done()
		if err != nil {
			return err
		}
	}
	return nil
}

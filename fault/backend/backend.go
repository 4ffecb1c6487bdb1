// Package backend turns fault specs into kernel objects, by the mechanisms
// this kernel has: found by trying them (Probe), never by guessing.
//
// With sch_netem, netem does delay, jitter, loss, duplication, reordering
// and corruption, with a tbf under it for a rate. Without it, tbf does the
// rate; nftables drops (loss, black holes) at the far end's ingress, where a
// real wire would lose the packet (a drop at the sender's own egress only
// returns ENOBUFS to a local sender, which sends again: congestion, not
// loss); nftables copies (duplicates) at the sender's egress; and the
// userspace delayer, fed through NFQUEUE at the sender, holds packets for
// delay, jitter and reordering and does correlated or bursty loss and
// corruption. Partitions are nftables drops by source address in each
// receiving node, so they hold on shared bridges as on point-to-point links.
package backend

import (
	"fmt"
	"strings"
	"time"

	"github.com/nsnet/nsnet/fault"
	"github.com/nsnet/nsnet/kernel"
	"github.com/nsnet/nsnet/netns"
)

// Features a backend may rely on, as Probe names them.
const (
	FeatNetem   = "sch_netem"
	FeatTBF     = "sch_tbf"
	FeatNetdev  = "nftables netdev ingress"
	FeatEgress  = "nftables netdev egress"
	FeatDup     = "nftables dup"
	FeatNumgen  = "nftables numgen"
	FeatInet    = "nftables inet"
	FeatNFQueue = "NFQUEUE (xtables target + nfnetlink_queue)"
)

// Caps is what this kernel can do. A feature missing from OK failed its
// probe, for the reason in Missing.
type Caps struct {
	OK      map[string]bool   `json:"ok"`
	Missing map[string]string `json:"missing,omitempty"`
}

// Has reports whether every feature probed ok.
func (c Caps) Has(features ...string) bool {
	for _, f := range features {
		if !c.OK[f] {
			return false
		}
	}
	return true
}

// AllCaps is a kernel with everything, for plans in tests.
func AllCaps() Caps {
	c := Caps{OK: map[string]bool{}}
	for _, f := range []string{FeatNetem, FeatTBF, FeatNetdev, FeatEgress, FeatDup, FeatNumgen, FeatInet, FeatNFQueue} {
		c.OK[f] = true
	}
	return c
}

// Without is c with features missing.
func (c Caps) Without(features ...string) Caps {
	out := Caps{OK: map[string]bool{}, Missing: map[string]string{}}
	for k, v := range c.OK {
		out.OK[k] = v
	}
	for k, v := range c.Missing {
		out.Missing[k] = v
	}
	for _, f := range features {
		delete(out.OK, f)
		out.Missing[f] = "not in this kernel"
	}
	return out
}

// Fixes says what to do about a missing feature, where something can be
// done.
var fixes = map[string]string{
	FeatNetem:   "install your distribution's extra kernel modules (Debian/Ubuntu: linux-modules-extra-$(uname -r); Fedora/RHEL: kernel-modules-extra), then modprobe sch_netem",
	FeatTBF:     "load sch_tbf (modprobe sch_tbf) or enable CONFIG_NET_SCH_TBF",
	FeatNetdev:  "enable nftables with the netdev family (CONFIG_NF_TABLES_NETDEV)",
	FeatEgress:  "a kernel of 5.16 or later has the netdev egress hook (CONFIG_NETFILTER_EGRESS)",
	FeatDup:     "load nft_dup_netdev (CONFIG_NFT_DUP_NETDEV)",
	FeatNumgen:  "load nft_numgen (CONFIG_NFT_NUMGEN)",
	FeatInet:    "enable nftables (CONFIG_NF_TABLES_INET)",
	FeatNFQueue: "load nfnetlink_queue, xt_NFQUEUE and nft_compat (CONFIG_NETFILTER_NETLINK_QUEUE, CONFIG_NETFILTER_XT_TARGET_NFQUEUE, CONFIG_NFT_COMPAT)",
}

// Fix is the remedy for a missing feature, or "".
func Fix(feature string) string { return fixes[feature] }

// Link is what a plan needs to know of one link end and its peer.
type Link struct {
	End     fault.End
	NS      *netns.NS
	Dev     string
	Ifindex int
	// Bridged: the end is a bridge port, whose frames the namespace's IP
	// hooks (and so the delayer) never see.
	Bridged bool
	// Host: the end is in the host's namespace, where nsnet puts no
	// nftables rules.
	Host bool
	// The other end of the veth.
	PeerNS      *netns.NS
	PeerNode    string
	PeerDev     string
	PeerIfindex int
	PeerHost    bool
	// WasDown: the fault in force took the end down, so a plan without
	// down sets it up again (otherwise the carrier is left as it is).
	WasDown bool
}

// Mechanisms.
const (
	MechNetem   = "netem"
	MechTBF     = "tbf"
	MechNFT     = "nftables"
	MechDelayer = "delayer"
	MechLink    = "link"
)

// Plan is the kernel objects that make one end's spec.
type Plan struct {
	End  fault.End
	Spec fault.Spec
	// Via names the mechanism of each field the spec sets.
	Via map[string]string
	// Shaper goes on the end's device.
	Shaper kernel.Shaper
	// Local chains go in the end's namespace, Far chains in the peer's.
	Local, Far []kernel.FaultChain
	// Delay is the part of the spec the delayer does, on queue Queue of
	// the end's namespace; zero when the delayer is not needed.
	Delay fault.Spec
	Queue uint16
	// Down turns the end's carrier off.
	Down bool
}

// UsesDelayer reports whether the plan needs the userspace delayer.
func (p *Plan) UsesDelayer() bool { return p.Via != nil && containsValue(p.Via, MechDelayer) }

// Backend is the mechanisms of the plan, in a fixed order: "netem+tbf",
// "tbf+nftables+delayer".
func (p *Plan) Backend() string {
	var out []string
	for _, m := range []string{MechNetem, MechTBF, MechNFT, MechDelayer, MechLink} {
		if containsValue(p.Via, m) {
			out = append(out, m)
		}
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, "+")
}

func containsValue(m map[string]string, v string) bool {
	for _, x := range m {
		if x == v {
			return true
		}
	}
	return false
}

// Chain names, per device.
func egressChain(dev string) string  { return "out-" + dev }
func ingressChain(dev string) string { return "in-" + dev }
func queueChain(dev string) string   { return "queue-" + dev }

// PartitionChain is the chain of a node's partition rules.
const PartitionChain = "partition"

// Priorities: drops and copies before anything else a namespace has;
// partitions before conntrack (raw), as Jepsen's iptables rules are.
const (
	prioDevice    = -500
	prioPartition = -300
	prioQueue     = 0
)

// Table is the name of a lab's fault tables.
func Table(lab string) string { return "nsnet-" + lab }

// Refusal is a fault no backend of this kernel can make: the field and what
// is missing. Nothing has changed when it is returned.
type Refusal struct {
	End     fault.End
	Field   string
	Missing string
	Why     string
}

func (e *Refusal) Error() string {
	msg := fmt.Sprintf("%s: %s: not possible on this kernel: %s", e.End, e.Field, e.Why)
	if e.Missing != "" {
		if fix := Fix(e.Missing); fix != "" {
			msg += " (" + e.Missing + " missing: " + fix + ")"
		} else {
			msg += " (" + e.Missing + " missing)"
		}
	}
	return msg
}

// netemLimit sizes netem's queue (packets) for what the link holds while
// delayed: the rate (or, with none, 1 Gbit/s) times the longest delay, in
// full-sized packets, with room to spare; never below netem's default.
func netemLimit(s fault.Spec) uint32 {
	bits := s.Rate.Bits
	if bits == 0 {
		bits = 1e9
	}
	hold := s.Delay + 2*s.Jitter
	pkts := float64(bits) / 8 * hold.Seconds() / 1500 * 1.5
	return uint32(max(1000, min(pkts, 1<<20)))
}

// tbfFor sizes a tbf: the bucket holds 5 ms at the rate (at least two full
// frames), the queue 50 ms more plus the bucket.
func tbfFor(r fault.Rate) *kernel.TBF {
	bps := r.Bits / 8
	burst := r.Burst
	if burst == 0 {
		burst = uint32(max(3028, bps*5/1000))
	}
	limit := r.Limit
	if limit == 0 {
		limit = uint32(min(uint64(burst)+bps*50/1000, 1<<30))
	}
	return &kernel.TBF{Rate: r.Bits, Burst: burst, Limit: limit}
}

// For plans spec on l with the mechanisms of caps. It refuses, changing
// nothing, a field no mechanism can do.
func For(spec fault.Spec, l Link, caps Caps) (*Plan, error) {
	if err := spec.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", l.End, err)
	}
	p := &Plan{End: l.End, Spec: spec, Via: map[string]string{}, Queue: uint16(l.Ifindex)}
	refuse := func(field, missing, why string) error {
		return &Refusal{End: l.End, Field: field, Missing: missing, Why: why}
	}
	var local, far []kernel.FaultRule
	var egress []kernel.FaultRule
	delayer := func(field string) error {
		switch {
		case !caps.Has(FeatNFQueue, FeatInet):
			return refuse(field, FeatNFQueue, "no netem and no userspace delayer")
		case l.Host:
			return refuse(field, FeatNetem, "the delayer needs rules in the end's namespace, and this end is in the host's")
		case l.Bridged:
			return refuse(field, FeatNetem, "a bridge port's frames never reach the delayer; put the fault on the node's end of the link")
		}
		p.Via[field] = MechDelayer
		return nil
	}
	farDrop := func(field string, chance float64) error {
		if !caps.Has(FeatNetdev) || chance != 0 && !caps.Has(FeatNumgen) || l.PeerHost || l.PeerDev == "" {
			// Without a far end to drop at, the delayer drops at the
			// sender (still silently: the packet was already queued).
			return delayer(field)
		}
		far = append(far, kernel.FaultRule{Chance: chance, Verdict: kernel.VerdictDrop})
		p.Via[field] = MechNFT
		return nil
	}
	useNetem := caps.Has(FeatNetem)
	var nm *kernel.Netem
	if useNetem && (spec.Delays() || !spec.Loss.IsZero() && !spec.Loss.Bursty() || spec.Duplicate != 0 || spec.Corrupt != 0 || spec.Blackhole) {
		nm = &kernel.Netem{
			Delay: spec.Delay, Jitter: spec.Jitter, DelayCorr: float64(spec.Correlation),
			Normal: spec.Distribution == fault.Normal, Reorder: float64(spec.Reorder),
			Duplicate: float64(spec.Duplicate), Corrupt: float64(spec.Corrupt),
			Limit: netemLimit(spec),
		}
		for _, f := range spec.Fields() {
			switch f {
			case fault.FieldDelay, fault.FieldJitter, fault.FieldDistribution, fault.FieldCorrelation,
				fault.FieldReorder, fault.FieldDuplicate, fault.FieldCorrupt:
				p.Via[f] = MechNetem
			}
		}
		if !spec.Loss.IsZero() && !spec.Loss.Bursty() {
			nm.Loss, nm.LossCorr = float64(spec.Loss.P), float64(spec.Loss.Correlation)
			p.Via[fault.FieldLoss] = MechNetem
		}
		if spec.Blackhole {
			nm.Loss = 100
			p.Via[fault.FieldBlackhole] = MechNetem
		}
	}
	if !useNetem {
		if spec.Delays() {
			for _, f := range []string{fault.FieldDelay, fault.FieldJitter, fault.FieldReorder} {
				if (f == fault.FieldDelay && spec.Delay != 0) || (f == fault.FieldJitter && spec.Jitter != 0) || (f == fault.FieldReorder && spec.Reorder != 0) {
					if err := delayer(f); err != nil {
						return nil, err
					}
				}
			}
			p.Delay.Delay, p.Delay.Jitter, p.Delay.Correlation, p.Delay.Distribution, p.Delay.Reorder =
				spec.Delay, spec.Jitter, spec.Correlation, spec.Distribution, spec.Reorder
			if spec.Distribution == fault.Normal {
				p.Via[fault.FieldDistribution] = MechDelayer
			}
			if spec.Correlation != 0 {
				p.Via[fault.FieldCorrelation] = MechDelayer
			}
		}
		if spec.Corrupt != 0 {
			if err := delayer(fault.FieldCorrupt); err != nil {
				return nil, err
			}
			p.Delay.Corrupt = spec.Corrupt
		}
		if spec.Duplicate != 0 {
			if !caps.Has(FeatEgress, FeatDup, FeatNumgen) {
				missing := FeatEgress
				if caps.Has(FeatEgress) {
					missing = FeatDup
				}
				return nil, refuse(fault.FieldDuplicate, missing, "no netem and no nftables copy at the sender's egress")
			}
			egress = append(egress, kernel.FaultRule{Chance: float64(spec.Duplicate), Verdict: kernel.VerdictDup})
			p.Via[fault.FieldDuplicate] = MechNFT
		}
		if !spec.Loss.IsZero() {
			if spec.Loss.Bursty() || spec.Loss.Correlation != 0 {
				if err := delayer(fault.FieldLoss); err != nil {
					return nil, err
				}
				p.Delay.Loss = spec.Loss
			} else if err := farDrop(fault.FieldLoss, float64(spec.Loss.P)); err != nil {
				return nil, err
			} else if p.Via[fault.FieldLoss] == MechDelayer {
				p.Delay.Loss = spec.Loss
			}
		}
		if spec.Blackhole {
			if err := farDrop(fault.FieldBlackhole, 0); err != nil {
				return nil, err
			} else if p.Via[fault.FieldBlackhole] == MechDelayer {
				p.Delay.Loss = fault.Loss{P: 100}
			}
		}
	} else if spec.Loss.Bursty() {
		// go-tc has no Gilbert-Elliott attribute: the delayer does it.
		if err := delayer(fault.FieldLoss); err != nil {
			return nil, err
		}
		p.Delay.Loss = spec.Loss
	}
	if !spec.Rate.IsZero() {
		if !caps.Has(FeatTBF) {
			return nil, refuse(fault.FieldRate, FeatTBF, "no rate limiter")
		}
		if spec.Rate.Bits > kernel.MaxTBFRate {
			return nil, refuse(fault.FieldRate, "", fmt.Sprintf("tbf takes at most %s", fault.FormatRate(kernel.MaxTBFRate/1e9*1e9)))
		}
		p.Shaper.TBF = tbfFor(spec.Rate)
		p.Via[fault.FieldRate] = MechTBF
	}
	p.Shaper.Netem = nm
	if spec.Down {
		p.Down = true
		p.Via[fault.FieldDown] = MechLink
	}
	if len(egress) > 0 {
		p.Local = append(p.Local, kernel.FaultChain{Family: kernel.Netdev, Name: egressChain(l.Dev), Hook: kernel.HookEgress,
			Dev: l.Dev, Ifindex: l.Ifindex, Priority: prioDevice, Rules: egress})
	}
	if p.UsesDelayer() {
		p.Local = append(p.Local, kernel.FaultChain{Family: kernel.Inet, Name: queueChain(l.Dev), Hook: kernel.HookPostrouting,
			Dev: l.Dev, Priority: prioQueue, Rules: append(local, kernel.FaultRule{Verdict: kernel.VerdictQueue, Queue: p.Queue})})
	}
	if len(far) > 0 {
		p.Far = append(p.Far, kernel.FaultChain{Family: kernel.Netdev, Name: ingressChain(l.PeerDev), Hook: kernel.HookIngress,
			Dev: l.PeerDev, Ifindex: l.PeerIfindex, Priority: prioDevice, Rules: far})
	}
	return p, nil
}

// Chains lists every chain a plan for l could have made, for clearing.
func Chains(l Link) (local, far []kernel.FaultChain) {
	local = []kernel.FaultChain{
		{Family: kernel.Netdev, Name: egressChain(l.Dev)},
		{Family: kernel.Inet, Name: queueChain(l.Dev)},
	}
	far = []kernel.FaultChain{{Family: kernel.Netdev, Name: ingressChain(l.PeerDev)}}
	return
}

// Lines is the plan as the commands a person would type: tc for the
// qdiscs, nft for the rules (in the namespace named at the start of each
// line), ip for the link, and the delayer's share.
func (p *Plan) Lines(lab string, l Link) []string {
	var out []string
	in := func(node string, lines []string) {
		for _, x := range lines {
			out = append(out, "["+node+"] "+x)
		}
	}
	table := Table(lab)
	in(l.End.Node, p.Shaper.Lines(l.Dev))
	for _, c := range p.Local {
		in(l.End.Node, c.Lines(table))
	}
	for _, c := range p.Far {
		in(l.PeerNode, c.Lines(table))
	}
	if !p.Delay.IsZero() {
		in(l.End.Node, []string{fmt.Sprintf("delayer queue %d: %s", p.Queue, p.Delay)})
	}
	if p.Down {
		in(l.End.Node, []string{"ip link set " + l.Dev + " down"})
	}
	return out
}

// DelayerSpec is the delayer's share as the words it reads.
func (p *Plan) DelayerSpec() string { return p.Delay.String() }

// settle is how long Apply waits at most for the delayer to bind a queue.
const settle = 3 * time.Second

package backend

import (
	"context"
	"fmt"
	"time"

	"github.com/florianl/go-nfqueue/v2"

	"github.com/nsnet/nsnet/kernel"
	"github.com/nsnet/nsnet/netns"
)

// Probe finds what this kernel can do by trying each mechanism in a scratch
// namespace of its own (a veth pair a0/b0 inside it), which it then closes:
// nothing outlives the probe.
func Probe() (Caps, error) {
	c := Caps{OK: map[string]bool{}, Missing: map[string]string{}}
	ns, err := netns.New()
	if err != nil {
		return c, fmt.Errorf("probe: %w", err)
	}
	defer ns.Close()
	h, err := kernel.Open(ns)
	if err != nil {
		return c, fmt.Errorf("probe: %w", err)
	}
	defer h.Close()
	if err := h.AddVeth(kernel.Veth{Name: "a0", Peer: "b0"}); err != nil {
		return c, fmt.Errorf("probe: %w", err)
	}
	a0, err := h.LinkByName("a0")
	if err != nil {
		return c, fmt.Errorf("probe: %w", err)
	}
	try := func(feature string, err error) bool {
		if err != nil {
			c.Missing[feature] = err.Error()
			return false
		}
		c.OK[feature] = true
		return true
	}
	tc, err := kernel.OpenTC(ns)
	if err != nil {
		return c, fmt.Errorf("probe: %w", err)
	}
	defer tc.Close()
	try(FeatNetem, tc.SetShaper(a0.Index, "a0", kernel.Shaper{Netem: &kernel.Netem{Delay: time.Millisecond, Limit: 1000}}))
	tc.DeleteShaper(a0.Index, "a0")
	try(FeatTBF, tc.SetShaper(a0.Index, "a0", kernel.Shaper{TBF: &kernel.TBF{Rate: 1e6, Burst: 3028, Limit: 10000}}))
	tc.DeleteShaper(a0.Index, "a0")

	n, err := kernel.OpenNFT(ns)
	if err != nil {
		return c, fmt.Errorf("probe: %w", err)
	}
	defer n.Close()
	const table = "nsnet-probe"
	chain := func(family kernel.Family, hook string, r kernel.FaultRule) error {
		return n.SetChains(table, []kernel.FaultChain{{Family: family, Name: "probe-" + hook, Hook: hook, Dev: "a0", Ifindex: a0.Index, Rules: []kernel.FaultRule{r}}})
	}
	if try(FeatNetdev, chain(kernel.Netdev, kernel.HookIngress, kernel.FaultRule{Verdict: kernel.VerdictDrop})) {
		try(FeatNumgen, chain(kernel.Netdev, kernel.HookIngress, kernel.FaultRule{Chance: 50, Verdict: kernel.VerdictDrop}))
		if try(FeatEgress, chain(kernel.Netdev, kernel.HookEgress, kernel.FaultRule{Verdict: kernel.VerdictDrop})) {
			try(FeatDup, chain(kernel.Netdev, kernel.HookEgress, kernel.FaultRule{Verdict: kernel.VerdictDup}))
		}
	}
	if try(FeatInet, chain(kernel.Inet, kernel.HookPostrouting, kernel.FaultRule{Verdict: kernel.VerdictDrop})) {
		err := chain(kernel.Inet, kernel.HookPostrouting, kernel.FaultRule{Verdict: kernel.VerdictQueue, Queue: 1})
		if err == nil {
			err = probeQueue(ns)
		}
		try(FeatNFQueue, err)
	}
	_ = n.DeleteTables(table)
	return c, nil
}

// probeQueue binds an NFQUEUE socket in ns, as the delayer does.
func probeQueue(ns *netns.NS) error {
	q, err := nfqueue.Open(&nfqueue.Config{NetNS: ns.Fd(), NfQueue: 1, MaxPacketLen: 128, MaxQueueLen: 16, Copymode: nfqueue.NfQnlCopyPacket, WriteTimeout: time.Second})
	if err != nil {
		return err
	}
	defer q.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	return q.RegisterWithErrorFunc(ctx, func(nfqueue.Attribute) int { return 0 }, func(error) int { return 1 })
}

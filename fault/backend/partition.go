package backend

import (
	"net/netip"
	"slices"
	"sync"

	"github.com/nsnet/nsnet/fault"
	"github.com/nsnet/nsnet/kernel"
	"github.com/nsnet/nsnet/netns"
)

// Member is a node a partition involves: its namespace and the addresses
// its packets carry.
type Member struct {
	Node  string
	NS    *netns.NS
	Addrs []netip.Addr
}

// PartitionChains are the rules of a partition, per receiving node: drop
// what comes from the nodes it must not hear from, matched by source
// address in the receiver's own namespace (so it holds whatever lies
// between: a shared bridge, a router). The addresses are all a member has,
// link-local ones included (fe80::/10: neighbour discovery's, a router's
// advertisements, anything sent to a link-local or multicast address).
// Nodes that hear everyone get no chain.
//
// Neighbour discovery is let through, as ARP is (the inet family never sees
// ARP): a solicitation or advertisement carries no data, and dropping them
// would turn a one-way partition into a two-way one (B, which may still
// send to A, could no longer learn A's link address from A's
// advertisements) and leave neighbour entries failed after heal.
func PartitionChains(p fault.Partition, members map[string]Member) map[string]kernel.FaultChain {
	out := map[string]kernel.FaultChain{}
	for _, to := range p.Nodes() {
		var src []netip.Addr
		for _, from := range p.Nodes() {
			if p.Blocks(from, to) {
				src = append(src, members[from].Addrs...)
			}
		}
		if len(src) == 0 {
			continue
		}
		var rules []kernel.FaultRule
		if slices.ContainsFunc(src, netip.Addr.Is6) {
			rules = append(rules, kernel.FaultRule{Neighbour: true, Verdict: kernel.VerdictAccept})
		}
		out[to] = kernel.FaultChain{Family: kernel.Inet, Name: PartitionChain, Hook: kernel.HookPrerouting,
			Priority: prioPartition, Rules: append(rules, kernel.FaultRule{Src: src, Verdict: kernel.VerdictDrop})}
	}
	return out
}

// PartitionLines is the partition as nft lines, node by node in the order
// of the groups.
func PartitionLines(lab string, p fault.Partition, members map[string]Member) []string {
	chains := PartitionChains(p, members)
	var out []string
	for _, n := range p.Nodes() {
		c, ok := chains[n]
		if !ok {
			continue
		}
		for _, l := range c.Lines(Table(lab)) {
			out = append(out, "["+n+"] "+l)
		}
	}
	return out
}

// workers bounds how many namespaces a partition changes at once. Removing
// a chain waits for an RCU grace period; concurrent removals share one, so
// many at once cost little more than one.
const workers = 32

// SetPartition puts each node's partition chain in place and removes it from
// the nodes of all that have none now (heal: chains empty).
func SetPartition(lab string, chains map[string]kernel.FaultChain, all []Member) error {
	table := Table(lab)
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	work := make(chan Member)
	for range min(workers, len(all)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for m := range work {
				err := setOne(table, m, chains)
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		}()
	}
	for _, m := range all {
		work <- m
	}
	close(work)
	wg.Wait()
	if len(errs) > 0 {
		return errs[0]
	}
	return nil
}

func setOne(table string, m Member, chains map[string]kernel.FaultChain) error {
	n, err := kernel.OpenNFT(m.NS)
	if err != nil {
		return err
	}
	defer n.Close()
	c, ok := chains[m.Node]
	if !ok {
		return n.DeleteChains(table, kernel.FaultChain{Family: kernel.Inet, Name: PartitionChain})
	}
	return n.SetChains(table, []kernel.FaultChain{c})
}

// PartitionDrops is what a node's partition rules dropped.
func PartitionDrops(lab string, m Member) (uint64, error) {
	n, err := kernel.OpenNFT(m.NS)
	if err != nil {
		return 0, err
	}
	defer n.Close()
	v, err := n.Counters(Table(lab), kernel.FaultChain{Family: kernel.Inet, Name: PartitionChain})
	var s uint64
	for _, x := range v {
		s += x
	}
	return s, err
}

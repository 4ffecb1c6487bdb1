package kernel

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"net/netip"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/xt"
	"golang.org/x/sys/unix"

	"github.com/nsnet/nsnet/netns"
)

// The fault rules of a lab live in tables of its own in each namespace it
// touches, one per family ("netdev" for drops and copies at a device,
// "inet" for partitions and the delayer's queues), named for the lab: a
// fault is removed by deleting its chain, all of a lab's faults in a
// namespace by deleting its tables, and nothing else is ever touched.

// Family is an nftables family nsnet writes fault rules in.
type Family string

// Families.
const (
	Netdev Family = "netdev"
	Inet   Family = "inet"
)

func (f Family) nft() nftables.TableFamily {
	if f == Netdev {
		return nftables.TableFamilyNetdev
	}
	return nftables.TableFamilyINet
}

// Hooks nsnet attaches fault chains to.
const (
	HookIngress     = "ingress"     // netdev: what a device receives
	HookEgress      = "egress"      // netdev: what a device sends
	HookPrerouting  = "prerouting"  // inet: what the namespace receives
	HookPostrouting = "postrouting" // inet: what the namespace sends
)

// Verdicts of a fault rule.
const (
	VerdictDrop  = "drop"
	VerdictDup   = "dup"   // a copy out of the chain's device
	VerdictQueue = "queue" // to the userspace delayer
	// VerdictAccept ends the chain for what matched (no counter: an
	// exemption, not a fault).
	VerdictAccept = "accept"
)

// FaultRule is one rule of a fault chain: packets that match (all of Src
// when it is set, only IPv6 neighbour solicitations and advertisements with
// Neighbour, a random Chance percent of them when it is between 0 and 100)
// meet the Verdict. Every rule but an accept counts what it matched.
type FaultRule struct {
	Chance    float64 // percent; 0 means every packet
	Src       []netip.Addr
	Neighbour bool
	Verdict   string
	Queue     uint16 // for VerdictQueue
}

// FaultChain is a base chain of a lab's fault table.
type FaultChain struct {
	Family Family
	Name   string
	Hook   string
	// Dev is the device of a netdev chain; for an inet chain, only packets
	// leaving by it are matched (empty: all).
	Dev      string
	Ifindex  int // of Dev, for netdev chains and dup
	Priority int32
	Rules    []FaultRule
}

// CopyMark is the packet mark bit a dup rule sets on what it copies, for
// the time of the copy only: the copy leaves by the same device, so it meets
// the same egress chain again, and a copy that could be copied again would
// make duplicate p come out as p/(1-p) (31% for 25%). Netem never
// duplicates a duplicate; a dup rule takes only packets without this bit.
// The original gets its mark back after the copy. The mark does not cross a
// veth into the peer's namespace (it is scrubbed there).
const CopyMark uint32 = 0x20000000

// chanceScale is the modulus of the random number a Chance is compared
// with: a millionth of the packets is the finest share.
const chanceScale = 1_000_000

// Lines are the nft commands that make c in table, for plans and tests.
func (c FaultChain) Lines(table string) []string {
	var hook string
	if c.Family == Netdev {
		hook = fmt.Sprintf("{ type filter hook %s device %s priority %d; }", c.Hook, c.Dev, c.Priority)
	} else {
		hook = fmt.Sprintf("{ type filter hook %s priority %d; }", c.Hook, c.Priority)
	}
	out := []string{fmt.Sprintf("nft add chain %s %s %s %s", c.Family, table, c.Name, hook)}
	for _, r := range c.Rules {
		var w []string
		if c.Family == Inet && c.Dev != "" {
			w = append(w, "oifname", c.Dev)
		}
		if len(r.Src) > 0 {
			var v4, v6 []string
			for _, a := range r.Src {
				if a.Is4() {
					v4 = append(v4, a.String())
				} else {
					v6 = append(v6, a.String())
				}
			}
			if len(v4) > 0 && len(v6) > 0 {
				// One rule per family, as nft itself needs.
				r4, r6 := r, r
				r4.Src, r6.Src = addrsOf(v4), addrsOf(v6)
				cc := c
				cc.Rules = []FaultRule{r4, r6}
				return append(out, cc.Lines(table)[1:]...)
			}
			if len(v4) > 0 {
				w = append(w, "ip saddr", set(v4))
			} else {
				w = append(w, "ip6 saddr", set(v6))
			}
		}
		if r.Neighbour {
			w = append(w, "icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert }")
		}
		if r.Verdict == VerdictDup {
			w = append(w, fmt.Sprintf("meta mark and %#08x == 0", CopyMark))
		}
		if r.Chance > 0 && r.Chance < 100 {
			w = append(w, fmt.Sprintf("numgen random mod %d < %d", chanceScale, chanceOf(r.Chance)))
		}
		if r.Verdict != VerdictAccept {
			w = append(w, "counter")
		}
		switch r.Verdict {
		case VerdictDup:
			w = append(w, fmt.Sprintf("meta mark set meta mark or %#08x dup to %s meta mark set meta mark and %#08x", CopyMark, c.Dev, ^CopyMark))
		case VerdictQueue:
			w = append(w, fmt.Sprintf("queue num %d", r.Queue))
		default:
			w = append(w, r.Verdict)
		}
		out = append(out, fmt.Sprintf("nft add rule %s %s %s %s", c.Family, table, c.Name, strings.Join(w, " ")))
	}
	return out
}

func addrsOf(s []string) []netip.Addr {
	out := make([]netip.Addr, len(s))
	for i, a := range s {
		out[i] = netip.MustParseAddr(a)
	}
	return out
}

func set(s []string) string {
	if len(s) == 1 {
		return s[0]
	}
	return "{ " + strings.Join(s, ", ") + " }"
}

func chanceOf(p float64) uint32 {
	return uint32(math.Round(p / 100 * chanceScale))
}

// NFT is an nftables connection bound to one namespace when it is opened.
type NFT struct {
	c    *nftables.Conn
	name string
	// hasTable is whether the lab's table of each family existed at the
	// last listing.
	hasTable map[Family]bool
}

// OpenNFT binds an nftables connection to ns.
func OpenNFT(ns *netns.NS) (*NFT, error) {
	c, err := nftables.New(nftables.WithNetNSFd(ns.Fd()), nftables.AsLasting())
	if err != nil {
		return nil, &OpError{Op: "open nftables", Name: ns.String(), Err: classify(err)}
	}
	return &NFT{c: c, name: ns.String()}, nil
}

// Close releases the connection.
func (n *NFT) Close() error { return n.c.CloseLasting() }

// SetChains replaces the named chains of the table (both families as
// needed) with chains, in one transaction: the old rules and the new never
// apply together, and a failure changes nothing. remove lists further chains
// to delete, by family and name, if they exist.
func (n *NFT) SetChains(table string, chains []FaultChain, remove ...FaultChain) error {
	existing, err := n.chains(table)
	if err != nil {
		return err
	}
	tables := map[Family]*nftables.Table{}
	tab := func(f Family) *nftables.Table {
		if t, ok := tables[f]; ok {
			return t
		}
		t := n.c.AddTable(&nftables.Table{Name: table, Family: f.nft()})
		tables[f] = t
		return t
	}
	del := func(f Family, name string) {
		if existing[f][name] {
			n.c.DelChain(&nftables.Chain{Name: name, Table: &nftables.Table{Name: table, Family: f.nft()}})
			existing[f][name] = false
		}
	}
	for _, c := range remove {
		del(c.Family, c.Name)
	}
	inUse := map[Family]bool{}
	for _, c := range chains {
		keep := existing[c.Family][c.Name]
		// A chain already as wanted is left alone: replacing its rules
		// deletes the old ones, and the kernel frees deleted rules after
		// an RCU grace period that closing this connection then waits
		// for (nf_tables' release notifier flushes its destroy work):
		// ~10 ms, most of a fault set that changes only the delayer's
		// share.
		if keep && n.unchanged(table, c) {
			inUse[c.Family] = true
			continue
		}
		t := tab(c.Family)
		// A chain that is there keeps its hook and only has its rules
		// replaced: unregistering a hook waits for an RCU grace period,
		// which would make every change cost milliseconds. A chain's name
		// fixes its hook, device and priority.
		if keep {
			n.c.FlushChain(&nftables.Chain{Name: c.Name, Table: t})
		}
		if err := n.addChain(t, c, keep); err != nil {
			return &OpError{Op: "add chain " + c.Name, Name: n.name, Err: err}
		}
	}
	// A table left without chains goes too, so that clearing the last
	// fault leaves the namespace as it was.
	for f, names := range existing {
		if _, adding := tables[f]; adding || inUse[f] || !n.hasTable[f] {
			continue
		}
		left := false
		for _, on := range names {
			left = left || on
		}
		if !left {
			n.c.DelTable(&nftables.Table{Name: table, Family: f.nft()})
		}
	}
	if err := n.c.Flush(); err != nil {
		return &OpError{Op: "set fault rules", Name: n.name, Err: classify(err)}
	}
	return nil
}

func (n *NFT) addChain(t *nftables.Table, c FaultChain, exists bool) error {
	accept := nftables.ChainPolicyAccept
	ch := &nftables.Chain{Name: c.Name, Table: t, Type: nftables.ChainTypeFilter, Policy: &accept, Priority: nftables.ChainPriorityRef(nftables.ChainPriority(c.Priority))}
	switch c.Hook {
	case HookIngress:
		ch.Hooknum, ch.Device = nftables.ChainHookIngress, c.Dev
	case HookEgress:
		ch.Hooknum, ch.Device = nftables.ChainHookEgress, c.Dev
	case HookPrerouting:
		ch.Hooknum = nftables.ChainHookPrerouting
	case HookPostrouting:
		ch.Hooknum = nftables.ChainHookPostrouting
	default:
		return fmt.Errorf("unknown hook %q", c.Hook)
	}
	if !exists {
		n.c.AddChain(ch)
	}
	for _, r := range c.Rules {
		var fams [][]netip.Addr
		if len(r.Src) > 0 {
			var v4, v6 []netip.Addr
			for _, a := range r.Src {
				if a.Is4() {
					v4 = append(v4, a)
				} else {
					v6 = append(v6, a)
				}
			}
			for _, f := range [][]netip.Addr{v4, v6} {
				if len(f) > 0 {
					fams = append(fams, f)
				}
			}
		} else {
			fams = [][]netip.Addr{nil}
		}
		for _, src := range fams {
			exprs, err := n.ruleExprs(t, c, r, src)
			if err != nil {
				return err
			}
			n.c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: exprs})
		}
	}
	return nil
}

func (n *NFT) ruleExprs(t *nftables.Table, c FaultChain, r FaultRule, src []netip.Addr) ([]expr.Any, error) {
	var e []expr.Any
	if c.Family == Inet && c.Dev != "" {
		e = append(e,
			&expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ifname(c.Dev)})
	}
	if len(src) > 0 {
		proto, off, size, kt := byte(unix.NFPROTO_IPV4), uint32(12), uint32(4), nftables.TypeIPAddr
		if src[0].Is6() {
			proto, off, size, kt = unix.NFPROTO_IPV6, 8, 16, nftables.TypeIP6Addr
		}
		s := &nftables.Set{Table: t, Anonymous: true, Constant: true, KeyType: kt}
		elems := make([]nftables.SetElement, len(src))
		for i, a := range src {
			elems[i] = nftables.SetElement{Key: a.AsSlice()}
		}
		if err := n.c.AddSet(s, elems); err != nil {
			return nil, err
		}
		if c.Family == Netdev {
			e = append(e,
				&expr.Meta{Key: expr.MetaKeyPROTOCOL, Register: 1},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(etherType(proto))})
		} else {
			e = append(e,
				&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}})
		}
		e = append(e,
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: size},
			&expr.Lookup{SourceRegister: 1, SetName: s.Name, SetID: s.ID})
	}
	if r.Neighbour {
		// ICMPv6 types 135 and 136: neighbour solicitation and
		// advertisement.
		e = append(e,
			&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.NFPROTO_IPV6}},
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_ICMPV6}},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 1},
			&expr.Range{Op: expr.CmpOpEq, Register: 1, FromData: []byte{135}, ToData: []byte{136}})
	}
	f, err := faultExprs(c, r)
	if err != nil {
		return nil, err
	}
	return append(e, f...), nil
}

// faultExprs are the expressions of a rule that say what it does to the
// packets it matched: its chance, its counter and its verdict. Drift
// checks compare their signature with the rules read back.
func faultExprs(c FaultChain, r FaultRule) ([]expr.Any, error) {
	var e []expr.Any
	if r.Verdict == VerdictDup {
		// Only packets that are not themselves a copy (see CopyMark).
		e = append(e, markBit(0)...)
	}
	if r.Chance > 0 && r.Chance < 100 {
		e = append(e,
			&expr.Numgen{Register: 1, Modulus: chanceScale, Type: unix.NFT_NG_RANDOM},
			// numgen leaves the number in host order; cmp compares bytes.
			&expr.Byteorder{SourceRegister: 1, DestRegister: 1, Op: expr.ByteorderHton, Len: 4, Size: 4},
			&expr.Cmp{Op: expr.CmpOpLt, Register: 1, Data: binaryutil.BigEndian.PutUint32(chanceOf(r.Chance))})
	}
	if r.Verdict != VerdictAccept {
		e = append(e, &expr.Counter{})
	}
	switch r.Verdict {
	case VerdictAccept:
		e = append(e, &expr.Verdict{Kind: expr.VerdictAccept})
	case VerdictDrop:
		e = append(e, &expr.Verdict{Kind: expr.VerdictDrop})
	case VerdictDup:
		// The bit is clear here (the rule matched only such packets):
		// xor sets it, and the mask after the copy clears it again.
		e = append(e, setMark(^uint32(0), CopyMark)...)
		e = append(e,
			&expr.Immediate{Register: 1, Data: binaryutil.NativeEndian.PutUint32(uint32(c.Ifindex))},
			&expr.Dup{RegDev: 1, IsRegDevSet: true})
		e = append(e, setMark(^CopyMark, 0)...)
	case VerdictQueue:
		e = append(e, nfqueueTarget(r.Queue))
	default:
		return nil, fmt.Errorf("unknown verdict %q", r.Verdict)
	}
	return e, nil
}

// markBit matches packets whose CopyMark bit is want (0 or CopyMark).
func markBit(want uint32) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(CopyMark), Xor: binaryutil.NativeEndian.PutUint32(0)},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(want)},
	}
}

// setMark sets the packet's mark to (mark & mask) ^ xor.
func setMark(mask, xor uint32) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(mask), Xor: binaryutil.NativeEndian.PutUint32(xor)},
		&expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: 1},
	}
}

// nfqueueTarget queues to the delayer through the xtables NFQUEUE target
// (revision 3), which kernels without nftables' own queue expression still
// have. Its flags are zero: no bypass, so a packet with no one listening is
// dropped, never passed unimpaired.
func nfqueueTarget(num uint16) *expr.Target {
	// struct xt_NFQ_info_v3 { __u16 queuenum, queues_total, flags; } in
	// host order, padded to 8 bytes.
	info := make([]byte, 8)
	binary.NativeEndian.PutUint16(info[0:], num)
	binary.NativeEndian.PutUint16(info[2:], 1)
	u := xt.Unknown(info)
	return &expr.Target{Name: "NFQUEUE", Rev: 3, Info: &u}
}

func etherType(proto byte) uint16 {
	if proto == unix.NFPROTO_IPV6 {
		return unix.ETH_P_IPV6
	}
	return unix.ETH_P_IP
}

func ifname(s string) []byte {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, s)
	return b
}

// chains lists the chains of table, family by family.
func (n *NFT) chains(table string) (map[Family]map[string]bool, error) {
	out := map[Family]map[string]bool{Netdev: {}, Inet: {}}
	ts, err := n.c.ListTables()
	if err != nil {
		return nil, &OpError{Op: "list tables", Name: n.name, Err: classify(err)}
	}
	n.hasTable = map[Family]bool{}
	for _, t := range ts {
		for _, f := range []Family{Netdev, Inet} {
			if t.Name == table && t.Family == f.nft() {
				n.hasTable[f] = true
			}
		}
	}
	for _, f := range []Family{Netdev, Inet} {
		if !n.hasTable[f] {
			continue
		}
		cs, err := n.c.ListChainsOfTableFamily(f.nft())
		if err != nil {
			return nil, &OpError{Op: "list chains", Name: n.name, Err: classify(err)}
		}
		for _, c := range cs {
			if c.Table.Name == table {
				out[f][c.Name] = true
			}
		}
	}
	return out, nil
}

// DeleteChains deletes the named chains of table where they exist; the
// tables go too once they hold no chain.
func (n *NFT) DeleteChains(table string, chains ...FaultChain) error {
	return n.SetChains(table, nil, chains...)
}

// DeleteTables deletes the lab's tables of both families, if they exist.
func (n *NFT) DeleteTables(table string) error {
	ts, err := n.c.ListTables()
	if err != nil {
		return &OpError{Op: "list tables", Name: n.name, Err: classify(err)}
	}
	any := false
	for _, t := range ts {
		if t.Name == table && (t.Family == nftables.TableFamilyNetdev || t.Family == nftables.TableFamilyINet) {
			n.c.DelTable(t)
			any = true
		}
	}
	if !any {
		return nil
	}
	if err := n.c.Flush(); err != nil && !errors.Is(classify(err), fs.ErrNotExist) {
		return &OpError{Op: "delete tables " + table, Name: n.name, Err: classify(err)}
	}
	return nil
}

// Counters returns the packets each rule of the chain matched, in order; a
// chain that does not exist has none.
func (n *NFT) Counters(table string, c FaultChain) ([]uint64, error) {
	rules, err := n.c.GetRules(&nftables.Table{Name: table, Family: c.Family.nft()}, &nftables.Chain{Name: c.Name})
	if errors.Is(classify(err), fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, &OpError{Op: "list rules " + c.Name, Name: n.name, Err: classify(err)}
	}
	var out []uint64
	for _, r := range rules {
		for _, e := range r.Exprs {
			if ct, ok := e.(*expr.Counter); ok {
				out = append(out, ct.Packets)
			}
		}
	}
	return out, nil
}

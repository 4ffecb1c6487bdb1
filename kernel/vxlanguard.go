package kernel

import (
	"encoding/binary"
	"errors"
	"io/fs"
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// The VXLAN guard of a lab across machines. The kernel's VXLAN socket
// listens on every address of the machine for its UDP port (a local
// address does not narrow it), and VXLAN carries no authentication: anyone
// who can send to the port can put frames into the lab. The guard is an
// inet table of the lab's own in the machine's namespace whose input chain
// accepts the port only from the other hosts' underlay addresses and drops
// it from everyone else.

// VXLANGuardChain is the guard table's one chain.
const VXLANGuardChain = "vxlan-in"

// SetVXLANGuard makes (or remakes, in one transaction) the guard table:
// UDP to port from one of allow is accepted, from any other address of
// allow's family dropped and counted.
func (n *NFT) SetVXLANGuard(table string, port int, allow []netip.Addr) error {
	t := &nftables.Table{Name: table, Family: nftables.TableFamilyINet}
	// add, delete, add: whatever was there goes, in the same transaction.
	n.c.AddTable(t)
	n.c.DelTable(t)
	n.c.AddTable(t)
	accept := nftables.ChainPolicyAccept
	ch := n.c.AddChain(&nftables.Chain{Name: VXLANGuardChain, Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookInput, Priority: nftables.ChainPriorityRef(-10), Policy: &accept})
	dport := make([]byte, 2)
	binary.BigEndian.PutUint16(dport, uint16(port))
	udpTo := []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_UDP}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: dport},
	}
	for _, a := range allow {
		proto, off, size := byte(unix.NFPROTO_IPV4), uint32(12), uint32(4)
		if a.Is6() {
			proto, off, size = unix.NFPROTO_IPV6, 8, 16
		}
		exprs := append([]expr.Any{
			&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
		}, udpTo...)
		exprs = append(exprs,
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: size},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: a.AsSlice()},
			&expr.Verdict{Kind: expr.VerdictAccept})
		n.c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: exprs})
	}
	// Only the lab's own family: a VXLAN device over the other family has
	// a socket of its own on the port, which is not the lab's to guard.
	var drop []expr.Any
	if len(allow) > 0 {
		proto := byte(unix.NFPROTO_IPV4)
		if allow[0].Is6() {
			proto = unix.NFPROTO_IPV6
		}
		drop = append(drop, &expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}})
	}
	drop = append(append(drop, udpTo...), &expr.Counter{}, &expr.Verdict{Kind: expr.VerdictDrop})
	n.c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: drop})
	if err := n.c.Flush(); err != nil {
		return &OpError{Op: "set vxlan guard " + table, Name: n.name, Err: classify(err)}
	}
	return nil
}

// HasVXLANGuard reports whether the guard table exists.
func (n *NFT) HasVXLANGuard(table string) (bool, error) {
	ts, err := n.c.ListTablesOfFamily(nftables.TableFamilyINet)
	if err != nil {
		return false, &OpError{Op: "list tables", Name: n.name, Err: classify(err)}
	}
	for _, t := range ts {
		if t.Name == table {
			return true, nil
		}
	}
	return false, nil
}

// VXLANGuardDrops is how many packets the guard dropped (0 without one).
func (n *NFT) VXLANGuardDrops(table string) (uint64, error) {
	rules, err := n.c.GetRules(&nftables.Table{Name: table, Family: nftables.TableFamilyINet}, &nftables.Chain{Name: VXLANGuardChain})
	if errors.Is(classify(err), fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, &OpError{Op: "list rules " + VXLANGuardChain, Name: n.name, Err: classify(err)}
	}
	var sum uint64
	for _, r := range rules {
		for _, e := range r.Exprs {
			if c, ok := e.(*expr.Counter); ok {
				sum += c.Packets
			}
		}
	}
	return sum, nil
}

package kernel

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"strings"

	tc "github.com/florianl/go-tc"
	"github.com/florianl/go-tc/core"
	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/xt"
)

// ShaperDrift compares nsnet's qdiscs on the link with s and names the
// first difference ("" when they agree): a qdisc removed or replaced by
// hand, or a value changed (tc qdisc change). The values compared are the
// ones the kernel keeps as given: netem's delay, jitter, limit, loss,
// duplication, reordering and corruption, tbf's rate and limit.
func (t *TC) ShaperDrift(ifindex int, s Shaper) (string, error) {
	all, err := t.qdiscs()
	if err != nil {
		return "", &OpError{Op: "read qdiscs", Err: err}
	}
	var root, child *tc.Object
	for i := range all {
		q := &all[i]
		if int(q.Ifindex) != ifindex {
			continue
		}
		switch {
		case q.Parent == tc.HandleRoot:
			root = q
		case q.Handle == core.BuildHandle(faultChildMajor, 0):
			child = q
		}
	}
	if s.Netem == nil && s.TBF == nil {
		if root != nil && root.Handle == core.BuildHandle(FaultQdiscMajor, 0) {
			return "a qdisc " + root.Kind + " nsnet no longer wants", nil
		}
		return "", nil
	}
	if root == nil || root.Handle != core.BuildHandle(FaultQdiscMajor, 0) {
		return "nsnet's root qdisc is missing", nil
	}
	tbfAt := root
	if s.Netem != nil {
		if root.Kind != "netem" || root.Netem == nil {
			return "root qdisc is " + root.Kind + ", not netem", nil
		}
		if d := netemDrift(root.Netem, s.Netem.attr()); d != "" {
			return "netem " + d, nil
		}
		tbfAt = child
		if s.TBF == nil {
			if child != nil {
				return "a tbf under netem nsnet no longer wants", nil
			}
			return "", nil
		}
	}
	if tbfAt == nil || tbfAt.Kind != "tbf" || tbfAt.Tbf == nil || tbfAt.Tbf.Parms == nil {
		return "nsnet's tbf is missing", nil
	}
	w := s.TBF.attr()
	got := tbfAt.Tbf.Parms
	if got.Rate.Rate != w.Parms.Rate.Rate {
		return fmt.Sprintf("tbf rate %d B/s, not %d", got.Rate.Rate, w.Parms.Rate.Rate), nil
	}
	if got.Limit != w.Parms.Limit {
		return fmt.Sprintf("tbf limit %d, not %d", got.Limit, w.Parms.Limit), nil
	}
	return "", nil
}

func netemDrift(got, want *tc.Netem) string {
	g, w := got.Qopt, want.Qopt
	switch {
	case g.Latency != w.Latency && !(got.Latency64 != nil && want.Latency64 != nil && *got.Latency64 == *want.Latency64):
		return "delay changed"
	case g.Jitter != w.Jitter && !(got.Jitter64 != nil && want.Jitter64 != nil && *got.Jitter64 == *want.Jitter64):
		return "jitter changed"
	case g.Limit != w.Limit:
		return "limit changed"
	case g.Loss != w.Loss:
		return "loss changed"
	case g.Duplicate != w.Duplicate:
		return "duplicate changed"
	}
	prob := func(r *tc.NetemReorder) uint32 {
		if r == nil {
			return 0
		}
		return r.Probability
	}
	if prob(got.Reorder) != prob(want.Reorder) {
		return "reorder changed"
	}
	corrupt := func(c *tc.NetemCorrupt) uint32 {
		if c == nil {
			return 0
		}
		return c.Probability
	}
	if corrupt(got.Corrupt) != corrupt(want.Corrupt) {
		return "corrupt changed"
	}
	return ""
}

// ChainsDrift compares the table's chains named in want with want and
// names the first difference ("" when they agree): a chain deleted, a rule
// deleted or added, or a rule's chance or verdict changed.
func (n *NFT) ChainsDrift(table string, want []FaultChain) (string, error) {
	for _, c := range want {
		if d, err := n.chainDrift(table, c); d != "" || err != nil {
			return d, err
		}
	}
	return "", nil
}

func (n *NFT) chainDrift(table string, c FaultChain) (string, error) {
	rules, err := n.c.GetRules(&nftables.Table{Name: table, Family: c.Family.nft()}, &nftables.Chain{Name: c.Name})
	if errors.Is(classify(err), fs.ErrNotExist) {
		return "chain " + c.Name + " is missing", nil
	}
	if err != nil {
		return "", &OpError{Op: "list rules " + c.Name, Name: n.name, Err: classify(err)}
	}
	var wantSigs []string
	for _, r := range c.Rules {
		f, err := faultExprs(c, r)
		if err != nil {
			return "", err
		}
		for range families(r.Src) {
			wantSigs = append(wantSigs, signature(f))
		}
	}
	var gotSigs []string
	for _, r := range rules {
		gotSigs = append(gotSigs, signature(r.Exprs))
	}
	if len(gotSigs) != len(wantSigs) {
		return fmt.Sprintf("chain %s has %d rules, not %d", c.Name, len(gotSigs), len(wantSigs)), nil
	}
	for i := range gotSigs {
		if gotSigs[i] != wantSigs[i] {
			return fmt.Sprintf("rule %d of chain %s changed", i+1, c.Name), nil
		}
	}
	return "", nil
}

// unchanged reports whether chain c is in the table with exactly c's rules,
// as far as a signature tells: only for rules without source addresses
// (whose sets it does not read back), so a partition's chain is always
// rewritten.
func (n *NFT) unchanged(table string, c FaultChain) bool {
	for _, r := range c.Rules {
		if len(r.Src) > 0 {
			return false
		}
	}
	d, err := n.chainDrift(table, c)
	return err == nil && d == ""
}

// families splits source addresses by family as addChain does: one rule
// per family, or one rule without a source match.
func families(src []netip.Addr) [][]netip.Addr {
	var v4, v6 []netip.Addr
	for _, a := range src {
		if a.Is4() {
			v4 = append(v4, a)
		} else {
			v6 = append(v6, a)
		}
	}
	var out [][]netip.Addr
	for _, f := range [][]netip.Addr{v4, v6} {
		if len(f) > 0 {
			out = append(out, f)
		}
	}
	if len(out) == 0 {
		out = [][]netip.Addr{nil}
	}
	return out
}

// signature writes the chance, verdict, marks, copy and queue of a rule.
// It skips what the library does not read back the same way (numgen's
// type, byteorder, counter, dup, the matches before them), so the
// expressions faultExprs makes for a rule serve as what is expected of it.
func signature(es []expr.Any) string {
	var b strings.Builder
	numgen := false
	for _, e := range es {
		switch x := e.(type) {
		case *expr.Numgen:
			numgen = true
			fmt.Fprintf(&b, "numgen %d;", x.Modulus)
		case *expr.Cmp:
			if numgen && x.Op == expr.CmpOpLt {
				fmt.Fprintf(&b, "< %s;", hex.EncodeToString(x.Data))
			}
		case *expr.Verdict:
			fmt.Fprintf(&b, "verdict %d;", x.Kind)
		case *expr.Bitwise:
			fmt.Fprintf(&b, "bitwise %s %s;", hex.EncodeToString(x.Mask), hex.EncodeToString(x.Xor))
		case *expr.Immediate:
			if x.Register != 0 {
				fmt.Fprintf(&b, "immediate %s;", hex.EncodeToString(x.Data))
			}
		case *expr.Target:
			info := fmt.Sprintf("%v", x.Info)
			if u, ok := x.Info.(*xt.Unknown); ok && len(*u) >= 2 {
				info = hex.EncodeToString((*u)[:2]) // the queue number
			}
			fmt.Fprintf(&b, "target %s %s;", x.Name, info)
		}
	}
	return b.String()
}

package backend

import (
	"errors"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nsnet/nsnet/fault"
)

var update = flag.Bool("update", false, "rewrite the golden transcripts")

// link is h1:eth0 (index 7) whose peer is sw:h1p (index 3) on a bridge.
func link() Link {
	return Link{End: fault.End{Node: "h1", Iface: "eth0"}, Dev: "eth0", Ifindex: 7, PeerNode: "sw", PeerDev: "h1p", PeerIfindex: 3}
}

var planCases = []string{
	"delay 50ms",
	"delay 20ms 5ms 25% distribution normal",
	"loss 30%",
	"loss 10% 25%",
	"loss gemodel 1% 25%",
	"duplicate 1%",
	"delay 10ms reorder 25%",
	"corrupt 0.1%",
	"rate 10mbit",
	"delay 20ms rate 100mbit",
	"rate 1gbit burst 64kb limit 1mb",
	"blackhole",
	"down",
	"delay 20ms 5ms loss 10% duplicate 1% reorder 25% corrupt 0.1% rate 10mbit",
}

// TestPlanTranscripts checks both backends' plans, without a kernel, as the
// tc / nft / ip lines that would make them.
func TestPlanTranscripts(t *testing.T) {
	for _, be := range []struct {
		name string
		caps Caps
	}{
		{"netem", AllCaps()},
		{"nonetem", AllCaps().Without(FeatNetem)},
	} {
		var b strings.Builder
		for _, c := range planCases {
			s, err := fault.ParseWords(strings.Fields(c))
			if err != nil {
				t.Fatal(err)
			}
			p, err := For(s, link(), be.caps)
			b.WriteString("# " + c + "\n")
			if err != nil {
				b.WriteString("refused: " + err.Error() + "\n\n")
				continue
			}
			b.WriteString("# backend " + p.Backend() + "\n")
			for _, l := range p.Lines("lab", link()) {
				b.WriteString(l + "\n")
			}
			b.WriteString("\n")
		}
		golden := filepath.Join("testdata", be.name+".txt")
		if *update {
			if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatal(err)
		}
		if b.String() != string(want) {
			t.Errorf("%s plan differs from %s (go test -update to accept):\n%s", be.name, golden, b.String())
		}
	}
}

func TestRefusals(t *testing.T) {
	bridged := link()
	bridged.Bridged = true
	host := link()
	host.Host = true
	for _, c := range []struct {
		spec string
		l    Link
		caps Caps
		want string
	}{
		{"delay 10ms", bridged, AllCaps().Without(FeatNetem), "h1:eth0: delay: not possible on this kernel: a bridge port's frames never reach the delayer; put the fault on the node's end of the link (sch_netem missing: install your distribution's extra kernel modules"},
		{"delay 10ms", link(), AllCaps().Without(FeatNetem, FeatNFQueue), "h1:eth0: delay: not possible on this kernel: no netem and no userspace delayer (NFQUEUE"},
		{"rate 10mbit", link(), AllCaps().Without(FeatTBF), "h1:eth0: rate: not possible on this kernel: no rate limiter (sch_tbf missing"},
		{"duplicate 1%", link(), AllCaps().Without(FeatNetem, FeatEgress), "h1:eth0: duplicate: not possible on this kernel: no netem and no nftables copy at the sender's egress (nftables netdev egress missing"},
		{"corrupt 1%", host, AllCaps().Without(FeatNetem), "h1:eth0: corrupt: not possible on this kernel: the delayer needs rules in the end's namespace, and this end is in the host's"},
	} {
		s, _ := fault.ParseWords(strings.Fields(c.spec))
		_, err := For(s, c.l, c.caps)
		var r *Refusal
		if !errors.As(err, &r) || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%s: got %v\nwant %s...", c.spec, err, c.want)
		}
	}
}

// TestPartitionLines: each receiving node drops what every address of the
// other side sends, link-local ones included, and lets neighbour discovery
// through; a one-way partition has rules only in the second group.
func TestPartitionLines(t *testing.T) {
	m := func(node string, addrs ...string) Member {
		mm := Member{Node: node}
		for _, a := range addrs {
			mm.Addrs = append(mm.Addrs, netip.MustParseAddr(a))
		}
		return mm
	}
	members := map[string]Member{
		"a": m("a", "10.0.0.1", "fd00::1", "fe80::1"),
		"b": m("b", "10.0.0.2"),
		"c": m("c", "10.0.0.3", "fe80::3"),
	}
	for _, c := range []struct {
		groups []string
		oneway bool
		want   []string
	}{
		{[]string{"a,b", "c"}, false, []string{
			"[a] nft add chain inet nsnet-l partition { type filter hook prerouting priority -300; }",
			"[a] nft add rule inet nsnet-l partition icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept",
			"[a] nft add rule inet nsnet-l partition ip saddr 10.0.0.3 counter drop",
			"[a] nft add rule inet nsnet-l partition ip6 saddr fe80::3 counter drop",
			"[b] nft add chain inet nsnet-l partition { type filter hook prerouting priority -300; }",
			"[b] nft add rule inet nsnet-l partition icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept",
			"[b] nft add rule inet nsnet-l partition ip saddr 10.0.0.3 counter drop",
			"[b] nft add rule inet nsnet-l partition ip6 saddr fe80::3 counter drop",
			"[c] nft add chain inet nsnet-l partition { type filter hook prerouting priority -300; }",
			"[c] nft add rule inet nsnet-l partition icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept",
			"[c] nft add rule inet nsnet-l partition ip saddr { 10.0.0.1, 10.0.0.2 } counter drop",
			"[c] nft add rule inet nsnet-l partition ip6 saddr { fd00::1, fe80::1 } counter drop",
		}},
		{[]string{"c", "b"}, true, []string{
			"[b] nft add chain inet nsnet-l partition { type filter hook prerouting priority -300; }",
			"[b] nft add rule inet nsnet-l partition icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept",
			"[b] nft add rule inet nsnet-l partition ip saddr 10.0.0.3 counter drop",
			"[b] nft add rule inet nsnet-l partition ip6 saddr fe80::3 counter drop",
		}},
		{[]string{"b", "b2"}, false, nil},
	} {
		if c.groups[1] == "b2" {
			members["b2"] = m("b2", "10.0.0.4")
		}
		p, err := fault.ParsePartition(c.groups, c.oneway)
		if err != nil {
			t.Fatal(err)
		}
		got := PartitionLines("l", p, members)
		if c.groups[1] == "b2" {
			// IPv4 only: no neighbour discovery to let through.
			for _, l := range got {
				if strings.Contains(l, "icmpv6") {
					t.Errorf("%v: %s", c.groups, l)
				}
			}
			continue
		}
		if strings.Join(got, "\n") != strings.Join(c.want, "\n") {
			t.Errorf("%v oneway %v:\n%s\nwant\n%s", c.groups, c.oneway, strings.Join(got, "\n"), strings.Join(c.want, "\n"))
		}
	}
}

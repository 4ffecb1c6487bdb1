package kernel_test

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/nsnet/nsnet/internal/sandbox"
	"github.com/nsnet/nsnet/kernel"
	"github.com/nsnet/nsnet/netns"
)

// BenchmarkListings reads a namespace of 2,001 links (1,000 veth pairs and
// lo), each pair's first end up with an address and so a prefix route, the
// way status, check and a second up read a busy namespace (the host's of a
// large lab). It uses only the Handle's listing methods, so that the same
// file measures an older kernel layer beside this one (see
// /work/measure/kl.sh).
func BenchmarkListings(b *testing.B) {
	sandbox.Require(b)
	ns, err := netns.New()
	if err != nil {
		b.Fatal(err)
	}
	defer ns.Close()
	h, err := kernel.Open(ns)
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close()
	const pairs = 1000
	for i := range pairs {
		a := fmt.Sprintf("la%d", i)
		if err := h.AddVeth(kernel.Veth{Name: a, Peer: fmt.Sprintf("lb%d", i)}); err != nil {
			b.Fatal(err)
		}
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 1}), 24)
		if err := h.AddAddr(a, p, kernel.AddrOptions{}); err != nil {
			b.Fatal(err)
		}
		if err := h.SetUp(a); err != nil {
			b.Fatal(err)
		}
	}
	count := func(b *testing.B, n, want int) {
		if n < want {
			b.Fatalf("%d objects, want at least %d", n, want)
		}
	}
	b.ResetTimer()
	b.Run("links", func(b *testing.B) {
		for range b.N {
			ls, err := h.Links()
			if err != nil {
				b.Fatal(err)
			}
			count(b, len(ls), 2*pairs+1)
		}
	})
	b.Run("addrs", func(b *testing.B) {
		for range b.N {
			as, err := h.Addrs()
			if err != nil {
				b.Fatal(err)
			}
			count(b, len(as), pairs)
		}
	})
	b.Run("links+addrs", func(b *testing.B) {
		for range b.N {
			ls, err := h.Links()
			if err != nil {
				b.Fatal(err)
			}
			as, err := h.Addrs()
			if err != nil {
				b.Fatal(err)
			}
			count(b, len(ls)+len(as), 3*pairs+1)
		}
	})
	b.Run("routes", func(b *testing.B) {
		for range b.N {
			rs, err := h.Routes()
			if err != nil {
				b.Fatal(err)
			}
			count(b, len(rs), pairs)
		}
	})
	b.Run("link-by-name", func(b *testing.B) {
		for i := range b.N {
			if _, err := h.LinkByName(fmt.Sprintf("lb%d", i%pairs)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

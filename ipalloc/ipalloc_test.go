package ipalloc_test

import (
	"errors"
	"fmt"
	"net/netip"
	"testing"

	"github.com/nsnet/nsnet/ipalloc"
)

func TestHosts(t *testing.T) {
	for _, tc := range []struct {
		subnet, first, last string
		size                uint64
	}{
		{"10.0.0.0/24", "10.0.0.1", "10.0.0.254", 254},
		{"10.0.0.7/24", "10.0.0.1", "10.0.0.254", 254}, // host bits ignored
		{"10.0.0.0/30", "10.0.0.1", "10.0.0.2", 2},
		{"10.0.0.0/31", "10.0.0.0", "10.0.0.1", 2},
		{"10.0.0.9/32", "10.0.0.9", "10.0.0.9", 1},
		{"10.0.0.0/8", "10.0.0.1", "10.255.255.254", 1<<24 - 2},
		{"fd00::/120", "fd00::1", "fd00::ff", 255},
		{"fd00::/64", "fd00::1", "fd00::ffff:ffff:ffff:ffff", 1 << 62},
		{"fd00::/127", "fd00::1", "fd00::1", 1},
		{"fd00::/128", "", "", 0},
	} {
		r := ipalloc.Hosts(netip.MustParsePrefix(tc.subnet))
		first, last := "", ""
		if !r.Empty() {
			first, last = r.First.String(), r.Last.String()
		}
		if first != tc.first || last != tc.last || r.Size() != tc.size {
			t.Errorf("Hosts(%s) = %s..%s (%d), want %s..%s (%d)", tc.subnet, first, last, r.Size(), tc.first, tc.last, tc.size)
		}
	}
}

func TestSkipOffsetContains(t *testing.T) {
	r := ipalloc.Hosts(netip.MustParsePrefix("10.0.0.0/24")).Skip(1) // the gateway
	if r.First != netip.MustParseAddr("10.0.0.2") || r.Size() != 253 {
		t.Errorf("skip 1: %s..%s (%d)", r.First, r.Last, r.Size())
	}
	if !r.Contains(netip.MustParseAddr("10.0.0.254")) || r.Contains(netip.MustParseAddr("10.0.0.1")) || r.Contains(netip.MustParseAddr("10.0.0.255")) || r.Contains(netip.MustParseAddr("::ffff:10.0.0.5")) {
		t.Error("Contains disagrees with the range")
	}
	if !r.Skip(253).Empty() {
		t.Error("skipping every address leaves an address")
	}
	for _, tc := range []struct {
		first string
		off   uint64
		want  string
	}{
		{"10.0.0.2", 0, "10.0.0.2"},
		{"10.0.0.2", 254, "10.0.1.0"},
		{"10.0.0.2", 1 << 16, "10.1.0.2"},
		{"fd00::2", 1 << 40, "fd00::100:0:2"},
		{"fd00::ffff:ffff:ffff:ffff", 1, "fd00:0:0:1::"},
	} {
		r := ipalloc.Range{First: netip.MustParseAddr(tc.first)}
		if got := r.Offset(tc.off); got != netip.MustParseAddr(tc.want) {
			t.Errorf("%s + %d = %s, want %s", tc.first, tc.off, got, tc.want)
		}
	}
}

func TestClaim(t *testing.T) {
	r := ipalloc.Hosts(netip.MustParsePrefix("10.0.0.0/29")) // .1 to .6
	taken := map[netip.Addr]bool{}
	take := func(a netip.Addr) (bool, error) {
		if taken[a] {
			return false, nil
		}
		taken[a] = true
		return true, nil
	}
	// From a start near the end, wrapping round to the beginning.
	var got []string
	for range 6 {
		a, err := r.Claim(netip.MustParseAddr("10.0.0.5"), take)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, a.String())
	}
	if fmt.Sprint(got) != "[10.0.0.5 10.0.0.6 10.0.0.1 10.0.0.2 10.0.0.3 10.0.0.4]" {
		t.Errorf("claims in order %v", got)
	}
	if _, err := r.Claim(r.First, take); !errors.Is(err, ipalloc.ErrFull) {
		t.Errorf("full range: %v, want ErrFull", err)
	}
	// A start outside the range begins at First; an error stops the walk.
	boom := errors.New("boom")
	if _, err := r.Claim(netip.MustParseAddr("192.0.2.1"), func(a netip.Addr) (bool, error) {
		if a != r.First {
			t.Errorf("walk began at %s", a)
		}
		return false, boom
	}); !errors.Is(err, boom) {
		t.Errorf("claim error: %v", err)
	}
	if _, err := ipalloc.Hosts(netip.MustParsePrefix("fd00::/128")).Claim(netip.Addr{}, take); !errors.Is(err, ipalloc.ErrFull) {
		t.Errorf("empty range: %v, want ErrFull", err)
	}
}

func TestStartFor(t *testing.T) {
	r := ipalloc.Hosts(netip.MustParsePrefix("fd00::/64"))
	a, b := r.StartFor("c1:eth0"), r.StartFor("c1:eth0")
	if a != b || !r.Contains(a) {
		t.Errorf("StartFor: %s then %s, in range %v", a, b, r.Contains(a))
	}
	if r.StartFor("c2:eth0") == a {
		t.Error("two keys start at the same address")
	}
}

// FuzzRange: for any subnet, Hosts is inside it, Claim hands out distinct
// addresses of the range, and Size agrees with what Claim can hand out.
func FuzzRange(f *testing.F) {
	f.Add([]byte{10, 0, 0, 0}, uint8(29), uint16(3))
	f.Add([]byte{0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, uint8(125), uint16(0))
	f.Fuzz(func(t *testing.T, addr []byte, bits uint8, start uint16) {
		a, ok := netip.AddrFromSlice(addr)
		if !ok || int(bits) > a.BitLen() || a.BitLen()-int(bits) > 10 {
			return // small subnets only: the test walks them whole
		}
		p := netip.PrefixFrom(a, int(bits))
		r := ipalloc.Hosts(p)
		seen := map[netip.Addr]bool{}
		from := r.Offset(uint64(start) % max(r.Size(), 1))
		for {
			got, err := r.Claim(from, func(a netip.Addr) (bool, error) { return !seen[a], nil })
			if errors.Is(err, ipalloc.ErrFull) {
				break
			}
			if err != nil || !p.Contains(got) || !r.Contains(got) || seen[got] {
				t.Fatalf("%s: claimed %s (%v), seen %v", p, got, err, seen[got])
			}
			seen[got] = true
		}
		if uint64(len(seen)) != r.Size() {
			t.Fatalf("%s: handed out %d, Size %d", p, len(seen), r.Size())
		}
	})
}

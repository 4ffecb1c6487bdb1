package lab_test

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/nsnet/nsnet/lab"
)

// TestNeighboursManyRoutes: a host end's neighbours are its peer's address
// and the destinations of the host's routes through it that are addresses of
// the peer's node (its second address, on another link), whether the host
// has a few routes (read in place) or many (the planner's maps).
func TestNeighboursManyRoutes(t *testing.T) {
	for _, n := range []int{3, 40} {
		var b strings.Builder
		fmt.Fprintf(&b, "lab: nb\nnodes:\n  host:\n    routes:\n")
		for k := range n {
			fmt.Fprintf(&b, "      - {to: 10.1.%d.2/32, dev: v%d}\n      - {to: 10.2.%d.2/32, dev: v%d}\n", k, k, k, k)
		}
		for k := range n {
			fmt.Fprintf(&b, "  n%d: {}\n", k)
		}
		b.WriteString("links:\n")
		for k := range n {
			fmt.Fprintf(&b, "  - {a: {node: n%d, name: eth0, addresses: [10.1.%d.2/32]}, b: {node: host, name: v%d, addresses: [10.0.0.1/32]}}\n", k, k, k)
			fmt.Fprintf(&b, "  - {a: {node: n%d, name: eth1, addresses: [10.2.%d.2/32]}, b: {node: host, name: w%d, addresses: [10.0.0.1/32]}}\n", k, k, k)
		}
		l, err := lab.Parse("nb.yaml", []byte(b.String()))
		if err != nil {
			t.Fatal(err)
		}
		for k := range n {
			i := l.Node(lab.HostNode).Interface(fmt.Sprintf("v%d", k))
			want := []netip.Addr{netip.MustParseAddr(fmt.Sprintf("10.1.%d.2", k)), netip.MustParseAddr(fmt.Sprintf("10.2.%d.2", k))}
			if got := lab.Neighbours(i); !slices.Equal(got, want) {
				t.Errorf("%d routes: neighbours of %s = %v, want %v", 2*n, i.Name, got, want)
			}
			node := l.Node(fmt.Sprintf("n%d", k)).Interface("eth0")
			if got, want := lab.Neighbours(node), []netip.Addr{netip.MustParseAddr("10.0.0.1")}; !slices.Equal(got, want) {
				t.Errorf("neighbours of n%d:eth0 = %v, want %v", k, got, want)
			}
		}
	}
}

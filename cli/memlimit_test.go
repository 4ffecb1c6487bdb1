package cli

import (
	"fmt"
	"strings"
	"testing"

	"github.com/nsnet/nsnet/lab"
)

// TestMemoryLimit: small labs get the floor; the limit grows with the file
// and with the resolved lab, whichever says more, so a big lab keeps the
// collector's headroom instead of running it without end.
func TestMemoryLimit(t *testing.T) {
	for _, c := range []struct {
		size    int64
		objects int
		want    int64
	}{
		{0, 0, memoryLimitFloor},
		{100 << 10, 500, memoryLimitFloor},
		{8 << 20, 0, 128 << 20},
		{0, 200_000, 150_000_000},
		{8 << 20, 200_000, 150_000_000},
	} {
		if got := memoryLimit(c.size, c.objects); got != c.want {
			t.Errorf("memoryLimit(%d, %d) = %d, want %d", c.size, c.objects, got, c.want)
		}
	}
}

// TestLabObjects counts nodes (the host among them), interfaces and routes
// of a resolved lab.
func TestLabObjects(t *testing.T) {
	var b strings.Builder
	b.WriteString("lab: count\nnodes:\n  host: {}\n")
	for i := range 3 {
		fmt.Fprintf(&b, "  n%d:\n    routes: [{to: default, via: 10.0.%d.1}]\n", i, i)
	}
	b.WriteString("links:\n")
	for i := range 3 {
		fmt.Fprintf(&b, "  - {a: {node: n%d, name: eth0, addresses: [10.0.%d.2/24]}, b: {node: host, name: v%d, addresses: [10.0.%d.1/24]}}\n", i, i, i, i)
	}
	l, err := lab.Parse("count.yaml", []byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := labObjects(l), 4+6+3; got != want {
		t.Errorf("labObjects = %d, want %d (4 nodes, 6 interfaces, 3 routes)", got, want)
	}
}

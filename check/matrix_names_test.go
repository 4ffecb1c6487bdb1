package check

import (
	"strings"
	"testing"
)

// TestMatrixLongNames: a column is headed by its node's full name, however
// long (never a #N placeholder).
func TestMatrixLongNames(t *testing.T) {
	m := Matrix{Nodes: []string{"router", "h1"}, Reach: [][]bool{{false, true}, {false, false}}, Err: [][]error{{nil, nil}, {nil, nil}}}
	var b strings.Builder
	if err := m.Write(&b); err != nil {
		t.Fatal(err)
	}
	want := "from\\to router     h1\nrouter       .     ok\nh1          --      .\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

package lab_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nsnet/nsnet/internal/echo"
	"github.com/nsnet/nsnet/lab"
)

// FuzzParse: any input is either a lab that plans and renders, or located
// errors; never a panic, never an unlocated error. The corpus in
// testdata/fuzz/FuzzParse adds shapes the examples lack.
func FuzzParse(f *testing.F) {
	for _, name := range []string{"seed", "two-lans", "routed"} {
		b, err := os.ReadFile(filepath.Join("..", "examples", name+".yaml"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, bl := range badLabs() {
		if len(bl.file) < 4096 {
			f.Add([]byte(bl.file))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := lab.Parse("f.yaml", data)
		if err != nil {
			var inv *lab.InvalidError
			if !errors.As(err, &inv) || len(inv.Errs) == 0 {
				t.Fatalf("error without locations: %v", err)
			}
			for _, fe := range inv.Errs {
				if fe.Line < 1 || fe.Col < 1 || !strings.HasPrefix(fe.Error(), "f.yaml:") {
					t.Fatalf("badly located: %q", fe.Error())
				}
				// Values are echoed short, and paths are made of them.
				if len(fe.Error()) > echo.MaxLine+512 {
					t.Fatalf("a message of %d bytes: %.200q...", len(fe.Error()), fe.Error())
				}
			}
			return
		}
		// Nothing outside the network namespace's own tree is accepted
		// (the kernel decides the rest, at plan and up).
		for _, n := range l.Nodes {
			for _, sc := range n.Sysctls {
				if !strings.HasPrefix(sc.Key, "net.") {
					t.Fatalf("node %s may set %s", n.Name, sc.Key)
				}
			}
		}
		p, err := lab.PlanUp(l, &lab.State{})
		if err != nil {
			t.Fatalf("a valid lab does not plan from nothing: %v", err)
		}
		var b strings.Builder
		if err := p.Write(&b); err != nil {
			t.Fatal(err)
		}
		// A lab fully up needs nothing more.
		if p2, err := lab.PlanUp(l, upState(l)); err != nil || !p2.Empty() {
			t.Fatalf("a lab that is up needs more: %v\n%s", err, render(t, p2))
		}
	})
}

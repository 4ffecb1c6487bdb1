package lab_test

import (
	"strings"
	"testing"

	"github.com/nsnet/nsnet/lab"
)

// TestGeneratedTopologies: a ring (routes the shorter way round) and a
// small clos (routes through a spine), printed by nsnet new, come up as
// written and every node reaches every other node's address; check --all
// agrees; down leaves nothing.
func TestGeneratedTopologies(t *testing.T) {
	for _, shape := range [][]string{{"ring", "4"}, {"clos", "2", "2", "1"}} {
		t.Run(strings.Join(shape, "-"), func(t *testing.T) {
			e := newEnv(t)
			before := e.snap()
			text := e.must(append([]string{"new"}, shape...)...)
			l, err := lab.Parse("gen.yaml", []byte(text))
			if err != nil {
				t.Fatal(err)
			}
			file := e.write(l.Name+".yaml", text)
			e.must("up", file)
			for _, from := range l.Nodes {
				for _, to := range l.Nodes {
					if from != to && !from.IsHost() && !to.IsHost() {
						e.mustPing(l.Name, from.Name, to.FirstAddr().String())
					}
				}
			}
			if r := e.run("check", "--all", l.Name); r.code != 0 {
				t.Errorf("check --all: exit %d\n%s%s", r.code, r.out, r.err)
			}
			e.must("down", l.Name)
			e.sameAs(before, "after down")
		})
	}
}

package lab

import (
	"strconv"
	"testing"
)

// TestLinkIndexes: the same answers as a map through the change from a
// slice to a map past fewLinks, with replaced and deleted names, and the
// loopback known without being stored.
func TestLinkIndexes(t *testing.T) {
	var x linkIndexes
	want := map[string]int{}
	check := func(when string) {
		t.Helper()
		for name, i := range want {
			if got, ok := x.get(name); !ok || got != i {
				t.Errorf("%s: %s = %d, %v; want %d", when, name, got, ok, i)
			}
		}
		if _, ok := x.get("none"); ok {
			t.Errorf("%s: a name never set is found", when)
		}
		if i, ok := x.get("lo"); !ok || i != loIndex {
			t.Errorf("%s: lo = %d, %v", when, i, ok)
		}
	}
	x.set("lo", 7) // not stored: lo is loIndex everywhere
	for k := range 3 * fewLinks {
		name := "eth" + strconv.Itoa(k)
		x.set(name, 100+k)
		want[name] = 100 + k
		if k%3 == 0 {
			x.set(name, 200+k)
			want[name] = 200 + k
		}
		if k%4 == 1 {
			x.del(name)
			delete(want, name)
			if _, ok := x.get(name); ok {
				t.Errorf("%s found after its deletion", name)
			}
		}
		check("after " + name)
		if k < fewLinks-2 && x.many != nil {
			t.Errorf("a map with %d links", len(want))
		}
	}
	if x.many == nil {
		t.Errorf("no map with %d links", len(want))
	}
}

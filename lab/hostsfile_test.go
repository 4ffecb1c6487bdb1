package lab

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nsnet/nsnet/lab/ledger"
)

type memLedger struct{ writes int }

func (m *memLedger) Write(*ledger.Ledger) error { m.writes++; return nil }

// TestSharedHostsFile: a lab above sharedHostsAbove nodes writes one hosts
// file naming every node and links it into each node's directory, so its
// cost grows with the nodes, not with their square; drift is repaired and
// told as for files of their own.
func TestSharedHostsFile(t *testing.T) {
	var b strings.Builder
	b.WriteString("lab: big\nnodes:\n")
	const pairs = 40 // 80 nodes
	for i := 0; i < 2*pairs; i++ {
		fmt.Fprintf(&b, "  n%d: {}\n", i)
	}
	b.WriteString("links:\n")
	for i := 0; i < pairs; i++ {
		fmt.Fprintf(&b, "  - {a: {node: n%d, name: eth0, addresses: [10.0.%d.1/30]}, b: {node: n%d, name: eth0, addresses: [10.0.%d.2/30]}}\n", 2*i, i, 2*i+1, i)
	}
	l, err := Parse("big.yaml", []byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	if !sharedHosts(l) {
		t.Fatalf("%d nodes do not share a hosts file", len(l.Nodes))
	}
	etc := t.TempDir()
	led := &ledger.Ledger{}
	w := &memLedger{}
	if err := syncHosts(l, led, w, etc); err != nil {
		t.Fatal(err)
	}
	if len(led.Files) != 2*pairs || w.writes != 1 {
		t.Fatalf("%d files recorded in %d writes", len(led.Files), w.writes)
	}
	first, err := os.Stat(led.Files[0].Path)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range led.Files {
		fi, err := os.Stat(f.Path)
		if err != nil || !os.SameFile(fi, first) {
			t.Fatalf("%s is not the shared file: %v", f.Path, err)
		}
	}
	data, _ := os.ReadFile(led.Files[0].Path)
	for _, want := range []string{"10.0.0.1\tn0 n0.big\n", "10.0.39.2\tn79 n79.big\n", hostsHeader + "big, every node"} {
		if !bytes.Contains(data, []byte(want)) {
			t.Errorf("shared hosts file lacks %q:\n%s", want, data)
		}
	}
	if d := hostsDrift(l, led); len(d) != 0 {
		t.Errorf("drift right after sync: %v", d)
	}

	// Drift: one node's file replaced by a copy that differs, another
	// removed. Both are told, and a sync puts the links back.
	p5 := HostsPath(etc, l.Node("n5").Netns)
	os.Remove(p5)
	os.WriteFile(p5, []byte(hostsHeader+"big, edited\n"), 0o644)
	os.Remove(HostsPath(etc, l.Node("n6").Netns))
	d := hostsDrift(l, led)
	if len(d) != 2 || !strings.Contains(strings.Join(d, ","), "n5: hosts file changed") || !strings.Contains(strings.Join(d, ","), "n6: hosts file missing") {
		t.Errorf("drift: %v", d)
	}
	if d := hostsDrift(nil, led); len(d) != 1 {
		t.Errorf("drift without the lab (headers only): %v", d)
	}
	if err := syncHosts(l, led, w, etc); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"n5", "n6"} {
		fi, err := os.Stat(HostsPath(etc, l.Node(n).Netns))
		if err != nil || !os.SameFile(fi, first) {
			t.Errorf("%s not linked again: %v", n, err)
		}
	}
	if d := hostsDrift(l, led); len(d) != 0 {
		t.Errorf("drift after repair: %v", d)
	}
	if err := removeHosts(led, w); err != nil {
		t.Fatal(err)
	}
	if left, _ := filepath.Glob(filepath.Join(etc, "*")); len(left) != 0 {
		t.Errorf("left after removal: %v", left)
	}
}

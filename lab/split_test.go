package lab

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/nsnet/nsnet/bench"
)

// TestSplitReadsAsWhole: a file read in pieces gives the spec and the
// problems (with their positions) of the same file read whole, and a file
// the splitter must not cut is read whole.
func TestSplitReadsAsWhole(t *testing.T) {
	cases := map[string][]byte{
		"ptp":      bench.LabYAML(bench.Workload{Mode: bench.PTP, N: 50, Prefix: "b"}),
		"bridge":   bench.LabYAML(bench.Workload{Mode: bench.Bridge, N: 50, Prefix: "b"}),
		"problems": []byte("lab: x\nnodes:\n  # first\n  a:\n    interfaces: {eth0: {addrs: [10.0.0.1/24]}}\n  a:\n    bogus: 1\n  b: {}\nlinks:\n  - {a: a:eth0, b: b:eth0}\n  - nope\n  - {a: b:x}\n"),
	}
	files, _ := filepath.Glob("../examples/*.yaml")
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		cases[f] = data
	}
	for name, data := range cases {
		sp, ok := splitFile(data)
		if !ok {
			t.Errorf("%s: not split", name)
			continue
		}
		pieces := &parser{problems{file: "f"}}
		got, err := pieces.read(sp.skeleton, sp)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		whole := &parser{problems{file: "f"}}
		want, _ := whole.read(data, nil)
		if msg(pieces.err()) != msg(whole.err()) {
			t.Errorf("%s: read in pieces:\n%s\nread whole:\n%s", name, msg(pieces.err()), msg(whole.err()))
		} else if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: read in pieces differs from read whole", name)
		}
	}
	for _, whole := range []string{
		"lab: x\nnodes: {a: {}}\n",                // flow style
		"---\nlab: x\nnodes:\n  a: {}\n",          // a document marker
		"lab: x\nnodes:\n  a: {}\n b: {}\n",       // an entry out of line
		"lab: x\nnodes:\n  a: {}\nnodes:\n  b:\n", // the section twice
	} {
		if _, ok := splitFile([]byte(whole)); ok {
			t.Errorf("split %q", whole)
		}
	}
	// A piece the YAML library rejects sends the file to be read whole, with
	// the whole file's message.
	_, pr := parseSpec("f", []byte("lab: x\nnodes:\n  a: {\n  b: {}\n"))
	if err := pr.err(); err == nil || !reflect.DeepEqual(err.Error(), mustWhole(t, "lab: x\nnodes:\n  a: {\n  b: {}\n")) {
		t.Errorf("syntax error: %v", err)
	}
}

func msg(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func mustWhole(t *testing.T, text string) string {
	t.Helper()
	p := &parser{problems{file: "f"}}
	p.read([]byte(text), nil)
	if err := p.err(); err != nil {
		return err.Error()
	}
	return ""
}

// TestNameInFile: down FILE reads the lab's name from the skeleton of a file
// that splits, wherever the key stands, and from the whole file otherwise.
func TestNameInFile(t *testing.T) {
	dir := t.TempDir()
	for name, text := range map[string]string{
		"ptp":   string(bench.LabYAML(bench.Workload{Mode: bench.PTP, N: 50, Prefix: "b"})),
		"after": "nodes:\n  a: {}\n  b: {}\nlinks:\n  - {a: {node: a, name: e0}, b: {node: b, name: e0}}\nlab: after\n",
		"flow":  "{lab: flow, nodes: {a: {}}}\n",
	} {
		path := filepath.Join(dir, name+".yaml")
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		want := name
		if name == "ptp" {
			want = "benchb"
		}
		if got, err := nameInFile(path); err != nil || got != want {
			t.Errorf("%s: name %q, %v; want %q", name, got, err, want)
		}
	}
}

// batchFile is a file of n nodes and n links whose entry bad (counted from
// 0) of each section has an unknown field, and the line of that node's bad
// key.
func batchFile(n, bad int) (text string, line int) {
	var b strings.Builder
	b.WriteString("lab: x\nnodes:\n")
	lines := 2
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "  n%d:\n    routes:\n      - {to: 10.0.0.0/8, dev: e0}\n", i)
		lines += 3
		if i == bad {
			b.WriteString("    bogus: 1\n")
			lines++
			line = lines
		}
	}
	b.WriteString("links:\n")
	for i := 0; i < n; i++ {
		if i == bad {
			fmt.Fprintf(&b, "  - {a: {node: n%d, name: e0, bogus: 2}, b: {node: n%d, name: e1}}\n", i, (i+1)%n)
			continue
		}
		fmt.Fprintf(&b, "  - {a: {node: n%d, name: e0}, b: {node: n%d, name: e1}}\n", i, (i+1)%n)
	}
	return b.String(), line
}

// TestSplitBatches: entries are decoded in batches of many, and a problem in
// the 40th entry of a batch (or the 70th entry of the file, in the second
// batch) is said at its place in the file, as when the file is read whole.
func TestSplitBatches(t *testing.T) {
	for _, bad := range []int{39, 69} {
		text, line := batchFile(150, bad)
		sp, ok := splitFile([]byte(text))
		if !ok {
			t.Fatal("not split")
		}
		if n := len(batches(sp.entries["nodes"])); n < 3 || n > 10 {
			t.Errorf("150 nodes in %d batches, want 3 to 10", n)
		}
		if n := len(batches(sp.entries["links"])); n < 3 {
			t.Errorf("150 links in %d batches, want 3 or more", n)
		}
		pieces := &parser{problems{file: "f"}}
		got, err := pieces.read(sp.skeleton, sp)
		if err != nil {
			t.Fatalf("bad %d: %v", bad, err)
		}
		whole := &parser{problems{file: "f"}}
		want, _ := whole.read([]byte(text), nil)
		if msg(pieces.err()) != msg(whole.err()) {
			t.Errorf("bad %d: read in batches:\n%s\nread whole:\n%s", bad, msg(pieces.err()), msg(whole.err()))
		} else if !reflect.DeepEqual(got, want) {
			t.Errorf("bad %d: read in batches differs from read whole", bad)
		}
		if len(got.Nodes) != 150 || len(got.Links) != 150 {
			t.Errorf("bad %d: %d nodes, %d links, want 150 each", bad, len(got.Nodes), len(got.Links))
		}
		// lab, nodes, the nodes' 3 lines each and the bad key, links.
		linkLine := 2 + 3*150 + 1 + 1 + bad + 1
		linkCol := len(fmt.Sprintf("  - {a: {node: n%d, name: e0, ", bad)) + 1
		wantMsg := fmt.Sprintf("f:%d:5: nodes.n%d.bogus: unknown field \"bogus\" (known: netns, routes, sysctls, processes, responders, host, count)\n"+
			"f:%d:%d: links[%d].a.bogus: unknown field \"bogus\" (known: node, bridge, name, addresses, faults)", line, bad, linkLine, linkCol, bad)
		if m := msg(pieces.err()); m != wantMsg {
			t.Errorf("bad %d:\n%s\nwant\n%s", bad, m, wantMsg)
		}
	}
}

// TestSplitBatchRejected: a batch the YAML library reads as other than the
// entries the splitter found (here a quoted string over two lines, the
// second of which looks like an entry), or cannot read at all (a syntax
// error in the 40th entry), sends the file to be read whole, with the whole
// file's result.
func TestSplitBatchRejected(t *testing.T) {
	text, _ := batchFile(100, -1)
	at := strings.Index(text, "  n39:\n")
	for name, insert := range map[string]string{
		"two lines": "  q: \"x\n  r: y\"\n",
		"syntax":    "  q: {\n",
	} {
		file := text[:at] + insert + text[at:]
		sp, ok := splitFile([]byte(file))
		if !ok {
			t.Fatalf("%s: not split", name)
		}
		if _, err := (&parser{problems{file: "f"}}).read(sp.skeleton, sp); err != errWhole {
			t.Errorf("%s: read in batches: %v, want errWhole", name, err)
		}
		s, pr := parseSpec("f", []byte(file))
		if got, want := msg(pr.err()), mustWhole(t, file); got != want {
			t.Errorf("%s: %s\nwant %s", name, got, want)
		}
		if name == "two lines" && (s == nil || len(s.Nodes) != 101) {
			t.Errorf("%s: not read whole", name)
		}
	}
}

// FuzzSplit: whenever a file is read in batches, the spec and every message
// are those of the file read whole.
func FuzzSplit(f *testing.F) {
	files, _ := filepath.Glob("../examples/*.yaml")
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	text, _ := batchFile(70, 40)
	f.Add([]byte(text))
	f.Add(bench.LabYAML(bench.Workload{Mode: bench.PTP, N: 70, Prefix: "b"}))
	f.Fuzz(func(t *testing.T, data []byte) {
		sp, ok := splitFile(data)
		if !ok {
			return
		}
		pieces := &parser{problems{file: "f"}}
		got, err := pieces.read(sp.skeleton, sp)
		if err != nil {
			return // read whole instead
		}
		whole := &parser{problems{file: "f"}}
		want, _ := whole.read(data, nil)
		if msg(pieces.err()) != msg(whole.err()) {
			t.Fatalf("read in batches:\n%s\nread whole:\n%s", msg(pieces.err()), msg(whole.err()))
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("read in batches differs from read whole")
		}
	})
}

package lab

import (
	"os"
	"path/filepath"
	"reflect"
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

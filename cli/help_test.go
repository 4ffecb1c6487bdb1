package cli

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden help texts in testdata/help")

// TestHelpGolden: each command's and verb's help is a file in
// testdata/help, so a change to a flag or a text shows in review. Run with
// -update after changing the command table.
func TestHelpGolden(t *testing.T) {
	check := func(name string, got []byte) {
		t.Helper()
		path := filepath.Join("testdata", "help", name+".txt")
		if *update {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, got, 0o644); err != nil {
				t.Fatal(err)
			}
			return
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test ./cli -run TestHelpGolden -update)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("help of %s differs from %s (run with -update if the change is meant):\n%s", name, path, got)
		}
	}
	var b bytes.Buffer
	writeOverview(&b)
	check("nsnet", b.Bytes())
	files := map[string]bool{"nsnet.txt": true}
	for _, s := range commands() {
		if s.hidden {
			continue
		}
		b.Reset()
		writeHelp(&b, s, nil)
		check(s.name, b.Bytes())
		files[s.name+".txt"] = true
		for _, v := range s.verbs {
			if v.missing || v.hidden || v.name == "help" {
				continue
			}
			b.Reset()
			writeHelp(&b, s, v)
			check(s.name+"_"+v.name, b.Bytes())
			files[s.name+"_"+v.name+".txt"] = true
		}
	}
	ents, _ := os.ReadDir(filepath.Join("testdata", "help"))
	for _, e := range ents {
		if !files[e.Name()] {
			if *update {
				os.Remove(filepath.Join("testdata", "help", e.Name()))
				continue
			}
			t.Errorf("testdata/help/%s is the help of no command (run with -update)", e.Name())
		}
	}
}

// TestEveryCommandIsDescribed: nothing in the table lacks what help shows.
func TestEveryCommandIsDescribed(t *testing.T) {
	for _, s := range commands() {
		if s.hidden {
			continue
		}
		if s.group == "" || s.summary == "" || s.help == "" {
			t.Errorf("%s: needs a group, a summary and a help text", s.name)
		}
		leaves := []*cmdSpec{s}
		if len(s.verbs) > 0 {
			leaves = nil
			if s.verb(s.dflt) == nil {
				t.Errorf("%s: default verb %q is not one of its verbs", s.name, s.dflt)
			}
			for _, v := range s.verbs {
				if !v.missing && !v.hidden && v.name != "help" {
					leaves = append(leaves, v)
				}
			}
		}
		for _, l := range leaves {
			if l.summary == "" || l.help == "" || len(l.examples) == 0 {
				t.Errorf("%s %s: needs a summary, a help text and an example", s.name, l.name)
			}
			for _, ex := range l.examples {
				words := strings.Fields(ex)
				// Examples must parse (those with quoting are shell lines).
				if strings.ContainsAny(ex, "'\"$>~") {
					continue
				}
				if c, err := Parse(words); err != nil || c.Object == "help" && words[0] != "help" && !strings.Contains(ex, "-help") && !strings.Contains(ex, "--help") {
					t.Errorf("example %q of %s: %v", ex, s.name, err)
				}
			}
		}
	}
}

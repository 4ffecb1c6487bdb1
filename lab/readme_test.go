package lab_test

import (
	"os"
	"strings"
	"testing"

	"github.com/nsnet/nsnet/lab"
)

// TestReadmeExample: the lab file in README's lab section is valid and
// plans.
func TestReadmeExample(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(b), "### The lab file")
	if !ok {
		t.Fatal(`no "### The lab file" section in README.md`)
	}
	_, rest, ok := strings.Cut(sec, "```yaml\n")
	if !ok {
		t.Fatal("no yaml block in README's lab file section")
	}
	text, _, _ := strings.Cut(rest, "```")
	l, err := lab.Parse("README.md", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	web := l.Node("web")
	if web == nil || web.Netns != "web_netns" || len(web.Addresses()) != 2 || web.Addresses()[0].String() != "10.1.0.2/24" {
		t.Errorf("web: %+v", web)
	}
	if _, err := lab.PlanUp(l, &lab.State{}); err != nil {
		t.Fatal(err)
	}
}

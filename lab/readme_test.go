package lab_test

import (
	"os"
	"strings"
	"testing"

	"github.com/nsnet/nsnet/lab"
)

// TestReadmeExample: the lab file in the README section is valid and plans.
func TestReadmeExample(t *testing.T) {
	b, err := os.ReadFile("README-section.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "```yaml\n")
	if !ok {
		t.Fatal("no yaml block in README-section.md")
	}
	text, _, _ := strings.Cut(rest, "```")
	l, err := lab.Parse("README-section.md", []byte(text))
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

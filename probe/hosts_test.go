package probe_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/nsnet/nsnet/probe"
)

func TestLookupHosts(t *testing.T) {
	p := filepath.Join(t.TempDir(), "hosts")
	os.WriteFile(p, []byte("# c\n127.0.0.1 localhost\n10.1.0.2\th1 h1.lab # comment\nfd00::2 h1\nbad line\n::ffff:10.0.0.9 m\n"), 0o644)
	for name, want := range map[string]string{"h1": "10.1.0.2", "H1.LAB": "10.1.0.2", "localhost": "127.0.0.1", "m": "10.0.0.9"} {
		a, err := probe.LookupHosts(p, name)
		if err != nil || a.String() != want {
			t.Errorf("%s: %v %v, want %s", name, a, err, want)
		}
	}
	if _, err := probe.LookupHosts(p, "comment"); !errors.Is(err, probe.ErrNoSuchHost) {
		t.Errorf("a comment resolved: %v", err)
	}
	if _, err := probe.LookupHosts(p+"x", "h1"); !errors.Is(err, probe.ErrNoSuchHost) {
		t.Errorf("missing file: %v", err)
	}
}

package lab_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nsnet/nsnet/fault/backend"
	"github.com/nsnet/nsnet/lab/faults"
)

// TestFaultsPlanGolden: the faults of examples/faults.yaml as the tc, nft
// and ip lines up makes them with, on a kernel with netem and on one
// without (this machine's kind), both without a kernel. Run with -update
// after an intended change.
func TestFaultsPlanGolden(t *testing.T) {
	l := load(t, filepath.Join("..", "examples", "faults.yaml"))
	for _, tc := range []struct {
		name string
		caps backend.Caps
	}{
		{"netem", backend.AllCaps()},
		{"nonetem", backend.AllCaps().Without(backend.FeatNetem)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lines, err := faults.FileLines(l, tc.caps)
			if err != nil {
				t.Fatal(err)
			}
			got := strings.Join(lines, "\n") + "\n"
			golden := filepath.Join("testdata", "faults-"+tc.name+".golden")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("plan differs from %s (go test -update rewrites it):\n%s", golden, diffLines(string(want), got))
			}
		})
	}
	// A fault no backend can make is refused, naming the end and field.
	_, err := faults.FileLines(l, backend.AllCaps().Without(backend.FeatNetem, backend.FeatNFQueue))
	if err == nil || !strings.Contains(err.Error(), "faults of server:eth0: server:eth0: delay: not possible on this kernel") {
		t.Errorf("no delay mechanism: %v", err)
	}
}

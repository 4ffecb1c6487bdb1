package lab_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/nsnet/nsnet/internal/sandbox"
)

func TestMain(m *testing.M) { os.Exit(sandbox.Main(cleanup{m})) }

// cleanup runs the tests (inside the sandbox) and then removes the nsnet
// binary the kernel tests built, if they did (not one NSNET_TEST_BIN names:
// CI's other packages use its directory too).
type cleanup struct{ m *testing.M }

func (c cleanup) Run() int {
	code := c.m.Run()
	if build.made {
		os.RemoveAll(filepath.Dir(build.bin))
	}
	return code
}

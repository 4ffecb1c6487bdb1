package lab_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/nsnet/nsnet/internal/sandbox"
)

func TestMain(m *testing.M) { os.Exit(sandbox.Main(cleanup{m})) }

// cleanup runs the tests (inside the sandbox) and then removes the nsnet
// binary the kernel tests built, if they did.
type cleanup struct{ m *testing.M }

func (c cleanup) Run() int {
	code := c.m.Run()
	if build.bin != "" {
		os.RemoveAll(filepath.Dir(build.bin))
	}
	return code
}

package nsnettest

import (
	"strings"
	"testing"
)

// fatalTB records Fatal instead of ending the test.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Helper()           {}
func (f *fatalTB) Fatal(args ...any) { f.msg = args[0].(string) }

// TestOutsideSandboxSaysWhatToAdd: a package whose tests lack TestMain is
// told the one line to add, with this package's Main, not an internal one.
func TestOutsideSandboxSaysWhatToAdd(t *testing.T) {
	f := &fatalTB{TB: t}
	requireSandbox(f, false)
	if !strings.Contains(f.msg, "func TestMain(m *testing.M) { os.Exit(nsnettest.Main(m)) }") || strings.Contains(f.msg, "sandbox.Main") {
		t.Errorf("message: %q", f.msg)
	}
	f.msg = ""
	requireSandbox(f, true)
	if f.msg != "" {
		t.Errorf("inside a sandbox: %q", f.msg)
	}
}

package cli_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nsnet/nsnet/internal/sandbox"
)

// nsnetBin is the nsnet binary built for this test run (inside the sandbox).
// It is set once by TestMain before any test runs and only read afterwards.
var nsnetBin string

func TestMain(m *testing.M) {
	os.Exit(sandbox.Main(&buildFirst{m}))
}

// buildFirst builds the nsnet binary before the tests run, inside the sandbox
// child (the outer process only waits).
type buildFirst struct{ m *testing.M }

func (b *buildFirst) Run() int {
	// CI's rootless pass runs test binaries as an ordinary user who cannot
	// use root's Go caches; it builds nsnet beforehand and names it here.
	if bin := os.Getenv("NSNET_TEST_BIN"); bin != "" {
		nsnetBin = bin
		return b.m.Run()
	}
	dir, err := os.MkdirTemp("", "nsnet-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	nsnetBin = filepath.Join(dir, "nsnet")
	cmd := exec.Command("go", "build", "-o", nsnetBin, "github.com/nsnet/nsnet/cmd/nsnet")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building nsnet:", err)
		return 1
	}
	return b.m.Run()
}

// result is one finished nsnet run.
type result struct {
	out, err string
	code     int
}

// nsnet runs the binary with args and an environment that keeps lab state in
// a per-test directory.
func nsnet(t testing.TB, args ...string) result {
	t.Helper()
	return nsnetIn(t, nil, args...)
}

func nsnetIn(t testing.TB, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(nsnetBin, args...)
	cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(nsnetBin)+":"+os.Getenv("PATH"))
	cmd.Env = append(cmd.Env, env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("nsnet %s: %v", strings.Join(args, " "), err)
		}
		code = ee.ExitCode()
	}
	return result{out.String(), errb.String(), code}
}

// must runs nsnet and fails the test unless it exits 0.
func must(t testing.TB, args ...string) string {
	t.Helper()
	r := nsnet(t, args...)
	if r.code != 0 {
		t.Fatalf("nsnet %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.out, r.err)
	}
	return r.out
}

// ip runs iproute2 and fails the test unless it exits 0.
func ip(t testing.TB, args ...string) string {
	t.Helper()
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

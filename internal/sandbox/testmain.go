package sandbox

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
)

// Main runs a package's tests inside a fresh sandbox and returns the exit
// code for os.Exit. Every test package that touches the kernel uses it:
//
//	func TestMain(m *testing.M) { os.Exit(sandbox.Main(m)) }
//
// The test binary re-executes itself with the same flags; the outer process
// only waits. Nothing outside the sandbox is created or changed, whether the
// tests run as root or as an ordinary user.
// m is usually the *testing.M; anything with Run works, so a package can do
// setup inside the sandbox before its tests.
func Main(m interface{ Run() int }) int {
	if os.Getenv(testEnv) == "1" {
		// This process is the sandbox child. The marker is dropped so that
		// processes the tests start are not mistaken for sandbox children.
		os.Unsetenv(testEnv)
		if err := Setup(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return m.Run()
	}
	cmd := Command(os.Args[1:]...)
	cmd.Env = append(os.Environ(), testEnv+"=1")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	// Pdeathsig fires when the forking thread exits; keep it alive.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, &Error{"create namespaces", err})
		return 1
	}
	code, err := ExitCode(cmd.Wait())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return code
}

// Inside reports whether the process runs in a user namespace other than the
// initial one, which is where Main puts tests. Tests that change the kernel
// assert it first, as a guard against running on the machine itself.
func Inside() bool {
	b, err := os.ReadFile("/proc/self/uid_map")
	if err != nil {
		return false
	}
	f := strings.Fields(string(b))
	return !(len(f) == 3 && f[0] == "0" && f[1] == "0" && f[2] == "4294967295")
}

// Require fails the test at once unless it runs inside a sandbox.
func Require(t testing.TB) {
	t.Helper()
	if !Inside() {
		t.Fatal("refusing to touch the kernel outside a sandbox: use sandbox.Main in TestMain")
	}
}

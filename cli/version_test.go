package cli_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestVersionFromStampedBuild: nsnet version and nsnet-cni --version report
// what the build recorded: the -ldflags version, the VCS revision and time.
func TestVersionFromStampedBuild(t *testing.T) {
	if os.Getenv("NSNET_TEST_BIN") != "" {
		t.Skip("this pass runs prebuilt binaries and cannot build (no Go cache for this user); the root pass builds")
	}
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("needs git, for the go command's VCS stamping")
	}
	rev, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		t.Skipf("not a git checkout, so the build has no VCS information: %v", err)
	}
	dir := t.TempDir()
	build := func(src string) {
		for _, p := range []string{"nsnet", "nsnet-cni"} {
			cmd := exec.Command("go", "build", "-buildvcs=true",
				"-ldflags", "-X github.com/nsnet/nsnet/internal/version.Stamp=v9.8.7-test",
				"-o", filepath.Join(dir, p), "./cmd/"+p)
			cmd.Dir = src
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("go build %s: %v\n%s", p, err, out)
			}
		}
	}
	build("..")
	if out, _ := exec.Command("go", "version", "-m", filepath.Join(dir, "nsnet")).Output(); !strings.Contains(string(out), "vcs.revision=") {
		// The go command does not stamp a build made in a git worktree
		// (as this session's checkouts are); a clone of HEAD it does.
		src := filepath.Join(t.TempDir(), "src")
		if out, err := exec.Command("git", "clone", "-q", "..", src).CombinedOutput(); err != nil {
			t.Fatalf("git clone: %v\n%s", err, out)
		}
		build(src)
	}
	revision := strings.TrimSpace(string(rev))
	for _, args := range [][]string{{"nsnet", "version"}, {"nsnet", "--version"}, {"nsnet", "-V"}, {"nsnet-cni", "--version"}} {
		out, err := exec.Command(filepath.Join(dir, args[0]), args[1:]...).Output()
		if err != nil {
			t.Fatalf("%s: %v", strings.Join(args, " "), err)
		}
		want := args[0] + " v9.8.7-test (revision " + revision[:12] + ", "
		if !strings.HasPrefix(string(out), want) {
			t.Errorf("%s: %q, want it to start %q", strings.Join(args, " "), out, want)
		}
	}
	for _, args := range [][]string{{"nsnet", "version", "-j"}, {"nsnet", "-j", "version"}, {"nsnet-cni", "--version", "-j"}} {
		out, err := exec.Command(filepath.Join(dir, args[0]), args[1:]...).Output()
		if err != nil {
			t.Fatalf("%s: %v", strings.Join(args, " "), err)
		}
		var v struct {
			Program, Version, Revision, Time, Go string
		}
		if err := json.Unmarshal(out, &v); err != nil {
			t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
		}
		if _, err := time.Parse(time.RFC3339, v.Time); err != nil || v.Program != args[0] || v.Version != "v9.8.7-test" || v.Revision != revision || !strings.HasPrefix(v.Go, "go") {
			t.Errorf("%s: %+v (time: %v)", strings.Join(args, " "), v, err)
		}
	}
}

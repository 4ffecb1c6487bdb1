package cli_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// TestCPUProfileEnv: NSNET_CPUPROFILE=FILE writes a CPU profile of the
// command (gzipped protobuf, as go tool pprof reads it), and a file that
// cannot be made is an error before the command runs.
func TestCPUProfileEnv(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cpu.prof")
	r := nsnetIn(t, []string{"NSNET_CPUPROFILE=" + path}, "version")
	if r.code != 0 {
		t.Fatalf("version with a profile: exit %d: %s", r.code, r.err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("profile is not gzipped: %v", err)
	}
	if b, err := io.ReadAll(zr); err != nil || len(b) == 0 {
		t.Fatalf("profile: %d bytes, %v", len(b), err)
	}
	r = nsnetIn(t, []string{"NSNET_CPUPROFILE=" + filepath.Join(t.TempDir(), "no", "such", "dir", "cpu.prof")}, "version")
	if r.code != 1 || !bytes.Contains([]byte(r.err), []byte("NSNET_CPUPROFILE")) || r.out != "" {
		t.Errorf("unwritable profile: exit %d, out %q, err %q", r.code, r.out, r.err)
	}
}

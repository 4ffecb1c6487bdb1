package netns_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nsnet/nsnet/internal/sandbox"
	"github.com/nsnet/nsnet/netns"
)

func TestMain(m *testing.M) {
	if args := os.Getenv(execHelperEnv); args != "" {
		// Child of TestExecNamedNamespace: become the command.
		f := strings.Split(args, "\x1f")
		ns, err := netns.Open(f[0])
		if err == nil {
			err = netns.Exec(ns, f[3:], netns.ExecOptions{Name: f[1], EtcDir: f[2]})
		}
		fmt.Fprintln(os.Stderr, "exec helper:", err)
		os.Exit(111)
	}
	os.Exit(sandbox.Main(m))
}

const execHelperEnv = "NSNET_TEST_EXEC_HELPER"

// TestExecNamedNamespace: Exec gives the command the namespace's /sys and
// its /etc/netns overrides, and no other descriptor than stdio.
func TestExecNamedNamespace(t *testing.T) {
	d := tempDir(t)
	ns, err := d.Add("blue")
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	etc := t.TempDir()
	if err := os.MkdirAll(filepath.Join(etc, "blue"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(etc, "blue", "hosts"), []byte("10.0.0.1 only-in-blue\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	path, _ := d.PathOf("blue")
	run := func(argv ...string) string {
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), execHelperEnv+"="+strings.Join(append([]string{path, "blue", etc}, argv...), "\x1f"))
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %v\n%s", argv, err, out)
		}
		return string(out)
	}
	if out := run("cat", "/etc/hosts"); out != "10.0.0.1 only-in-blue\n" {
		t.Errorf("/etc/hosts inside = %q", out)
	}
	if out := run("ls", "/sys/class/net"); strings.TrimSpace(out) != "lo" {
		t.Errorf("/sys/class/net inside = %q", out)
	}
	// The test's own /etc and /sys are untouched.
	if b, _ := os.ReadFile("/etc/hosts"); strings.Contains(string(b), "only-in-blue") {
		t.Error("/etc/hosts changed outside")
	}
}

func tempDir(t *testing.T) netns.Dir {
	t.Helper()
	sandbox.Require(t)
	d := netns.Dir{Path: filepath.Join(t.TempDir(), "netns")}
	// Add makes the directory a mount point, as iproute2 does.
	t.Cleanup(func() { unix.Unmount(d.Path, unix.MNT_DETACH) })
	return d
}

func TestNewIsDistinct(t *testing.T) {
	sandbox.Require(t)
	cur, err := netns.Current()
	if err != nil {
		t.Fatal(err)
	}
	defer cur.Close()
	n, err := netns.New()
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	a, _ := cur.ID()
	b, _ := n.ID()
	if a == b {
		t.Fatal("New returned the current namespace")
	}
	// The caller's thread must not have moved.
	again, err := netns.Current()
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if c, _ := again.ID(); c != a {
		t.Fatal("calling thread changed namespace")
	}
}

// TestNewWith: fn runs inside the new namespace (what it opens there is of
// that namespace), the caller's thread stays where it was, and a failing fn
// is New's failure.
func TestNewWith(t *testing.T) {
	sandbox.Require(t)
	cur, err := netns.Current()
	if err != nil {
		t.Fatal(err)
	}
	defer cur.Close()
	var inside unix.Stat_t
	n, err := netns.NewWith(func() error { return unix.Stat("/proc/thread-self/ns/net", &inside) })
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	id, _ := n.ID()
	if id != (netns.ID{Dev: inside.Dev, Ino: inside.Ino}) {
		t.Errorf("fn ran in %d:%d, the new namespace is %d:%d", inside.Dev, inside.Ino, id.Dev, id.Ino)
	}
	again, err := netns.Current()
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	a, _ := cur.ID()
	if c, _ := again.ID(); c != a {
		t.Fatal("calling thread changed namespace")
	}
	boom := errors.New("boom")
	if n, err := netns.NewWith(func() error { return boom }); !errors.Is(err, boom) || n != nil {
		t.Errorf("failing fn: %v, %v", n, err)
	}
}

func TestDirAddListOpenDelete(t *testing.T) {
	d := tempDir(t)
	ns, err := d.Add("red")
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	if _, err := d.Add("red"); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second add: got %v, want ErrExist", err)
	}
	names, err := d.List()
	if err != nil || strings.Join(names, ",") != "red" {
		t.Fatalf("list = %v, %v", names, err)
	}
	o, err := d.Open("red")
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	a, _ := ns.ID()
	b, _ := o.ID()
	if a != b {
		t.Fatal("opened namespace differs from the added one")
	}
	if err := d.Delete("red"); err != nil {
		t.Fatal(err)
	}
	if err := d.Delete("red"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("second delete: got %v, want ErrNotExist", err)
	}
	if _, err := os.Stat(filepath.Join(d.Path, "red")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("file left behind: %v", err)
	}
}

func TestValidateName(t *testing.T) {
	for _, tc := range []struct{ name, rule string }{
		{"", "empty"},
		{".", `"."`},
		{"..", `".."`},
		{"a/b", `"/"`},
		{"../../etc", `"/"`},
		{strings.Repeat("x", 256), "at most 255 bytes"},
	} {
		err := netns.ValidateName(tc.name)
		var ne *netns.NameError
		if !errors.As(err, &ne) || !strings.Contains(err.Error(), tc.rule) {
			t.Errorf("ValidateName(%.20q) = %v, want rule %q", tc.name, err, tc.rule)
		}
	}
	if err := netns.ValidateName(strings.Repeat("x", 255)); err != nil {
		t.Errorf("255 bytes rejected: %v", err)
	}
}

func TestOpenRejectsNonNamespace(t *testing.T) {
	d := tempDir(t)
	if err := os.MkdirAll(d.Path, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d.Path, "plain"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Open("plain"); err == nil || !strings.Contains(err.Error(), "not a network namespace") {
		t.Fatalf("open of a plain file: %v", err)
	}
	for _, p := range []string{"/proc/version", "/proc/self/ns/mnt"} {
		if _, err := netns.Open(p); err == nil || !strings.Contains(err.Error(), "not a network namespace") {
			t.Errorf("open of %s: %v", p, err)
		}
	}
	if ns, err := netns.Open("/proc/self/ns/net"); err != nil {
		t.Errorf("open of /proc/self/ns/net: %v", err)
	} else {
		ns.Close()
	}
}

func TestSysctl(t *testing.T) {
	sandbox.Require(t)
	n, err := netns.New()
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if err := n.WriteSysctl("net.ipv4.ip_forward", "1"); err != nil {
		t.Fatal(err)
	}
	v, err := n.ReadSysctl("net.ipv4.ip_forward")
	if err != nil || v != "1" {
		t.Fatalf("inside: %q, %v", v, err)
	}
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
	if err != nil || strings.TrimSpace(string(b)) != "0" {
		t.Fatalf("outside changed: %q, %v", b, err)
	}
	if _, err := netns.SysctlPath("net/../../etc"); err == nil {
		t.Fatal("path traversal accepted")
	}
}

// TestThreadHygiene runs thousands of operations inside dozens of namespaces
// from many goroutines and then checks every thread of the process is still
// in the original namespace.
func TestThreadHygiene(t *testing.T) {
	sandbox.Require(t)
	orig, err := netns.Current()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	want, _ := orig.ID()
	const nsCount, workers, opsPer = 32, 64, 50
	nss := make([]*netns.NS, nsCount)
	ids := make([]netns.ID, nsCount)
	for i := range nss {
		if nss[i], err = netns.New(); err != nil {
			t.Fatal(err)
		}
		defer nss[i].Close()
		ids[i], _ = nss[i].ID()
	}
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < opsPer; i++ {
				k := (w + i) % nsCount
				err := nss[k].Do(func() error {
					var st unix.Stat_t
					if err := unix.Stat("/proc/thread-self/ns/net", &st); err != nil {
						return err
					}
					if (netns.ID{Dev: st.Dev, Ino: st.Ino}) != ids[k] {
						return errors.New("Do ran outside its namespace")
					}
					return nil
				})
				if err != nil {
					errs <- err
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range tasks {
		var st unix.Stat_t
		if err := unix.Stat(filepath.Join("/proc/self/task", task.Name(), "ns/net"), &st); err != nil {
			continue // thread exited meanwhile
		}
		if (netns.ID{Dev: st.Dev, Ino: st.Ino}) != want {
			t.Errorf("thread %s is in another network namespace", task.Name())
		}
	}
	if len(tasks) < 2 {
		t.Fatalf("only %d threads seen", len(tasks))
	}
}

// TestScratch: fn runs in a namespace of its own, a change made there stays
// there, and no thread of the process is left in it.
func TestScratch(t *testing.T) {
	sandbox.Require(t)
	orig, err := netns.Current()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	want, _ := orig.ID()
	err = netns.Scratch(func() error {
		var st unix.Stat_t
		if err := unix.Stat("/proc/thread-self/ns/net", &st); err != nil {
			return err
		}
		if (netns.ID{Dev: st.Dev, Ino: st.Ino}) == want {
			return errors.New("fn ran in the caller's namespace")
		}
		return os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0)
	})
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward"); err != nil || strings.TrimSpace(string(b)) != "0" {
		t.Fatalf("the scratch namespace's change reached the caller's: %q, %v", b, err)
	}
	// The runtime ends the thread just after fn returns.
	var stray []string
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		stray = nil
		tasks, err := os.ReadDir("/proc/self/task")
		if err != nil {
			t.Fatal(err)
		}
		for _, task := range tasks {
			var st unix.Stat_t
			if err := unix.Stat(filepath.Join("/proc/self/task", task.Name(), "ns/net"), &st); err != nil {
				continue // exited meanwhile
			}
			if (netns.ID{Dev: st.Dev, Ino: st.Ino}) != want {
				stray = append(stray, task.Name())
			}
		}
		if len(stray) == 0 || time.Now().After(deadline) {
			break
		}
	}
	if len(stray) > 0 {
		t.Errorf("threads %v are still in another namespace", stray)
	}
}

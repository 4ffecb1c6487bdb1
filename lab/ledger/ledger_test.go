package ledger_test

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nsnet/nsnet/lab/ledger"
)

func TestWriteRead(t *testing.T) {
	s := ledger.Store{Dir: t.TempDir()}
	if _, err := s.Read("a"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("reading a missing ledger: %v", err)
	}
	l := &ledger.Ledger{Lab: "a", Mark: "nsnet:a", Nodes: []ledger.Node{{Name: "host"}, {Name: "x", Netns: "a-x"}},
		Procs: []ledger.Proc{{Node: "x", Netns: "a-x", Argv: []string{"sleep", "1"}, PID: 10, Start: 20}}}
	if err := s.Write(l); err != nil {
		t.Fatal(err)
	}
	got, err := s.Read("a")
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != ledger.Version || got.Node("x").Netns != "a-x" || got.Node("host").Owned() || got.Procs[0].Start != 20 {
		t.Errorf("read back %+v", got)
	}
	labs, err := s.Labs()
	if err != nil || len(labs) != 1 || labs[0] != "a" {
		t.Errorf("Labs() = %v, %v", labs, err)
	}
	// No temporary file is left behind.
	ents, _ := os.ReadDir(s.LabDir("a"))
	if len(ents) != 1 {
		t.Errorf("lab directory holds %v", ents)
	}
}

func TestRefusesOtherVersions(t *testing.T) {
	s := ledger.Store{Dir: t.TempDir()}
	os.MkdirAll(s.LabDir("a"), 0o755)
	os.WriteFile(s.Path("a"), []byte(`{"version": 99, "lab": "a"}`), 0o644)
	if _, err := s.Read("a"); !errors.Is(err, ledger.ErrVersion) {
		t.Errorf("read a version 99 ledger: %v", err)
	}
	if _, err := s.Read("../etc"); err == nil {
		t.Error("read a ledger by a path")
	}
}

// TestLockExcludes: a second holder waits until the first releases, and is
// told who holds it.
func TestLockExcludes(t *testing.T) {
	s := ledger.Store{Dir: t.TempDir()}
	first, err := s.Lock("a", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s.TryLock("a"); ok || err != nil {
		t.Fatalf("TryLock of a held lab: ok=%v err=%v", ok, err)
	}
	// Other labs are independent.
	other, ok, err := s.TryLock("b")
	if !ok || err != nil {
		t.Fatalf("TryLock of another lab: ok=%v err=%v", ok, err)
	}
	other.Release()

	var waited int
	got := make(chan *ledger.Lock)
	go func() {
		l, err := s.Lock("a", func(pid int) { waited = pid })
		if err != nil {
			t.Error(err)
		}
		got <- l
	}()
	select {
	case <-got:
		t.Fatal("second Lock did not wait")
	case <-time.After(50 * time.Millisecond):
	}
	first.Release()
	second := <-got
	if waited != os.Getpid() {
		t.Errorf("waiter was told pid %d, want %d", waited, os.Getpid())
	}
	second.Release()
}

// TestLockAfterRemove: when the holder removes the lab, a waiter starts
// over on a new lock file instead of holding a lock nobody else sees.
func TestLockAfterRemove(t *testing.T) {
	s := ledger.Store{Dir: t.TempDir()}
	first, err := s.Lock("a", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Write(&ledger.Ledger{Lab: "a"}); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(s.LabDir("a"), "x.log"), []byte("log"), 0o644)
	var wg sync.WaitGroup
	var holders atomic.Int32
	locks := make(chan *ledger.Lock, 2)
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l, err := s.Lock("a", nil)
			if err != nil {
				t.Error(err)
				return
			}
			if holders.Add(1) != 1 {
				t.Error("two holders at once")
			}
			locks <- l
			time.Sleep(20 * time.Millisecond)
			holders.Add(-1)
			l.Release()
		}()
	}
	time.Sleep(30 * time.Millisecond)
	if err := first.Remove(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(locks)
	if n := len(locks); n != 2 {
		t.Fatalf("%d waiters got the lock", n)
	}
	if _, err := os.Stat(s.Path("a")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ledger survived Remove: %v", err)
	}
	if labs, _ := s.Labs(); len(labs) != 0 {
		t.Errorf("labs after Remove: %v", labs)
	}
}

// TestLockRemoveRace: holders that remove the lab's directory race holders
// that create it again (downs and ups of one lab), many at a time: no Lock
// or Remove fails, never are two holders in at once, and a directory that
// is left holds a ledger.
func TestLockRemoveRace(t *testing.T) {
	s := ledger.Store{Dir: t.TempDir()}
	var wg sync.WaitGroup
	var holders atomic.Int32
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				l, err := s.Lock("a", nil)
				if err != nil {
					t.Errorf("lock: %v", err)
					return
				}
				if holders.Add(1) != 1 {
					t.Error("two holders at once")
				}
				_, rerr := s.Read("a")
				if (w+i)%2 == 0 && errors.Is(rerr, fs.ErrNotExist) {
					err = s.Write(&ledger.Ledger{Lab: "a"}) // an up
					holders.Add(-1)
					if rerr := l.Release(); err == nil {
						err = rerr
					}
				} else {
					// A down: the next holder may come in once the lock
					// file is gone, while Remove finishes.
					holders.Add(-1)
					err = l.Remove()
				}
				if err != nil {
					t.Errorf("round %d: %v", i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if ents, err := os.ReadDir(s.LabDir("a")); err == nil {
		if _, err := s.Read("a"); err != nil {
			t.Errorf("lab directory left without a ledger (%v): %v", ents, err)
		}
	}
}

// TestBusy: Busy tells a held lab from a free one and creates nothing, so
// a listing racing a down does not make the lab's directory again.
func TestBusy(t *testing.T) {
	s := ledger.Store{Dir: t.TempDir()}
	if busy, err := s.Busy("a"); busy || err != nil {
		t.Fatalf("Busy of a lab that has no directory: %v, %v", busy, err)
	}
	if _, err := os.Stat(s.LabDir("a")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Busy made the lab's directory: %v", err)
	}
	l, err := s.Lock("a", nil)
	if err != nil {
		t.Fatal(err)
	}
	if busy, err := s.Busy("a"); !busy || err != nil {
		t.Errorf("Busy of a held lab: %v, %v", busy, err)
	}
	l.Release()
	if busy, err := s.Busy("a"); busy || err != nil {
		t.Errorf("Busy of a released lab: %v, %v", busy, err)
	}
	// Busy's own probe does not keep the lock.
	if _, ok, err := s.TryLock("a"); !ok || err != nil {
		t.Errorf("TryLock after Busy: %v, %v", ok, err)
	}
}

// TestWriteIsMarshal: the ledger Write streams (its nodes and links one at a
// time) is byte for byte what json.Marshal makes of it, every field set, with
// and without nodes and links, and with a string that holds the bytes Write
// splices at.
func TestWriteIsMarshal(t *testing.T) {
	s := ledger.Store{Dir: t.TempDir()}
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	full := &ledger.Ledger{Lab: "a", File: `/x/"nodes":null,"links":null.yaml`, Mark: "nsnet:a", Host: ledger.NSID{Dev: 1, Ino: 2}, Complete: true,
		Nodes:     []ledger.Node{{Name: "host"}, {Name: "x", Netns: "a-x"}},
		Links:     []ledger.Link{{Node: "x", Netns: "a-x", Name: "eth0", Kind: "veth", MAC: "02:00:00:00:00:01", Peer: "host:v0"}, {Node: "host", Name: "vx", Kind: "vxlan", MAC: "02:00:00:00:00:02", VNI: 7}},
		Sysctls:   []ledger.Sysctl{{Node: "host", Key: "net.ipv4.ip_forward", Old: "0", New: "1"}},
		Procs:     []ledger.Proc{{Node: "x", Netns: "a-x", Argv: []string{"sleep", "<1>"}, PID: 10, Start: 20, Log: "l", Role: "r", Restarts: 1, Reaper: 3, ReaperStart: 4}},
		Faults:    []ledger.Fault{{Node: "x", Iface: "eth0", Spec: "delay 1ms", Backend: "netem", Delayer: "d", Queue: 1, Down: true, Set: at, Until: at, File: true}},
		Partition: &ledger.Partition{Groups: [][]string{{"x"}, {"host"}}, OneWay: true, Set: at},
		Files:     []ledger.File{{Node: "x", Path: "/etc/netns/a-x/hosts", Dirs: []string{"/etc/netns/a-x"}}},
		Guard:     "nsnet-a", HostName: "h1", VXLAN: &ledger.VXLAN{Port: 4789, IPv6: true, Allow: []string{"::1"}},
	}
	for _, l := range []*ledger.Ledger{full, {Lab: "a", Mark: "nsnet:a"}, {Lab: "a", Nodes: []ledger.Node{}, Links: []ledger.Link{}, Files: []ledger.File{}}, {Lab: "a", Files: []ledger.File{{Node: "x", Path: "p"}}}} {
		if err := s.Write(l); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(s.Path("a"))
		if err != nil {
			t.Fatal(err)
		}
		want, err := json.Marshal(l)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want)+"\n" {
			t.Errorf("Write wrote\n%s\njson.Marshal makes\n%s", got, want)
		}
	}
}

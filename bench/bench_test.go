package bench_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nsnet/nsnet/bench"
	"github.com/nsnet/nsnet/internal/sandbox"
	"github.com/nsnet/nsnet/kernel"
	"github.com/nsnet/nsnet/netns"
)

func TestMain(m *testing.M) { os.Exit(sandbox.Main(m)) }

func TestWorkloadValidate(t *testing.T) {
	for _, w := range []bench.Workload{
		{Mode: "mesh", N: 1, Prefix: "b"},
		{Mode: bench.Bridge, N: 1024, Prefix: "b"},
		{Mode: bench.PTP, N: 0, Prefix: "b"},
		{Mode: bench.PTP, N: 1, Prefix: "a/b"},
	} {
		if err := w.Validate(); err == nil {
			t.Errorf("%+v accepted", w)
		}
	}
	w := bench.Workload{Mode: bench.PTP, N: 60000, Prefix: "b"}
	if err := w.Validate(); err != nil || w.Addr(59999).String() != "10.96.234.97" {
		t.Errorf("60000 nodes: %v, last address %s", err, w.Addr(59999))
	}
}

// TestRunnersBuildTheSameNetwork runs every in-process and iproute2 runner at
// a small N and checks each built the workload (Run verifies it after every
// setup) and that every node answered a ping.
func TestRunnersBuildTheSameNetwork(t *testing.T) {
	sandbox.Require(t)
	ip, err := exec.LookPath("ip")
	if err != nil {
		t.Fatal("iproute2 is needed: install it (CI does)")
	}
	self, h, err := kernel.OpenCurrent()
	if err != nil {
		t.Fatal(err)
	}
	defer self.Close()
	defer h.Close()
	env := &bench.Env{Host: h, Netns: netns.Default(), IP: ip, StateDir: t.TempDir()}
	reports, err := bench.Run(env, bench.Options{
		Workloads: []bench.Workload{{Mode: bench.Bridge, N: 4, Prefix: "t"}, {Mode: bench.PTP, N: 4, Prefix: "t"}},
		Reps:      1,
		Runners:   []string{"ip-each", "ip-batch", "tuned"},
		Ping:      true,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range reports {
		if len(r.Rows) != 3 {
			t.Fatalf("%s: %d rows", r.Workload, len(r.Rows))
		}
		for _, row := range r.Rows {
			if row.Replies != 4 || row.Setup <= 0 || row.Teardown <= 0 {
				t.Errorf("%s %s: %+v", r.Workload, row.Runner, row)
			}
		}
	}
	var buf bytes.Buffer
	if err := bench.WriteTable(&buf, reports, true); err != nil || !strings.Contains(buf.String(), "hosts-4/ptp") {
		t.Errorf("table: %v\n%s", err, buf.String())
	}
	if names, _ := netns.Default().List(); len(names) != 0 {
		t.Errorf("namespaces left: %v", names)
	}
}

// TestOtherNsnetBinary checks that a runner named nsnet=BINARY runs that
// binary (an older build measured beside this one), under its own name.
func TestOtherNsnetBinary(t *testing.T) {
	dir := t.TempDir()
	fake := dir + "/nsnet-old"
	if err := os.WriteFile(fake, []byte("#!/bin/sh\necho \"old build ran: $*\" >&2\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	env := &bench.Env{StateDir: dir}
	_, err := bench.Run(env, bench.Options{
		Workloads: []bench.Workload{{Mode: bench.PTP, N: 1, Prefix: "t"}},
		Runners:   []string{"nsnet=" + fake},
	})
	// The runners take turns in the order given (tuned, always measured,
	// comes last here), so the fake fails the first setup.
	if err == nil || !strings.Contains(err.Error(), "hosts-1/ptp nsnet="+fake+": setup") || !strings.Contains(err.Error(), "old build ran: up") {
		t.Fatalf("err = %v", err)
	}
	_, err = bench.Run(env, bench.Options{Workloads: []bench.Workload{{Mode: bench.PTP, N: 1, Prefix: "t"}}, Runners: []string{"nsnet="}})
	if err == nil || !strings.Contains(err.Error(), `unknown runner "nsnet="`) {
		t.Errorf("empty binary: %v", err)
	}
}

// TestHostsBench runs the benchmark of a lab across machines at a small N:
// three simulated machines and the one-machine lab come up and down, and
// every link across machines answers a ping.
func TestHostsBench(t *testing.T) {
	sandbox.Require(t)
	ip, err := exec.LookPath("ip")
	if err != nil {
		t.Fatal("iproute2 is needed: install it (CI does)")
	}
	bin := os.Getenv("NSNET_TEST_BIN")
	if bin == "" {
		bin = filepath.Join(t.TempDir(), "nsnet")
		if out, err := exec.Command("go", "build", "-o", bin, "github.com/nsnet/nsnet/cmd/nsnet").CombinedOutput(); err != nil {
			t.Fatalf("go build: %v\n%s", err, out)
		}
	}
	r, err := bench.Hosts(&bench.Env{IP: ip, Nsnet: bin}, bench.HostsOptions{N: 12, Reps: 1})
	if err != nil {
		t.Fatal(err)
	}
	if r.CrossLinks != 6 || r.Answered != 6 || r.UpOne <= 0 || r.UpMulti <= 0 || r.DownOne <= 0 || r.DownMulti <= 0 {
		t.Errorf("%+v", r)
	}
	var buf bytes.Buffer
	if err := bench.WriteHosts(&buf, r); err != nil || !strings.Contains(buf.String(), "6/6 answered") {
		t.Errorf("table: %v\n%s", err, buf.String())
	}
	if out, _ := exec.Command(ip, "-br", "link").Output(); strings.Contains(string(out), "ulbench") {
		t.Errorf("underlay left:\n%s", out)
	}
}

package cli_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const perfLab = `lab: perfpair
nodes:
  h1: {}
  h2: {}
links:
  - a: {node: h1, name: eth0, addresses: [10.77.0.1/24, fd77::1/64]}
    b: {node: h2, name: eth0, addresses: [10.77.0.2/24, fd77::2/64]}
`

// TestPerf: nsnet perf measures TCP throughput with its own receiver in the
// target node and, with --icmp, round trips and loss; both forms agree.
func TestPerf(t *testing.T) {
	leakCheck(t)
	state := []string{"NSNET_STATE_DIR=" + t.TempDir()}
	file := filepath.Join(t.TempDir(), "perf.yaml")
	if err := os.WriteFile(file, []byte(perfLab), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) result { return nsnetIn(t, state, args...) }
	if r := run("up", file); r.code != 0 {
		t.Fatalf("up: %+v", r)
	}
	t.Cleanup(func() { run("down", "perfpair") })
	defer func() {
		if testing.Verbose() {
			t.Log(run("perf", "perfpair", "h1", "h2", "-t", "2").out)
			t.Log(run("perf", "perfpair", "h1", "h2", "--icmp", "-c", "10000", "-i", "0.0001").out)
		}
	}()

	r := run("perf", "perfpair", "h1", "h2", "-t", "0.5")
	if r.code != 0 || !strings.Contains(r.out, "perf perfpair: h1 -> h2 (10.77.0.2), TCP for 500ms") || !strings.Contains(r.out, "receiver") {
		t.Fatalf("perf: %+v", r)
	}
	r = run("perf", "perfpair", "h2", "fd77::1", "-t", "0.3", "-j")
	var rep struct {
		Addr string
		TCP  struct {
			Bytes         int64
			BitsPerSecond float64 `json:"bits_per_second"`
			Intervals     []struct{ Bytes int64 }
		}
	}
	if err := json.Unmarshal([]byte(r.out), &rep); err != nil || r.code != 0 {
		t.Fatalf("perf -j: %v %+v", err, r)
	}
	if rep.Addr != "fd77::1" || rep.TCP.Bytes == 0 || rep.TCP.BitsPerSecond < 50e6 || len(rep.TCP.Intervals) == 0 {
		t.Errorf("perf -j: %+v", rep)
	}

	r = run("perf", "perfpair", "h1", "h2", "--icmp", "-c", "500", "-i", "0.0002")
	if r.code != 0 || !strings.Contains(r.out, "500 packets transmitted, 500 received, 0.00% packet loss, 0 duplicates") || !strings.Contains(r.out, "rtt p50/p90/p99 = ") {
		t.Fatalf("perf --icmp: %+v", r)
	}
	r = run("-j", "perf", "perfpair", "h1", "10.77.0.99", "--icmp", "-c", "5", "-i", "0.01", "-W", "0.2")
	var irep struct {
		ICMP struct {
			Sent, Received int
			Loss           float64
		}
	}
	if err := json.Unmarshal([]byte(r.out), &irep); err != nil || r.code != 1 || irep.ICMP.Sent != 5 || irep.ICMP.Received != 0 || irep.ICMP.Loss != 1 {
		t.Errorf("perf --icmp to nobody: %v %+v %+v", err, irep, r)
	}

	for _, bad := range []struct {
		args []string
		msg  string
	}{
		{[]string{"perf", "perfpair", "h1"}, "perf: missing TO\nusage: nsnet perf LAB FROM TO [-t SECONDS] [-j]\n"},
		{[]string{"perf", "perfpair", "h1", "h3"}, `"h3" is neither a node of lab perfpair nor an IP address`},
		{[]string{"perf", "perfpair", "h9", "h2"}, "lab perfpair has no node h9 (nodes: host, h1, h2)\n"},
		{[]string{"perf", "perfpair", "h1", "10.77.0.99"}, "the TCP run needs a node to run its receiver in"},
		{[]string{"perf", "perfpair", "h1", "h2", "-t", "0"}, `-t "0": must be seconds from 0.1 to 3600`},
		{[]string{"perf", "perfpair", "h1", "h2", "-c", "10"}, "-c, -i and -W shape an --icmp run"},
		{[]string{"perf", "perfpair", "h1", "h2", "--icmp", "-t", "3"}, "-t is for the TCP run"},
		{[]string{"perf", "nolab", "h1", "h2"}, "nolab"},
	} {
		r := run(bad.args...)
		if r.code != 2 || !strings.Contains(r.err, bad.msg) {
			t.Errorf("%v: exit %d, stderr %q, want %q", bad.args, r.code, r.err, bad.msg)
		}
	}
}

// TestCheckBounds: a lab file asserts measured figures of its own paths;
// a bound that does not hold fails the check and says what was measured.
func TestCheckBounds(t *testing.T) {
	leakCheck(t)
	state := []string{"NSNET_STATE_DIR=" + t.TempDir()}
	file := filepath.Join(t.TempDir(), "bounds.yaml")
	text := perfLab + `expect:
  - {from: h1, to: h2, latency: "<30ms", loss: "<2%", rate: ">8mbit"}
  - {from: h2, to: "fd77::1", loss: "<=0%", probes: 300}
  - {from: h1, to: h2, latency: "<1us"}
`
	if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) result { return nsnetIn(t, state, args...) }
	if r := run("up", file); r.code != 0 {
		t.Fatalf("up: %+v", r)
	}
	t.Cleanup(func() { run("down", "perfpair") })
	r := run("check", file)
	t.Log(r.out)
	if r.code != 1 || !strings.Contains(r.out, "2 passed, 1 failed, 0 errors") {
		t.Fatalf("check: %+v", r)
	}
	for _, want := range []string{"(want <30ms), loss 0.00% (want <2%), rate ", "bit (want >8mbit)", "loss 0.00% (want <=0%)", "FAIL    h1    h2 (10.77.0.2)  icmp", "FAILED latency "} {
		if !strings.Contains(r.out, want) {
			t.Errorf("check output lacks %q:\n%s", want, r.out)
		}
	}
	r = run("-j", "check", "perfpair")
	var rep struct {
		Results []struct {
			Result   string
			Measures []struct {
				Metric, Bound string
				Got           float64
				Pass          bool
			}
		}
	}
	if err := json.Unmarshal([]byte(r.out), &rep); err != nil || len(rep.Results) != 3 {
		t.Fatalf("JSON: %v %+v", err, r)
	}
	if m := rep.Results[0].Measures; len(m) != 3 || m[2].Metric != "rate" || m[2].Got < 8e6 || !m[2].Pass {
		t.Errorf("measures: %+v", rep.Results[0])
	}
	if m := rep.Results[2]; m.Result != "fail" || len(m.Measures) != 1 || m.Measures[0].Pass || m.Measures[0].Got <= 0 {
		t.Errorf("failed bound: %+v", m)
	}
}

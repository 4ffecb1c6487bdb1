package lab_test

import (
	"flag"
	"fmt"
	"math/rand"
	"os"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nsnet/nsnet/lab"
)

var (
	crashTrials = flag.Int("crash-trials", 20, "TestCrashSafety: how many times to SIGKILL nsnet up")
	crashSeed   = flag.Int64("crash-seed", 0, "TestCrashSafety: random seed (0: from the clock, printed)")
)

// crashLab has something of every kind: namespaces, a bridge in the host
// and one in a node, a host veth, addresses, routes, a host sysctl and
// processes in the host and in nodes.
func crashLab() string {
	var b strings.Builder
	b.WriteString(`lab: crash
nodes:
  host:
    sysctls: {net.ipv4.ip_forward: 1}
    processes: [{cmd: sleep 9999.5}]
  sw: {}
`)
	for i := 0; i < 12; i++ {
		gw := "10.66.0.1"
		if i >= 6 {
			gw = "10.67.0.1"
		}
		fmt.Fprintf(&b, "  n%d:\n    routes: [{to: 10.99.0.0/16, via: %s}]\n", i, gw)
		if i%6 == 1 {
			fmt.Fprintf(&b, "    processes: [{cmd: sleep 9999.6}]\n")
		}
	}
	b.WriteString(`bridges:
  hbr: {subnets: [10.66.0.0/24], addresses: [10.66.0.1/24]}
  nbr: {node: sw, subnets: [10.67.0.0/24], addresses: [10.67.0.1/24]}
links:
  - {a: {node: host, name: cr0, addresses: [10.65.0.1/24]}, b: {node: n0, name: eth9, addresses: [10.65.0.2/24]}}
`)
	for i := 0; i < 12; i++ {
		br := "hbr"
		if i >= 6 {
			br = "nbr"
		}
		fmt.Fprintf(&b, "  - {a: {node: n%d, name: eth0, addresses: [auto]}, b: {bridge: %s}}\n", i, br)
	}
	return b.String()
}

const bystanderLab = `lab: bystander
nodes:
  x:
    processes: [{cmd: sleep 9999.9}]
links:
  - {a: {node: host, name: by0, addresses: [10.64.0.1/24]}, b: {node: x, name: eth0, addresses: [10.64.0.2/24]}}
`

// TestCrashSafety kills `nsnet up` with SIGKILL at random points; `nsnet
// down` must then leave nothing: no namespace, /run/netns entry, nsfs mount,
// host interface or address, changed sysctl, ledger or process. Decoys (made
// by hand, one even carrying the lab's alias) and a second lab are never
// touched. Every fifth crash is repaired by an up instead, first.
func TestCrashSafety(t *testing.T) {
	e := newEnv(t)
	file := e.write("crash.yaml", crashLab())
	e.write("bystander.yaml", bystanderLab)
	clean := e.snap()

	e.must("up", "bystander.yaml")
	ip(t, "link", "add", "decoy0", "type", "veth", "peer", "name", "decoy1")
	ip(t, "link", "set", "decoy0", "alias", "nsnet:crash")
	ip(t, "addr", "add", "192.0.2.1/24", "dev", "decoy0")
	ip(t, "netns", "add", "decoy-ns")
	defer func() {
		ip(t, "link", "del", "decoy0")
		ip(t, "netns", "del", "decoy-ns")
		e.must("down", "bystander")
		e.sameAs(clean, "after the bystander's down")
	}()
	base := e.snap()

	start := time.Now()
	e.must("up", file)
	full := time.Since(start)
	e.mustPing("crash", "n3", "10.66.0.1")
	e.mustPing("crash", "n9", "10.67.0.5")
	e.must("down", "crash")
	e.sameAs(base, "after a complete up and down")

	seed := *crashSeed
	if seed == 0 {
		seed = time.Now().UnixNano()
	}
	t.Logf("a full up takes %v; seed %d (-crash-seed to repeat)", full, seed)
	rng := rand.New(rand.NewSource(seed))
	for i := 0; i < *crashTrials; i++ {
		// Squared, so that more kills land early, where most of the
		// creating is, than in the final wait for carrier.
		u := rng.Float64()
		delay := time.Duration(float64(full) * 1.1 * u * u)
		cmd := e.cmd("up", file)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(delay)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		what := fmt.Sprintf("trial %d, SIGKILL after %v", i, delay)
		if i%5 == 4 {
			if r := e.run("up", file); r.code != 0 {
				t.Fatalf("%s: up after the crash: exit %d\n%s", what, r.code, r.err)
			}
			// Finished: nothing is left to repair (TestInterruptedUpSameState
			// compares the whole kernel state with a clean up's).
			wantIn(t, what+": plan after the repair", e.must("plan", file), "nothing to do")
			e.mustPing("crash", "n3", "10.66.0.1")
		}
		if r := e.run("down", "crash"); r.code != 0 {
			t.Fatalf("%s: down: exit %d\n%s", what, r.code, r.err)
		}
		e.sameAs(base, what)
		st := e.status("bystander")
		if st.State != "up" || !st.NodeStatus[0].Links[0].Present || !st.NodeStatus[1].Processes[0].Running {
			t.Fatalf("%s: the bystander lab was touched: %+v", what, st)
		}
	}
	if _, err := os.Stat("/run/netns/decoy-ns"); err != nil {
		t.Error("the decoy namespace is gone")
	}
}

// interruptLab has every kind of link state a plan sets: host and node
// bridges, bridge ports without addresses (no IPv6, so no link-local
// address), dual-stack ends (a link-local address of the lab's own), a host
// veth, an MTU, routes and a host sysctl. No processes: their PIDs differ
// from one up to the next.
func interruptLab() string {
	var b strings.Builder
	b.WriteString(`lab: intr
nodes:
  host:
    sysctls: {net.ipv4.ip_forward: 1}
  sw: {}
`)
	for i := 0; i < 8; i++ {
		gw := "10.66.0.1"
		if i >= 4 {
			gw = "10.67.0.1"
		}
		fmt.Fprintf(&b, "  n%d:\n    routes: [{to: 10.99.0.0/16, via: %s}]\n", i, gw)
	}
	b.WriteString(`bridges:
  hbr: {subnets: [10.66.0.0/24], addresses: [10.66.0.1/24]}
  nbr: {node: sw, subnets: [10.67.0.0/24, "fd00:67::/64"], addresses: [10.67.0.1/24, "fd00:67::1/64"], mtu: 9000}
links:
  - {a: {node: host, name: in0, addresses: [10.65.0.1/24, "fd00:65::1/64"]}, b: {node: n0, name: eth9, addresses: [10.65.0.2/24, "fd00:65::2/64"]}}
  - {a: {node: n1, name: p0}, b: {node: n2, name: p0}}
`)
	for i := 0; i < 8; i++ {
		br := "hbr"
		if i >= 4 {
			br = "nbr"
		}
		fmt.Fprintf(&b, "  - {a: {node: n%d, name: eth0, addresses: [auto]}, b: {bridge: %s}}\n", i, br)
	}
	return b.String()
}

// TestInterruptedUpSameState: an up killed at a random point and then
// finished by another up leaves exactly the kernel state of a clean up (the
// same links with every attribute iproute2 shows, addrgenmode included; the
// same addresses with their flags, none tentative; routes and neighbour
// entries), on the fast path and on the plain path.
func TestInterruptedUpSameState(t *testing.T) {
	e := newEnv(t)
	before := e.snap()
	file := e.write("intr.yaml", interruptLab())
	start := time.Now()
	e.must("up", file)
	full := time.Since(start)
	clean := e.kernelState("intr")
	e.must("down", "intr")
	if strings.Contains(clean, "tentative") || kernelLinkLocal.MatchString(clean) {
		t.Fatalf("a clean up has DAD or kernel link-local addresses:\n%s", clean)
	}

	seed := *crashSeed
	if seed == 0 {
		seed = time.Now().UnixNano()
	}
	t.Logf("a full up takes %v; seed %d (-crash-seed to repeat)", full, seed)
	rng := rand.New(rand.NewSource(seed))
	for i := 0; i < *crashTrials; i++ {
		e.extra = nil
		path := "fast"
		if i%2 == 1 {
			e.extra, path = []string{lab.PlainEnv + "=1"}, "plain"
		}
		delay := time.Duration(float64(full) * rng.Float64())
		cmd := e.cmd("up", file)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(delay)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		what := fmt.Sprintf("trial %d (%s path), SIGKILL after %v", i, path, delay)
		repair := e.run("plan", file).out
		if r := e.run("up", file); r.code != 0 {
			t.Fatalf("%s: up after the kill: exit %d\n%s", what, r.code, r.err)
		}
		if got := e.kernelState("intr"); got != clean {
			t.Errorf("%s: the finished up differs from a clean one:\n%s\nits plan was:\n%s", what, lineDiff(clean, got), repair)
		}
		e.extra = nil
		wantIn(t, what+": plan after up", e.must("plan", file), "nothing to do")
		e.must("down", "intr")
	}
	e.sameAs(before, "after the last down")
}

// kernelLinkLocal matches a lab link (not a loopback) on which the kernel
// makes an IPv6 link-local address of its own, with DAD.
var kernelLinkLocal = regexp.MustCompile(`(veth|bridge|bridge_slave) addrgenmode eui64`)

// lineDiff lists the lines only in a (-) and only in b (+).
func lineDiff(a, b string) string {
	in := func(s string) map[string]int {
		m := map[string]int{}
		for _, l := range strings.Split(s, "\n") {
			m[l]++
		}
		return m
	}
	ma, mb := in(a), in(b)
	var out []string
	for _, l := range strings.Split(a, "\n") {
		if mb[l] == 0 {
			out = append(out, "- "+l)
		}
	}
	for _, l := range strings.Split(b, "\n") {
		if ma[l] == 0 {
			out = append(out, "+ "+l)
		}
	}
	return strings.Join(out, "\n")
}

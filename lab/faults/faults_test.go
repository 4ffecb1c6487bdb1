package faults_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nsnet/nsnet/internal/sandbox"
	"github.com/nsnet/nsnet/lab"
	"github.com/nsnet/nsnet/lab/faults"
	"github.com/nsnet/nsnet/lab/ledger"
	"github.com/nsnet/nsnet/netns"
	"github.com/nsnet/nsnet/probe"
)

func TestMain(m *testing.M) {
	code := sandbox.Main(m)
	if build.dir != "" {
		os.RemoveAll(build.dir)
	}
	os.Exit(code)
}

var build struct {
	once sync.Once
	bin  string
	dir  string
	err  error
}

// nsnetBin builds the nsnet binary once: the delayer and the reverters are
// nsnet processes.
func nsnetBin(t testing.TB) string {
	t.Helper()
	build.once.Do(func() {
		if bin := os.Getenv("NSNET_TEST_BIN"); bin != "" {
			build.bin = bin
			return
		}
		build.dir, build.err = os.MkdirTemp("", "nsnet-faults-test-")
		if build.err != nil {
			return
		}
		build.bin = filepath.Join(build.dir, "nsnet")
		out, err := exec.Command("go", "build", "-o", build.bin, "github.com/nsnet/nsnet/cmd/nsnet").CombinedOutput()
		if err != nil {
			build.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if build.err != nil {
		t.Fatal(build.err)
	}
	return build.bin
}

// The lab: h1, h2 and h3 on one bridge (in node sw), and h4 behind router r.
const labFile = `lab: flt
nodes:
  sw: {}
  r:
    sysctls: {net.ipv4.ip_forward: 1}
  h1: {routes: [{to: default, via: 10.7.0.1}]}
  h2: {routes: [{to: default, via: 10.7.0.1}]}
  h3: {routes: [{to: default, via: 10.7.0.1}]}
  h4: {routes: [{to: default, via: 10.8.0.1}]}
bridges:
  lan: {node: sw, subnets: [10.7.0.0/24, "fd07::/64"]}
links:
  - a: {node: r, name: eth0, addresses: [10.7.0.1/24, "fd07::1/64"]}
    b: {bridge: lan}
  - {a: {node: h1, name: eth0, addresses: [10.7.0.11/24, "fd07::11/64"]}, b: {bridge: lan}}
  - {a: {node: h2, name: eth0, addresses: [10.7.0.12/24, "fd07::12/64"]}, b: {bridge: lan}}
  - {a: {node: h3, name: eth0, addresses: [10.7.0.13/24, "fd07::13/64"]}, b: {bridge: lan}}
  - a: {node: r, name: eth1, addresses: [10.8.0.1/24]}
    b: {node: h4, name: eth0, addresses: [10.8.0.4/24]}
`

var addrOf = map[string]string{"h1": "10.7.0.11", "h2": "10.7.0.12", "h3": "10.7.0.13", "h4": "10.8.0.4"}

type env struct {
	t     *testing.T
	bin   string
	state string
	file  string
	ns    map[string]*netns.NS
}

// up brings the lab up in a state directory of the test's own; down at
// cleanup.
func up(t *testing.T) *env {
	sandbox.Require(t)
	e := &env{t: t, bin: nsnetBin(t), state: t.TempDir(), ns: map[string]*netns.NS{}}
	e.file = filepath.Join(t.TempDir(), "flt.yaml")
	if err := os.WriteFile(e.file, []byte(labFile), 0o644); err != nil {
		t.Fatal(err)
	}
	e.must("up", e.file)
	t.Cleanup(func() {
		for _, ns := range e.ns {
			ns.Close()
		}
		e.must("down", "flt")
		e.assertClean()
	})
	return e
}

func (e *env) run(args ...string) (string, string, int) {
	e.t.Helper()
	cmd := exec.Command(e.bin, args...)
	cmd.Env = append(os.Environ(), "NSNET_STATE_DIR="+e.state)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code, werr := sandbox.ExitCode(err)
	if werr != nil {
		e.t.Fatalf("nsnet %s: %v", strings.Join(args, " "), werr)
	}
	return out.String(), errb.String(), code
}

func (e *env) must(args ...string) string {
	e.t.Helper()
	out, errs, code := e.run(args...)
	if code != 0 {
		e.t.Fatalf("nsnet %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

func (e *env) node(name string) *netns.NS {
	e.t.Helper()
	if ns, ok := e.ns[name]; ok {
		return ns
	}
	ns, err := lab.OpenNode("flt", name, lab.Options{Netns: netns.Default(), StateDir: e.state})
	if err != nil {
		e.t.Fatal(err)
	}
	e.ns[name] = ns
	return ns
}

// rtts pings from one node to another n times.
func (e *env) rtts(from, to string, n int, timeout time.Duration) []time.Duration {
	e.t.Helper()
	p, err := probe.NewPinger(e.node(from), netip.MustParseAddr(addrOf[to]))
	if err != nil {
		e.t.Fatal(err)
	}
	defer p.Close()
	var out []time.Duration
	for i := 0; i < n; i++ {
		start := time.Now()
		if _, err := p.Ping(i+1, timeout); err == nil {
			out = append(out, time.Since(start))
		}
	}
	return out
}

// reaches reports whether proto ("icmp", "tcp", "udp") gets from one node to
// the other and back, with a server of the test's own in the target.
func (e *env) reaches(proto, from, to string) bool {
	e.t.Helper()
	switch proto {
	case "icmp":
		return len(e.rtts(from, to, 2, 150*time.Millisecond)) > 0
	case "tcp":
		ln, err := probe.Listen(e.node(to), "tcp", addrOf[to]+":7001")
		if err != nil {
			e.t.Fatal(err)
		}
		defer ln.Close()
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		c, err := probe.DialContext(ctx, e.node(from), nil, "tcp", addrOf[to]+":7001")
		if err != nil {
			return false
		}
		c.Close()
		return true
	case "udp":
		pc, err := probe.ListenPacket(e.node(to), "udp", addrOf[to]+":7002")
		if err != nil {
			e.t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go probe.ServeUDPEcho(ctx, pc)
		defer pc.Close()
		c, err := probe.DialContext(ctx, e.node(from), nil, "udp", addrOf[to]+":7002")
		if err != nil {
			e.t.Fatal(err)
		}
		defer c.Close()
		for i := 0; i < 3; i++ {
			c.SetDeadline(time.Now().Add(100 * time.Millisecond))
			if _, err := c.Write([]byte("x")); err != nil {
				continue
			}
			buf := make([]byte, 8)
			if _, err := c.Read(buf); err == nil {
				return true
			}
		}
		return false
	}
	panic(proto)
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

// assertClean: nothing of the lab is left: no namespace, no state, no
// helper process.
func (e *env) assertClean() {
	e.t.Helper()
	names, _ := netns.Default().List()
	for _, n := range names {
		if strings.HasPrefix(n, "flt-") {
			e.t.Errorf("namespace %s left", n)
		}
	}
	if _, err := os.Stat(filepath.Join(e.state, "flt", "ledger.json")); err == nil {
		e.t.Errorf("ledger left")
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, _ := os.ReadFile(p)
		if bytes.Contains(b, []byte(e.state)) || bytes.Contains(b, []byte("--delayer\x00"+filepath.Join(e.state, "flt"))) {
			e.t.Errorf("process left: %s", bytes.ReplaceAll(b, []byte{0}, []byte{' '}))
		}
	}
}

func TestDelayLossRateClear(t *testing.T) {
	e := up(t)
	e.must("fault", "set", "flt", "h1:eth0", "delay", "50ms")
	r := e.rtts("h1", "h2", 30, time.Second)
	// The minimum proves the delay; the median bound only catches a gross
	// excess: the userspace delayer on this kernel runs late when the
	// machine is loaded (81 ms medians seen with several suites at once).
	if len(r) != 30 || slices.Min(r) < 50*time.Millisecond || median(r) >= 90*time.Millisecond {
		t.Errorf("delay 50ms: %d/30 replies, min %v, median %v", len(r), slices.Min(r), median(r))
	}
	show := e.must("fault", "show", "flt")
	if !strings.Contains(show, "h1:eth0") || !strings.Contains(show, "delay 50ms") {
		t.Errorf("show:\n%s", show)
	}
	// Replacing the fault: loss on the routed link, counted.
	e.must("fault", "set", "flt", "h1:eth0", "loss", "30%")
	pg, err := probe.NewPinger(e.node("h1"), netip.MustParseAddr(addrOf["h2"]))
	if err != nil {
		t.Fatal(err)
	}
	lost := pg.Series(context.Background(), probe.SeriesOptions{Count: 1000, Interval: time.Millisecond, Timeout: 500 * time.Millisecond}).Loss() * 100
	pg.Close()
	if lost < 20 || lost > 40 {
		t.Errorf("loss 30%%: %.1f%% of 1000 lost", lost)
	}
	js := e.must("fault", "show", "flt", "-j")
	if !strings.Contains(js, `"dropped"`) || strings.Contains(js, `"dropped": 0,`) {
		t.Errorf("show -j has no drops:\n%s", js)
	}
	// Down, and back up by clear.
	e.must("fault", "set", "flt", "h4:eth0", "down")
	if e.reaches("icmp", "h1", "h4") {
		t.Errorf("h4:eth0 down: still reached")
	}
	e.must("fault", "clear", "flt")
	e.must("fault", "clear", "flt") // idempotent
	e.must("fault", "clear", "flt", "h1:eth0")
	if !e.reaches("icmp", "h1", "h4") {
		// The first echo after carrier comes back may meet a neighbour
		// table the carrier loss emptied; a second try must pass.
		time.Sleep(200 * time.Millisecond)
		if !e.reaches("icmp", "h1", "h4") {
			t.Errorf("after clear: h4 not reached again")
		}
	}
	if n := len(e.rtts("h1", "h2", 20, time.Second)); n != 20 {
		t.Errorf("after clear: %d/20 replies h1 -> h2", n)
	}
	if out := e.must("fault", "show", "flt"); !strings.Contains(out, "no faults") {
		t.Errorf("show after clear:\n%s", out)
	}
}

// TestPartitionSharedBridge: h1,h2 | h3 share a bridge; a partition blocks
// TCP, UDP and ICMP between the groups in both directions and nothing within
// them; one-way blocks one direction only; heal restores all.
func TestPartitionSharedBridge(t *testing.T) {
	e := up(t)
	check := func(what string, want map[[2]string]bool) {
		t.Helper()
		for pair, ok := range want {
			for _, proto := range []string{"icmp", "tcp", "udp"} {
				if got := e.reaches(proto, pair[0], pair[1]); got != ok {
					t.Errorf("%s: %s %s -> %s: reached %v, want %v", what, proto, pair[0], pair[1], got, ok)
				}
			}
		}
	}
	e.must("partition", "flt", "h1,h2", "h3")
	check("partition", map[[2]string]bool{
		{"h1", "h2"}: true, {"h2", "h1"}: true,
		{"h1", "h3"}: false, {"h3", "h1"}: false, {"h2", "h3"}: false, {"h3", "h2"}: false,
		{"h1", "h4"}: true, // not named
	})
	// Replaced by a one-way partition: h1 -> h3 dropped, h3 -> h1 passes.
	// TCP and ICMP need both directions; a one-way UDP datagram shows it.
	e.must("partition", "flt", "h1", "h3", "--oneway")
	for _, proto := range []string{"icmp", "tcp", "udp"} {
		if e.reaches(proto, "h1", "h3") || e.reaches(proto, "h3", "h1") {
			t.Errorf("one-way: %s round trip between h1 and h3 passed", proto)
		}
	}
	if !e.oneWay("h3", "h1") || e.oneWay("h1", "h3") {
		t.Errorf("one-way h1 -> h3: datagrams h3->h1 %v (want true), h1->h3 %v (want false)", e.oneWay("h3", "h1"), e.oneWay("h1", "h3"))
	}
	if !e.reaches("icmp", "h2", "h3") {
		t.Errorf("one-way: h2 was cut off too")
	}
	show := e.must("fault", "show", "flt")
	if !strings.Contains(show, "partition: h1 -> h3") {
		t.Errorf("show:\n%s", show)
	}
	e.must("heal", "flt")
	e.must("heal", "flt")
	check("healed", map[[2]string]bool{{"h1", "h3"}: true, {"h3", "h1"}: true, {"h2", "h3"}: true})
}

// oneWay reports whether a UDP datagram from one node arrives at the other.
func (e *env) oneWay(from, to string) bool {
	e.t.Helper()
	pc, err := probe.ListenPacket(e.node(to), "udp", addrOf[to]+":7003")
	if err != nil {
		e.t.Fatal(err)
	}
	defer pc.Close()
	c, err := probe.DialContext(context.Background(), e.node(from), nil, "udp", addrOf[to]+":7003")
	if err != nil {
		e.t.Fatal(err)
	}
	defer c.Close()
	for i := 0; i < 3; i++ {
		c.Write([]byte("x"))
		pc.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		buf := make([]byte, 8)
		if _, _, err := pc.ReadFrom(buf); err == nil {
			return true
		}
	}
	return false
}

// TestRefusals: every bad input is one line naming the rule, and nothing
// changes (the ledger is byte for byte the same).
func TestRefusals(t *testing.T) {
	e := up(t)
	ledger := filepath.Join(e.state, "flt", "ledger.json")
	before, err := os.ReadFile(ledger)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"fault", "set", "flt", "h1:eth0", "delay", "-5ms"}, "delay -5ms: must not be negative"},
		{[]string{"fault", "set", "flt", "h1:eth0", "loss", "120%"}, "loss 120%: must be between 0% and 100%"},
		{[]string{"fault", "set", "flt", "h1:eth0", "rate", "0"}, "rate 0: must be more than 0"},
		{[]string{"fault", "set", "flt", "h1:eth0", "jitter5"}, `unknown keyword "jitter5"`},
		{[]string{"fault", "set", "flt", "h9:eth0", "delay", "5ms"}, "lab flt: has no node h9"},
		{[]string{"fault", "set", "flt", "h1:eth7", "delay", "5ms"}, "lab flt: node h1 has no interface eth7 of the lab's (it has: eth0)"},
		{[]string{"fault", "set", "flt", "sw:lan", "delay", "5ms"}, "lab flt: sw:lan is a bridge, not a link end"},
		{[]string{"fault", "set", "flt", "h1", "delay", "5ms"}, "link end h1: must be NODE:IFACE"},
		{[]string{"fault", "set", "nolab", "h1:eth0", "delay", "5ms"}, "lab nolab: is not up"},
		{[]string{"partition", "flt", "h1,h2", "h2"}, "partition h2: is in groups 1 and 2"},
		{[]string{"partition", "flt", "h1", "h9"}, "lab flt: has no node h9"},
		{[]string{"partition", "flt", "h1", "host"}, "node host is the host's namespace"},
	} {
		out, errs, code := e.run(c.args...)
		if code == 0 || !strings.Contains(errs, c.want) || strings.Count(strings.TrimSpace(errs), "\n") != 0 || out != "" {
			t.Errorf("%s: exit %d, stderr %q, want one line with %q", strings.Join(c.args, " "), code, errs, c.want)
		}
	}
	// Delay on a bridge port cannot go through the delayer: refused,
	// naming the field and what is missing (where netem is missing).
	if _, errs, code := e.run("fault", "set", "flt", "sw:h1-eth0", "delay", "5ms"); code == 0 {
		t.Logf("delay on a bridge port accepted (this kernel has netem)")
		e.must("fault", "clear", "flt")
	} else if !strings.Contains(errs, "delay: not possible on this kernel") {
		t.Errorf("bridge port delay: %s", errs)
	}
	after, _ := os.ReadFile(ledger)
	if !bytes.Equal(stripUpdated(before), stripUpdated(after)) {
		t.Errorf("the ledger changed:\n%s\n%s", before, after)
	}
}

func stripUpdated(b []byte) []byte {
	i := bytes.Index(b, []byte(`"updated":`))
	if i < 0 {
		return b
	}
	j := bytes.IndexByte(b[i:], ',')
	return append(append([]byte{}, b[:i]...), b[i+j:]...)
}

// TestForReverts: --for clears the fault by itself, with the caller gone.
func TestForReverts(t *testing.T) {
	e := up(t)
	e.must("fault", "set", "flt", "h1:eth0", "delay", "30ms", "--for", "1s")
	if r := e.rtts("h1", "h2", 3, time.Second); len(r) != 3 || slices.Min(r) < 30*time.Millisecond {
		t.Fatalf("delay not in force: %v", r)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(e.must("fault", "show", "flt"), "no faults") {
		if time.Now().After(deadline) {
			t.Fatalf("not reverted after 5s:\n%s", e.must("fault", "show", "flt"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if r := e.rtts("h1", "h2", 5, time.Second); len(r) != 5 || median(r) > 10*time.Millisecond {
		t.Errorf("after revert: %v", r)
	}
	// A reverter killed (as a crash or a kill -9 of the wrong process
	// would): the next change of the lab's faults clears the expired fault.
	e.must("fault", "set", "flt", "h1:eth0", "loss", "100%", "--for", "1s")
	led, err := ledger.Store{Dir: e.state}.Read("flt")
	if err != nil {
		t.Fatal(err)
	}
	killed := 0
	for _, p := range led.Procs {
		if p.Role == faults.RoleReverter {
			syscall.Kill(p.PID, syscall.SIGKILL)
			killed++
		}
	}
	if killed != 1 {
		t.Fatalf("%d reverters in the ledger, want 1", killed)
	}
	for time.Now().Before(led.Faults[0].Until.Add(200 * time.Millisecond)) {
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(e.must("fault", "show", "flt"), "h1:eth0") {
		t.Fatalf("the fault went without its reverter: the test proves nothing")
	}
	e.must("fault", "set", "flt", "h2:eth0", "delay", "1ms")
	if show := e.must("fault", "show", "flt"); strings.Contains(show, "h1:eth0") {
		t.Errorf("the expired fault outlived the next fault set:\n%s", show)
	}
	if n := len(e.rtts("h1", "h3", 3, time.Second)); n != 3 {
		t.Errorf("after the expired fault went: %d/3 replies h1 -> h3", n)
	}
}

// TestCrashThenDown: nsnet killed (SIGKILL) at a random moment of fault set
// or partition, then down: nothing is left (the cleanup's assertClean).
func TestCrashThenDown(t *testing.T) {
	sandbox.Require(t)
	bin := nsnetBin(t)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	for trial := 0; trial < 6; trial++ {
		t.Run(fmt.Sprint(trial), func(t *testing.T) {
			e := up(t)
			args := [][]string{
				{"fault", "set", "flt", "h1:eth0", "delay", "20ms", "loss", "1%", "rate", "10mbit", "--for", "30s"},
				{"partition", "flt", "h1,h2", "h3"},
				{"fault", "set", "flt", "h2:eth0", "loss", "gemodel", "1%", "25%", "duplicate", "1%"},
			}[trial%3]
			cmd := exec.Command(bin, args...)
			cmd.Env = append(os.Environ(), "NSNET_STATE_DIR="+e.state)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Duration(rng.IntN(40)) * time.Millisecond)
			cmd.Process.Signal(syscall.SIGKILL)
			cmd.Wait()
			// The cleanup brings the lab down and checks nothing is
			// left.
		})
	}
}

var _ = net.IPv4len

package lab_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nsnet/nsnet/internal/sandbox"
	"github.com/nsnet/nsnet/kernel"
	"github.com/nsnet/nsnet/lab"
	"github.com/nsnet/nsnet/lab/ledger"
	"github.com/nsnet/nsnet/netns"
	"github.com/nsnet/nsnet/probe"
)

// The tests in this file run the nsnet binary inside the test sandbox and
// look at the kernel (and with iproute2) from the outside. They share the
// sandbox's host namespace and /run/netns, so they run one at a time, and
// each leaves nothing behind.

var build struct {
	once sync.Once
	bin  string
	made bool // bin is this run's to remove (not NSNET_TEST_BIN's)
	err  error
}

// nsnetBin builds the nsnet binary once per test run.
func nsnetBin(t testing.TB) string {
	t.Helper()
	build.once.Do(func() {
		// CI's rootless pass cannot use root's Go caches: it builds
		// nsnet beforehand and names it here.
		if bin := os.Getenv("NSNET_TEST_BIN"); bin != "" {
			build.bin = bin
			return
		}
		dir, err := os.MkdirTemp("", "nsnet-lab-test-")
		if err != nil {
			build.err = err
			return
		}
		build.bin, build.made = filepath.Join(dir, "nsnet"), true
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

// env is one test's nsnet: its own state directory.
type env struct {
	t     *testing.T
	bin   string
	state string
	dir   string   // where lab files are written
	etc   string   // the labs' /etc/netns
	extra []string // more environment for nsnet, e.g. lab.PlainEnv
}

func newEnv(t *testing.T) *env {
	sandbox.Require(t)
	return &env{t: t, bin: nsnetBin(t), state: t.TempDir(), dir: t.TempDir(), etc: filepath.Join(t.TempDir(), "etc-netns")}
}

type result struct {
	out, err string
	code     int
}

func (e *env) cmd(args ...string) *exec.Cmd {
	cmd := exec.Command(e.bin, args...)
	cmd.Dir = e.dir
	cmd.Env = append(os.Environ(), "NSNET_STATE_DIR="+e.state, lab.EtcNetnsEnv+"="+e.etc, "PATH="+filepath.Dir(e.bin)+":"+os.Getenv("PATH"))
	cmd.Env = append(cmd.Env, e.extra...)
	return cmd
}

func (e *env) run(args ...string) result {
	e.t.Helper()
	cmd := e.cmd(args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code, werr := sandbox.ExitCode(err)
	if werr != nil {
		e.t.Fatalf("nsnet %s: %v", strings.Join(args, " "), werr)
	}
	return result{out.String(), errb.String(), code}
}

func (e *env) must(args ...string) string {
	e.t.Helper()
	r := e.run(args...)
	if r.code != 0 {
		e.t.Fatalf("nsnet %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.out, r.err)
	}
	return r.out
}

// write puts a lab file in the test's directory and returns its name there.
func (e *env) write(name, text string) string {
	e.t.Helper()
	if err := os.WriteFile(filepath.Join(e.dir, name), []byte(text), 0o644); err != nil {
		e.t.Fatal(err)
	}
	return name
}

func example(t *testing.T, name string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", "examples", name+".yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func ip(t testing.TB, args ...string) string {
	t.Helper()
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// snapshot is everything a lab could leave behind or wrongly touch.
type snapshot struct {
	Links  []string // host interfaces: name, alias, flags, addresses
	Netns  []string // /run/netns
	Mounts []string // nsfs mounts
	State  []string // files under the state directory
	Procs  []string // processes started by lab tests
	// Forward is the host's net.ipv4.ip_forward, which a lab may change
	// and must restore.
	Forward string
}

// procMarker is in the command line of every process the test labs start.
const procMarker = "9999"

func (e *env) snap() snapshot {
	e.t.Helper()
	var s snapshot
	self, h, err := kernel.OpenCurrent()
	if err != nil {
		e.t.Fatal(err)
	}
	defer self.Close()
	defer h.Close()
	links, err := h.Links()
	if err != nil {
		e.t.Fatal(err)
	}
	addrs, err := h.Addrs()
	if err != nil {
		e.t.Fatal(err)
	}
	for _, l := range links {
		var as []string
		for _, a := range addrs {
			if a.LinkIndex == l.Index && !a.Prefix.Addr().IsLinkLocalUnicast() {
				as = append(as, a.Prefix.String())
			}
		}
		sort.Strings(as)
		s.Links = append(s.Links, fmt.Sprintf("%s alias=%q up=%v %v", l.Name, l.Alias, l.Up(), as))
	}
	s.Netns, _ = netns.Default().List()
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		e.t.Fatal(err)
	}
	for _, line := range strings.Split(string(mi), "\n") {
		if strings.Contains(line, " - nsfs ") {
			f := strings.Fields(line)
			s.Mounts = append(s.Mounts, f[4])
		}
	}
	filepath.Walk(e.state, func(p string, fi os.FileInfo, err error) error {
		if err == nil && p != e.state {
			s.State = append(s.State, strings.TrimPrefix(p, e.state))
		}
		return nil
	})
	s.Procs = markedProcs()
	fw, _ := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
	s.Forward = strings.TrimSpace(string(fw))
	sort.Strings(s.Links)
	sort.Strings(s.Mounts)
	return s
}

// markedProcs lists live processes whose command line has procMarker, or
// that are lab gates.
//
// Only processes of this test's own sandbox count (the same user
// namespace): another run of these tests on the machine, in a sandbox of its
// own, starts processes with the same command lines, and they are no part of
// this run's state.
func markedProcs() []string {
	ents, _ := os.ReadDir("/proc")
	self, _ := os.Readlink("/proc/self/ns/user")
	var out []string
	for _, ent := range ents {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil {
			continue
		}
		if ns, err := os.Readlink(filepath.Join("/proc", ent.Name(), "ns", "user")); err != nil || ns != self {
			continue
		}
		cl, err := os.ReadFile(filepath.Join("/proc", ent.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(cl), "\x00"), "\x00")
		marked := false
		for _, a := range args {
			marked = marked || strings.HasPrefix(a, procMarker) || a == lab.GateArg
		}
		if !marked {
			continue
		}
		if st, err := os.ReadFile(filepath.Join("/proc", ent.Name(), "stat")); err == nil {
			if i := bytes.LastIndexByte(st, ')'); i > 0 && len(st) > i+2 && st[i+2] == 'Z' {
				continue // exited, waiting to be reaped
			}
		}
		out = append(out, fmt.Sprintf("%d %s", pid, strings.Join(args, " ")))
	}
	sort.Strings(out)
	return out
}

func (s snapshot) String() string {
	b, _ := json.MarshalIndent(s, "", "  ")
	return string(b)
}

// sameAs fails unless now equals before; processes and links the kernel
// removes asynchronously get a moment.
func (e *env) sameAs(before snapshot, what string) {
	e.t.Helper()
	var now snapshot
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		now = e.snap()
		if now.String() == before.String() || time.Now().After(deadline) {
			break
		}
	}
	if now.String() != before.String() {
		e.t.Fatalf("%s: the system changed.\nbefore: %s\nnow: %s", what, before, now)
	}
}

// ping checks that node of lab reaches dst, through the Go API.
func (e *env) ping(name, node string, dst string) error {
	ns, err := lab.OpenNode(name, node, lab.Options{Netns: netns.Default(), StateDir: e.state})
	if err != nil {
		return err
	}
	defer ns.Close()
	p, err := probe.NewPinger(ns, netip.MustParseAddr(dst))
	if err != nil {
		return err
	}
	defer p.Close()
	_, err = p.Ping(1, 2*time.Second)
	return err
}

func (e *env) mustPing(name, node, dst string) {
	e.t.Helper()
	if err := e.ping(name, node, dst); err != nil {
		e.t.Errorf("lab %s: %s cannot reach %s: %v", name, node, dst, err)
	}
}

func wantIn(t *testing.T, what, s string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			t.Errorf("%s: %q not in:\n%s", what, sub, s)
		}
	}
}

// TestSeedLifecycle: up, second up with no change, drift repairs, down
// three times, with iproute2 seeing what nsnet made.
func TestSeedLifecycle(t *testing.T) {
	e := newEnv(t)
	before := e.snap()
	seed := example(t, "seed")

	out := e.must("up", seed)
	wantIn(t, "first up", out, "lab seed is up: 13 changes")
	wantIn(t, "ip netns list", ip(t, "netns", "list"), "direct_netns")
	wantIn(t, "ip addr", ip(t, "-br", "addr", "show", "veth0"), "10.200.0.2/24", "UP")
	wantIn(t, "ip -n addr", ip(t, "-n", "direct_netns", "-br", "addr", "show", "veth1"), "10.200.0.3/24", "UP")
	wantIn(t, "ip -d link", ip(t, "-d", "link", "show", "veth0"), "alias nsnet:seed")
	// The point-to-point link's peers are permanent neighbours: no ARP.
	wantIn(t, "ip neigh", ip(t, "neigh", "show", "dev", "veth0"), "10.200.0.3 lladdr", "PERMANENT")
	wantIn(t, "ip -n neigh", ip(t, "-n", "direct_netns", "neigh", "show", "dev", "veth1"), "10.200.0.2 lladdr", "PERMANENT")
	e.mustPing("seed", "host", "10.200.0.3")
	e.mustPing("seed", "direct", "10.200.0.2")

	up := e.snap()
	wantIn(t, "second up", e.must("up", seed), "lab seed is up to date: no changes")
	e.sameAs(up, "second up")
	wantIn(t, "plan when up", e.must("plan", seed), "# lab seed: nothing to do")

	// Drift: a link deleted by hand comes back, and only it.
	ip(t, "link", "del", "veth0")
	wantIn(t, "plan after drift", e.must("plan", seed), "ip link add veth0 type veth peer name veth1 netns direct_netns")
	wantIn(t, "up after link deleted", e.must("up", seed), "lab seed is up: 11 changes: 1 link, 2 addresses, 2 neighbours, 6 settings")
	e.sameAs(up, "repaired link")
	e.mustPing("seed", "host", "10.200.0.3")

	// An address removed by hand comes back, and nothing else changes
	// but the neighbour entry the kernel flushed with the link's last
	// IPv4 address.
	ip(t, "-n", "direct_netns", "addr", "del", "10.200.0.3/24", "dev", "veth1")
	wantIn(t, "up after address removed", e.must("up", seed), "lab seed is up: 2 changes: 1 address, 1 neighbour")
	e.sameAs(up, "repaired address")

	// A neighbour entry deleted by hand comes back.
	ip(t, "neigh", "del", "10.200.0.3", "dev", "veth0")
	wantIn(t, "up after neighbour deleted", e.must("up", seed), "lab seed is up: 1 change: 1 neighbour")
	wantIn(t, "ip neigh repaired", ip(t, "neigh", "show", "dev", "veth0"), "10.200.0.3 lladdr", "PERMANENT")

	// A link set down by hand comes up (with its neighbour entries, which
	// going down flushed).
	ip(t, "-n", "direct_netns", "link", "set", "veth1", "down")
	wantIn(t, "up after link down", e.must("up", seed), "lab seed is up: 2 changes: 1 neighbour, 1 setting")
	e.mustPing("seed", "direct", "10.200.0.2")

	// Attributes the plan sets at creation, changed by hand, go back: the
	// MAC (the peer's neighbour entry names it) and addrgenmode, whose
	// kernel mode made a link-local address with DAD when the link came
	// up: it goes too.
	mac := strings.Fields(ip(t, "-br", "link", "show", "veth0"))[2]
	ip(t, "link", "set", "veth0", "down")
	ip(t, "link", "set", "veth0", "address", "02:00:00:00:00:09", "addrgenmode", "eui64")
	ip(t, "link", "set", "veth0", "up")
	wantIn(t, "kernel link-local", ip(t, "addr", "show", "veth0"), "inet6 fe80::")
	wantIn(t, "plan after attributes changed", e.must("plan", seed),
		"ip link set veth0 addrgenmode none", "ip link set veth0 address "+mac, "ip addr del fe80::")
	e.must("up", seed)
	if out := ip(t, "-d", "link", "show", "veth0") + ip(t, "addr", "show", "veth0"); !strings.Contains(out, "addrgenmode none") || !strings.Contains(out, mac) || strings.Contains(out, "inet6") {
		t.Errorf("after up, veth0 is not as the plan makes it:\n%s", out)
	}
	wantIn(t, "plan after repair", e.must("plan", seed), "nothing to do")
	e.mustPing("seed", "direct", "10.200.0.2")

	for i := 0; i < 3; i++ {
		r := e.run("down", seed)
		if r.code != 0 {
			t.Fatalf("down #%d: exit %d: %s", i+1, r.code, r.err)
		}
		if i > 0 {
			wantIn(t, "repeated down", r.out, "no lab named seed exists here: nothing to take down (there are no labs here)")
		}
	}
	e.sameAs(before, "after down")
}

// TestTwoLans: every host reaches every other, in both families, through the
// router; status shows it all; down removes it all.
func TestTwoLans(t *testing.T) {
	e := newEnv(t)
	before := e.snap()
	e.must("up", example(t, "two-lans"))
	hosts := map[string][2]string{
		"h1": {"10.1.0.2", "fd00:1::2"}, "h2": {"10.1.0.3", "fd00:1::3"}, "h3": {"10.1.0.4", "fd00:1::4"},
		"h4": {"10.2.0.2", "fd00:2::2"}, "h5": {"10.2.0.3", "fd00:2::3"}, "h6": {"10.2.0.4", "fd00:2::4"},
	}
	for from := range hosts {
		for to, addrs := range hosts {
			if from != to {
				e.mustPing("two-lans", from, addrs[0])
				e.mustPing("two-lans", from, addrs[1])
			}
		}
	}
	// Nothing of the lab is in the host's namespace.
	now := e.snap()
	e.sameAs(snapshot{Links: before.Links, Netns: now.Netns, Mounts: now.Mounts, State: now.State, Procs: before.Procs, Forward: before.Forward}, "host untouched")

	var st []lab.LabStatus
	if err := json.Unmarshal([]byte(e.must("-j", "status", "two-lans")), &st); err != nil {
		t.Fatal(err)
	}
	if len(st) != 1 || st[0].State != lab.StateUp || len(st[0].NodeStatus) != 9 {
		t.Fatalf("status: %+v", st)
	}
	for _, n := range st[0].NodeStatus {
		for _, l := range n.Links {
			if !l.Present || !l.Up {
				t.Errorf("status: %s:%s is %+v", n.Node, l.Name, l)
			}
		}
	}
	wantIn(t, "status", e.must("status"), "lab two-lans: up", "8 nodes, 10 links, 0 processes",
		"NODE    NETNS            STATE  IFACES  ADDRESSES", "h1      two-lans-h1      up     1/1     10.1.0.2/24 fd00:1::2/64 ")
	wantIn(t, "status h1", e.must("status", "two-lans", "h1", "router"), "node h1 (netns two-lans-h1): up, 1/1 interfaces up", "eth0  UP  10.1.0.2/24 fd00:1::2/64",
		"node router (netns two-lans-router)")
	if r := e.run("status", "two-lans", "nosuch"); r.code != 1 || !strings.Contains(r.err, "no node nosuch") {
		t.Errorf("status of a missing node: %+v", r)
	}
	var one lab.LabStatus
	if err := json.Unmarshal([]byte(e.must("-j", "status", "two-lans", "h2")), &one); err != nil || len(one.NodeStatus) != 1 || one.NodeStatus[0].IfacesUp != 1 {
		t.Errorf("status -j two-lans h2: %+v %v", one, err)
	}
	// Up and labs count links the same way: 8 veth pairs and 2 bridges.
	wantIn(t, "labs", e.must("labs"), "two-lans  up     8      10     0")
	// Drift: a link set down by hand.
	ip(t, "-n", "two-lans-h3", "link", "set", "eth0", "down")
	wantIn(t, "labs", e.must("labs"), "two-lans  degraded", "two-lans is degraded: h3:eth0 down (nsnet up repairs it)")
	wantIn(t, "status", e.must("status", "two-lans"), "h3      two-lans-h3      degraded  0/1")
	e.must("up", example(t, "two-lans"))
	wantIn(t, "labs", e.must("labs"), "two-lans  up ")
	var labs []lab.Summary
	if err := json.Unmarshal([]byte(e.must("-j", "labs")), &labs); err != nil || len(labs) != 1 || labs[0].Nodes != 8 {
		t.Errorf("labs -j: %+v %v", labs, err)
	}
	// exec runs in the node, like ip netns exec, with its exit status.
	wantIn(t, "exec", e.must("exec", "two-lans", "router", "--", "ip", "-br", "addr"), "eth1", "10.1.0.1/24", "eth2")
	if r := e.run("exec", "two-lans", "h1", "--", "sh", "-c", "exit 7"); r.code != 7 {
		t.Errorf("exec exit status %d, want 7", r.code)
	}
	if r := e.run("exec", "two-lans", "nosuch", "--", "true"); r.code == 0 || !strings.Contains(r.err, "lab two-lans has no node nosuch") {
		t.Errorf("exec in a missing node: %+v", r)
	}
	e.names()
	e.must("down", "two-lans")
	e.sameAs(before, "after down")
	if _, err := os.Stat(e.etc); !os.IsNotExist(err) {
		t.Errorf("down left %s: %v", e.etc, err)
	}
	e.must("down", "two-lans")
}

// names: every node of two-lans resolves by name inside the lab, for the
// system's tools and nsnet's own; drift of a hosts file is repaired by up.
func (e *env) names() {
	t := e.t
	hosts := lab.HostsPath(e.etc, "two-lans-h1")
	b, err := os.ReadFile(hosts)
	if err != nil {
		t.Fatal(err)
	}
	// From h1 the router is the address on h1's LAN first.
	wantIn(t, "hosts file", string(b), "10.1.0.1\trouter router.two-lans\nfd00:1::1\trouter router.two-lans\n10.2.0.1\trouter", "10.2.0.4\th6 h6.two-lans", "fd00:2::4\th6 h6.two-lans")
	if _, err := exec.LookPath("getent"); err == nil {
		wantIn(t, "getent", e.must("exec", "two-lans", "h1", "--", "getent", "ahostsv4", "h6.two-lans"), "10.2.0.4")
		wantIn(t, "getent", e.must("exec", "two-lans", "h4", "--", "getent", "hosts", "router"), "fd00:2::1")
	} else {
		t.Log("no getent here: the system resolver is not tried")
	}
	wantIn(t, "nsnet ping", e.must("exec", "two-lans", "h1", "--", "nsnet", "ping", "-c1", "h6"), "PING h6 (10.2.0.4)", "1 received")
	wantIn(t, "nsnet ping", e.must("exec", "two-lans", "h1", "--", "nsnet", "ping", "-c1", "router.two-lans"), "PING router.two-lans (10.1.0.1)")
	wantIn(t, "nsnet -n ping", e.must("-n", "two-lans-h5", "ping", "-c1", "h2"), "PING h2 (10.1.0.3)", "1 received")
	if r := e.run("exec", "two-lans", "h1", "--", "nsnet", "ping", "-c1", "nosuch"); r.code != 2 || !strings.Contains(r.err, "Name or service not known") {
		t.Errorf("ping of an unknown name: %+v", r)
	}
	// Drift: a file changed by hand is rewritten by up.
	os.WriteFile(hosts, []byte("junk\n"), 0o644)
	wantIn(t, "labs", e.must("labs"), "degraded")
	e.must("up", example(t, "two-lans"))
	if nb, _ := os.ReadFile(hosts); string(nb) != string(b) {
		t.Errorf("up did not repair the hosts file: %q", nb)
	}
}

// TestDownAfterNetnsDel: down works when nodes were deleted by hand, and
// when the lab file is gone.
func TestDownAfterNetnsDel(t *testing.T) {
	e := newEnv(t)
	before := e.snap()
	text, err := os.ReadFile(example(t, "two-lans"))
	if err != nil {
		t.Fatal(err)
	}
	file := e.write("lans.yaml", string(text))
	e.must("up", file)
	ip(t, "netns", "del", "two-lans-h1")
	ip(t, "netns", "del", "two-lans-switch")
	os.Remove(filepath.Join(e.dir, file))
	// The file is gone: down by the path it was up from still finds it.
	wantIn(t, "down", e.must("down", file), "lab two-lans is down")
	e.sameAs(before, "after down")

	// An interrupted creation (an empty file where the namespace was to be
	// mounted) is cleaned up by down.
	seed := e.write("seed.yaml", mustRead(t, example(t, "seed")))
	e.must("up", seed)
	ip(t, "netns", "del", "direct_netns")
	if err := os.WriteFile("/run/netns/direct_netns", nil, 0o644); err != nil {
		t.Fatal(err)
	}
	e.must("down", seed)
	e.sameAs(before, "after down over an empty namespace file")

	// And by name.
	e.must("up", seed)
	os.Remove(filepath.Join(e.dir, seed))
	e.must("down", "seed")
	e.sameAs(before, "after down by name")
	if r := e.run("down", "seed.yaml"); r.code == 0 || !strings.Contains(r.err, "no such lab file") {
		t.Errorf("down of a file never up: %+v", r)
	}
}

const procsLab = `lab: procs
nodes:
  host:
    processes: [{cmd: sleep 9999.1}]
  a:
    processes:
      - {cmd: [sh, -c, "echo started in $(readlink /proc/self/ns/net); exec sleep 9999.2"]}
links:
  - {a: {node: host, name: pr0, addresses: [10.77.0.1/24]}, b: {node: a, name: eth0, addresses: [10.77.0.2/24]}}
`

// TestProcesses: processes start in their node, recorded by PID and start
// time; a dead one is restarted by up; down stops them; a recycled PID is
// never signalled.
func TestProcesses(t *testing.T) {
	e := newEnv(t)
	before := e.snap()
	file := e.write("procs.yaml", procsLab)
	wantIn(t, "up", e.must("up", file), "2 processes started")
	st := e.status("procs")
	pids := map[string]int{}
	for _, n := range st.NodeStatus {
		for _, p := range n.Processes {
			if !p.Running {
				t.Errorf("process %v in %s not running", p.Argv, n.Node)
			}
			pids[n.Node] = p.PID
		}
	}
	if len(pids) != 2 {
		t.Fatalf("processes: %+v", st.NodeStatus)
	}
	// The node's process is in the node's namespace.
	nsLink, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", pids["a"]))
	ns, err := netns.Default().Open("procs-a")
	if err != nil {
		t.Fatal(err)
	}
	id, _ := ns.ID()
	ns.Close()
	if !strings.Contains(nsLink, strconv.FormatUint(id.Ino, 10)) {
		t.Errorf("process in %s, node namespace has inode %d", nsLink, id.Ino)
	}
	waitFor(t, "log", func() bool {
		b, _ := os.ReadFile(filepath.Join(e.state, "procs", "a.0.log"))
		return strings.Contains(string(b), "started in "+nsLink)
	})

	wantIn(t, "second up", e.must("up", file), "up to date: no changes")
	if err := killWait(pids["a"]); err != nil {
		t.Fatal(err)
	}
	wantIn(t, "up after a process died", e.must("up", file), "1 change: 1 process started")
	if p := e.status("procs").NodeStatus; p[1].Processes[0].PID == pids["a"] || !p[1].Processes[0].Running || p[1].Processes[0].Restarts != 1 {
		t.Errorf("process not restarted (once): %+v", p[1].Processes)
	}
	wantIn(t, "status a", e.must("status", "procs", "a"), "running (restarted once)")

	// A PID that now belongs to someone else (same PID, other start time)
	// is left alone.
	stranger := exec.Command("sleep", "9999.3")
	if err := stranger.Start(); err != nil {
		t.Fatal(err)
	}
	defer stranger.Process.Kill()
	led, err := os.ReadFile(filepath.Join(e.state, "procs", "ledger.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	json.Unmarshal(led, &m)
	m["processes"] = append(m["processes"].([]any), map[string]any{"node": "host", "index": 5, "argv": []string{"sleep"}, "pid": stranger.Process.Pid, "start": 1})
	led, _ = json.Marshal(m)
	os.WriteFile(filepath.Join(e.state, "procs", "ledger.json"), led, 0o644)

	e.must("down", "procs")
	if err := stranger.Process.Signal(syscall.Signal(0)); err != nil {
		t.Errorf("down signalled a process that is not the lab's: %v", err)
	}
	stranger.Process.Kill()
	stranger.Wait()
	e.sameAs(before, "after down")
}

func (e *env) status(name string) lab.LabStatus {
	e.t.Helper()
	var st []lab.LabStatus
	if err := json.Unmarshal([]byte(e.must("-j", "status", name)), &st); err != nil || len(st) != 1 {
		e.t.Fatalf("status %s: %v %+v", name, err, st)
	}
	return st[0]
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(3 * time.Second); !ok(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// killWait kills a process that is not our child and waits until it is gone.
func killWait(pid int) error {
	p, err := os.FindProcess(pid)
	if err != nil {
		return err
	}
	p.Kill()
	for i := 0; i < 300; i++ {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil || bytes.Contains(b, []byte(") Z ")) {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("pid %d survived SIGKILL", pid)
}

// TestConcurrentUps: two ups of one lab at once both succeed, one after the
// other; ups of two labs at once both succeed.
func TestConcurrentUps(t *testing.T) {
	e := newEnv(t)
	before := e.snap()
	file := e.write("lans.yaml", mustRead(t, example(t, "two-lans")))
	other := e.write("seed.yaml", mustRead(t, example(t, "seed")))
	var wg sync.WaitGroup
	res := make([]result, 3)
	for i, f := range []string{file, file, other} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res[i] = e.run("up", f)
		}()
	}
	wg.Wait()
	for _, r := range res {
		if r.code != 0 {
			t.Fatalf("concurrent up: %+v", r)
		}
	}
	changed := 0
	for _, r := range res[:2] {
		if strings.Contains(r.out, "two-lans is up: ") {
			changed++
		}
	}
	if changed != 1 {
		t.Errorf("two ups of one lab: %d made changes, want 1:\n%+v", changed, res[:2])
	}
	e.mustPing("two-lans", "h1", "10.2.0.4")
	e.mustPing("seed", "direct", "10.200.0.2")
	e.must("down", "two-lans")
	e.must("down", "seed")
	e.sameAs(before, "after down")
}

// TestConcurrentUpDown: many nsnet processes bringing one lab up and down at
// once each exit 0 and say what they did: 16 downs after an up (one takes
// the lab down, the others say another did, or that there is no such lab;
// listings among them leave nothing), and 8 ups racing 8 downs. A mistyped name is no lab, and the labs that
// exist are named. Nothing is left behind.
func TestConcurrentUpDown(t *testing.T) {
	e := newEnv(t)
	before := e.snap()
	file := e.write("race.yaml", "lab: race\nnodes: {a: {}, b: {}}\nlinks:\n  - {a: {node: a, name: eth0, addresses: [10.77.0.1/24]}, b: {node: b, name: eth0, addresses: [10.77.0.2/24]}}\n")
	t.Cleanup(func() { e.run("down", "race") })
	e.must("up", file)
	if r := e.run("down", "rcae"); r.code != 0 || r.out != "no lab named rcae exists here: nothing to take down (labs here: race)\n" {
		t.Errorf("down of a mistyped name: %+v", r)
	}
	all := func(args ...[]string) []result {
		res := make([]result, len(args))
		var wg sync.WaitGroup
		for i, a := range args {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res[i] = e.run(a...)
			}()
		}
		wg.Wait()
		return res
	}
	downOK := func(r result) bool {
		return strings.HasPrefix(r.out, "lab race is down: ") ||
			r.out == "no lab named race exists here: nothing to take down (there are no labs here)\n"
	}
	for round := 0; round < 10; round++ {
		if round > 0 {
			e.must("up", file)
		}
		var downs [][]string
		for range 16 {
			downs = append(downs, []string{"down", "race"})
		}
		// Listings among them, which must not make the lab's directory
		// again (the state directory is in the snapshot).
		downs = append(downs, []string{"labs"}, []string{"status"}, []string{"labs"}, []string{"status"})
		removed := 0
		for _, r := range all(downs...) {
			if r.code != 0 {
				t.Fatalf("round %d: exit %d\nstdout: %s\nstderr: %s", round, r.code, r.out, r.err)
			}
			if r.out == "" || strings.HasPrefix(r.out, "LAB") || strings.HasPrefix(r.out, "no labs") || strings.HasPrefix(r.out, "lab race") && !strings.Contains(r.out, " is down") {
				continue // a listing
			}
			if !downOK(r) {
				t.Fatalf("round %d: one of 16 downs: exit %d\nstdout: %s\nstderr: %s", round, r.code, r.out, r.err)
			}
			if strings.HasPrefix(r.out, "lab race is down: ") && !strings.Contains(r.out, "another nsnet took it down") {
				removed++
			}
		}
		if removed != 1 {
			t.Errorf("round %d: %d of 16 downs took the lab down, want 1", round, removed)
		}
		e.sameAs(before, fmt.Sprintf("round %d of 16 downs", round))
	}
	for round := 0; round < 10; round++ {
		var cmds [][]string
		for i := range 16 {
			if i%2 == 0 {
				cmds = append(cmds, []string{"up", file})
			} else {
				cmds = append(cmds, []string{"down", "race"})
			}
		}
		for i, r := range all(cmds...) {
			ok := downOK(r)
			if cmds[i][0] == "up" {
				ok = strings.HasPrefix(r.out, "lab race is up")
			}
			if r.code != 0 || !ok {
				t.Fatalf("round %d: %s while 8 ups raced 8 downs: exit %d\nstdout: %s\nstderr: %s", round, cmds[i][0], r.code, r.out, r.err)
			}
		}
		e.must("down", "race")
		e.sameAs(before, fmt.Sprintf("round %d of ups racing downs", round))
	}
}

// TestInvalidChangesNothing: every rule, through the command line: the
// message is given, and nothing changed.
func TestInvalidChangesNothing(t *testing.T) {
	e := newEnv(t)
	before := e.snap()
	for _, bl := range badLabs() {
		e.write("bad.yaml", bl.file)
		for _, cmd := range []string{"up", "plan"} {
			r := e.run(cmd, "bad.yaml")
			if r.code != 1 {
				t.Errorf("%s: %s exited %d", bl.name, cmd, r.code)
			}
			for _, w := range bl.want {
				wantIn(t, bl.name, r.err, w)
			}
		}
	}
	e.sameAs(before, "after invalid labs")
}

// TestConflicts: names that exist and are not the lab's are refused before
// anything changes, and down of one lab never touches another's objects or
// objects it did not make.
func TestConflicts(t *testing.T) {
	e := newEnv(t)
	before := e.snap()
	seed := e.write("seed.yaml", mustRead(t, example(t, "seed")))

	ip(t, "link", "add", "veth0", "type", "veth", "peer", "name", "mine0")
	ip(t, "netns", "add", "direct_netns")
	r := e.run("up", seed)
	wantIn(t, "conflicts", r.err,
		`seed.yaml:11:3: nodes.direct: namespace "direct_netns" already exists and is not lab seed's`,
		`seed.yaml:17:27: links[0].a.name: interface "veth0" already exists in the host and is not lab seed's`)
	ip(t, "link", "del", "veth0")
	ip(t, "netns", "del", "direct_netns")
	e.sameAs(before, "after refused up")

	// A name in /run/netns that is not a namespace (an empty file, as an
	// interrupted ip netns add leaves) is not taken either.
	if err := os.WriteFile("/run/netns/direct_netns", nil, 0o644); err != nil {
		t.Fatal(err)
	}
	wantIn(t, "stale file", e.run("up", seed).err, `nodes.direct: "direct_netns" exists in the namespace directory but is not a namespace`)
	os.Remove("/run/netns/direct_netns")
	e.sameAs(before, "after refused up")

	// Objects made by hand with the lab's mark, but not in its ledger, are
	// not the lab's: up refuses them like any other name in use, and down
	// (of the lab up without them) leaves them, and a veth inside, alone.
	ip(t, "netns", "add", "direct_netns")
	ip(t, "-n", "direct_netns", "link", "set", "lo", "alias", "nsnet:seed")
	ip(t, "-n", "direct_netns", "link", "add", "inside0", "type", "veth", "peer", "name", "inside1")
	ip(t, "link", "add", "veth0", "type", "veth", "peer", "name", "mine0")
	ip(t, "link", "set", "veth0", "alias", "nsnet:seed")
	r = e.run("up", seed)
	if r.code != 1 {
		t.Errorf("up over marked objects not in the ledger: exit %d", r.code)
	}
	wantIn(t, "marked, not in the ledger", r.err,
		`seed.yaml:11:3: nodes.direct: namespace "direct_netns" carries lab seed's mark but is not in its ledger, so the lab did not make it`,
		`seed.yaml:17:27: links[0].a.name: interface "veth0" in the host carries lab seed's mark but is not in its ledger, so the lab did not make it`)
	if r := e.run("down", "seed"); r.code != 0 {
		t.Errorf("down: %+v", r)
	}
	wantIn(t, "after down, the hand-made namespace's veth", ip(t, "-n", "direct_netns", "-br", "link"), "inside0")
	wantIn(t, "after down, the hand-made host link", ip(t, "-br", "link", "show", "veth0"), "veth0")
	ip(t, "link", "del", "veth0")
	ip(t, "netns", "del", "direct_netns")
	e.sameAs(before, "after refused up of marked objects")

	// Objects the ledger lists but someone else remade by hand are left
	// alone by down.
	e.must("up", seed)
	ip(t, "netns", "del", "direct_netns")
	waitFor(t, "veth0 to go", func() bool { return exec.Command("ip", "link", "show", "veth0").Run() != nil })
	ip(t, "netns", "add", "direct_netns")
	ip(t, "link", "add", "veth0", "type", "veth", "peer", "name", "mine0")
	r = e.run("down", "seed")
	if r.code != 0 {
		t.Fatalf("down: %+v", r)
	}
	wantIn(t, "down notes", r.err, "namespace direct_netns is not marked as lab seed's", "interface veth0 in the host is not marked as lab seed's")
	wantIn(t, "ip netns list", ip(t, "netns", "list"), "direct_netns")
	ip(t, "link", "del", "veth0")
	ip(t, "netns", "del", "direct_netns")
	e.sameAs(before, "after down of a remade lab")

	// Another lab wanting the same names.
	e.must("up", seed)
	twin := e.write("twin.yaml", strings.Replace(mustRead(t, example(t, "seed")), "lab: seed", "lab: twin", 1))
	r = e.run("up", twin)
	wantIn(t, "twin", r.err, `nodes.direct: namespace "direct_netns" belongs to lab seed`, `interface "veth0" in the host belongs to lab seed`)
	e.must("down", "twin")
	e.mustPing("seed", "host", "10.200.0.3")
	e.must("down", "seed")
	e.sameAs(before, "after down")
}

// TestProcessThatCannotStart: a command that cannot be run fails up with the
// reason; down then cleans up as usual.
func TestProcessThatCannotStart(t *testing.T) {
	e := newEnv(t)
	before := e.snap()
	file := e.write("bad.yaml", "lab: badproc\nnodes:\n  a: {processes: [{cmd: no-such-command-9999}]}\n")
	r := e.run("up", file)
	if r.code != 1 || !strings.Contains(r.err, `start process "no-such-command-9999" in node a: exec: "no-such-command-9999": executable file not found in $PATH`) {
		t.Errorf("up with a bad command: %+v", r)
	}
	e.must("down", "badproc")
	e.sameAs(before, "after down")
}

// TestSysctlsOnTheKernel: node keys, host keys and keys of the lab's own
// interfaces are set where they belong; down puts every host key back to
// its value from before the first up, even after an up that changed the
// file's value; refused keys change nothing.
func TestSysctlsOnTheKernel(t *testing.T) {
	e := newEnv(t)
	before := e.snap()
	read := func(ns, key string) string {
		t.Helper()
		args := []string{"cat", "/proc/sys/" + strings.ReplaceAll(key, ".", "/")}
		if ns != "" {
			args = append([]string{"netns", "exec", ns}, args...)
			return strings.TrimSpace(ip(t, args...))
		}
		b, err := os.ReadFile(args[1])
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(b))
	}
	hostKeys := []string{"net.ipv4.ip_forward", "net.core.somaxconn", "net.ipv4.conf.all.rp_filter", "net.ipv4.conf.default.accept_local"}
	old := map[string]string{}
	for _, k := range hostKeys {
		old[k] = read("", k)
	}
	text := `lab: sc
nodes:
  a:
    sysctls: {net.core.somaxconn: 777, net.ipv4.conf.eth0.rp_filter: 2, net.ipv6.conf.eth0.accept_dad: 0}
  host:
    sysctls: {net.ipv4.ip_forward: 1, net.core.somaxconn: 1111, net.ipv4.conf.all.rp_filter: 2, net.ipv4.conf.default.accept_local: 1, net.ipv4.conf.sc0.forwarding: 1}
links:
  - {a: {node: a, name: eth0, addresses: [10.61.0.2/24]}, b: {node: host, name: sc0, addresses: [10.61.0.1/24]}}
`
	file := e.write("sc.yaml", text)
	e.must("up", file)
	for _, c := range [][3]string{
		{"sc-a", "net.core.somaxconn", "777"}, {"sc-a", "net.ipv4.conf.eth0.rp_filter", "2"}, {"sc-a", "net.ipv6.conf.eth0.accept_dad", "0"},
		{"", "net.ipv4.ip_forward", "1"}, {"", "net.core.somaxconn", "1111"}, {"", "net.ipv4.conf.all.rp_filter", "2"},
		{"", "net.ipv4.conf.default.accept_local", "1"}, {"", "net.ipv4.conf.sc0.forwarding", "1"},
	} {
		if got := read(c[0], c[1]); got != c[2] {
			t.Errorf("after up, %s in %q is %s, want %s", c[1], c[0], got, c[2])
		}
	}
	wantIn(t, "second up", e.must("up", file), "no changes")
	// A new value in the file: the value to restore stays the first one.
	e.write("sc.yaml", strings.Replace(text, "somaxconn: 1111", "somaxconn: 2222", 1))
	e.must("up", file)
	if got := read("", "net.core.somaxconn"); got != "2222" {
		t.Errorf("after the second up, net.core.somaxconn is %s, want 2222", got)
	}
	e.must("down", "sc")
	for _, k := range hostKeys {
		if got := read("", k); got != old[k] {
			t.Errorf("after down, host %s is %s, want %s as before up", k, got, old[k])
		}
	}
	e.sameAs(before, "after down")

	for _, bl := range badSysctlLabs() {
		e.write("bad.yaml", bl.file)
		for _, cmd := range []string{"up", "plan"} {
			r := e.run(cmd, "bad.yaml")
			if r.code != 1 {
				t.Errorf("%s: %s exited %d", bl.name, cmd, r.code)
			}
			for _, w := range bl.want {
				// The place and field; the rule for a global key
				// depends on the initial namespace, which the
				// sandbox hides.
				i := strings.Index(w, ": ") + 2
				wantIn(t, bl.name, r.err, w[:i+strings.Index(w[i:], ": ")+2])
			}
		}
	}
	e.sameAs(before, "after refused sysctls")
}

// TestGatedProcessIsNotRunning: a process still at its gate (its nsnet
// died after recording it, before its go-ahead took effect) does not count
// as running, so the up that repairs the lab stops it and starts it again;
// once through the gate it does count.
func TestGatedProcessIsNotRunning(t *testing.T) {
	sandbox.Require(t)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	cmd := exec.Command(nsnetBin(t), "exec", lab.GateArg, "/nonexistent", "", "--", "sleep", "9999.7")
	cmd.ExtraFiles = []*os.File{r}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r.Close()
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	proc := func() ledger.Proc {
		st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", cmd.Process.Pid))
		if err != nil {
			t.Fatal(err)
		}
		f := strings.Fields(string(st[bytes.LastIndexByte(st, ')')+1:]))
		start, _ := strconv.ParseUint(f[19], 10, 64)
		return ledger.Proc{PID: cmd.Process.Pid, Start: start}
	}
	gated := proc()
	if lab.ProcessRunning(gated) {
		t.Error("a process at its gate counts as running")
	}
	io.WriteString(w, "go\n")
	w.Close()
	for deadline := time.Now().Add(3 * time.Second); !strings.HasPrefix(mustReadProc(t, cmd.Process.Pid), "sleep"); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the gate did not run its command")
		}
	}
	if !lab.ProcessRunning(gated) {
		t.Error("a process through its gate does not count as running")
	}
}

func mustReadProc(t *testing.T, pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

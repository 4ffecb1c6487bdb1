package lab_test

import (
	"bufio"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nsnet/nsnet/internal/sandbox"
	"github.com/nsnet/nsnet/kernel"
	"github.com/nsnet/nsnet/lab"
	"github.com/nsnet/nsnet/netns"
	"github.com/nsnet/nsnet/probe"
)

// A simulated machine: a network namespace and a mount namespace with a
// private /run (its /run/netns and its state directory /run/nsnet), kept
// alive by a process the test started, joined to the others by a veth to
// an underlay bridge in the test's sandbox.
type machine struct {
	t    *testing.T
	name string
	cmd  *exec.Cmd
	bin  string
}

func (m *machine) pid() string  { return strconv.Itoa(m.cmd.Process.Pid) }
func (m *machine) root() string { return "/proc/" + m.pid() + "/root" }

func (m *machine) opt() lab.Options {
	return lab.Options{Netns: netns.Dir{Path: m.root() + "/run/netns"}, StateDir: m.root() + "/run/nsnet"}
}

// nsnet runs the nsnet binary on the machine.
func (m *machine) nsnet(args ...string) (string, error) {
	cmd := exec.Command("nsenter", append([]string{"-t", m.pid(), "-n", "-m", "--", m.bin}, args...)...)
	cmd.Env = append(os.Environ(), "NSNET_STATE_DIR=/run/nsnet")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s: nsnet %s: %v\n%s", m.name, strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

func (m *machine) must(args ...string) string {
	m.t.Helper()
	out, err := m.nsnet(args...)
	if err != nil {
		m.t.Fatal(err)
	}
	return out
}

// newMachines starts n machines on an underlay bridge, machine i (from 1)
// with the underlay addresses addrs[i-1] (with prefix lengths).
func newMachines(t *testing.T, ul string, addrs [][]string) []*machine {
	sandbox.Require(t)
	bin := nsnetBin(t)
	ip(t, "link", "add", ul, "type", "bridge")
	t.Cleanup(func() { exec.Command("ip", "link", "del", ul).Run() })
	ip(t, "link", "set", ul, "up")
	var ms []*machine
	for i, as := range addrs {
		m := &machine{t: t, name: fmt.Sprintf("m%d", i+1), bin: bin}
		m.cmd = exec.Command("unshare", "-n", "-m", "--propagation", "private", "sh", "-c",
			"mount -t tmpfs tmpfs /run && mkdir -p /run/netns /run/nsnet && echo ready && exec sleep 3600")
		out, err := m.cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := m.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			m.nsnet("down", "--host", m.name, "multi")
			m.cmd.Process.Kill()
			m.cmd.Wait()
		})
		if line, err := bufio.NewReader(out).ReadString('\n'); err != nil || line != "ready\n" {
			t.Fatalf("machine %s: %q %v", m.name, line, err)
		}
		port := ul + strconv.Itoa(i+1)
		ip(t, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", m.pid())
		// Deleted here, at once: the kernel destroys the machine's
		// namespace, and with it this end, only some time after the
		// machine's process is gone.
		t.Cleanup(func() { exec.Command("ip", "link", "del", port).Run() })
		ip(t, "link", "set", port, "master", ul, "up")
		in := func(args ...string) {
			cmd := exec.Command("nsenter", append([]string{"-t", m.pid(), "-n", "--", "ip"}, args...)...)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%s: ip %s: %v\n%s", m.name, strings.Join(args, " "), err, out)
			}
		}
		in("link", "set", "lo", "up")
		for _, a := range as {
			in("addr", "add", a, "dev", "eth0", "nodad")
		}
		in("link", "set", "eth0", "up")
		ms = append(ms, m)
	}
	return ms
}

// ping: node of the lab on machine m reaches dst, within a few seconds
// (the first packets wait for ARP across the underlay).
func (m *machine) ping(node, dst string) error {
	ns, err := lab.OpenNode("multi", node, m.opt())
	if err != nil {
		return err
	}
	defer ns.Close()
	p, err := probe.NewPinger(ns, netip.MustParseAddr(dst))
	if err != nil {
		return err
	}
	defer p.Close()
	for seq := 1; ; seq++ {
		_, err = p.Ping(seq, 500*time.Millisecond)
		if err == nil || seq == 8 {
			return err
		}
	}
}

func (m *machine) mustPing(node, dst string) {
	m.t.Helper()
	if err := m.ping(node, dst); err != nil {
		m.t.Errorf("%s: %s cannot reach %s: %v", m.name, node, dst, err)
	}
}

const multiLab = `lab: multi
hosts:
  m1: {address: %s}
  m2: {address: %s}
nodes:
  sw: {}
  a: {host: m1}
  b: {host: m2}
  c: {host: m2}
bridges:
  lan: {node: sw, subnets: [10.1.0.0/24, "fd00:1::/64"]}
links:
  - a: {node: a, name: eth0, addresses: [10.0.0.1/24, "fd00::1/64"]}
    b: {node: b, name: eth0, addresses: [10.0.0.2/24, "fd00::2/64"]}
  - a: {node: b, name: eth1, addresses: [10.0.1.1/24]}
    b: {node: c, name: eth1, addresses: [10.0.1.2/24]}
  - a: {node: c, name: lan0, addresses: [auto]}
    b: {bridge: lan}
  - a: {node: a, name: lan0, addresses: [auto]}
    b: {bridge: lan}
expect:
  - {from: a, to: 10.0.0.2, proto: icmp}
  - {from: c, to: 10.1.0.2, proto: icmp}
`

// TestAcrossMachines: one lab over two simulated machines, over an IPv4 and
// an IPv6 underlay: reachability across machines (IPv4 and IPv6 inside),
// a bridge with a port on the other machine, the MTU VXLAN allows, up in
// either order, idempotent second up, down on one machine leaving the rest
// working and up bringing it back.
func TestAcrossMachines(t *testing.T) {
	for _, c := range []struct {
		name, ul   string
		m1, m2, m3 string // m3 is a machine on the underlay that is not the lab's
		mtu        int
	}{
		{"ipv4 underlay", "ul4-", "192.168.50.1", "192.168.50.2", "192.168.50.9", 1450},
		{"ipv6 underlay", "ul6-", "fd00:50::1", "fd00:50::2", "fd00:50::9", 1430},
	} {
		t.Run(c.name, func(t *testing.T) {
			bits := "/24"
			if strings.Contains(c.m1, ":") {
				bits = "/64"
			}
			ms := newMachines(t, c.ul, [][]string{{c.m1 + bits}, {c.m2 + bits}, {c.m3 + bits}})
			m1, m2, m3 := ms[0], ms[1], ms[2]
			e := newEnv(t)
			file := filepath.Join(e.dir, e.write("multi.yaml", fmt.Sprintf(multiLab, strconv.Quote(c.m1), strconv.Quote(c.m2))))
			// m2 first: a link comes up when both halves exist.
			m2.must("up", file)
			m1.must("up", file, "--host", "m1")
			m1.mustPing("a", "10.0.0.2")
			m1.mustPing("a", "fd00::2")
			m2.mustPing("b", "10.0.0.1")
			m2.mustPing("c", "10.1.0.2") // c on m2 through the bridge on m1 to a
			m1.mustPing("a", "fd00:1::1")
			m2.mustPing("b", "10.0.1.2")
			if out := m1.must("up", file); !strings.Contains(out, "no changes") {
				t.Errorf("second up on m1: %s", out)
			}
			if out := m2.must("up", file); !strings.Contains(out, "no changes") {
				t.Errorf("second up on m2: %s", out)
			}
			dfSend(t, m1, m2, "a", "b", "10.0.0.2", c.mtu)
			// Drift: a VXLAN half deleted by hand, the guard too; up puts
			// both back.
			if out, err := exec.Command("nsenter", "-t", m1.pid(), "-n", "-m", "--", "ip", "-n", "multi-a", "link", "del", "eth0").CombinedOutput(); err != nil {
				t.Fatalf("ip link del: %v\n%s", err, out)
			}
			delGuard(t, m1)
			if hasGuard(t, m1) {
				t.Fatal("the guard is still there after nft delete table")
			}
			if out := m1.must("up", file); strings.Contains(out, "no changes") {
				t.Errorf("up after drift changed nothing: %s", out)
			}
			m1.mustPing("a", "10.0.0.2")
			if !hasGuard(t, m1) {
				t.Error("up after drift did not put the guard back")
			}
			guardDrops(t, m1, m3, c.m1)
			// check on m1 runs the expectations from m1's nodes, and says
			// which it skipped.
			out := m1.must("check", file)
			wantIn(t, "check on m1", out, "1 passed", "check: skipped here (m1): c -> 10.1.0.2, from a node on m2")
			st := m1.must("status", "multi", "a", "sw")
			wantIn(t, "status on m1", st, "vxlan to b:eth0 on m2 (vni ", "remote "+c.m2+")", "port of lan")
			st = m1.must("status", "multi")
			wantIn(t, "status on m1", st, "host m1's part", "on m2 ("+c.m2+"): 2 nodes: b, c (nsnet status there)")
			elsewhere(t, m1, c.m2)
			// down on m2: m1's part stays and works alone.
			if !hasGuard(t, m2) {
				t.Error("m2 has no VXLAN guard table while its part is up")
			}
			m2.must("down", "multi")
			if hasGuard(t, m2) {
				t.Error("down on m2 left the lab's VXLAN guard table")
			}
			// The kernel destroys m2's namespaces (and b's half with
			// them) a moment after down has deleted them.
			for deadline := time.Now().Add(30 * time.Second); m1.ping("a", "10.0.0.2") == nil; time.Sleep(50 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatal("a still reaches b 30 s after m2's down")
				}
			}
			if out := m1.must("up", file); !strings.Contains(out, "no changes") {
				t.Errorf("up on m1 after m2's down: %s", out)
			}
			m2.must("up", file)
			m1.mustPing("a", "10.0.0.2")
			m2.mustPing("c", "10.1.0.2")
		})
	}
}

// dfSend sends don't-fragment UDP datagrams from node from on machine a to
// node to on machine b: one of the link's full MTU arrives, one byte more
// is refused.
func dfSend(t *testing.T, a, b *machine, from, to, dst string, mtu int) {
	t.Helper()
	rns, err := lab.OpenNode("multi", to, b.opt())
	if err != nil {
		t.Fatal(err)
	}
	defer rns.Close()
	sns, err := lab.OpenNode("multi", from, a.opt())
	if err != nil {
		t.Fatal(err)
	}
	defer sns.Close()
	var rfd, sfd int
	if err := rns.Do(func() error {
		var err error
		if rfd, err = unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0); err != nil {
			return err
		}
		return unix.Bind(rfd, &unix.SockaddrInet4{Port: 9999})
	}); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(rfd)
	if err := sns.Do(func() error {
		var err error
		sfd, err = unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(sfd)
	if err := unix.SetsockoptInt(sfd, unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, unix.IP_PMTUDISC_DO); err != nil {
		t.Fatal(err)
	}
	unix.SetsockoptTimeval(rfd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 2})
	to4 := &unix.SockaddrInet4{Port: 9999, Addr: netip.MustParseAddr(dst).As4()}
	full := mtu - 28 // IPv4 and UDP headers
	if err := unix.Sendto(sfd, make([]byte, full+1), 0, to4); !errors.Is(err, syscall.EMSGSIZE) {
		t.Errorf("a don't-fragment datagram of MTU %d + 1: %v, want EMSGSIZE", mtu, err)
	}
	if err := unix.Sendto(sfd, make([]byte, full), 0, to4); err != nil {
		t.Fatalf("a don't-fragment datagram of the full MTU %d: %v", mtu, err)
	}
	buf := make([]byte, 65536)
	n, _, err := unix.Recvfrom(rfd, buf, 0)
	if err != nil || n != full {
		t.Errorf("the datagram of the full MTU %d did not arrive across machines: %d bytes, %v", mtu, n, err)
	}
}

// guardDrops: a datagram to the lab's VXLAN port on machine m from a
// machine that is not one of the lab's hosts is dropped by the lab's guard
// (its counter), while the lab's own traffic passes (the pings above).
func guardDrops(t *testing.T, m, stranger *machine, dst string) {
	t.Helper()
	hostNS, err := netns.Open("/proc/" + m.pid() + "/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	defer hostNS.Close()
	nft, err := kernel.OpenNFT(hostNS)
	if err != nil {
		t.Fatal(err)
	}
	defer nft.Close()
	before, err := nft.VXLANGuardDrops(lab.GuardTable("multi"))
	if err != nil {
		t.Fatal(err)
	}
	sns, err := netns.Open("/proc/" + stranger.pid() + "/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	defer sns.Close()
	a := netip.MustParseAddr(dst)
	var fd int
	if err := sns.Do(func() error {
		var err error
		fam := unix.AF_INET
		if a.Is6() {
			fam = unix.AF_INET6
		}
		fd, err = unix.Socket(fam, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	var to unix.Sockaddr = &unix.SockaddrInet6{Port: lab.DefaultVXLANPort, Addr: a.As16()}
	if a.Is4() {
		to = &unix.SockaddrInet4{Port: lab.DefaultVXLANPort, Addr: a.As4()}
	}
	// A VXLAN header (flags: VNI valid) and a short frame.
	pkt := append([]byte{0x08, 0, 0, 0, 0, 0, 1, 0}, make([]byte, 60)...)
	for i := 0; i < 3; i++ {
		if err := unix.Sendto(fd, pkt, 0, to); err != nil {
			t.Fatalf("send from the stranger: %v", err)
		}
	}
	waitFor(t, "the guard to drop the stranger's datagrams", func() bool {
		n, err := nft.VXLANGuardDrops(lab.GuardTable("multi"))
		return err == nil && n >= before+3
	})
}

func hasGuard(t *testing.T, m *machine) bool {
	t.Helper()
	ns, err := netns.Open("/proc/" + m.pid() + "/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	nft, err := kernel.OpenNFT(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer nft.Close()
	ok, err := nft.HasVXLANGuard(lab.GuardTable("multi"))
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// TestAcrossMachinesCrash: nsnet up killed (SIGKILL) at points through its
// run on one machine, then down there, leaves nothing of the lab on that
// machine: no namespace, no link, no guard, no ledger.
func TestAcrossMachinesCrash(t *testing.T) {
	ms := newMachines(t, "ulc-", [][]string{{"192.168.51.1/24"}, {"192.168.51.2/24"}})
	m1 := ms[0]
	e := newEnv(t)
	file := filepath.Join(e.dir, e.write("multi.yaml", fmt.Sprintf(multiLab, "192.168.51.1", "192.168.51.2")))
	start := time.Now()
	m1.must("up", file)
	full := time.Since(start)
	m1.must("down", "multi")
	for i, frac := range []float64{0.05, 0.2, 0.4, 0.6, 0.8} {
		cmd := exec.Command("nsenter", "-t", m1.pid(), "-n", "-m", "--", m1.bin, "up", file)
		cmd.Env = append(os.Environ(), "NSNET_STATE_DIR=/run/nsnet")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(frac * float64(full)))
		cmd.Process.Kill()
		cmd.Wait()
		m1.must("down", "multi")
		ents, err := os.ReadDir(m1.root() + "/run/netns")
		if err != nil || len(ents) != 0 {
			t.Errorf("trial %d (kill after %.0f%% of an up): namespaces left: %v %v", i, frac*100, ents, err)
		}
		if hasGuard(t, m1) {
			t.Errorf("trial %d: the guard table is left", i)
		}
		out, err := exec.Command("nsenter", "-t", m1.pid(), "-n", "--", "ip", "-br", "link").CombinedOutput()
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if f := strings.Fields(line); len(f) > 0 && f[0] != "lo" && !strings.HasPrefix(f[0], "eth0") {
				t.Errorf("trial %d: link left on the machine: %s", i, line)
			}
		}
	}
}

// elsewhere: on machine m (the lab's m1), every command that names a node
// of m2 says where it is, and --host naming m2 is refused.
func elsewhere(t *testing.T, m *machine, m2addr string) {
	t.Helper()
	where := "node b of lab multi is on m2 (" + m2addr + "), not on this machine (m1): run it there"
	for _, args := range [][]string{
		{"exec", "multi", "b", "true"},
		{"logs", "multi", "b"},
		{"status", "multi", "b"},
		{"perf", "multi", "b", "a", "--icmp", "-c", "1"},
		{"perf", "multi", "a", "b", "-t", "0.1"},
		{"fault", "set", "multi", "b:eth0", "loss", "10%"},
		{"partition", "multi", "a", "b"},
	} {
		out, err := m.nsnet(args...)
		if err == nil || !strings.Contains(out, where) {
			t.Errorf("nsnet %s on m1: %v\n%s\nwant %q", strings.Join(args, " "), err, out, where)
		}
	}
	mismatch := "--host \"m2\": this machine holds host m1's part of lab multi, not m2's"
	for _, args := range [][]string{
		{"exec", "--host", "m2", "multi", "a", "true"},
		{"status", "--host", "m2", "multi"},
		{"down", "--host", "m2", "multi"},
		{"logs", "--host", "m2", "multi", "a"},
	} {
		out, err := m.nsnet(args...)
		if err == nil || !strings.Contains(out, mismatch) {
			t.Errorf("nsnet %s on m1: %v\n%s\nwant %q", strings.Join(args, " "), err, out, mismatch)
		}
	}
	if out := m.must("exec", "--host", "m1", "multi", "a", "true"); out != "" {
		t.Errorf("exec --host m1 on m1: %q", out)
	}
	// perf across machines by ICMP, from here to a node there.
	if out := m.must("perf", "multi", "a", "b", "--icmp", "-c", "3", "-i", "0.05"); !strings.Contains(out, "3 received") {
		t.Errorf("perf --icmp a -> b across machines: %s", out)
	}
}

func delGuard(t *testing.T, m *machine) {
	t.Helper()
	ns, err := netns.Open("/proc/" + m.pid() + "/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	nft, err := kernel.OpenNFT(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer nft.Close()
	if err := nft.DeleteTables(lab.GuardTable("multi")); err != nil {
		t.Fatal(err)
	}
}

const multiBridgeLab = `lab: multi
hosts:
  m1: {address: 192.168.51.1}
  m2: {address: 192.168.51.2}
nodes:
  sw: {}
  a: {host: m1}
  d: {host: m1}
  b: {host: m2}
  c: {host: m2}
bridges:
  lan: {node: sw, subnets: [10.1.0.0/24]}
links:
  - {a: {node: a, name: lan0, addresses: [auto]}, b: {bridge: lan}}
  - {a: {node: d, name: lan0, addresses: [auto]}, b: {bridge: lan}}
  - {a: {node: b, name: lan0, addresses: [auto]}, b: {bridge: lan}}
  - {a: {node: c, name: lan0, addresses: [auto]}, b: {bridge: lan}}
`

// TestCheckAllAcrossMachines: check --all on one machine of a lab across
// two probes from its own nodes to every node of the lab, says which rows
// it left to the other machine, exits 0 when all reach, and names a cause
// when a link across machines is down: this machine's end by its state,
// the other machine's as not checked from here.
func TestCheckAllAcrossMachines(t *testing.T) {
	ms := newMachines(t, "ulc-", [][]string{{"192.168.51.1/24"}, {"192.168.51.2/24"}})
	m1, m2 := ms[0], ms[1]
	e := newEnv(t)
	file := filepath.Join(e.dir, e.write("multi.yaml", multiBridgeLab))
	m1.must("up", file)
	m2.must("up", file)
	// A generous timeout: the first packets across wait for ARP over the
	// underlay, on a loaded machine.
	// labs says which host's part each machine holds.
	wantIn(t, "labs on m2", m2.must("labs"), "HOST", "multi", "m2")
	wantIn(t, "labs -j on m1", m1.must("labs", "-j"), `"host": "m1"`)
	out := m1.must("check", "--all", "--matrix", "--timeout", "5", file)
	wantIn(t, "check --all on m1", out, "6/6 ordered pairs reached", "skipped 2 rows, from nodes on other machines (m2: b, c)")
	for _, row := range strings.Split(out, "\n") {
		if f := strings.Fields(row); len(f) > 0 && (f[0] == "b" || f[0] == "c") {
			t.Errorf("check --all on m1 shows a row of m2's node: %q", row)
		}
	}
	js := m1.must("check", "--all", "-j", "--timeout", "5", file)
	wantIn(t, "check --all -j on m1", js, `"skipped":[{"host":"m2","nodes":["b","c"]}]`, `"reached":6`, `"pairs":6`)
	// c's end on m2 taken down: from m1, c no longer answers, and m1 can
	// only say where c is.
	if o, err := exec.Command("nsenter", "-t", m2.pid(), "-n", "-m", "--", "ip", "-n", "multi-c", "link", "set", "lan0", "down").CombinedOutput(); err != nil {
		t.Fatalf("ip link set down: %v\n%s", err, o)
	}
	out, err := m1.nsnet("check", "--all", "--timeout", "5", file)
	if err == nil {
		t.Errorf("check --all on m1 with c's link down on m2 passed:\n%s", out)
	}
	wantIn(t, "check --all on m1, c down on m2", out, "4/6 ordered pairs reached; 2 failed", "remote: on m2: not checked from here", "a -> c")
	// a's own end on m1 taken down: named as such.
	if o, err := exec.Command("nsenter", "-t", m1.pid(), "-n", "-m", "--", "ip", "-n", "multi-a", "link", "set", "lan0", "down").CombinedOutput(); err != nil {
		t.Fatalf("ip link set down: %v\n%s", err, o)
	}
	out, _ = m1.nsnet("check", "--all", "--timeout", "5", file)
	wantIn(t, "check --all on m1, a down", out, "a:lan0 is down")
}

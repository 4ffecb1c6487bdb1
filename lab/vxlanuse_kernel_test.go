package lab_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/nsnet/nsnet/netns"
)

// A lab file over m1 and m2 (or m3, an address no machine has) with one
// link across machines.
const useLab = `lab: %s
hosts:
  m1: {address: 192.168.52.1}
  %s: {address: %s}
%snodes:
  a: {host: m1}
  b: {host: %s}
links:
  - {a: {node: a, name: eth0, addresses: [10.9.0.1/24]}, b: {node: b, name: eth0, addresses: [10.9.0.2/24]}, vni: %d}
`

// TestVXLANInUse: a VNI or UDP port that something else on this machine
// uses is refused before up changes anything, with the position of the
// link's vni: or of vxlan.port and what holds it: another lab (same VNI on
// the port; or a guard that admits other hosts), a hand-made VXLAN device
// (same VNI, or only the same port, which the kernel would silently share),
// a process's socket. Two labs over the same hosts share a port. What the
// kernel itself refuses and shares is shown with ip.
func TestVXLANInUse(t *testing.T) {
	ms := newMachines(t, "ulv-", [][]string{{"192.168.52.1/24", "fd00:52::1/64"}, {"192.168.52.2/24"}})
	m1 := ms[0]
	e := newEnv(t)
	file := func(name, host, addr, vxlan string, vni int) string {
		return filepath.Join(e.dir, e.write(name+fmt.Sprint(vni)+".yaml", fmt.Sprintf(useLab, name, host, addr, vxlan, host, vni)))
	}
	in1 := func(args ...string) (string, error) {
		out, err := exec.Command("nsenter", append([]string{"-t", m1.pid(), "-n", "--"}, args...)...).CombinedOutput()
		return string(out), err
	}
	refused := func(what, f string, want ...string) {
		t.Helper()
		for _, verb := range []string{"plan", "up"} {
			out, err := m1.nsnet(verb, f)
			if err == nil {
				t.Errorf("%s: %s succeeded:\n%s", what, verb, out)
				continue
			}
			want[0] = filepath.Base(f) + want[0]
			for _, w := range want {
				if !strings.Contains(out, w) {
					t.Errorf("%s: %s says\n%s\nwant %q", what, verb, out, w)
				}
			}
			want[0] = strings.TrimPrefix(want[0], filepath.Base(f))
			if n := strings.Count(strings.TrimSpace(out), "\n"); n > 0 {
				t.Errorf("%s: %s: a message of %d lines, want one:\n%s", what, verb, n+1, out)
			}
		}
		// Nothing changed: only lab other's namespace and state.
		ents, _ := os.ReadDir(m1.root() + "/run/netns")
		if len(ents) != 1 || ents[0].Name() != "other-a" {
			t.Errorf("%s: namespaces after the refusal: %v", what, ents)
		}
		labs, _ := os.ReadDir(m1.root() + "/run/nsnet")
		for _, l := range labs {
			if l.Name() != "other" && !strings.HasPrefix(l.Name(), ".") {
				t.Errorf("%s: state left for %s", what, l.Name())
			}
		}
	}

	other := file("other", "m2", "192.168.52.2", "", 77)
	m1.must("up", other)
	t.Cleanup(func() { m1.nsnet("down", "other") })

	// Another lab: the same VNI on the same port and family.
	refused("another lab's VNI", file("multi", "m2", "192.168.52.2", "", 77),
		":9:", "links[0].vni: VNI 77 on UDP port 4789 over IPv4 is in use on this machine by lab other (its a:eth0)")
	// Another lab on the port whose guard admits other hosts.
	refused("another lab's port", file("multi", "m3", "192.168.52.3", "", 78),
		":3:3: hosts.m1:", "UDP port 4789 (the default vxlan.port) is in use on this machine by lab other, whose VXLAN guard admits other hosts (192.168.52.2; this lab's: 192.168.52.3)")

	// A hand-made VXLAN device on port 4790; the kernel refuses a second
	// one with its VNI, port and family (whatever its local address), and
	// takes one over IPv6.
	if out, err := in1("ip", "link", "add", "vx0", "type", "vxlan", "id", "500", "dstport", "4790", "local", "192.168.52.1"); err != nil {
		t.Fatalf("ip link add vx0: %v\n%s", err, out)
	}
	if out, err := in1("ip", "link", "add", "vx1", "type", "vxlan", "id", "500", "dstport", "4790", "local", "192.168.52.9"); err == nil || !strings.Contains(out, "exists") {
		t.Errorf("the kernel took a second device with VNI 500 on port 4790 over IPv4: %v %s", err, out)
	}
	if out, err := in1("ip", "link", "add", "vx6", "type", "vxlan", "id", "500", "dstport", "4790", "local", "fd00:52::1"); err != nil {
		t.Errorf("the kernel refused VNI 500 on port 4790 over IPv6: %v %s", err, out)
	}
	port := "vxlan: {port: 4790}\n"
	refused("a hand-made device's VNI", file("multi", "m2", "192.168.52.2", port, 500),
		":10:", "links[0].vni: VNI 500 on UDP port 4790 over IPv4 is VXLAN device vx0's on this machine, which is not this lab's")
	// A different VNI: the kernel would share vx0's socket, and the
	// lab's guard would drop vx0's peers.
	refused("a hand-made device's port", file("multi", "m2", "192.168.52.2", port, 501),
		":5:15: vxlan.port:", "vxlan.port 4790 is used on this machine by VXLAN device vx0 (vni 500), which is not this lab's", "vxlan: {port: 4791}")

	// A process's socket on port 4792.
	ns, err := netns.Open("/proc/" + m1.pid() + "/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	var fd int
	if err := ns.Do(func() error {
		var err error
		if fd, err = unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0); err != nil {
			return err
		}
		return unix.Bind(fd, &unix.SockaddrInet4{Port: 4792, Addr: [4]byte{192, 168, 52, 1}})
	}); err != nil {
		t.Fatal(err)
	}
	refused("a process's socket", file("multi", "m2", "192.168.52.2", "vxlan: {port: 4792}\n", 502),
		":5:15: vxlan.port:", "vxlan.port 4792 is in use on this machine over IPv4 by a socket nsnet did not make")
	unix.Close(fd)

	// Another lab over the same hosts shares the port, with its own VNI;
	// a second up finds the socket held by the labs themselves.
	multi := file("multi", "m2", "192.168.52.2", "", 79)
	m1.must("up", multi)
	if out := m1.must("up", multi); !strings.Contains(out, "no changes") {
		t.Errorf("second up of a lab sharing the port: %s", out)
	}
	m1.must("down", "multi")

	// An underlay interface with a smaller MTU than the lab assumes.
	if out, err := in1("ip", "link", "set", "eth0", "mtu", "1400"); err != nil {
		t.Fatalf("ip link set eth0 mtu 1400: %v\n%s", err, out)
	}
	refused("a small underlay MTU", file("multi", "m2", "192.168.52.2", "", 80),
		":3:17: hosts.m1.address:", "the underlay interface eth0 of host m1's address 192.168.52.1 has MTU 1400, less than the 1500 a lab assumes: set vxlan.underlay-mtu: 1400")
	refused("underlay-mtu too large", file("multi", "m2", "192.168.52.2", "vxlan: {underlay-mtu: 1450}\n", 81),
		":5:23: vxlan.underlay-mtu:", "underlay MTU 1450 is larger than the MTU 1400 of eth0")
	fits := file("multi", "m2", "192.168.52.2", "vxlan: {underlay-mtu: 1400}\n", 82)
	m1.must("up", fits)
	if st := m1.must("status", "multi", "a"); !strings.Contains(st, "mtu 1350") {
		t.Errorf("a link across machines over an underlay of MTU 1400 (IPv4): %s", st)
	}
	m1.must("down", "multi")

	// A device with the VNI in a namespace nsnet does not know of: the
	// kernel refuses the half; up waits a while (it could be a half still
	// being destroyed) and then says what holds it.
	mnt := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("nsenter", append([]string{"-t", m1.pid(), "-n", "-m", "--"}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	mnt("ip", "netns", "add", "hidden")
	mnt("ip", "link", "add", "vxh", "netns", "hidden", "type", "vxlan", "id", "83", "dstport", "4789", "local", "192.168.52.1")
	hidden := file("multi", "m2", "192.168.52.2", "vxlan: {underlay-mtu: 1400}\n", 83)
	out, err := m1.nsnet("up", hidden)
	if want := "VNI 83 on UDP port 4789 is held on this machine by a VXLAN device nsnet cannot see"; err == nil || !strings.Contains(out, want) {
		t.Errorf("up with VNI 83 held in a namespace nsnet does not know: %v\n%s\nwant %q", err, out, want)
	}
	m1.must("down", "multi")
	mnt("ip", "netns", "del", "hidden")
}

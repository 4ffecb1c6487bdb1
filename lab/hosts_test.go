package lab_test

import (
	"errors"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/nsnet/nsnet/lab"
)

const twoHosts = "lab: x\nhosts:\n  m1: {address: 192.168.50.1}\n  m2: {address: 192.168.50.2}\n"

// TestHostsValidation: every rule of a lab across machines, each message
// whole, located in the file.
func TestHostsValidation(t *testing.T) {
	for _, c := range []struct{ name, file, want string }{
		{"unknown host", twoHosts + "nodes:\n  a: {host: m3}\n",
			`bad.yaml:6:13: nodes.a.host: no host named "m3" (hosts: m1, m2)`},
		{"malformed underlay address", "lab: x\nhosts:\n  m1: {address: 192.168.50.1/24}\n",
			`bad.yaml:3:17: hosts.m1.address: invalid underlay address "192.168.50.1/24": expected an IPv4 or IPv6 address such as 192.168.50.1 or fd00:50::1 (no prefix length)`},
		{"loopback underlay address", "lab: x\nhosts:\n  m1: {address: 127.0.0.1}\n",
			`bad.yaml:3:17: hosts.m1.address: underlay address 127.0.0.1 must be a unicast address other machines reach (not unspecified, loopback, link-local or multicast)`},
		{"duplicate underlay address", "lab: x\nhosts:\n  m1: {address: 192.168.50.1}\n  m2: {address: 192.168.50.1}\n",
			`bad.yaml:4:17: hosts.m2.address: underlay address 192.168.50.1 is already m1's (line 3): every host has its own`},
		{"host without address", "lab: x\nhosts:\n  m1: {}\n",
			`bad.yaml:3:3: hosts.m1: missing address: the underlay address nsnet uses on this machine (address: 192.168.50.1)`},
		{"two links with the same VNI", twoHosts + "nodes:\n  a: {host: m1}\n  b: {host: m2}\nlinks:\n  - {a: {node: a, name: e0}, b: {node: b, name: e0}, vni: 7}\n  - {a: {node: a, name: e1}, b: {node: b, name: e1}, vni: 7}\n",
			`bad.yaml:10:59: links[1].vni: VNI 7 is already the VNI of links[0] (line 9): two links across machines need two VNIs`},
		{"VNI outside the range", twoHosts + "vxlan: {vni: 100-199}\nnodes:\n  a: {host: m1}\n  b: {host: m2}\nlinks:\n  - {a: {node: a, name: e0}, b: {node: b, name: e0}, vni: 7}\n",
			`bad.yaml:10:59: links[0].vni: VNI 7 is outside the lab's range 100-199`},
		{"VNI on a local link", twoHosts + "nodes:\n  a: {host: m1}\n  b: {host: m1}\nlinks:\n  - {a: {node: a, name: e0}, b: {node: b, name: e0}, vni: 7}\n",
			`bad.yaml:9:59: links[0].vni: a VNI is for a link across machines; both ends of this one are on the same host`},
		{"bad VNI range", twoHosts + "vxlan: {vni: 10-5}\n",
			`bad.yaml:5:14: vxlan.vni: invalid VNI range "10-5": expected FIRST-LAST within 1-16777215, such as 1000-1999`},
		{"VNI range too small", twoHosts + "vxlan: {vni: 5-5}\nnodes:\n  a: {host: m1}\n  b: {host: m2}\nlinks:\n  - {a: {node: a, name: e0}, b: {node: b, name: e0}}\n  - {a: {node: a, name: e1}, b: {node: b, name: e1}}\n",
			`bad.yaml:11:5: links[1]: no VNI left in the range 5-5 for this link: widen vxlan.vni`},
		{"bad port", twoHosts + "vxlan: {port: 70000}\n",
			`bad.yaml:5:15: vxlan.port: UDP port 70000 is outside 1-65535`},
		{"link MTU over an IPv4 underlay", twoHosts + "nodes:\n  a: {host: m1}\n  b: {host: m2}\nlinks:\n  - {a: {node: a, name: e0}, b: {node: b, name: e0}, mtu: 1451}\n",
			`bad.yaml:9:59: links[0].mtu: MTU 1451 is larger than the underlay allows: at most 1450 (underlay MTU 1500 minus 50 of VXLAN over IPv4; set vxlan.underlay-mtu if the underlay's is larger)`},
		{"link MTU over an IPv6 underlay", "lab: x\nhosts:\n  m1: {address: 'fd00:50::1'}\n  m2: {address: 'fd00:50::2'}\nvxlan: {underlay-mtu: 9000}\nnodes:\n  a: {host: m1}\n  b: {host: m2}\nlinks:\n  - {a: {node: a, name: e0}, b: {node: b, name: e0}, mtu: 8931}\n",
			`bad.yaml:10:59: links[0].mtu: MTU 8931 is larger than the underlay allows: at most 8930 (underlay MTU 9000 minus 70 of VXLAN over IPv6; set vxlan.underlay-mtu if the underlay's is larger)`},
		{"underlays of two families", "lab: x\nhosts:\n  m1: {address: 192.168.50.1}\n  m2: {address: 'fd00:50::2'}\nnodes:\n  a: {host: m1}\n  b: {host: m2}\nlinks:\n  - {a: {node: a, name: e0}, b: {node: b, name: e0}}\n",
			`bad.yaml:9:5: links[0]: hosts m1 (192.168.50.1) and m2 (fd00:50::2) have underlay addresses of different families: a VXLAN link needs both IPv4 or both IPv6`},
		{"host without hosts", "lab: x\nnodes:\n  a: {host: m1}\n",
			`bad.yaml:3:13: nodes.a.host: a node is placed on a host only in a lab with hosts: (add hosts: with each machine's underlay address)`},
		{"vxlan without hosts", "lab: x\nvxlan: {port: 4789}\n",
			`bad.yaml:1:1: vxlan: applies to labs across machines: add hosts:`},
		{"unknown vxlan field", twoHosts + "vxlan: {ttl: 4}\n",
			`bad.yaml:5:9: vxlan.ttl: unknown field "ttl" (known: port, vni, underlay-mtu)`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := lab.Parse("bad.yaml", []byte(c.file))
			if err == nil {
				t.Fatal("accepted")
			}
			if !errors.Is(err, lab.ErrInvalid) {
				t.Errorf("not ErrInvalid: %v", err)
			}
			if err.Error() != c.want {
				t.Errorf("got:\n%s\nwant:\n%s", err, c.want)
			}
		})
	}
}

// TestVNIDerived: both machines compute the same VNIs from the file alone;
// a collision of the hash goes to the next free number, in file order; an
// explicit VNI is never taken by a derived one.
func TestVNIDerived(t *testing.T) {
	file := twoHosts + "vxlan: {vni: 10-12}\nnodes:\n  a: {host: m1}\n  b: {host: m2}\nlinks:\n" +
		"  - {a: {node: a, name: e0}, b: {node: b, name: e0}}\n" +
		"  - {a: {node: a, name: e1}, b: {node: b, name: e1}}\n" +
		"  - {a: {node: a, name: e2}, b: {node: b, name: e2}, vni: 11}\n" +
		"  - {a: {node: a, name: e3}, b: {node: a, name: e4}}\n"
	l1, l2 := parse(t, file), parse(t, file)
	seen := map[uint32]bool{}
	for i, lk := range l1.Links {
		if lk.VNI != l2.Links[i].VNI {
			t.Errorf("link %d: VNI %d, then %d from the same file", i, lk.VNI, l2.Links[i].VNI)
		}
		if i == 3 {
			if lk.CrossHost() || lk.A.Kind != lab.KindVeth {
				t.Errorf("local link: VNI %d kind %s, want 0 and veth", lk.VNI, lk.A.Kind)
			}
			continue
		}
		if lk.VNI < 10 || lk.VNI > 12 || seen[lk.VNI] {
			t.Errorf("link %d: VNI %d: outside 10-12 or repeated", i, lk.VNI)
		}
		seen[lk.VNI] = true
		if lk.A.Kind != lab.KindVXLAN || lk.MTU != 1450 {
			t.Errorf("link %d: kind %s MTU %d, want vxlan 1450", i, lk.A.Kind, lk.MTU)
		}
	}
	if l1.Links[2].VNI != 11 {
		t.Errorf("explicit VNI 11 became %d", l1.Links[2].VNI)
	}
	// A node without host: is on the first host.
	l := parse(t, twoHosts+"nodes:\n  a: {}\n")
	if h := l.Node("a").Host; h == nil || h.Name != "m1" {
		t.Errorf("node without host: on %v, want m1", h)
	}
}

// TestSelectHost: --host must name a host whose address is this machine's;
// without it, the one host whose address is local, and a clear error for
// none or several.
func TestSelectHost(t *testing.T) {
	l := parse(t, twoHosts)
	a := netip.MustParseAddr
	for _, c := range []struct {
		name  string
		local []netip.Addr
		want  string // host name, or a part of the error
	}{
		{"", []netip.Addr{a("10.0.0.9"), a("192.168.50.2")}, "m2"},
		{"m1", []netip.Addr{a("192.168.50.1"), a("192.168.50.2")}, "m1"},
		{"", []netip.Addr{a("10.0.0.9")}, "no host's address is on this machine's interfaces (hosts: m1 192.168.50.1, m2 192.168.50.2): add it, or name the host with --host"},
		{"", []netip.Addr{a("192.168.50.1"), a("192.168.50.2")}, "the addresses of several hosts are on this machine (m1 192.168.50.1, m2 192.168.50.2): name one with --host"},
		{"m2", []netip.Addr{a("192.168.50.1")}, "test.yaml:4:17: hosts.m2.address: underlay address 192.168.50.2 of host m2 is not an address of this machine (--host m2): run on m2, or put the address on its underlay interface"},
		{"m9", nil, `--host "m9": lab x has no such host (hosts: m1, m2)`},
	} {
		h, err := lab.SelectHost(l, c.name, c.local)
		switch {
		case err != nil && !strings.Contains(err.Error(), c.want):
			t.Errorf("--host %q on %v: %v, want %s", c.name, c.local, err, c.want)
		case err == nil && h.Name != c.want:
			t.Errorf("--host %q on %v: %s, want %s", c.name, c.local, h.Name, c.want)
		}
	}
}

// TestReadmeAcrossMachines: the lab file of README's section on labs
// across machines is valid, and each host's part plans.
func TestReadmeAcrossMachines(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(b), "## Labs across machines")
	if !ok {
		t.Fatal(`no "## Labs across machines" section in README.md`)
	}
	_, rest, ok := strings.Cut(sec, "```yaml\n")
	if !ok {
		t.Fatal("no yaml block in README's section on labs across machines")
	}
	text, _, _ := strings.Cut(rest, "```")
	l, err := lab.Parse("README.md", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	if h := l.Node("sw").Host; h == nil || h.Name != "m1" {
		t.Errorf("sw, without host:, is on %v, want the first host m1", h)
	}
	for _, h := range l.Hosts {
		p, err := lab.PlanUp(l.ForHost(h), &lab.State{})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(render(t, p), "type vxlan id ") {
			t.Errorf("%s's part has no VXLAN half:\n%s", h.Name, render(t, p))
		}
	}
}

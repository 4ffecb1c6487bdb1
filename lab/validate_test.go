package lab_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/nsnet/nsnet/internal/echo"
	"github.com/nsnet/nsnet/lab"
)

// badLab is a lab file that breaks rules, and every message it must give.
type badLab struct {
	name string
	file string
	want []string
}

// badLabs has one file per validation rule. Messages are compared whole:
// file, line, column, field path and rule.
func badLabs() []badLab {
	ports := "lab: big\nbridges:\n  br: {}\nnodes:\n"
	for i := 0; i < lab.MaxBridgePorts+1; i++ {
		ports += fmt.Sprintf("  n%d: {}\n", i)
	}
	ports += "links:\n"
	for i := 0; i < lab.MaxBridgePorts+1; i++ {
		ports += fmt.Sprintf("  - {a: {node: n%d, name: e}, b: {bridge: br}}\n", i)
	}
	return []badLab{
		{"unknown top-level field", "lab: x\ncolour: red\n",
			[]string{`bad.yaml:2:1: colour: unknown field "colour" (known: lab, nodes, bridges, links, expect, hosts, vxlan)`}},
		{"unknown node field", "lab: x\nnodes:\n  a: {colour: red}\n",
			[]string{`bad.yaml:3:7: nodes.a.colour: unknown field "colour" (known: netns, routes, sysctls, processes, responders, host, count)`}},
		{"unknown link end field", "lab: x\nnodes: {a: {}, b: {}}\nlinks:\n  - a: {node: a, name: e, adresses: [10.0.0.1/24]}\n    b: {node: b, name: e}\n",
			[]string{`bad.yaml:4:27: links[0].a.adresses: unknown field "adresses" (known: node, bridge, name, addresses, faults)`}},
		{"missing lab name", "nodes: {a: {}}\n",
			[]string{`bad.yaml:1:1: lab: missing: every lab needs a name (lab: NAME)`}},
		{"bad lab name", "lab: my lab\n",
			[]string{`bad.yaml:1:6: lab: invalid lab name "my lab": must be 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit`}},
		{"bad node name", "lab: x\nnodes:\n  -a: {}\n",
			[]string{`bad.yaml:3:3: nodes.-a: invalid node name "-a": must be 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit`}},
		{"duplicate node name", "lab: x\nnodes:\n  a: {}\n  a: {}\n",
			[]string{`bad.yaml:4:3: nodes.a: duplicate name "a" (first defined at line 3)`}},
		{"duplicate namespace name", "lab: x\nnodes:\n  a: {netns: shared}\n  b: {netns: shared}\n",
			[]string{`bad.yaml:4:14: nodes.b.netns: namespace name "shared" is already used by nodes.a.netns (line 3)`}},
		{"host with netns", "lab: x\nnodes:\n  host: {netns: h}\n",
			[]string{`bad.yaml:3:17: nodes.host.netns: the host node is the namespace nsnet runs in: it has no netns name`}},
		{"interface name over 15 bytes", "lab: x\nnodes: {a: {}, b: {}}\nlinks:\n  - a: {node: a, name: a-very-long-name}\n    b: {node: b, name: e}\n",
			[]string{`bad.yaml:4:24: links[0].a.name: invalid interface name "a-very-long-name": must be at most 15 bytes (is 16)`}},
		{"interface name with a slash", "lab: x\nnodes: {a: {}, b: {}}\nlinks:\n  - a: {node: a, name: e/0}\n    b: {node: b, name: e}\n",
			[]string{`bad.yaml:4:24: links[0].a.name: invalid interface name "e/0": must not contain "/"`}},
		{"default port name too long", "lab: x\nnodes: {longnodename: {}}\nbridges: {br: {}}\nlinks:\n  - a: {node: longnodename, name: eth0}\n    b: {bridge: br}\n",
			[]string{`bad.yaml:6:8: links[0].b: the default name for this port, "longnodename-eth0", is invalid (invalid interface name "longnodename-eth0": must be at most 15 bytes (is 17)): set links[0].b.name`}},
		{"link to a missing node", "lab: x\nnodes: {a: {}}\nlinks:\n  - a: {node: a, name: e}\n    b: {node: nowhere, name: e}\n",
			[]string{`bad.yaml:5:15: links[0].b.node: no node named "nowhere" (nodes: host, a)`}},
		{"link to a missing bridge", "lab: x\nnodes: {a: {}}\nlinks:\n  - a: {node: a, name: e}\n    b: {bridge: br0}\n",
			[]string{`bad.yaml:5:17: links[0].b.bridge: no bridge named "br0": the lab defines no bridges`}},
		{"bridge in a missing node", "lab: x\nbridges:\n  br: {node: sw}\n",
			[]string{`bad.yaml:3:14: bridges.br.node: no node named "sw" (nodes: host)`}},
		{"end on a node and a bridge", "lab: x\nnodes: {a: {}}\nbridges: {br: {}}\nlinks:\n  - a: {node: a, bridge: br, name: e}\n    b: {bridge: br}\n",
			[]string{`bad.yaml:5:26: links[0].a.bridge: an end is on a node or on a bridge, not both`}},
		{"duplicate interface in a node", "lab: x\nnodes: {a: {}, b: {}, c: {}}\nlinks:\n  - a: {node: a, name: e}\n    b: {node: b, name: e}\n  - a: {node: a, name: e}\n    b: {node: c, name: e}\n",
			[]string{`bad.yaml:6:24: links[1].a.name: node a already has an interface named "e" (links[0].a.name, line 4)`}},
		{"loopback name", "lab: x\nnodes: {a: {}, b: {}}\nlinks:\n  - a: {node: a, name: lo}\n    b: {node: b, name: e}\n",
			[]string{`bad.yaml:4:24: links[0].a.name: "lo" is the loopback interface every namespace already has`}},
		{"overlapping bridge subnets", "lab: x\nbridges:\n  br1: {subnets: [10.1.0.0/16]}\n  br2: {subnets: [10.1.2.0/24]}\n",
			[]string{`bad.yaml:4:3: bridges.br2: subnet 10.1.2.0/24 overlaps 10.1.0.0/16 of another segment (bridges.br1, line 3)`}},
		{"link subnet overlapping a bridge subnet", "lab: x\nnodes: {a: {}, b: {}}\nbridges:\n  br1: {subnets: [10.1.0.0/24]}\nlinks:\n  - a: {node: a, name: e, addresses: [10.1.0.5/24]}\n    b: {node: b, name: e}\n",
			[]string{`bad.yaml:6:39: links[0].a.addresses[0]: subnet 10.1.0.0/24 overlaps 10.1.0.0/24 of another segment (bridges.br1, line 4)`}},
		{"address outside its bridge's subnet", "lab: x\nnodes: {a: {}}\nbridges:\n  br1: {subnets: [10.1.0.0/24]}\nlinks:\n  - a: {node: a, name: e, addresses: [10.2.0.5/24]}\n    b: {bridge: br1}\n",
			[]string{`bad.yaml:6:39: links[0].a.addresses[0]: 10.2.0.5/24 is outside the subnets of bridge br1 (10.1.0.0/24)`}},
		{"address with another prefix length than its bridge", "lab: x\nnodes: {a: {}}\nbridges:\n  br1: {subnets: [10.1.0.0/24]}\nlinks:\n  - a: {node: a, name: e, addresses: [10.1.0.5/16]}\n    b: {bridge: br1}\n",
			[]string{`bad.yaml:6:39: links[0].a.addresses[0]: 10.1.0.5/16 is outside the subnets of bridge br1 (10.1.0.0/24)`}},
		{"duplicate address", "lab: x\nnodes: {a: {}, b: {}}\nlinks:\n  - a: {node: a, name: e, addresses: [10.0.0.1/24]}\n    b: {node: b, name: e, addresses: [10.0.0.1/24]}\n",
			[]string{`bad.yaml:5:39: links[0].b.addresses[0]: address 10.0.0.1 is already used at links[0].a.addresses[0] (line 4); only a /32 may repeat, on other interfaces of the same node (a gateway shared by point-to-point links)`}},
		{"host address repeated on another node", "lab: x\nnodes: {a: {}, b: {}, c: {}}\nlinks:\n  - {a: {node: a, name: e, addresses: [10.0.0.1/32]}, b: {node: b, name: e1}}\n  - {a: {node: c, name: e, addresses: [10.0.0.1/32]}, b: {node: b, name: e2}}\n",
			[]string{`bad.yaml:5:40: links[1].a.addresses[0]: address 10.0.0.1 is already used at links[0].a.addresses[0] (line 4); only a /32 may repeat, on other interfaces of the same node (a gateway shared by point-to-point links)`}},
		{"host address repeated on one interface", "lab: x\nnodes: {a: {}, b: {}}\nlinks:\n  - {a: {node: a, name: e, addresses: [\"fd00::1/128\", \"fd00::1/128\"]}, b: {node: b, name: e}}\n",
			[]string{`bad.yaml:4:55: links[0].a.addresses[1]: address fd00::1 is already used at links[0].a.addresses[0] (line 4); only a /128 may repeat, on other interfaces of the same node (a gateway shared by point-to-point links)`}},
		{"gateway behind a later on-link route", "lab: x\nnodes:\n  a: {routes: [{to: default, via: 10.9.0.1}, {to: 10.9.0.1/32, dev: e}]}\n  b: {}\nlinks:\n  - {a: {node: a, name: e, addresses: [10.0.0.1/32]}, b: {node: b, name: e}}\n",
			[]string{`bad.yaml:3:35: nodes.a.routes[0].via: gateway 10.9.0.1 is not in the subnet of any address of node a, nor in an earlier route with dev and no via, so it cannot be reached`}},
		{"duplicate address with auto", "lab: x\nnodes: {a: {}, b: {}}\nbridges:\n  br: {subnets: [10.0.0.0/30]}\nlinks:\n  - {a: {node: a, name: e, addresses: [auto]}, b: {bridge: br}}\n  - {a: {node: b, name: e, addresses: [auto]}, b: {bridge: br}}\n  - {a: {node: host, name: e, addresses: [auto]}, b: {bridge: br}}\n",
			[]string{`bad.yaml:8:43: links[2].a.addresses[0]: no free address left in 10.0.0.0/30 (bridge br)`}},
		{"address without a prefix length", "lab: x\nnodes: {a: {}, b: {}}\nlinks:\n  - a: {node: a, name: e, addresses: [10.0.0.1]}\n    b: {node: b, name: e}\n",
			[]string{`bad.yaml:4:39: links[0].a.addresses[0]: address "10.0.0.1" needs a prefix length, e.g. 10.0.0.1/24 (or auto)`}},
		{"network address", "lab: x\nnodes: {a: {}, b: {}}\nlinks:\n  - a: {node: a, name: e, addresses: [10.0.0.0/24]}\n    b: {node: b, name: e}\n",
			[]string{`bad.yaml:4:39: links[0].a.addresses[0]: 10.0.0.0 is the network address of 10.0.0.0/24`}},
		{"auto without a bridge", "lab: x\nnodes: {a: {}, b: {}}\nlinks:\n  - a: {node: a, name: e, addresses: [auto]}\n    b: {node: b, name: e}\n",
			[]string{`bad.yaml:4:39: links[0].a.addresses[0]: auto takes an address from the subnets of the bridge this end is attached to, and this end is not on a bridge with subnets`}},
		{"addresses on a bridge port", "lab: x\nnodes: {a: {}}\nbridges: {br: {}}\nlinks:\n  - a: {node: a, name: e}\n    b: {bridge: br, addresses: [10.0.0.1/24]}\n",
			[]string{`bad.yaml:6:33: links[0].b.addresses[0]: a bridge port carries no addresses: put them on the bridge (bridges.br.addresses) or on the other end`}},
		{"subnet with host bits", "lab: x\nbridges:\n  br: {subnets: [10.1.0.1/24]}\n",
			[]string{`bad.yaml:3:18: bridges.br.subnets[0]: subnet 10.1.0.1/24 has host bits set: did you mean 10.1.0.0/24?`}},
		{"MTU below 68", "lab: x\nnodes: {a: {}, b: {}}\nlinks:\n  - a: {node: a, name: e}\n    b: {node: b, name: e}\n    mtu: 60\n",
			[]string{`bad.yaml:6:10: links[0].mtu: mtu 60 out of range: must be 68-65535`}},
		{"MTU above 65535", "lab: x\nbridges:\n  br: {mtu: 70000}\n",
			[]string{`bad.yaml:3:13: bridges.br.mtu: mtu 70000 out of range: must be 68-65535`}},
		{"MTU below 1280 with IPv6", "lab: x\nnodes: {a: {}, b: {}}\nlinks:\n  - a: {node: a, name: e, addresses: [\"fd00::1/64\"]}\n    b: {node: b, name: e}\n    mtu: 1000\n",
			[]string{`bad.yaml:6:10: links[0].mtu: mtu 1000 out of range: must be 1280-65535 on a link with IPv6`}},
		{"MTU not a number", "lab: x\nbridges:\n  br: {mtu: big}\n",
			[]string{`bad.yaml:3:13: bridges.br.mtu: must be a whole number, not "big"`}},
		{"more ports than a bridge holds", ports,
			[]string{fmt.Sprintf(`bad.yaml:%d:5: links[1023]: bridge br would have more than 1023 ports, the most a Linux bridge holds: spread the nodes over more bridges`, 5+lab.MaxBridgePorts+1+1+1023)}},
		{"gateway not on a subnet of the node", "lab: x\nnodes:\n  a: {routes: [{to: default, via: 10.9.0.1}]}\n  b: {}\nlinks:\n  - a: {node: a, name: e, addresses: [10.0.0.1/24]}\n    b: {node: b, name: e}\n",
			[]string{`bad.yaml:3:35: nodes.a.routes[0].via: gateway 10.9.0.1 is not in the subnet of any address of node a, nor in an earlier route with dev and no via, so it cannot be reached`}},
		{"route through a missing interface", "lab: x\nnodes:\n  a: {routes: [{to: 10.9.0.0/16, dev: eth9}]}\n",
			[]string{`bad.yaml:3:39: nodes.a.routes[0].dev: node a has no interface named "eth9"`}},
		{"route without via or dev", "lab: x\nnodes:\n  a: {routes: [{to: 10.9.0.0/16}]}\n",
			[]string{`bad.yaml:3:16: nodes.a.routes[0]: a route needs via (a gateway) or dev (an interface), or both`}},
		{"route destination with host bits", "lab: x\nnodes:\n  a: {routes: [{to: 10.9.0.1/16, dev: e}]}\n  b: {}\nlinks:\n  - {a: {node: a, name: e}, b: {node: b, name: e}}\n",
			[]string{`bad.yaml:3:21: nodes.a.routes[0].to: destination 10.9.0.1/16 has host bits set: did you mean 10.9.0.0/16?`}},
		{"bad sysctl key", "lab: x\nnodes:\n  a: {sysctls: {net/ipv4: 1}}\n",
			[]string{`bad.yaml:3:17: nodes.a.sysctls.net/ipv4: sysctl key "net/ipv4": must be dotted words without '/', spaces or NUL`}},
		{"machine-wide sysctls", "lab: x\nnodes:\n  a: {sysctls: {kernel.hostname: x, vm.swappiness: 10, fs.file-max: 1000}}\n",
			[]string{
				`bad.yaml:3:17: nodes.a.sysctls.kernel.hostname: kernel.hostname is not a network sysctl: a node may set only net.* keys the kernel keeps per network namespace (this one would change the whole machine)`,
				`bad.yaml:3:37: nodes.a.sysctls.vm.swappiness: vm.swappiness is not a network sysctl: a node may set only net.* keys the kernel keeps per network namespace (this one would change the whole machine)`,
				`bad.yaml:3:56: nodes.a.sysctls.fs.file-max: fs.file-max is not a network sysctl: a node may set only net.* keys the kernel keeps per network namespace (this one would change the whole machine)`,
			}},
		{"empty process", "lab: x\nnodes:\n  a: {processes: [{cmd: []}]}\n",
			[]string{`bad.yaml:3:25: nodes.a.processes[0].cmd: command is empty`}},
		{"YAML syntax error", "lab: x\nnodes: [\n",
			[]string{`bad.yaml:2:1: not valid YAML: line 2: did not find expected node content`}},
		{"YAML alias", "lab: x\nnodes:\n  a: &n {}\n  b: *n\n",
			[]string{`bad.yaml:4:6: nodes.b: YAML aliases (*n) are not supported in lab files`}},
		{"two documents", "lab: x\n---\nlab: y\n",
			[]string{`bad.yaml:2:1: a lab file holds one YAML document; this is a second one`}},
		{"not a mapping", "- a\n- b\n",
			[]string{`bad.yaml:1:1: the file must be a mapping with keys lab, nodes, bridges, links, expect, hosts, vxlan, not a list`}},
		{"several problems at once", "lab: x\nnodes:\n  a: {colour: red}\nlinks:\n  - a: {node: a, name: e}\n    b: {node: z, name: e}\n    mtu: 9\n",
			[]string{
				`bad.yaml:3:7: nodes.a.colour: unknown field "colour" (known: netns, routes, sysctls, processes, responders, host, count)`,
				`bad.yaml:6:15: links[0].b.node: no node named "z" (nodes: host, a)`,
			}},
	}
}

func TestValidationRules(t *testing.T) {
	for _, bl := range badLabs() {
		t.Run(bl.name, func(t *testing.T) {
			_, err := lab.Parse("bad.yaml", []byte(bl.file))
			if err == nil {
				t.Fatal("accepted")
			}
			if !errors.Is(err, lab.ErrInvalid) {
				t.Errorf("error does not match ErrInvalid: %v", err)
			}
			var inv *lab.InvalidError
			if !errors.As(err, &inv) {
				t.Fatalf("error is %T, not *InvalidError: %v", err, err)
			}
			got := strings.Split(err.Error(), "\n")
			if strings.Join(got, "\n") != strings.Join(bl.want, "\n") {
				t.Errorf("messages:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(bl.want, "\n"))
			}
			var fe *lab.FieldError
			if !errors.As(err, &fe) || fe.Line < 1 || fe.Col < 1 {
				t.Errorf("no located FieldError in %v", err)
			}
		})
	}
}

// TestHugeValuesEchoedShort: a value of megabytes, wherever it is in a lab
// file, is quoted by a short prefix and its length: one line stays short.
func TestHugeValuesEchoedShort(t *testing.T) {
	x := strings.Repeat("x", 5_000_000)
	for _, c := range []struct{ name, file string }{
		{"interface name", "lab: l\nnodes: {a: {}}\nlinks:\n  - {a: {node: a, name: " + x + "}, b: {node: host, name: h0}}\n"},
		{"node name", "lab: l\nnodes:\n  " + x + ": {}\n"},
		{"lab name", "lab: " + x + "\n"},
		{"namespace name", "lab: l\nnodes:\n  a: {netns: " + x + "}\n"},
		{"unknown field", "lab: l\nnodes:\n  a: {" + x + ": 1}\n"},
		{"duplicate node", "lab: l\nnodes:\n  " + x + ": {}\n  " + x + ": {}\n"},
		{"address", "lab: l\nnodes: {a: {}}\nlinks:\n  - {a: {node: a, name: e, addresses: [" + x + "]}, b: {node: host, name: h0}}\n"},
		{"address with a slash", "lab: l\nnodes: {a: {}}\nlinks:\n  - {a: {node: a, name: e, addresses: [" + x + "/24]}, b: {node: host, name: h0}}\n"},
		{"node of a link", "lab: l\nlinks:\n  - {a: {node: " + x + ", name: e}, b: {node: host, name: h0}}\n"},
		{"bridge of a link", "lab: l\nnodes: {a: {}}\nlinks:\n  - {a: {node: a, name: e}, b: {bridge: " + x + "}}\n"},
		{"subnet", "lab: l\nbridges:\n  br: {subnets: [" + x + "]}\n"},
		{"route", "lab: l\nnodes:\n  a: {routes: [{to: " + x + ", via: " + x + ", dev: " + x + "}]}\n"},
		{"sysctl key", "lab: l\nnodes:\n  a: {sysctls: {" + x + ": 1}}\n"},
		{"sysctl key with a space", "lab: l\nnodes:\n  a: {sysctls: {\"net. " + x + "\": 1}}\n"},
		{"mtu", "lab: l\nbridges:\n  br: {mtu: " + x + "}\n"},
		{"mtu number", "lab: l\nbridges:\n  br: {mtu: 1" + strings.Repeat("0", 1_000_000) + "}\n"},
		{"alias", "lab: l\nnodes:\n  a: &a {}\n  b: *" + x + "\n"},
		{"expectation", "lab: l\nnodes: {a: {}}\nexpect:\n  - {from: a, to: " + x + "}\n"},
		{"responder", "lab: l\nnodes:\n  a: {responders: [" + x + "]}\n"},
	} {
		_, err := lab.Parse("bad.yaml", []byte(c.file))
		if err == nil {
			t.Errorf("%s: accepted", c.name)
			continue
		}
		for _, line := range strings.Split(err.Error(), "\n") {
			if len(line) > echo.MaxLine+64 {
				t.Errorf("%s: a line of %d bytes: %.300s...", c.name, len(line), line)
			}
		}
	}
}

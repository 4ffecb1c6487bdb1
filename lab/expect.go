package lab

import (
	"fmt"
	"net/netip"

	"gopkg.in/yaml.v3"

	"github.com/nsnet/nsnet/check"
)

// Expectation is one line of the lab's expect section: From must reach (or
// must be isolated from) To with Proto.
type Expectation struct {
	From  string
	To    string     // a node name or an address, as written
	Addr  netip.Addr // the address probed: To's, or To's node's first (IPv4 first)
	Proto check.Proto
	Want  check.Want

	at loc
}

type expectSpec struct {
	At                    loc
	From, To, Proto, Want sval
}

// expect reads {from: NODE, to: NODE|ADDR, proto: icmp|tcp:P|udp:P|http:P/PATH,
// expect: reach|isolated}; proto defaults to icmp and expect to reach.
func (p *parser) expect(n *yaml.Node, path string) *expectSpec {
	e := &expectSpec{At: at(n, path)}
	f := p.fields(n, path, "from", "to", "proto", "expect")
	for key, dst := range map[string]*sval{"from": &e.From, "to": &e.To, "proto": &e.Proto, "expect": &e.Want} {
		if v, ok := f[key]; ok {
			*dst = p.str(v, path+"."+key)
		} else if (key == "from" || key == "to") && n.Kind == yaml.MappingNode {
			p.add(e.At, "missing %q", key)
		}
	}
	return e
}

func (r *resolver) expectations(s *spec) {
	for _, es := range s.Expect {
		if !es.From.set() || !es.To.set() {
			continue
		}
		x := Expectation{From: es.From.V, To: es.To.V, Proto: check.Proto{Name: "icmp"}, at: es.At}
		if r.node(es.From) == nil {
			continue
		}
		if es.Proto.set() {
			p, err := check.ParseProto(es.Proto.V)
			if err != nil {
				r.add(es.Proto.At, "%v", err)
				continue
			}
			x.Proto = p
		}
		if es.Want.set() {
			w, err := check.ParseWant(es.Want.V)
			if err != nil {
				r.add(es.Want.At, "%v", err)
				continue
			}
			x.Want = w
		}
		if a, err := netip.ParseAddr(es.To.V); err == nil {
			if a.Zone() != "" {
				r.add(es.To.At, "address %q: zones are not allowed", es.To.V)
				continue
			}
			x.Addr = a.Unmap()
		} else {
			n := r.lab.nodes[es.To.V]
			if n == nil {
				r.add(es.To.At, "%q is neither a node of this lab nor an IP address", es.To.V)
				continue
			}
			x.Addr = firstAddr(n)
			if !x.Addr.IsValid() {
				r.add(es.To.At, "node %s has no address to probe: write one of its addresses instead", es.To.V)
				continue
			}
		}
		r.lab.Expect = append(r.lab.Expect, x)
	}
}

// firstAddr is a node's first IPv4 address, else its first IPv6 one.
func firstAddr(n *Node) netip.Addr {
	var v6 netip.Addr
	for _, p := range n.Addresses() {
		if p.Addr().Is4() {
			return p.Addr()
		}
		if !v6.IsValid() && !p.Addr().IsLinkLocalUnicast() {
			v6 = p.Addr()
		}
	}
	return v6
}

// FirstAddr is the address nsnet check probes for a node: its first IPv4
// address, else its first IPv6 one.
func (n *Node) FirstAddr() netip.Addr { return firstAddr(n) }

func (r *resolver) responders(n *Node, ns *nodeSpec) {
	seen := map[string]loc{}
	for _, v := range ns.Resps {
		p, err := check.ParseProto(v.V)
		if err == nil && p.Name == "icmp" {
			err = fmt.Errorf("responder %q: the kernel answers icmp itself; responders are tcp:PORT, udp:PORT or http:PORT", v.V)
		}
		if err != nil {
			r.add(v.At, "%v", err)
			continue
		}
		key := fmt.Sprintf("%s/%d", map[bool]string{true: "udp", false: "tcp"}[p.Name == "udp"], p.Port)
		if prev, dup := seen[key]; dup {
			r.add(v.At, "port %s is already taken by the responder at line %d", key, prev.Line)
			continue
		}
		seen[key] = v.At
		n.Responders = append(n.Responders, p.String())
	}
}

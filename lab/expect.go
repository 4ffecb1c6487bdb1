package lab

import (
	"fmt"
	"net/netip"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/nsnet/nsnet/check"
	"github.com/nsnet/nsnet/internal/echo"
)

// Expectation is one line of the lab's expect section: From must reach (or
// must be isolated from) To with Proto.
type Expectation struct {
	From  string
	To    string     // a node name or an address, as written
	Addr  netip.Addr // the address probed: To's, or To's node's first (IPv4 first)
	Proto check.Proto
	Want  check.Want
	// Bounds are figures the path must show (latency: "<30ms", loss:
	// "<2%", rate: ">8mbit"), measured with Probes echo requests (0: the
	// check's default) and a TCP run to a receiver in ToNode.
	Bounds []check.Bound
	Probes int
	// ToNode is the node that holds Addr, or "" when none of the lab's does.
	ToNode string

	at loc
}

type expectSpec struct {
	At                    loc
	From, To, Proto, Want sval
	Latency, Loss, Rate   sval
	Probes                ival
}

// expect reads {from: NODE, to: NODE|ADDR, proto: icmp|tcp:P|udp:P|http:P/PATH,
// expect: reach|isolated, latency: BOUND, loss: BOUND, rate: BOUND, probes: N};
// proto defaults to icmp and expect to reach.
func (p *parser) expect(n *yaml.Node, path string) *expectSpec {
	e := &expectSpec{At: at(n, path)}
	f := p.fields(n, path, "from", "to", "proto", "expect", "latency", "loss", "rate", "probes")
	if v, ok := f.get("probes"); ok {
		e.Probes = p.int(v, path+".probes")
	}
	// In a fixed order: two problems at one place are said in the same
	// order every time.
	for _, kd := range []struct {
		key string
		dst *sval
	}{{"from", &e.From}, {"to", &e.To}, {"proto", &e.Proto}, {"expect", &e.Want},
		{"latency", &e.Latency}, {"loss", &e.Loss}, {"rate", &e.Rate}} {
		key, dst := kd.key, kd.dst
		if v, ok := f.get(key); ok {
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
				r.add(es.To.At, "address %s: zones are not allowed", echo.Quote(es.To.V))
				continue
			}
			x.Addr = a.Unmap()
			if n := r.lab.NodeWith(x.Addr); n != nil {
				x.ToNode = n.Name
			}
		} else {
			n := r.lab.nodes[es.To.V]
			if n == nil {
				r.add(es.To.At, "%s is neither a node of this lab nor an IP address", echo.Quote(es.To.V))
				continue
			}
			x.Addr = firstAddr(n)
			if !x.Addr.IsValid() {
				r.add(es.To.At, "node %s has no address to probe: write one of its addresses instead", es.To.V)
				continue
			}
			x.ToNode = n.Name
		}
		if !r.bounds(es, &x) {
			continue
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

// responders reads a node's responders: a list ([tcp:5432, http:80]),
// started by check while it probes, or {serve: LIST, always: BOOL}, where
// always: true keeps them running while the lab is up.
func (p *parser) responders(n *yaml.Node, path string, ns *nodeSpec) {
	if n.Kind != yaml.MappingNode {
		ns.Resps = p.strs(n, path)
		return
	}
	f := p.fields(n, path, "serve", "always")
	if v, ok := f.get("serve"); ok {
		ns.Resps = p.strs(v, path+".serve")
	} else {
		p.add(at(n, path), "missing \"serve\" (the responders: a list such as [tcp:5432, http:80])")
	}
	if v, ok := f.get("always"); ok {
		if v.Kind != yaml.ScalarNode || v.Tag != "!!bool" {
			p.add(at(v, path+".always"), "must be true (run while the lab is up) or false (only during check), not %s", kindName(v))
		} else {
			b := fval{V: "false", pos: posOf(v)}
			if strings.EqualFold(v.Value, "true") || strings.EqualFold(v.Value, "yes") || strings.EqualFold(v.Value, "on") {
				b.V = "true"
			}
			ns.RespAlways = b
		}
	}
}

func (r *resolver) responders(n *Node, ns *nodeSpec) {
	seen := map[string]loc{}
	for _, v := range ns.Resps {
		p, err := check.ParseProto(v.V)
		if err == nil && p.Name == "icmp" {
			err = fmt.Errorf("responder %s: the kernel answers icmp itself; responders are tcp:PORT, udp:PORT or http:PORT", echo.Quote(v.V))
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
		if ns.RespAlways.V == "true" {
			// A process of the node like the file's own, after them
			// (their indices stay as written): nsnet serve, listening
			// on every address of both families, as check's do.
			n.Processes = append(n.Processes, Process{Argv: []string{"nsnet", "serve", p.Name, fmt.Sprintf(":%d", p.Port)}, Self: true, at: v.At})
		}
	}
	n.RespondersAlways = ns.RespAlways.V == "true" && len(n.Responders) > 0
}

// bounds reads an expectation's latency, loss and rate bounds and probes.
func (r *resolver) bounds(es *expectSpec, x *Expectation) bool {
	ok := true
	var first loc
	for _, b := range []struct {
		metric string
		v      sval
	}{{check.Latency, es.Latency}, {check.Loss, es.Loss}, {check.Rate, es.Rate}} {
		if !b.v.set() {
			continue
		}
		if first.Line == 0 {
			first = b.v.At
		}
		bd, err := check.ParseBound(b.metric, b.v.V)
		if err != nil {
			r.add(b.v.At, "%v", err)
			ok = false
			continue
		}
		if b.metric == check.Rate && x.ToNode == "" {
			r.add(b.v.At, "rate is measured with a TCP receiver nsnet runs in the target node, and no node of this lab has %s", x.Addr)
			ok = false
			continue
		}
		x.Bounds = append(x.Bounds, bd)
	}
	if es.Probes.set() {
		if es.Probes.V < 1 || es.Probes.V > 1_000_000 {
			r.add(es.Probes.At, "probes %d: must be from 1 to 1000000", es.Probes.V)
			ok = false
		} else if !es.Latency.set() && !es.Loss.set() {
			r.add(es.Probes.At, "probes is the number of echo requests that measure latency or loss: give one of them")
			ok = false
		}
		x.Probes = es.Probes.V
	}
	if first.Line > 0 {
		if x.Want != check.Reach {
			r.add(first, "latency, loss and rate are measured on a path that must reach: drop \"expect: isolated\"")
			ok = false
		}
		if es.Proto.set() && x.Proto.Name != "icmp" {
			r.add(es.Proto.At, "latency and loss are measured with echo requests and rate with nsnet's own TCP receiver: drop proto %s", echo.Clip(es.Proto.V))
			ok = false
		}
	}
	return ok
}

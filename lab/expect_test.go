package lab_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/nsnet/nsnet/check"
	"github.com/nsnet/nsnet/lab"
)

const expectBase = `lab: x
nodes:
  a: {responders: [tcp:80, "http:8080", udp:53]}
  b: {}
  sw: {}
links:
  - a: {node: a, name: e, addresses: [10.0.0.1/24, "fd00::1/64"]}
    b: {node: b, name: e, addresses: ["fd00::2/64"]}
`

func TestExpectResolved(t *testing.T) {
	l, err := lab.Parse("x.yaml", []byte(expectBase+`expect:
  - {from: b, to: a}
  - {from: a, to: b, proto: "tcp:22", expect: isolated}
  - {from: a, to: 10.0.0.9, proto: "http:80/health"}
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Expect) != 3 {
		t.Fatalf("expectations: %+v", l.Expect)
	}
	want := []struct {
		addr, proto string
		w           check.Want
	}{{"10.0.0.1", "icmp", check.Reach}, {"fd00::2", "tcp:22", check.Isolated}, {"10.0.0.9", "http:80/health", check.Reach}}
	for i, x := range l.Expect {
		if x.Addr != netip.MustParseAddr(want[i].addr) || x.Proto.String() != want[i].proto || x.Want != want[i].w {
			t.Errorf("expect[%d] = %+v, want %+v", i, x, want[i])
		}
	}
	if got := strings.Join(l.Node("a").Responders, " "); got != "tcp:80 http:8080/ udp:53" {
		t.Errorf("responders = %q", got)
	}
}

func TestExpectBounds(t *testing.T) {
	l, err := lab.Parse("x.yaml", []byte(expectBase+`expect:
  - {from: b, to: a, latency: "<30ms", loss: "<=2%", rate: ">8mbit", probes: 1000}
  - {from: a, to: "fd00::2", loss: "<1.5%"}
`))
	if err != nil {
		t.Fatal(err)
	}
	x := l.Expect[0]
	if len(x.Bounds) != 3 || x.Probes != 1000 || x.ToNode != "a" {
		t.Fatalf("bounds: %+v", x)
	}
	for i, want := range []check.Bound{{Metric: "latency", Op: "<", Value: 0.03, Text: "<30ms"}, {Metric: "loss", Op: "<=", Value: 0.02, Text: "<=2%"}, {Metric: "rate", Op: ">", Value: 8e6, Text: ">8mbit"}} {
		if x.Bounds[i] != want {
			t.Errorf("bound %d = %+v, want %+v", i, x.Bounds[i], want)
		}
	}
	if y := l.Expect[1]; y.ToNode != "b" || len(y.Bounds) != 1 || y.Bounds[0].Value != 0.015 {
		t.Errorf("by address: %+v", y)
	}
}

func TestExpectRules(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"expect:\n  - {from: nope, to: a}\n", `x.yaml:10:12: expect[0].from: no node named "nope" (nodes: host, a, b, sw)`},
		{"expect:\n  - {from: a, to: nope}\n", `x.yaml:10:19: expect[0].to: "nope" is neither a node of this lab nor an IP address`},
		{"expect:\n  - {from: a, to: sw}\n", `x.yaml:10:19: expect[0].to: node sw has no address to probe: write one of its addresses instead`},
		{"expect:\n  - {from: a, to: b, proto: sctp:9}\n", `x.yaml:10:29: expect[0].proto: protocol "sctp:9": must be icmp, tcp:PORT, udp:PORT or http:PORT/PATH`},
		{"expect:\n  - {from: a, to: b, expect: maybe}\n", `x.yaml:10:30: expect[0].expect: expect "maybe": must be reach or isolated`},
		{"expect:\n  - {to: b}\n", `x.yaml:10:5: expect[0]: missing "from"`},
		{"expect:\n  - {from: a, to: b, latency: 30ms}\n", `x.yaml:10:31: expect[0].latency: latency "30ms": must start with <, <=, > or >= (e.g. "<30ms")`},
		{"expect:\n  - {from: a, to: b, latency: <30}\n", `x.yaml:10:31: expect[0].latency: latency 30: must be a duration such as 20ms`},
		{"expect:\n  - {from: a, to: b, loss: <120%}\n", `x.yaml:10:28: expect[0].loss: loss 120%: must be`},
		{"expect:\n  - {from: a, to: b, rate: \">0mbit\"}\n", `x.yaml:10:28: expect[0].rate: rate 0mbit:`},
		{"expect:\n  - {from: a, to: 10.0.0.9, rate: \">8mbit\"}\n", `x.yaml:10:35: expect[0].rate: rate is measured with a TCP receiver nsnet runs in the target node, and no node of this lab has 10.0.0.9`},
		{"expect:\n  - {from: a, to: b, expect: isolated, loss: <2%}\n", `x.yaml:10:46: expect[0].loss: latency, loss and rate are measured on a path that must reach: drop "expect: isolated"`},
		{"expect:\n  - {from: a, to: b, proto: tcp:80, loss: <2%}\n", `x.yaml:10:29: expect[0].proto: latency and loss are measured with echo requests and rate with nsnet's own TCP receiver: drop proto tcp:80`},
		{"expect:\n  - {from: a, to: b, probes: 100}\n", `x.yaml:10:30: expect[0].probes: probes is the number of echo requests that measure latency or loss: give one of them`},
		{"expect:\n  - {from: a, to: b, loss: <2%, probes: 0}\n", `x.yaml:10:41: expect[0].probes: probes 0: must be from 1 to 1000000`},
		{"expect:\n  - {from: a, to: b, colour: red}\n", `x.yaml:10:22: expect[0].colour: unknown field "colour" (known: from, to, proto, expect, latency, loss, rate, probes)`},
	} {
		_, err := lab.Parse("x.yaml", []byte(expectBase+tc.yaml))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q:\n got %v\nwant %s", tc.yaml, err, tc.want)
		}
	}
	for _, tc := range []struct{ resp, want string }{
		{"icmp", `responder "icmp": the kernel answers icmp itself`},
		{"tcp:0", `protocol "tcp:0": port must be 1-65535`},
		{"tcp:80, http:80", `port tcp/80 is already taken by the responder at line 3`},
	} {
		y := strings.Replace(expectBase, `[tcp:80, "http:8080", udp:53]`, "["+tc.resp+"]", 1)
		_, err := lab.Parse("x.yaml", []byte(y))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("responders %s: got %v, want %s", tc.resp, err, tc.want)
		}
	}
}

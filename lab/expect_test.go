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

func TestExpectRules(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"expect:\n  - {from: nope, to: a}\n", `x.yaml:10:12: expect[0].from: no node named "nope" (nodes: host, a, b, sw)`},
		{"expect:\n  - {from: a, to: nope}\n", `x.yaml:10:19: expect[0].to: "nope" is neither a node of this lab nor an IP address`},
		{"expect:\n  - {from: a, to: sw}\n", `x.yaml:10:19: expect[0].to: node sw has no address to probe: write one of its addresses instead`},
		{"expect:\n  - {from: a, to: b, proto: sctp:9}\n", `x.yaml:10:29: expect[0].proto: protocol "sctp:9": must be icmp, tcp:PORT, udp:PORT or http:PORT/PATH`},
		{"expect:\n  - {from: a, to: b, expect: maybe}\n", `x.yaml:10:30: expect[0].expect: expect "maybe": must be reach or isolated`},
		{"expect:\n  - {to: b}\n", `x.yaml:10:5: expect[0]: missing "from"`},
		{"expect:\n  - {from: a, to: b, colour: red}\n", `x.yaml:10:22: expect[0].colour: unknown field "colour" (known: from, to, proto, expect)`},
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

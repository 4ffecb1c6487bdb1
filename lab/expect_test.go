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

// TestRespondersAlways: responders: {serve: LIST, always: true} makes the
// responders processes of the node (nsnet serve on every address), after
// the file's own, which plan shows; without always they stay check's.
func TestRespondersAlways(t *testing.T) {
	l := parse(t, `lab: x
nodes:
  a:
    processes: [{cmd: sleep 9999}]
    responders: {serve: [tcp:80, "http:8080", udp:53], always: true}
  b: {responders: {serve: [tcp:22]}}
  c: {responders: {serve: [tcp:23], always: false}}
links:
  - {a: {node: a, name: e, addresses: [10.0.0.1/24]}, b: {node: b, name: e, addresses: [10.0.0.2/24]}}
`)
	a := l.Node("a")
	if !a.RespondersAlways || l.Node("b").RespondersAlways || l.Node("c").RespondersAlways {
		t.Errorf("always: a %v, b %v, c %v", a.RespondersAlways, l.Node("b").RespondersAlways, l.Node("c").RespondersAlways)
	}
	if got := strings.Join(a.Responders, " "); got != "tcp:80 http:8080/ udp:53" {
		t.Errorf("responders = %q", got)
	}
	var argvs []string
	for _, p := range a.Processes {
		argvs = append(argvs, strings.Join(p.Argv, " "))
	}
	if got := strings.Join(argvs, "; "); got != "sleep 9999; nsnet serve tcp :80; nsnet serve http :8080; nsnet serve udp :53" {
		t.Errorf("processes: %s", got)
	}
	if len(l.Node("b").Processes) != 0 || len(l.Node("b").Responders) != 1 {
		t.Errorf("b: %+v", l.Node("b"))
	}
	var procs []string
	for _, line := range planLines(t, l, &lab.State{}) {
		if strings.Contains(line, "setsid") {
			procs = append(procs, line)
		}
	}
	wantLines(t, procs,
		"ip netns exec x-a setsid sleep 9999 &",
		"ip netns exec x-a setsid nsnet serve tcp :80 &",
		"ip netns exec x-a setsid nsnet serve http :8080 &",
		"ip netns exec x-a setsid nsnet serve udp :53 &")
}

func TestRespondersAlwaysRules(t *testing.T) {
	for _, tc := range []struct{ resp, want string }{
		{"{always: yes please}", `x.yaml:3:28: nodes.a.responders.always: must be true (run while the lab is up) or false (only during check), not "yes please"`},
		{"{always: true}", `x.yaml:3:19: nodes.a.responders: missing "serve" (the responders: a list such as [tcp:5432, http:80])`},
		{"{serve: [tcp:80], forever: true}", `x.yaml:3:37: nodes.a.responders.forever: unknown field "forever" (known: serve, always)`},
		{"{serve: tcp:80, always: true}", `x.yaml:3:27: nodes.a.responders.serve: must be a list, not "tcp:80"`},
		{"{serve: [icmp], always: true}", `x.yaml:3:28: nodes.a.responders.serve[0]: responder "icmp": the kernel answers icmp itself`},
	} {
		y := strings.Replace(expectBase, `[tcp:80, "http:8080", udp:53]`, tc.resp, 1)
		_, err := lab.Parse("x.yaml", []byte(y))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("responders %s:\n got %v\nwant %s", tc.resp, err, tc.want)
		}
	}
}

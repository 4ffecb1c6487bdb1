package check_test

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nsnet/nsnet/check"
	"github.com/nsnet/nsnet/internal/sandbox"
	"github.com/nsnet/nsnet/kernel"
	"github.com/nsnet/nsnet/netns"
	"github.com/nsnet/nsnet/probe"
)

func TestMain(m *testing.M) { os.Exit(sandbox.Main(m)) }

// line3 is a - b - c: a0 10.1.0.1/24 <-> b0 10.1.0.2/24, b1 10.2.0.1/24 <->
// c0 10.2.0.2/24. b does not forward, a routes 10.2.0.0/24 via b. b serves
// tcp echo on 10.1.0.2:7, udp echo on :7, http on :80, and tcp on its
// loopback only at 127.0.0.1:8080.
type line3 struct {
	a, b, c    *netns.NS
	ha, hb, hc *kernel.Handle
}

func newLine3(t *testing.T) *line3 {
	t.Helper()
	sandbox.Require(t)
	l := &line3{}
	for _, p := range []**netns.NS{&l.a, &l.b, &l.c} {
		ns, err := netns.New()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ns.Close() })
		*p = ns
	}
	var err error
	for _, x := range []struct {
		h  **kernel.Handle
		ns *netns.NS
	}{{&l.ha, l.a}, {&l.hb, l.b}, {&l.hc, l.c}} {
		if *x.h, err = kernel.Open(x.ns); err != nil {
			t.Fatal(err)
		}
		h := *x.h
		t.Cleanup(h.Close)
	}
	pfx := netip.MustParsePrefix
	for _, err := range []error{
		l.ha.AddVeth(kernel.Veth{Name: "a0", Peer: "b0", PeerNS: l.b}),
		l.hb.AddVeth(kernel.Veth{Name: "b1", Peer: "c0", PeerNS: l.c}),
		l.ha.AddAddr("a0", pfx("10.1.0.1/24"), kernel.AddrOptions{}),
		l.hb.AddAddr("b0", pfx("10.1.0.2/24"), kernel.AddrOptions{}),
		l.hb.AddAddr("b1", pfx("10.2.0.1/24"), kernel.AddrOptions{}),
		l.hc.AddAddr("c0", pfx("10.2.0.2/24"), kernel.AddrOptions{}),
		l.ha.SetUp("lo"), l.hb.SetUp("lo"), l.hc.SetUp("lo"),
		l.ha.SetUp("a0"), l.hb.SetUp("b0"), l.hb.SetUp("b1"), l.hc.SetUp("c0"),
		l.ha.AddRoute(kernel.Route{Dst: pfx("10.2.0.0/24"), Gateway: netip.MustParseAddr("10.1.0.2")}),
		l.ha.AwaitCarrier(3*time.Second, "a0"), l.hb.AwaitCarrier(3*time.Second, "b0", "b1"),
		l.hc.AwaitCarrier(3*time.Second, "c0"),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	tcp, err := probe.Listen(l.b, "tcp", "0.0.0.0:7")
	if err != nil {
		t.Fatal(err)
	}
	go probe.ServeTCPEcho(ctx, tcp)
	udp, err := probe.ListenPacket(l.b, "udp", "0.0.0.0:7")
	if err != nil {
		t.Fatal(err)
	}
	go probe.ServeUDPEcho(ctx, udp)
	web, err := probe.Listen(l.b, "tcp", "0.0.0.0:80")
	if err != nil {
		t.Fatal(err)
	}
	go probe.ServeHTTP(ctx, web)
	lo, err := probe.Listen(l.b, "tcp", "127.0.0.1:8080")
	if err != nil {
		t.Fatal(err)
	}
	go probe.ServeTCPEcho(ctx, lo)
	return l
}

func exp(from *netns.NS, to, proto string, want check.Want) check.Expectation {
	p, err := check.ParseProto(proto)
	if err != nil {
		panic(err)
	}
	return check.Expectation{From: "a", FromNS: from, To: to, Addr: netip.MustParseAddr(to), Proto: p, Want: want}
}

// expFrom is exp from the named node.
func expFrom(node string, from *netns.NS, to, proto string, want check.Want) check.Expectation {
	e := exp(from, to, proto, want)
	e.From = node
	return e
}

func TestProtocolsReachAndIsolated(t *testing.T) {
	l := newLine3(t)
	exps := []check.Expectation{
		exp(l.a, "10.1.0.2", "icmp", check.Reach),
		exp(l.a, "10.1.0.2", "tcp:7", check.Reach),
		exp(l.a, "10.1.0.2", "udp:7", check.Reach),
		exp(l.a, "10.1.0.2", "http:80/index.html", check.Reach),
		// Listener only on b's loopback: not reachable from a.
		exp(l.a, "10.1.0.2", "tcp:8080", check.Isolated),
		exp(l.c, "10.2.0.1", "tcp:8080", check.Isolated),
		// b does not forward: a cannot reach c by any protocol.
		exp(l.a, "10.2.0.2", "icmp", check.Isolated),
		exp(l.a, "10.2.0.2", "tcp:7", check.Isolated),
		exp(l.a, "10.2.0.2", "udp:7", check.Isolated),
		exp(l.a, "10.2.0.2", "http:80", check.Isolated),
		// Wrong expectations fail.
		exp(l.a, "10.1.0.2", "icmp", check.Isolated),
		exp(l.a, "10.2.0.2", "icmp", check.Reach),
	}
	rs := check.Run(context.Background(), exps, check.Options{Timeout: 500 * time.Millisecond})
	for i, r := range rs {
		wantPass := i < len(rs)-2
		if r.Err != nil || r.Pass != wantPass {
			t.Errorf("%s: pass=%v reached=%v cause=%q err=%v", check.CaseName(r), r.Pass, r.Reached, r.Cause, r.Err)
		}
	}
}

func TestCauses(t *testing.T) {
	l := newLine3(t)
	rs := check.Run(context.Background(), []check.Expectation{
		exp(l.a, "10.9.9.9", "icmp", check.Reach),   // no route
		exp(l.a, "10.9.9.9", "tcp:7", check.Reach),  // no route
		exp(l.a, "10.1.0.2", "tcp:81", check.Reach), // no listener
		exp(l.a, "10.2.0.2", "icmp", check.Reach),   // dropped by b
		exp(l.a, "10.2.0.2", "tcp:7", check.Reach),  // dropped by b
		// A full second, which a busy kernel does not exceed by mistake;
		// refused and unrouted probes answer at once anyway.
	}, check.Options{Timeout: time.Second})
	for i, want := range []string{"no route", "no route", "no listener", "filtered/timeout", "filtered/timeout"} {
		if rs[i].Pass || rs[i].Cause != want || rs[i].Err != nil {
			t.Errorf("%s: cause %q err %v, want %q", check.CaseName(rs[i]), rs[i].Cause, rs[i].Err, want)
		}
	}
	// The far end of a's link goes down: a's link loses carrier.
	if err := l.hb.SetDown("b0"); err != nil {
		t.Fatal(err)
	}
	// c's own link goes down administratively.
	if err := l.hc.SetDown("c0"); err != nil {
		t.Fatal(err)
	}
	// Carrier changes reach the peer through the kernel's linkwatch, which
	// may take a moment.
	deadline := time.Now().Add(3 * time.Second)
	for {
		a0, err := l.ha.LinkByName("a0")
		if err != nil {
			t.Fatal(err)
		}
		if a0.OperState != "UP" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a0 kept its carrier after b0 went down")
		}
		time.Sleep(10 * time.Millisecond)
	}
	rs = check.Run(context.Background(), []check.Expectation{
		exp(l.a, "10.1.0.2", "icmp", check.Reach),
		exp(l.a, "10.1.0.2", "tcp:7", check.Reach),
		expFrom("c", l.c, "10.2.0.1", "icmp", check.Reach),
	}, check.Options{Timeout: 300 * time.Millisecond})
	for i, want := range []string{"link down (a:a0)", "link down (a:a0)", "link down (c:c0)"} {
		if rs[i].Pass || rs[i].Cause != want {
			t.Errorf("%s: cause %q err %v, want %q", check.CaseName(rs[i]), rs[i].Cause, rs[i].Err, want)
		}
	}
}

// TestTargetLinkDown: with the source's path up to a router, a target
// whose own link is down is named, node and
// interface, as the source's is; an address the kernel no longer has on a
// link taken down (IPv6) is found by the interface given. Without the
// target's namespace the cause stays what the network shows.
func TestTargetLinkDown(t *testing.T) {
	l := newLine3(t)
	if err := l.b.WriteSysctl("net.ipv4.ip_forward", "1"); err != nil {
		t.Fatal(err)
	}
	if err := l.hc.AddRoute(kernel.Route{Dst: netip.MustParsePrefix("10.1.0.0/24"), Gateway: netip.MustParseAddr("10.2.0.1")}); err != nil {
		t.Fatal(err)
	}
	toC := func(proto string) check.Expectation {
		e := exp(l.a, "10.2.0.2", proto, check.Reach)
		e.ToNS, e.ToNode = l.c, "c"
		return e
	}
	opt := check.Options{Timeout: 500 * time.Millisecond}
	if r := check.Run(context.Background(), []check.Expectation{toC("icmp")}, opt)[0]; !r.Pass {
		t.Fatalf("a does not reach c through b: %+v", r)
	}
	if err := l.hc.SetDown("c0"); err != nil {
		t.Fatal(err)
	}
	named := toC("icmp")
	named.ToIface = "c0"
	bare := exp(l.a, "10.2.0.2", "icmp", check.Reach)
	rs := check.Run(context.Background(), []check.Expectation{toC("icmp"), toC("tcp:7"), named, bare}, opt)
	for i, want := range []string{"link down (c:c0)", "link down (c:c0)", "link down (c:c0)", "filtered/timeout"} {
		if rs[i].Pass || rs[i].Cause != want || rs[i].Err != nil {
			t.Errorf("%s: cause %q err %v, want %q", check.CaseName(rs[i]), rs[i].Cause, rs[i].Err, want)
		}
	}
}

func TestProbeThatCannotRunIsAnError(t *testing.T) {
	l := newLine3(t)
	gone, err := netns.New()
	if err != nil {
		t.Fatal(err)
	}
	gone.Close()
	rs := check.Run(context.Background(), []check.Expectation{
		exp(gone, "10.1.0.2", "icmp", check.Isolated),
		exp(gone, "10.1.0.2", "tcp:7", check.Isolated),
		exp(l.a, "10.1.0.2", "icmp", check.Reach),
	}, check.Options{Timeout: 300 * time.Millisecond})
	for _, r := range rs[:2] {
		if r.Err == nil || r.Pass {
			t.Errorf("%s: a probe from a closed namespace passed: %+v", check.CaseName(r), r)
		}
	}
	if s := check.Summarize(rs); s.Errors != 2 || s.Passed != 1 {
		t.Errorf("summary %+v", s)
	}
}

func TestReportsAgree(t *testing.T) {
	l := newLine3(t)
	rs := check.Run(context.Background(), []check.Expectation{
		exp(l.a, "10.1.0.2", "icmp", check.Reach),
		exp(l.a, "10.1.0.2", "tcp:81", check.Reach),
		exp(l.a, "10.2.0.2", "udp:7", check.Isolated),
	}, check.Options{Timeout: 300 * time.Millisecond})
	var table, js, ju bytes.Buffer
	if err := check.WriteTable(&table, rs); err != nil {
		t.Fatal(err)
	}
	if err := check.WriteJSON(&js, rs); err != nil {
		t.Fatal(err)
	}
	if err := check.WriteJUnit(&ju, "lab", rs); err != nil {
		t.Fatal(err)
	}
	var rep check.JSONReport
	if err := json.Unmarshal(js.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	var suites struct {
		Suites []struct {
			Tests    int `xml:"tests,attr"`
			Failures int `xml:"failures,attr"`
			Cases    []struct {
				Name    string    `xml:"name,attr"`
				Failure *struct{} `xml:"failure"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(ju.Bytes(), &suites); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(table.String()), "\n")
	if len(lines) != len(rs)+2 || len(rep.Results) != len(rs) || len(suites.Suites) != 1 || len(suites.Suites[0].Cases) != len(rs) {
		t.Fatalf("sizes differ:\n%s\n%s\n%s", table.String(), js.String(), ju.String())
	}
	if rep.Passed != 2 || rep.Failed != 1 || suites.Suites[0].Failures != 1 || lines[len(lines)-1] != "2 passed, 1 failed, 0 errors" {
		t.Errorf("summaries differ:\n%s\n%s\n%s", table.String(), js.String(), ju.String())
	}
	for i, r := range rep.Results {
		row := strings.Fields(lines[i+1])
		failed := suites.Suites[0].Cases[i].Failure != nil
		if row[0] != map[string]string{"pass": "pass", "fail": "FAIL"}[r.Result] || failed != (r.Result == "fail") ||
			row[1] != r.From || row[3] != r.Proto || row[4] != r.Expect {
			t.Errorf("row %d differs: table %q json %+v junit failure %v", i, row, r, failed)
		}
	}
	if rep.Results[1].Cause != "no listener" || !strings.Contains(lines[2], "no listener") {
		t.Errorf("cause missing: %+v / %q", rep.Results[1], lines[2])
	}
}

func TestParseProto(t *testing.T) {
	for in, want := range map[string]string{"icmp": "icmp", "tcp:80": "tcp:80", "udp:53": "udp:53", "http:8080": "http:8080/", "http:80/x/y": "http:80/x/y"} {
		p, err := check.ParseProto(in)
		if err != nil || p.String() != want {
			t.Errorf("ParseProto(%q) = %v, %v", in, p, err)
		}
	}
	for _, in := range []string{"", "tcp", "tcp:0", "tcp:65536", "sctp:1", "http:x/"} {
		if _, err := check.ParseProto(in); err == nil {
			t.Errorf("ParseProto(%q) accepted", in)
		}
	}
}

func TestMatrix(t *testing.T) {
	l := newLine3(t)
	nodes := []check.Node{
		{Name: "a", NS: l.a, Addr: netip.MustParseAddr("10.1.0.1")},
		{Name: "b", NS: l.b, Addr: netip.MustParseAddr("10.1.0.2")},
		{Name: "c", NS: l.c, Addr: netip.MustParseAddr("10.2.0.2")},
	}
	m := check.All(context.Background(), nodes, 300*time.Millisecond)
	var buf bytes.Buffer
	m.Write(&buf)
	// a<->b reach; b->c reaches c (b is on c's subnet); c->b reaches 10.1.0.2
	// only if c has a route: it has none.
	want := "from\\to    a    b    c\na          .   ok   --\nb         ok    .   ok\nc         --   --    .\n"
	if buf.String() != want {
		t.Errorf("matrix:\n%s\nwant:\n%s", buf.String(), want)
	}
	// c has no route to a's subnet, neither to send nor to answer.
	m.Explain(context.Background(), nodes, check.Topology{})
	got := map[string]string{}
	for _, f := range m.Failures {
		got[m.Nodes[f.From]+">"+m.Nodes[f.To]] = f.Cause.String()
	}
	for pair, want := range map[string]string{
		"a>c": "no route: c has no route back",
		"c>a": "no route: c has no route to the target",
		"c>b": "no route: c has no route to the target",
	} {
		if !strings.HasPrefix(got[pair], want) {
			t.Errorf("%s: cause %q, want %q...", pair, got[pair], want)
		}
	}
	if len(got) != 3 {
		t.Errorf("failures %v, want 3", got)
	}
	buf.Reset()
	m.WriteSummary(&buf)
	if !strings.HasPrefix(buf.String(), "all pairs (icmp to each node's first address): 3/6 ordered pairs reached; 3 failed\nPAIRS  CAUSE\n    2  no route: c has no route to the target's address\n       e.g. c -> a, c -> b\n    1  no route: c has no route back to the source's address\n       e.g. a -> c\n") {
		t.Errorf("summary:\n%s", buf.String())
	}
}

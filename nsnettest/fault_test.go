package nsnettest_test

import (
	"testing"

	"github.com/nsnet/nsnet/nsnettest"
)

// A routed pair over a /32 each, reached through an on-link gateway route,
// and an IPv6 pair: taking eth0 down makes the kernel flush the routes,
// IPv6 addresses and neighbour entries of the link, so a repair that only
// sets the link up again leaves it dead.
const faultLab = `
lab: faults
nodes:
  client:
    routes:
      - {to: 10.7.0.254/32, dev: eth0}
      - {to: 10.7.1.0/24, via: 10.7.0.254}
  server:
    sysctls: {net.ipv4.ip_forward: 1}
    routes:
      - {to: 10.7.0.1/32, dev: eth0}
links:
  - a: {node: client, name: eth0, addresses: [10.7.0.1/32, "fd00:7::1/64"]}
    b: {node: server, name: eth0, addresses: [10.7.0.254/32, 10.7.1.1/24, "fd00:7::2/64"]}
`

func listen(t *testing.T, l *nsnettest.Lab, node, addr string) {
	t.Helper()
	ln, err := l.Node(node).Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
}

// TestSetLinkUpIsInForce repeats a link fault and its repair: every check
// right after SetLink(up) must reach, and right after SetLink(down) must
// not. The kernel turns carrier on asynchronously (a veth passes nothing
// until its link watch ran, on both ends), and taking a link down flushes
// what a packet needs besides: SetLink returns only once the repair is
// complete.
func TestSetLinkUpIsInForce(t *testing.T) {
	l := nsnettest.Up(t, faultLab)
	listen(t, l, "server", "10.7.1.1:7000")
	listen(t, l, "server", "[fd00:7::2]:7000")
	rounds := 200
	if testing.Short() {
		rounds = 40
	}
	for i := 0; i < rounds && !t.Failed(); i++ {
		if err := l.SetLinkState("client", "eth0", false); err != nil {
			t.Fatal(err)
		}
		l.Expect(t, "client", "10.7.1.1", "tcp:7000", nsnettest.Isolated)
		if err := l.SetLinkState("client", "eth0", true); err != nil {
			t.Fatal(err)
		}
		l.Expect(t, "client", "10.7.1.1", "tcp:7000", nsnettest.Reach)
		l.Expect(t, "client", "fd00:7::2", "tcp:7000", nsnettest.Reach)
		if t.Failed() {
			t.Logf("round %d of %d", i+1, rounds)
		}
	}
}

// TestSetLinkPeerSide repairs the far end of the link: the client's check
// must pass at once, with the server's eth0 (carrier, addresses, routes)
// back.
func TestSetLinkPeerSide(t *testing.T) {
	l := nsnettest.Up(t, faultLab)
	listen(t, l, "server", "10.7.1.1:7001")
	for i := 0; i < 40 && !t.Failed(); i++ {
		if err := l.SetLinkState("server", "eth0", false); err != nil {
			t.Fatal(err)
		}
		if err := l.SetLinkState("server", "eth0", true); err != nil {
			t.Fatal(err)
		}
		l.Expect(t, "client", "10.7.1.1", "tcp:7001", nsnettest.Reach)
	}
}

// TestSetLinkErrors: an unknown interface is an error, and bringing one end
// up while the other is still down fails after a bounded wait, naming it,
// instead of returning a link that cannot work.
func TestSetLinkErrors(t *testing.T) {
	l := nsnettest.Up(t, pairLab)
	if err := l.SetLinkState("client", "eth9", true); err == nil {
		t.Error("SetLink of an interface the node does not have succeeded")
	}
	if err := l.SetLinkState("server", "eth0", false); err != nil {
		t.Fatal(err)
	}
	if err := l.SetLinkState("client", "eth0", false); err != nil {
		t.Fatal(err)
	}
	err := l.SetLinkState("client", "eth0", true)
	if err == nil {
		t.Error("SetLink(up) returned success with the peer down")
	} else {
		t.Logf("as expected: %v", err)
	}
	if err := l.SetLinkState("server", "eth0", true); err != nil {
		t.Fatalf("with both ends up: %v", err)
	}
	l.Expect(t, "client", "server", "icmp", nsnettest.Reach)
}

// TestSetLinkCarrier is the plain pair (no route or IPv6 address to lose):
// what is left to wait for is carrier, which the kernel's link watch turns
// on shortly after the link is up; a check sent before is dropped.
func TestSetLinkCarrier(t *testing.T) {
	l := nsnettest.Up(t, pairLab)
	listen(t, l, "server", "10.9.0.2:7002")
	rounds := 400
	if testing.Short() {
		rounds = 50
	}
	for i := 0; i < rounds && !t.Failed(); i++ {
		if err := l.SetLinkState("client", "eth0", false); err != nil {
			t.Fatal(err)
		}
		if err := l.SetLinkState("client", "eth0", true); err != nil {
			t.Fatal(err)
		}
		l.Expect(t, "client", "server", "tcp:7002", nsnettest.Reach)
		if t.Failed() {
			t.Logf("round %d of %d", i+1, rounds)
		}
	}
}

// Two nodes on a bridge: after the node's end comes back, the bridge's port
// must be forwarding again before SetLink returns (a frame that arrives at a
// port still disabled is dropped, and the check's ARP waits a second).
const bridgeFaultLab = `
lab: brfault
nodes:
  client: {}
  server: {}
  sw: {}
bridges:
  br0: {node: sw, subnets: [10.8.0.0/24, "fd00:8::/64"]}
links:
  - a: {node: client, name: eth0, addresses: [10.8.0.1/24, "fd00:8::1/64"]}
    b: {bridge: br0}
  - a: {node: server, name: eth0, addresses: [10.8.0.2/24, "fd00:8::2/64"]}
    b: {bridge: br0}
`

func TestSetLinkBridgePort(t *testing.T) {
	l := nsnettest.Up(t, bridgeFaultLab)
	listen(t, l, "server", "[::]:7003")
	rounds := 200
	if testing.Short() {
		rounds = 40
	}
	for i := 0; i < rounds && !t.Failed(); i++ {
		if err := l.SetLinkState("client", "eth0", false); err != nil {
			t.Fatal(err)
		}
		if err := l.SetLinkState("client", "eth0", true); err != nil {
			t.Fatal(err)
		}
		l.Expect(t, "client", "10.8.0.2", "tcp:7003", nsnettest.Reach)
		l.Expect(t, "client", "fd00:8::2", "tcp:7003", nsnettest.Reach)
		if t.Failed() {
			t.Logf("round %d of %d", i+1, rounds)
		}
	}
}

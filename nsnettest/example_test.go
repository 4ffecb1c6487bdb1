package nsnettest_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nsnet/nsnet/nsnettest"
)

func TestMain(m *testing.M) { os.Exit(nsnettest.Main(m)) }

const pairLab = `
lab: pair
nodes:
  client: {}
  server: {}
links:
  - a: {node: client, name: eth0, addresses: [10.9.0.1/24]}
    b: {node: server, name: eth0, addresses: [10.9.0.2/24]}
`

func serveHello(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		fmt.Fprintln(c, "hello from the server namespace")
		c.Close()
	}
}

func ask(l *nsnettest.Lab) string {
	c, err := l.Node("client").Dial(context.Background(), "tcp", "10.9.0.2:7000")
	if err != nil {
		return "no answer"
	}
	defer c.Close()
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "no answer"
	}
	return line[:len(line)-1]
}

// A client and a server in two namespaces: the request goes through while
// the link is up and fails once the link between them is taken down.
func Example() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	l, err := nsnettest.New(pairLab, dir)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer l.Close()

	ln, _ := l.Node("server").Listen("tcp", "10.9.0.2:7000")
	defer ln.Close()
	go serveHello(ln)

	fmt.Println(ask(l))
	l.SetLinkState("client", "eth0", false)
	fmt.Println(ask(l))
	// Output:
	// hello from the server namespace
	// no answer
}

// The same as a test, with expectations.
func TestClientServerAcrossNamespaces(t *testing.T) {
	l := nsnettest.Up(t, pairLab)
	ln, err := l.Node("server").Listen("tcp", "10.9.0.2:7000")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go serveHello(ln)
	lo, err := l.Node("server").Listen("tcp", "127.0.0.1:7001")
	if err != nil {
		t.Fatal(err)
	}
	defer lo.Close()

	l.Expect(t, "client", "server", "icmp", nsnettest.Reach)
	l.Expect(t, "client", "server", "tcp:7000", nsnettest.Reach)
	l.Expect(t, "client", "server", "tcp:7001", nsnettest.Isolated) // loopback only
	if got := ask(l); got != "hello from the server namespace" {
		t.Fatalf("before the fault: %q", got)
	}
	l.SetLink(t, "client", "eth0", false)
	l.Expect(t, "client", "server", "tcp:7000", nsnettest.Isolated, nsnettest.Timeout(300*time.Millisecond))
	r, err := l.Check("client", "server", "icmp", nsnettest.Reach)
	if err != nil || r.Pass || r.Cause != "link down (client:eth0)" {
		t.Errorf("after link down: %+v %v", r, err)
	}
	if got := ask(l); got != "no answer" {
		t.Fatalf("after the fault: %q", got)
	}
	l.SetLink(t, "client", "eth0", true)
	out, err := l.Node("client").Run("nsnet-does-not-exist")
	if err == nil {
		t.Errorf("a missing command ran: %q", out)
	}
	out, err = l.Node("server").Run("cat", "/proc/net/dev")
	if err != nil || !strings.Contains(out, "eth0") || !strings.Contains(out, "lo") {
		t.Errorf("command in the node: %q %v", out, err)
	}
}

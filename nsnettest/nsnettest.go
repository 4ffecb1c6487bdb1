// Package nsnettest brings nsnet labs into `go test`: a lab from YAML comes
// up in the test's own sandbox, its nodes run commands and open sockets, the
// test asserts what must reach and what must be isolated, and everything is
// torn down when the test ends.
//
//	func TestMain(m *testing.M) { os.Exit(nsnettest.Main(m)) }
//
//	func TestService(t *testing.T) {
//		l := nsnettest.Up(t, labYAML)
//		ln, _ := l.Node("server").Listen("tcp", "0.0.0.0:8080")
//		go serve(ln)
//		l.Expect(t, "client", "server", "tcp:8080", nsnettest.Reach)
//		l.Expect(t, "client", "db", "tcp:5432", nsnettest.Isolated)
//	}
//
// Main re-executes the test binary in a fresh user, network, mount and PID
// namespace (so tests need no root and cannot touch the machine's network);
// every lab's namespaces and state live in the test's temporary directory.
// The lab's "host" node is the sandbox's own namespace, shared by the
// package's tests: give host links distinct names in parallel tests.
package nsnettest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nsnet/nsnet/check"
	"github.com/nsnet/nsnet/fault"
	"github.com/nsnet/nsnet/internal/sandbox"
	"github.com/nsnet/nsnet/lab"
	"github.com/nsnet/nsnet/lab/faults"
	"github.com/nsnet/nsnet/netns"
	"github.com/nsnet/nsnet/probe"
)

// Main runs a package's tests inside a sandbox; call it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(nsnettest.Main(m)) }
func Main(m interface{ Run() int }) int {
	if code, ok := helper(os.Args[1:]); ok {
		return code
	}
	return sandbox.Main(m)
}

// Want is what an expectation asserts: Reach or Isolated.
type Want = check.Want

// Expectations.
const (
	Reach    = check.Reach
	Isolated = check.Isolated
)

// Lab is a lab that is up.
type Lab struct {
	spec *lab.Lab
	opt  lab.Options

	// mu guards what the test changed and has not yet undone, for the
	// report of a failing test.
	mu     sync.Mutex
	active map[*change]struct{}
	dumped bool
	// impaired is what SetFault put on each end, for Impair's cleanup
	// to restore.
	impaired map[fault.End]Fault
}

// change is one fault the test put in force, undone at cleanup.
type change struct {
	what      string
	link      string     // NODE:IFACE for a link taken down
	end       *fault.End // an impaired end
	partition bool
}

// New brings up the lab described by yamlText, keeping its namespaces and
// state under dir (which must exist and be private to this lab). The caller
// calls Close. Most tests use Up instead.
func New(yamlText, dir string) (*Lab, error) {
	if !sandbox.Inside() {
		return nil, errors.New(notInSandbox)
	}
	l, err := lab.Parse(filepath.Join(dir, "lab.yaml"), []byte(yamlText))
	if err != nil {
		return nil, err
	}
	opt := lab.Options{Netns: netns.Dir{Path: filepath.Join(dir, "netns")}, StateDir: filepath.Join(dir, "state"), EtcNetns: filepath.Join(dir, "etc-netns"), Exe: self()}
	if _, err := lab.Up(l, opt); err != nil {
		// Whatever was made before the failure goes again.
		lab.Down(l.Name, opt)
		return nil, fmt.Errorf("up %s: %w", l.Name, err)
	}
	// The file's faults, as nsnet up makes them.
	if _, err := faults.SyncFile(opt, l, faults.SyncOptions{}); err != nil {
		lab.Down(l.Name, opt)
		return nil, fmt.Errorf("up %s: %w", l.Name, err)
	}
	return &Lab{spec: l, opt: opt, active: map[*change]struct{}{}, impaired: map[fault.End]Fault{}}, nil
}

// Close tears the lab down: everything it made is removed, and the
// namespace directory, which nsnet made a mount point as iproute2 does, is
// unmounted so that dir can be removed.
func (l *Lab) Close() error {
	_, err := lab.Down(l.spec.Name, l.opt)
	if uerr := unix.Unmount(l.opt.Netns.Path, unix.MNT_DETACH); uerr != nil && !errors.Is(uerr, unix.EINVAL) && !errors.Is(uerr, unix.ENOENT) && err == nil {
		err = uerr
	}
	return err
}

// notInSandbox says what a package without nsnettest.Main in its TestMain
// must add.
const notInSandbox = "nsnettest: refusing to touch the kernel outside a sandbox: " +
	"add func TestMain(m *testing.M) { os.Exit(nsnettest.Main(m)) } to the package's tests"

func requireSandbox(t testing.TB, inside bool) {
	t.Helper()
	if !inside {
		t.Fatal(notInSandbox)
	}
}

// Up is New for a test: the lab lives in t.TempDir(), goes down with
// t.Cleanup, and any error fails the test at once. When the test has
// failed, the lab's state (every node's links, addresses, qdiscs and routes)
// and the faults still in force are logged before anything is undone.
//
// Cleanups run last first: register the shutdown of servers that run in
// the lab after Up, so that it runs before the lab goes down.
func Up(t testing.TB, yamlText string) *Lab {
	t.Helper()
	requireSandbox(t, sandbox.Inside())
	l, err := New(yamlText, t.TempDir())
	if err != nil {
		t.Fatalf("nsnettest: %v", err)
	}
	t.Cleanup(func() {
		l.reportFailure(t)
		if err := l.Close(); err != nil {
			t.Errorf("nsnettest: down %s: %v", l.spec.Name, err)
		}
	})
	return l
}

// Node is one node of a lab.
type Node struct {
	Name string
	lab  *Lab
	spec *lab.Node
}

// Nodes lists the lab's nodes in file order (the host first when the lab
// puts an interface in it).
func (l *Lab) Nodes() []*Node {
	out := make([]*Node, 0, len(l.spec.Nodes))
	for _, n := range l.spec.Nodes {
		if n.IsHost() && len(n.Interfaces) == 0 {
			continue // the sandbox's namespace, which this lab does not use
		}
		out = append(out, &Node{Name: n.Name, lab: l, spec: n})
	}
	return out
}

// Name is the lab's name.
func (l *Lab) Name() string { return l.spec.Name }

// Node returns the named node. An unknown name is a bug in the test: it
// panics.
func (l *Lab) Node(name string) *Node {
	n := l.spec.Node(name)
	if n == nil {
		panic(fmt.Sprintf("nsnettest: lab %s has no node %q", l.spec.Name, name))
	}
	return &Node{Name: name, lab: l, spec: n}
}

// NS opens the node's namespace; the caller closes it.
func (n *Node) NS() (*netns.NS, error) { return lab.OpenNode(n.lab.spec.Name, n.Name, n.lab.opt) }

// with runs fn with the node's namespace open.
func (n *Node) with(fn func(*netns.NS) error) error {
	ns, err := n.NS()
	if err != nil {
		return err
	}
	defer ns.Close()
	return fn(ns)
}

// Addr is the node's first address of the given family (4 or 6), or the
// zero Addr when it has none.
func (n *Node) Addr(family int) netip.Addr {
	for _, p := range n.spec.Addresses() {
		if (family == 4) == p.Addr().Is4() {
			return p.Addr()
		}
	}
	return netip.Addr{}
}

// Start starts cmd inside the node; the caller waits for it.
func (n *Node) Start(cmd *exec.Cmd) error {
	return n.with(func(ns *netns.NS) error { return ns.Start(cmd) })
}

// Run runs a command in the node and returns its combined output and exit
// error.
func (n *Node) Run(name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	var out safeBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := n.Start(cmd); err != nil {
		return "", err
	}
	err := cmd.Wait()
	return out.String(), err
}

// Listen opens a listener inside the node. The socket stays in the node's
// namespace and is usable from any goroutine.
func (n *Node) Listen(network, addr string) (net.Listener, error) {
	var ln net.Listener
	err := n.with(func(ns *netns.NS) error {
		var err error
		ln, err = probe.Listen(ns, network, addr)
		return err
	})
	return ln, err
}

// ListenPacket opens a UDP socket inside the node.
func (n *Node) ListenPacket(network, addr string) (net.PacketConn, error) {
	var pc net.PacketConn
	err := n.with(func(ns *netns.NS) error {
		var err error
		pc, err = probe.ListenPacket(ns, network, addr)
		return err
	})
	return pc, err
}

// Dial connects from the node to addr, which is IP:PORT or NODE:PORT (the
// node's first address of the network's family: IPv4 unless the network is
// tcp6 or udp6 or the node has none). Only ctx bounds the connect; use
// DialWith for a Dialer's timeout, local address or keep-alive.
func (n *Node) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	return n.DialWith(ctx, nil, network, addr)
}

// DialWith is Dial with the settings of d (Timeout, Deadline, LocalAddr,
// KeepAlive, Control); d may be nil.
func (n *Node) DialWith(ctx context.Context, d *net.Dialer, network, addr string) (net.Conn, error) {
	target, err := n.lab.resolve(network, addr)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Err: err}
	}
	var c net.Conn
	err = n.with(func(ns *netns.NS) error {
		var err error
		c, err = probe.DialContext(ctx, ns, d, network, target)
		return err
	})
	return c, err
}

// Dialer returns a dial function for the node, with d's settings, for
// clients that take one (http.Transport.DialContext, grpc.WithContextDialer,
// database drivers): their connections start in the node.
func (n *Node) Dialer(d *net.Dialer) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		return n.DialWith(ctx, d, network, addr)
	}
}

// resolve turns NODE:PORT into IP:PORT; IP:PORT is kept as it is.
func (l *Lab) resolve(network, addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", err
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return addr, nil
	}
	n := l.spec.Node(host)
	if n == nil {
		return "", fmt.Errorf("address %q: %q is neither an IP address nor a node of lab %s", addr, host, l.spec.Name)
	}
	node := &Node{Name: host, lab: l, spec: n}
	fam := 4
	if strings.HasSuffix(network, "6") {
		fam = 6
	}
	a := node.Addr(fam)
	if !a.IsValid() && !strings.HasSuffix(network, "4") && fam == 4 {
		a = node.Addr(6)
	}
	if !a.IsValid() {
		return "", fmt.Errorf("address %q: node %s has no address for %s", addr, host, network)
	}
	return net.JoinHostPort(a.String(), port), nil
}

// Option tunes Check and Expect.
type Option func(*checkOptions)

type checkOptions struct {
	timeout time.Duration
}

// Timeout bounds the probe (default 1s): a reach expectation fails, and an
// isolated one passes, when nothing answered within it.
func Timeout(d time.Duration) Option { return func(o *checkOptions) { o.timeout = d } }

// Check probes from a node to another node (its first IPv4 address, else
// IPv6) or to an address, with proto: icmp, tcp:PORT, udp:PORT or
// http:PORT/PATH.
func (l *Lab) Check(from, to, proto string, want check.Want, opts ...Option) (check.Result, error) {
	var o checkOptions
	for _, f := range opts {
		f(&o)
	}
	p, err := check.ParseProto(proto)
	if err != nil {
		return check.Result{}, err
	}
	addr, err := netip.ParseAddr(to)
	if err != nil {
		node := l.Node(to)
		if addr = node.Addr(4); !addr.IsValid() {
			addr = node.Addr(6)
		}
		if !addr.IsValid() {
			return check.Result{}, fmt.Errorf("node %s has no address to probe", to)
		}
	}
	e := check.Expectation{From: from, To: to, Addr: addr, Proto: p, Want: want}
	// The target's namespace names its link when that is down.
	for _, n := range l.spec.Nodes {
		if i := n.InterfaceWith(addr); i != nil {
			e.ToNode, e.ToIface = n.Name, i.Name
			if ns, err := l.Node(n.Name).NS(); err == nil {
				defer ns.Close()
				e.ToNS = ns
			}
			break
		}
	}
	var r check.Result
	err = l.Node(from).with(func(ns *netns.NS) error {
		e.FromNS = ns
		r = check.Run(context.Background(), []check.Expectation{e}, check.Options{Timeout: o.timeout})[0]
		return r.Err
	})
	return r, err
}

// Expect is Check for a test: a failed expectation is reported with its
// likely cause (no route, link down, no listener, filtered/timeout).
func (l *Lab) Expect(t testing.TB, from, to, proto string, want check.Want, opts ...Option) {
	t.Helper()
	r, err := l.Check(from, to, proto, want, opts...)
	switch {
	case err != nil:
		t.Errorf("nsnettest: %s %s %s: probe could not run: %v", from, to, proto, err)
	case !r.Pass && r.Reached:
		t.Errorf("%s: reached in %v", check.CaseName(r), r.Latency)
	case !r.Pass:
		t.Errorf("%s: not reached: %s", check.CaseName(r), r.Cause)
	}
}

// SetLink takes a node's interface down (up false) or brings it back up,
// failing the test on error, and returns once the change is in force (see
// SetLinkState). An interface the test took down is brought back up at
// cleanup.
func (l *Lab) SetLink(t testing.TB, node, iface string, up bool) {
	t.Helper()
	if err := l.SetLinkState(node, iface, up); err != nil {
		t.Fatalf("nsnettest: set link %s:%s %s: %v", node, iface, map[bool]string{true: "up", false: "down"}[up], err)
	}
	key := node + ":" + iface
	if up {
		l.endLink(key)
		return
	}
	c := l.begin(fmt.Sprintf("link %s down", key))
	c.link = key
	t.Cleanup(func() {
		l.reportFailure(t)
		if !l.end(c) {
			return // the test brought it back itself
		}
		if err := l.SetLinkState(node, iface, true); err != nil && !l.linkDown(l.peerOf(node, iface)) {
			// A peer the test also took down comes back in its own
			// cleanup, which runs next: only then can this end work.
			t.Errorf("nsnettest: cleanup: set link %s up: %v", key, err)
		}
	})
}

// SetLinkState takes a node's interface down or brings it back up, for use
// outside a test: it returns the error and undoes nothing by itself. It
// returns once the change is in force: after SetLinkState(..., false)
// nothing passes the link, and after SetLinkState(..., true) the link works
// as the lab file made it (both ends have carrier, bridge ports forward,
// and the addresses, routes and neighbour entries the kernel flushed when
// the link went down are back), so a check right after it sees the
// repaired link. Bringing an end up while its peer is down is an error:
// that link cannot work.
func (l *Lab) SetLinkState(node, iface string, up bool) error {
	l.Node(node) // an unknown node is a bug in the test
	return lab.SetLink(l.spec, node, iface, up, l.opt)
}

// peerOf names the other end of a veth, or "".
func (l *Lab) peerOf(node, iface string) string {
	if n := l.spec.Node(node); n != nil {
		if i := n.Interface(iface); i != nil && i.Peer != nil {
			return i.Peer.Node.Name + ":" + i.Peer.Name
		}
	}
	return ""
}

package topo_test

import (
	"bytes"
	"errors"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/nsnet/nsnet/lab"
	"github.com/nsnet/nsnet/lab/topo"
)

func generate(t testing.TB, shape string, args ...string) (*topo.Topology, *lab.Lab, string) {
	t.Helper()
	tp, err := topo.New(shape, args, "")
	if err != nil {
		t.Fatalf("%s %v: %v", shape, args, err)
	}
	var b bytes.Buffer
	if err := tp.Write(&b, "nsnet new "+shape+" "+strings.Join(args, " ")); err != nil {
		t.Fatal(err)
	}
	l, err := lab.Parse(tp.Name+".yaml", b.Bytes())
	if err != nil {
		t.Fatalf("%s %v: generated file does not parse: %v\n%s", shape, args, err, b.String())
	}
	return tp, l, b.String()
}

// TestShapesRoundTrip: every shape, in a few sizes, parses as a lab file,
// plans an up, has the nodes the shape promises, and forwards every node's
// packets to every other node's first address along its static routes (a
// walk of the routing tables, without a kernel).
func TestShapesRoundTrip(t *testing.T) {
	cases := []struct {
		shape        string
		args         []string
		hosts, nodes int
	}{
		{"linear", []string{"1"}, 1, 2},
		{"linear", []string{"4"}, 4, 8},
		{"star", []string{"1"}, 1, 2},
		{"star", []string{"5"}, 5, 6},
		{"ring", []string{"3"}, 3, 6},
		{"ring", []string{"6"}, 6, 12},
		{"mesh", []string{"1"}, 1, 2},
		{"mesh", []string{"5"}, 5, 10},
		{"tree", []string{"1", "2"}, 2, 3},
		{"tree", []string{"2", "3"}, 9, 13},
		{"tree", []string{"3", "2"}, 8, 15},
		{"clos", []string{"2", "3", "2"}, 6, 11},
		{"clos", []string{"1", "1", "1"}, 1, 3},
	}
	for _, c := range cases {
		t.Run(c.shape+"-"+strings.Join(c.args, "-"), func(t *testing.T) {
			tp, l, text := generate(t, c.shape, c.args...)
			if got := len(tp.Hosts()); got != c.hosts {
				t.Errorf("%d hosts, want %d", got, c.hosts)
			}
			nodes := nsNodes(l)
			if len(nodes) != c.nodes {
				t.Errorf("lab has %d nodes, want %d", len(nodes), c.nodes)
			}
			if len(l.Links) != len(tp.Links) {
				t.Errorf("lab has %d links, topology %d", len(l.Links), len(tp.Links))
			}
			if _, err := lab.PlanUp(l, &lab.State{}); err != nil {
				t.Fatalf("plan: %v", err)
			}
			for _, n := range tp.Nodes {
				ln := l.Node(n.Name)
				if ln == nil {
					t.Fatalf("node %s not in the lab", n.Name)
				}
				fwd := false
				for _, s := range ln.Sysctls {
					fwd = fwd || (s.Key == "net.ipv4.ip_forward" && s.Value == "1")
				}
				if fwd != n.Router {
					t.Errorf("%s: forwarding %v, router %v", n.Name, fwd, n.Router)
				}
			}
			for _, from := range nodes {
				for _, to := range nodes {
					if from != to {
						if err := walk(l, from, to.FirstAddr()); err != nil {
							t.Fatalf("%s -> %s (%s): %v\n%s", from.Name, to.Name, to.FirstAddr(), err, text)
						}
					}
				}
			}
		})
	}
}

// walk follows the routing tables from node n to dst, hop by hop; the
// reply path is another walk (from dst's node back), made by the caller's
// loop over every ordered pair.
func walk(l *lab.Lab, n *lab.Node, dst netip.Addr) error {
	for hops := 0; hops < len(l.Nodes); hops++ {
		if n.InterfaceWith(dst) != nil {
			return nil
		}
		var via netip.Addr
		for _, i := range n.Interfaces {
			for _, p := range i.Addrs {
				if p.Masked().Contains(dst) {
					via = dst
				}
			}
		}
		if !via.IsValid() {
			best := -1
			for _, r := range n.Routes {
				bits := 0
				if !r.IsDefault() {
					if !r.To.Contains(dst) {
						continue
					}
					bits = r.To.Bits()
				}
				if bits > best {
					best, via = bits, r.Via
				}
			}
		}
		if !via.IsValid() {
			return errors.New("no route at " + n.Name)
		}
		var next *lab.Node
		for _, i := range n.Interfaces {
			if i.Peer != nil && slicesHas(i.Peer.Addrs, via) {
				next = i.Peer.Node
			}
		}
		if next == nil {
			return errors.New("gateway " + via.String() + " of " + n.Name + " is on none of its links")
		}
		n = next
	}
	return errors.New("routing loop")
}

// nsNodes are the lab's nodes but the host (a generated lab leaves it alone).
func nsNodes(l *lab.Lab) []*lab.Node {
	var out []*lab.Node
	for _, n := range l.Nodes {
		if n.IsHost() {
			if len(n.Interfaces) > 0 {
				panic("generated lab uses the host")
			}
			continue
		}
		out = append(out, n)
	}
	return out
}

func slicesHas(ps []netip.Prefix, a netip.Addr) bool {
	for _, p := range ps {
		if p.Addr() == a {
			return true
		}
	}
	return false
}

func TestBadArguments(t *testing.T) {
	for _, c := range []struct {
		shape string
		args  []string
		want  string
	}{
		{"cube", []string{"3"}, `unknown shape "cube"`},
		{"linear", nil, "linear takes N"},
		{"tree", []string{"2"}, "tree takes DEPTH FANOUT"},
		{"ring", []string{"2"}, "at least 3 routers"},
		{"star", []string{"0"}, `N: "0" must be a whole number from 1 to 2000`},
		{"mesh", []string{"x"}, `"x" must be a whole number`},
		{"tree", []string{"12", "3"}, "more than 2000 nodes"},
		{"mesh", []string{"100"}, "static routes"},
		{"clos", []string{"4", "40", "50"}, "more than 2000 nodes"},
	} {
		_, err := topo.New(c.shape, c.args, "")
		if !errors.Is(err, topo.ErrUsage) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s %v: %v, want %q", c.shape, c.args, err, c.want)
		}
	}
}

// TestClosCount: a clos lab has spines + leaves + leaves*hosts nodes; the
// bound once counted spines*leaves*hosts and refused clos 4 16 60 (980 nodes).
func TestClosCount(t *testing.T) {
	tp, err := topo.New("clos", []string{"4", "16", "60"}, "")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(tp.Nodes), 4+16+16*60; got != want {
		t.Errorf("clos 4 16 60: %d nodes, want %d", got, want)
	}
}

// TestReadmeOutput: README shows what nsnet new linear 2 prints, exactly.
func TestReadmeOutput(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(b), "`nsnet new linear 2` prints:\n\n```yaml\n")
	block, _, ok2 := strings.Cut(after, "```\n")
	if !ok || !ok2 {
		t.Fatal("README has no output of nsnet new linear 2")
	}
	_, _, text := generate(t, "linear", "2")
	if block != text {
		t.Errorf("README's nsnet new linear 2 is stale:\n%s\nwant:\n%s", block, text)
	}
}

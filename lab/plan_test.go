package lab_test

import (
	"errors"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/nsnet/nsnet/lab"
	"github.com/nsnet/nsnet/lab/ledger"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

func load(t testing.TB, path string) *lab.Lab {
	t.Helper()
	l, err := lab.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func parse(t testing.TB, text string) *lab.Lab {
	t.Helper()
	l, err := lab.Parse("test.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func render(t testing.TB, p *lab.Plan) string {
	t.Helper()
	var b strings.Builder
	if err := p.Write(&b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestPlanGolden: the plan of each example, from nothing, as iproute2
// commands. Run with -update after an intended change.
func TestPlanGolden(t *testing.T) {
	for _, name := range []string{"seed", "two-lans", "routed"} {
		t.Run(name, func(t *testing.T) {
			l := load(t, filepath.Join("..", "examples", name+".yaml"))
			p, err := lab.PlanUp(l, &lab.State{})
			if err != nil {
				t.Fatal(err)
			}
			got := render(t, p)
			golden := filepath.Join("testdata", name+".plan.golden")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("plan differs from %s (go test -update rewrites it):\n%s", golden, diffLines(string(want), got))
			}
		})
	}
}

// diffLines shows the first lines that differ.
func diffLines(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var a, b string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			b = g[i]
		}
		if a != b {
			return "line " + strconv.Itoa(i+1) + ":\n  want: " + a + "\n  got:  " + b
		}
	}
	return ""
}

// upState builds the State the kernel would show with the lab fully up, and
// the ledger Up would have written.
func upState(l *lab.Lab) *lab.State {
	st := &lab.State{Host: &lab.NSState{Links: map[string]*lab.LinkState{}, Sysctls: map[string]string{}}, Netns: map[string]*lab.NSState{}}
	led := &ledger.Ledger{Lab: l.Name, Mark: l.Mark(), Complete: true}
	index := 10
	for _, n := range l.Nodes {
		ns := st.Host
		if !n.IsHost() {
			ns = &lab.NSState{Mark: l.Mark(), LoUp: true, Links: map[string]*lab.LinkState{}, Sysctls: map[string]string{}}
			st.Netns[n.Netns] = ns
		}
		led.Nodes = append(led.Nodes, ledger.Node{Name: n.Name, Netns: n.Netns})
		for _, i := range n.Interfaces {
			index++
			ls := &lab.LinkState{Index: index, Kind: i.Kind, Alias: l.Mark(), MAC: i.MAC.String(), Up: true, MTU: 1500, Addrs: slices.Clone(i.Addrs)}
			if i.IPv6() {
				ls.Addrs = append(ls.Addrs, i.LinkLocal())
			}
			if i.MTU != 0 {
				ls.MTU = i.MTU
			}
			if i.Master != nil {
				ls.Master = i.Master.Name
			}
			ns.Links[i.Name] = ls
			for _, a := range lab.Neighbours(i) {
				if ns.Neighs == nil {
					ns.Neighs = map[lab.NeighKey]string{}
				}
				ns.Neighs[lab.NeighKey{Dev: i.Name, IP: a}] = i.Peer.MAC.String()
			}
			for _, e := range lab.StaticNeighbours(i) {
				if ns.Neighs == nil {
					ns.Neighs = map[lab.NeighKey]string{}
				}
				ns.Neighs[lab.NeighKey{Dev: i.Name, IP: e.IP}] = e.MAC.String()
			}
			lk := ledger.Link{Node: n.Name, Netns: n.Netns, Name: i.Name, Kind: i.Kind, MAC: i.MAC.String()}
			if i.Peer != nil {
				lk.Peer = i.Peer.Node.Name + ":" + i.Peer.Name
			}
			led.Links = append(led.Links, lk)
		}
		for _, sc := range n.Sysctls {
			ns.Sysctls[sc.Key] = sc.Value
		}
		for i, p := range n.Processes {
			led.Procs = append(led.Procs, ledger.Proc{Node: n.Name, Netns: n.Netns, Index: i, Argv: p.Argv, PID: 1000 + i, Start: 1})
			st.Alive = append(st.Alive, true)
		}
		for _, r := range n.Routes {
			to := r.To
			if r.IsDefault() {
				to = netip.PrefixFrom(netip.IPv4Unspecified(), 0)
				if r.Via.Is6() {
					to = netip.PrefixFrom(netip.IPv6Unspecified(), 0)
				}
			}
			ns.Routes = append(ns.Routes, lab.RouteState{To: to, Via: r.Via, Dev: r.Dev})
		}
	}
	// Peers point at each other.
	for _, lk := range l.Links {
		if lk.CrossHost() {
			continue // one half here, the other on its machine
		}
		a, b := linkOf(st, lk.A), linkOf(st, lk.B)
		a.PeerIndex, b.PeerIndex = b.Index, a.Index
	}
	st.Ledger = led
	return st
}

func linkOf(st *lab.State, i *lab.Interface) *lab.LinkState {
	if i.Node.IsHost() {
		return st.Host.Links[i.Name]
	}
	return st.Netns[i.Node.Netns].Links[i.Name]
}

func planLines(t *testing.T, l *lab.Lab, st *lab.State) []string {
	t.Helper()
	p, err := lab.PlanUp(l, st)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, s := range p.Steps {
		out = append(out, s.Lines(p.Mark)...)
	}
	return out
}

func wantLines(t *testing.T, got []string, want ...string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("steps:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// TestPlanNoChange: a lab that is up as written needs nothing.
func TestPlanNoChange(t *testing.T) {
	for _, name := range []string{"seed", "two-lans", "routed"} {
		l := load(t, filepath.Join("..", "examples", name+".yaml"))
		wantLines(t, planLines(t, l, upState(l)))
	}
}

// TestPlanDrift: the plan repairs exactly what is missing.
func TestPlanDrift(t *testing.T) {
	l := load(t, filepath.Join("..", "examples", "two-lans.yaml"))

	st := upState(l)
	delete(st.Netns["two-lans-h1"].Links, "eth0")
	delete(st.Netns["two-lans-switch"].Links, "h1-eth0") // a veth goes as a pair
	st.Netns["two-lans-h1"].Routes = nil                 // and its routes with it
	wantLines(t, planLines(t, l, st),
		"ip -n two-lans-switch link add h1-eth0 type veth peer name eth0 netns two-lans-h1",
		"ip -n two-lans-switch link set h1-eth0 alias nsnet:two-lans",
		"ip -n two-lans-switch link set h1-eth0 addrgenmode none",
		"ip -n two-lans-switch link set h1-eth0 master lan1",
		"ip -n two-lans-switch link set h1-eth0 up",
		"ip -n two-lans-h1 link set eth0 alias nsnet:two-lans",
		"ip -n two-lans-h1 link set eth0 addrgenmode none",
		"ip -n two-lans-h1 addr add fe80::188f:9fff:fee2:cb80/64 dev eth0 nodad",
		"ip -n two-lans-h1 addr add 10.1.0.2/24 dev eth0",
		"ip -n two-lans-h1 addr add fd00:1::2/64 dev eth0 nodad",
		"ip -n two-lans-h1 link set eth0 up",
		"ip -n two-lans-h1 route add default via 10.1.0.1",
		"ip -6 -n two-lans-h1 route add default via fd00:1::1",
	)

	st = upState(l)
	st.Netns["two-lans-h4"].Links["eth0"].Addrs = st.Netns["two-lans-h4"].Links["eth0"].Addrs[1:]
	st.Netns["two-lans-switch"].Links["h5-eth0"].Up = false
	st.Netns["two-lans-switch"].Links["h6-eth0"].Master = ""
	st.Netns["two-lans-router"].Sysctls["net.ipv4.ip_forward"] = "0"
	wantLines(t, planLines(t, l, st),
		"ip netns exec two-lans-router sysctl -qw net.ipv4.ip_forward=1",
		"ip -n two-lans-h4 addr add 10.2.0.2/24 dev eth0",
		"ip -n two-lans-switch link set h5-eth0 up",
		"ip -n two-lans-switch link set h6-eth0 master lan2",
	)

	// What an interrupted up (or a hand) leaves that a clean up does not:
	// the kernel's address generation with its DAD'd link-local address,
	// a lab address added with DAD, a link-local address that is not the
	// lab's, another MAC. Each attribute is put back; nothing else moves.
	st = upState(l)
	h1 := st.Netns["two-lans-h1"].Links["eth0"]
	h1.AddrGenAuto = true
	h1.DAD = []netip.Prefix{h1.Addrs[len(h1.Addrs)-1], h1.Addrs[1]} // its link-local and fd00:1::2
	h1.Addrs = h1.Addrs[:1]
	port := st.Netns["two-lans-switch"].Links["h1-eth0"]
	port.AddrGenAuto = true
	port.DAD = []netip.Prefix{netip.MustParsePrefix("fe80::1/64")}
	port.Addrs = append(port.Addrs, netip.MustParsePrefix("fd00:9::9/64")) // by hand, nodad: not the plan's
	port.DAD = append(port.DAD, netip.MustParsePrefix("fd00:9::8/64"))     // by hand, with DAD: not the plan's either
	h3 := st.Netns["two-lans-h3"].Links["eth0"]
	h3.Addrs = append(h3.Addrs, netip.MustParsePrefix("fe80::3/64"))
	st.Netns["two-lans-h2"].Links["eth0"].MAC = "02:00:00:00:00:02"
	wantLines(t, planLines(t, l, st),
		"ip -n two-lans-switch link set h1-eth0 addrgenmode none",
		"ip -n two-lans-switch addr del fe80::1/64 dev h1-eth0",
		"ip -n two-lans-h1 link set eth0 addrgenmode none",
		"ip -n two-lans-h1 addr del fe80::188f:9fff:fee2:cb80/64 dev eth0",
		"ip -n two-lans-h1 addr del fd00:1::2/64 dev eth0",
		"ip -n two-lans-h1 addr add fe80::188f:9fff:fee2:cb80/64 dev eth0 nodad",
		"ip -n two-lans-h1 addr add fd00:1::2/64 dev eth0 nodad",
		"ip -n two-lans-h2 link set eth0 address 56:bf:85:42:9e:5b",
		"ip -n two-lans-h3 addr del fe80::3/64 dev eth0",
	)

	// A namespace deleted by hand (ip netns del) is made again, whole.
	st = upState(l)
	delete(st.Netns, "two-lans-h2")
	delete(st.Netns["two-lans-switch"].Links, "h2-eth0")
	got := planLines(t, l, st)
	if len(got) < 3 || got[0] != "ip netns add two-lans-h2" || !contains(got, "ip -6 -n two-lans-h2 route add default via fd00:1::1") {
		t.Errorf("after ip netns del, steps:\n  %s", strings.Join(got, "\n  "))
	}
}

func contains(lines []string, s string) bool {
	for _, l := range lines {
		if l == s {
			return true
		}
	}
	return false
}

// TestPlanPrune: objects the ledger holds and the file no longer has are
// removed, and a teardown removes everything in the right order.
func TestPlanPrune(t *testing.T) {
	l := load(t, filepath.Join("..", "examples", "two-lans.yaml"))
	st := upState(l)
	st.Ledger.Procs = []ledger.Proc{{Node: "h1", Netns: "two-lans-h1", Argv: []string{"sleep", "1000"}, PID: 4242, Start: 7}}
	st.Alive = []bool{true}
	text := mustRead(t, filepath.Join("..", "examples", "two-lans.yaml"))
	// Expectations name h3; they do not change plans.
	if i := strings.Index(text, "\nexpect:\n"); i >= 0 {
		text = text[:i+1]
	}
	for _, edit := range [][2]string{
		{"  - {a: {node: h3, name: eth0, addresses: [auto]}, b: {bridge: lan1}}\n", ""},
		{"  h3:\n    routes:\n      - {to: default, via: 10.1.0.1}\n      - {to: default, via: \"fd00:1::1\"}\n", ""},
		{"  - {a: {node: h6, name: eth0, addresses: [auto]}, b: {bridge: lan2}}\n", ""},
		{"  h6:\n    routes:\n      - {to: default, via: 10.2.0.1}\n      - {to: default, via: \"fd00:2::1\"}\n", "  h6: {}\n"},
	} {
		if !strings.Contains(text, edit[0]) {
			t.Fatalf("example changed: %q not found", edit[0])
		}
		text = strings.Replace(text, edit[0], edit[1], 1)
	}
	small := parse(t, text)
	small.File = l.File
	// h3 is gone with its link (which goes with h3's namespace); h6 stays
	// without its link; the process of h1 is not in the file.
	wantLines(t, planLines(t, small, st),
		"kill -TERM -- -4242  # sleep 1000 in node h1",
		"ip netns del two-lans-h3",
		"ip -n two-lans-switch link del h6-eth0",
	)

	p := lab.PlanDown("two-lans", upState(l))
	var got []string
	for _, s := range p.Steps {
		got = append(got, s.Lines(p.Mark)...)
	}
	wantLines(t, got,
		"ip netns del two-lans-switch",
		"ip netns del two-lans-router",
		"ip netns del two-lans-h1",
		"ip netns del two-lans-h2",
		"ip netns del two-lans-h3",
		"ip netns del two-lans-h4",
		"ip netns del two-lans-h5",
		"ip netns del two-lans-h6",
	)
	seed := load(t, filepath.Join("..", "examples", "seed.yaml"))
	p = lab.PlanDown("seed", upState(seed))
	got = nil
	for _, s := range p.Steps {
		got = append(got, s.Lines(p.Mark)...)
	}
	wantLines(t, got,
		"ip netns del direct_netns",
		"# wait: the kernel deletes veth0 along with the peer's namespace",
	)
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestPlanConflicts: names that exist and are not the lab's are refused,
// located in the file, before anything changes.
func TestPlanConflicts(t *testing.T) {
	file := filepath.Join("..", "examples", "seed.yaml")
	l := load(t, file)

	st := &lab.State{
		Host:  &lab.NSState{Links: map[string]*lab.LinkState{"veth0": {Index: 5, Kind: "veth", MAC: "02:00:00:00:00:01"}}},
		Netns: map[string]*lab.NSState{"direct_netns": {}},
	}
	_, err := lab.PlanUp(l, st)
	want := file + `:11:3: nodes.direct: namespace "direct_netns" already exists and is not lab seed's: delete it (ip netns del direct_netns) or choose another name (netns: NAME)` + "\n" +
		file + `:17:27: links[0].a.name: interface "veth0" already exists in the host and is not lab seed's: choose another name`
	if err == nil || err.Error() != want || !errors.Is(err, lab.ErrInvalid) {
		t.Errorf("conflicts:\n%v\nwant:\n%s", err, want)
	}

	// Another lab's marks and claims.
	st = &lab.State{
		Host:   &lab.NSState{Links: map[string]*lab.LinkState{}},
		Netns:  map[string]*lab.NSState{"direct_netns": {Mark: "nsnet:other"}},
		Claims: lab.Claims{HostLinks: map[string]string{"veth0": "third"}},
	}
	_, err = lab.PlanUp(l, st)
	want = file + `:11:3: nodes.direct: namespace "direct_netns" belongs to lab other` + "\n" +
		file + `:17:27: links[0].a.name: interface "veth0" in the host belongs to lab third`
	if err == nil || err.Error() != want {
		t.Errorf("conflicts:\n%v\nwant:\n%s", err, want)
	}

	// The lab's own mark on objects its ledger does not list: made by
	// hand, refused like any name in use.
	st = &lab.State{
		Host:  &lab.NSState{Links: map[string]*lab.LinkState{"veth0": {Index: 5, Kind: "veth", Alias: "nsnet:seed", MAC: "02:00:00:00:00:01"}}},
		Netns: map[string]*lab.NSState{"direct_netns": {Mark: "nsnet:seed"}},
	}
	_, err = lab.PlanUp(l, st)
	want = file + `:11:3: nodes.direct: namespace "direct_netns" carries lab seed's mark but is not in its ledger, so the lab did not make it: delete it (ip netns del direct_netns) or choose another name (netns: NAME)` + "\n" +
		file + `:17:27: links[0].a.name: interface "veth0" in the host carries lab seed's mark but is not in its ledger, so the lab did not make it: delete it (ip link del veth0) or choose another name`
	if err == nil || err.Error() != want || !errors.Is(err, lab.ErrInvalid) {
		t.Errorf("marked, not in the ledger:\n%v\nwant:\n%s", err, want)
	}
	// The same objects listed in the ledger (an up interrupted after
	// writing it, before finishing) are the lab's: they are completed.
	st = upState(l)
	st.Ledger.Complete = false
	delete(st.Netns["direct_netns"].Links, "veth1")
	st.Netns["direct_netns"].LoUp = false
	if _, err := lab.PlanUp(l, st); err != nil {
		t.Errorf("an interrupted up's objects were refused: %v", err)
	}
	// A teardown of a ledger that does not list a marked namespace leaves
	// it: the ledger is what down deletes from.
	st = upState(l)
	st.Ledger.Nodes = []ledger.Node{{Name: "host"}}
	if p := lab.PlanDown("seed", st); slices.ContainsFunc(p.Steps, func(s lab.Step) bool { return s.Op == lab.OpDelNetns }) {
		t.Errorf("down deleted a namespace its ledger does not list: %v", p.Steps)
	}

	// A host link with the lab's MAC but no alias (nsnet died before
	// setting it) and in the ledger is the lab's: no conflict.
	st = upState(l)
	st.Host.Links["veth0"].Alias = ""
	wantLines(t, planLines(t, l, st), "ip link set veth0 alias nsnet:seed")
	// Without the ledger entry it is not.
	st.Ledger.Links = nil
	if _, err := lab.PlanUp(l, st); err == nil {
		t.Error("an unmarked host link not in the ledger was taken")
	}
}

// TestAutoAddresses: automatic addresses are deterministic, skip every
// static address, and come in file order.
func TestAutoAddresses(t *testing.T) {
	l := parse(t, `lab: a
nodes: {x: {}, y: {}, z: {}}
bridges:
  br: {subnets: [10.0.0.0/29, "fd00::/64"], addresses: [10.0.0.1/29, auto]}
links:
  - {a: {node: x, name: e, addresses: [auto]}, b: {bridge: br}}
  - {a: {node: y, name: e, addresses: [10.0.0.3/29]}, b: {bridge: br}}
  - {a: {node: z, name: e, addresses: [auto]}, b: {bridge: br}}
`)
	var got []string
	for _, n := range l.Nodes {
		for _, i := range n.Interfaces {
			for _, a := range i.Addrs {
				got = append(got, n.Name+":"+i.Name+"="+a.String())
			}
		}
	}
	want := "host:br=10.0.0.1/29 host:br=10.0.0.2/29 host:br=fd00::1/64 x:e=10.0.0.4/29 x:e=fd00::2/64 y:e=10.0.0.3/29 z:e=10.0.0.5/29 z:e=fd00::3/64"
	if strings.Join(got, " ") != want {
		t.Errorf("addresses:\n%s\nwant:\n%s", strings.Join(got, " "), want)
	}
}

// TestPlanGoldenHosts: each machine's part of a lab across machines, from
// nothing: VXLAN halves with fixed remotes and derived VNIs.
func TestPlanGoldenHosts(t *testing.T) {
	l := load(t, filepath.Join("..", "examples", "multi.yaml"))
	for _, h := range l.Hosts {
		t.Run(h.Name, func(t *testing.T) {
			p, err := lab.PlanUp(l.ForHost(h), &lab.State{})
			if err != nil {
				t.Fatal(err)
			}
			got := render(t, p)
			golden := filepath.Join("testdata", "multi."+h.Name+".plan.golden")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("plan differs from %s (go test -update rewrites it):\n%s", golden, diffLines(string(want), got))
			}
		})
	}
	if _, err := lab.PlanUp(l, &lab.State{}); err == nil {
		t.Error("PlanUp of the whole lab across machines: no error, want one asking for a host's part")
	}
}

// TestPlanGatedProcess: a ledger process still at its gate (its up was
// killed before the go-ahead took effect) is stopped and started again,
// not kept; one past its gate is kept.
func TestPlanGatedProcess(t *testing.T) {
	l := parse(t, "lab: g\nnodes:\n  n: {processes: [{cmd: sleep 1000}]}\n")
	for _, gated := range []bool{false, true} {
		st := upState(l)
		st.Gated = []bool{gated}
		got := planLines(t, l, st)
		if !gated {
			wantLines(t, got)
			continue
		}
		wantLines(t, got,
			"kill -TERM -- -1000  # sleep 1000 in node n",
			"ip netns exec g-n setsid sleep 1000 &",
		)
	}
}

// TestPlanCarrier: links found up but not yet operationally up (an
// interrupted up brought them up a moment ago) are what up waits for even
// with nothing to change: veth ends, and bridges with ports.
func TestPlanCarrier(t *testing.T) {
	l := load(t, filepath.Join("..", "examples", "two-lans.yaml"))
	st := upState(l)
	for _, ns := range st.Netns {
		for _, ls := range ns.Links {
			ls.Running = true
		}
	}
	st.Netns["two-lans-switch"].Links["lan1"].Running = false
	st.Netns["two-lans-h2"].Links["eth0"].Running = false
	p, err := lab.PlanUp(l, st)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, i := range p.Carrier {
		got = append(got, i.Node.Name+":"+i.Name)
	}
	sort.Strings(got)
	if !p.Empty() || strings.Join(got, " ") != "h2:eth0 switch:lan1" {
		t.Errorf("plan of %d steps waits for %v, want none and h2:eth0 switch:lan1", len(p.Steps), got)
	}
}

// TestPlanDownHosts: a teardown of one machine's part lets the namespaces
// take their VXLAN halves along (deleting each costs the kernel an RCU
// barrier); an up that drops a node deletes its half first.
func TestPlanDownHosts(t *testing.T) {
	l := load(t, filepath.Join("..", "examples", "multi.yaml"))
	part := l.ForHost(l.Host("m2"))
	st := upState(part)
	st.Ledger.VXLAN = &ledger.VXLAN{Port: 4789, Allow: []string{"192.168.50.1"}}
	st.Ledger.Guard = lab.GuardTable("multi")
	st.Host.Guard = true
	p := lab.PlanDown("multi", st)
	var got []string
	for _, s := range p.Steps {
		got = append(got, s.Lines(p.Mark)...)
	}
	wantLines(t, got, "ip netns del multi-b", "ip netns del multi-c", "nft delete table inet nsnet-vxlan-multi")

	// The file without c: its half goes before its namespace.
	small := parse(t, `lab: multi
hosts:
  m1: {address: 192.168.50.1}
  m2: {address: 192.168.50.2}
nodes:
  a: {host: m1}
  b: {host: m2}
links:
  - a: {node: a, name: eth0, addresses: [10.0.0.1/24, "fd00::1/64"]}
    b: {node: b, name: eth0, addresses: [10.0.0.2/24, "fd00::2/64"]}
`)
	small.File = l.File
	pl, err := lab.PlanUp(small.ForHost(small.Host("m2")), st)
	if err != nil {
		t.Fatal(err)
	}
	got = nil
	for _, s := range pl.Steps {
		got = append(got, s.Lines(pl.Mark)...)
	}
	if !slices.Contains(got, "ip -n multi-c link del lan0") || slices.Index(got, "ip -n multi-c link del lan0") > slices.Index(got, "ip netns del multi-c") {
		t.Errorf("an up dropping node c does not delete its VXLAN half before its namespace:\n%s", strings.Join(got, "\n"))
	}
}

package lab_test

import (
	"encoding/json"
	"testing"

	"github.com/nsnet/nsnet/lab"
	"github.com/nsnet/nsnet/lab/ledger"
)

// recorder is an Executor and LedgerWriter that changes nothing: it checks
// that every object is in the last written ledger before it is created, and
// that every process is recorded before it is let run.
type recorder struct {
	t      *testing.T
	mark   string
	saved  *ledger.Ledger
	writes int
	lines  []string
	pid    int
}

func (r *recorder) Write(l *ledger.Ledger) error {
	b, err := json.Marshal(l)
	if err != nil {
		return err
	}
	r.saved = &ledger.Ledger{}
	r.writes++
	return json.Unmarshal(b, r.saved)
}

func (r *recorder) recorded(netns, name string) bool {
	if r.saved == nil {
		return false
	}
	for _, lk := range r.saved.Links {
		if lk.Netns == netns && lk.Name == name {
			return true
		}
	}
	return false
}

func (r *recorder) Run(s lab.Step) error {
	r.lines = append(r.lines, s.Lines(r.mark)...)
	switch s.Op {
	case lab.OpAddNetns:
		if r.saved == nil || r.saved.Node(s.Node.Name) == nil || r.saved.Node(s.Node.Name).Netns != s.Node.Netns {
			r.t.Errorf("namespace %s created before the ledger had it", s.Node.Netns)
		}
	case lab.OpAddBridge:
		if !r.recorded(s.Iface.Node.Netns, s.Iface.Name) {
			r.t.Errorf("bridge %s created before the ledger had it", s.Iface.Name)
		}
	case lab.OpAddVeth:
		for _, i := range []*lab.Interface{s.Iface, s.Iface.Peer} {
			if !r.recorded(i.Node.Netns, i.Name) {
				r.t.Errorf("veth end %s:%s created before the ledger had it", i.Node.Name, i.Name)
			}
		}
	case lab.OpSysctl:
		if sc := s.Node.Sysctls[s.Index]; sc.Iface != nil {
			// Goes with the interface, which the ledger must have.
			if !r.recorded(sc.Iface.Node.Netns, sc.Iface.Name) {
				r.t.Errorf("sysctl %s set on an interface the ledger does not have", sc.Key)
			}
		} else if s.Node.IsHost() {
			key := s.Node.Sysctls[s.Index].Key
			found := false
			for _, sc := range r.saved.Sysctls {
				found = found || sc.Key == key
			}
			if !found {
				r.t.Errorf("host sysctl %s set before the ledger had its old value", key)
			}
		}
	}
	return nil
}

func (r *recorder) Start(s lab.Step) (*lab.Started, error) {
	r.pid++
	pid := r.pid
	r.lines = append(r.lines, s.Lines(r.mark)...)
	return &lab.Started{
		PID: pid, Start: 99,
		Release: func() error {
			for _, p := range r.saved.Procs {
				if p.PID == pid && p.Start == 99 {
					return nil
				}
			}
			r.t.Errorf("process %d let run before the ledger had it", pid)
			return nil
		},
		Abort: func() { r.t.Errorf("process %d aborted", pid) },
	}, nil
}

const procLab = `lab: p
nodes:
  host:
    sysctls: {net.ipv4.ip_forward: 1}
    processes: [{cmd: sleep 1000}]
  a:
    processes:
      - {cmd: [sh, -c, "echo hi; sleep 1000"]}
bridges:
  br: {subnets: [10.9.0.0/24], addresses: [auto]}
links:
  - {a: {node: a, name: eth0, addresses: [auto]}, b: {bridge: br}}
`

// TestApplyLedgerFirst: the ledger is written once before anything is
// created, once with the processes before they run, and once at the end.
func TestApplyLedgerFirst(t *testing.T) {
	l := parse(t, procLab)
	st := &lab.State{Host: &lab.NSState{Links: map[string]*lab.LinkState{}, Sysctls: map[string]string{"net.ipv4.ip_forward": "0"}}}
	p, err := lab.PlanUp(l, st)
	if err != nil {
		t.Fatal(err)
	}
	r := &recorder{t: t, mark: l.Mark()}
	led, err := lab.Apply(p, r, r, lab.ApplyOptions{Host: ledger.NSID{Dev: 1, Ino: 2}})
	if err != nil {
		t.Fatal(err)
	}
	if r.writes != 3 {
		t.Errorf("%d ledger writes, want 3 (before creating, processes, complete)", r.writes)
	}
	if !led.Complete || !r.saved.Complete || len(r.saved.Procs) != 2 || r.saved.Host.Ino != 2 {
		t.Errorf("final ledger: %+v", r.saved)
	}
	if len(r.saved.Sysctls) != 1 || r.saved.Sysctls[0].Old != "0" || r.saved.Sysctls[0].New != "1" {
		t.Errorf("host sysctl recorded as %+v, want old 0 new 1", r.saved.Sysctls)
	}
	last := r.lines[len(r.lines)-2:]
	wantLines(t, last, "setsid sleep 1000 &", "ip netns exec p-a setsid sh -c 'echo hi; sleep 1000' &")
}

// TestApplyTeardown: a teardown's ledger lists nothing afterwards, and no
// ledger is written (Down deletes it).
func TestApplyTeardown(t *testing.T) {
	l := parse(t, procLab)
	st := upState(l)
	st.Ledger.Procs = []ledger.Proc{{Node: "a", Netns: "p-a", Argv: []string{"x"}, PID: 12, Start: 3}}
	st.Ledger.Sysctls = []ledger.Sysctl{{Node: "host", Key: "net.ipv4.ip_forward", Old: "0", New: "1"}}
	st.Alive = []bool{true}
	p := lab.PlanDown("p", st)
	r := &recorder{t: t, mark: l.Mark()}
	led, err := lab.Apply(p, r, r, lab.ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r.writes != 0 || len(led.Nodes)+len(led.Links)+len(led.Procs)+len(led.Sysctls) != 0 {
		t.Errorf("after teardown: %d writes, ledger %+v", r.writes, led)
	}
	wantLines(t, r.lines,
		"kill -TERM -- -12  # x in node a",
		"sysctl -qw net.ipv4.ip_forward=0",
		"ip netns del p-a",
		"ip link del br",
		"# wait: the kernel deletes a-eth0 along with the peer's namespace",
	)
}

// TestApplyNothing: an unchanged lab writes nothing and runs nothing.
func TestApplyNothing(t *testing.T) {
	l := load(t, "../examples/two-lans.yaml")
	p, err := lab.PlanUp(l, upState(l))
	if err != nil {
		t.Fatal(err)
	}
	if !p.Empty() || p.Summary() != "no changes" {
		t.Fatalf("plan for an unchanged lab: %s", render(t, p))
	}
}

// TestInterfaceSysctls: a key of an interface the lab makes is set once the
// interface exists, before it has addresses and is up; again only when it
// drifted or the interface is made anew. In the host it goes with the
// interface: the ledger keeps no value to restore for it.
func TestInterfaceSysctls(t *testing.T) {
	l := parse(t, "lab: sc\nnodes:\n  a: {sysctls: {net.ipv4.ip_forward: 1, net.ipv6.conf.eth0.accept_dad: 0}}\n"+
		"  host: {sysctls: {net.ipv4.conf.h0.forwarding: 1, net.ipv4.ip_forward: 1}}\n"+
		"links:\n  - {a: {node: a, name: eth0, addresses: [10.0.0.1/24]}, b: {node: host, name: h0, addresses: [10.0.0.2/24]}}\n")
	st := &lab.State{Host: &lab.NSState{Links: map[string]*lab.LinkState{}, Sysctls: map[string]string{"net.ipv4.ip_forward": "0"}}}
	p, err := lab.PlanUp(l, st)
	if err != nil {
		t.Fatal(err)
	}
	r := &recorder{t: t, mark: l.Mark()}
	if _, err := lab.Apply(p, r, r, lab.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	wantLines(t, r.lines,
		"ip netns add sc-a", "ip -n sc-a link set lo alias nsnet:sc",
		"ip -n sc-a link set lo up",
		"sysctl -qw net.ipv4.ip_forward=1",
		"ip netns exec sc-a sysctl -qw net.ipv4.ip_forward=1",
		"ip link add h0 type veth peer name eth0 netns sc-a",
		"ip link set h0 alias nsnet:sc",
		"ip link set h0 addrgenmode none",
		"sysctl -qw net.ipv4.conf.h0.forwarding=1",
		"ip addr add 10.0.0.2/24 dev h0",
		"ip link set h0 up",
		"ip neigh replace 10.0.0.1 lladdr 0e:86:10:ea:bf:7e dev h0 nud permanent",
		"ip -n sc-a link set eth0 alias nsnet:sc",
		"ip -n sc-a link set eth0 addrgenmode none",
		"ip netns exec sc-a sysctl -qw net.ipv6.conf.eth0.accept_dad=0",
		"ip -n sc-a addr add 10.0.0.1/24 dev eth0",
		"ip -n sc-a link set eth0 up",
		"ip -n sc-a neigh replace 10.0.0.2 lladdr 4e:de:e0:56:16:ab dev eth0 nud permanent",
	)
	if len(r.saved.Sysctls) != 1 || r.saved.Sysctls[0].Key != "net.ipv4.ip_forward" {
		t.Errorf("ledger sysctls %+v, want only the host's net.ipv4.ip_forward", r.saved.Sysctls)
	}

	// Up as written: nothing. Drifted: just that key.
	up := upState(l)
	wantLines(t, planLines(t, l, up))
	up.Netns["sc-a"].Sysctls["net.ipv6.conf.eth0.accept_dad"] = "1"
	up.Host.Sysctls["net.ipv4.conf.h0.forwarding"] = "0"
	wantLines(t, planLines(t, l, up),
		"sysctl -qw net.ipv4.conf.h0.forwarding=1",
		"ip netns exec sc-a sysctl -qw net.ipv6.conf.eth0.accept_dad=0")
}

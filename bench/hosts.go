package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nsnet/nsnet/netns"
	"github.com/nsnet/nsnet/probe"
)

// The benchmark of a lab across machines: one lab file, its nodes on three
// simulated machines, half of its links across them (VXLAN pairs), brought
// up by `nsnet up` on the three at once, against the same lab without
// hosts: on one machine. A simulated machine is what the tests of package
// lab make: a network and mount namespace with a private /run (its
// namespaces, state directory and hosts files), kept by a process of its
// own, joined to the others by a veth to an underlay bridge. Everything is
// made inside the bench's sandbox; the simulated machines' underlay is set
// up with iproute2, as a person would cable real ones (it is not nsnet's
// work being measured).

// Machines is how many simulated machines the lab spreads over.
const Machines = 3

// HostsOptions shape the benchmark.
type HostsOptions struct {
	N    int // nodes (even, at least 6)
	Reps int
	// Progress, if set, gets a line per measurement.
	Progress io.Writer
}

// HostsReport is the benchmark's result: medians over the repetitions.
type HostsReport struct {
	N          int     `json:"n"`
	Links      int     `json:"links"`
	CrossLinks int     `json:"cross_host_links"`
	Machines   int     `json:"machines"`
	Reps       int     `json:"repetitions"`
	UpOne      float64 `json:"up_one_machine_s"`
	UpMulti    float64 `json:"up_machines_s"` // wall time, the machines in parallel
	UpRatio    float64 `json:"up_ratio"`      // median of per-repetition ratios
	DownOne    float64 `json:"down_one_machine_s"`
	DownMulti  float64 `json:"down_machines_s"`
	DownRatio  float64 `json:"down_ratio"`
	// Answered counts the cross-host links whose far end answered a ping
	// (the least over the repetitions).
	Answered int `json:"cross_host_pings_answered"`
}

// hostOf places node i: pairs of nodes on one machine, the pairs round the
// machines, so that in the ring every other link crosses machines.
func hostOf(i int) int { return (i / 2) % Machines }

// hostAddr is machine m's underlay address.
func hostAddr(m int) string { return fmt.Sprintf("192.168.60.%d", m+1) }

// linkAddrs are the two ends of ring link k (node k to node k+1): a /30 of
// 10.64.0.0/16.
func linkAddrs(k int) (netip.Addr, netip.Addr) {
	base := netip.AddrFrom4([4]byte{10, 64 + byte(k>>14), byte(k >> 6), byte(k&63) * 4})
	a := base.Next()
	return a, a.Next()
}

// HostsLabYAML is the ring of n nodes; with machines, over Machines hosts.
func HostsLabYAML(n int, machines bool) []byte {
	var b bytes.Buffer
	b.WriteString("lab: ring\n")
	if machines {
		b.WriteString("hosts:\n")
		for m := 0; m < Machines; m++ {
			fmt.Fprintf(&b, "  m%d: {address: %s}\n", m+1, hostAddr(m))
		}
	}
	b.WriteString("nodes:\n")
	for i := 0; i < n; i++ {
		if machines {
			fmt.Fprintf(&b, "  n%d: {host: m%d}\n", i, hostOf(i)+1)
		} else {
			fmt.Fprintf(&b, "  n%d: {}\n", i)
		}
	}
	b.WriteString("links:\n")
	for k := 0; k < n; k++ {
		a, c := linkAddrs(k)
		fmt.Fprintf(&b, "  - {a: {node: n%d, name: r%d, addresses: [%s/30]}, b: {node: n%d, name: l%d, addresses: [%s/30]}}\n",
			k, k, a, (k+1)%n, k, c)
	}
	return b.Bytes()
}

// machine is a simulated machine: a process in a network and mount
// namespace of its own, /run private.
type machine struct {
	name string
	cmd  *exec.Cmd
}

func (m *machine) pid() string { return strconv.Itoa(m.cmd.Process.Pid) }

func (m *machine) in(args ...string) error {
	out, err := exec.Command("nsenter", append([]string{"-t", m.pid(), "-n", "--"}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %s: %v: %s", m.name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// nsnet runs nsnet there, with the machine's own state directory and hosts
// files.
func (m *machine) nsnet(exe string, args ...string) error {
	cmd := exec.Command("nsenter", append([]string{"-t", m.pid(), "-n", "-m", "--", exe}, args...)...)
	cmd.Env = append(os.Environ(), "NSNET_STATE_DIR=/run/nsnet", "NSNET_ETC_NETNS=/run/etc-netns")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: nsnet %s: %v: %s", m.name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

func startMachine(name string) (*machine, error) {
	m := &machine{name: name}
	m.cmd = exec.Command("unshare", "-n", "-m", "--propagation", "private", "sh", "-c",
		"mount -t tmpfs tmpfs /run && mkdir -p /run/netns /run/nsnet /run/etc-netns && echo ready && exec sleep 86400")
	out, err := m.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := m.cmd.Start(); err != nil {
		return nil, fmt.Errorf("simulated machine: %w (needs util-linux unshare)", err)
	}
	if line, err := bufio.NewReader(out).ReadString('\n'); err != nil || line != "ready\n" {
		m.stop()
		return nil, fmt.Errorf("simulated machine %s: %q %v", name, line, err)
	}
	return m, m.in("ip", "link", "set", "lo", "up")
}

func (m *machine) stop() {
	m.cmd.Process.Kill()
	m.cmd.Wait()
}

// Hosts runs the benchmark. It must run inside a sandbox (nsnet bench makes
// one): it makes an underlay bridge in the current namespace.
func Hosts(env *Env, opt HostsOptions) (HostsReport, error) {
	r := HostsReport{N: opt.N, Links: opt.N, CrossLinks: opt.N / 2, Machines: Machines, Reps: max(opt.Reps, 1), Answered: -1}
	if opt.N < 6 || opt.N%2 != 0 {
		return r, fmt.Errorf("bench --hosts %d: the ring needs an even number of nodes, at least 6", opt.N)
	}
	if env.Nsnet == "" || env.IP == "" {
		return r, fmt.Errorf("bench --hosts needs the nsnet binary and iproute2 (ip)")
	}
	dir, err := os.MkdirTemp("", "nsnet-bench-hosts-")
	if err != nil {
		return r, err
	}
	defer os.RemoveAll(dir)
	multiFile, oneFile := filepath.Join(dir, "ring.yaml"), filepath.Join(dir, "ring-one.yaml")
	if err := os.WriteFile(multiFile, HostsLabYAML(opt.N, true), 0o644); err != nil {
		return r, err
	}
	if err := os.WriteFile(oneFile, HostsLabYAML(opt.N, false), 0o644); err != nil {
		return r, err
	}
	ip := func(args ...string) error {
		if out, err := exec.Command(env.IP, args...).CombinedOutput(); err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
		}
		return nil
	}
	const ul = "ulbench"
	if err := ip("link", "add", ul, "type", "bridge"); err != nil {
		return r, err
	}
	defer ip("link", "del", ul)
	if err := ip("link", "set", ul, "up"); err != nil {
		return r, err
	}
	// m0 is the one machine of the lab without hosts:; m1-m3 the lab's.
	var ms []*machine
	defer func() {
		for _, m := range ms {
			m.nsnet(env.Nsnet, "down", "ring")
			m.stop()
		}
	}()
	for i := 0; i <= Machines; i++ {
		m, err := startMachine(fmt.Sprintf("m%d", i))
		if m != nil {
			ms = append(ms, m)
		}
		if err != nil {
			return r, err
		}
		if i == 0 {
			continue
		}
		port := fmt.Sprintf("%s%d", ul, i)
		if err := ip("link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", m.pid()); err != nil {
			return r, err
		}
		defer ip("link", "del", port)
		if err := ip("link", "set", port, "master", ul, "up"); err != nil {
			return r, err
		}
		if err := m.in(env.IP, "addr", "add", hostAddr(i-1)+"/24", "dev", "eth0"); err != nil {
			return r, err
		}
		if err := m.in(env.IP, "link", "set", "eth0", "up"); err != nil {
			return r, err
		}
	}
	one, hosts := ms[0], ms[1:]
	progress := func(format string, a ...any) {
		if opt.Progress != nil {
			fmt.Fprintf(opt.Progress, format+"\n", a...)
		}
	}
	parallel := func(verb string) (time.Duration, error) {
		start := time.Now()
		errs := make([]error, len(hosts))
		var wg sync.WaitGroup
		for i, m := range hosts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if verb == "up" {
					errs[i] = m.nsnet(env.Nsnet, "up", multiFile)
				} else {
					errs[i] = m.nsnet(env.Nsnet, "down", "ring")
				}
			}()
		}
		wg.Wait()
		d := time.Since(start)
		for _, err := range errs {
			if err != nil {
				return d, err
			}
		}
		return d, nil
	}
	timed := func(f func() error) (time.Duration, error) {
		start := time.Now()
		err := f()
		return time.Since(start), err
	}
	var upOne, upMulti, downOne, downMulti, upX, downX []float64
	for rep := 0; rep < r.Reps; rep++ {
		u1, err := timed(func() error { return one.nsnet(env.Nsnet, "up", oneFile) })
		if err != nil {
			return r, err
		}
		d1, err := timed(func() error { return one.nsnet(env.Nsnet, "down", "ring") })
		if err != nil {
			return r, err
		}
		um, err := parallel("up")
		if err != nil {
			return r, err
		}
		answered, err := pingCross(hosts, opt.N)
		if err != nil {
			return r, err
		}
		if r.Answered < 0 || answered < r.Answered {
			r.Answered = answered
		}
		dm, err := parallel("down")
		if err != nil {
			return r, err
		}
		progress("bench hosts-%d rep %d: one machine up %.2fs down %.2fs; %d machines up %.2fs down %.2fs; %d/%d cross-host pings answered",
			opt.N, rep+1, u1.Seconds(), d1.Seconds(), Machines, um.Seconds(), dm.Seconds(), answered, r.CrossLinks)
		upOne, upMulti = append(upOne, u1.Seconds()), append(upMulti, um.Seconds())
		downOne, downMulti = append(downOne, d1.Seconds()), append(downMulti, dm.Seconds())
		upX, downX = append(upX, um.Seconds()/u1.Seconds()), append(downX, dm.Seconds()/d1.Seconds())
	}
	r.UpOne, r.UpMulti, r.UpRatio = median(upOne), median(upMulti), median(upX)
	r.DownOne, r.DownMulti, r.DownRatio = median(downOne), median(downMulti), median(downX)
	return r, nil
}

// pingCross pings across every link between machines, from its a end's
// node (on its machine) to its b end's address, and counts the answers. A
// link that did not answer is asked again, up to five rounds: the first
// datagram across waits for ARP over the underlay.
func pingCross(hosts []*machine, n int) (int, error) {
	var todo []int
	for k := 0; k < n; k++ {
		if hostOf(k) != hostOf((k+1)%n) {
			todo = append(todo, k)
		}
	}
	total := len(todo)
	const batch = 200 // namespaces held open at once
	for round := 0; round < 5 && len(todo) > 0; round++ {
		var left []int
		for lo := 0; lo < len(todo); lo += batch {
			part := todo[lo:min(lo+batch, len(todo))]
			pairs := make([]probe.Pair, len(part))
			for j, k := range part {
				m := hosts[hostOf(k)]
				ns, err := netns.Open("/proc/" + m.pid() + "/root/run/netns/ring-n" + strconv.Itoa(k))
				if err != nil {
					for _, p := range pairs[:j] {
						p.From.Close()
					}
					return 0, err
				}
				_, b := linkAddrs(k)
				pairs[j] = probe.Pair{From: ns, To: b}
			}
			for j, res := range probe.Sweep(context.Background(), pairs, 2*time.Second) {
				if !res.Reply {
					left = append(left, part[j])
				}
			}
			for _, p := range pairs {
				p.From.Close()
			}
		}
		todo = left
	}
	return total - len(todo), nil
}

// WriteHosts prints the benchmark's table.
func WriteHosts(out io.Writer, r HostsReport) error {
	fmt.Fprintf(out, "lab across machines: ring of %d nodes, %d links (%d across %d simulated machines), median of %d\n",
		r.N, r.Links, r.CrossLinks, r.Machines, r.Reps)
	fmt.Fprintf(out, "%-32s %8s %8s\n", "", "up (s)", "down (s)")
	fmt.Fprintf(out, "%-32s %8.2f %8.2f\n", "one machine (no hosts:)", r.UpOne, r.DownOne)
	fmt.Fprintf(out, "%-32s %8.2f %8.2f\n", fmt.Sprintf("%d machines in parallel", r.Machines), r.UpMulti, r.DownMulti)
	fmt.Fprintf(out, "%-32s %8.2f %8.2f   (target <= 1.30)\n", "ratio", r.UpRatio, r.DownRatio)
	_, err := fmt.Fprintf(out, "ping across every cross-host link: %d/%d answered\n", r.Answered, r.CrossLinks)
	return err
}

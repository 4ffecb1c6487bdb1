package bench

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/nsnet/nsnet/kernel"
	"github.com/nsnet/nsnet/netns"
)

// Runner builds and removes a workload one way.
type Runner interface {
	Name() string
	Setup(w Workload) error
	// Teardown removes everything; Measure waits for the kernel to finish.
	Teardown(w Workload) error
}

// Env is what the runners work in: the host namespace's handle and the
// namespace directory.
type Env struct {
	Host  *kernel.Handle
	Netns netns.Dir
	// IP is the iproute2 binary.
	IP string
	// Nsnet is the nsnet binary, for the lab runner.
	Nsnet string
	// StateDir is the lab ledger directory the nsnet runner uses.
	StateDir string

	lastRSS int64 // peak RSS of the last nsnet process
}

// ipEach runs every command as its own `ip` process, as people do by hand.
type ipEach struct{ env *Env }

func (r ipEach) Name() string { return "ip-each" }

func (r ipEach) Setup(w Workload) error { return r.run(w.IPCommands()) }

func (r ipEach) Teardown(w Workload) error { return r.run(w.IPTeardown()) }

func (r ipEach) run(cs []Cmd) error {
	for _, c := range cs {
		args := strings.Fields(c.Args)
		if c.NS != "" {
			args = append([]string{"-n", c.NS}, args...)
		}
		if out, err := exec.Command(r.env.IP, args...).CombinedOutput(); err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
		}
	}
	return nil
}

// ipBatch is iproute2 at its best: one `ip -batch` for the host, with each
// veth created with its peer already in its namespace, then one
// `ip -n NS -batch` per namespace.
type ipBatch struct{ env *Env }

func (r ipBatch) Name() string { return "ip-batch" }

func (r ipBatch) Setup(w Workload) error { return r.run(w.IPCommands()) }

func (r ipBatch) Teardown(w Workload) error { return r.run(w.IPTeardown()) }

func (r ipBatch) run(cs []Cmd) error {
	var host bytes.Buffer
	var order []string
	per := map[string]*bytes.Buffer{}
	for _, c := range cs {
		if c.NS == "" {
			host.WriteString(c.Args + "\n")
			continue
		}
		b, ok := per[c.NS]
		if !ok {
			b = &bytes.Buffer{}
			per[c.NS] = b
			order = append(order, c.NS)
		}
		b.WriteString(c.Args + "\n")
	}
	if err := r.batch(nil, &host); err != nil {
		return err
	}
	for _, ns := range order {
		if err := r.batch([]string{"-n", ns}, per[ns]); err != nil {
			return err
		}
	}
	return nil
}

func (r ipBatch) batch(opts []string, in *bytes.Buffer) error {
	if in.Len() == 0 {
		return nil
	}
	cmd := exec.Command(r.env.IP, append(opts, "-batch", "-")...)
	cmd.Stdin = in
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("ip %s -batch: %v: %s", strings.Join(opts, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// tuned is the floor: one process, netlink only, one handle per namespace
// opened once, every veth created with its peer already in its namespace
// (a move costs an RCU grace period), operations by index, teardown by
// dropping the namespaces so the kernel batches the device cleanup.
//
// It is written with github.com/vishvananda/netlink, on purpose: the anchor
// is the loop a careful user would write with the most common Go netlink
// library, independent of nsnet's kernel layer (rtnetlink/v2 over
// mdlayher/netlink), so that the comparison measures nsnet against that
// and not against itself. Nothing else in nsnet uses the library.
type tuned struct{ env *Env }

func (r tuned) Name() string { return "tuned" }

// handleIn opens a netlink handle in ns. The socket is made on a locked
// thread inside ns by netns.Do rather than by netlink.NewHandleAt, whose
// namespace switch unlocks the thread even when switching back failed.
func handleIn(ns *netns.NS) (*netlink.Handle, error) {
	var h *netlink.Handle
	err := ns.Do(func() error {
		var err error
		h, err = netlink.NewHandle(unix.NETLINK_ROUTE)
		return err
	})
	return h, err
}

func (r tuned) Setup(w Workload) error {
	h, err := handleIn(r.env.Host.NS())
	if err != nil {
		return err
	}
	defer h.Close()
	gw := w.Gateway()
	var brIndex int
	if w.Mode == Bridge {
		la := netlink.NewLinkAttrs()
		la.Name = w.BridgeName()
		br := &netlink.Bridge{LinkAttrs: la}
		if err := h.LinkAdd(br); err != nil {
			return fmt.Errorf("add bridge: %w", err)
		}
		brIndex = br.Index
		if err := h.AddrAdd(br, &netlink.Addr{IPNet: ipnet(gw, 12)}); err != nil {
			return fmt.Errorf("bridge address: %w", err)
		}
		if err := h.LinkSetUp(br); err != nil {
			return err
		}
	}
	for i := 0; i < w.N; i++ {
		ns, err := r.env.Netns.Add(w.NS(i))
		if err != nil {
			return err
		}
		err = r.node(w, i, ns, h, brIndex)
		ns.Close()
		if err != nil {
			return fmt.Errorf("node %d: %w", i, err)
		}
	}
	return nil
}

func (r tuned) node(w Workload, i int, ns *netns.NS, h *netlink.Handle, brIndex int) error {
	gw := w.Gateway()
	la := netlink.NewLinkAttrs()
	la.Name = w.HostIf(i)
	la.HardwareAddr = w.HostMAC(i)
	if brIndex != 0 {
		la.MasterIndex = brIndex
	}
	veth := &netlink.Veth{LinkAttrs: la, PeerName: "eth0", PeerHardwareAddr: w.NodeMAC(i), PeerNamespace: netlink.NsFd(ns.Fd())}
	if err := h.LinkAdd(veth); err != nil {
		return fmt.Errorf("add veth: %w", err)
	}
	if w.Mode == PTP {
		if err := h.AddrAdd(veth, &netlink.Addr{IPNet: ipnet(gw, 32)}); err != nil {
			return err
		}
	}
	if err := h.LinkSetUp(veth); err != nil {
		return err
	}
	if w.Mode == PTP {
		if err := h.NeighAdd(&netlink.Neigh{LinkIndex: veth.Index, State: netlink.NUD_PERMANENT, IP: w.Addr(i).AsSlice(), HardwareAddr: w.NodeMAC(i), Family: netlink.FAMILY_V4}); err != nil {
			return err
		}
		if err := h.RouteAdd(&netlink.Route{LinkIndex: veth.Index, Dst: dst(w.Addr(i), 32), Scope: netlink.SCOPE_LINK}); err != nil {
			return err
		}
	}
	nh, err := handleIn(ns)
	if err != nil {
		return err
	}
	defer nh.Close()
	if err := nh.LinkSetUp(&netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: 1}}); err != nil {
		return fmt.Errorf("lo up: %w", err)
	}
	eth0, err := nh.LinkByName("eth0")
	if err != nil {
		return err
	}
	ones := w.NodePrefix(i).Bits()
	if err := nh.AddrAdd(eth0, &netlink.Addr{IPNet: ipnet(w.Addr(i), ones)}); err != nil {
		return err
	}
	if err := nh.LinkSetUp(eth0); err != nil {
		return err
	}
	if w.Mode == PTP {
		idx := eth0.Attrs().Index
		if err := nh.NeighAdd(&netlink.Neigh{LinkIndex: idx, State: netlink.NUD_PERMANENT, IP: gw.AsSlice(), HardwareAddr: w.HostMAC(i), Family: netlink.FAMILY_V4}); err != nil {
			return err
		}
		if err := nh.RouteAdd(&netlink.Route{LinkIndex: idx, Dst: dst(gw, 32), Scope: netlink.SCOPE_LINK}); err != nil {
			return err
		}
		if err := nh.RouteAdd(&netlink.Route{LinkIndex: idx, Gw: gw.AsSlice(), Dst: dst(netip.IPv4Unspecified(), 0)}); err != nil {
			return err
		}
	}
	return nil
}

func (r tuned) Teardown(w Workload) error {
	for i := 0; i < w.N; i++ {
		if err := r.env.Netns.Delete(w.NS(i)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	if w.Mode == Bridge {
		// The ports go with their namespaces; the bridge is the host's.
		if err := r.env.Host.DelLink(w.BridgeName()); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// waitGone polls the host until no link of the workload is left: namespace
// cleanup in the kernel runs after `netns del` returns.
func waitGone(h *kernel.Handle, w Workload, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		links, err := h.Links()
		if err != nil {
			return err
		}
		left := 0
		for _, l := range links {
			if strings.HasPrefix(l.Name, w.Prefix) {
				left++
			}
		}
		if left == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d devices still present after %s", left, limit)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// verify checks that a setup really built the workload: every namespace
// pinned and every host-side device up.
func verify(env *Env, w Workload) error {
	names, err := env.Netns.List()
	if err != nil {
		return err
	}
	have := map[string]bool{}
	for _, n := range names {
		have[n] = true
	}
	links, err := env.Host.Links()
	if err != nil {
		return err
	}
	up := map[string]bool{}
	for _, l := range links {
		up[l.Name] = l.Flags&unix.IFF_UP != 0
	}
	for i := 0; i < w.N; i++ {
		if !have[w.NS(i)] {
			return fmt.Errorf("namespace %s missing", w.NS(i))
		}
		if !up[w.HostIf(i)] {
			return fmt.Errorf("host device %s missing or down", w.HostIf(i))
		}
	}
	return nil
}

// ipnet is a as an address with a prefix length (host bits kept, as
// addresses need).
func ipnet(a netip.Addr, ones int) *net.IPNet {
	return &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(ones, a.BitLen())}
}

// dst is the route destination a/ones (host bits cleared).
func dst(a netip.Addr, ones int) *net.IPNet {
	p := netip.PrefixFrom(a, ones).Masked()
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(ones, a.BitLen())}
}

func rusageMaxRSS(ps *exec.Cmd) int64 {
	if ps.ProcessState == nil {
		return 0
	}
	if ru, ok := ps.ProcessState.SysUsage().(*syscall.Rusage); ok {
		return ru.Maxrss * 1024
	}
	return 0
}

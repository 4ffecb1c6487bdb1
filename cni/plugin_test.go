package cni_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/nsnet/nsnet/internal/sandbox"
	"github.com/nsnet/nsnet/kernel"
	"github.com/nsnet/nsnet/probe"
)

func dualStack(mode string) plugin {
	return plugin{
		"mode": mode,
		"mtu":  1400,
		"ipam": map[string]any{"type": "nsnet", "subnets": []string{"10.77.0.0/24", "fd77::/64"}},
	}
}

func TestVersion(t *testing.T) {
	sandbox.Require(t)
	n := newNet(t, "ver", dualStack("ptp"))
	info, err := n.cni.GetVersionInfo(context.Background(), "nsnet-cni")
	if err != nil {
		t.Fatal(err)
	}
	if v := info.SupportedVersions(); !slices.Contains(v, "1.1.0") || !slices.Contains(v, "1.0.0") {
		t.Fatalf("supported versions %v lack 1.0.0 or 1.1.0", v)
	}
}

func TestAddCheckDel(t *testing.T) {
	for _, mode := range []string{"ptp", "bridge"} {
		t.Run(mode, func(t *testing.T) {
			before := takeSnapshot(t)
			d := nsDir(t)
			n := newNet(t, "acd-"+mode, dualStack(mode))
			c := newContainer(t, d, "c1")
			res := n.mustAdd(c)

			addrs := resultAddrs(t, res)
			bits := map[string][2]int{"ptp": {32, 128}, "bridge": {24, 64}}[mode]
			if len(addrs) != 2 || !netip.MustParsePrefix("10.77.0.0/24").Contains(addrs[0].Addr()) ||
				!netip.MustParsePrefix("fd77::/64").Contains(addrs[1].Addr()) ||
				addrs[0].Bits() != bits[0] || addrs[1].Bits() != bits[1] {
				t.Fatalf("result addresses %v, want one of 10.77.0.0/24 (/%d) and one of fd77::/64 (/%d)", addrs, bits[0], bits[1])
			}
			if addrs[0].Addr() == netip.MustParseAddr("10.77.0.1") {
				t.Fatal("container got the gateway address")
			}
			ifc := res.Interfaces[*res.IPs[0].Interface]
			if ifc.Name != "eth0" || ifc.Sandbox != c.path || ifc.Mac == "" || ifc.Mtu != 1400 {
				t.Fatalf("container interface in result: %+v", ifc)
			}
			if len(res.Routes) != 2 {
				t.Fatalf("result routes %v, want a default route per family", res.Routes)
			}

			// The container's side, as the kernel sees it.
			l, got, err := linkIn(t, c.ns, "eth0")
			if err != nil {
				t.Fatal(err)
			}
			slices.SortFunc(got, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
			if !l.Up() || l.MTU != 1400 || !slices.Equal(got, addrs) {
				t.Fatalf("eth0 in container: up=%v mtu=%d addrs=%v, want up, 1400, %v", l.Up(), l.MTU, got, addrs)
			}
			routes, err := handle(t, c.ns).Routes()
			if err != nil {
				t.Fatal(err)
			}
			var defaults []string
			for _, r := range routes {
				if r.Dst.Bits() == 0 || !r.Dst.IsValid() {
					defaults = append(defaults, r.Gateway.String())
				}
			}
			slices.Sort(defaults)
			if !slices.Equal(defaults, []string{"10.77.0.1", "fd77::1"}) {
				t.Fatalf("container default routes via %v, want via 10.77.0.1 and fd77::1", defaults)
			}

			if err := n.check(c); err != nil {
				t.Fatalf("CHECK after ADD: %v", err)
			}
			if recs, as := n.allocations(); len(recs) != 1 || len(as) != 2 {
				t.Fatalf("state after ADD: records %v, addresses %v", recs, as)
			}
			n.mustDel(c)
			if _, _, err := linkIn(t, c.ns, "eth0"); err == nil {
				t.Fatal("eth0 still in the container after DEL")
			}
			// DEL is idempotent.
			n.mustDel(c)
			n.assertNoAllocations()
			// The bridge outlives its last port until GC.
			if err := n.gc(); err != nil {
				t.Fatalf("GC: %v", err)
			}
			before.assertSame(t)
		})
	}
}

func TestDelWithoutNamespaceOrPrevResult(t *testing.T) {
	before := takeSnapshot(t)
	d := nsDir(t)
	n := newNet(t, "gone", dualStack("ptp"))

	// The namespace is destroyed before DEL, which then gets no CNI_NETNS.
	c1 := newContainer(t, d, "c1")
	n.mustAdd(c1)
	c1.destroy(d)
	if err := n.cni.DelNetworkList(context.Background(), n.list, rc(&container{id: "c1"}, "eth0")); err != nil {
		t.Fatalf("DEL without CNI_NETNS: %v", err)
	}

	// A CNI_NETNS that no longer exists.
	c2 := newContainer(t, d, "c2")
	n.mustAdd(c2)
	c2.destroy(d)
	if err := n.del(c2); err != nil {
		t.Fatalf("DEL with a vanished CNI_NETNS: %v", err)
	}

	// A runtime that lost its cache: no prevResult.
	c3 := newContainer(t, d, "c3")
	n.mustAdd(c3)
	if err := n.freshRuntime().del(c3); err != nil {
		t.Fatalf("DEL without prevResult: %v", err)
	}
	if _, _, err := linkIn(t, c3.ns, "eth0"); err == nil {
		t.Fatal("eth0 still in the container after DEL without prevResult")
	}
	n.assertNoAllocations()
	before.assertSame(t)
}

func TestCheckDetectsMissing(t *testing.T) {
	d := nsDir(t)
	for _, tc := range []struct {
		name    string
		mode    string
		breakIt func(t *testing.T, n *rt, c *container)
		want    string
	}{
		{"container address", "ptp", func(t *testing.T, n *rt, c *container) {
			h := handle(t, c.ns)
			_, addrs, _ := linkIn(t, c.ns, "eth0")
			if err := h.DelAddr("eth0", addrs[0]); err != nil {
				t.Fatal(err)
			}
		}, "missing on eth0 in CNI_NETNS"},
		{"mtu", "ptp", func(t *testing.T, n *rt, c *container) {
			if err := handle(t, c.ns).SetMTU("eth0", 1300); err != nil {
				t.Fatal(err)
			}
		}, "has mtu 1300, configuration says 1400"},
		{"container route", "bridge", func(t *testing.T, n *rt, c *container) {
			h := handle(t, c.ns)
			if err := h.DelRoute(kernel.Route{Gateway: netip.MustParseAddr("10.77.0.1")}); err != nil {
				t.Fatal(err)
			}
		}, "route 0.0.0.0/0 via 10.77.0.1"},
		{"host interface", "ptp", func(t *testing.T, n *rt, c *container) {
			h := handle(t, hostNS(t))
			links, _ := h.Links()
			for _, l := range links {
				if strings.HasPrefix(l.Alias, "nsnet-cni ") && strings.Contains(l.Alias, " "+c.id+" ") {
					if err := h.DelLink(l.Name); err != nil {
						t.Fatal(err)
					}
				}
			}
		}, "host interface"},
		{"host route", "ptp", func(t *testing.T, n *rt, c *container) {
			_, addrs, _ := linkIn(t, c.ns, "eth0")
			// A route without a gateway is deleted as link-scoped,
			// which the plugin's host route is.
			dst := netip.PrefixFrom(addrs[0].Addr(), 32)
			if err := handle(t, hostNS(t)).DelRoute(kernel.Route{Dst: dst}); err != nil {
				t.Fatal(err)
			}
		}, "host route"},
		{"interface down", "bridge", func(t *testing.T, n *rt, c *container) {
			if err := handle(t, c.ns).SetDown("eth0"); err != nil {
				t.Fatal(err)
			}
		}, "down"},
		{"address reservation", "bridge", func(t *testing.T, n *rt, c *container) {
			_, addrs, _ := linkIn(t, c.ns, "eth0")
			if err := os.Remove(filepath.Join(n.stateDir(), "addrs", addrs[0].Addr().String())); err != nil {
				t.Fatal(err)
			}
		}, "no longer reserved"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := takeSnapshot(t)
			n := newNet(t, "chk-"+strings.ReplaceAll(tc.name, " ", "-"), dualStack(tc.mode))
			c := newContainer(t, d, "chk-"+strings.ReplaceAll(tc.name, " ", "-"))
			n.mustAdd(c)
			if err := n.check(c); err != nil {
				t.Fatalf("CHECK before breaking: %v", err)
			}
			tc.breakIt(t, n, c)
			err := n.check(c)
			wantCNIError(t, err, types.ErrInternal, "check failed", tc.want)
			n.mustDel(c)
			n.assertNoAllocations()
			if err := n.gc(); err != nil {
				t.Fatal(err)
			}
			before.assertSame(t)
		})
	}
}

func TestGC(t *testing.T) {
	before := takeSnapshot(t)
	d := nsDir(t)
	n := newNet(t, "gc", dualStack("bridge"))
	var cs []*container
	for i := range 4 {
		c := newContainer(t, d, fmt.Sprintf("gc%d", i))
		n.mustAdd(c)
		cs = append(cs, c)
	}
	// gc3's record is lost, as if the disk had been wiped: GC must still
	// find its interface (by alias) and its addresses.
	key := cs[3].id + ":eth0"
	if err := os.Remove(filepath.Join(n.stateDir(), "attachments", key)); err != nil {
		t.Fatal(err)
	}
	// A runtime with an empty cache, so that only the plugin's own GC
	// can remove anything (libcni DELs stale attachments it has cached).
	if err := n.freshRuntime().gc(cs[0], cs[1]); err != nil {
		t.Fatalf("GC: %v", err)
	}
	for i, c := range cs {
		_, _, err := linkIn(t, c.ns, "eth0")
		if keep := i < 2; keep != (err == nil) {
			t.Errorf("after GC %s has eth0: %v, want %v", c.id, err == nil, keep)
		}
	}
	recs, addrs := n.allocations()
	slices.Sort(recs)
	if !slices.Equal(recs, []string{"gc0:eth0", "gc1:eth0"}) || len(addrs) != 4 {
		t.Fatalf("after GC: records %v, addresses %v; want gc0 and gc1 with two addresses each", recs, addrs)
	}
	for _, c := range cs[:2] {
		if err := n.check(c); err != nil {
			t.Fatalf("CHECK of kept %s after GC: %v", c.id, err)
		}
	}
	n.mustDel(cs[0])
	// GC with nothing valid removes the rest, and the bridge with it.
	if err := n.freshRuntime().gc(); err != nil {
		t.Fatalf("GC: %v", err)
	}
	n.assertNoAllocations()
	before.assertSame(t)
}

// TestGCWithoutKeepList: a GC whose configuration lacks
// cni.dev/valid-attachments (a runtime other than libcni, or one following
// the spec text before v1.2.3, which called it cni.dev/attachments) is
// refused with code 7 and removes nothing; one with the key as null keeps
// nothing, as libcni sends a nil list.
func TestGCWithoutKeepList(t *testing.T) {
	before := takeSnapshot(t)
	d := nsDir(t)
	n := newNet(t, "gckeep", dualStack("ptp"))
	c := newContainer(t, d, "keep")
	n.mustAdd(c)
	gc := func(extra map[string]any) error {
		conf := n.conf()
		conf["cniVersion"], conf["name"] = "1.1.0", n.list.Name
		for k, v := range extra {
			conf[k] = v
		}
		b, err := json.Marshal(conf)
		if err != nil {
			t.Fatal(err)
		}
		exec := &invoke.DefaultExec{RawExec: &invoke.RawExec{Stderr: os.Stderr}, PluginDecoder: version.PluginDecoder{}}
		return invoke.ExecPluginWithoutResult(context.Background(), filepath.Join(pluginDir, "nsnet-cni"), b, &invoke.Args{Command: "GC", Path: pluginDir}, exec)
	}
	for _, extra := range []map[string]any{nil, {"cni.dev/attachments": []map[string]string{{"containerID": "keep", "ifname": "eth0"}}}} {
		err := gc(extra)
		wantCNIError(t, err, types.ErrInvalidNetworkConfig, "cni.dev/valid-attachments", "required for GC")
		if err := n.check(c); err != nil {
			t.Fatalf("after a refused GC (%v): %v", extra, err)
		}
	}
	if err := gc(map[string]any{"cni.dev/valid-attachments": nil}); err != nil {
		t.Fatalf("GC with a null keep-list: %v", err)
	}
	n.assertNoAllocations()
	before.assertSame(t)
}

func TestParallelAdds(t *testing.T) {
	before := takeSnapshot(t)
	d := nsDir(t)
	n := newNet(t, "par", dualStack("bridge"))
	const N = 64
	cs := make([]*container, N)
	for i := range cs {
		cs[i] = newContainer(t, d, fmt.Sprintf("p%02d", i))
	}
	results := make([][]netip.Prefix, N)
	errs := make([]error, N)
	var wg sync.WaitGroup
	for i, c := range cs {
		wg.Go(func() {
			res, err := n.add(c)
			errs[i] = err
			if err == nil {
				results[i] = resultAddrs(t, res)
			}
		})
	}
	wg.Wait()
	seen := map[netip.Addr]string{}
	for i, err := range errs {
		if err != nil {
			t.Fatalf("ADD %s: %v", cs[i].id, err)
		}
		for _, p := range results[i] {
			if other, dup := seen[p.Addr()]; dup {
				t.Fatalf("%s and %s both got %s", other, cs[i].id, p.Addr())
			}
			seen[p.Addr()] = cs[i].id
		}
	}
	if len(seen) != 2*N {
		t.Fatalf("%d distinct addresses, want %d", len(seen), 2*N)
	}
	for i, c := range cs {
		wg.Go(func() { errs[i] = n.del(c) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("DEL %s: %v", cs[i].id, err)
		}
	}
	if err := n.gc(); err != nil {
		t.Fatal(err)
	}
	n.assertNoAllocations()
	before.assertSame(t)
}

func TestConnectivityBridge(t *testing.T) {
	before := takeSnapshot(t)
	d := nsDir(t)
	n := newNet(t, "ping-br", dualStack("bridge"))
	a, b := newContainer(t, d, "a"), newContainer(t, d, "b")
	ra, rb := n.mustAdd(a), n.mustAdd(b)
	for fam := range 2 {
		from, to := a, resultAddrs(t, rb)[fam].Addr()
		pingOK(t, from, to)
		pingOK(t, b, resultAddrs(t, ra)[fam].Addr())
	}
	n.mustDel(a)
	n.mustDel(b)
	if err := n.gc(); err != nil {
		t.Fatal(err)
	}
	before.assertSame(t)
}

func TestConnectivityPTP(t *testing.T) {
	before := takeSnapshot(t)
	d := nsDir(t)
	n := newNet(t, "ping-ptp", dualStack("ptp"))
	a, b := newContainer(t, d, "a"), newContainer(t, d, "b")
	ra, rb := n.mustAdd(a), n.mustAdd(b)
	for _, gw := range []string{"10.77.0.1", "fd77::1"} {
		pingOK(t, a, netip.MustParseAddr(gw)) // the host side
	}
	for fam := range 2 {
		// The host reaches the container, and containers reach each
		// other through the host.
		pingOK(t, nil, resultAddrs(t, ra)[fam].Addr())
		pingOK(t, a, resultAddrs(t, rb)[fam].Addr())
	}
	n.mustDel(a)
	n.mustDel(b)
	before.assertSame(t)
}

func pingOK(t *testing.T, from *container, to netip.Addr) {
	t.Helper()
	if err := ping(from, to, 5*time.Second); err != nil {
		name := "host"
		if from != nil {
			name = from.id
		}
		t.Fatalf("ping %s -> %s: %v", name, to, err)
	}
}

func ping(from *container, to netip.Addr, timeout time.Duration) error {
	var p *probe.Pinger
	var err error
	if from == nil {
		p, err = probe.NewPinger(nil, to)
	} else {
		p, err = probe.NewPinger(from.ns, to)
	}
	if err != nil {
		return err
	}
	defer p.Close()
	// Echoes may be lost while neighbour discovery runs (one probe a
	// second for IPv6); retry within the timeout, which leaves room for a
	// lost probe on a loaded machine.
	deadline := time.Now().Add(timeout)
	for seq := 1; ; seq++ {
		_, err = p.Ping(seq, 500*time.Millisecond)
		if err == nil || time.Now().After(deadline) {
			return err
		}
	}
}

func TestBadConfigs(t *testing.T) {
	before := takeSnapshot(t)
	d := nsDir(t)
	c := newContainer(t, d, "bad")
	ipam := map[string]any{"type": "nsnet", "subnets": []string{"10.78.0.0/24"}}
	for _, tc := range []struct {
		name string
		p    plugin
		code uint
		msg  []string
	}{
		{"unknown key", plugin{"ipmasq": true, "ipam": ipam}, types.ErrUnsupportedField, []string{`"ipmasq"`, "true"}},
		{"unknown mode", plugin{"mode": "macvlan", "ipam": ipam}, types.ErrInvalidNetworkConfig, []string{"mode", "macvlan"}},
		{"mtu too small", plugin{"mtu": 10, "ipam": ipam}, types.ErrInvalidNetworkConfig, []string{"mtu", "out of range"}},
		{"mtu below IPv6 minimum", plugin{"mtu": 1000, "ipam": map[string]any{"type": "nsnet", "subnets": []string{"fd78::/64"}}}, types.ErrInvalidNetworkConfig, []string{"mtu", "1280"}},
		{"bridge name too long", plugin{"bridge": "averyveryverylongbridge", "ipam": ipam}, types.ErrInvalidNetworkConfig, []string{"bridge", "at most 15"}},
		{"bridge in ptp mode", plugin{"mode": "ptp", "bridge": "br0", "ipam": ipam}, types.ErrInvalidNetworkConfig, []string{"bridge", "only used"}},
		{"relative dataDir", plugin{"dataDir": "state", "ipam": ipam}, types.ErrInvalidNetworkConfig, []string{"dataDir", "absolute"}},
		{"hairpin in ptp mode", plugin{"mode": "ptp", "hairpinMode": true, "ipam": ipam}, types.ErrInvalidNetworkConfig, []string{"hairpinMode", "only used"}},
		{"no ipam", plugin{}, types.ErrInvalidNetworkConfig, []string{"ipam", "required"}},
		{"no ipam type", plugin{"ipam": map[string]any{"subnets": []string{"10.0.0.0/24"}}}, types.ErrInvalidNetworkConfig, []string{"ipam.type", "required"}},
		{"no subnets", plugin{"ipam": map[string]any{"type": "nsnet"}}, types.ErrInvalidNetworkConfig, []string{"ipam.subnets", "required"}},
		{"host bits", plugin{"ipam": map[string]any{"type": "nsnet", "subnets": []string{"10.78.0.5/24"}}}, types.ErrInvalidNetworkConfig, []string{"ipam.subnets[0]", "10.78.0.0/24"}},
		{"subnet too small", plugin{"ipam": map[string]any{"type": "nsnet", "subnets": []string{"10.78.0.0/31"}}}, types.ErrInvalidNetworkConfig, []string{"ipam.subnets[0]", "too small"}},
		{"two IPv4 subnets", plugin{"ipam": map[string]any{"type": "nsnet", "subnets": []string{"10.78.0.0/24", "10.79.0.0/24"}}}, types.ErrInvalidNetworkConfig, []string{"ipam.subnets[1]", "one per family"}},
		{"not a prefix", plugin{"ipam": map[string]any{"type": "nsnet", "subnets": []string{"banana"}}}, types.ErrInvalidNetworkConfig, []string{"ipam.subnets[0]", "banana"}},
		{"route of missing family", plugin{"ipam": map[string]any{"type": "nsnet", "subnets": []string{"10.78.0.0/24"}, "routes": []any{map[string]any{"dst": "::/0"}}}}, types.ErrInvalidNetworkConfig, []string{"ipam.routes[0].dst", "no IPv6 subnet"}},
		{"unknown ipam key", plugin{"ipam": map[string]any{"type": "nsnet", "subnets": []string{"10.78.0.0/24"}, "rangeStart": "10.78.0.9"}}, types.ErrUnsupportedField, []string{"ipam.rangeStart", "10.78.0.9"}},
		{"ipam plugin missing", plugin{"ipam": map[string]any{"type": "no-such-ipam"}}, types.ErrInternal, []string{"no-such-ipam", "failed to find"}},
		{"wrong type", plugin{"mtu": "big", "ipam": ipam}, types.ErrDecodingFailure, []string{"mtu"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := newNet(t, "bad", tc.p)
			_, err := n.add(c)
			wantCNIError(t, err, tc.code, tc.msg...)
			if st, err := os.Stat(n.stateDir()); err == nil && st.IsDir() {
				n.assertNoAllocations()
			}
		})
	}
	before.assertSame(t)
}

// TestBadEnvironment calls the plugin the way libcni would, but with
// environments libcni itself refuses to produce.
func TestBadEnvironment(t *testing.T) {
	before := takeSnapshot(t)
	d := nsDir(t)
	c := newContainer(t, d, "env")
	n := newNet(t, "env", dualStack("bridge"))
	conf := n.list.Plugins[0].Bytes
	// libcni injects name and cniVersion; do the same.
	conf = []byte(strings.Replace(string(conf), "{", `{"name":"env","cniVersion":"1.1.0",`, 1))
	self := filepath.Join(d.Path, "self")
	if err := d.Pin(hostNS(t), "self"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Delete("self") })
	plugin := filepath.Join(pluginDir, "nsnet-cni")
	run := func(stdin []byte, args invoke.Args) error {
		args.Path = pluginDir
		_, err := invoke.ExecPluginWithResult(context.Background(), plugin, stdin, &args, nil)
		return err
	}
	for _, tc := range []struct {
		name  string
		stdin []byte
		args  invoke.Args
		code  uint
		msg   []string
	}{
		{"malformed JSON", []byte(`{"name": "x",`), invoke.Args{Command: "ADD", ContainerID: "x", NetNS: c.path, IfName: "eth0"}, types.ErrDecodingFailure, nil},
		{"own namespace", conf, invoke.Args{Command: "ADD", ContainerID: "x", NetNS: self, IfName: "eth0"}, types.ErrInvalidNetNS, []string{"CNI_NETNS", "own network namespace"}},
		{"own namespace on DEL", conf, invoke.Args{Command: "DEL", ContainerID: "x", NetNS: self, IfName: "eth0"}, types.ErrInvalidNetNS, []string{"own network namespace"}},
		{"missing namespace", conf, invoke.Args{Command: "ADD", ContainerID: "x", NetNS: filepath.Join(d.Path, "nope"), IfName: "eth0"}, types.ErrUnknownContainer, []string{"CNI_NETNS"}},
		{"not a namespace", conf, invoke.Args{Command: "ADD", ContainerID: "x", NetNS: "/proc/version", IfName: "eth0"}, types.ErrInvalidNetNS, []string{"not a network namespace"}},
		{"bad interface name", conf, invoke.Args{Command: "ADD", ContainerID: "x", NetNS: c.path, IfName: "a/b"}, types.ErrInvalidEnvironmentVariables, nil},
		{"no container id", conf, invoke.Args{Command: "ADD", NetNS: c.path, IfName: "eth0"}, types.ErrInvalidEnvironmentVariables, []string{"CNI_CONTAINERID"}},
		{"unsupported version", []byte(strings.Replace(string(conf), `"cniVersion":"1.1.0"`, `"cniVersion":"9.0.0"`, 1)), invoke.Args{Command: "ADD", ContainerID: "x", NetNS: c.path, IfName: "eth0"}, types.ErrIncompatibleCNIVersion, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantCNIError(t, run(tc.stdin, tc.args), tc.code, tc.msg...)
		})
	}
	n.assertNoAllocations()
	before.assertSame(t)
}

func TestAddConflicts(t *testing.T) {
	before := takeSnapshot(t)
	d := nsDir(t)
	n := newNet(t, "dup", dualStack("ptp"))
	c := newContainer(t, d, "dup")
	n.mustAdd(c)
	// ADD twice for one attachment: refused, and the first one is intact.
	_, err := n.freshRuntime().add(c)
	wantCNIError(t, err, types.ErrInternal, "already exists")
	if err := n.check(c); err != nil {
		t.Fatalf("CHECK of the first attachment after a refused second ADD: %v", err)
	}
	// The interface name is taken in the container by something else.
	other := newContainer(t, d, "dup2")
	if err := handle(t, other.ns).AddVeth(kernel.Veth{Name: "eth0", Peer: "eth1"}); err != nil {
		t.Fatal(err)
	}
	_, err = n.add(other)
	wantCNIError(t, err, types.ErrInternal, "eth0", "already exists")
	n.mustDel(c)
	n.assertNoAllocations()
	if err := handle(t, other.ns).DelLink("eth0"); err != nil {
		t.Fatal(err)
	}
	before.assertSame(t)
}

func TestStatusAndExhaustion(t *testing.T) {
	before := takeSnapshot(t)
	d := nsDir(t)
	// A /30 has one address for containers: .0 network, .1 gateway,
	// .3 broadcast.
	n := newNet(t, "tiny", plugin{"mode": "ptp", "ipam": map[string]any{"type": "nsnet", "subnets": []string{"10.79.0.0/30"}}})
	if err := n.status(); err != nil {
		t.Fatalf("STATUS of an empty network: %v", err)
	}
	a, b := newContainer(t, d, "a"), newContainer(t, d, "b")
	if got := resultAddrs(t, n.mustAdd(a)); got[0] != netip.MustParsePrefix("10.79.0.2/32") {
		t.Fatalf("got %v, want 10.79.0.2/32", got)
	}
	wantCNIError(t, n.status(), types.ErrPluginNotAvailable, "10.79.0.0/30")
	_, err := n.add(b)
	wantCNIError(t, err, types.ErrTryAgainLater, "no free address", "10.79.0.0/30")
	n.mustDel(a)
	if err := n.status(); err != nil {
		t.Fatalf("STATUS after DEL: %v", err)
	}
	// The address comes back.
	n.mustAdd(b)
	n.mustDel(b)
	n.assertNoAllocations()
	before.assertSame(t)
}

func TestDelegatedIPAM(t *testing.T) {
	before := takeSnapshot(t)
	d := nsDir(t)
	log := filepath.Join(t.TempDir(), "ipam.log")
	ipamConf := func(extra map[string]any) map[string]any {
		m := map[string]any{"type": "fakeipam", "logFile": log, "address": "10.80.0.7/24", "gateway": "10.80.0.1"}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	calls := func() []string {
		b, _ := os.ReadFile(log)
		os.Remove(log)
		return strings.Fields(strings.ReplaceAll(string(b), "\n", " | "))
	}
	n := newNet(t, "deleg", plugin{"mode": "ptp", "ipam": ipamConf(nil)})
	c := newContainer(t, d, "dc")
	res := n.mustAdd(c)
	if got := resultAddrs(t, res); len(got) != 1 || got[0] != netip.MustParsePrefix("10.80.0.7/32") {
		t.Fatalf("addresses %v, want the delegated 10.80.0.7 as /32", got)
	}
	if len(res.DNS.Nameservers) != 1 || res.DNS.Nameservers[0] != "192.0.2.53" {
		t.Fatalf("DNS %+v, want the IPAM plugin's", res.DNS)
	}
	pingOK(t, c, netip.MustParseAddr("10.80.0.1"))
	if err := n.check(c); err != nil {
		t.Fatal(err)
	}
	if err := n.status(); err != nil {
		t.Fatal(err)
	}
	n.mustDel(c)
	if err := n.gc(); err != nil {
		t.Fatal(err)
	}
	want := "ADD dc eth0 | CHECK dc eth0 | STATUS | DEL dc eth0 | GC valid= |"
	if got := strings.Join(calls(), " "); got != want {
		t.Fatalf("delegated calls:\n got  %s\n want %s", got, want)
	}

	// A failing IPAM ADD fails nsnet's ADD with the plugin's code, and is
	// followed by the plugin's DEL, as the spec asks.
	n = newNet(t, "deleg", plugin{"mode": "ptp", "ipam": ipamConf(map[string]any{"fail": "ADD"})})
	_, err := n.add(c)
	wantCNIError(t, err, types.ErrTryAgainLater, "fakeipam", "told to fail")
	if got := strings.Join(calls(), " "); got != "ADD dc eth0 | DEL dc eth0 |" {
		t.Fatalf("calls after a failed delegated ADD: %s", got)
	}

	// ptp needs a gateway for the host end; an IPAM result without one
	// is refused and released.
	n = newNet(t, "deleg", plugin{"mode": "ptp", "ipam": ipamConf(map[string]any{"gateway": ""})})
	_, err = n.add(c)
	wantCNIError(t, err, types.ErrInvalidNetworkConfig, "without a gateway")
	if got := strings.Join(calls(), " "); got != "ADD dc eth0 | DEL dc eth0 |" {
		t.Fatalf("calls after a refused result: %s", got)
	}
	n.assertNoAllocations()
	before.assertSame(t)
}

// TestOlderSpecVersions: runtimes that speak 0.4.0 or 1.0.0 get results in
// their version; CHECK exists since 0.4.0, GC and STATUS only since 1.1.0.
func TestOlderSpecVersions(t *testing.T) {
	before := takeSnapshot(t)
	d := nsDir(t)
	for _, v := range []string{"0.4.0", "1.0.0"} {
		t.Run(v, func(t *testing.T) {
			n := newNetVersion(t, v, "v"+strings.ReplaceAll(v, ".", ""), dualStack("ptp"))
			c := newContainer(t, d, "old"+strings.ReplaceAll(v, ".", ""))
			res, err := n.cni.AddNetworkList(context.Background(), n.list, rc(c, "eth0"))
			if err != nil {
				t.Fatal(err)
			}
			if res.Version() != v {
				t.Fatalf("result version %s, want %s", res.Version(), v)
			}
			if err := n.check(c); err != nil {
				t.Fatalf("CHECK: %v", err)
			}
			n.mustDel(c)
			n.assertNoAllocations()
		})
	}
	before.assertSame(t)
}

// TestHairpin: hairpinMode puts the container's bridge port in hairpin mode
// (and only then), and CHECK notices when it is turned off.
func TestHairpin(t *testing.T) {
	before := takeSnapshot(t)
	d := nsDir(t)
	host := handle(t, hostNS(t))
	port := func(res *types100.Result) int {
		t.Helper()
		l, err := host.LinkByName(res.Interfaces[*res.IPs[0].Interface-1].Name)
		if err != nil {
			t.Fatal(err)
		}
		return l.Index
	}
	for _, hairpin := range []bool{false, true} {
		p := dualStack("bridge")
		p["hairpinMode"] = hairpin
		n := newNet(t, fmt.Sprintf("hairpin-%v", hairpin), p)
		c := newContainer(t, d, fmt.Sprintf("hp-%v", hairpin))
		idx := port(n.mustAdd(c))
		if on, err := host.HairpinIndex(idx); err != nil || on != hairpin {
			t.Fatalf("hairpinMode %v: port hairpin %v, %v", hairpin, on, err)
		}
		if err := n.check(c); err != nil {
			t.Fatalf("CHECK: %v", err)
		}
		if hairpin {
			if err := host.SetHairpinIndex(idx, false); err != nil {
				t.Fatal(err)
			}
			wantCNIError(t, n.check(c), types.ErrInternal, "check failed", "not in hairpin mode")
		}
		n.mustDel(c)
		if err := n.gc(); err != nil {
			t.Fatal(err)
		}
		n.assertNoAllocations()
	}
	before.assertSame(t)
}

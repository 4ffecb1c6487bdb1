package cni_test

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"
	"github.com/google/nftables"
	"golang.org/x/sys/unix"

	"github.com/nsnet/nsnet/cni"
	"github.com/nsnet/nsnet/internal/sandbox"
	"github.com/nsnet/nsnet/kernel"
	"github.com/nsnet/nsnet/netns"
)

// pluginDir holds the plugins libcni runs: nsnet-cni and the fakeipam test
// double. It is set once, inside the sandbox, before any test runs, and only
// read afterwards.
var pluginDir string

// pluginIsStandIn is set with pluginDir when the test binary stands in for
// nsnet-cni because the real binary could not be built.
var pluginIsStandIn bool

func TestMain(m *testing.M) {
	// This binary is also every plugin the tests exec: libcni runs it
	// under the plugin's name (see standIn).
	switch filepath.Base(os.Args[0]) {
	case "nsnet-cni":
		cni.Main()
		os.Exit(0)
	case "fakeipam":
		fakeIPAM()
		os.Exit(0)
	case "portmap":
		oldPortmap()
		os.Exit(0)
	}
	flag.Parse()
	if !sandbox.Inside() && benchmarking() {
		// The sandbox has no network: what the benchmark needs from
		// the module proxy is fetched out here.
		if err := fetchReferencePlugins(); err != nil {
			fmt.Fprintf(os.Stderr, "fetching the reference plugins failed (their benchmarks will be skipped): %v\n", err)
		}
	}
	os.Exit(sandbox.Main(&buildFirst{m}))
}

// buildFirst builds the plugin inside the sandbox child before the tests run
// (the outer process only waits).
type buildFirst struct{ m *testing.M }

func (b *buildFirst) Run() int {
	dir, err := os.MkdirTemp("", "nsnet-cni-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	for _, name := range []string{"fakeipam", "portmap"} {
		if err := standIn(dir, name); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	switch bin := os.Getenv("NSNET_CNI_TEST_BIN"); {
	case bin != "":
		// Built beforehand, as CI's rootless pass does for nsnet.
		err = os.Symlink(bin, filepath.Join(dir, "nsnet-cni"))
	default:
		err = goBuild(dir, "nsnet-cni", "github.com/nsnet/nsnet/cmd/nsnet-cni")
		if err != nil {
			// An ordinary user cannot use root's Go caches (CI's
			// rootless pass). The test binary runs the very same
			// cni.Funcs through skel, so the tests still hold; only
			// benchmarks need the real binary.
			fmt.Fprintf(os.Stderr, "cni tests: building nsnet-cni failed, the test binary stands in for it: %v\n", err)
			pluginIsStandIn = true
			err = standIn(dir, "nsnet-cni")
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	pluginDir = dir
	return b.m.Run()
}

// standIn makes dir/name run this test binary, which TestMain turns into
// that plugin.
func standIn(dir, name string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	return os.Symlink(self, filepath.Join(dir, name))
}

func benchmarking() bool {
	f := flag.Lookup("test.bench")
	return f != nil && f.Value.String() != ""
}

func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(runtime.GOROOT(), "bin", "go")
}

// goBuild builds pkg into dir/name without touching the network: inside the
// sandbox there is none, and every module needed is in the module cache. It
// builds a static binary, as README says to install the plugin (and as the
// CNI project releases its own): no dynamic loader at every exec.
func goBuild(dir, name, pkg string) error {
	cmd := exec.Command(goTool(), "build", "-o", filepath.Join(dir, name), pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOPROXY=off", "GOFLAGS=-mod=readonly -buildvcs=false")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
	}
	return nil
}

// --- runtime side ---

// rt is a container runtime's view of one network: libcni with its own
// cache directory, as containerd or CRI-O use it.
type rt struct {
	t    testing.TB
	cni  *libcni.CNIConfig
	list *libcni.NetworkConfigList
	// background: the network deletes in the background (benchmarks
	// wait for it).
	background bool
}

// plugin is one plugin configuration, the part of a conflist nsnet reads.
type plugin map[string]any

// newNet makes a network whose state lives in a fresh temporary directory.
func newNet(t testing.TB, name string, p plugin) *rt {
	t.Helper()
	return newNetVersion(t, "1.1.0", name, p)
}

func newNetVersion(t testing.TB, cniVersion, name string, p plugin) *rt {
	t.Helper()
	if _, ok := p["type"]; !ok {
		p["type"] = "nsnet-cni"
	}
	if _, ok := p["dataDir"]; !ok {
		p["dataDir"] = filepath.Join(t.TempDir(), "state")
	}
	b, err := json.Marshal(map[string]any{"cniVersion": cniVersion, "name": name, "plugins": []plugin{p}})
	if err != nil {
		t.Fatal(err)
	}
	list, err := libcni.ConfListFromBytes(b)
	if err != nil {
		t.Fatal(err)
	}
	return &rt{t: t, cni: newCNI([]string{pluginDir}, t.TempDir()), list: list}
}

// newCNI is libcni as a runtime holds it. The exec is given rather than left
// for libcni to create on first use, which it does without a lock: a runtime
// calls one CNIConfig from many goroutines.
func newCNI(path []string, cacheDir string) *libcni.CNIConfig {
	exec := &invoke.DefaultExec{RawExec: &invoke.RawExec{Stderr: os.Stderr}, PluginDecoder: version.PluginDecoder{}}
	return libcni.NewCNIConfigWithCacheDir(path, cacheDir, exec)
}

// freshRuntime is the same network seen by a runtime with an empty cache:
// no previous results, no cached attachments.
func (r *rt) freshRuntime() *rt {
	return &rt{t: r.t, cni: newCNI([]string{pluginDir}, r.t.TempDir()), list: r.list}
}

func (r *rt) conf() plugin {
	var p plugin
	if err := json.Unmarshal(r.list.Plugins[0].Bytes, &p); err != nil {
		r.t.Fatal(err)
	}
	return p
}

func (r *rt) stateDir() string {
	return filepath.Join(r.conf()["dataDir"].(string), r.list.Name)
}

func rc(c *container, ifName string) *libcni.RuntimeConf {
	return &libcni.RuntimeConf{ContainerID: c.id, NetNS: c.path, IfName: ifName}
}

func (r *rt) add(c *container) (*types100.Result, error) {
	return r.addIf(c, "eth0")
}

func (r *rt) addIf(c *container, ifName string) (*types100.Result, error) {
	res, err := r.cni.AddNetworkList(context.Background(), r.list, rc(c, ifName))
	if err != nil {
		return nil, err
	}
	return types100.GetResult(res)
}

func (r *rt) mustAdd(c *container) *types100.Result {
	r.t.Helper()
	res, err := r.add(c)
	if err != nil {
		r.t.Fatalf("ADD %s: %v", c.id, err)
	}
	return res
}

func (r *rt) check(c *container) error {
	return r.cni.CheckNetworkList(context.Background(), r.list, rc(c, "eth0"))
}

func (r *rt) del(c *container) error {
	return r.cni.DelNetworkList(context.Background(), r.list, rc(c, "eth0"))
}

func (r *rt) mustDel(c *container) {
	r.t.Helper()
	if err := r.del(c); err != nil {
		r.t.Fatalf("DEL %s: %v", c.id, err)
	}
}

func (r *rt) gc(valid ...*container) error {
	args := &libcni.GCArgs{ValidAttachments: []types.GCAttachment{}}
	for _, c := range valid {
		args.ValidAttachments = append(args.ValidAttachments, types.GCAttachment{ContainerID: c.id, IfName: "eth0"})
	}
	return r.cni.GCNetworkList(context.Background(), r.list, args)
}

func (r *rt) status() error {
	return r.cni.GetStatusNetworkList(context.Background(), r.list)
}

// allocations lists the attachment records and taken addresses on disk.
func (r *rt) allocations() (records, addrs []string) {
	r.t.Helper()
	for _, sub := range []string{"attachments", "addrs"} {
		ents, err := os.ReadDir(filepath.Join(r.stateDir(), sub))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			r.t.Fatal(err)
		}
		for _, e := range ents {
			if sub == "attachments" {
				records = append(records, e.Name())
			} else {
				addrs = append(addrs, e.Name())
			}
		}
	}
	return records, addrs
}

func (r *rt) assertNoAllocations() {
	r.t.Helper()
	if recs, addrs := r.allocations(); len(recs)+len(addrs) != 0 {
		r.t.Errorf("allocations left: records %v, addresses %v", recs, addrs)
	}
	if macs := r.macClaims(); len(macs) != 0 {
		r.t.Errorf("MAC claims left: %v", macs)
	}
}

// macClaims lists the claimed MACs on disk.
func (r *rt) macClaims() []string {
	r.t.Helper()
	ents, err := os.ReadDir(filepath.Join(r.stateDir(), "macs"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		r.t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// cniCode extracts the CNI error code from what libcni returned.
func cniCode(t testing.TB, err error) (uint, string) {
	t.Helper()
	var te *types.Error
	if !errors.As(err, &te) {
		t.Fatalf("error %v (%T) carries no CNI error", err, err)
	}
	return te.Code, te.Msg
}

func wantCNIError(t testing.TB, err error, code uint, msgParts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want CNI error %d", code)
	}
	got, msg := cniCode(t, err)
	if got != code {
		t.Errorf("error code %d (%q), want %d", got, msg, code)
	}
	for _, p := range msgParts {
		if !strings.Contains(msg, p) {
			t.Errorf("error message %q does not mention %q", msg, p)
		}
	}
}

// --- containers ---

type container struct {
	id   string
	path string
	ns   *netns.NS
}

// nsDir gives a test its own directory of pinned namespaces.
func nsDir(t testing.TB) netns.Dir {
	t.Helper()
	sandbox.Require(t)
	d := netns.Dir{Path: filepath.Join(t.TempDir(), "netns")}
	t.Cleanup(func() { unix.Unmount(d.Path, unix.MNT_DETACH) })
	return d
}

func newContainer(t testing.TB, d netns.Dir, id string) *container {
	t.Helper()
	ns, err := d.Add(id)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := d.PathOf(id)
	c := &container{id: id, path: p, ns: ns}
	t.Cleanup(func() {
		ns.Close()
		d.Delete(id)
	})
	return c
}

// destroy drops the namespace for good, as a runtime does when a container
// is gone.
func (c *container) destroy(d netns.Dir) {
	c.ns.Close()
	d.Delete(c.id)
}

// --- kernel state ---

func hostNS(t testing.TB) *netns.NS {
	t.Helper()
	ns, err := netns.Current()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Close() })
	return ns
}

func handle(t testing.TB, ns *netns.NS) *kernel.Handle {
	t.Helper()
	h, err := kernel.Open(ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

// snapshot is the host namespace's interfaces, addresses, routes and
// nftables tables, for comparing before and after.
type snapshot struct {
	links, addrs, routes, tables []string
}

func takeSnapshot(t testing.TB) snapshot {
	t.Helper()
	h := handle(t, hostNS(t))
	var s snapshot
	links, err := h.Links()
	if err != nil {
		t.Fatal(err)
	}
	names := map[int]string{}
	for _, l := range links {
		names[l.Index] = l.Name
		s.links = append(s.links, fmt.Sprintf("%s (%s %q)", l.Name, l.Type, l.Alias))
	}
	addrs, err := h.Addrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if a.Prefix.Addr().IsLinkLocalUnicast() {
			continue // comes and goes with links, already compared
		}
		s.addrs = append(s.addrs, fmt.Sprintf("%s dev %s", a.Prefix, names[a.LinkIndex]))
	}
	routes, err := h.Routes()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range routes {
		if r.Dst.Addr().IsLinkLocalUnicast() || r.Dst.Addr().IsMulticast() {
			continue
		}
		s.routes = append(s.routes, fmt.Sprintf("%s via %s dev %s", r.Dst, r.Gateway, names[r.LinkIndex]))
	}
	c, err := nftables.New()
	if err != nil {
		t.Fatal(err)
	}
	tables, err := c.ListTables()
	if err != nil {
		t.Fatal(err)
	}
	for _, tb := range tables {
		s.tables = append(s.tables, tb.Name)
	}
	for _, l := range [][]string{s.links, s.addrs, s.routes, s.tables} {
		slices.Sort(l)
	}
	return s
}

// assertSame fails when anything differs from the earlier snapshot.
func (s snapshot) assertSame(t testing.TB) {
	t.Helper()
	now := takeSnapshot(t)
	for _, c := range []struct {
		what       string
		then, nows []string
	}{
		{"interfaces", s.links, now.links},
		{"addresses", s.addrs, now.addrs},
		{"routes", s.routes, now.routes},
		{"nftables tables", s.tables, now.tables},
	} {
		if !slices.Equal(c.then, c.nows) {
			t.Errorf("%s left over:\n before %v\n after  %v", c.what, c.then, c.nows)
		}
	}
}

// linkIn reports the interface ifName in ns.
func linkIn(t testing.TB, ns *netns.NS, ifName string) (kernel.Link, []netip.Prefix, error) {
	t.Helper()
	h := handle(t, ns)
	l, err := h.LinkByName(ifName)
	if err != nil {
		return l, nil, err
	}
	addrs, err := h.Addrs()
	if err != nil {
		t.Fatal(err)
	}
	var ps []netip.Prefix
	for _, a := range addrs {
		if a.LinkIndex == l.Index && !a.Prefix.Addr().IsLinkLocalUnicast() {
			ps = append(ps, a.Prefix)
		}
	}
	return l, ps, nil
}

// resultAddrs are the container addresses of a result.
func resultAddrs(t testing.TB, res *types100.Result) []netip.Prefix {
	t.Helper()
	var out []netip.Prefix
	for _, ip := range res.IPs {
		a, _ := netip.AddrFromSlice(ip.Address.IP)
		ones, _ := ip.Address.Mask.Size()
		out = append(out, netip.PrefixFrom(a.Unmap(), ones))
	}
	return out
}

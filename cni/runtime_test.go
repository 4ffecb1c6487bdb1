package cni_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
)

// TestRuntimeConfig: the "ips" and "mac" capabilities (Podman uses ips for
// several addresses; see TestCNIArgsRequests for --ip and --mac-address):
// the container gets exactly what it asks for, CHECK holds it to that, an
// address held by another attachment is refused with code 11 and nothing
// left taken, bad requests are configuration errors naming the field, and
// the DEL after a refused ADD succeeds.
func TestRuntimeConfig(t *testing.T) {
	before := takeSnapshot(t)
	d := nsDir(t)
	p := dualStack("bridge")
	p["capabilities"] = map[string]bool{"ips": true, "mac": true}
	n := newNet(t, "rtconf", p)
	ctx := context.Background()
	add := func(c *container, caps map[string]any) (*types100.Result, error) {
		rc := &libcni.RuntimeConf{ContainerID: c.id, NetNS: c.path, IfName: "eth0", CapabilityArgs: caps}
		res, err := n.cni.AddNetworkList(ctx, n.list, rc)
		if err != nil {
			return nil, err
		}
		return types100.GetResult(res)
	}

	c1 := newContainer(t, d, "c1")
	res, err := add(c1, map[string]any{"ips": []string{"10.77.0.50/24", "fd77::50"}, "mac": "c2:11:22:33:44:55"})
	if err != nil {
		t.Fatalf("ADD with ips and mac: %v", err)
	}
	var got []string
	for _, a := range resultAddrs(t, res) {
		got = append(got, a.String())
	}
	if !slices.Equal(got, []string{"10.77.0.50/24", "fd77::50/64"}) {
		t.Errorf("addresses %v, want 10.77.0.50/24 and fd77::50/64", got)
	}
	l, addrs, err := linkIn(t, c1.ns, "eth0")
	if err != nil || l.MAC.String() != "c2:11:22:33:44:55" || len(addrs) != 2 {
		t.Errorf("eth0 in the container: mac %v, addresses %v, %v", l.MAC, addrs, err)
	}
	if err := n.check(c1); err != nil {
		t.Errorf("CHECK: %v", err)
	}

	// The same address for another container: refused, nothing kept.
	c2 := newContainer(t, d, "c2")
	_, err = add(c2, map[string]any{"ips": []string{"fd77::99", "10.77.0.50"}})
	wantCNIError(t, err, types.ErrTryAgainLater, "10.77.0.50", "held by attachment c1:eth0")
	if _, taken := n.allocations(); len(taken) != 2 {
		t.Errorf("after the refused ADD, addresses taken: %v, want c1's two", taken)
	}

	for _, tc := range []struct {
		caps  map[string]any
		field string
		rule  string
	}{
		{map[string]any{"ips": []string{"10.99.0.5"}}, "runtimeConfig.ips[0]", "none of ipam.subnets"},
		{map[string]any{"ips": []string{"10.77.0.1"}}, "runtimeConfig.ips[0]", "the gateway"},
		{map[string]any{"ips": []string{"10.77.0.255"}}, "runtimeConfig.ips[0]", "broadcast"},
		{map[string]any{"ips": []string{"10.77.0.5/16"}}, "runtimeConfig.ips[0]", "/24"},
		{map[string]any{"ips": []string{"10.77.0.5", "10.77.0.6"}}, "runtimeConfig.ips[1]", "one per subnet"},
		{map[string]any{"ips": []string{"banana"}}, "runtimeConfig.ips[0]", "not an address"},
		{map[string]any{"mac": "01:00:5e:00:00:01"}, "runtimeConfig.mac", "multicast"},
		{map[string]any{"mac": "nope"}, "runtimeConfig.mac", "not a MAC"},
	} {
		_, err := add(c2, tc.caps)
		wantCNIError(t, err, types.ErrInvalidNetworkConfig, tc.field, tc.rule)
		// The runtime's DEL after the failed ADD, with the same
		// arguments, succeeds: DEL does not judge requests.
		rc := &libcni.RuntimeConf{ContainerID: c2.id, NetNS: c2.path, IfName: "eth0", CapabilityArgs: tc.caps}
		if err := n.cni.DelNetworkList(ctx, n.list, rc); err != nil {
			t.Errorf("DEL after the refused ADD with %v: %v", tc.caps, err)
		}
	}

	// A container without requests still gets an address of its own.
	res, err = add(c2, nil)
	if err != nil {
		t.Fatalf("ADD without requests: %v", err)
	}
	if a := resultAddrs(t, res)[0]; strings.HasPrefix(a.String(), "10.77.0.50/") {
		t.Errorf("c2 got c1's address %s", a)
	}
	n.mustDel(c1)
	n.mustDel(c2)
	n.assertNoAllocations()
	if err := n.gc(); err != nil {
		t.Fatal(err)
	}
	before.assertSame(t)
}

// addArgs is an ADD as Podman's CNI backend makes it: CNI_ARGS pairs and
// capability arguments.
func (r *rt) addArgs(c *container, args [][2]string, caps map[string]any) (*types100.Result, error) {
	rc := &libcni.RuntimeConf{ContainerID: c.id, NetNS: c.path, IfName: "eth0", Args: args, CapabilityArgs: caps}
	res, err := r.cni.AddNetworkList(context.Background(), r.list, rc)
	if err != nil {
		return nil, err
	}
	return types100.GetResult(res)
}

func (r *rt) delArgs(c *container, args [][2]string, caps map[string]any) error {
	rc := &libcni.RuntimeConf{ContainerID: c.id, NetNS: c.path, IfName: "eth0", Args: args, CapabilityArgs: caps}
	return r.cni.DelNetworkList(context.Background(), r.list, rc)
}

// podmanArgs are the CNI_ARGS Podman 4 (CNI backend) sends, with extra
// pairs such as IP and MAC for --ip and --mac-address.
func podmanArgs(name string, extra ...string) [][2]string {
	args := [][2]string{{"IgnoreUnknown", "1"}, {"K8S_POD_NAME", name}}
	for i := 0; i+1 < len(extra); i += 2 {
		args = append(args, [2]string{extra[i], extra[i+1]})
	}
	return args
}

func addrStrings(t *testing.T, res *types100.Result) []string {
	t.Helper()
	var got []string
	for _, a := range resultAddrs(t, res) {
		got = append(got, a.String())
	}
	return got
}

// TestCNIArgsRequests: Podman's --ip and --mac-address arrive as the IP and
// MAC CNI_ARGS (not as capabilities, which it uses only for several
// addresses). The container gets exactly what it asks for, under the rules of
// the ips and mac capabilities: a held address is refused with code 11 and
// nothing kept, a bad request is code 4 naming CNI_ARGS. Unknown keys are
// refused unless IgnoreUnknown is set, as the reference plugins do.
func TestCNIArgsRequests(t *testing.T) {
	before := takeSnapshot(t)
	d := nsDir(t)
	// No capabilities declared: CNI_ARGS do not depend on them.
	n := newNet(t, "cniargs", dualStack("bridge"))

	c1 := newContainer(t, d, "c1")
	res, err := n.addArgs(c1, podmanArgs("c1", "IP", "10.77.0.7", "MAC", "c2:11:22:33:44:55"), nil)
	if err != nil {
		t.Fatalf("ADD with IP and MAC in CNI_ARGS: %v", err)
	}
	if got := addrStrings(t, res); len(got) != 2 || got[0] != "10.77.0.7/24" {
		t.Errorf("addresses %v, want 10.77.0.7/24 and one of fd77::/64", got)
	}
	l, _, err := linkIn(t, c1.ns, "eth0")
	if err != nil || l.MAC.String() != "c2:11:22:33:44:55" {
		t.Errorf("eth0 in the container: mac %v, %v; want c2:11:22:33:44:55", l.MAC, err)
	}
	if err := n.check(c1); err != nil {
		t.Errorf("CHECK: %v", err)
	}

	// Held by c1: refused with code 11, nothing kept.
	c2 := newContainer(t, d, "c2")
	_, err = n.addArgs(c2, podmanArgs("c2", "IP", "10.77.0.7"), nil)
	wantCNIError(t, err, types.ErrTryAgainLater, "10.77.0.7", "held by attachment c1:eth0")
	if _, taken := n.allocations(); len(taken) != 2 {
		t.Errorf("after the refused ADD, addresses taken: %v, want c1's two", taken)
	}
	// The runtime's DEL after a failed ADD carries the same arguments,
	// and must succeed: DEL does not judge requests.
	if err := n.delArgs(c2, podmanArgs("c2", "IP", "10.77.0.7"), nil); err != nil {
		t.Errorf("DEL after the refused ADD: %v", err)
	}

	for _, tc := range []struct {
		args  [][2]string
		caps  map[string]any
		code  uint
		parts []string
	}{
		{podmanArgs("c2", "IP", "10.99.0.5"), nil, types.ErrInvalidEnvironmentVariables, []string{"CNI_ARGS", "IP=10.99.0.5", "none of ipam.subnets"}},
		{podmanArgs("c2", "IP", "10.77.0.1"), nil, types.ErrInvalidEnvironmentVariables, []string{"CNI_ARGS", "gateway"}},
		{podmanArgs("c2", "IP", "10.77.0.255"), nil, types.ErrInvalidEnvironmentVariables, []string{"CNI_ARGS", "broadcast"}},
		{podmanArgs("c2", "IP", "10.77.0.5/16"), nil, types.ErrInvalidEnvironmentVariables, []string{"CNI_ARGS", "/24"}},
		{podmanArgs("c2", "IP", "10.77.0.5,10.77.0.6"), nil, types.ErrInvalidEnvironmentVariables, []string{"CNI_ARGS", "one per subnet"}},
		{podmanArgs("c2", "IP", "banana"), nil, types.ErrInvalidEnvironmentVariables, []string{"CNI_ARGS", "not an address"}},
		{podmanArgs("c2", "MAC", "01:00:5e:00:00:01"), nil, types.ErrInvalidEnvironmentVariables, []string{"CNI_ARGS", "MAC=", "multicast"}},
		{podmanArgs("c2", "MAC", "nope"), nil, types.ErrInvalidEnvironmentVariables, []string{"CNI_ARGS", "not a MAC"}},
		// Unknown keys only pass with IgnoreUnknown, which must be a boolean.
		{[][2]string{{"FOO", "bar"}}, nil, types.ErrInvalidEnvironmentVariables, []string{"CNI_ARGS", `"FOO"`, "IgnoreUnknown"}},
		{[][2]string{{"IgnoreUnknown", "0"}, {"FOO", "bar"}}, nil, types.ErrInvalidEnvironmentVariables, []string{"CNI_ARGS", `"FOO"`}},
		{[][2]string{{"IgnoreUnknown", "yes"}}, nil, types.ErrInvalidEnvironmentVariables, []string{"CNI_ARGS", "IgnoreUnknown", "yes"}},
		{[][2]string{{"IP", "10.77.0.5=x"}}, nil, types.ErrInvalidEnvironmentVariables, []string{"CNI_ARGS", "KEY=VALUE"}},
		// Both conventions at once must agree.
		{podmanArgs("c2", "IP", "10.77.0.5"), map[string]any{"ips": []string{"10.77.0.6"}}, types.ErrInvalidEnvironmentVariables, []string{"CNI_ARGS", "IP=10.77.0.5", "runtimeConfig.ips[0]", "10.77.0.6"}},
		{podmanArgs("c2", "MAC", "c2:00:00:00:00:01"), map[string]any{"mac": "c2:00:00:00:00:02"}, types.ErrInvalidEnvironmentVariables, []string{"CNI_ARGS", "runtimeConfig.mac", "c2:00:00:00:00:02"}},
	} {
		caps := tc.caps
		nn := n
		if caps != nil {
			nn = capsNet(t, n)
		}
		_, err := nn.addArgs(c2, tc.args, caps)
		wantCNIError(t, err, tc.code, tc.parts...)
		if err := nn.delArgs(c2, tc.args, caps); err != nil {
			t.Errorf("DEL after the refused ADD with %v %v: %v", tc.args, caps, err)
		}
	}
	if _, taken := n.allocations(); len(taken) != 2 {
		t.Errorf("after the refused ADDs, addresses taken: %v, want c1's two", taken)
	}

	// Several addresses in one IP (as the reference static plugin takes
	// them), K8S_POD_* without IgnoreUnknown (a convention nsnet knows),
	// and IgnoreUnknown=true.
	res, err = n.addArgs(c2, [][2]string{{"K8S_POD_NAMESPACE", "default"}, {"K8S_POD_NAME", "c2"}, {"K8S_POD_INFRA_CONTAINER_ID", "c2"}, {"K8S_POD_UID", "u"}, {"IP", "fd77::8, 10.77.0.8/24"}}, nil)
	if err != nil {
		t.Fatalf("ADD with two addresses in IP: %v", err)
	}
	if got := addrStrings(t, res); !slices.Equal(got, []string{"10.77.0.8/24", "fd77::8/64"}) {
		t.Errorf("addresses %v, want 10.77.0.8/24 and fd77::8/64", got)
	}
	n.mustDel(c2)
	c3 := newContainer(t, d, "c3")
	if _, err := n.addArgs(c3, [][2]string{{"IgnoreUnknown", "true"}, {"SOMETHING", "else"}}, nil); err != nil {
		t.Errorf("ADD with IgnoreUnknown=true: %v", err)
	}
	n.mustDel(c3)

	// The same address from both conventions is one request.
	cn := capsNet(t, n)
	res, err = cn.addArgs(c2, podmanArgs("c2", "IP", "10.77.0.9", "MAC", "c2:00:00:00:00:09"), map[string]any{"ips": []string{"10.77.0.9/24"}, "mac": "C2:00:00:00:00:09"})
	if err != nil {
		t.Fatalf("ADD with the same address and MAC in CNI_ARGS and runtimeConfig: %v", err)
	}
	if got := addrStrings(t, res); got[0] != "10.77.0.9/24" {
		t.Errorf("addresses %v, want 10.77.0.9/24 first", got)
	}
	if err := cn.del(c2); err != nil {
		t.Fatal(err)
	}
	n.mustDel(c1)
	n.assertNoAllocations()
	if err := n.gc(); err != nil {
		t.Fatal(err)
	}
	before.assertSame(t)
}

// capsNet is network n with the ips and mac capabilities declared, sharing
// its state.
func capsNet(t *testing.T, n *rt) *rt {
	t.Helper()
	p := n.conf()
	p["capabilities"] = map[string]bool{"ips": true, "mac": true}
	c := newNet(t, n.list.Name, p)
	c.cni = n.cni
	return c
}

// TestDelegatedRequests: with a delegated IPAM plugin, a requested address
// is the plugin's to honour (it gets the same CNI_ARGS and configuration),
// but one it ignores fails the ADD, followed by the plugin's DEL.
func TestDelegatedRequests(t *testing.T) {
	before := takeSnapshot(t)
	d := nsDir(t)
	log := filepath.Join(t.TempDir(), "ipam.log")
	n := newNet(t, "delegreq", plugin{"mode": "ptp", "ipam": map[string]any{"type": "fakeipam", "logFile": log, "address": "10.80.0.7/24", "gateway": "10.80.0.1"}})
	c := newContainer(t, d, "dr")
	if _, err := n.addArgs(c, podmanArgs("dr", "IP", "10.80.0.7"), nil); err != nil {
		t.Fatalf("ADD asking for the address the plugin gives: %v", err)
	}
	n.mustDel(c)
	os.Remove(log)
	_, err := n.addArgs(c, podmanArgs("dr", "IP", "10.80.0.9"), nil)
	wantCNIError(t, err, types.ErrInternal, "fakeipam", "10.80.0.9", "not honoured")
	b, _ := os.ReadFile(log)
	if got := strings.ReplaceAll(strings.TrimSpace(string(b)), "\n", " | "); got != "ADD dr eth0 | DEL dr eth0" {
		t.Errorf("delegated calls after an ignored request: %s", got)
	}
	n.assertNoAllocations()
	before.assertSame(t)
}

// TestArgsRequests: args.cni.ips and args.cni.mac, the CNI conventions' way
// of asking in the configuration (host-local and bridge read them), are
// honoured like the capabilities; CNI_ARGS' IP and MAC are ignored when
// args asks, as the conventions require; a bad one is code 7 naming it.
func TestArgsRequests(t *testing.T) {
	before := takeSnapshot(t)
	d := nsDir(t)
	p := dualStack("bridge")
	p["args"] = map[string]any{"cni": map[string]any{"ips": []string{"10.77.0.40/24", "fd77::40"}, "mac": "c2:00:00:00:00:40"}, "labels": []any{}}
	n := newNet(t, "argsreq", p)
	c := newContainer(t, d, "a1")
	res, err := n.addArgs(c, podmanArgs("a1", "IP", "10.77.0.41", "MAC", "c2:00:00:00:00:41"), nil)
	if err != nil {
		t.Fatalf("ADD with args.cni: %v", err)
	}
	if got := addrStrings(t, res); !slices.Equal(got, []string{"10.77.0.40/24", "fd77::40/64"}) {
		t.Errorf("addresses %v, want args.cni's 10.77.0.40/24 and fd77::40/64", got)
	}
	if l, _, err := linkIn(t, c.ns, "eth0"); err != nil || l.MAC.String() != "c2:00:00:00:00:40" {
		t.Errorf("eth0 in the container: mac %v, %v; want args.cni's c2:00:00:00:00:40", l.MAC, err)
	}
	if err := n.check(c); err != nil {
		t.Errorf("CHECK: %v", err)
	}
	n.mustDel(c)

	p = dualStack("bridge")
	p["args"] = map[string]any{"cni": map[string]any{"ips": []string{"10.88.0.40"}}}
	bad := newNet(t, "argsreq", p)
	_, err = bad.add(c)
	wantCNIError(t, err, types.ErrInvalidNetworkConfig, "args.cni.ips[0]", "none of ipam.subnets")
	if err := bad.del(c); err != nil {
		t.Errorf("DEL after the refused ADD: %v", err)
	}
	n.assertNoAllocations()
	if err := n.gc(); err != nil {
		t.Fatal(err)
	}
	before.assertSame(t)
}

// TestMACHeld: in bridge mode a MAC the runtime asks for is held like an
// address: a second container asking for it on the same bridge is refused
// with code 11 naming the holder, and gets it once the holder is gone (by
// DEL or by GC). On ptp links, which never meet, two containers may share
// one.
func TestMACHeld(t *testing.T) {
	before := takeSnapshot(t)
	d := nsDir(t)
	n := newNet(t, "machold", dualStack("bridge"))
	mac := podmanArgs("x", "MAC", "c2:00:00:00:00:77")
	c1, c2 := newContainer(t, d, "m1"), newContainer(t, d, "m2")
	if _, err := n.addArgs(c1, mac, nil); err != nil {
		t.Fatal(err)
	}
	_, err := n.addArgs(c2, mac, nil)
	wantCNIError(t, err, types.ErrTryAgainLater, "MAC c2:00:00:00:00:77", "held by attachment m1:eth0")
	if recs, addrs := n.allocations(); len(recs) != 1 || len(addrs) != 2 {
		t.Errorf("after the refused ADD: records %v, addresses %v; want m1's", recs, addrs)
	}
	if err := n.delArgs(c2, mac, nil); err != nil {
		t.Fatal(err)
	}
	if got := n.macClaims(); !slices.Equal(got, []string{"c2:00:00:00:00:77"}) {
		t.Errorf("MAC claims %v, want m1's", got)
	}
	n.mustDel(c1)
	if _, err := n.addArgs(c2, mac, nil); err != nil {
		t.Fatalf("ADD of the MAC after its holder's DEL: %v", err)
	}
	// GC with nothing valid frees it too.
	if err := n.freshRuntime().gc(); err != nil {
		t.Fatal(err)
	}
	n.assertNoAllocations()

	p := newNet(t, "macptp", dualStack("ptp"))
	for _, c := range []*container{c1, c2} {
		if _, err := p.addArgs(c, mac, nil); err != nil {
			t.Fatalf("ptp ADD of %s with a shared MAC: %v", c.id, err)
		}
	}
	p.mustDel(c1)
	p.mustDel(c2)
	p.assertNoAllocations()
	if err := p.gc(); err != nil {
		t.Fatal(err)
	}
	before.assertSame(t)
}

package cni_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
)

// TestRuntimeConfig: the "ips" and "mac" capabilities, as Podman uses them
// for --ip and --mac-address: the container gets exactly what it asks for,
// CHECK holds it to that, an address held by another attachment is refused
// with code 11 and nothing left taken, and bad requests are configuration
// errors naming the field.
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

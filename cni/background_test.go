package cni_test

import (
	"encoding/json"
	"net/netip"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/skel"

	"github.com/nsnet/nsnet/cni"
)

// TestBackgroundDelete: with backgroundDelete, DEL returns with the
// attachment inert (host end down or gone, its routes gone, addresses and
// record freed); the detached reaper then removes the pair, and an ADD of the
// same attachment before it has done so replaces the leftover.
func TestBackgroundDelete(t *testing.T) {
	for _, mode := range []string{"ptp", "bridge"} {
		t.Run(mode, func(t *testing.T) {
			before := takeSnapshot(t)
			d := nsDir(t)
			p := dualStack(mode)
			p["backgroundDelete"] = true
			n := newNet(t, "bg-"+mode, p)
			host := handle(t, hostNS(t))
			c := newContainer(t, d, "c1")

			add := func() (hostEnd string, addr netip.Addr) {
				res := n.mustAdd(c)
				ifc := res.Interfaces[*res.IPs[0].Interface-1]
				if ifc.Sandbox != "" {
					t.Fatalf("interface before the container's is %+v, want the host end", ifc)
				}
				return ifc.Name, resultAddrs(t, res)[0].Addr()
			}
			name, addr := add()
			n.mustDel(c)
			l, err := host.LinkByName(name)
			if err == nil && l.Up() {
				t.Fatalf("host end %s still up after DEL", name)
			}
			routes, err := host.Routes()
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range routes {
				if r.Dst == netip.PrefixFrom(addr, addr.BitLen()) {
					t.Errorf("host still routes %s after DEL: %+v", addr, r)
				}
			}
			n.assertNoAllocations()

			// ADD again at once, then DEL, and let the reaper finish.
			name, _ = add()
			n.mustDel(c)
			deadline := time.Now().Add(5 * time.Second)
			for {
				if _, err := host.LinkByName(name); err != nil {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("host end %s not deleted 5 s after DEL", name)
				}
				time.Sleep(10 * time.Millisecond)
			}
			if _, _, err := linkIn(t, c.ns, "eth0"); err == nil {
				t.Fatal("eth0 still in the container after the reaper ran")
			}
			n.assertNoAllocations()
			if err := n.gc(); err != nil {
				t.Fatalf("GC: %v", err)
			}
			before.assertSame(t)
		})
	}
}

// TestBackgroundDeleteOrphan: when the reaper never runs (killed), the
// down host end stays behind with no record; an ADD of the same attachment
// replaces it, and GC removes one that nothing replaced.
func TestBackgroundDeleteOrphan(t *testing.T) {
	before := takeSnapshot(t)
	d := nsDir(t)
	p := dualStack("ptp")
	p["backgroundDelete"] = true
	n := newNet(t, "orphan", p)
	host := handle(t, hostNS(t))
	dead := &cni.Plugin{Reap: func(int, string) error { return nil }}
	conf, err := json.Marshal(map[string]any{"cniVersion": "1.1.0", "name": "orphan", "type": "nsnet-cni", "mode": p["mode"], "mtu": p["mtu"], "ipam": p["ipam"], "dataDir": p["dataDir"], "backgroundDelete": true})
	if err != nil {
		t.Fatal(err)
	}
	delDead := func(c *container) string {
		t.Helper()
		res := n.mustAdd(c)
		name := res.Interfaces[*res.IPs[0].Interface-1].Name
		if err := dead.Del(&skel.CmdArgs{ContainerID: c.id, Netns: c.path, IfName: "eth0", StdinData: conf}); err != nil {
			t.Fatalf("DEL with a dead reaper: %v", err)
		}
		if l, err := host.LinkByName(name); err != nil || l.Up() {
			t.Fatalf("after DEL with a dead reaper, host end %s: %+v, %v; want it there, down", name, l, err)
		}
		return name
	}

	c1 := newContainer(t, d, "c1")
	delDead(c1)
	res := n.mustAdd(c1) // replaces the leftover
	name1 := res.Interfaces[*res.IPs[0].Interface-1].Name
	if err := n.check(c1); err != nil {
		t.Fatalf("CHECK after replacing a leftover: %v", err)
	}
	n.mustDel(c1)

	c2 := newContainer(t, d, "c2")
	name := delDead(c2)
	if err := n.gc(); err != nil {
		t.Fatalf("GC: %v", err)
	}
	if _, err := host.LinkByName(name); err == nil {
		t.Fatalf("GC left the leftover %s", name)
	}
	// c1's reaper.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if _, err := host.LinkByName(name1); err != nil {
			break
		}
	}
	n.assertNoAllocations()
	before.assertSame(t)
}

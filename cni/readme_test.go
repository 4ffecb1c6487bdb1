package cni_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"
)

// olderLibcni are the spec versions libcni knew before v1.2.0 (v1.1.2 is
// what containerd 1.6 and 1.7, CRI-O up to 1.30 and Podman 4.x to 5.1 are
// built with): such a runtime cannot decode a 1.1.0 result.
var olderLibcni = []string{"0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0"}

// oldPortmap stands in for the reference portmap of plugins v1.0.0 to
// v1.5.1 (the ones distributions ship), which speaks what its libcni v1.0
// or v1.1 knows: up to 1.0.0. Without port mappings it passes the previous
// result on, as the real one does. TestMain runs it as "portmap".
func oldPortmap() {
	add := func(args *skel.CmdArgs) error {
		conf, err := prevResultConf(args.StdinData)
		if err != nil {
			return err
		}
		return types.PrintResult(conf.PrevResult, conf.CNIVersion)
	}
	check := func(args *skel.CmdArgs) error {
		_, err := prevResultConf(args.StdinData)
		return err
	}
	skel.PluginMainFuncs(skel.CNIFuncs{Add: add, Check: check, Del: func(*skel.CmdArgs) error { return nil }},
		version.PluginSupports(olderLibcni...), "portmap stand-in (plugins v1.5)")
}

func prevResultConf(stdin []byte) (*types.NetConf, error) {
	var conf types.NetConf
	if err := json.Unmarshal(stdin, &conf); err != nil {
		return nil, err
	}
	if conf.RawPrevResult == nil {
		return nil, types.NewError(types.ErrInvalidNetworkConfig, "portmap must be chained after an interface plugin", "")
	}
	if err := version.ParsePrevResult(&conf); err != nil {
		return nil, err
	}
	return &conf, nil
}

// readmeConflist is the example configuration of README's CNI section.
func readmeConflist(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := bytes.Cut(b, []byte("/etc/cni/net.d/10-nsnet.conflist"))
	if ok {
		_, after, ok = bytes.Cut(after, []byte("```json\n"))
	}
	var block []byte
	if ok {
		block, _, ok = bytes.Cut(after, []byte("```"))
	}
	if !ok {
		t.Fatal("README.md has no ```json block after /etc/cni/net.d/10-nsnet.conflist")
	}
	return block
}

// TestREADMEConflist: README's example configuration is one the runtimes
// most distributions ship can use: its version is one an older libcni
// knows, it parses, and ADD, CHECK and DEL go through libcni at that version
// with the portmap those distributions ship chained after nsnet.
func TestREADMEConflist(t *testing.T) {
	before := takeSnapshot(t)
	d := nsDir(t)
	list, err := libcni.ConfListFromBytes(readmeConflist(t))
	if err != nil {
		t.Fatalf("README's conflist: %v", err)
	}
	if !slices.Contains(olderLibcni, list.CNIVersion) {
		t.Errorf("README's conflist has cniVersion %q: containerd 1.6/1.7, CRI-O 1.30 and Podman 4 (libcni before v1.2.0) know only %v", list.CNIVersion, olderLibcni)
	}
	if len(list.Plugins) == 0 || list.Plugins[0].Network.Type != "nsnet-cni" {
		t.Fatalf("README's conflist does not start with nsnet-cni: %s", list.Bytes)
	}
	// State in the test's own directory, not /var/lib/cni.
	dataDir := filepath.Join(t.TempDir(), "state")
	if list.Plugins[0], err = libcni.InjectConf(list.Plugins[0], map[string]any{"dataDir": dataDir}); err != nil {
		t.Fatal(err)
	}
	n := &rt{t: t, cni: newCNI([]string{pluginDir}, t.TempDir()), list: list}
	// Podman and CRI-O validate a configuration when they load it: every
	// plugin must say (VERSION) that it speaks the list's version.
	if _, err := n.cni.ValidateNetworkList(context.Background(), list); err != nil {
		t.Errorf("ValidateNetworkList: %v", err)
	}
	c := newContainer(t, d, "readme")
	// GC (spec 1.1.0, nsnet alone) removes the bridge and the
	// masquerade table that an empty network leaves to it, and whatever
	// a failed run left.
	gc := newNet(t, list.Name, plugin(n.conf()))
	t.Cleanup(func() {
		if err := gc.gc(); err != nil {
			t.Error(err)
		}
		before.assertSame(t)
	})
	res, err := n.cni.AddNetworkList(context.Background(), list, rc(c, "eth0"))
	if err != nil {
		t.Fatalf("ADD with README's conflist: %v", err)
	}
	if res.Version() != list.CNIVersion {
		t.Errorf("result version %s, want the conflist's %s", res.Version(), list.CNIVersion)
	}
	r, err := types100.GetResult(res)
	if err != nil {
		t.Fatal(err)
	}
	if got := resultAddrs(t, r); len(got) != 2 {
		t.Errorf("addresses %v, want one of each subnet", got)
	}
	if err := n.check(c); err != nil {
		t.Errorf("CHECK: %v", err)
	}
	n.mustDel(c)
	n.assertNoAllocations()
}

// TestREADMECNIVersions: README's advice for runtimes and chains that all
// take 1.1.0: with "cniVersions" next to "cniVersion", libcni v1.2 and later
// pick 1.1.0, and a plugin of the chain that does not take it (the portmap
// of plugins v1.5) is found when the runtime validates the list.
func TestREADMECNIVersions(t *testing.T) {
	var conf map[string]any
	if err := json.Unmarshal(readmeConflist(t), &conf); err != nil {
		t.Fatal(err)
	}
	conf["cniVersions"] = []string{"1.0.0", "1.1.0"}
	b, err := json.Marshal(conf)
	if err != nil {
		t.Fatal(err)
	}
	list, err := libcni.ConfListFromBytes(b)
	if err != nil {
		t.Fatal(err)
	}
	if list.CNIVersion != "1.1.0" {
		t.Fatalf("with cniVersions libcni picks %s, want 1.1.0", list.CNIVersion)
	}
	c := newCNI([]string{pluginDir}, t.TempDir())
	if _, err := c.ValidateNetworkList(context.Background(), list); err == nil || !strings.Contains(err.Error(), "portmap") {
		t.Errorf("ValidateNetworkList at 1.1.0 with the old portmap: %v, want portmap's refusal", err)
	}
	list.Plugins = list.Plugins[:1]
	if _, err := c.ValidateNetworkList(context.Background(), list); err != nil {
		t.Errorf("ValidateNetworkList at 1.1.0 with nsnet alone: %v", err)
	}
}

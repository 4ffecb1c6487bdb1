package cni

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
)

func TestParseConfigDefaults(t *testing.T) {
	c, err := ParseConfig([]byte(`{"cniVersion":"1.1.0","name":"n","type":"nsnet-cni",
		"ipam":{"type":"nsnet","subnets":["10.1.0.0/16","fd01::/64"]}}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Mode != ModeBridge || c.Bridge != DefaultBridge || !c.Gateway || c.DataDir != DefaultDataDir || c.MTU != 0 || c.Masquerade {
		t.Fatalf("defaults: %+v", c)
	}
	want := []Route{{Dst: netip.MustParsePrefix("0.0.0.0/0")}, {Dst: netip.MustParsePrefix("::/0")}}
	if !slices.Equal(c.IPAM.Routes, want) {
		t.Fatalf("default routes %v, want %v", c.IPAM.Routes, want)
	}
	// An explicit empty list means no routes.
	c, err = ParseConfig([]byte(`{"name":"n","ipam":{"type":"nsnet","subnets":["10.1.0.0/16"],"routes":[]}}`))
	if err != nil || len(c.IPAM.Routes) != 0 {
		t.Fatalf("routes [] gave %v, %v", c.IPAM.Routes, err)
	}
}

func TestParseConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		conf  string
		field string // ConfigError field, or "" for other kinds
		kind  any
		msg   string
	}{
		{`{"name":"n","ipam":{"type":"nsnet","subnets":["10.1.0.0/16"]},"ipmasq":true}`, "", &UnsupportedFieldError{}, `"ipmasq"`},
		{`{"name":"","ipam":{"type":"x"}}`, "name", nil, "required"},
		{`{"name":"../x","ipam":{"type":"x"}}`, "name", nil, "letter or digit"},
		{`{"name":"n","mode":"ptp","isGateway":true,"ipam":{"type":"x"}}`, "isGateway", nil, "only used"},
		{`{"name":"n","mtu":70000,"ipam":{"type":"x"}}`, "mtu", nil, "out of range"},
		{`{"name":"n","ipam":{"type":"a/b"}}`, "ipam.type", nil, "not a plugin name"},
		{`{"name":"n","ipam":{"type":"nsnet","subnets":["10.1.0.0/16","fd01::/64","fd02::/64"]}}`, "ipam.subnets", nil, "at most one"},
		{`{"name":"n","ipam":{"type":"nsnet","subnets":["fd01::/127"]}}`, "ipam.subnets[0]", nil, "at most /126"},
		{`{"name":"n","ipam":{"type":"nsnet","subnets":["::ffff:10.0.0.0/120"]}}`, "ipam.subnets[0]", nil, "plain"},
		{`{"name":"n","ipam":{"type":"nsnet","subnets":["10.1.0.0/16"],"routes":[{"dst":"10.9.0.0/16","gw":"fd00::1"}]}}`, "ipam.routes[0].gw", nil, "different families"},
		{`{"name":"n","ipam":{"type":"nsnet","subnets":["10.1.0.0/16"],"routes":[{"dst":"x"}]}}`, "ipam.routes[0].dst", nil, "not a CIDR"},
		{`{"cniVersion":"1.1.0","name":"n","ipam":{"type":"nsnet","subnets":["10.1.0.0/16"]},"prevResult":{"ips":[{"address":"bogus"}]}}`, "", &DecodeError{}, "prevResult"},
		{`[1,2]`, "", &DecodeError{}, "network configuration"},
	} {
		_, err := ParseConfig([]byte(tc.conf))
		if err == nil {
			t.Errorf("%s: accepted", tc.conf)
			continue
		}
		if !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: error %q does not mention %q", tc.conf, err, tc.msg)
		}
		switch k := tc.kind.(type) {
		case nil:
			var ce *ConfigError
			if !errors.As(err, &ce) || ce.Field != tc.field {
				t.Errorf("%s: error %v, want ConfigError on %s", tc.conf, err, tc.field)
			}
		case *UnsupportedFieldError:
			if !errors.As(err, &k) {
				t.Errorf("%s: error %T, want %T", tc.conf, err, k)
			}
		case *DecodeError:
			if !errors.As(err, &k) {
				t.Errorf("%s: error %T, want %T", tc.conf, err, k)
			}
		}
	}
}

// TestLongValuesShortened: a huge value from outside is echoed as a short
// prefix, never whole.
func TestLongValuesShortened(t *testing.T) {
	long := strings.Repeat("x", 5<<20)
	ipam := `"ipam":{"type":"nsnet","subnets":["10.1.0.0/16"]}`
	for _, conf := range []string{
		`{"name":"-` + long + `",` + ipam + `}`,
		`{"name":"n","mode":"` + long + `",` + ipam + `}`,
		`{"name":"n","dataDir":"` + long + `",` + ipam + `}`,
		`{"name":"n","` + long + `":1,` + ipam + `}`,
		`{"name":"n","ipam":{"type":"/` + long + `"}}`,
		`{"name":"n","ipam":{"type":"nsnet","subnets":["` + long + `"]}}`,
		`{"name":"n","ipam":{"type":"nsnet","subnets":["10.1.0.0/16"],"` + long + `":1}}`,
		`{"name":"n","ipam":{"type":"nsnet","subnets":["10.1.0.1/16` + long + `"]}}`,
		`{"name":"n","ipam":{"type":"nsnet","subnets":["10.1.0.0/16"],"routes":[{"dst":"` + long + `"}]}}`,
		`{"name":"n","ipam":{"type":"nsnet","subnets":["10.1.0.0/16"],"routes":[{"dst":"0.0.0.0/0","gw":"` + long + `"}]}}`,
	} {
		_, err := ParseConfig([]byte(conf))
		if err == nil || len(err.Error()) > 300 {
			t.Errorf("%.60s...: error of %d bytes (%.100v)", conf, len(fmt.Sprint(err)), err)
		}
	}
	err := checkArgs(&skel.CmdArgs{ContainerID: "-" + long, IfName: "eth0"}, false)
	if err == nil || len(err.Error()) > 300 {
		t.Errorf("CNI_CONTAINERID: error of %d bytes", len(fmt.Sprint(err)))
	}
}

func TestToCNICodes(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code uint
	}{
		{&ConfigError{Field: "f", Rule: "r"}, 7},
		{&UnsupportedFieldError{Field: "f", Value: "1"}, 2},
		{&DecodeError{What: "x", Err: errors.New("bad")}, 6},
		{&EnvError{Var: "CNI_IFNAME", Rule: "r"}, 4},
		{&NetNSError{Path: "/x", Err: ErrOwnNetNS}, 8},
		{&ExhaustedError{Subnet: netip.MustParsePrefix("10.0.0.0/30")}, 11},
		{&StatusError{Err: &ExhaustedError{}}, 50},
		{errors.New("other"), 999},
	} {
		got := toCNI(tc.err)
		if c := cniCodeOf(got); c != tc.code {
			t.Errorf("%T: code %d, want %d", tc.err, c, tc.code)
		}
	}
}

func cniCodeOf(err error) uint {
	var te *types.Error
	if !errors.As(err, &te) {
		return 0
	}
	return te.Code
}

// FuzzParseConfig: whatever a runtime sends, ParseConfig returns a config or
// a typed error (never panics), and a config it accepts keeps every rule the
// plugin relies on later.
func FuzzParseConfig(f *testing.F) {
	for _, s := range []string{
		`{"cniVersion":"1.1.0","name":"n","type":"nsnet-cni","ipam":{"type":"nsnet","subnets":["10.1.0.0/16","fd01::/64"]}}`,
		`{"cniVersion":"1.1.0","name":"n","type":"nsnet-cni","mode":"ptp","mtu":1400,"ipMasq":true,"ipam":{"type":"nsnet","subnets":["10.1.0.0/24"],"routes":[{"dst":"0.0.0.0/0"}]}}`,
		`{"cniVersion":"1.1.0","name":"n","type":"nsnet-cni","hairpinMode":true,"backgroundDelete":true,"runtimeConfig":{"ips":["10.1.0.9/16","fd01::9"],"mac":"c2:11:22:33:44:55"},"ipam":{"type":"nsnet","subnets":["10.1.0.0/16","fd01::/64"]}}`,
		`{"cniVersion":"1.0.0","name":"n","type":"nsnet-cni","ipam":{"type":"host-local","subnet":"10.2.0.0/24"},"runtimeConfig":{"ips":["10.2.0.7"]}}`,
		`{"cniVersion":"1.1.0","name":"n","type":"nsnet-cni","cni.dev/valid-attachments":[{"containerID":"c","ifname":"eth0"}],"ipam":{"type":"nsnet","subnets":["10.1.0.0/16"]}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		c, err := ParseConfig(raw)
		if err != nil {
			var cfg *ConfigError
			var unsup *UnsupportedFieldError
			var dec *DecodeError
			if !errors.As(err, &cfg) && !errors.As(err, &unsup) && !errors.As(err, &dec) {
				t.Fatalf("untyped error %T: %v", err, err)
			}
			return
		}
		if c.Network == "" || (c.Mode != ModeBridge && c.Mode != ModePTP) || !strings.HasPrefix(c.DataDir, "/") {
			t.Fatalf("accepted %+v", c)
		}
		if c.Hairpin && c.Mode != ModeBridge {
			t.Fatal("hairpin accepted in ptp mode")
		}
		if !c.IPAM.Builtin() {
			return
		}
		fams := map[bool]bool{}
		for _, p := range c.IPAM.Subnets {
			if fams[p.Addr().Is4()] || p != p.Masked() {
				t.Fatalf("accepted subnets %v", c.IPAM.Subnets)
			}
			fams[p.Addr().Is4()] = true
		}
	})
}

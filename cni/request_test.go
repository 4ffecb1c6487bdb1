package cni

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
)

const requestConf = `{"cniVersion":"1.1.0","name":"n","type":"nsnet-cni","ipam":{"type":"nsnet","subnets":["10.1.0.0/24","fd01::/64"]}`

func TestRequest(t *testing.T) {
	for _, tc := range []struct {
		runtime string // the runtimeConfig object, or ""
		cargs   string // the configuration's args, or ""
		args    string // CNI_ARGS
		ips     []string
		mac     string
		err     string // "" when accepted
	}{
		{args: "", ips: nil},
		{args: "IgnoreUnknown=1;K8S_POD_NAME=x;IP=10.1.0.7;MAC=c2:11:22:33:44:55", ips: []string{"10.1.0.7"}, mac: "c2:11:22:33:44:55"},
		{args: "IP=fd01::7, 10.1.0.7/24", ips: []string{"fd01::7", "10.1.0.7"}},
		{args: "IP=;MAC=", ips: nil},                                 // empty is not given, as in host-local
		{args: "IP=10.1.0.7;IP=10.1.0.7", ips: []string{"10.1.0.7"}}, // the same twice is once
		{args: "IgnoreUnknown=TRUE;x=y"},
		{args: "K8S_POD_NAMESPACE=a;K8S_POD_NAME=b;K8S_POD_INFRA_CONTAINER_ID=c;K8S_POD_UID=d"},
		{runtime: `{"ips":["10.1.0.9/24"],"mac":"c2:00:00:00:00:09"}`, args: "IP=10.1.0.9;MAC=C2-00-00-00-00-09", ips: []string{"10.1.0.9"}, mac: "c2:00:00:00:00:09"},
		{runtime: `{"ips":["fd01::9"]}`, args: "IP=10.1.0.9", ips: []string{"fd01::9", "10.1.0.9"}},
		{args: "IP=10.1.0.7;IP=10.1.0.8", err: `CNI_ARGS: IP is given twice, as "10.1.0.7" and "10.1.0.8"`},
		{args: "IP=10.1.0.7,10.1.0.8", err: "CNI_ARGS: IP=10.1.0.7,10.1.0.8: 10.1.0.8 is a second address of 10.1.0.0/24 (CNI_ARGS IP asks for 10.1.0.7)"},
		{runtime: `{"ips":["10.1.0.9"]}`, args: "IP=10.1.0.8", err: "CNI_ARGS: IP=10.1.0.8: 10.1.0.8 is a second address of 10.1.0.0/24 (runtimeConfig.ips[0] asks for 10.1.0.9)"},
		{runtime: `{"mac":"c2:00:00:00:00:09"}`, args: "MAC=c2:00:00:00:00:08", err: "CNI_ARGS: MAC=c2:00:00:00:00:08: c2:00:00:00:00:08 differs from runtimeConfig.mac, which asks for c2:00:00:00:00:09"},
		{args: "IP=10.2.0.7", err: "CNI_ARGS: IP=10.2.0.7: 10.2.0.7 is in none of ipam.subnets"},
		{args: "IP=10.1.0.0", err: "network or broadcast"},
		{args: "IP=fd01::1", err: "the gateway of fd01::/64"},
		{args: "IP=fe80::1%eth0", err: "not an address"},
		{args: "MAC=ff:ff:ff:ff:ff:ff", err: "multicast"},
		{args: "MAC=00:00:00:00:00:00", err: "not an interface address"},
		{args: "MAC=00:00:00:00:00:00:00:01", err: "not a MAC"},
		{args: "FOO=1", err: `CNI_ARGS: unknown key "FOO": nsnet reads IP, MAC, IgnoreUnknown and K8S_POD_NAMESPACE`},
		{args: "a=1;b=2;c=3;d=4;IgnoreUnknown=false", err: `unknown key "a", "b", "c" and 1 more`},
		{args: "ip=10.1.0.7", err: `unknown key "ip"`}, // keys are case-sensitive, as in LoadArgs
		{args: "IgnoreUnknown=yes", err: "IgnoreUnknown=yes: not 1, true, 0 or false"},
		{args: "IgnoreUnknown=1;IgnoreUnknown=0", err: "twice"},
		{args: "IP=10.1.0.7;", err: `"" is not a KEY=VALUE pair`},
		{args: "IP", err: `"IP" is not a KEY=VALUE pair`},
		{args: "MAC=a=b", err: `"MAC=a=b" is not a KEY=VALUE pair`},
		{runtime: `{"ips":["10.1.0.5","10.1.0.6"]}`, err: "runtimeConfig.ips[1]: 10.1.0.6 is a second address of 10.1.0.0/24 (runtimeConfig.ips[0] asks for 10.1.0.5)"},
		// args.cni, the conventions' way: CNI_ARGS' IP and MAC are
		// then ignored, as the conventions say; runtimeConfig must agree.
		{cargs: `{"cni":{"ips":["10.1.0.4/24"],"mac":"c2:00:00:00:00:04"}}`, ips: []string{"10.1.0.4"}, mac: "c2:00:00:00:00:04"},
		{cargs: `{"cni":{"ips":["10.1.0.4"]}}`, args: "IP=10.1.0.5;MAC=c2:00:00:00:00:05", ips: []string{"10.1.0.4"}, mac: "c2:00:00:00:00:05"},
		{cargs: `{"cni":{"mac":"c2:00:00:00:00:04"}}`, args: "IP=10.1.0.5;MAC=c2:00:00:00:00:05", ips: []string{"10.1.0.5"}, mac: "c2:00:00:00:00:04"},
		{cargs: `{"cni":{"ips":["10.1.0.4"]}}`, runtime: `{"ips":["10.1.0.4/24"]}`, ips: []string{"10.1.0.4"}},
		{cargs: `{"labels":[{"key":"app","value":"x"}],"cni":{"labels":[{"key":"a","value":"b"}]}}`},
		{cargs: `"not an object"`},
		{cargs: `{"cni":null}`},
		{cargs: `{"cni":{"ips":["10.1.0.4"]}}`, runtime: `{"ips":["10.1.0.3"]}`, err: "args.cni.ips[0]: 10.1.0.4 is a second address of 10.1.0.0/24 (runtimeConfig.ips[0] asks for 10.1.0.3)"},
		{cargs: `{"cni":{"mac":"c2:00:00:00:00:04"}}`, runtime: `{"mac":"c2:00:00:00:00:03"}`, err: "args.cni.mac: c2:00:00:00:00:04 differs from runtimeConfig.mac"},
		{cargs: `{"cni":{"ips":["10.9.0.4"]}}`, err: "args.cni.ips[0]: 10.9.0.4 is in none of ipam.subnets"},
		{cargs: `{"cni":{"ips":"10.1.0.4"}}`, err: "args.cni.ips: must be a list"},
		{cargs: `{"cni":{"mac":1}}`, err: "args.cni.mac: must be a string"},
		{cargs: `{"cni":[]}`, err: "args.cni: must be an object"},
	} {
		conf := requestConf
		if tc.runtime != "" {
			conf += `,"runtimeConfig":` + tc.runtime
		}
		if tc.cargs != "" {
			conf += `,"args":` + tc.cargs
		}
		c, err := ParseConfig([]byte(conf + "}"))
		if err != nil {
			t.Fatal(err)
		}
		r, err := c.Request(tc.args)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s %s: error %v, want one with %q", tc.runtime, tc.args, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s %s: %v", tc.runtime, tc.args, err)
			continue
		}
		var ips []string
		for _, a := range r.IPs {
			ips = append(ips, a.String())
		}
		if !slices.Equal(ips, tc.ips) || r.MAC.String() != tc.mac {
			t.Errorf("%s %s: ips %v mac %q, want %v %q", tc.runtime, tc.args, ips, r.MAC, tc.ips, tc.mac)
		}
	}
}

// TestRequestErrorKinds: what is wrong in CNI_ARGS is an EnvError (CNI code
// 4, naming CNI_ARGS), what is wrong in runtimeConfig a ConfigError (7), and
// a long value is echoed shortened.
func TestRequestErrorKinds(t *testing.T) {
	c, err := ParseConfig([]byte(requestConf + `,"runtimeConfig":{"ips":["10.9.0.1"]}}`))
	if err != nil {
		t.Fatal(err)
	}
	var ce *ConfigError
	if _, err := c.Request(""); !errors.As(err, &ce) || ce.Field != "runtimeConfig.ips[0]" || cniCodeOf(toCNI(err)) != types.ErrInvalidNetworkConfig {
		t.Errorf("runtimeConfig error %v, want a ConfigError on runtimeConfig.ips[0] with code 7", err)
	}
	c, _ = ParseConfig([]byte(requestConf + "}"))
	long := strings.Repeat("x", 5<<20)
	for _, args := range []string{"IP=" + long, "MAC=" + long, long + "=1", long, "IgnoreUnknown=" + long} {
		_, err := c.Request(args)
		var ee *EnvError
		if !errors.As(err, &ee) || ee.Var != "CNI_ARGS" || cniCodeOf(toCNI(err)) != types.ErrInvalidEnvironmentVariables {
			t.Errorf("CNI_ARGS error %T %.80v, want an EnvError on CNI_ARGS with code 4", err, err)
		}
		if err != nil && len(err.Error()) > 400 {
			t.Errorf("error of %d bytes for a %d-byte CNI_ARGS", len(err.Error()), len(args))
		}
	}
}

// refArgs is what a reference plugin would load CNI_ARGS into.
type refArgs struct {
	types.CommonArgs
	IP                         types.UnmarshallableString
	MAC                        types.UnmarshallableString
	K8S_POD_NAMESPACE          types.UnmarshallableString
	K8S_POD_NAME               types.UnmarshallableString
	K8S_POD_INFRA_CONTAINER_ID types.UnmarshallableString
	K8S_POD_UID                types.UnmarshallableString
}

// FuzzRequest: whatever a runtime sends as configuration and CNI_ARGS,
// Request gives a request or a typed error, never panics; an accepted
// request keeps the allocator's rules (in the pool, one per subnet, a
// unicast MAC); and CNI_ARGS is read as types.LoadArgs reads it: what nsnet
// accepts LoadArgs accepts with the same IP and MAC, and what LoadArgs
// accepts without a repeated key nsnet accepts.
func FuzzRequest(f *testing.F) {
	for _, s := range [][2]string{
		{requestConf + "}", "IgnoreUnknown=1;K8S_POD_NAME=c;IP=10.1.0.7;MAC=c2:11:22:33:44:55"},
		{requestConf + "}", "IP=fd01::7,10.1.0.7/24"},
		{requestConf + `,"runtimeConfig":{"ips":["10.1.0.9/24","fd01::9"],"mac":"c2:00:00:00:00:01"}}`, "IP=10.1.0.9"},
		{`{"cniVersion":"1.0.0","name":"n","ipam":{"type":"host-local","subnet":"10.2.0.0/24"},"runtimeConfig":{"ips":["10.2.0.7"]}}`, "IP=10.2.0.8"},
		{requestConf + "}", "IgnoreUnknown=0;x=y"},
		{requestConf + "}", "IP=10.1.0.7;IP=10.1.0.7;"},
		{requestConf + `,"args":{"cni":{"ips":["10.1.0.4/24"],"mac":"c2:00:00:00:00:04"}}}`, "IP=10.1.0.5"},
	} {
		f.Add([]byte(s[0]), s[1])
	}
	f.Fuzz(func(t *testing.T, raw []byte, args string) {
		e, perr := parseCNIArgs(args)
		if !strings.Contains(args, "CommonArgs") { // a struct field LoadArgs cannot fill
			var ref refArgs
			lerr := types.LoadArgs(args, &ref)
			if perr == nil && (lerr != nil || string(ref.IP) != e.ip && ref.IP != "" || string(ref.MAC) != e.mac && ref.MAC != "") {
				t.Fatalf("CNI_ARGS %q: nsnet reads ip %q mac %q, LoadArgs %+v, %v", args, e.ip, e.mac, ref, lerr)
			}
			if perr != nil && lerr == nil && !repeatedKey(args) {
				t.Fatalf("CNI_ARGS %q: nsnet refuses (%v), LoadArgs accepts", args, perr)
			}
		}
		c, err := ParseConfig(raw)
		if err != nil {
			return
		}
		r, err := c.Request(args)
		if err != nil {
			var cfg *ConfigError
			var env *EnvError
			if !errors.As(err, &cfg) && !errors.As(err, &env) {
				t.Fatalf("untyped error %T: %v", err, err)
			}
			if len(err.Error()) > 1000 {
				t.Fatalf("error of %d bytes", len(err.Error()))
			}
			return
		}
		if perr != nil {
			t.Fatalf("CNI_ARGS %q refused by the parser (%v) but the request passed", args, perr)
		}
		if r.MAC != nil && (len(r.MAC) != 6 || r.MAC[0]&1 != 0) {
			t.Fatalf("accepted MAC %s", r.MAC)
		}
		if !c.IPAM.Builtin() {
			return
		}
		seen := map[netip.Prefix]bool{}
		for _, a := range r.IPs {
			i := slices.IndexFunc(c.IPAM.Subnets, func(p netip.Prefix) bool { return p.Contains(a) })
			if i < 0 || !pool(c.IPAM.Subnets[i]).Contains(a) || seen[c.IPAM.Subnets[i]] {
				t.Fatalf("accepted requested addresses %v for subnets %v", r.IPs, c.IPAM.Subnets)
			}
			seen[c.IPAM.Subnets[i]] = true
		}
	})
}

func repeatedKey(args string) bool {
	seen := map[string]bool{}
	for _, pair := range strings.Split(args, ";") {
		k, _, _ := strings.Cut(pair, "=")
		if seen[k] {
			return true
		}
		seen[k] = true
	}
	return false
}

package cni

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"unicode/utf8"
)

// Request is what the runtime asks of one attachment beyond the network's
// configuration: the container's addresses and its MAC. ADD gives exactly
// these or fails; CHECK holds the attachment to them. DEL, GC and STATUS do
// not read them, so that a request ADD refused never blocks the cleanup a
// runtime runs after a failed ADD (with the same arguments).
//
// A runtime may ask in three ways, and nsnet takes all of them, as the
// reference host-local plugin does:
//
//   - runtimeConfig.ips and runtimeConfig.mac, the "ips" and "mac"
//     capabilities (Podman 4 uses ips for several addresses);
//   - args.cni.ips and args.cni.mac in the configuration (the CNI
//     conventions' "args", read by host-local and bridge);
//   - the IP and MAC keys of CNI_ARGS (Podman 4 sends --ip and
//     --mac-address this way), IP a comma-separated list as the reference
//     static plugin reads it. The conventions say that a plugin that
//     understands args must ignore CNI_ARGS' IP when args.cni.ips is
//     given; nsnet does, and likewise MAC for args.cni.mac.
//
// Otherwise, when several ways ask, they must agree: the same address twice
// is one request, two different addresses of one subnet or two different
// MACs are an error (the reference plugins would silently let one win).
type Request struct {
	// IPs: with the built-in allocator, at most one per subnet, each an
	// address it could hand out; with a delegated IPAM plugin, as asked
	// (the plugin gets the same input, and ADD fails if it gives another).
	IPs []netip.Addr
	// MAC of the container's interface; nil lets the kernel pick.
	MAC net.HardwareAddr
}

// wireRequest is a request as the configuration carries it.
type wireRequest struct {
	IPs []string `json:"ips,omitempty"`
	MAC string   `json:"mac,omitempty"`
}

// asked is one value of one request, with where it came from.
type asked struct {
	value string
	// name says where it came from, when another request refers to it:
	// "runtimeConfig.ips[0]", "CNI_ARGS IP".
	name string
	// fail makes the error for a value that breaks a rule: a
	// ConfigError for what is in the configuration, an EnvError for
	// CNI_ARGS.
	fail func(rule string) error
}

// Request validates what the runtime asks of this attachment: the
// configuration's runtimeConfig and cniArgs, the CNI_ARGS string. Nothing
// is changed before it has passed.
func (c *Config) Request(cniArgs string) (Request, error) {
	env, err := parseCNIArgs(cniArgs)
	if err != nil {
		return Request{}, err
	}
	args, err := decodeArgs(c.args)
	if err != nil {
		return Request{}, err
	}
	var ips, macs []asked
	for _, w := range []struct {
		prefix string
		req    wireRequest
	}{{"runtimeConfig", c.runtime}, {"args.cni", args}} {
		for i, s := range w.req.IPs {
			field := fmt.Sprintf("%s.ips[%d]", w.prefix, i)
			ips = append(ips, asked{value: s, name: field, fail: configFail(field)})
		}
		if m := w.req.MAC; m != "" {
			field := w.prefix + ".mac"
			macs = append(macs, asked{value: m, name: field, fail: configFail(field)})
		}
	}
	if len(args.IPs) > 0 {
		env.ip = ""
	}
	if args.MAC != "" {
		env.mac = ""
	}
	if env.ip != "" {
		pair := "IP=" + env.ip
		fail := envFail(pair)
		for _, s := range strings.Split(env.ip, ",") {
			ips = append(ips, asked{value: strings.TrimSpace(s), name: "CNI_ARGS IP", fail: fail})
		}
	}
	if env.mac != "" {
		macs = append(macs, asked{value: env.mac, name: "CNI_ARGS MAC", fail: envFail("MAC=" + env.mac)})
	}
	var r Request
	if r.MAC, err = requestedMAC(macs); err != nil {
		return Request{}, err
	}
	if r.IPs, err = c.requestedIPs(ips); err != nil {
		return Request{}, err
	}
	return r, nil
}

// decodeArgs reads args.cni.ips and args.cni.mac. Anything else in args is
// other plugins' business; only a cni section of the wrong shape is an
// error, since the conventions reserve it.
func decodeArgs(raw json.RawMessage) (wireRequest, error) {
	var w wireRequest
	var args map[string]json.RawMessage
	if json.Unmarshal(raw, &args) != nil {
		return w, nil // absent, null, or not an object: nothing for nsnet
	}
	var cni map[string]json.RawMessage
	if v, ok := args["cni"]; !ok || string(v) == "null" {
		return w, nil
	} else if err := json.Unmarshal(v, &cni); err != nil {
		return w, &ConfigError{Field: "args.cni", Rule: "must be an object, such as {\"ips\": [\"10.88.0.5/16\"]}"}
	}
	if v, ok := cni["ips"]; ok && string(v) != "null" {
		if err := json.Unmarshal(v, &w.IPs); err != nil {
			return w, &ConfigError{Field: "args.cni.ips", Rule: "must be a list of addresses, such as [\"10.88.0.5/16\", \"fd88::5\"]"}
		}
	}
	if v, ok := cni["mac"]; ok && string(v) != "null" {
		if err := json.Unmarshal(v, &w.MAC); err != nil {
			return w, &ConfigError{Field: "args.cni.mac", Rule: "must be a string, such as \"c2:11:22:33:44:55\""}
		}
	}
	return w, nil
}

func configFail(field string) func(string) error {
	return func(rule string) error { return &ConfigError{Field: field, Rule: rule} }
}

func envFail(pair string) func(string) error {
	return func(rule string) error {
		return &EnvError{Var: "CNI_ARGS", Rule: clip(pair) + ": " + rule}
	}
}

// requestedMAC checks each asked MAC: a unicast Ethernet address, and one
// MAC however many ways ask for it.
func requestedMAC(macs []asked) (net.HardwareAddr, error) {
	var mac net.HardwareAddr
	var from string
	for _, m := range macs {
		a, err := net.ParseMAC(m.value)
		switch {
		case err != nil || len(a) != 6:
			return nil, m.fail(fmt.Sprintf("%s is not a MAC address such as c2:11:22:33:44:55", quoteClipped(m.value)))
		case a[0]&1 != 0:
			return nil, m.fail(fmt.Sprintf("%s is a multicast address: an interface needs a unicast one", a))
		case bytes.Equal(a, make([]byte, 6)):
			return nil, m.fail("00:00:00:00:00:00 is not an interface address")
		case mac != nil && !bytes.Equal(a, mac):
			return nil, m.fail(fmt.Sprintf("%s differs from %s, which asks for %s: an interface has one MAC", a, from, mac))
		}
		mac, from = a, m.name
	}
	return mac, nil
}

// requestedIPs checks each asked address. With the built-in allocator it
// must be one the allocator could hand out (in a subnet, not its network,
// gateway or broadcast address; a prefix length, if given, the subnet's),
// and there is at most one per subnet.
func (c *Config) requestedIPs(ips []asked) ([]netip.Addr, error) {
	var out []netip.Addr
	bySubnet := map[netip.Prefix]asked{}
	for _, ip := range ips {
		a, err := netip.ParseAddr(ip.value)
		bits := -1
		if p, perr := netip.ParsePrefix(ip.value); perr == nil {
			a, bits, err = p.Addr(), p.Bits(), nil
		}
		if err != nil || a.Zone() != "" || a.Is4In6() {
			return nil, ip.fail(fmt.Sprintf("%s is not an address such as 10.88.0.5 or 10.88.0.5/16", quoteClipped(ip.value)))
		}
		if slices.Contains(out, a) {
			continue // asked twice, given once
		}
		if !c.IPAM.Builtin() {
			// The delegated plugin reads the request itself; ADD
			// checks that it honoured it.
			out = append(out, a)
			continue
		}
		var subnet netip.Prefix
		for _, p := range c.IPAM.Subnets {
			if p.Contains(a) {
				subnet = p
			}
		}
		switch {
		case !subnet.IsValid():
			return nil, ip.fail(fmt.Sprintf("%s is in none of ipam.subnets", a))
		case bits >= 0 && bits != subnet.Bits():
			return nil, ip.fail(fmt.Sprintf("%s: the prefix length is the subnet's, /%d", ip.value, subnet.Bits()))
		case a == gatewayOf(subnet):
			return nil, ip.fail(fmt.Sprintf("%s is the gateway of %s", a, subnet))
		case !pool(subnet).Contains(a):
			return nil, ip.fail(fmt.Sprintf("%s is the network or broadcast address of %s", a, subnet))
		}
		if prev, dup := bySubnet[subnet]; dup {
			return nil, ip.fail(fmt.Sprintf("%s is a second address of %s (%s asks for %s): an attachment has one per subnet", a, subnet, prev.name, prev.value))
		}
		bySubnet[subnet] = ip
		out = append(out, a)
	}
	return out, nil
}

// k8sArgs are the CNI_ARGS keys Kubernetes runtimes (and Podman) pass to
// every plugin. nsnet knows them and has no use for them.
var k8sArgs = []string{"K8S_POD_NAMESPACE", "K8S_POD_NAME", "K8S_POD_INFRA_CONTAINER_ID", "K8S_POD_UID"}

// envArgs are the CNI_ARGS values nsnet reads; "" is not given.
type envArgs struct {
	ip, mac string
}

// parseCNIArgs reads CNI_ARGS as the reference plugins do (types.LoadArgs):
// "KEY=VALUE" pairs separated by ';', keys case-sensitive, an empty value
// the same as none, and a key nsnet does not know an error unless
// IgnoreUnknown is 1 or true (in any case). Unlike LoadArgs, a key given
// twice with different values is an error, not the last one winning.
func parseCNIArgs(s string) (envArgs, error) {
	var e envArgs
	if s == "" {
		return e, nil
	}
	fail := func(format string, a ...any) error {
		return &EnvError{Var: "CNI_ARGS", Rule: fmt.Sprintf(format, a...)}
	}
	var unknown []string
	ignore, ignoreSet := false, false
	for _, pair := range strings.Split(s, ";") {
		kv := strings.Split(pair, "=")
		if len(kv) != 2 {
			return e, fail("%s is not a KEY=VALUE pair (pairs are separated by ';', and a value cannot contain '=')", quoteClipped(pair))
		}
		k, v := kv[0], kv[1]
		switch k {
		case "IgnoreUnknown":
			var b bool
			switch strings.ToLower(v) {
			case "1", "true":
				b = true
			case "0", "false":
			default:
				return e, fail("IgnoreUnknown=%s: not 1, true, 0 or false", clip(v))
			}
			if ignoreSet && b != ignore {
				return e, fail("IgnoreUnknown is given twice, with different values")
			}
			ignore, ignoreSet = b, true
		case "IP", "MAC":
			p := &e.ip
			if k == "MAC" {
				p = &e.mac
			}
			if *p != "" && v != "" && *p != v {
				return e, fail("%s is given twice, as %s and %s", k, quoteClipped(*p), quoteClipped(v))
			}
			if v != "" {
				*p = v
			}
		default:
			if !slices.Contains(k8sArgs, k) {
				unknown = append(unknown, k)
			}
		}
	}
	if len(unknown) > 0 && !ignore {
		names := make([]string, 0, 3)
		for _, k := range unknown[:min(len(unknown), 3)] {
			names = append(names, quoteClipped(k))
		}
		more := ""
		if len(unknown) > 3 {
			more = fmt.Sprintf(" and %d more", len(unknown)-3)
		}
		return e, fail("unknown key %s%s: nsnet reads IP, MAC, IgnoreUnknown and %s; pass IgnoreUnknown=1 with keys meant for other plugins", strings.Join(names, ", "), more, strings.Join(k8sArgs, ", "))
	}
	return e, nil
}

// clip shortens a value from outside to what an error line should echo.
func clip(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	n := max - 3
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}

func quoteClipped(s string) string { return fmt.Sprintf("%q", clip(s)) }

// checkRequest fails when the recorded attachment is not what the runtime
// asks for now (CHECK gets the same arguments as the ADD).
func checkRequest(req Request, r *record) error {
	for _, a := range req.IPs {
		if !slices.ContainsFunc(r.IPs, func(ip recordIP) bool { return ip.Addr.Addr() == a }) {
			return &CheckError{What: fmt.Sprintf("the runtime asks for address %s, which the attachment does not have", a)}
		}
	}
	if req.MAC != nil {
		mac, err := net.ParseMAC(r.MAC)
		switch {
		case r.MAC == "":
			return &CheckError{What: fmt.Sprintf("the runtime asks for MAC %s, the attachment was made without one", req.MAC)}
		case err != nil || !bytes.Equal(mac, req.MAC):
			return &CheckError{What: fmt.Sprintf("the runtime asks for MAC %s, the attachment was made with %s", req.MAC, r.MAC)}
		}
	}
	return nil
}

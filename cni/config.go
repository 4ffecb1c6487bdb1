package cni

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/nsnet/nsnet/kernel"
)

// Mode is how the container is wired to the host.
type Mode string

const (
	// ModePTP gives each container its own veth to the host, with host
	// routes to the container's /32 and /128, like the reference ptp.
	ModePTP Mode = "ptp"
	// ModeBridge attaches each container's veth to a bridge that carries
	// the gateway addresses, like the reference bridge plugin.
	ModeBridge Mode = "bridge"
)

// BuiltinIPAM is the ipam.type that selects nsnet's own allocator instead of
// delegating to an IPAM plugin binary.
const BuiltinIPAM = "nsnet"

// Defaults for optional fields.
const (
	DefaultBridge  = "nsnet0"
	DefaultDataDir = "/var/lib/cni/nsnet"
)

// Config is a validated network configuration.
type Config struct {
	CNIVersion string
	Network    string
	Mode       Mode
	Bridge     string // bridge mode only
	// Gateway puts the gateway addresses on the bridge (bridge mode);
	// ptp always puts them on the host end of each veth.
	Gateway bool
	// Hairpin puts the container's bridge port in hairpin mode (bridge
	// mode), as the reference bridge plugin's hairpinMode does.
	Hairpin    bool
	MTU        int // 0: kernel default
	Masquerade bool
	DataDir    string
	// BackgroundDelete makes DEL return once the attachment is inert
	// (the host end down, so no traffic and no routes; addresses freed)
	// and leaves destroying the veth pair, which waits about 20 ms in the
	// kernel, to a detached process. See Plugin.Reap.
	BackgroundDelete bool
	IPAM             IPAMConfig
	DNS              types.DNS

	// runtime is what runtimeConfig asks of the attachment, and args the
	// configuration's "args" as received; Request reads both.
	runtime wireRequest
	args    json.RawMessage

	// PrevResult is the result of the previous ADD (CHECK, DEL), if any.
	PrevResult *types100.Result
	// ValidAttachments is the GC keep-list (cni.dev/valid-attachments);
	// nil when the configuration has none, non-nil (maybe empty) when it
	// has the key, even as null.
	ValidAttachments []types.GCAttachment

	// Raw is the configuration exactly as received, for delegation.
	Raw []byte
}

// IPAMConfig selects and configures address management.
type IPAMConfig struct {
	// Type is BuiltinIPAM or the name of an IPAM plugin binary.
	Type string
	// Subnets of the built-in allocator: at most one per family.
	Subnets []netip.Prefix
	// Routes the built-in allocator hands out; an empty gateway means the
	// gateway of the route's family.
	Routes []Route
}

// Builtin reports whether nsnet allocates addresses itself.
func (c IPAMConfig) Builtin() bool { return c.Type == BuiltinIPAM }

// Route is a route installed inside the container.
type Route struct {
	Dst netip.Prefix `json:"dst"`
	GW  netip.Addr   `json:"gw,omitzero"` // zero: via the family's gateway
}

// wireConf is the JSON shape of the configuration.
type wireConf struct {
	types.PluginConf
	Mode        string `json:"mode,omitempty"`
	Bridge      string `json:"bridge,omitempty"`
	IsGateway   *bool  `json:"isGateway,omitempty"`
	MTU         int    `json:"mtu,omitempty"`
	IPMasq      bool   `json:"ipMasq,omitempty"`
	DataDir     string `json:"dataDir,omitempty"`
	HairpinMode bool   `json:"hairpinMode,omitempty"`
	// BackgroundDelete: see Config.BackgroundDelete.
	BackgroundDelete bool `json:"backgroundDelete,omitempty"`
	// RuntimeConfig carries what the runtime passes for the capabilities
	// the configuration declares; nsnet reads "ips" and "mac" (see
	// Request), and leaves the rest (portMappings, bandwidth, ...) to the
	// plugins they are for.
	RuntimeConfig wireRequest `json:"runtimeConfig"`
	// Args is the runtime's optional metadata; nsnet reads args.cni.ips
	// and args.cni.mac (see Request) and ignores the rest, as the
	// conventions ask.
	Args json.RawMessage `json:"args,omitempty"`
}

type wireIPAM struct {
	Type    string       `json:"type"`
	Subnets []string     `json:"subnets"`
	Routes  *[]wireRoute `json:"routes"`
}

type wireRoute struct {
	Dst string `json:"dst"`
	GW  string `json:"gw,omitempty"`
}

// validAttachmentsKey carries GC's keep-list. libcni has sent it since GC
// exists (v1.2.0); the spec's text called it cni.dev/attachments until
// v1.2.3, and libcni v1.2.3 sends both.
const validAttachmentsKey = "cni.dev/valid-attachments"

// knownKey reports the top-level keys nsnet reads, plus those the spec lets
// a runtime insert. Anything else is refused, so that a misspelt option
// ("ipmasq") fails loudly instead of being ignored.
func knownKey(k string) bool {
	switch k {
	case "cniVersion", "name", "type", "capabilities", "ipam", "dns",
		"prevResult", "runtimeConfig", "args",
		"mode", "bridge", "isGateway", "hairpinMode", "mtu", "ipMasq", "dataDir", "backgroundDelete":
		return true
	}
	return strings.HasPrefix(k, "cni.dev/")
}

func builtinIPAMKey(k string) bool {
	return k == "type" || k == "subnets" || k == "routes"
}

// cniNameRE is the spec's rule for network names and container IDs. Both
// become parts of state file names, so the rule is also what keeps those
// paths inside the state directory.
var cniNameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$`)

// ParseConfig decodes and validates a network configuration. Nothing is
// changed anywhere before a configuration has passed it.
func ParseConfig(raw []byte) (*Config, error) {
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(raw, &keys); err != nil {
		return nil, &DecodeError{What: "network configuration", Err: err}
	}
	for _, k := range sortedKeys(keys) {
		if !knownKey(k) {
			return nil, &UnsupportedFieldError{Field: clip(k), Value: shorten(keys[k])}
		}
	}
	var w wireConf
	if err := json.Unmarshal(raw, &w); err != nil {
		return nil, &DecodeError{What: "network configuration", Err: err}
	}
	c := &Config{
		CNIVersion:       w.CNIVersion,
		Network:          w.Name,
		Mode:             Mode(w.Mode),
		Bridge:           w.Bridge,
		Gateway:          true,
		MTU:              w.MTU,
		Masquerade:       w.IPMasq,
		DataDir:          w.DataDir,
		BackgroundDelete: w.BackgroundDelete,
		Hairpin:          w.HairpinMode,
		DNS:              w.DNS,
		ValidAttachments: w.ValidAttachments,
		runtime:          w.RuntimeConfig,
		args:             w.Args,
		Raw:              raw,
	}
	if _, ok := keys[validAttachmentsKey]; ok && c.ValidAttachments == nil {
		c.ValidAttachments = []types.GCAttachment{}
	}
	if err := checkName(w.Name); err != nil {
		return nil, err
	}
	if c.Mode == "" {
		c.Mode = ModeBridge
	}
	switch c.Mode {
	case ModeBridge:
		if c.Bridge == "" {
			c.Bridge = DefaultBridge
		}
		if err := kernel.ValidateLinkName(c.Bridge); err != nil {
			return nil, &ConfigError{Field: "bridge", Rule: err.Error()}
		}
		if w.IsGateway != nil {
			c.Gateway = *w.IsGateway
		}
	case ModePTP:
		if w.Bridge != "" {
			return nil, &ConfigError{Field: "bridge", Rule: `only used with "mode": "bridge"`}
		}
		if w.IsGateway != nil {
			return nil, &ConfigError{Field: "isGateway", Rule: `only used with "mode": "bridge" (ptp always routes through the host)`}
		}
		if w.HairpinMode {
			return nil, &ConfigError{Field: "hairpinMode", Rule: `only used with "mode": "bridge" (a ptp link has no bridge to turn traffic back)`}
		}
	default:
		return nil, &ConfigError{Field: "mode", Rule: fmt.Sprintf("%s is not a mode: use %q or %q", quoteClipped(w.Mode), ModePTP, ModeBridge)}
	}
	if c.MTU != 0 {
		if err := kernel.ValidateMTU(c.MTU, false); err != nil {
			return nil, &ConfigError{Field: "mtu", Rule: err.Error()}
		}
	}
	if c.DataDir == "" {
		c.DataDir = DefaultDataDir
	}
	if !filepath.IsAbs(c.DataDir) {
		return nil, &ConfigError{Field: "dataDir", Rule: fmt.Sprintf("%s must be an absolute path", quoteClipped(c.DataDir))}
	}
	c.DataDir = filepath.Clean(c.DataDir)
	if err := parseIPAM(keys["ipam"], c); err != nil {
		return nil, err
	}
	if c.IPAM.Builtin() {
		for _, p := range c.IPAM.Subnets {
			if p.Addr().Is6() && c.MTU != 0 {
				if err := kernel.ValidateMTU(c.MTU, true); err != nil {
					return nil, &ConfigError{Field: "mtu", Rule: err.Error()}
				}
			}
		}
	}
	if w.RawPrevResult != nil {
		pc := w.PluginConf
		if err := version.ParsePrevResult(&pc); err != nil {
			return nil, &DecodeError{What: "prevResult", Err: err}
		}
		r, err := types100.NewResultFromResult(pc.PrevResult)
		if err != nil {
			return nil, &DecodeError{What: "prevResult", Err: err}
		}
		c.PrevResult = r
	}
	return c, nil
}

func checkName(name string) error {
	switch {
	case name == "":
		return &ConfigError{Field: "name", Rule: "required"}
	case !cniNameRE.MatchString(name):
		return &ConfigError{Field: "name", Rule: fmt.Sprintf("%s must start with a letter or digit and contain only letters, digits, '_', '.' and '-'", quoteClipped(name))}
	case len(name) > 200:
		return &ConfigError{Field: "name", Rule: "must be at most 200 bytes (it names a state directory)"}
	}
	return nil
}

func parseIPAM(raw json.RawMessage, c *Config) error {
	if len(raw) == 0 || string(raw) == "null" {
		return &ConfigError{Field: "ipam", Rule: fmt.Sprintf(`required: {"type": %q, "subnets": [...]} for the built-in allocator, or an IPAM plugin such as {"type": "host-local", ...}`, BuiltinIPAM)}
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(raw, &keys); err != nil {
		return &DecodeError{What: "ipam", Err: err}
	}
	var w wireIPAM
	if err := json.Unmarshal(raw, &w); err != nil {
		return &DecodeError{What: "ipam", Err: err}
	}
	c.IPAM.Type = w.Type
	switch {
	case w.Type == "":
		return &ConfigError{Field: "ipam.type", Rule: fmt.Sprintf("required: %q or the name of an IPAM plugin", BuiltinIPAM)}
	case w.Type != BuiltinIPAM:
		// A delegated plugin's section is its own business; only the
		// binary name must be one, since it is searched in CNI_PATH.
		if strings.ContainsAny(w.Type, "/\x00") || w.Type == "." || w.Type == ".." {
			return &ConfigError{Field: "ipam.type", Rule: fmt.Sprintf("%s is not a plugin name", quoteClipped(w.Type))}
		}
		return nil
	}
	for _, k := range sortedKeys(keys) {
		if !builtinIPAMKey(k) {
			return &UnsupportedFieldError{Field: "ipam." + clip(k), Value: shorten(keys[k])}
		}
	}
	if len(w.Subnets) == 0 {
		return &ConfigError{Field: "ipam.subnets", Rule: "required: one IPv4 and/or one IPv6 subnet, e.g. [\"10.88.0.0/16\", \"fd88::/64\"]"}
	}
	if len(w.Subnets) > 2 {
		return &ConfigError{Field: "ipam.subnets", Rule: "at most one IPv4 and one IPv6 subnet"}
	}
	for i, s := range w.Subnets {
		field := fmt.Sprintf("ipam.subnets[%d]", i)
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return &ConfigError{Field: field, Rule: fmt.Sprintf("%s is not a CIDR prefix", quoteClipped(s))}
		}
		if p.Addr().Is4In6() || p.Addr().Zone() != "" {
			return &ConfigError{Field: field, Rule: fmt.Sprintf("%s: use plain IPv4 or IPv6 notation", quoteClipped(s))}
		}
		if p.Masked() != p {
			return &ConfigError{Field: field, Rule: fmt.Sprintf("%s has host bits set (did you mean %s?)", quoteClipped(s), p.Masked())}
		}
		if max := p.Addr().BitLen() - 2; p.Bits() > max {
			return &ConfigError{Field: field, Rule: fmt.Sprintf("%s is too small: a subnet needs a gateway and at least one container address (at most /%d)", p, max)}
		}
		for j, q := range c.IPAM.Subnets {
			if q.Addr().Is4() == p.Addr().Is4() {
				return &ConfigError{Field: field, Rule: fmt.Sprintf("%s is a second IPv%d subnet (ipam.subnets[%d] is %s): at most one per family", p, family(p.Addr()), j, q)}
			}
		}
		c.IPAM.Subnets = append(c.IPAM.Subnets, p)
	}
	if w.Routes == nil {
		// No routes given: a default route per family, the common case
		// for containers.
		for _, p := range c.IPAM.Subnets {
			c.IPAM.Routes = append(c.IPAM.Routes, Route{Dst: netip.PrefixFrom(zero(p.Addr()), 0)})
		}
		return nil
	}
	for i, wr := range *w.Routes {
		field := fmt.Sprintf("ipam.routes[%d]", i)
		dst, err := netip.ParsePrefix(wr.Dst)
		if err != nil {
			return &ConfigError{Field: field + ".dst", Rule: fmt.Sprintf("%s is not a CIDR prefix", quoteClipped(wr.Dst))}
		}
		r := Route{Dst: dst.Masked()}
		if wr.GW != "" {
			gw, err := netip.ParseAddr(wr.GW)
			if err != nil {
				return &ConfigError{Field: field + ".gw", Rule: fmt.Sprintf("%s is not an IP address", quoteClipped(wr.GW))}
			}
			if gw.Is4() != dst.Addr().Is4() {
				return &ConfigError{Field: field + ".gw", Rule: fmt.Sprintf("%s and destination %s are of different families", gw, dst)}
			}
			r.GW = gw
		}
		if subnetOf(c.IPAM.Subnets, dst.Addr().Is6()) == (netip.Prefix{}) {
			return &ConfigError{Field: field + ".dst", Rule: fmt.Sprintf("%s is IPv%d but ipam.subnets has no IPv%d subnet", dst, family(dst.Addr()), family(dst.Addr()))}
		}
		c.IPAM.Routes = append(c.IPAM.Routes, r)
	}
	return nil
}

func subnetOf(subnets []netip.Prefix, v6 bool) netip.Prefix {
	for _, p := range subnets {
		if p.Addr().Is6() == v6 {
			return p
		}
	}
	return netip.Prefix{}
}

func family(a netip.Addr) int {
	if a.Is4() {
		return 4
	}
	return 6
}

func zero(a netip.Addr) netip.Addr {
	if a.Is4() {
		return netip.IPv4Unspecified()
	}
	return netip.IPv6Unspecified()
}

func sortedKeys(m map[string]json.RawMessage) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func shorten(v json.RawMessage) string {
	var b bytes.Buffer
	if json.Compact(&b, v) != nil {
		b.Reset()
		b.Write(v)
	}
	s := b.String()
	if len(s) > 64 {
		s = s[:61] + "..."
	}
	return s
}

// prefixOf converts a CNI net.IPNet to a netip.Prefix (the address keeps its
// host bits).
func prefixOf(n net.IPNet) (netip.Prefix, bool) {
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	a = a.Unmap()
	ones, bits := n.Mask.Size()
	if bits == 0 || (a.Is4() && bits != 32 && bits != 128) {
		return netip.Prefix{}, false
	}
	if a.Is4() && bits == 128 {
		ones -= 96
	}
	if ones < 0 {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(a, ones), true
}

func ipNetOf(p netip.Prefix) net.IPNet {
	return net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func ipOf(a netip.Addr) net.IP {
	if !a.IsValid() {
		return nil
	}
	return a.AsSlice()
}

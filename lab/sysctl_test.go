package lab_test

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/nsnet/nsnet/internal/sandbox"
	"github.com/nsnet/nsnet/lab"
)

// sysctlLab is a lab whose node a has the sysctls given (a YAML flow
// mapping) and one interface, eth0; the host has h0.
func sysctlLab(node, host string) string {
	return "lab: sc\nnodes:\n  a: {sysctls: " + node + "}\n  host: {sysctls: " + host + "}\n" +
		"links:\n  - {a: {node: a, name: eth0}, b: {node: host, name: h0}}\n"
}

// badSysctlLabs break the rules only the kernel can tell (see
// lab/sysctl.go): each must be refused by CheckSysctls, and so by plan and
// up, with every message, before anything changes.
func badSysctlLabs() []badLab {
	return []badLab{
		{"global, read-only in a namespace", sysctlLab("{net.core.rmem_max: 8388608}", "{}"),
			[]string{`bad.yaml:3:17: nodes.a.sysctls.net.core.rmem_max: net.core.rmem_max cannot be set in a network namespace: the kernel shows it there read-only (a value of the whole machine, or one it only reports)`}},
		{"global, absent from a namespace", sysctlLab("{}", "{net.core.netdev_max_backlog: 5000}"),
			[]string{`bad.yaml:4:20: nodes.host.sysctls.net.core.netdev_max_backlog: net.core.netdev_max_backlog is global: the kernel keeps one value for the whole machine, not one per network namespace, so a lab may not set it`}},
		{"no such sysctl", sysctlLab("{net.ipv4.no_such_sysctl: 1}", "{}"),
			[]string{`bad.yaml:3:17: nodes.a.sysctls.net.ipv4.no_such_sysctl: no such sysctl: net.ipv4.no_such_sysctl (the kernel has no /proc/sys/net/ipv4/no_such_sysctl)`}},
		{"a directory", sysctlLab("{net.ipv4.conf: 1}", "{}"),
			[]string{`bad.yaml:3:17: nodes.a.sysctls.net.ipv4.conf: net.ipv4.conf is a directory of sysctls, not one`}},
		{"an interface the node does not have", sysctlLab("{net.ipv4.conf.eth9.rp_filter: 1}", "{net.ipv6.conf.eth0.forwarding: 1}"),
			[]string{
				`bad.yaml:3:17: nodes.a.sysctls.net.ipv4.conf.eth9.rp_filter: net.ipv4.conf.eth9.rp_filter names interface "eth9", which node a does not have: per-interface keys name all, default, lo or an interface the lab makes in the node (its interfaces: eth0)`,
				`bad.yaml:4:20: nodes.host.sysctls.net.ipv6.conf.eth0.forwarding: net.ipv6.conf.eth0.forwarding names interface "eth0", which node host does not have: per-interface keys name all, default, lo or an interface the lab makes in the node (its interfaces: h0)`,
			}},
		{"no such key for an interface", sysctlLab("{net.ipv4.conf.eth0.no_such: 1, net.ipv4.neigh.eth0.gc_thresh1: 1}", "{}"),
			[]string{
				`bad.yaml:3:17: nodes.a.sysctls.net.ipv4.conf.eth0.no_such: no such sysctl for an interface: net.ipv4.conf.eth0.no_such (the kernel has no /proc/sys/net/ipv4/conf/default/no_such)`,
				// In default, the template, but not in a device's own directory.
				`bad.yaml:3:48: nodes.a.sysctls.net.ipv4.neigh.eth0.gc_thresh1: no such sysctl for an interface: net.ipv4.neigh.eth0.gc_thresh1 (the kernel has no /proc/sys/net/ipv4/neigh/lo/gc_thresh1)`,
			}},
		{"read-only everywhere", sysctlLab("{net.ipv4.conf.all.mc_forwarding: 1}", "{}"),
			[]string{`bad.yaml:3:17: nodes.a.sysctls.net.ipv4.conf.all.mc_forwarding: net.ipv4.conf.all.mc_forwarding cannot be set in a network namespace: the kernel shows it there read-only (a value of the whole machine, or one it only reports)`}},
		{"a value the kernel refuses", sysctlLab("{net.ipv4.ip_forward: yes, net.ipv4.conf.eth0.rp_filter: x}", "{net.core.somaxconn: -}"),
			[]string{
				`bad.yaml:3:38: nodes.a.sysctls.net.ipv4.ip_forward: the kernel refuses "yes" for net.ipv4.ip_forward: invalid argument`,
				`bad.yaml:3:73: nodes.a.sysctls.net.ipv4.conf.eth0.rp_filter: the kernel refuses "x" for net.ipv4.conf.eth0.rp_filter: invalid argument`,
				`bad.yaml:4:40: nodes.host.sysctls.net.core.somaxconn: the kernel refuses "-" for net.core.somaxconn: invalid argument`,
			}},
	}
}

// TestCheckSysctls: the rule comes from the kernel, and holds on this one:
// net.core.somaxconn is kept per namespace, net.core.rmem_max is the
// machine's (shown read-only in a namespace on recent kernels such as 6.18; absent on older ones,
// which gives the "global" message instead); keys of interfaces the lab
// makes are checked against conf/default.
func TestCheckSysctls(t *testing.T) {
	sandbox.Require(t)
	good := parseAs(t, sysctlLab(
		"{net.core.somaxconn: 1024, net.ipv4.ip_forward: 1, net.ipv4.conf.all.rp_filter: 2, net.ipv4.conf.eth0.rp_filter: 0, net.ipv6.conf.eth0.accept_dad: 0, net.ipv4.neigh.eth0.base_reachable_time_ms: 5000, net.ipv4.conf.lo.accept_local: 1}",
		"{net.ipv4.conf.h0.forwarding: 1}"))
	if err := lab.CheckSysctls(good); err != nil {
		t.Errorf("per-namespace keys refused: %v", err)
	}
	before, _ := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
	for _, bl := range badSysctlLabs() {
		t.Run(bl.name, func(t *testing.T) {
			// The initial namespace, which the sandbox hides, has the
			// machine's keys.
			err := lab.CheckSysctlsOnMachine(parseAs(t, bl.file), map[string]bool{"net/core/netdev_max_backlog": true})
			if err == nil {
				t.Fatal("accepted")
			}
			var fe *lab.FieldError
			if !errors.Is(err, lab.ErrInvalid) || !errors.As(err, &fe) {
				t.Errorf("not a located lab.ErrInvalid: %v", err)
			}
			if got := err.Error(); got != strings.Join(bl.want, "\n") {
				t.Errorf("messages:\n%s\nwant:\n%s", got, strings.Join(bl.want, "\n"))
			}
		})
	}
	// Trying values in the scratch namespace changed nothing here.
	if after, _ := os.ReadFile("/proc/sys/net/ipv4/ip_forward"); string(after) != string(before) {
		t.Errorf("net.ipv4.ip_forward changed from %q to %q", before, after)
	}
}

func parseAs(t *testing.T, text string) *lab.Lab {
	t.Helper()
	l, err := lab.Parse("bad.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// bigSysctlLab has n nodes with three sysctls each (one of its interface),
// the way a lab of routers sets forwarding.
func bigSysctlLab(n int) string {
	var b strings.Builder
	b.WriteString("lab: big\nnodes:\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "  n%d: {sysctls: {net.ipv4.ip_forward: 1, net.ipv6.conf.all.forwarding: 1, net.ipv4.conf.eth0.rp_filter: 0}}\n", i)
	}
	b.WriteString("bridges: {br: {subnets: [10.0.0.0/16]}}\nlinks:\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "  - {a: {node: n%d, name: eth0, addresses: [auto]}, b: {bridge: br}}\n", i)
	}
	return b.String()
}

// BenchmarkCheckSysctls: what the kernel check adds to plan and up, beside
// its anchor, parsing the same file (BenchmarkParseSysctlLab).
func BenchmarkCheckSysctls(b *testing.B) {
	sandbox.Require(b)
	l, err := lab.Parse("big.yaml", []byte(bigSysctlLab(1000)))
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if err := lab.CheckSysctls(l); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseSysctlLab(b *testing.B) {
	text := []byte(bigSysctlLab(1000))
	for b.Loop() {
		if _, err := lab.Parse("big.yaml", text); err != nil {
			b.Fatal(err)
		}
	}
}

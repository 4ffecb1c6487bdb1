package cli_test

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/nsnet/nsnet/cli"
)

func TestParseWalkthrough(t *testing.T) {
	for _, tc := range []struct {
		line string
		want string // fmt of the interesting fields
	}{
		{"link add veth0 type veth peer name veth1", "link add veth0 veth1 veth"},
		{"link add name veth0 type veth peer veth1", "link add veth0 veth1 veth"},
		{"l add br0 type bridge mtu 9000", "link add br0  bridge"},
		{"-br link", "link show    brief"},
		{"--brief link", "link show    brief"},
		{"-j -br l", "link show    brief json"},
		{"netns add direct_netns", "netns add direct_netns  "},
		{"netns list", "netns list   "},
		{"netns", "netns list   "},
		{"netns exec direct_netns nsnet --br link", "netns exec direct_netns  "},
		{"link set veth1 netns direct_netns", "link set veth1  "},
		{"-n direct_netns -br link", "link show    brief ns=direct_netns"},
		{"a add 10.200.0.2/24 dev veth0", "addr add veth0  "},
		{"address add 10.200.0.2/24 dev veth0", "addr add veth0  "},
		{"addr del fd00::1/64 dev veth0", "addr del veth0  "},
		{"link set veth0 up", "link set veth0  "},
		{"ping -c 1 10.200.0.3", "ping    "},
		{"route add default via 10.0.0.1", "route add   "},
		{"netns del direct_netns", "netns del direct_netns  "},
	} {
		c, err := cli.Parse(strings.Fields(tc.line))
		if err != nil {
			t.Errorf("%q: %v", tc.line, err)
			continue
		}
		got := fmt.Sprintf("%s %s %s %s %s", c.Object, c.Verb, c.Name, c.Peer, c.Type)
		if c.Opts.Brief {
			got += " brief"
		}
		if c.Opts.JSON {
			got += " json"
		}
		if c.Opts.NS != "" {
			got += " ns=" + c.Opts.NS
		}
		if got != tc.want {
			t.Errorf("%q: got %q, want %q", tc.line, got, tc.want)
		}
	}
}

func TestParseValues(t *testing.T) {
	c, err := cli.Parse(strings.Fields("a add 10.200.0.2/24 dev veth0"))
	if err != nil || c.Prefix != netip.MustParsePrefix("10.200.0.2/24") {
		t.Errorf("prefix keeps host bits: %v %v", c.Prefix, err)
	}
	c, err = cli.Parse(strings.Fields("ping -c1 -W 0.5 fd00::3"))
	if err != nil || c.Count != 1 || c.Timeout != 500*time.Millisecond || c.Addr != netip.MustParseAddr("fd00::3") {
		t.Errorf("ping: %+v %v", c, err)
	}
	c, err = cli.Parse([]string{"netns", "exec", "x", "--", "sh", "-c", "echo hi"})
	if err != nil || strings.Join(c.Argv, "|") != "sh|-c|echo hi" {
		t.Errorf("exec argv: %q %v", c.Argv, err)
	}
	c, err = cli.Parse(strings.Fields("link set veth0 down mtu 1400 master br0"))
	if err != nil || c.Up == nil || *c.Up || c.MTU != 1400 || c.Master != "br0" {
		t.Errorf("link set: %+v %v", c, err)
	}
	c, err = cli.Parse(strings.Fields("serve tcp :5432"))
	if err != nil || c.Proto != "tcp" || c.Listen != ":5432" {
		t.Errorf("serve on every address: %+v %v", c, err)
	}
	c, err = cli.Parse(strings.Fields("route add 10.1.0.0/16 via 10.0.0.1 dev eth0"))
	if err != nil || c.Prefix != netip.MustParsePrefix("10.1.0.0/16") || c.Gateway != netip.MustParseAddr("10.0.0.1") || c.Name != "eth0" {
		t.Errorf("route: %+v %v", c, err)
	}
}

func TestParseErrorsAreUsageErrors(t *testing.T) {
	for _, line := range []string{
		"link add", "link add v0", "link add v0 type veth peer name v0", "link set", "link set v0",
		"link frob", "addr add", "addr add 10.0.0.1/8", "addr add dev x", "netns add", "netns exec x",
		"ping", "ping 1.2.3.4 5.6.7.8", "ping -W 0 1.2.3.4", "route add", "route add 10.0.0.0/8",
		"serve http nowhere", "serve gopher 127.0.0.1:1", "serve tcp :0", "serve tcp :http", "serve tcp :65536", "fetch ftp://x", "-n", "demo now",
	} {
		_, err := cli.Parse(strings.Fields(line))
		var ue *cli.UsageError
		if !errors.As(err, &ue) {
			t.Errorf("%q: got %v, want a *UsageError", line, err)
		}
	}
}

func TestParsePrefix(t *testing.T) {
	for in, want := range map[string]string{
		"10.200.0.2/24": "10.200.0.2/24",
		"10.200.0.2":    "10.200.0.2/32",
		"fd00::1/64":    "fd00::1/64",
		"fd00::1":       "fd00::1/128",
	} {
		p, err := cli.ParsePrefix(in)
		if err != nil || p.String() != want {
			t.Errorf("ParsePrefix(%q) = %v, %v; want %s", in, p, err, want)
		}
	}
	for _, in := range []string{"", "10.0.0.1/33", "fe80::1%eth0", "::ffff:10.0.0.1/120", "10.0.0/8", "x"} {
		if _, err := cli.ParsePrefix(in); err == nil {
			t.Errorf("ParsePrefix(%q) accepted", in)
		}
	}
}

// FuzzParse checks that no command line crashes the parser and that every
// accepted name is one the kernel and /run/netns accept.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"link add veth0 type veth peer name veth1",
		"-br link", "-n direct_netns -br link", "netns exec direct_netns nsnet --br link",
		"a add 10.200.0.2/24 dev veth0", "ping -c 1 10.200.0.3", "route add default via fd00::1",
		"link set veth1 netns direct_netns", "netns add ../../etc",
		"status -j", "check lab.yaml -j --all --timeout=0.5", "link s veth0 up", "netns l", "l ad v0 type veth peer v1",
		"exec lab node -- sh -c true", "help link add", "-j version", "st", "up x.yaml -br", "sandbox -- sh",
	} {
		f.Add(strings.ReplaceAll(s, " ", "\x00"))
	}
	f.Fuzz(func(t *testing.T, line string) {
		args := strings.Split(line, "\x00")
		c, err := cli.Parse(args)
		if err != nil {
			var ue *cli.UsageError
			if !errors.As(err, &ue) {
				t.Fatalf("non-usage error %T: %v", err, err)
			}
			return
		}
		for _, n := range []string{c.Opts.NS, c.SetNS} {
			if n != "" && (strings.Contains(n, "/") || n == "." || n == "..") {
				t.Fatalf("accepted namespace name %q", n)
			}
		}
		if c.Object == "netns" && c.Verb != "list" && (c.Name == "" || strings.Contains(c.Name, "/")) {
			t.Fatalf("accepted namespace name %q", c.Name)
		}
		for _, n := range []string{c.Peer, c.Master} {
			if len(n) > 15 || strings.ContainsAny(n, "/: \t\n%") {
				t.Fatalf("accepted interface name %q", n)
			}
		}
		if c.Object == "link" && c.Name != "" && (len(c.Name) > 15 || strings.ContainsAny(c.Name, "/: \t\n%")) {
			t.Fatalf("accepted interface name %q", c.Name)
		}
	})
}

// FuzzParsePrefix: accepted prefixes are valid and round-trip.
func FuzzParsePrefix(f *testing.F) {
	for _, s := range []string{"10.200.0.2/24", "fd00::1/64", "10.0.0.1", "::1", "1.2.3.4/33", "::ffff:1.2.3.4/96"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := cli.ParsePrefix(s)
		if err != nil {
			return
		}
		if !p.IsValid() || p.Addr().Zone() != "" || p.Addr().Is4In6() {
			t.Fatalf("ParsePrefix(%q) = %v", s, p)
		}
		q, err := cli.ParsePrefix(p.String())
		if err != nil || q != p {
			t.Fatalf("round trip of %q: %v -> %v, %v", s, p, q, err)
		}
	})
}

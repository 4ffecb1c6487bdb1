package cli_test

import (
	"os/exec"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// TestAbbreviationsAsIp: the walkthrough's commands, abbreviated every way
// ip takes them, do in nsnet what they do in ip. Each tool runs the same
// sequence in a fresh namespace of its own (so interface indexes agree); the
// listings after each step must be equal byte for byte, and a form one tool
// refuses the other refuses too.
func TestAbbreviationsAsIp(t *testing.T) {
	leakCheck(t)
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2's ip to compare with")
	}
	steps := [][]string{
		{"l"}, {"li"}, {"link", "sh"}, {"link", "ls"}, {"link", "lst"}, {"l", "l"}, {"link", "list"},
		{"link", "ad", "v0", "type", "veth", "peer", "name", "v1"},
		{"link", "a", "name", "v2", "type", "veth", "peer", "v3"},
		{"l", "a", "br0", "type", "bridge"},
		{"link", "s", "v0", "up"}, {"link", "c", "v1", "mtu", "1400"}, {"link", "se", "dev", "v1", "up"},
		{"link", "set", "v2", "master", "br0"}, {"link", "sh", "v0"}, {"l", "sh", "dev", "v2"},
		{"link", "s", "v2", "nomaster"},
		{"a", "a", "10.200.0.2/24", "dev", "v0"}, {"addr", "ad", "fd00::2/64", "dev", "v0"},
		{"address", "add", "10.200.1.2/24", "dev", "v1"},
		{"a"}, {"a", "s"}, {"a", "l"}, {"addr", "ls"}, {"a", "sh", "v0"}, {"a", "s", "dev", "v1"},
		{"r", "a", "10.9.0.0/16", "via", "10.200.0.1"}, {"ro", "add", "10.8.0.0/16", "dev", "v1"},
		{"r", "d", "10.9.0.0/16", "via", "10.200.0.1"}, {"route", "del", "10.8.0.0/16", "dev", "v1"},
		{"a", "d", "10.200.0.2/24", "dev", "v0"}, {"addr", "dele", "fd00::2/64", "dev", "v0"},
		{"link", "d", "v0"}, {"l", "del", "dev", "v2"}, {"link", "delete", "br0"},
		// Forms both refuse.
		{"link", "sideways"}, {"link", "s"}, {"a", "a", "10.0.0.1/8"}, {"lnk"}, {"link", "add"},
	}
	// The namespace steps use the machine's /run/netns, one tool after the
	// other.
	nsSteps := [][]string{
		{"netns", "a", "abbrev-n"}, {"netns"}, {"netns", "l"}, {"netns", "ls"}, {"netns", "s"}, {"net", "list"},
		{"netns", "e", "abbrev-n", "true"}, {"netns", "ex", "abbrev-n", "false"}, {"netns", "d", "abbrev-n"}, {"netns", "l"},
	}
	// What the kernel picks at random (MACs, and the link-local addresses
	// made from them) or in its own time (duplicate address detection) is
	// not the tools'.
	// Carrier comes up in the kernel's own time too (link watch lags up to
	// a second), and with it the link-local addresses: the test is about
	// which command ran, not about when the kernel got to it.
	random := strings.NewReplacer(" tentative", "", "NO-CARRIER,", "", "state LOWERLAYERDOWN", "state UP")
	macs := regexp.MustCompile(`link/ether [0-9a-f:]{17} brd|\b([0-9a-f]{2}:){5}[0-9a-f]{2}\b`)
	norm := func(s string) string {
		var keep []string
		lines := strings.Split(random.Replace(macs.ReplaceAllString(s, "RANDOM")), "\n")
		for i := 0; i < len(lines); i++ {
			if strings.Contains(lines[i], "inet6 fe80:") {
				i++ // and its valid_lft line
				continue
			}
			keep = append(keep, lines[i])
		}
		return strings.Join(keep, "\n")
	}
	type outcome struct {
		ok       bool
		out, lst string
	}
	runAll := func(tool string) []outcome {
		const home = "abbrev-home"
		must(t, "netns", "add", home)
		defer must(t, "netns", "del", home)
		var res []outcome
		run := func(viaHome bool, step []string) {
			argv := append([]string{tool}, step...)
			if tool == "nsnet" {
				argv[0] = nsnetBin
			}
			if viaHome {
				argv = append([]string{nsnetBin, "netns", "exec", home}, argv...)
			}
			out, err := exec.Command(argv[0], argv[1:]...).Output()
			o := outcome{ok: err == nil}
			if err == nil {
				o.out = norm(string(out))
				if !viaHome {
					// ip lists namespaces newest first, nsnet by name.
					lines := strings.Split(o.out, "\n")
					sort.Strings(lines)
					o.out = strings.Join(lines, "\n")
				}
			}
			if viaHome {
				lst, _ := exec.Command("ip", "-n", home, "addr").Output()
				rt, _ := exec.Command("ip", "-n", home, "route").Output()
				o.lst = norm(string(lst) + string(rt))
			}
			res = append(res, o)
		}
		for _, s := range steps {
			run(true, s)
		}
		for _, s := range nsSteps {
			run(false, s)
		}
		return res
	}
	ipRes, nsRes := runAll("ip"), runAll("nsnet")
	all := append(append([][]string{}, steps...), nsSteps...)
	for i, s := range all {
		a, b := ipRes[i], nsRes[i]
		line := strings.Join(s, " ")
		switch {
		case a.ok != b.ok:
			t.Errorf("%q: ip succeeded %v, nsnet succeeded %v", line, a.ok, b.ok)
		case a.out != b.out:
			t.Errorf("%q prints differently:\nip:\n%s\nnsnet:\n%s", line, a.out, b.out)
		case a.lst != b.lst:
			t.Errorf("after %q the namespace differs:\nip:\n%s\nnsnet:\n%s", line, a.lst, b.lst)
		}
	}
}

// TestIpFormsNsnetLacks: an abbreviation that ip resolves to something nsnet
// does not do is named, never taken for something else.
func TestIpFormsNsnetLacks(t *testing.T) {
	for line, want := range map[string]string{
		"n":            `"n" is ip's "neighbor" object, which nsnet does not implement`,
		"link rep x":   `"rep" is ip link's "replace", which nsnet does not implement`,
		"a f":          `"f" is ip addr's "flush", which nsnet does not implement`,
		"r g 10.0.0.1": `"g" is ip route's "get", which nsnet does not implement`,
		"addr chg x":   `"chg" is ip addr's "change", which nsnet does not implement`,
		"netns p":      `"p" is ip netns's "pids", which nsnet does not implement`,
		"netns i":      `"i" is ip netns's "identify", which nsnet does not implement`,
		"-d link":      `option "-d" is ip's -details, which nsnet does not implement`,
		"-s link":      `option "-s" is ip's -stats, which nsnet does not implement`,
	} {
		r := nsnet(t, strings.Fields(line)...)
		if r.code != 2 || !strings.Contains(r.err, want) {
			t.Errorf("nsnet %s: exit %d, %q; want exit 2 and %q", line, r.code, r.err, want)
		}
	}
}

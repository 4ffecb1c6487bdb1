package cli_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nsnet/nsnet/internal/sandbox"
	"github.com/nsnet/nsnet/kernel"
	"github.com/nsnet/nsnet/netns"
	"github.com/nsnet/nsnet/probe"
)

// snapshot is the observable network state of the test's default namespace
// plus the named namespaces: what a command must not change when it fails.
type snapshot struct {
	Links []string
	Addrs []string
	NS    []string
}

func takeSnapshot(t testing.TB) snapshot {
	t.Helper()
	self, h, err := kernel.OpenCurrent()
	if err != nil {
		t.Fatal(err)
	}
	defer self.Close()
	defer h.Close()
	var s snapshot
	links, err := h.Links()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range links {
		s.Links = append(s.Links, l.Name+" "+l.OperState+" "+kernel.FlagString(l.Flags, false))
	}
	addrs, err := h.Addrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		s.Addrs = append(s.Addrs, a.Prefix.String())
	}
	s.NS, err = netns.Default().List()
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(s.Links)
	sort.Strings(s.Addrs)
	return s
}

// leakCheck records the state now and fails the test if it differs when the
// test ends, after the test's own cleanups ran.
func leakCheck(t *testing.T) {
	t.Helper()
	sandbox.Require(t)
	before := takeSnapshot(t)
	t.Cleanup(func() {
		// Namespace teardown in the kernel is asynchronous.
		deadline := time.Now().Add(5 * time.Second)
		for {
			after := takeSnapshot(t)
			if reflect.DeepEqual(before, after) {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("state leaked:\nbefore %+v\nafter  %+v", before, after)
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}

// removeLater deletes what a test may leave when it fails half-way.
func removeLater(t *testing.T, links []string, namespaces []string) {
	t.Cleanup(func() {
		for _, n := range namespaces {
			netns.Default().Delete(n)
		}
		self, h, err := kernel.OpenCurrent()
		if err != nil {
			return
		}
		defer self.Close()
		defer h.Close()
		for _, l := range links {
			h.DelLink(l)
		}
	})
}

type briefLink struct {
	Link      string   `json:"link"`
	LinkIndex int      `json:"link_index"`
	IfName    string   `json:"ifname"`
	OperState string   `json:"operstate"`
	Address   string   `json:"address"`
	Flags     []string `json:"flags"`
}

func parseBrief(t *testing.T, s string) map[string]briefLink {
	t.Helper()
	var ls []briefLink
	if err := json.Unmarshal([]byte(s), &ls); err != nil {
		t.Fatalf("bad JSON %q: %v", s, err)
	}
	m := map[string]briefLink{}
	for _, l := range ls {
		m[l.IfName] = l
	}
	return m
}

func fields(line string) []string { return strings.Fields(line) }

func lineOf(t *testing.T, out, prefix string) string {
	t.Helper()
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	t.Fatalf("no line starting with %q in:\n%s", prefix, out)
	return ""
}

// startNsnet starts a long-running nsnet command and stops it at cleanup.
func startNsnet(t *testing.T, args ...string) {
	t.Helper()
	cmd := exec.Command(nsnetBin, args...)
	cmd.Env = append(os.Environ(), "PATH="+dirOfBin()+":"+os.Getenv("PATH"))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	})
}

func dirOfBin() string { return nsnetBin[:strings.LastIndexByte(nsnetBin, '/')] }

func fetchFrom(ns *netns.NS, url string) error {
	_, body, err := probe.Fetch(context.Background(), ns, url, time.Second)
	if err == nil && string(body) != probe.HTTPBody {
		return errors.New("unexpected body " + string(body))
	}
	return err
}

func waitFetch(t *testing.T, ns *netns.NS, url string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for fetchFrom(ns, url) != nil {
		if time.Now().After(deadline) {
			t.Fatalf("server at %s never answered", url)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestWalkthrough is the iproute2 walkthrough with ip replaced by nsnet,
// asserting each thing the walkthrough observed.
func TestWalkthrough(t *testing.T) {
	leakCheck(t)
	removeLater(t, []string{"veth0", "veth1"}, []string{"direct_netns"})

	must(t, "link", "add", "veth0", "type", "veth", "peer", "name", "veth1")
	out := must(t, "-br", "link")
	if want := ip(t, "-br", "link"); out != want {
		t.Errorf("-br link differs from iproute2:\nnsnet:\n%s\nip:\n%s", out, want)
	}
	f := fields(lineOf(t, out, "veth1@veth0"))
	if f[1] != "DOWN" || f[3] != "<BROADCAST,MULTICAST,M-DOWN>" {
		t.Errorf("veth1 line = %q", f)
	}
	js := parseBrief(t, must(t, "-j", "-br", "link"))
	if js["veth1"].Link != "veth0" || js["veth1"].OperState != "DOWN" || !contains(js["veth1"].Flags, "M-DOWN") {
		t.Errorf("-j -br link veth1 = %+v", js["veth1"])
	}

	must(t, "netns", "add", "direct_netns")
	if out := must(t, "netns", "list"); strings.TrimSpace(out) != "direct_netns" {
		t.Errorf("netns list = %q", out)
	}
	if out := must(t, "-j", "netns", "list"); !strings.Contains(out, `"name":"direct_netns"`) {
		t.Errorf("-j netns list = %q", out)
	}
	inside := must(t, "netns", "exec", "direct_netns", "nsnet", "--br", "link")
	if f := fields(inside); len(strings.Split(strings.TrimSpace(inside), "\n")) != 1 || f[0] != "lo" || f[1] != "DOWN" {
		t.Errorf("inside the new namespace: %q", inside)
	}

	// Each namespace has its own loopback, in both directions.
	ns, err := netns.Default().Open("direct_netns")
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	must(t, "-n", "direct_netns", "link", "set", "lo", "up")
	startNsnet(t, "netns", "exec", "direct_netns", "nsnet", "serve", "http", "127.0.0.1:8080")
	waitFetch(t, ns, "http://127.0.0.1:8080/")
	err = fetchFrom(nil, "http://127.0.0.1:8080/")
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("server inside the namespace reached from outside: %v", err)
	}
	r := nsnet(t, "fetch", "http://127.0.0.1:8080/")
	if r.code != 7 || !strings.Contains(r.err, "connection refused") {
		t.Errorf("nsnet fetch from outside: %+v", r)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:8081")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, probe.HTTPBody) })}
	go srv.Serve(ln)
	defer srv.Close()
	if err := fetchFrom(nil, "http://127.0.0.1:8081/"); err != nil {
		t.Fatalf("own server: %v", err)
	}
	if err := fetchFrom(ns, "http://127.0.0.1:8081/"); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("default namespace's server reached from inside: %v", err)
	}
	r = nsnet(t, "netns", "exec", "direct_netns", "nsnet", "fetch", "http://127.0.0.1:8081/")
	if r.code != 7 {
		t.Errorf("nsnet fetch from inside: %+v", r)
	}

	// Move one end; peers now show by index.
	must(t, "link", "set", "veth1", "netns", "direct_netns")
	out = must(t, "-br", "link")
	if want := ip(t, "-br", "link"); out != want {
		t.Errorf("-br link differs from iproute2 after the move:\nnsnet:\n%s\nip:\n%s", out, want)
	}
	if strings.Contains(out, "veth1") {
		t.Errorf("veth1 still listed after the move:\n%s", out)
	}
	nsOut := must(t, "-n", "direct_netns", "-br", "link")
	if want := ip(t, "-n", "direct_netns", "-br", "link"); nsOut != want {
		t.Errorf("-n -br link differs from iproute2:\nnsnet:\n%s\nip:\n%s", nsOut, want)
	}
	js = parseBrief(t, must(t, "-j", "-br", "link"))
	jsIn := parseBrief(t, must(t, "-n", "direct_netns", "-j", "-br", "link"))
	v0, v1 := js["veth0"], jsIn["veth1"]
	if v0.LinkIndex == 0 || v1.LinkIndex == 0 {
		t.Fatalf("peer indexes missing: %+v %+v", v0, v1)
	}
	if !strings.HasPrefix(lineOf(t, out, "veth0@if"), "veth0@if"+itoa(v0.LinkIndex)+" ") ||
		!strings.HasPrefix(lineOf(t, nsOut, "veth1@if"), "veth1@if"+itoa(v1.LinkIndex)+" ") {
		t.Errorf("peer index in names does not match JSON: %q / %q", out, nsOut)
	}
	if full := must(t, "link", "show", "veth0"); !strings.Contains(full, "link-netns direct_netns") {
		t.Errorf("link show veth0 does not name the peer's namespace:\n%s", full)
	}

	must(t, "a", "add", "10.200.0.2/24", "dev", "veth0")
	must(t, "netns", "exec", "direct_netns", "nsnet", "a", "add", "10.200.0.3/24", "dev", "veth1")
	if out, want := must(t, "-br", "a"), ip(t, "-br", "a"); out != want {
		t.Errorf("-br addr differs from iproute2:\nnsnet:\n%s\nip:\n%s", out, want)
	}
	if out := must(t, "-n", "direct_netns", "-j", "-br", "a"); !strings.Contains(out, `{"local":"10.200.0.3","prefixlen":24}`) {
		t.Errorf("-j -br addr in namespace: %s", out)
	}

	// Links down: no route yet.
	r = nsnet(t, "netns", "exec", "direct_netns", "nsnet", "ping", "-c", "1", "10.200.0.2")
	if r.code != 2 || !strings.Contains(r.err, "Network is unreachable") {
		t.Errorf("ping before up: %+v", r)
	}

	must(t, "link", "set", "veth0", "up")
	must(t, "-n", "direct_netns", "link", "set", "veth1", "up")
	out = must(t, "ping", "-c", "1", "-W", "3", "10.200.0.3")
	if !strings.Contains(out, "64 bytes from 10.200.0.3: icmp_seq=1 ttl=64 time=") || !strings.Contains(out, "1 packets transmitted, 1 received, 0% packet loss") {
		t.Errorf("ping to the namespace:\n%s", out)
	}
	out = must(t, "netns", "exec", "direct_netns", "nsnet", "ping", "-c", "1", "-W", "3", "10.200.0.2")
	if !strings.Contains(out, "64 bytes from 10.200.0.2: icmp_seq=1 ttl=64") {
		t.Errorf("ping from the namespace:\n%s", out)
	}
	// -n works for ping too, and an address nobody has gets no reply.
	if r := nsnet(t, "-n", "direct_netns", "ping", "-c", "1", "-W", "0.3", "10.200.0.9"); r.code != 1 || !strings.Contains(r.out, "0 received, 100% packet loss") {
		t.Errorf("ping to an absent host: %+v", r)
	}

	must(t, "netns", "del", "direct_netns")
	if out := must(t, "netns", "list"); out != "" {
		t.Errorf("netns list after del = %q", out)
	}
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func itoa(i int) string { return strconv.Itoa(i) }

package cli_test

import (
	"encoding/json"
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckTenants: nsnet check proves both halves on the tenants example,
// explains a failure by its cause, and its three output forms agree.
func TestCheckTenants(t *testing.T) {
	leakCheck(t)
	state := []string{"NSNET_STATE_DIR=" + t.TempDir()}
	file := filepath.Join("..", "examples", "tenants.yaml")
	run := func(args ...string) result { return nsnetIn(t, state, args...) }
	if r := run("up", file); r.code != 0 {
		t.Fatalf("up: %+v", r)
	}
	t.Cleanup(func() { run("down", "tenants") })

	r := run("check", file)
	if r.code != 0 || !strings.Contains(r.out, "6 passed, 0 failed, 0 errors") {
		t.Fatalf("check: %+v", r)
	}
	for _, want := range []string{"pass a2 a1 (10.10.0.1) tcp:5432 reach", "isolated - no route"} {
		if !hasFields(r.out, want) {
			t.Errorf("check output lacks %q:\n%s", want, r.out)
		}
	}
	// By lab name, with the matrix: a reaches a, b reaches b, nothing else.
	// --all expects every pair to reach but those the file says are
	// isolated (a1 -> b1, b2 -> a2 and, by http, a2 -> b1): the four
	// others fail, each for want of a route.
	r = run("check", "tenants", "--all")
	if r.code != 1 || !strings.Contains(r.out, "4/12 ordered pairs reached; 4 failed, 4 not reached as the lab expects (isolated)") {
		t.Fatalf("check --all: %+v", r)
	}
	for _, want := range []string{"1 no route: a1 has no route to the target's address", "e.g. a1 -> b2", "1 no route: b2 has no route to the target's address"} {
		if !hasFields(r.out, want) {
			t.Errorf("check --all lacks %q:\n%s", want, r.out)
		}
	}

	// A fault: a2's link goes down. The reach expectation fails, with cause.
	if r := run("exec", "tenants", "a2", "--", "nsnet", "link", "set", "eth0", "down"); r.code != 0 {
		t.Fatalf("link down: %+v", r)
	}
	junit := filepath.Join(t.TempDir(), "check.xml")
	r = run("-j", "check", file, "--junit", junit)
	if r.code != 1 {
		t.Fatalf("check after the fault exits %d, want 1: %+v", r.code, r)
	}
	var rep struct {
		Lab     string `json:"lab"`
		Results []struct {
			Result, From, To, Proto, Expect, Cause string
		} `json:"results"`
		Passed, Failed, Errors int
	}
	if err := json.Unmarshal([]byte(r.out), &rep); err != nil {
		t.Fatalf("JSON: %v\n%s", err, r.out)
	}
	if rep.Lab != "tenants" || rep.Passed != 5 || rep.Failed != 1 || rep.Results[0].Result != "fail" || rep.Results[0].Cause != "link down (a2:eth0)" {
		t.Errorf("JSON report: %+v", rep)
	}
	b, err := os.ReadFile(junit)
	if err != nil {
		t.Fatal(err)
	}
	var suites struct {
		Suites []struct {
			Tests    int `xml:"tests,attr"`
			Failures int `xml:"failures,attr"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(b, &suites); err != nil || len(suites.Suites) != 1 || suites.Suites[0].Tests != 6 || suites.Suites[0].Failures != 1 {
		t.Errorf("JUnit: %+v %v\n%s", suites, err, b)
	}
	// The table says the same.
	r = run("check", "tenants")
	if r.code != 1 || !hasFields(r.out, "FAIL a2 a1 (10.10.0.1) tcp:5432 reach - link down (a2:eth0)") {
		t.Errorf("table after the fault: %+v", r)
	}
	// The target's link down instead: named the same way, not taken for a
	// filter.
	if r := run("exec", "tenants", "a2", "--", "nsnet", "link", "set", "eth0", "up"); r.code != 0 {
		t.Fatalf("link up: %+v", r)
	}
	if r := run("exec", "tenants", "a1", "--", "nsnet", "link", "set", "eth0", "down"); r.code != 0 {
		t.Fatalf("link down: %+v", r)
	}
	r = run("check", "tenants", "--timeout", "0.5")
	if r.code != 1 || !hasFields(r.out, "FAIL a2 a1 (10.10.0.1) tcp:5432 reach - link down (a1:eth0)") {
		t.Errorf("table with the target's link down: %+v", r)
	}

	if r := run("down", "tenants"); r.code != 0 {
		t.Fatalf("down: %+v", r)
	}
	// A lab that is not up cannot be checked: that is an error, not a pass.
	if r := run("check", "tenants"); r.code != 2 {
		t.Errorf("check of a lab that is down: %+v", r)
	}
	if r := run("check", file, "--timeout", "0"); r.code != 2 || !strings.Contains(r.err, "--timeout") {
		t.Errorf("bad timeout: %+v", r)
	}
}

// TestCheckRouted: the routed example (one gateway address on every router
// end, /32 nodes reaching it by an on-link route) reaches through the router
// and isolates the node without a default route.
func TestCheckRouted(t *testing.T) {
	leakCheck(t)
	state := []string{"NSNET_STATE_DIR=" + t.TempDir()}
	file := filepath.Join("..", "examples", "routed.yaml")
	run := func(args ...string) result { return nsnetIn(t, state, args...) }
	if r := run("up", file); r.code != 0 {
		t.Fatalf("up: %+v", r)
	}
	t.Cleanup(func() { run("down", "routed") })
	r := run("check", file)
	if r.code != 0 || !strings.Contains(r.out, "4 passed, 0 failed, 0 errors") {
		t.Fatalf("check: %+v", r)
	}
	// Every router end holds the gateway address.
	r = run("exec", "routed", "router", "--", "nsnet", "-br", "addr")
	for _, p := range []string{"p1@", "p2@", "p3@"} {
		if !strings.Contains(r.out, p) {
			t.Errorf("router addresses lack %s:\n%s", p, r.out)
		}
	}
	if n := strings.Count(r.out, "169.254.1.1/32"); n != 3 {
		t.Errorf("gateway address on %d router ends, want 3:\n%s", n, r.out)
	}
	if r := run("down", "routed"); r.code != 0 {
		t.Fatalf("down: %+v", r)
	}
}

// hasFields reports whether out holds want's words in a row. It compares
// fields, not spacing: the LATENCY column widens with a slow probe (a loaded
// machine), which moves every column after it.
func hasFields(out, want string) bool {
	return strings.Contains(strings.Join(strings.Fields(out), " "), want)
}

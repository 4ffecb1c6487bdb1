package cli_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/nsnet/nsnet/internal/sandbox"
)

// TestDoctor: doctor finds its answers by trying (in a scratch namespace)
// and says, for each kind of fault, which backend makes it; with -j the same
// as JSON. tbf and nftables' netdev and inet families are in every kernel
// nsnet supports; netem may be missing, and then its fix is named.
func TestDoctor(t *testing.T) {
	sandbox.Require(t)
	r := nsnet(t, "doctor")
	if r.code != 0 || !strings.Contains(r.out, "sch_tbf") || !strings.Contains(r.out, "FAULT") {
		t.Fatalf("doctor: exit %d\n%s%s", r.code, r.out, r.err)
	}
	var j struct {
		Features []struct {
			Feature string `json:"feature"`
			OK      bool   `json:"ok"`
			Fix     string `json:"fix"`
		} `json:"features"`
		Faults []struct{ Fault, Backend string } `json:"faults"`
	}
	r = nsnet(t, "-j", "doctor")
	if err := json.Unmarshal([]byte(r.out), &j); err != nil {
		t.Fatalf("doctor -j: %v\n%s", err, r.out)
	}
	for _, f := range j.Features {
		switch {
		case (f.Feature == "sch_tbf" || f.Feature == "nftables inet") && !f.OK:
			t.Errorf("%s missing", f.Feature)
		case f.Feature == "sch_netem" && !f.OK && !strings.Contains(f.Fix, "extra kernel modules"):
			t.Errorf("sch_netem missing without its fix: %q", f.Fix)
		case f.Feature == "sch_netem" && !f.OK && !strings.Contains(r.out, "modules"):
			t.Errorf("no fix shown")
		}
	}
	if len(j.Faults) < 10 {
		t.Errorf("faults: %v", j.Faults)
	}
	for _, f := range j.Faults {
		if f.Backend == "" || strings.HasPrefix(f.Backend, "not possible") && f.Fault != "partition" {
			t.Logf("%s: %s", f.Fault, f.Backend)
		}
	}
}

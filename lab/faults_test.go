package lab_test

import (
	"strings"
	"testing"
	"time"

	"github.com/nsnet/nsnet/fault"
	"github.com/nsnet/nsnet/lab"
)

const faultsBase = `lab: f
nodes:
  a: {}
  b: {}
links:
`

func TestFaultsResolved(t *testing.T) {
	l, err := lab.Parse("f.yaml", []byte(faultsBase+`  - a: {node: a, name: e0, addresses: [10.0.0.1/24], faults: {loss: 10%, delay: 5ms}}
    b: {node: b, name: e0, addresses: [10.0.0.2/24]}
    faults: {delay: 20ms, jitter: 5ms, rate: 10mbit}
  - a: {node: a, name: e1, faults: "duplicate 1% reorder 25% delay 10ms"}
    b: {node: b, name: e1}
`))
	if err != nil {
		t.Fatal(err)
	}
	a, b := l.Node("a").Interface("e0"), l.Node("b").Interface("e0")
	// The end's own delay over the link's; the rest of the link's kept.
	want := fault.Spec{Delay: 5 * time.Millisecond, Jitter: 5 * time.Millisecond, Loss: fault.Loss{P: 10}, Rate: fault.Rate{Bits: 10e6}}
	if a.Faults() != want {
		t.Errorf("a:e0 = %v, want %v", a.Faults(), want)
	}
	if want := (fault.Spec{Delay: 20 * time.Millisecond, Jitter: 5 * time.Millisecond, Rate: fault.Rate{Bits: 10e6}}); b.Faults() != want {
		t.Errorf("b:e0 = %v, want %v", b.Faults(), want)
	}
	if got := l.Node("a").Interface("e1").Faults().String(); got != "delay 10ms duplicate 1% reorder 25%" {
		t.Errorf("a:e1 = %q", got)
	}
	if !l.Node("b").Interface("e1").Faults().IsZero() {
		t.Errorf("b:e1 has faults")
	}
	var names []string
	for _, i := range l.Faulted() {
		names = append(names, i.Node.Name+":"+i.Name)
	}
	if strings.Join(names, " ") != "a:e0 b:e0 a:e1" {
		t.Errorf("Faulted = %v", names)
	}
}

func TestFaultsRules(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"  - a: {node: a, name: e0, faults: {delay: -5ms}}\n    b: {node: b, name: e0}\n",
			`f.yaml:6:44: links[0].a.faults.delay: delay -5ms: must not be negative`},
		{"  - a: {node: a, name: e0}\n    b: {node: b, name: e0}\n    faults: {loss: 120%}\n",
			`f.yaml:8:20: links[0].faults.loss: loss 120%: must be between 0% and 100%`},
		{"  - a: {node: a, name: e0}\n    b: {node: b, name: e0, faults: \"rate 0mbit\"}\n",
			`f.yaml:7:36: links[0].b.faults.rate: rate 0mbit: must be more than 0`},
		{"  - a: {node: a, name: e0, faults: {colour: red}}\n    b: {node: b, name: e0}\n",
			`f.yaml:6:45: links[0].a.faults: unknown field "colour" (want delay, jitter,`},
		{"  - a: {node: a, name: e0, faults: [delay]}\n    b: {node: b, name: e0}\n",
			`f.yaml:6:36: links[0].a.faults: must be a mapping (delay: 20ms) or a string`},
		// A reorder needs a delay.
		{"  - a: {node: a, name: e0, faults: {reorder: 25%}}\n    b: {node: b, name: e0}\n",
			`f.yaml:6:36: links[0].a.faults.reorder: reorder 25%: needs a delay`},
		// Each faults: entry is a whole spec on its own, even under a
		// link's that has the delay.
		{"  - a: {node: a, name: e0, faults: {reorder: 25%}}\n    b: {node: b, name: e0}\n    faults: {delay: 10ms}\n",
			`f.yaml:6:36: links[0].a.faults.reorder: reorder 25%: needs a delay`},
		{"  - a: {node: a, name: e0}\n    b: {node: b, name: e0}\n    fault: {loss: 1%}\n",
			`f.yaml:8:5: links[0].fault: unknown field "fault" (known: a, b, mtu, vni, faults)`},
	} {
		_, err := lab.Parse("f.yaml", []byte(faultsBase+tc.yaml))
		if tc.want == "NOERROR" {
			if err != nil {
				t.Errorf("%q: %v", tc.yaml, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q:\n got %v\nwant %s", tc.yaml, err, tc.want)
		}
	}
}

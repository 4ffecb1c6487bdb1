package fault

import (
	"errors"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

func TestParseWords(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Spec
	}{
		{"none", Spec{}},
		{"delay 20ms", Spec{Delay: 20 * time.Millisecond}},
		{"delay 20ms 5ms", Spec{Delay: 20 * time.Millisecond, Jitter: 5 * time.Millisecond}},
		{"delay 20msec 5ms 25% distribution normal", Spec{Delay: 20 * time.Millisecond, Jitter: 5 * time.Millisecond, Correlation: 25, Distribution: Normal}},
		{"loss 10%", Spec{Loss: Loss{P: 10}}},
		{"loss random 1.5% 25%", Spec{Loss: Loss{P: 1.5, Correlation: 25}}},
		{"loss gemodel 1% 25%", Spec{Loss: Burst(1, 25)}},
		{"loss gemodel 1%", Spec{Loss: Loss{P: 1, R: 99, BadLoss: 100}}},
		{"loss gemodel 1% 25% 80% 0.5%", Spec{Loss: Loss{P: 1, R: 25, BadLoss: 80, GoodLoss: 0.5}}},
		{"delay 20ms 5ms loss 10% duplicate 1% reorder 25% corrupt 0.1% rate 10mbit", Spec{
			Delay: 20 * time.Millisecond, Jitter: 5 * time.Millisecond, Loss: Loss{P: 10},
			Duplicate: 1, Reorder: 25, Corrupt: 0.1, Rate: Rate{Bits: 10e6}}},
		{"rate 1gbit burst 64kb limit 1mb", Spec{Rate: Rate{Bits: 1e9, Burst: 64 << 10, Limit: 1 << 20}}},
		{"rate 1mbps", Spec{Rate: Rate{Bits: 8e6}}},
		{"down", Spec{Down: true}},
		{"blackhole", Spec{Blackhole: true}},
		{"loss 5% delay 1s", Spec{Delay: time.Second, Loss: Loss{P: 5}}},
	} {
		got, err := ParseWords(strings.Fields(c.in))
		if err != nil {
			t.Errorf("%q: %v", c.in, err)
			continue
		}
		if got != c.want {
			t.Errorf("%q: got %+v, want %+v", c.in, got, c.want)
		}
		// The canonical form reads back to the same spec.
		again, err := ParseWords(got.Words())
		if err != nil || again != got {
			t.Errorf("%q: String %q reads back as %+v, %v", c.in, got.String(), again, err)
		}
	}
}

func TestParseWordsRefuses(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"delay -5ms", "delay -5ms: must not be negative"},
		{"loss 120%", "loss 120%: must be between 0% and 100%"},
		{"loss 10", "loss 10: must be a percentage such as 10%"},
		{"rate 0", "rate 0: must be more than 0 (use blackhole to drop everything)"},
		{"rate 0mbit", "rate 0mbit: must be more than 0 (use blackhole to drop everything)"},
		{"rate fast", "rate fast: must be a rate such as 10mbit, 1gbit or 500kbit"},
		{"jumble 5%", `unknown keyword "jumble" (want delay, distribution, loss, duplicate, reorder, corrupt, rate, down, blackhole)`},
		{"delay 20ms delay 10ms", "delay: given twice"},
		{"delay 20", "delay 20: must be a duration such as 20ms"},
		{"delay", "delay: needs a duration such as 20ms"},
		{"reorder 25%", "reorder 25%: needs a delay for the other packets to wait (reorder 25% delay 10ms)"},
		{"delay 10ms distribution normal", "distribution normal: needs a jitter to shape"},
		{"delay 10ms 1ms distribution gauss", "distribution gauss: must be one of uniform, normal"},
		{"down blackhole", "blackhole: cannot go with down: a down link carries nothing to drop"},
		{"burst 10kb", "burst: needs a rate before it (rate 10mbit burst 32kb)"},
		{"loss gemodel 1% 0%", "loss.r 0%: must be more than 0%: a burst would never end"},
		{"loss state 1%", "loss state: the 4-state model is not supported; use gemodel P R"},
		{"delay 2h", "delay 2h: must be at most 1h0m0s"},
		{"", "no fault given (want delay, distribution, loss, duplicate, reorder, corrupt, rate, down, blackhole, or none)"},
	} {
		_, err := ParseWords(strings.Fields(c.in))
		if err == nil {
			t.Errorf("%q: accepted", c.in)
			continue
		}
		if err.Error() != c.want {
			t.Errorf("%q:\n got %s\nwant %s", c.in, err, c.want)
		}
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("%q: %v does not match ErrInvalid", c.in, err)
		}
		if strings.Contains(err.Error(), "\n") {
			t.Errorf("%q: error is not one line", c.in)
		}
	}
}

func TestDecodeYAML(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Spec
	}{
		{"delay: 20ms\njitter: 5ms\ndistribution: normal\n", Spec{Delay: 20 * time.Millisecond, Jitter: 5 * time.Millisecond, Distribution: Normal}},
		{"loss: {p: 1%, r: 25%}\n", Spec{Loss: Burst(1, 25)}},
		{"loss: {p: 10%, correlation: 25%}\n", Spec{Loss: Loss{P: 10, Correlation: 25}}},
		{"loss: 1.5%\nduplicate: 1%\ncorrupt: 0.1%\n", Spec{Loss: Loss{P: 1.5}, Duplicate: 1, Corrupt: 0.1}},
		{"rate: {rate: 10mbit, burst: 32kb, limit: 100kb}\n", Spec{Rate: Rate{Bits: 10e6, Burst: 32 << 10, Limit: 100 << 10}}},
		{"rate: 100mbit\ndown: false\n", Spec{Rate: Rate{Bits: 100e6}}},
		{"blackhole: true\n", Spec{Blackhole: true}},
		{`"delay 20ms 5ms loss 1%"`, Spec{Delay: 20 * time.Millisecond, Jitter: 5 * time.Millisecond, Loss: Loss{P: 1}}},
	} {
		var n yaml.Node
		if err := yaml.Unmarshal([]byte(c.in), &n); err != nil {
			t.Fatal(err)
		}
		got, err := DecodeYAML(&n)
		if err != nil {
			t.Errorf("%q: %v", c.in, err)
			continue
		}
		if got != c.want {
			t.Errorf("%q: got %+v, want %+v", c.in, got, c.want)
		}
	}
}

func TestDecodeYAMLRefuses(t *testing.T) {
	for _, c := range []struct {
		in        string
		want      string
		line, col int
	}{
		{"delay: -5ms\n", "delay -5ms: must not be negative", 1, 8},
		{"delay: 1ms\nloss: 120%\n", "loss 120%: must be between 0% and 100%", 2, 7},
		{"rate: 0\n", "rate 0: must be more than 0 (use blackhole to drop everything)", 1, 7},
		{"delya: 5ms\n", `unknown field "delya" (want delay, jitter, distribution, correlation, loss, duplicate, reorder, corrupt, rate, down, blackhole)`, 1, 8},
		{"loss: {p: 1%, q: 2%}\n", `loss: unknown field "q" (want p, correlation, or p, r, 1-h, 1-k for bursty loss)`, 1, 15},
		{"loss: {p: 1%, r: 250%}\n", "loss.r 250%: must be between 0% and 100%", 1, 18},
		{"rate: {burst: 32kb}\n", "rate: needs rate (rate: {rate: 10mbit, burst: 32kb})", 1, 7},
		{"down: maybe\n", "down maybe: must be true or false", 1, 7},
		{"reorder: 5%\n", "reorder 5%: needs a delay for the other packets to wait (reorder 25% delay 10ms)", 1, 1},
		{"- delay\n", `must be a mapping (delay: 20ms) or a string ("delay 20ms loss 1%")`, 1, 1},
		{"'delay -1ms'\n", "delay -1ms: must not be negative", 1, 1},
	} {
		var n yaml.Node
		if err := yaml.Unmarshal([]byte(c.in), &n); err != nil {
			t.Fatal(err)
		}
		_, err := DecodeYAML(&n)
		var fe *Error
		if !errors.As(err, &fe) {
			t.Errorf("%q: got %v, want an *Error", c.in, err)
			continue
		}
		if err.Error() != c.want || fe.Line != c.line || fe.Col != c.col {
			t.Errorf("%q:\n got %d:%d %s\nwant %d:%d %s", c.in, fe.Line, fe.Col, err, c.line, c.col, c.want)
		}
	}
}

func TestPartition(t *testing.T) {
	p, err := ParsePartition([]string{"h1,h2", "h3"}, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		from, to string
		want     bool
	}{{"h1", "h3", true}, {"h3", "h2", true}, {"h1", "h2", false}, {"h1", "h9", false}, {"h9", "h3", false}} {
		if got := p.Blocks(c.from, c.to); got != c.want {
			t.Errorf("%s -> %s: blocked %v, want %v", c.from, c.to, got, c.want)
		}
	}
	one, err := ParsePartition([]string{"a", "b"}, true)
	if err != nil {
		t.Fatal(err)
	}
	if !one.Blocks("a", "b") || one.Blocks("b", "a") {
		t.Errorf("one-way %s blocks the wrong direction", one)
	}
	if p.String() != "h1,h2 | h3" || one.String() != "a -> b" {
		t.Errorf("strings %q %q", p, one)
	}
	for _, c := range []struct {
		groups []string
		oneway bool
		want   string
	}{
		{[]string{"a"}, false, "partition: needs at least two groups of nodes (h1,h2 h3,h4)"},
		{[]string{"a,b", "b"}, false, "partition b: is in groups 1 and 2; a node belongs to one side"},
		{[]string{"a", ","}, false, "partition: group 2 is empty"},
		{[]string{"a", "b", "c"}, true, "partition: a one-way partition has exactly two groups, from and to (got 3)"},
	} {
		_, err := ParsePartition(c.groups, c.oneway)
		if err == nil || err.Error() != c.want {
			t.Errorf("%q: got %v, want %s", c.groups, err, c.want)
		}
	}
}

func TestUnits(t *testing.T) {
	for _, b := range []uint64{8, 1000, 1500, 10e6, 1e9, 2500e3, 123456789} {
		got, err := ParseRate("rate", FormatRate(b))
		if err != nil || got != b {
			t.Errorf("rate %d: %s reads back as %d, %v", b, FormatRate(b), got, err)
		}
	}
	for _, n := range []uint32{1, 1500, 1024, 32 << 10, 1 << 20, 3<<20 + 1} {
		got, err := ParseSize("limit", FormatSize(n))
		if err != nil || got != n {
			t.Errorf("size %d: %s reads back as %d, %v", n, FormatSize(n), got, err)
		}
	}
}

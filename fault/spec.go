// Package fault is the model of a network fault: what a link end does to the
// packets that leave it (delay, jitter, loss, duplication, reordering,
// corruption, a rate limit, carrier loss, a black hole) and partitions
// between groups of nodes.
//
// The package only describes, parses and validates faults. It knows nothing
// of the kernel: fault/backend turns a Spec into qdiscs, nftables rules and
// userspace delayer entries for the kernel at hand.
//
// A Spec has two textual forms, both parsed here:
//
//   - netem's word order, so people reuse what they know:
//     delay 20ms [5ms [25%]] [distribution normal] loss 10% [25%]
//     | loss gemodel 1% [25% [100% [0%]]] duplicate 1% reorder 25%
//     corrupt 0.1% rate 10mbit [burst 32kb] [limit 64kb] down|blackhole
//   - a YAML mapping with the same names (see DecodeYAML), where a bursty
//     loss is written loss: {p: 1%, r: 25%}.
package fault

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Percent is a probability in percent, 0 to 100: 1.5 is 1.5%.
type Percent float64

// Fraction is p as a probability from 0 to 1.
func (p Percent) Fraction() float64 { return float64(p) / 100 }

func (p Percent) String() string { return strconv.FormatFloat(float64(p), 'g', -1, 64) + "%" }

// Distribution is the shape of the jitter around the delay.
type Distribution string

// Distributions. Uniform is the default (an empty Distribution); both
// backends have both (netem through the table nsnet computes as iproute2's
// normal.dist, the userspace delayer by drawing from it).
const (
	Uniform Distribution = "uniform"
	Normal  Distribution = "normal"
)

// distributions lists every distribution name a Spec may carry.
var distributions = []Distribution{Uniform, Normal}

// Loss is random or bursty packet loss.
//
// With R zero, each packet is lost with probability P, optionally correlated
// with the previous draw. With R non-zero the loss follows the
// Gilbert-Elliott model as netem's "loss gemodel p r 1-h 1-k" has it: P is
// the chance of going from the good to the bad state, R of coming back,
// BadLoss the loss in the bad state (netem's 1-h; the parsers default it to
// 100%) and GoodLoss the loss in the good state (netem's 1-k, default 0%).
// The mean burst is 1/R packets long. Use Burst for the common two-value form.
type Loss struct {
	P           Percent `json:"p,omitempty"`
	Correlation Percent `json:"correlation,omitempty"`
	R           Percent `json:"r,omitempty"`
	BadLoss     Percent `json:"bad_loss,omitempty"`
	GoodLoss    Percent `json:"good_loss,omitempty"`
}

// Burst is Gilbert loss: into a burst with chance p, out of it with chance
// r, every packet lost while in it.
func Burst(p, r Percent) Loss { return Loss{P: p, R: r, BadLoss: 100} }

// Bursty reports whether l is Gilbert-Elliott loss.
func (l Loss) Bursty() bool { return l.R != 0 }

// IsZero reports whether l loses nothing.
func (l Loss) IsZero() bool { return l == Loss{} }

// Rate limits what leaves an end, like a slower wire.
type Rate struct {
	// Bits per second.
	Bits uint64 `json:"bits,omitempty"`
	// Burst is the bucket size in bytes; zero lets the backend size it
	// (enough for a few milliseconds at the rate and one full packet).
	Burst uint32 `json:"burst,omitempty"`
	// Limit is the queue in bytes; zero lets the backend size it for the
	// rate times the delay plus the burst.
	Limit uint32 `json:"limit,omitempty"`
}

// IsZero reports whether r sets no rate.
func (r Rate) IsZero() bool { return r == Rate{} }

// Spec is the faults of one link end in one direction: it shapes what leaves
// the end. The zero Spec changes nothing.
type Spec struct {
	Delay        time.Duration `json:"delay,omitempty"`
	Jitter       time.Duration `json:"jitter,omitempty"`
	Distribution Distribution  `json:"distribution,omitempty"`
	// Correlation of each packet's jitter with the previous one's.
	Correlation Percent `json:"correlation,omitempty"`
	Loss        Loss    `json:"loss,omitzero"`
	Duplicate   Percent `json:"duplicate,omitempty"`
	// Reorder sends this share of packets at once while the others wait
	// Delay, so they overtake them (netem's reorder); it needs a Delay.
	Reorder Percent `json:"reorder,omitempty"`
	// Corrupt flips one random bit in this share of packets.
	Corrupt Percent `json:"corrupt,omitempty"`
	Rate    Rate    `json:"rate,omitzero"`
	// Down turns the carrier off: the end is down as "ip link set down"
	// shows it, and its peer has no carrier.
	Down bool `json:"down,omitempty"`
	// Blackhole keeps the link up but drops every packet.
	Blackhole bool `json:"blackhole,omitempty"`
}

// IsZero reports whether s changes nothing.
func (s Spec) IsZero() bool { return s == Spec{} }

// Delays reports whether s holds packets back (delay, jitter or reorder).
func (s Spec) Delays() bool { return s.Delay != 0 || s.Jitter != 0 || s.Reorder != 0 }

// Field names, as the parsers spell them and errors name them.
const (
	FieldDelay        = "delay"
	FieldJitter       = "jitter"
	FieldDistribution = "distribution"
	FieldCorrelation  = "correlation"
	FieldLoss         = "loss"
	FieldDuplicate    = "duplicate"
	FieldReorder      = "reorder"
	FieldCorrupt      = "corrupt"
	FieldRate         = "rate"
	FieldBurst        = "burst"
	FieldLimit        = "limit"
	FieldDown         = "down"
	FieldBlackhole    = "blackhole"
)

// Keywords lists the words of the netem form, in order.
var keywords = []string{FieldDelay, FieldDistribution, FieldLoss, FieldDuplicate, FieldReorder, FieldCorrupt, FieldRate, FieldDown, FieldBlackhole}

// ErrInvalid is matched (errors.Is) by every error that rejects a fault.
var ErrInvalid = errors.New("invalid fault")

// Error is one rejected field: "loss 120%: must be between 0% and 100%".
// Line and Col locate it in a YAML document when it came from one (zero
// otherwise).
type Error struct {
	Field string // "delay", "loss.r", "rate.burst", "" for the form itself
	Value string // the value as written, if any
	Rule  string
	Line  int
	Col   int
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Field)
	if e.Value != "" {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(e.Value)
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	b.WriteString(e.Rule)
	return b.String()
}

// Is makes every Error match ErrInvalid.
func (e *Error) Is(target error) bool { return target == ErrInvalid }

// MaxDelay bounds delay and jitter: beyond it a backend would hold packets
// longer than any transport waits for them, which is a partition, not a
// delay.
const MaxDelay = time.Hour

// Validate checks every field's range and the rules between fields.
func (s Spec) Validate() error {
	dur := func(field string, d time.Duration) error {
		switch {
		case d < 0:
			return &Error{Field: field, Value: d.String(), Rule: "must not be negative"}
		case d > MaxDelay:
			return &Error{Field: field, Value: d.String(), Rule: "must be at most " + MaxDelay.String()}
		}
		return nil
	}
	if err := dur(FieldDelay, s.Delay); err != nil {
		return err
	}
	if err := dur(FieldJitter, s.Jitter); err != nil {
		return err
	}
	for _, c := range []struct {
		field string
		p     Percent
	}{
		{FieldCorrelation, s.Correlation},
		{FieldLoss, s.Loss.P},
		{FieldLoss + ".correlation", s.Loss.Correlation},
		{FieldLoss + ".r", s.Loss.R},
		{FieldLoss + ".1-h", s.Loss.BadLoss},
		{FieldLoss + ".1-k", s.Loss.GoodLoss},
		{FieldDuplicate, s.Duplicate},
		{FieldReorder, s.Reorder},
		{FieldCorrupt, s.Corrupt},
	} {
		if err := checkPercent(c.field, c.p); err != nil {
			return err
		}
	}
	if s.Distribution != "" && !validDistribution(s.Distribution) {
		return &Error{Field: FieldDistribution, Value: string(s.Distribution), Rule: "must be one of " + distributionNames()}
	}
	if s.Distribution != "" && s.Distribution != Uniform && s.Jitter == 0 {
		return &Error{Field: FieldDistribution, Value: string(s.Distribution), Rule: "needs a jitter to shape"}
	}
	if s.Correlation != 0 && s.Jitter == 0 {
		return &Error{Field: FieldCorrelation, Value: s.Correlation.String(), Rule: "needs a jitter to correlate"}
	}
	if s.Jitter > 0 && s.Delay == 0 {
		return &Error{Field: FieldJitter, Value: s.Jitter.String(), Rule: "needs a delay to vary around"}
	}
	if s.Reorder != 0 && s.Delay == 0 {
		return &Error{Field: FieldReorder, Value: s.Reorder.String(), Rule: "needs a delay for the other packets to wait (reorder 25% delay 10ms)"}
	}
	if s.Loss.Bursty() && s.Loss.Correlation != 0 {
		return &Error{Field: FieldLoss + ".correlation", Value: s.Loss.Correlation.String(), Rule: "applies to random loss only, not to bursty loss (p, r)"}
	}
	if !s.Loss.Bursty() && (s.Loss.BadLoss != 0 || s.Loss.GoodLoss != 0) {
		return &Error{Field: FieldLoss, Rule: "1-h and 1-k need bursty loss (p and r)"}
	}
	if !s.Rate.IsZero() && s.Rate.Bits == 0 {
		return &Error{Field: FieldRate, Value: "0", Rule: "must be more than 0 (use blackhole to drop everything)"}
	}
	if s.Rate.Bits > 0 && s.Rate.Bits < 8 {
		return &Error{Field: FieldRate, Value: FormatRate(s.Rate.Bits), Rule: "must be at least 8bit"}
	}
	if s.Down && s.Blackhole {
		return &Error{Field: FieldBlackhole, Rule: "cannot go with down: a down link carries nothing to drop"}
	}
	return nil
}

func checkPercent(field string, p Percent) error {
	if p < 0 || p > 100 || p != p {
		return &Error{Field: field, Value: p.String(), Rule: "must be between 0% and 100%"}
	}
	return nil
}

func validDistribution(d Distribution) bool {
	for _, x := range distributions {
		if d == x {
			return true
		}
	}
	return false
}

func distributionNames() string {
	s := make([]string, len(distributions))
	for i, d := range distributions {
		s[i] = string(d)
	}
	return strings.Join(s, ", ")
}

// String is s in netem's word order, which ParseWords reads back to s.
// The zero Spec is "none".
func (s Spec) String() string {
	return strings.Join(s.Words(), " ")
}

// Words is s in netem's word order; the zero Spec is ["none"].
func (s Spec) Words() []string {
	var w []string
	if s.Delay != 0 {
		w = append(w, FieldDelay, s.Delay.String())
		if s.Jitter != 0 {
			w = append(w, s.Jitter.String())
			if s.Correlation != 0 {
				w = append(w, s.Correlation.String())
			}
		}
		if s.Distribution != "" && s.Distribution != Uniform {
			w = append(w, FieldDistribution, string(s.Distribution))
		}
	}
	if !s.Loss.IsZero() {
		w = append(w, FieldLoss)
		if s.Loss.Bursty() {
			w = append(w, "gemodel", s.Loss.P.String(), s.Loss.R.String(), s.Loss.BadLoss.String(), s.Loss.GoodLoss.String())
		} else {
			w = append(w, s.Loss.P.String())
			if s.Loss.Correlation != 0 {
				w = append(w, s.Loss.Correlation.String())
			}
		}
	}
	if s.Duplicate != 0 {
		w = append(w, FieldDuplicate, s.Duplicate.String())
	}
	if s.Reorder != 0 {
		w = append(w, FieldReorder, s.Reorder.String())
	}
	if s.Corrupt != 0 {
		w = append(w, FieldCorrupt, s.Corrupt.String())
	}
	if !s.Rate.IsZero() {
		w = append(w, FieldRate, FormatRate(s.Rate.Bits))
		if s.Rate.Burst != 0 {
			w = append(w, FieldBurst, FormatSize(s.Rate.Burst))
		}
		if s.Rate.Limit != 0 {
			w = append(w, FieldLimit, FormatSize(s.Rate.Limit))
		}
	}
	if s.Down {
		w = append(w, FieldDown)
	}
	if s.Blackhole {
		w = append(w, FieldBlackhole)
	}
	if len(w) == 0 {
		return []string{"none"}
	}
	return w
}

// Fields lists the names of the fields s sets, in netem word order; errors
// about what a backend cannot do name one of these.
func (s Spec) Fields() []string {
	var f []string
	add := func(on bool, name string) {
		if on {
			f = append(f, name)
		}
	}
	add(s.Delay != 0, FieldDelay)
	add(s.Jitter != 0, FieldJitter)
	add(s.Distribution != "" && s.Distribution != Uniform, FieldDistribution)
	add(s.Correlation != 0, FieldCorrelation)
	add(!s.Loss.IsZero(), FieldLoss)
	add(s.Duplicate != 0, FieldDuplicate)
	add(s.Reorder != 0, FieldReorder)
	add(s.Corrupt != 0, FieldCorrupt)
	add(!s.Rate.IsZero(), FieldRate)
	add(s.Down, FieldDown)
	add(s.Blackhole, FieldBlackhole)
	return f
}

func errorf(field, value, format string, a ...any) *Error {
	return &Error{Field: field, Value: value, Rule: fmt.Sprintf(format, a...)}
}

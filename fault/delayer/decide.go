// Package delayer holds packets back in userspace, for kernels without
// sch_netem: nftables queues what leaves a link end (NFQUEUE), and the
// delayer gives each packet its verdict when its time has come. It also
// does what nftables cannot: correlated and bursty loss, corruption and
// reordering.
//
// It never fails open. A packet it cannot keep up with (its hold is full,
// or the kernel could not hand it over because the socket was full) is
// dropped and counted as an overload drop, never passed unimpaired; and the
// queue rule has no bypass, so while no delayer listens, the link carries
// nothing.
package delayer

import (
	"math"
	"math/rand/v2"
	"time"

	"github.com/nsnet/nsnet/fault"
)

// decider draws what happens to each packet, as netem would: the
// correlated random numbers follow netem's get_crandom, the bursty loss its
// Gilbert-Elliott model. It is used by one goroutine.
type decider struct {
	spec fault.Spec
	rng  *rand.Rand
	// Last draws, for correlation.
	lastLoss, lastJitter float64
	bad                  bool // Gilbert-Elliott state
}

func newDecider(s fault.Spec, seed uint64) *decider {
	return &decider{spec: s, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// correlated is a uniform number in [0,1) correlated with the last one by
// rho (0-1).
func (d *decider) correlated(last *float64, rho float64) float64 {
	u := d.rng.Float64()
	if rho == 0 {
		return u
	}
	v := (1-rho)*u + rho**last
	*last = v
	return v
}

// lose reports whether the next packet is lost.
func (d *decider) lose() bool {
	l := d.spec.Loss
	switch {
	case l.IsZero():
		return false
	case l.Bursty():
		// Move between the states first, then lose with the state's loss.
		if d.bad {
			if d.rng.Float64() < l.R.Fraction() {
				d.bad = false
			}
		} else if d.rng.Float64() < l.P.Fraction() {
			d.bad = true
		}
		if d.bad {
			return d.rng.Float64() < l.BadLoss.Fraction()
		}
		return d.rng.Float64() < l.GoodLoss.Fraction()
	}
	return d.correlated(&d.lastLoss, l.Correlation.Fraction()) < l.P.Fraction()
}

// delay is how long the next packet waits: zero for one that reorder sends
// at once.
func (d *decider) delay() time.Duration {
	s := d.spec
	if s.Reorder != 0 && d.rng.Float64() < s.Reorder.Fraction() {
		return 0
	}
	if s.Jitter == 0 {
		return s.Delay
	}
	var off float64
	if s.Distribution == fault.Normal {
		off = d.rng.NormFloat64() * float64(s.Jitter)
	} else {
		u := d.correlated(&d.lastJitter, s.Correlation.Fraction())
		off = (2*u - 1) * float64(s.Jitter)
	}
	return time.Duration(math.Max(0, float64(s.Delay)+off))
}

// corrupt flips one random bit past the IP header of p, in place, with the
// spec's chance, and reports whether it did. The packet then fails its
// transport checksum where it arrives, as a damaged frame would.
func (d *decider) corrupt(p []byte) bool {
	if d.spec.Corrupt == 0 || d.rng.Float64() >= d.spec.Corrupt.Fraction() || len(p) < 1 {
		return false
	}
	hdr := 40
	if p[0]>>4 == 4 {
		hdr = int(p[0]&0xf) * 4
	}
	if len(p) <= hdr {
		return false
	}
	i := hdr + d.rng.IntN(len(p)-hdr)
	p[i] ^= 1 << d.rng.IntN(8)
	return true
}

// ordered reports whether packets leave in the order they came (a fixed
// delay), so that one batch verdict can release many.
func (d *decider) ordered() bool { return d.spec.Jitter == 0 }

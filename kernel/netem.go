package kernel

import (
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	tc "github.com/florianl/go-tc"
)

// Netem is the netem qdisc's settings, as nsnet uses them. Percentages are
// 0 to 100.
type Netem struct {
	Delay, Jitter time.Duration
	DelayCorr     float64
	// Normal draws the jitter from a normal distribution (iproute2's
	// normal.dist table) instead of a uniform one.
	Normal    bool
	Loss      float64
	LossCorr  float64
	Duplicate float64
	Reorder   float64
	Corrupt   float64
	// Limit is netem's queue in packets.
	Limit uint32
}

// nsPerTick is the psched tick that netem's 32-bit latency fields count in.
const nsPerTick = 64

func (n *Netem) attr() *tc.Netem {
	lat, jit := int64(n.Delay), int64(n.Jitter)
	q := &tc.Netem{
		Qopt: tc.NetemQopt{
			Latency:   uint32(min(lat/nsPerTick, math.MaxUint32)),
			Jitter:    uint32(min(jit/nsPerTick, math.MaxUint32)),
			Limit:     n.Limit,
			Loss:      prob(n.Loss),
			Duplicate: prob(n.Duplicate),
		},
		Latency64: &lat,
		Jitter64:  &jit,
	}
	if n.DelayCorr != 0 || n.LossCorr != 0 {
		q.Corr = &tc.NetemCorr{Delay: prob(n.DelayCorr), Loss: prob(n.LossCorr)}
	}
	if n.Reorder != 0 {
		q.Reorder = &tc.NetemReorder{Probability: prob(n.Reorder)}
	}
	if n.Corrupt != 0 {
		q.Corrupt = &tc.NetemCorrupt{Probability: prob(n.Corrupt)}
	}
	if n.Normal {
		t := normalTable()
		q.DelayDist = &t
	}
	return q
}

// args is n as tc's arguments: "netem limit 1000 delay 20ms 5ms ...".
func (n *Netem) args() string {
	w := []string{"netem", "limit", strconv.FormatUint(uint64(n.Limit), 10)}
	if n.Delay != 0 {
		w = append(w, "delay", tcTime(n.Delay))
		if n.Jitter != 0 {
			w = append(w, tcTime(n.Jitter))
			if n.DelayCorr != 0 {
				w = append(w, pct(n.DelayCorr))
			}
			if n.Normal {
				w = append(w, "distribution", "normal")
			}
		}
	}
	if n.Loss != 0 {
		w = append(w, "loss", pct(n.Loss))
		if n.LossCorr != 0 {
			w = append(w, pct(n.LossCorr))
		}
	}
	if n.Duplicate != 0 {
		w = append(w, "duplicate", pct(n.Duplicate))
	}
	if n.Reorder != 0 {
		w = append(w, "reorder", pct(n.Reorder))
	}
	if n.Corrupt != 0 {
		w = append(w, "corrupt", pct(n.Corrupt))
	}
	return strings.Join(w, " ")
}

// prob scales a percentage to netem's 32-bit probability.
func prob(p float64) uint32 {
	return uint32(math.Round(p / 100 * math.MaxUint32))
}

func pct(p float64) string { return strconv.FormatFloat(p, 'g', -1, 64) + "%" }

// tcTime writes a duration the way tc reads it ("20ms", "1.5s", "100us").
func tcTime(d time.Duration) string {
	switch {
	case d%time.Second == 0:
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	case d%time.Millisecond == 0:
		return strconv.FormatInt(int64(d/time.Millisecond), 10) + "ms"
	}
	return strconv.FormatFloat(float64(d)/float64(time.Microsecond), 'f', -1, 64) + "us"
}

// normalTable is iproute2's normal.dist, computed the way its normal.c
// computes it (the kernel has no table of its own: tc sends one with every
// netem that asks for a distribution). It never changes once made.
var normalTable = sync.OnceValue(func() []int16 {
	const size, scale = 16384, 8192 // TABLESIZE, NETEM_DIST_SCALE
	table := make([]float64, size+1)
	for x := -10.0; x < 10.05; x += .00005 {
		i := int(math.RoundToEven(size * (.5 + .5*math.Erf(x/math.Sqrt2))))
		table[i] = x
	}
	out := make([]int16, 0, size/4)
	for i := 0; i < size; i += 4 {
		v := math.RoundToEven(table[i] * scale)
		out = append(out, int16(max(math.MinInt16, min(math.MaxInt16, v))))
	}
	return out
})

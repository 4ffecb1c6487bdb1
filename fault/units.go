package fault

import (
	"math"
	"strconv"
	"strings"
	"time"
)

// ParsePercent reads "10%", "1.5%" or "0.1%". The sign is required: a bare
// number is ambiguous between a fraction and a percentage.
func ParsePercent(field, s string) (Percent, error) {
	num, ok := strings.CutSuffix(s, "%")
	if !ok {
		return 0, errorf(field, s, "must be a percentage such as 10%%")
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, errorf(field, s, "must be a percentage such as 10%%")
	}
	p := Percent(f)
	if err := checkPercent(field, p); err != nil {
		return 0, err
	}
	return p, nil
}

// tcDurationUnits are iproute2's spellings that Go's time.ParseDuration does
// not know.
var tcDurationUnits = []struct{ tc, go_ string }{
	{"usecs", "us"}, {"usec", "us"}, {"msecs", "ms"}, {"msec", "ms"},
	{"secs", "s"}, {"sec", "s"},
}

// ParseDuration reads "20ms", "1.5s", "100us" and tc's "20msec". A unit is
// required; a negative duration is refused.
func ParseDuration(field, s string) (time.Duration, error) {
	g := s
	for _, u := range tcDurationUnits {
		if n, ok := strings.CutSuffix(g, u.tc); ok {
			g = n + u.go_
			break
		}
	}
	d, err := time.ParseDuration(g)
	if err != nil || g == "0" && s != "0" {
		return 0, errorf(field, s, "must be a duration such as 20ms")
	}
	if d < 0 {
		return 0, errorf(field, s, "must not be negative")
	}
	if d > MaxDelay {
		return 0, errorf(field, s, "must be at most %s", MaxDelay)
	}
	return d, nil
}

// rateUnits are tc's rate units, in bits per second. "bps" is bytes, as in tc.
var rateUnits = []struct {
	suffix string
	mult   float64
}{
	{"tbit", 1e12}, {"gbit", 1e9}, {"mbit", 1e6}, {"kbit", 1e3},
	{"tibit", 1 << 40}, {"gibit", 1 << 30}, {"mibit", 1 << 20}, {"kibit", 1 << 10},
	{"tbps", 8e12}, {"gbps", 8e9}, {"mbps", 8e6}, {"kbps", 8e3}, {"bps", 8}, {"bit", 1},
}

// ParseRate reads a rate as tc writes it: "10mbit", "1gbit", "500kbit",
// "1mbps" (bytes per second). It returns bits per second; zero is refused.
func ParseRate(field, s string) (uint64, error) {
	ls := strings.ToLower(s)
	for _, u := range rateUnits {
		num, ok := strings.CutSuffix(ls, u.suffix)
		if !ok {
			continue
		}
		f, err := strconv.ParseFloat(num, 64)
		if err != nil || math.IsNaN(f) || f < 0 || f*u.mult > math.MaxUint64/2 {
			break
		}
		bits := uint64(math.Round(f * u.mult))
		if bits == 0 {
			return 0, errorf(field, s, "must be more than 0 (use blackhole to drop everything)")
		}
		if bits < 8 {
			return 0, errorf(field, s, "must be at least 8bit")
		}
		return bits, nil
	}
	if n, err := strconv.ParseFloat(s, 64); err == nil && n == 0 {
		return 0, errorf(field, s, "must be more than 0 (use blackhole to drop everything)")
	}
	return 0, errorf(field, s, "must be a rate such as 10mbit, 1gbit or 500kbit")
}

// FormatRate writes bits per second with the largest tc unit that keeps it
// exact, so ParseRate reads back the same number.
func FormatRate(bits uint64) string {
	for _, u := range []struct {
		suffix string
		div    uint64
	}{{"tbit", 1e12}, {"gbit", 1e9}, {"mbit", 1e6}, {"kbit", 1e3}} {
		if bits >= u.div && bits%u.div == 0 {
			return strconv.FormatUint(bits/u.div, 10) + u.suffix
		}
	}
	return strconv.FormatUint(bits, 10) + "bit"
}

// sizeUnits are tc's size units in bytes: "k" and "kb" are KiB as in tc.
var sizeUnits = []struct {
	suffix string
	mult   float64
}{
	{"gbit", 1 << 27}, {"mbit", 1 << 17}, {"kbit", 1 << 7},
	{"gb", 1 << 30}, {"mb", 1 << 20}, {"kb", 1 << 10},
	{"g", 1 << 30}, {"m", 1 << 20}, {"k", 1 << 10}, {"b", 1},
}

// ParseSize reads a byte count as tc writes it: "32kb", "1mb", "1500b",
// "1500". It must be more than 0 and less than 4 GiB.
func ParseSize(field, s string) (uint32, error) {
	ls := strings.ToLower(s)
	mult := 1.0
	num := ls
	for _, u := range sizeUnits {
		if n, ok := strings.CutSuffix(ls, u.suffix); ok {
			num, mult = n, u.mult
			break
		}
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || math.IsNaN(f) || f < 0 {
		return 0, errorf(field, s, "must be a size such as 32kb or 1500b")
	}
	v := math.Round(f * mult)
	if v < 1 || v > math.MaxUint32 {
		return 0, errorf(field, s, "must be between 1b and 4gb")
	}
	return uint32(v), nil
}

// FormatSize writes bytes with the largest tc unit that keeps it exact.
func FormatSize(n uint32) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.FormatUint(uint64(n>>20), 10) + "mb"
	case n >= 1<<10 && n%(1<<10) == 0:
		return strconv.FormatUint(uint64(n>>10), 10) + "kb"
	}
	return strconv.FormatUint(uint64(n), 10) + "b"
}

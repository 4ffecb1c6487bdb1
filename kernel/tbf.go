package kernel

import (
	"math"
	"strconv"

	tc "github.com/florianl/go-tc"
)

// TBF is a token bucket: what leaves goes at most Rate, in bursts of at most
// Burst bytes, with at most Limit bytes waiting.
type TBF struct {
	Rate  uint64 // bits per second
	Burst uint32 // bytes
	Limit uint32 // bytes
}

// MaxTBFRate is the highest rate the tbf's 32-bit byte rate holds (nsnet
// does not send the 64-bit attribute the library lacks).
const MaxTBFRate = math.MaxUint32 * 8

// linklayerEthernet is TC_LINKLAYER_ETHERNET: the kernel computes
// transmission times itself and needs no rate table.
const linklayerEthernet = 1

func (t *TBF) attr() *tc.Tbf {
	bytesPerSec := t.Rate / 8
	// The bucket as the time it takes to send it, in psched ticks.
	buffer := uint32(min(float64(t.Burst)/float64(bytesPerSec)*1e9/nsPerTick, math.MaxUint32))
	burst := t.Burst
	return &tc.Tbf{
		Parms: &tc.TbfQopt{
			Rate:   tc.RateSpec{Rate: uint32(bytesPerSec), Linklayer: linklayerEthernet},
			Limit:  t.Limit,
			Buffer: buffer,
		},
		Burst: &burst,
	}
}

func (t *TBF) args() string {
	return "tbf rate " + tcRate(t.Rate) + " burst " + strconv.FormatUint(uint64(t.Burst), 10) + "b limit " + strconv.FormatUint(uint64(t.Limit), 10) + "b"
}

func tcRate(bits uint64) string {
	for _, u := range []struct {
		s string
		d uint64
	}{{"gbit", 1e9}, {"mbit", 1e6}, {"kbit", 1e3}} {
		if bits >= u.d && bits%u.d == 0 {
			return strconv.FormatUint(bits/u.d, 10) + u.s
		}
	}
	return strconv.FormatUint(bits, 10) + "bit"
}

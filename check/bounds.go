package check

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/nsnet/nsnet/fault"
	"github.com/nsnet/nsnet/internal/echo"
	"github.com/nsnet/nsnet/probe"
)

// Metrics a bound can hold.
const (
	// Latency is the mean round trip of the probes' echo requests.
	Latency = "latency"
	// Loss is the share of the probes' echo requests not answered in time.
	Loss = "loss"
	// Rate is the TCP throughput to a receiver nsnet runs in the target.
	Rate = "rate"
)

// Bound is a measured figure an expectation asserts: "latency <30ms",
// "loss <2%", "rate >8mbit". It lets a lab file check its own impairments.
type Bound struct {
	Metric string  // Latency, Loss or Rate
	Op     string  // <, <=, >, >=
	Value  float64 // seconds for latency, a fraction (0.02) for loss, bits/s for rate
	Text   string  // as written: "<30ms"
}

func (b Bound) String() string { return b.Metric + " " + b.Text }

// ParseBound reads a bound on metric: an operator (<, <=, >, >=) and a
// value in the metric's units as tc writes them (30ms, 2%, 8mbit).
func ParseBound(metric, s string) (Bound, error) {
	b := Bound{Metric: metric, Text: s}
	rest := strings.TrimSpace(s)
	for _, op := range []string{"<=", ">=", "<", ">"} {
		if r, ok := strings.CutPrefix(rest, op); ok {
			b.Op, rest = op, strings.TrimSpace(r)
			break
		}
	}
	if b.Op == "" {
		return b, fmt.Errorf("%s %s: must start with <, <=, > or >= (e.g. %s)", metric, echo.Quote(s), example(metric))
	}
	switch metric {
	case Latency:
		d, err := fault.ParseDuration(metric, rest)
		if err != nil {
			return b, err
		}
		b.Value = d.Seconds()
	case Loss:
		p, err := fault.ParsePercent(metric, rest)
		if err != nil {
			return b, err
		}
		b.Value = p.Fraction()
	case Rate:
		r, err := fault.ParseRate(metric, rest)
		if err != nil {
			return b, err
		}
		b.Value = float64(r)
	default:
		return b, fmt.Errorf("unknown metric %s (known: latency, loss, rate)", echo.Quote(metric))
	}
	return b, nil
}

func example(metric string) string {
	switch metric {
	case Latency:
		return `"<30ms"`
	case Loss:
		return `"<2%"`
	}
	return `">8mbit"`
}

// Holds reports whether v satisfies the bound.
func (b Bound) Holds(v float64) bool {
	switch b.Op {
	case "<":
		return v < b.Value
	case "<=":
		return v <= b.Value
	case ">":
		return v > b.Value
	}
	return v >= b.Value
}

// Measure is a bound with the figure measured for it.
type Measure struct {
	Bound
	Got  float64 // in the bound's units
	Pass bool
}

// String is "latency 21.348ms (want <30ms)".
func (m Measure) String() string {
	return fmt.Sprintf("%s %s (want %s)", m.Metric, m.format(), m.Text)
}

func (m Measure) format() string {
	switch m.Metric {
	case Latency:
		return fmt.Sprintf("%.3fms", m.Got*1e3)
	case Loss:
		return fmt.Sprintf("%.2f%%", m.Got*100)
	}
	if m.Got >= 1e9 {
		return fmt.Sprintf("%.2fgbit", m.Got/1e9)
	}
	return fmt.Sprintf("%.2fmbit", m.Got/1e6)
}

// Defaults for measured expectations.
const (
	// DefaultProbes is how many echo requests measure latency and loss.
	DefaultProbes = 200
	// probeInterval spaces them: 200 probes take a second.
	probeInterval = 5 * time.Millisecond
	// DefaultRateTime is how long a rate is measured.
	DefaultRateTime = 2 * time.Second
)

// measure runs the bounds of an expectation whose target answered: one
// series of echo requests for latency and loss, one TCP run for rate.
// Reached says whether anything answered at all.
func measure(ctx context.Context, r *Result, opt Options) {
	var series, tcp bool
	for _, b := range r.Bounds {
		series = series || b.Metric != Rate
		tcp = tcp || b.Metric == Rate
	}
	var st probe.Stats
	var tp probe.Throughput
	if series {
		p, err := probe.NewPinger(r.FromNS, r.Addr)
		if err != nil {
			r.Err = runError(err)
			r.Cause = cause(r.Expectation, err)
			return
		}
		n := r.Probes
		if n <= 0 {
			n = DefaultProbes
		}
		st = p.Series(ctx, probe.SeriesOptions{Count: n, Interval: probeInterval, Timeout: opt.Timeout})
		p.Close()
		if st.Received == 0 {
			r.Cause = cause(r.Expectation, st.LastErr)
			return
		}
		r.Reached, r.Latency = true, st.RTT.Mean
	}
	if tcp {
		if r.ToNS == nil {
			r.Err = fmt.Errorf("rate to %s: no node of the lab holds that address to run the receiver in", r.Addr)
			return
		}
		d := opt.RateTime
		if d <= 0 {
			d = DefaultRateTime
		}
		var err error
		tp, err = probe.MeasureThroughput(ctx, r.FromNS, r.ToNS, r.Addr, probe.ThroughputOptions{Duration: d, ConnectTimeout: opt.Timeout})
		if err != nil {
			if r.Err = runError(err); r.Err == nil {
				r.Reached = false
				r.Cause = cause(r.Expectation, err)
			}
			return
		}
		if !series {
			r.Reached, r.Latency = true, 0
		}
	}
	for _, b := range r.Bounds {
		m := Measure{Bound: b}
		switch b.Metric {
		case Latency:
			m.Got = st.RTT.Mean.Seconds()
		case Loss:
			m.Got = st.Loss()
		case Rate:
			m.Got = tp.BitsPerSecond()
		}
		m.Pass = b.Holds(m.Got)
		r.Measures = append(r.Measures, m)
	}
}

// boundsPass reports whether every measured bound held.
func boundsPass(r Result) bool {
	for _, m := range r.Measures {
		if !m.Pass {
			return false
		}
	}
	return len(r.Measures) == len(r.Bounds)
}

package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nsnet/nsnet/probe"
)

// Options select what to measure.
type Options struct {
	Workloads []Workload
	Reps      int
	// Runners by name, in the order they take turns: ip-each, ip-batch,
	// tuned, nsnet. Tuned is always measured: ratios are against it.
	Runners []string
	// Ping, when set, checks after each setup that every node answers a
	// ping from the host (not timed).
	Ping bool
	// SkipEachAbove leaves ip-each out for N above it: one process per
	// command takes minutes at N=10,000.
	SkipEachAbove int
	// Progress, if set, gets a line per measurement.
	Progress io.Writer
}

// Sample is one runner's measurement in one repetition.
type Sample struct {
	Setup, Teardown time.Duration
	PeakRSS         int64 // bytes; 0 when not measured (in-process runners)
	Replies         int   // nodes that answered the ping, when Ping is set
}

// Row summarizes one runner over the repetitions.
type Row struct {
	Runner        string  `json:"runner"`
	Setup         float64 `json:"setup_s"`          // median seconds
	SetupRatio    float64 `json:"setup_x_tuned"`    // median of per-repetition ratios
	Teardown      float64 `json:"teardown_s"`       // median seconds, until the devices are gone
	TeardownRatio float64 `json:"teardown_x_tuned"` // median of per-repetition ratios
	SetupPerNode  float64 `json:"setup_ms_per_node"`
	PeakRSSMB     float64 `json:"peak_rss_mb,omitempty"`
	Replies       int     `json:"ping_replies,omitempty"`
}

// Report is one workload's results.
type Report struct {
	Workload string `json:"workload"`
	N        int    `json:"n"`
	Reps     int    `json:"repetitions"`
	Rows     []Row  `json:"rows"`
}

// Run measures every workload with every runner, in turn, Reps times.
func Run(env *Env, opt Options) ([]Report, error) {
	if opt.Reps < 1 {
		opt.Reps = 1
	}
	runners, err := env.runners(opt.Runners)
	if err != nil {
		return nil, err
	}
	var reports []Report
	for _, w := range opt.Workloads {
		if err := w.Validate(); err != nil {
			return nil, err
		}
		samples := map[string][]Sample{}
		var names []string
		for _, r := range runners {
			if r.Name() == "ip-each" && opt.SkipEachAbove > 0 && w.N > opt.SkipEachAbove {
				continue
			}
			names = append(names, r.Name())
		}
		for rep := 0; rep < opt.Reps; rep++ {
			for _, r := range runners {
				if !contains(names, r.Name()) {
					continue
				}
				s, err := measure(env, r, w, opt.Ping)
				if err != nil {
					return nil, fmt.Errorf("%s %s: %w", w, r.Name(), err)
				}
				if opt.Progress != nil {
					fmt.Fprintf(opt.Progress, "%s rep %d %-8s setup %.3fs teardown %.3fs\n", w, rep+1, r.Name(), s.Setup.Seconds(), s.Teardown.Seconds())
				}
				samples[r.Name()] = append(samples[r.Name()], s)
			}
		}
		reports = append(reports, summarize(w, opt.Reps, names, samples))
	}
	return reports, nil
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func (env *Env) runners(names []string) ([]Runner, error) {
	all := map[string]Runner{
		"ip-each":  ipEach{env},
		"ip-batch": ipBatch{env},
		"tuned":    tuned{env},
		"nsnet":    nsnetLab{env: env},
	}
	if len(names) == 0 {
		names = []string{"ip-each", "ip-batch", "tuned", "nsnet"}
	}
	if !contains(names, "tuned") {
		names = append(names, "tuned")
	}
	var out []Runner
	for _, n := range names {
		r, ok := all[n]
		if bin, found := strings.CutPrefix(n, "nsnet="); found && bin != "" {
			// Another nsnet binary (an older build, say), measured beside
			// this one in the same run.
			r, ok = nsnetLab{env: env, bin: bin, name: n}, true
		}
		if !ok {
			return nil, fmt.Errorf("unknown runner %q (runners: ip-each, ip-batch, tuned, nsnet, nsnet=BINARY)", n)
		}
		out = append(out, r)
	}
	return out, nil
}

func measure(env *Env, r Runner, w Workload, ping bool) (Sample, error) {
	var s Sample
	start := time.Now()
	if err := r.Setup(w); err != nil {
		return s, fmt.Errorf("setup: %w", err)
	}
	s.Setup = time.Since(start)
	if rr, ok := r.(interface{ lastRSS() int64 }); ok {
		s.PeakRSS = rr.lastRSS()
	}
	if err := verify(env, w); err != nil {
		return s, fmt.Errorf("after setup: %w", err)
	}
	if ping {
		s.Replies = pingAll(w)
	}
	start = time.Now()
	if err := r.Teardown(w); err != nil {
		return s, fmt.Errorf("teardown: %w", err)
	}
	if err := waitGone(env.Host, w, 5*time.Minute); err != nil {
		return s, fmt.Errorf("teardown: %w", err)
	}
	s.Teardown = time.Since(start)
	if rr, ok := r.(interface{ lastRSS() int64 }); ok {
		s.PeakRSS = max(s.PeakRSS, rr.lastRSS())
	}
	return s, nil
}

// pingAll pings every node from the host at once and counts the nodes that
// answered. Nodes that did not are asked again, up to five rounds: the kernel
// may give a fresh veth its carrier up to a second late, and a runner is not
// required to wait for it (nsnet's up does).
func pingAll(w Workload) int {
	todo := make([]int, w.N)
	for i := range todo {
		todo[i] = i
	}
	for round := 0; round < 5 && len(todo) > 0; round++ {
		pairs := make([]probe.Pair, len(todo))
		for k, i := range todo {
			pairs[k] = probe.Pair{To: w.Addr(i)}
		}
		var left []int
		for k, r := range probe.Sweep(context.Background(), pairs, time.Second) {
			if !r.Reply {
				left = append(left, todo[k])
			}
		}
		todo = left
	}
	return w.N - len(todo)
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func summarize(w Workload, reps int, names []string, samples map[string][]Sample) Report {
	rep := Report{Workload: w.String(), N: w.N, Reps: reps}
	base := samples["tuned"]
	for _, name := range names {
		ss := samples[name]
		var setup, tear, sr, tr []float64
		var rss int64
		replies := -1
		for i, s := range ss {
			setup = append(setup, s.Setup.Seconds())
			tear = append(tear, s.Teardown.Seconds())
			if i < len(base) {
				sr = append(sr, s.Setup.Seconds()/base[i].Setup.Seconds())
				tr = append(tr, s.Teardown.Seconds()/base[i].Teardown.Seconds())
			}
			rss = max(rss, s.PeakRSS)
			if replies < 0 || s.Replies < replies {
				replies = s.Replies
			}
		}
		row := Row{
			Runner: name, Setup: median(setup), SetupRatio: median(sr), Teardown: median(tear), TeardownRatio: median(tr),
			PeakRSSMB: float64(rss) / (1 << 20), Replies: max(replies, 0),
		}
		row.SetupPerNode = row.Setup * 1000 / float64(w.N)
		rep.Rows = append(rep.Rows, row)
	}
	return rep
}

// WriteTable prints the reports for people.
func WriteTable(out io.Writer, reports []Report, ping bool) error {
	for _, r := range reports {
		fmt.Fprintf(out, "%s (medians of %d)\n", r.Workload, r.Reps)
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', tabwriter.AlignRight)
		hdr := "runner\tsetup s\tx tuned\tms/node\tteardown s\tx tuned\tpeak RSS MB\t"
		if ping {
			hdr += "ping replies\t"
		}
		fmt.Fprintln(tw, hdr)
		for _, row := range r.Rows {
			rss := "-"
			if row.PeakRSSMB > 0 {
				rss = fmt.Sprintf("%.1f", row.PeakRSSMB)
			}
			line := fmt.Sprintf("%s\t%.3f\t%.2f\t%.3f\t%.3f\t%.2f\t%s\t", row.Runner, row.Setup, row.SetupRatio, row.SetupPerNode, row.Teardown, row.TeardownRatio, rss)
			if ping {
				line += fmt.Sprintf("%d/%d\t", row.Replies, r.N)
			}
			fmt.Fprintln(tw, line)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintln(out)
	}
	return nil
}

// Results is everything one bench run measured.
type Results struct {
	Workloads []Report    `json:"workloads"`
	Exec      *ExecResult `json:"netns_exec,omitempty"`
}

// WriteJSON prints the results as JSON.
func WriteJSON(out io.Writer, reports Results) error {
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	return enc.Encode(reports)
}

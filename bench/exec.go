package bench

import (
	"errors"
	"fmt"
	"io/fs"
	"os/exec"
	"sort"
	"time"
)

// ExecResult compares `nsnet netns exec NS true` with `ip netns exec NS true`.
type ExecResult struct {
	Iterations int     `json:"iterations"`
	IPMicros   float64 `json:"ip_us"`    // median per exec
	NsnetMicro float64 `json:"nsnet_us"` // median per exec
	Ratio      float64 `json:"nsnet_x_ip"`
}

// Exec measures both in turn, in batches of 20, and reports the medians of
// the per-batch means.
func Exec(env *Env, iterations int) (ExecResult, error) {
	const ns = "bexec"
	n, err := env.Netns.Add(ns)
	if err != nil {
		return ExecResult{}, err
	}
	n.Close()
	defer func() {
		if err := env.Netns.Delete(ns); err != nil && !errors.Is(err, fs.ErrNotExist) {
			fmt.Println(err)
		}
	}()
	const batch = 20
	var ipT, nsT []float64
	run := func(bin string) (float64, error) {
		start := time.Now()
		for i := 0; i < batch; i++ {
			if out, err := exec.Command(bin, "netns", "exec", ns, "true").CombinedOutput(); err != nil {
				return 0, fmt.Errorf("%s netns exec: %v: %s", bin, err, out)
			}
		}
		return float64(time.Since(start).Microseconds()) / batch, nil
	}
	for done := 0; done < iterations; done += batch {
		a, err := run(env.IP)
		if err != nil {
			return ExecResult{}, err
		}
		b, err := run(env.Nsnet)
		if err != nil {
			return ExecResult{}, err
		}
		ipT, nsT = append(ipT, a), append(nsT, b)
	}
	sort.Float64s(ipT)
	sort.Float64s(nsT)
	r := ExecResult{Iterations: len(ipT) * batch, IPMicros: median(ipT), NsnetMicro: median(nsT)}
	r.Ratio = r.NsnetMicro / r.IPMicros
	return r, nil
}

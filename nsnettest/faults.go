package nsnettest

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/nsnet/nsnet/fault"
	"github.com/nsnet/nsnet/lab/faults"
)

// Fault is an impairment of what leaves one link end. Shares are fractions
// from 0 to 1: Loss 0.1 drops 10% of the packets. The zero Fault changes
// nothing.
type Fault struct {
	Delay  time.Duration
	Jitter time.Duration // uniform around Delay, unless Distribution says otherwise
	// Distribution of the jitter: fault.Uniform (the default) or
	// fault.Normal, where the backend has it.
	Distribution fault.Distribution
	Loss         float64
	// LossBurst, when set, makes the loss bursty (Gilbert-Elliott): Loss
	// is the chance of a burst starting, LossBurst of it ending; every
	// packet in a burst is lost.
	LossBurst float64
	Duplicate float64
	// Reorder sends this share at once while the others wait Delay, so
	// they overtake them; it needs a Delay.
	Reorder float64
	Corrupt float64
	// Rate limits the end to this many bits per second.
	Rate uint64
	// Down turns the carrier off; Blackhole keeps the link up and drops
	// everything.
	Down, Blackhole bool
}

// Spec is f in the fault package's terms, validated.
func (f Fault) Spec() (fault.Spec, error) {
	pct := func(name string, x float64) (fault.Percent, error) {
		if math.IsNaN(x) || x < 0 || x > 1 {
			return 0, fmt.Errorf("nsnettest.Fault.%s %g: must be a fraction from 0 to 1 (0.1 is 10%%)", name, x)
		}
		return fault.Percent(x * 100), nil
	}
	s := fault.Spec{Delay: f.Delay, Jitter: f.Jitter, Distribution: f.Distribution, Rate: fault.Rate{Bits: f.Rate}, Down: f.Down, Blackhole: f.Blackhole}
	var err error
	for _, p := range []struct {
		name string
		x    float64
		dst  *fault.Percent
	}{{"Loss", f.Loss, &s.Loss.P}, {"LossBurst", f.LossBurst, &s.Loss.R}, {"Duplicate", f.Duplicate, &s.Duplicate}, {"Reorder", f.Reorder, &s.Reorder}, {"Corrupt", f.Corrupt, &s.Corrupt}} {
		if *p.dst, err = pct(p.name, p.x); err != nil {
			return s, err
		}
	}
	if s.Loss.R != 0 {
		s.Loss.BadLoss = 100
	}
	return s, s.Validate()
}

// Impair puts f on what leaves node's iface, replacing the fault the end
// had, and returns once it is in force; the test fails on error. At cleanup
// the end gets back what it had before. The backend is the kernel's: netem
// where it exists, otherwise tbf, nftables and nsnet's userspace delayer.
func (l *Lab) Impair(t testing.TB, node, iface string, f Fault) {
	t.Helper()
	end := fault.End{Node: node, Iface: iface}
	l.mu.Lock()
	prev, had := l.impaired[end]
	l.mu.Unlock()
	if err := l.SetFault(node, iface, f); err != nil {
		t.Fatalf("nsnettest: impair %s: %v", end, err)
	}
	spec, _ := f.Spec()
	c := l.begin(end.String() + " " + spec.String())
	c.end = &end
	t.Cleanup(func() {
		l.reportFailure(t)
		if !l.end(c) {
			return // cleared since
		}
		var err error
		if had {
			err = l.SetFault(node, iface, prev)
		} else {
			err = l.ClearFault(node, iface)
		}
		if err != nil {
			t.Errorf("nsnettest: cleanup: restore %s: %v", end, err)
		}
	})
}

// SetFault is Impair for use outside a test: it returns the error and
// undoes nothing by itself.
func (l *Lab) SetFault(node, iface string, f Fault) error {
	l.Node(node) // an unknown node is a bug in the test
	spec, err := f.Spec()
	if err != nil {
		return err
	}
	end := fault.End{Node: node, Iface: iface}
	if _, err := faults.Set(l.opt, l.spec.Name, end, spec, faults.SetOptions{}); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if spec.IsZero() {
		delete(l.impaired, end)
	} else {
		l.impaired[end] = f
	}
	return nil
}

// ClearFault removes the fault of one end, if any.
func (l *Lab) ClearFault(node, iface string) error {
	end := fault.End{Node: node, Iface: iface}
	if err := faults.Clear(l.opt, l.spec.Name, end); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.impaired, end)
	return nil
}

// Partition cuts groups of nodes off from each other: no packet passes
// between a node of one group and a node of another, in either direction,
// on point-to-point links and shared bridges alike; nodes in no group are
// not affected. It replaces the partition in force, returns once the new
// one is, fails the test on error, and is healed at cleanup.
func (l *Lab) Partition(t testing.TB, groups ...[]string) {
	t.Helper()
	l.partition(t, fault.Partition{Groups: groups})
}

// PartitionOneWay drops only what the nodes of from send to the nodes of
// to (Jepsen's asymmetric partition): their replies and anything to sends
// still arrive.
func (l *Lab) PartitionOneWay(t testing.TB, from, to []string) {
	t.Helper()
	l.partition(t, fault.Partition{Groups: [][]string{from, to}, OneWay: true})
}

func (l *Lab) partition(t testing.TB, p fault.Partition) {
	t.Helper()
	if err := l.SetPartition(p); err != nil {
		t.Fatalf("nsnettest: partition %s: %v", p, err)
	}
	c := l.begin("partition " + p.String())
	c.partition = true
	t.Cleanup(func() {
		l.reportFailure(t)
		if !l.end(c) {
			return // healed since
		}
		if err := l.HealPartition(); err != nil {
			t.Errorf("nsnettest: cleanup: heal: %v", err)
		}
	})
}

// SetPartition is Partition for use outside a test.
func (l *Lab) SetPartition(p fault.Partition) error {
	return faults.Partition(l.opt, l.spec.Name, p)
}

// Heal removes the partition in force, if any, and returns once packets
// pass again; the test fails on error.
func (l *Lab) Heal(t testing.TB) {
	t.Helper()
	if err := l.HealPartition(); err != nil {
		t.Fatalf("nsnettest: heal: %v", err)
	}
}

// HealPartition is Heal for use outside a test.
func (l *Lab) HealPartition() error {
	if err := faults.Heal(l.opt, l.spec.Name); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for c := range l.active {
		if c.partition {
			delete(l.active, c)
		}
	}
	return nil
}

// ClearFaults puts the lab's network back as the file made it: every
// impairment cleared, the partition healed, and every link the test took
// down brought back up. The test fails on error.
func (l *Lab) ClearFaults(t testing.TB) {
	t.Helper()
	var errs []string
	if err := faults.Clear(l.opt, l.spec.Name); err != nil {
		errs = append(errs, err.Error())
	}
	if err := l.HealPartition(); err != nil {
		errs = append(errs, err.Error())
	}
	l.mu.Lock()
	var links []string
	for c := range l.active {
		switch {
		case c.link != "":
			links = append(links, c.link)
		case c.end != nil:
			delete(l.active, c)
		}
	}
	clear(l.impaired)
	l.mu.Unlock()
	// Both ends first, then wait: an end cannot work while its peer is
	// down.
	for _, k := range links {
		node, iface, _ := strings.Cut(k, ":")
		if err := l.SetLinkState(node, iface, true); err != nil && !l.linkDown(l.peerOf(node, iface)) {
			errs = append(errs, err.Error())
		}
		l.endLink(k)
	}
	if len(errs) > 0 {
		t.Fatalf("nsnettest: clear faults: %s", strings.Join(errs, "; "))
	}
}

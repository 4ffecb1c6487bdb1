package netns

import (
	"fmt"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Inherited is what nsnet's caller handed it that the Go runtime hides once
// it runs: the signals the caller had set to be ignored (the runtime
// installs its own handlers for most of them, and an exec resets handlers to
// the default, so the program nsnet execs would no longer ignore them) and
// the standard descriptors that were closed (the runtime opens /dev/null on
// them). A program nsnet execs on the caller's behalf, as `ip netns exec`
// does, gets both back: a `nohup` or `trap ” PIPE` stays in force, and a
// closed stdin stays closed.
//
// Only code that runs before the Go runtime can see these (package
// internal/fastexec records them in its C constructor); the zero value
// changes nothing.
type Inherited struct {
	// Ignored has bit n-1 set when signal n was ignored.
	Ignored uint64
	// Closed has bit i set when descriptor i (0, 1 or 2) was closed.
	Closed uint8
}

// Signals lists the ignored signals.
func (in Inherited) Signals() []syscall.Signal {
	var out []syscall.Signal
	for n := 1; n <= 64; n++ {
		if in.Ignored&(1<<(n-1)) != 0 {
			out = append(out, syscall.Signal(n))
		}
	}
	return out
}

// Restore puts the caller's ignored signals and closed descriptors back
// into this process, right before it execs: nothing else may run after it.
//
// The signals are ignored through the Go runtime (os/signal), which cannot
// ignore the few it needs for itself (SIGSEGV, SIGBUS, SIGFPE, SIGILL,
// SIGTRAP, SIGSYS, SIGSTKFLT, SIGPROF and glibc's 32-34); ignoring those
// only matters for a kill(2) from elsewhere, and no shell idiom does it.
func (in Inherited) Restore() {
	for _, s := range in.Signals() {
		signal.Ignore(s)
	}
	for fd := 0; fd < 3; fd++ {
		if in.Closed&(1<<fd) != 0 {
			unix.Close(fd)
		}
	}
}

// String encodes in for a command line (see ParseInherited): the ignored
// set and the closed descriptors in hexadecimal, "IGNORED:CLOSED".
func (in Inherited) String() string {
	return fmt.Sprintf("%#x:%#x", in.Ignored, in.Closed)
}

// ParseInherited reads what String wrote.
func ParseInherited(s string) (Inherited, error) {
	ign, closed, ok := strings.Cut(s, ":")
	if !ok {
		return Inherited{}, fmt.Errorf("inherited state %q: want IGNORED:CLOSED", s)
	}
	i, err := strconv.ParseUint(ign, 0, 64)
	if err != nil {
		return Inherited{}, fmt.Errorf("inherited state %q: %w", s, err)
	}
	c, err := strconv.ParseUint(closed, 0, 3)
	if err != nil {
		return Inherited{}, fmt.Errorf("inherited state %q: %w", s, err)
	}
	return Inherited{Ignored: i, Closed: uint8(c)}, nil
}

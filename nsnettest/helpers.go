package nsnettest

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/nsnet/nsnet/fault"
	"github.com/nsnet/nsnet/lab"
	"github.com/nsnet/nsnet/lab/faults"
	"github.com/nsnet/nsnet/netns"
)

// The test binary stands in for the nsnet binary: labs start their
// processes through it (the gate that holds a process until the ledger
// records it), and the fault package its helpers (the userspace delayer, a
// --for reverter). Main runs those roles, with the nsnet command line's
// hidden arguments, before anything of the test starts.

// helper runs the role args name, if any, and reports whether it did.
func helper(args []string) (int, bool) {
	switch {
	case len(args) >= 5 && args[0] == "exec" && args[1] == lab.GateArg && args[4] == "--":
		err := lab.Gate(args[2], args[3], os.Getenv(lab.EtcNetnsEnv), args[5:])
		fmt.Fprintln(os.Stderr, "nsnettest: lab process:", err)
		return 127, true
	case len(args) >= 5 && args[0] == "exec" && args[1] == lab.ReaperArg && args[4] == "--":
		return exit(lab.Reaper(args[2], args[3], args[5:])), true
	case len(args) == 3 && args[0] == "fault" && args[1] == faults.DelayerArg:
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
		defer stop()
		reload := make(chan os.Signal, 1)
		signal.Notify(reload, syscall.SIGHUP)
		return exit(faults.RunDelayer(ctx, args[2], reload)), true
	case len(args) == 7 && args[0] == "fault" && args[1] == faults.RevertArg:
		end, err := fault.ParseEnd(args[5])
		if err != nil {
			return exit(err), true
		}
		ns, err := strconv.ParseInt(args[6], 10, 64)
		if err != nil {
			return exit(err), true
		}
		opt := lab.Options{StateDir: args[2], Netns: netns.Dir{Path: args[3]}, Exe: self()}
		return exit(faults.Revert(opt, args[4], end, time.Unix(0, ns))), true
	}
	return 0, false
}

func exit(err error) int {
	if err != nil {
		fmt.Fprintln(os.Stderr, "nsnettest:", err)
		return 1
	}
	return 0
}

// self is the test binary.
func self() string {
	exe, err := os.Executable()
	if err != nil {
		return "/proc/self/exe"
	}
	return exe
}

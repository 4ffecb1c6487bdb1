package netns_test

import (
	"syscall"
	"testing"

	"github.com/nsnet/nsnet/netns"
)

func TestInheritedRoundTrip(t *testing.T) {
	for _, in := range []netns.Inherited{{}, {Ignored: 0x5804, Closed: 1}, {Ignored: ^uint64(0), Closed: 7}} {
		got, err := netns.ParseInherited(in.String())
		if err != nil || got != in {
			t.Errorf("%v: parsed back as %v, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "0x1", "x:0", "0:8", "0x1:0x1:0"} {
		if _, err := netns.ParseInherited(bad); err == nil {
			t.Errorf("ParseInherited(%q) accepted", bad)
		}
	}
	sigs := netns.Inherited{Ignored: 0x5804}.Signals()
	want := []syscall.Signal{syscall.SIGQUIT, syscall.SIGUSR2, syscall.SIGPIPE, syscall.SIGTERM}
	if len(sigs) != len(want) {
		t.Fatalf("Signals of 0x5804 = %v, want %v", sigs, want)
	}
	for i := range want {
		if sigs[i] != want[i] {
			t.Errorf("Signals of 0x5804 = %v, want %v", sigs, want)
		}
	}
}

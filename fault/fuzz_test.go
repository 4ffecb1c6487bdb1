package fault

import (
	"errors"
	"strings"
	"testing"
)

// FuzzParseWords: any input gives a valid spec or an invalid-fault error, and
// a spec's canonical words read back to the same spec.
func FuzzParseWords(f *testing.F) {
	for _, s := range []string{
		"delay 20ms 5ms 25% distribution normal loss 10% duplicate 1% reorder 25% corrupt 0.1% rate 10mbit",
		"loss gemodel 1% 25% 100% 0%", "rate 1gbit burst 64kb limit 1mb", "down", "blackhole", "none",
		"delay -5ms", "loss 120%", "rate 0", "jitter 5ms",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		s, err := ParseWords(strings.Fields(in))
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("%q: untyped error %v", in, err)
			}
			return
		}
		if err := s.Validate(); err != nil {
			t.Fatalf("%q: accepted an invalid spec: %v", in, err)
		}
		again, err := ParseWords(s.Words())
		if err != nil || again != s {
			t.Fatalf("%q: %q reads back as %+v, %v (want %+v)", in, s, again, err, s)
		}
	})
}

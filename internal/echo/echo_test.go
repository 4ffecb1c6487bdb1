package echo_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/nsnet/nsnet/internal/echo"
)

func TestQuote(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"eth0", `"eth0"`},
		{"a\nb", `"a\nb"`},
		{strings.Repeat("x", echo.Max), `"` + strings.Repeat("x", echo.Max) + `"`},
		{strings.Repeat("x", 5_000_000), `"` + strings.Repeat("x", echo.Max) + `"... (5000000 bytes)`},
		// A character is never cut in two.
		{strings.Repeat("x", echo.Max-1) + "é" + strings.Repeat("x", 100), `"` + strings.Repeat("x", echo.Max-1) + `"... (165 bytes)`},
	} {
		if got := echo.Quote(c.in); got != c.want {
			t.Errorf("Quote(%.20q...) = %s, want %s", c.in, got, c.want)
		}
	}
	if got := echo.Clip(strings.Repeat("y", 1000)); got != strings.Repeat("y", echo.Max)+"... (1000 bytes)" {
		t.Errorf("Clip: %s", got)
	}
}

func TestLines(t *testing.T) {
	long := "open " + strings.Repeat("z", 5_000_000) + ": no such file or directory"
	got := echo.Lines("first line\n" + long)
	lines := strings.Split(got, "\n")
	if len(lines) != 2 || lines[0] != "first line" || len(lines[1]) > echo.MaxLine+40 ||
		!strings.HasPrefix(lines[1], "open zzz") || !strings.HasSuffix(lines[1], ": no such file or directory") || !strings.Contains(lines[1], "bytes ...]") {
		t.Errorf("Lines: %d lines, second %d bytes: %.100s...%s", len(lines), len(lines[len(lines)-1]), got, got[max(0, len(got)-60):])
	}
	if s := "short\nlines"; echo.Lines(s) != s {
		t.Errorf("short lines changed: %q", echo.Lines(s))
	}
}

func TestSprintf(t *testing.T) {
	long := strings.Repeat("v", 1000)
	got := echo.Sprintf("100%% %d %q %s %q %5q", 7, long, "plain", "short", "w")
	want := `100% 7 "` + strings.Repeat("v", echo.Max) + `"... (1000 bytes) plain "short"   "w"`
	if got != want {
		t.Errorf("Sprintf:\n%s\nwant:\n%s", got, want)
	}
	err := echo.Errorf("bad %q: %w", long, errors.New("inner"))
	if !strings.HasSuffix(err.Error(), "(1000 bytes): inner") || errors.Unwrap(err) == nil {
		t.Errorf("Errorf: %v", err)
	}
}

// Package echo quotes values a user gave back to them in messages, bounded:
// a 5 MB interface name must not make a 5 MB error line. What is echoed is
// enough to recognize the value; its length says the rest.
package echo

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Max is how many bytes of a value a message shows.
const Max = 64

// Quote is strconv.Quote(s) for a short s; a longer one is cut after Max
// bytes (at a character boundary) and its length given:
// "xxxxxxxx"... (5000000 bytes).
func Quote(s string) string {
	if len(s) <= Max {
		return strconv.Quote(s)
	}
	return fmt.Sprintf("%s... (%d bytes)", strconv.Quote(prefix(s)), len(s))
}

// Clip is s unquoted, cut like Quote, for values that messages show bare
// (a field's path in a lab file, a namespace's name).
func Clip(s string) string {
	if len(s) <= Max {
		return s
	}
	return fmt.Sprintf("%s... (%d bytes)", prefix(s), len(s))
}

// prefix is the first Max bytes of s, less a character cut in two.
func prefix(s string) string {
	n := Max
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// MaxLine bounds a line of a message as a last resort, for the values that
// reach it through errors nsnet does not format itself (a path in an
// *os.PathError, say).
const MaxLine = 1024

// Lines cuts every line of msg longer than MaxLine in its middle, keeping
// its start and its end, where the rule usually is.
func Lines(msg string) string {
	if len(msg) <= MaxLine && !strings.Contains(msg, "\n") {
		return msg
	}
	lines := strings.Split(msg, "\n")
	for i, l := range lines {
		if len(l) > MaxLine {
			head, tail := l[:MaxLine/2], l[len(l)-MaxLine/4:]
			for len(head) > 0 && !utf8.RuneStart(l[len(head)]) {
				head = head[:len(head)-1]
			}
			for len(tail) > 0 && !utf8.RuneStart(tail[0]) {
				tail = tail[1:]
			}
			lines[i] = fmt.Sprintf("%s[... %d bytes ...]%s", head, len(l)-len(head)-len(tail), tail)
		}
	}
	return strings.Join(lines, "\n")
}

// Sprintf is fmt.Sprintf with every %q of a string argument given by Quote,
// for messages whose quoted values come from the user.
func Sprintf(format string, a ...any) string {
	f, a := bounded(format, a)
	return fmt.Sprintf(f, a...)
}

// Errorf is fmt.Errorf (%w included) with %q as in Sprintf.
func Errorf(format string, a ...any) error {
	f, a := bounded(format, a)
	return fmt.Errorf(f, a...)
}

// bounded rewrites each plain %q whose argument is a string to %s of its
// Quote. Verbs with flags, width or explicit argument indexes are left as
// they are.
func bounded(format string, a []any) (string, []any) {
	if !strings.Contains(format, "%q") {
		return format, a
	}
	var b strings.Builder
	out := append([]any(nil), a...)
	arg := 0
	for i := 0; i < len(format); i++ {
		c := format[i]
		b.WriteByte(c)
		if c != '%' || i+1 >= len(format) {
			continue
		}
		j := i + 1
		for j < len(format) && strings.IndexByte("+-# 0123456789.*[]", format[j]) >= 0 {
			j++
		}
		if j >= len(format) {
			break
		}
		verb := format[j]
		switch {
		case verb == '%':
		case verb == 'q' && j == i+1 && arg < len(out):
			if s, ok := out[arg].(string); ok {
				out[arg] = Quote(s)
				verb = 's'
			}
			arg++
		default:
			arg++
		}
		b.WriteString(format[i+1 : j])
		b.WriteByte(verb)
		i = j
	}
	return b.String(), out
}

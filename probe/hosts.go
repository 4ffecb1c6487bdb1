package probe

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"strings"

	"github.com/nsnet/nsnet/internal/echo"
)

// ErrNoSuchHost is matched when a name is in no line of the hosts file.
var ErrNoSuchHost = errors.New("no such host")

// LookupHosts resolves name from a hosts file (/etc/hosts inside a lab node
// is the one nsnet up wrote for it): the address of the first line naming
// it, as the "files" source of the C library does. Nothing else is asked: a
// probe never sends a DNS query.
func LookupHosts(path, name string) (netip.Addr, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return netip.Addr{}, fmt.Errorf("resolve %s: %w (no hosts file %s)", echo.Quote(name), ErrNoSuchHost, path)
		}
		return netip.Addr{}, fmt.Errorf("resolve %s: %w", echo.Quote(name), err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(line)
		if len(fields) < 2 {
			continue
		}
		a, err := netip.ParseAddr(fields[0])
		if err != nil {
			continue
		}
		for _, n := range fields[1:] {
			if strings.EqualFold(n, name) {
				return a.Unmap(), nil
			}
		}
	}
	if err := sc.Err(); err != nil {
		return netip.Addr{}, fmt.Errorf("resolve %s: %w", echo.Quote(name), err)
	}
	return netip.Addr{}, fmt.Errorf("resolve %s: %w in %s (inside a lab node it lists the lab's nodes)", echo.Quote(name), ErrNoSuchHost, path)
}

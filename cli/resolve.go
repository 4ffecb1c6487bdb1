package cli

import (
	"errors"
	"io/fs"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"

	"github.com/nsnet/nsnet/probe"
)

// hostnameRE is what ping and fetch take for a name: letters, digits, '-',
// '_' and dots (lab node names, NODE.LAB).
var hostnameRE = regexp.MustCompile(`^[A-Za-z0-9_]([A-Za-z0-9_.-]{0,252})$`)

// hostsFile is the hosts file of the command's namespace: the one nsnet up
// wrote for it (EtcNetns/NS/hosts) when -n names one, otherwise /etc/hosts,
// which inside a lab node (nsnet exec) is that node's.
func (e *Env) hostsFile(c Command) string {
	if c.Opts.NS != "" && e.EtcNetns != "" {
		p := filepath.Join(e.EtcNetns, c.Opts.NS, "hosts")
		if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
			return p
		}
	}
	return "/etc/hosts"
}

// resolve returns the address of name, from the command's hosts file.
func (e *Env) resolve(c Command, name string) (netip.Addr, error) {
	if a, err := netip.ParseAddr(name); err == nil {
		return a.Unmap(), nil
	}
	return probe.LookupHosts(e.hostsFile(c), name)
}

// resolveURL replaces a name in the URL's host by its address.
func (e *Env) resolveURL(c Command, raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Hostname() == "" {
		return raw, nil // probe.Fetch reports it
	}
	if _, err := netip.ParseAddr(u.Hostname()); err == nil {
		return raw, nil
	}
	a, err := e.resolve(c, u.Hostname())
	if err != nil {
		return "", err
	}
	host := a.String()
	if a.Is6() {
		host = "[" + host + "]"
	}
	if p := u.Port(); p != "" {
		host += ":" + p
	}
	u.Host = host
	return u.String(), nil
}

package cni

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"

	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
)

// lease is what address management handed out for one attachment.
type lease struct {
	IPs       []recordIP // Addr carries the subnet's prefix length
	Routes    []Route
	DNS       types.DNS
	Allocated []netip.Addr // built-in allocator only
}

// allocateBuiltin takes one address of every configured subnet: the one
// asked for (Request.IPs) or a free one. On error nothing stays allocated.
func allocateBuiltin(s *store, cfg *Config, want []netip.Addr, owner string) (lease, error) {
	var l lease
	for _, subnet := range cfg.IPAM.Subnets {
		var a netip.Addr
		var err error
		if i := slices.IndexFunc(want, subnet.Contains); i >= 0 {
			a, err = want[i], s.take(want[i], owner)
		} else {
			a, err = s.allocate(subnet, owner)
		}
		if err != nil {
			for _, got := range l.Allocated {
				err = errors.Join(err, s.release(got, owner))
			}
			return lease{}, err
		}
		l.Allocated = append(l.Allocated, a)
		l.IPs = append(l.IPs, recordIP{
			Addr:    netip.PrefixFrom(a, subnet.Bits()),
			Subnet:  subnet,
			Gateway: gatewayOf(subnet),
		})
	}
	l.Routes = cfg.IPAM.Routes
	l.DNS = cfg.DNS
	return l, nil
}

// delegate runs the configured IPAM plugin, found in CNI_PATH, with the same
// configuration and environment nsnet received, as the spec's delegation
// protocol says. The child process is started from an ordinary goroutine, so
// it runs in the plugin's own (host) namespace.
type delegate struct {
	exec invoke.Exec
	cfg  *Config
	args *skel.CmdArgs
}

func (d delegate) env(verb string) *invoke.Args {
	return &invoke.Args{
		Command:       verb,
		ContainerID:   d.args.ContainerID,
		NetNS:         d.args.Netns,
		IfName:        d.args.IfName,
		PluginArgsStr: d.args.Args,
		Path:          d.args.Path,
	}
}

func (d delegate) path() (string, error) {
	p, err := invoke.FindInPath(d.cfg.IPAM.Type, filepath.SplitList(d.args.Path))
	if err != nil {
		return "", &DelegateError{Plugin: d.cfg.IPAM.Type, Verb: "lookup", Err: err}
	}
	return p, nil
}

func (d delegate) run(ctx context.Context, verb string) error {
	p, err := d.path()
	if err != nil {
		return err
	}
	if err := invoke.ExecPluginWithoutResult(ctx, p, d.cfg.Raw, d.env(verb), d.exec); err != nil {
		return &DelegateError{Plugin: d.cfg.IPAM.Type, Verb: verb, Err: err}
	}
	return nil
}

func (d delegate) add(ctx context.Context) (lease, error) {
	p, err := d.path()
	if err != nil {
		return lease{}, err
	}
	res, err := invoke.ExecPluginWithResult(ctx, p, d.cfg.Raw, d.env("ADD"), d.exec)
	if err != nil {
		return lease{}, &DelegateError{Plugin: d.cfg.IPAM.Type, Verb: "ADD", Err: err}
	}
	r, err := types100.NewResultFromResult(res)
	if err != nil {
		return lease{}, &DelegateError{Plugin: d.cfg.IPAM.Type, Verb: "ADD", Err: err}
	}
	return leaseFromResult(d.cfg.IPAM.Type, r)
}

// honoured fails when a delegated plugin's lease lacks an address the
// runtime asked for: a plugin that ignores requests (dhcp, or one that does
// not read CNI_ARGS) must not leave the container with an address nobody
// asked for.
func honoured(plugin string, want []netip.Addr, l lease) error {
	for _, a := range want {
		if !slices.ContainsFunc(l.IPs, func(ip recordIP) bool { return ip.Addr.Addr() == a }) {
			var gave []string
			for _, ip := range l.IPs {
				gave = append(gave, ip.Addr.String())
			}
			return &DelegateError{Plugin: plugin, Verb: "ADD", Err: fmt.Errorf("requested address %s not honoured (it gave %s)", a, strings.Join(gave, ", "))}
		}
	}
	return nil
}

// leaseFromResult checks an IPAM result before anything is built from it.
func leaseFromResult(plugin string, r *types100.Result) (lease, error) {
	bad := func(format string, a ...any) error {
		return &DelegateError{Plugin: plugin, Verb: "ADD", Err: fmt.Errorf(format, a...)}
	}
	var l lease
	if len(r.IPs) == 0 {
		return l, bad("result has no addresses")
	}
	for i, ip := range r.IPs {
		p, ok := prefixOf(ip.Address)
		if !ok || p.Bits() == 0 {
			return l, bad("ips[%d]: %q is not an address with a prefix length", i, ip.Address.String())
		}
		x := recordIP{Addr: p, Subnet: p.Masked()}
		if ip.Gateway != nil {
			gw, ok := netip.AddrFromSlice(ip.Gateway)
			gw = gw.Unmap()
			if !ok || gw.Is4() != p.Addr().Is4() {
				return l, bad("ips[%d]: gateway %v does not match address %s", i, ip.Gateway, p)
			}
			if gw == p.Addr() {
				return l, bad("ips[%d]: gateway %s is the address itself", i, gw)
			}
			x.Gateway = gw
		}
		l.IPs = append(l.IPs, x)
	}
	for i, rt := range r.Routes {
		dst, ok := prefixOf(rt.Dst)
		if !ok {
			return l, bad("routes[%d]: bad destination %v", i, rt.Dst.String())
		}
		if rt.MTU != 0 || rt.AdvMSS != 0 || rt.Priority != 0 || rt.Table != nil || rt.Scope != nil {
			return l, bad("routes[%d] (%s): mtu, advmss, priority, table and scope are not supported", i, dst)
		}
		x := Route{Dst: dst.Masked()}
		if rt.GW != nil {
			gw, ok := netip.AddrFromSlice(rt.GW)
			gw = gw.Unmap()
			if !ok || gw.Is4() != dst.Addr().Is4() {
				return l, bad("routes[%d]: gateway %v does not match destination %s", i, rt.GW, dst)
			}
			x.GW = gw
		}
		l.Routes = append(l.Routes, x)
	}
	l.DNS = r.DNS
	return l, nil
}

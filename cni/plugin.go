package cni

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"

	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"
	"golang.org/x/sys/unix"

	"github.com/nsnet/nsnet/kernel"
	"github.com/nsnet/nsnet/netns"
)

// About is printed when the binary is run without CNI_COMMAND.
const About = "nsnet-cni: nsnet's CNI plugin (veth in ptp or bridge mode, built-in or delegated IPAM)"

// Versions are the CNI spec versions the plugin speaks. CHECK needs 0.4.0
// and GC and STATUS 1.1.0; skel refuses those verbs for older versions.
func Versions() version.PluginInfo {
	return version.PluginSupports("0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")
}

// Funcs returns the CNI verbs for skel.PluginMainFuncs, with the default
// way of running delegated plugins.
func Funcs() skel.CNIFuncs { return (&Plugin{Reap: StartReaper}).Funcs() }

// Plugin implements the CNI verbs. Its methods return nsnet's typed errors;
// Funcs converts them to CNI errors with the spec's codes.
type Plugin struct {
	// Exec runs delegated IPAM plugins; nil is invoke's default, which
	// passes their stderr through.
	Exec invoke.Exec
	// Reap starts deleting a host link (by index, if it still carries
	// alias) in a process that outlives the plugin, for backgroundDelete.
	// nil deletes in place: the plugin binary sets StartReaper, which
	// re-executes the binary itself, something a test binary cannot do.
	Reap func(index int, alias string) error
}

// Funcs wraps the verbs for skel.
func (p *Plugin) Funcs() skel.CNIFuncs {
	return skel.CNIFuncs{
		Add:    func(a *skel.CmdArgs) error { return toCNI(p.Add(a)) },
		Del:    func(a *skel.CmdArgs) error { return toCNI(p.Del(a)) },
		Check:  func(a *skel.CmdArgs) error { return toCNI(p.Check(a)) },
		Status: func(a *skel.CmdArgs) error { return toCNI(p.Status(a)) },
		GC:     func(a *skel.CmdArgs) error { return toCNI(p.GC(a)) },
	}
}

// maxContainerID leaves room in a file name (NAME_MAX, 255) for ":IFNAME".
const maxContainerID = 255 - 1 - kernel.MaxLinkNameLen

func checkArgs(args *skel.CmdArgs, needNetns bool) error {
	switch {
	case args.ContainerID == "":
		return &EnvError{Var: "CNI_CONTAINERID", Rule: "required"}
	case !cniNameRE.MatchString(args.ContainerID):
		return &EnvError{Var: "CNI_CONTAINERID", Rule: fmt.Sprintf("%s must start with a letter or digit and contain only letters, digits, '_', '.' and '-'", quoteClipped(args.ContainerID))}
	case len(args.ContainerID) > maxContainerID:
		return &EnvError{Var: "CNI_CONTAINERID", Rule: fmt.Sprintf("longer than %d bytes (it names a state file)", maxContainerID)}
	}
	if err := kernel.ValidateLinkName(args.IfName); err != nil {
		return &EnvError{Var: "CNI_IFNAME", Rule: err.Error()}
	}
	if needNetns && args.Netns == "" {
		return &EnvError{Var: "CNI_NETNS", Rule: "required"}
	}
	return nil
}

// openContainerNS opens CNI_NETNS and refuses the plugin's own namespace.
func openContainerNS(path string, own *netns.NS) (*netns.NS, error) {
	ns, err := netns.Open(path)
	if err != nil {
		return nil, &NetNSError{Path: path, Err: err}
	}
	if err := isNetNS(ns.Fd()); err != nil {
		ns.Close()
		return nil, &NetNSError{Path: path, Err: err}
	}
	a, aerr := ns.ID()
	b, berr := own.ID()
	if err := errors.Join(aerr, berr); err != nil {
		ns.Close()
		return nil, &NetNSError{Path: path, Err: err}
	}
	if a == b {
		ns.Close()
		return nil, &NetNSError{Path: path, Err: ErrOwnNetNS}
	}
	return ns, nil
}

// refuseOwnNS fails when CNI_NETNS is given and is the plugin's own
// namespace. A namespace that is gone is fine: DEL must work without it.
func refuseOwnNS(path string, own *netns.NS) error {
	if path == "" {
		return nil
	}
	ns, err := openContainerNS(path, own)
	if errors.Is(err, ErrOwnNetNS) {
		return err
	}
	if ns != nil {
		ns.Close()
	}
	return nil
}

// attachment is what ADD and CHECK both work on: the configuration, the
// runtime's request, and the host's and the container's namespaces with a
// handle bound to each.
type attachment struct {
	cfg            *Config
	req            Request
	hostNS, contNS *netns.NS
	host, cont     *kernel.Handle
}

func openAttachment(args *skel.CmdArgs) (*attachment, error) {
	cfg, err := ParseConfig(args.StdinData)
	if err != nil {
		return nil, err
	}
	if err := checkArgs(args, true); err != nil {
		return nil, err
	}
	req, err := cfg.Request(args.Args)
	if err != nil {
		return nil, err
	}
	a := &attachment{cfg: cfg, req: req}
	if a.hostNS, a.host, err = kernel.OpenCurrent(); err != nil {
		return nil, err
	}
	if a.contNS, err = openContainerNS(args.Netns, a.hostNS); err != nil {
		a.close()
		return nil, err
	}
	if a.cont, err = kernel.Open(a.contNS); err != nil {
		a.close()
		return nil, err
	}
	return a, nil
}

func (a *attachment) close() {
	for _, h := range []*kernel.Handle{a.cont, a.host} {
		if h != nil {
			h.Close()
		}
	}
	for _, ns := range []*netns.NS{a.contNS, a.hostNS} {
		if ns != nil {
			ns.Close()
		}
	}
}

// Add connects the container to the network.
func (p *Plugin) Add(args *skel.CmdArgs) error {
	a, err := openAttachment(args)
	if err != nil {
		return err
	}
	defer a.close()
	cfg, hostNS, host, contNS, cont := a.cfg, a.hostNS, a.host, a.contNS, a.cont

	st, err := openStore(cfg.DataDir, cfg.Network, false)
	if err != nil {
		return err
	}
	defer st.close()
	key := attachmentKey(args.ContainerID, args.IfName)
	if st.exists(key) {
		return &ExistsError{What: fmt.Sprintf("attachment of container %s with interface %s", args.ContainerID, args.IfName), Hint: "DEL it first"}
	}

	ctx := context.Background()
	d := delegate{exec: p.Exec, cfg: cfg, args: args}
	var l lease
	if cfg.IPAM.Builtin() {
		l, err = allocateBuiltin(st, cfg, a.req.IPs, key)
	} else {
		if l, err = d.add(ctx); err == nil {
			err = honoured(cfg.IPAM.Type, a.req.IPs, l)
		}
		if err != nil {
			// The spec: a failed delegated ADD is followed by its DEL.
			err = errors.Join(err, d.run(ctx, "DEL"))
		}
	}
	if err != nil {
		return err
	}
	r := &record{
		ContainerID: args.ContainerID,
		IfName:      args.IfName,
		Netns:       args.Netns,
		Mode:        cfg.Mode,
		HostVeth:    hostVethName(cfg.Network, args.ContainerID, args.IfName),
		MTU:         cfg.MTU,
		MAC:         a.req.MAC.String(), // "" when the runtime did not choose
		IPAM:        cfg.IPAM.Type,
		Routes:      l.Routes,
		Allocated:   l.Allocated,
		Masquerade:  cfg.Masquerade,
	}
	if cfg.Mode == ModeBridge {
		r.Bridge, r.Gateway, r.Hairpin = cfg.Bridge, cfg.Gateway, cfg.Hairpin
	}
	recorded := false
	undo := func(cause error) error {
		errs := []error{teardown(host, cfg.Network, r.ContainerID, r.IfName, nil)}
		if r.Masquerade {
			errs = append(errs, delMasq(hostNS, cfg.Network, r.IPs))
		}
		errs = append(errs, releaseIPAM(ctx, st, d, r), st.releaseMAC(r.MAC, key))
		if err := errors.Join(errs...); err != nil {
			// Keep the record: DEL or GC will finish the job.
			return errors.Join(cause, err)
		}
		if recorded {
			return errors.Join(cause, st.remove(key))
		}
		return cause
	}
	if r.MAC != "" && r.Mode == ModeBridge {
		// Two ports of one bridge with one MAC would take each
		// other's frames; on ptp links they never meet.
		if err := st.takeMAC(r.MAC, key); err != nil {
			return undo(err)
		}
	}
	if r.IPs, err = placeIPs(cfg, l.IPs); err != nil {
		return undo(err)
	}
	// Record before create: from here on DEL and GC can find everything.
	if err := st.create(r); err != nil {
		if !errors.Is(err, fs.ErrExist) {
			return undo(err)
		}
		return errors.Join(err, lostRace(ctx, st, d, r))
	}
	recorded = true
	w, err := setup(host, cont, contNS, cfg.Network, r)
	if err != nil {
		return undo(err)
	}
	if cfg.Mode == ModePTP || cfg.Gateway {
		if err := enableForwarding(hostNS, r.IPs); err != nil {
			return undo(err)
		}
	}
	if cfg.Masquerade {
		if err := addMasq(hostNS, cfg.Network, r.IPs); err != nil {
			return undo(err)
		}
	}
	res := buildResult(cfg, args, r, w, l.DNS)
	return types.PrintResult(res, cfg.CNIVersion)
}

// placeIPs turns the lease into the addresses set in the container, after
// checking that the mode can use them.
func placeIPs(cfg *Config, ips []recordIP) ([]recordIP, error) {
	out := make([]recordIP, 0, len(ips))
	for _, ip := range ips {
		if cfg.MTU != 0 && ip.Addr.Addr().Is6() {
			if err := kernel.ValidateMTU(cfg.MTU, true); err != nil {
				return nil, &ConfigError{Field: "mtu", Rule: err.Error()}
			}
		}
		if cfg.Mode == ModePTP {
			if !ip.Gateway.IsValid() {
				return nil, &ConfigError{Field: "ipam", Rule: fmt.Sprintf("address %s comes without a gateway; ptp mode needs one for the host end", ip.Addr)}
			}
			// Point-to-point: the container owns just its address;
			// everything else goes through the gateway.
			ip.Addr = fullPrefix(ip.Addr.Addr())
		}
		out = append(out, ip)
	}
	return out, nil
}

// lostRace undoes an ADD that found, when recording, that a concurrent ADD
// of the same attachment had recorded first. Everything under the
// attachment's key but this ADD's own fresh addresses is the winner's: its
// interfaces, its MAC claim, the addresses it holds (a requested address
// both took under the same key), and a delegated plugin's lease, which the
// plugin keeps by attachment too, so its DEL would free the winner's (the
// winner's own DEL later frees both).
func lostRace(ctx context.Context, st *store, d delegate, r *record) error {
	winner, err := st.read(r.key())
	if err != nil {
		// The record went away again (a DEL in between): nothing
		// is the winner's any more.
		return releaseIPAM(ctx, st, d, r)
	}
	var errs []error
	for _, a := range r.Allocated {
		if !slices.Contains(winner.Allocated, a) {
			errs = append(errs, st.release(a, r.key()))
		}
	}
	return errors.Join(errs...)
}

func releaseIPAM(ctx context.Context, st *store, d delegate, r *record) error {
	var errs []error
	for _, a := range r.Allocated {
		errs = append(errs, st.release(a, r.key()))
	}
	if r.IPAM != BuiltinIPAM {
		errs = append(errs, d.run(ctx, "DEL"))
	}
	return errors.Join(errs...)
}

func buildResult(cfg *Config, args *skel.CmdArgs, r *record, w wired, dns types.DNS) *types100.Result {
	res := &types100.Result{CNIVersion: types100.ImplementedSpecVersion}
	if prev := cfg.PrevResult; prev != nil {
		// A chained ADD passes the previous result on, with ours added.
		res.Interfaces = append(res.Interfaces, prev.Interfaces...)
		res.IPs = append(res.IPs, prev.IPs...)
		res.Routes = append(res.Routes, prev.Routes...)
		res.DNS = prev.DNS
	}
	if r.Mode == ModeBridge {
		res.Interfaces = append(res.Interfaces, &types100.Interface{Name: r.Bridge, Mac: w.bridge.MAC.String(), Mtu: w.bridge.MTU})
	}
	res.Interfaces = append(res.Interfaces, &types100.Interface{Name: r.HostVeth, Mac: w.host.MAC.String(), Mtu: w.host.MTU})
	contIdx := len(res.Interfaces)
	res.Interfaces = append(res.Interfaces, &types100.Interface{Name: r.IfName, Mac: w.cont.MAC.String(), Mtu: w.cont.MTU, Sandbox: args.Netns})
	for _, ip := range r.IPs {
		res.IPs = append(res.IPs, &types100.IPConfig{
			Interface: types100.Int(contIdx),
			Address:   ipNetOf(ip.Addr),
			Gateway:   ipOf(ip.Gateway),
		})
	}
	for _, rt := range r.Routes {
		res.Routes = append(res.Routes, &types.Route{Dst: ipNetOf(rt.Dst), GW: ipOf(rt.GW)})
	}
	if !dns.IsEmpty() {
		res.DNS = dns
	}
	return res
}

// Del disconnects the container. It succeeds when the attachment, its
// namespace, its record or the previous result are already gone, and
// frees the addresses in any case.
func (p *Plugin) Del(args *skel.CmdArgs) error {
	cfg, err := ParseConfig(args.StdinData)
	if err != nil {
		return err
	}
	if err := checkArgs(args, false); err != nil {
		return err
	}
	hostNS, host, err := kernel.OpenCurrent()
	if err != nil {
		return err
	}
	defer hostNS.Close()
	defer host.Close()
	if err := refuseOwnNS(args.Netns, hostNS); err != nil {
		return err
	}
	st, err := openStore(cfg.DataDir, cfg.Network, false)
	if err != nil {
		return err
	}
	defer st.close()
	var delegated func() error
	if !cfg.IPAM.Builtin() {
		delegated = func() error {
			return delegate{exec: p.Exec, cfg: cfg, args: args}.run(context.Background(), "DEL")
		}
	}
	var reap func(int, string) error
	if cfg.BackgroundDelete {
		reap = p.Reap
	}
	return detach(st, host, hostNS, cfg.Network, delegated, reap, args.ContainerID, args.IfName)
}

// detach removes one attachment: interfaces, masquerade, addresses, record,
// and runs delegated, the IPAM plugin's DEL, when not nil. The record stays
// when something could not be removed, so that a retried DEL or a GC finds
// it again.
func detach(st *store, host *kernel.Handle, hostNS *netns.NS, network string, delegated func() error, reap func(int, string) error, containerID, ifName string) error {
	key := attachmentKey(containerID, ifName)
	r, rerr := st.read(key)
	if rerr != nil && !errors.Is(rerr, fs.ErrNotExist) && !errors.Is(rerr, errCorrupt) {
		return rerr
	}
	errs := []error{teardown(host, network, containerID, ifName, reap)}
	switch {
	case r != nil:
		if r.Masquerade {
			errs = append(errs, delMasq(hostNS, network, r.IPs))
		}
		for _, a := range r.Allocated {
			errs = append(errs, st.release(a, key))
		}
		errs = append(errs, st.releaseMAC(r.MAC, key))
	case errors.Is(rerr, errCorrupt):
		// The plugin died while recording: free whatever the
		// allocator handed to this attachment.
		allocs, err := st.allocations()
		errs = append(errs, err)
		for a, owner := range allocs {
			if owner == key {
				errs = append(errs, st.release(a, key))
			}
		}
		macs, err := st.macs()
		errs = append(errs, err)
		for m, owner := range macs {
			if owner == key {
				errs = append(errs, st.releaseMAC(m, key))
			}
		}
	}
	if delegated != nil {
		errs = append(errs, delegated())
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return st.remove(key)
}

// Check verifies that the attachment is as ADD left it.
func (p *Plugin) Check(args *skel.CmdArgs) error {
	a, err := openAttachment(args)
	if err != nil {
		return err
	}
	defer a.close()
	cfg, hostNS, host, cont := a.cfg, a.hostNS, a.host, a.cont
	st, err := openStore(cfg.DataDir, cfg.Network, false)
	if err != nil {
		return err
	}
	defer st.close()
	key := attachmentKey(args.ContainerID, args.IfName)
	r, err := st.read(key)
	if errors.Is(err, fs.ErrNotExist) {
		return &CheckError{What: fmt.Sprintf("no attachment of container %s with interface %s is recorded on network %s", args.ContainerID, args.IfName, cfg.Network)}
	}
	if err != nil {
		return err
	}
	for _, a := range r.Allocated {
		owner, err := st.owner(a)
		if err != nil {
			return err
		}
		if owner != key {
			return &CheckError{What: fmt.Sprintf("address %s is no longer reserved for this attachment", a)}
		}
	}
	if err := checkRequest(a.req, r); err != nil {
		return err
	}
	if !cfg.IPAM.Builtin() {
		if err := (delegate{exec: p.Exec, cfg: cfg, args: args}).run(context.Background(), "CHECK"); err != nil {
			return err
		}
	}
	if err := checkAttachment(host, cont, cfg, r); err != nil {
		return err
	}
	if r.Masquerade {
		if err := checkMasq(hostNS, cfg.Network, r.IPs); err != nil {
			return err
		}
	}
	return nil
}

// Status reports whether an ADD could succeed now.
func (p *Plugin) Status(args *skel.CmdArgs) error {
	cfg, err := ParseConfig(args.StdinData)
	if err != nil {
		return err
	}
	// STATUS needs only the namespace (for nftables), no netlink handle.
	hostNS, err := netns.Current()
	if err != nil {
		return &StatusError{Err: err}
	}
	defer hostNS.Close()
	if cfg.IPAM.Builtin() {
		st, err := openStore(cfg.DataDir, cfg.Network, false)
		if err != nil {
			return &StatusError{Err: err}
		}
		defer st.close()
		allocs, err := st.allocations()
		if err != nil {
			return &StatusError{Err: err}
		}
		for _, subnet := range cfg.IPAM.Subnets {
			var used uint64
			for a := range allocs {
				if subnet.Contains(a) {
					used++
				}
			}
			if used >= pool(subnet).Size() {
				return &StatusError{Err: &ExhaustedError{Subnet: subnet}}
			}
		}
	} else if err := (delegate{exec: p.Exec, cfg: cfg, args: args}).run(context.Background(), "STATUS"); err != nil {
		return &StatusError{Err: err}
	}
	if cfg.Masquerade {
		if err := masqAvailable(hostNS); err != nil {
			return &StatusError{Err: err}
		}
	}
	return nil
}

// GC removes every attachment of the network that is not in
// cni.dev/valid-attachments, then whatever no attachment uses any more. It
// goes on after errors and reports them all.
func (p *Plugin) GC(args *skel.CmdArgs) error {
	cfg, err := ParseConfig(args.StdinData)
	if err != nil {
		return err
	}
	if cfg.ValidAttachments == nil {
		// Without the keep-list every attachment would look stale: a
		// GC that lost it must not take the network down.
		return &ConfigError{Field: validAttachmentsKey, Rule: "required for GC: the attachments still in use (an empty list if none is)"}
	}
	hostNS, host, err := kernel.OpenCurrent()
	if err != nil {
		return err
	}
	defer hostNS.Close()
	defer host.Close()
	// Exclusive: no ADD is between recording and building while GC
	// decides what is stale.
	st, err := openStore(cfg.DataDir, cfg.Network, true)
	if err != nil {
		return err
	}
	defer st.close()
	ctx := context.Background()
	valid := map[string]bool{}
	for _, a := range cfg.ValidAttachments {
		valid[attachmentKey(a.ContainerID, a.IfName)] = true
	}
	keys, err := st.keys()
	if err != nil {
		return err
	}
	var errs []error
	kept := map[string]bool{}
	for _, key := range keys {
		if valid[key] {
			kept[key] = true
			continue
		}
		cid, ifName, _ := splitKey(key)
		// A delegated plugin gets its own GC below; only nsnet's part
		// of the attachment is removed here.
		if err := detach(st, host, hostNS, cfg.Network, nil, nil, cid, ifName); err != nil {
			errs = append(errs, fmt.Errorf("attachment %s: %w", key, err))
			kept[key] = true
		}
	}
	// Addresses whose attachment has no record: an ADD that died between
	// allocating and recording.
	if allocs, err := st.allocations(); err != nil {
		errs = append(errs, err)
	} else {
		for a, owner := range allocs {
			if !kept[owner] {
				errs = append(errs, st.release(a, owner))
			}
		}
	}
	// MACs likewise.
	if macs, err := st.macs(); err != nil {
		errs = append(errs, err)
	} else {
		for m, owner := range macs {
			if !kept[owner] {
				errs = append(errs, st.releaseMAC(m, owner))
			}
		}
	}
	// Veths of this network whose record is gone.
	links, err := host.Links()
	if err != nil {
		errs = append(errs, err)
	}
	keep := map[string]bool{}
	for key := range kept {
		cid, ifName, _ := splitKey(key)
		keep[ownerAlias(cfg.Network, cid, ifName)] = true
	}
	prefix := networkAliasPrefix(cfg.Network)
	for _, l := range links {
		if l.Type == "veth" && strings.HasPrefix(l.Alias, prefix) && !keep[l.Alias] {
			if err := host.DelLinkIndex(l.Index); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, err)
			}
		}
	}
	if len(kept) == 0 {
		if cfg.Mode == ModeBridge {
			errs = append(errs, dropBridge(host, cfg.Bridge))
		}
		errs = append(errs, dropMasq(hostNS, cfg.Network))
	}
	if !cfg.IPAM.Builtin() {
		errs = append(errs, (delegate{exec: p.Exec, cfg: cfg, args: args}).run(ctx, "GC"))
	}
	return errors.Join(errs...)
}

// dropBridge deletes the bridge if nsnet created it and nothing is attached.
func dropBridge(host *kernel.Handle, name string) error {
	br, err := host.LinkByName(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if br.Alias != bridgeAlias || br.Type != "bridge" {
		return nil
	}
	links, err := host.Links()
	if err != nil {
		return err
	}
	for _, l := range links {
		if l.MasterIndex == br.Index {
			return nil
		}
	}
	if err := host.DelLinkIndex(br.Index); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// errNotNetNS is wrapped when CNI_NETNS is some other file.
var errNotNetNS = errors.New("not a network namespace")

// isNetNS insists on an nsfs file of a network namespace. netns.Open also
// takes any procfs file whose type it cannot ask, and CNI_NETNS comes from
// outside.
func isNetNS(fd int) error {
	var st unix.Statfs_t
	if err := unix.Fstatfs(fd, &st); err != nil {
		return err
	}
	if st.Type != unix.NSFS_MAGIC {
		return errNotNetNS
	}
	if t, err := unix.IoctlRetInt(fd, unix.NS_GET_NSTYPE); err == nil && t != unix.CLONE_NEWNET {
		return errNotNetNS
	}
	return nil
}

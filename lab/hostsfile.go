package lab

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/nsnet/nsnet/lab/ledger"
)

// hostsHeader starts every hosts file nsnet writes: a file at that path
// without it is not nsnet's, and up refuses to replace it.
const hostsHeader = "# nsnet lab "

// HostsPath is where up writes the hosts file of a node's namespace, under
// etcNetns (/etc/netns): exec, the lab's processes and `ip netns exec` see it
// as /etc/hosts inside the node.
func HostsPath(etcNetns, netnsName string) string {
	return filepath.Join(etcNetns, netnsName, "hosts")
}

// HostsFile is the hosts file of node of: every node of the lab by NAME and
// NAME.LAB. A node with several addresses gets one line per address, in this
// order: the addresses on a subnet the reading node is attached to (IPv4
// first), then the first IPv4 address of each of its interfaces in file
// order, then the first IPv6 address of each; secondary addresses of an
// interface are left out. Resolvers take the first line of a name (getent
// hosts asks for IPv6 first), so from a neighbour a name means the address
// it reaches directly.
func HostsFile(l *Lab, of *Node) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s%s, node %s: written by nsnet up, removed by nsnet down\n", hostsHeader, l.Name, of.Name)
	b.WriteString("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
	own := of.Addresses()
	for _, n := range l.Nodes {
		for _, a := range hostsAddrs(n, own) {
			fmt.Fprintf(&b, "%s\t%s %s.%s\n", a, n.Name, n.Name, l.Name)
		}
	}
	return b.Bytes()
}

// hostsAddrs orders n's addresses as HostsFile documents, seen from a node
// with the addresses near.
func hostsAddrs(n *Node, near []netip.Prefix) []netip.Addr {
	var out []netip.Addr
	add := func(a netip.Addr) {
		if !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	for _, v4 := range []bool{true, false} {
		for _, p := range n.Addresses() {
			if p.Addr().Is4() != v4 {
				continue
			}
			for _, m := range near {
				if m.Masked().Contains(p.Addr()) && m.Addr() != p.Addr() {
					add(p.Addr())
				}
			}
		}
	}
	for _, v4 := range []bool{true, false} {
		for _, i := range n.Interfaces {
			for _, p := range i.Addrs {
				if p.Addr().Is4() == v4 {
					add(p.Addr())
					break
				}
			}
		}
	}
	return out
}

// wantHosts is the hosts file of each node that has a namespace.
func wantHosts(l *Lab, etc string) map[string]*Node {
	want := map[string]*Node{}
	if etc == "" {
		return want
	}
	for _, n := range l.Nodes {
		if !n.IsHost() {
			want[HostsPath(etc, n.Netns)] = n
		}
	}
	return want
}

// checkHosts refuses, before anything changes, a hosts file at a path up
// would write that is neither recorded as the lab's nor written by nsnet.
func checkHosts(l *Lab, led *ledger.Ledger, etc string) error {
	for path := range wantHosts(l, etc) {
		if led != nil && slices.ContainsFunc(led.Files, func(f ledger.File) bool { return f.Path == path }) {
			continue
		}
		b, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("lab %s: hosts file: %w", l.Name, err)
		}
		if !bytes.HasPrefix(b, []byte(hostsHeader+l.Name+",")) {
			return fmt.Errorf("lab %s: %s exists and is not this lab's: move it away (nsnet writes each node's hosts file there)", l.Name, path)
		}
	}
	return nil
}

// syncHosts makes the nodes' hosts files what the lab says: it writes those
// missing or changed (drift is repaired) and removes those of nodes the lab
// no longer has. Every file, and each directory made for it, is recorded
// in the ledger before it is made.
func syncHosts(l *Lab, led *ledger.Ledger, w LedgerWriter, etc string) error {
	want := wantHosts(l, etc)
	var keep []ledger.File
	for _, f := range led.Files {
		if want[f.Path] == nil {
			if err := removeFile(f); err != nil {
				return err
			}
			continue
		}
		keep = append(keep, f)
	}
	changed := len(keep) != len(led.Files)
	paths := make([]string, 0, len(want))
	for p := range want {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	for _, p := range paths {
		if slices.ContainsFunc(keep, func(f ledger.File) bool { return f.Path == p }) {
			continue
		}
		f := ledger.File{Node: want[p].Name, Path: p}
		for d := filepath.Dir(p); ; d = filepath.Dir(d) {
			if _, err := os.Stat(d); err == nil || d == filepath.Dir(d) {
				break
			}
			f.Dirs = append(f.Dirs, d)
		}
		keep = append(keep, f)
		changed = true
	}
	if changed {
		led.Files = keep
		if err := w.Write(led); err != nil {
			return err
		}
	}
	for _, p := range paths {
		data := HostsFile(l, want[p])
		if old, err := os.ReadFile(p); err == nil && bytes.Equal(old, data) {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return fmt.Errorf("lab %s: hosts file: %w", l.Name, err)
		}
		// Written in place, not renamed over: a shell in the node has
		// the file bound over its /etc/hosts and sees the new content.
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return fmt.Errorf("lab %s: hosts file: %w", l.Name, err)
		}
	}
	return nil
}

// removeHosts removes the files the ledger lists, and the directories made
// for them once empty. Idempotent.
func removeHosts(led *ledger.Ledger, w LedgerWriter) error {
	if len(led.Files) == 0 {
		return nil
	}
	for _, f := range led.Files {
		if err := removeFile(f); err != nil {
			return err
		}
	}
	led.Files = nil
	return w.Write(led)
}

func removeFile(f ledger.File) error {
	if err := os.Remove(f.Path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", f.Path, err)
	}
	for _, d := range f.Dirs {
		// A directory someone put other files in stays.
		if err := os.Remove(d); err != nil && !errors.Is(err, fs.ErrNotExist) {
			break
		}
	}
	return nil
}

// hostsDrift lists the recorded hosts files that are missing or not as
// written, by node.
func hostsDrift(l *Lab, led *ledger.Ledger) []string {
	var out []string
	for _, f := range led.Files {
		b, err := os.ReadFile(f.Path)
		switch {
		case err != nil:
			out = append(out, f.Node+": hosts file missing")
		case l != nil && l.Node(f.Node) != nil && !bytes.Equal(b, HostsFile(l, l.Node(f.Node))):
			out = append(out, f.Node+": hosts file changed")
		case !strings.HasPrefix(string(b), hostsHeader):
			out = append(out, f.Node+": hosts file changed")
		}
	}
	return out
}

package lab

import (
	"bytes"
	"errors"
	"fmt"
	"io"
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
//
// A lab of more than sharedHostsAbove nodes gets one file for all its nodes
// instead (of is nil): the same order without the reader's subnets first,
// hard-linked into every node's directory. One file per node naming every
// node is quadratic: 10,000 nodes would write 10,000 files of 10,000 lines.
func HostsFile(l *Lab, of *Node) []byte {
	var b bytes.Buffer
	var own []netip.Prefix
	if of != nil {
		fmt.Fprintf(&b, "%s%s, node %s: written by nsnet up, removed by nsnet down\n", hostsHeader, l.Name, of.Name)
		own = of.Addresses()
	} else {
		fmt.Fprintf(&b, "%s%s, every node: written by nsnet up, removed by nsnet down\n", hostsHeader, l.Name)
	}
	b.WriteString("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
	for _, n := range l.Nodes {
		for _, a := range hostsAddrs(n, own) {
			fmt.Fprintf(&b, "%s\t%s %s.%s\n", a, n.Name, n.Name, l.Name)
		}
	}
	return b.Bytes()
}

// sharedHostsAbove is the number of nodes above which a lab's nodes share
// one hosts file (see HostsFile).
const sharedHostsAbove = 64

// sharedHosts reports whether l's nodes share one hosts file.
func sharedHosts(l *Lab) bool { return len(l.Nodes) > sharedHostsAbove }

// hostsFor is the hosts file of node n: its own, or the lab's shared one
// (computed once by the caller into shared).
func hostsFor(l *Lab, n *Node, shared *[]byte) []byte {
	if !sharedHosts(l) {
		return HostsFile(l, n)
	}
	if *shared == nil {
		*shared = HostsFile(l, nil)
	}
	return *shared
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

// hostsFile is a node's hosts file.
type hostsFile struct {
	path string
	node *Node
}

// wantHosts is the hosts file of each node that has a namespace, sorted by
// path (a slice, not a map: 10,000 of them while up holds everything else).
func wantHosts(l *Lab, etc string) []hostsFile {
	if etc == "" {
		return nil
	}
	want := make([]hostsFile, 0, len(l.Nodes))
	for _, n := range l.Nodes {
		if !n.IsHost() {
			want = append(want, hostsFile{HostsPath(etc, n.Netns), n})
		}
	}
	slices.SortFunc(want, func(a, b hostsFile) int { return strings.Compare(a.path, b.path) })
	return want
}

// wants reports whether path is one of want's.
func wants(want []hostsFile, path string) bool {
	_, ok := slices.BinarySearchFunc(want, path, func(h hostsFile, p string) int { return strings.Compare(h.path, p) })
	return ok
}

// checkHosts refuses, before anything changes, a hosts file at a path up
// would write that is neither recorded as the lab's nor written by nsnet.
func checkHosts(l *Lab, led *ledger.Ledger, etc string) error {
	recorded := map[string]bool{}
	if led != nil {
		for _, f := range led.Files {
			recorded[f.Path] = true
		}
	}
	for _, h := range wantHosts(l, etc) {
		path := h.path
		if recorded[path] {
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
	keep := make([]ledger.File, 0, len(want))
	for _, f := range led.Files {
		if !wants(want, f.Path) {
			if err := removeFile(f); err != nil {
				return err
			}
			continue
		}
		keep = append(keep, f)
	}
	changed := len(keep) != len(led.Files)
	kept := make(map[string]bool, len(keep))
	for _, f := range keep {
		kept[f.Path] = true
	}
	for _, h := range want {
		if kept[h.path] {
			continue
		}
		f := ledger.File{Node: h.node.Name, Path: h.path}
		for d := filepath.Dir(h.path); ; d = filepath.Dir(d) {
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
	var shared []byte
	var first os.FileInfo // the shared file's first copy, once it is right
	for _, h := range want {
		p := h.path
		data := hostsFor(l, h.node, &shared)
		if first != nil {
			// A link to the first copy is right without reading it.
			if fi, err := os.Stat(p); err == nil && os.SameFile(fi, first) {
				continue
			}
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return fmt.Errorf("lab %s: hosts file: %w", l.Name, err)
			}
			os.Remove(p)
			if err := os.Link(want[0].path, p); err == nil {
				continue
			}
			// Another file system (EXDEV) or no links: a copy of its own.
		}
		if err := writeHosts(l, p, data); err != nil {
			return err
		}
		if sharedHosts(l) && first == nil {
			if fi, err := os.Stat(p); err == nil {
				first = fi
			}
		}
	}
	return nil
}

// writeHosts makes the file at p hold data, unless it already does.
func writeHosts(l *Lab, p string, data []byte) error {
	if old, err := os.ReadFile(p); err == nil && bytes.Equal(old, data) {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("lab %s: hosts file: %w", l.Name, err)
	}
	// Written in place, not renamed over: a shell in the node has the file
	// bound over its /etc/hosts and sees the new content (and the nodes
	// sharing it through links see it too).
	if err := os.WriteFile(p, data, 0o644); err != nil {
		return fmt.Errorf("lab %s: hosts file: %w", l.Name, err)
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
//
// Without the lab (l nil) only each file's first bytes are read: a big lab's
// files are long, and status should not read them all.
func hostsDrift(l *Lab, led *ledger.Ledger) []string {
	var out []string
	var shared []byte
	for _, f := range led.Files {
		if l == nil || l.Node(f.Node) == nil {
			head, err := readHead(f.Path, len(hostsHeader))
			switch {
			case err != nil:
				out = append(out, f.Node+": hosts file missing")
			case head != hostsHeader:
				out = append(out, f.Node+": hosts file changed")
			}
			continue
		}
		b, err := os.ReadFile(f.Path)
		switch {
		case err != nil:
			out = append(out, f.Node+": hosts file missing")
		case !bytes.Equal(b, hostsFor(l, l.Node(f.Node), &shared)):
			out = append(out, f.Node+": hosts file changed")
		}
	}
	return out
}

// readHead reads at most n bytes from the start of the file at path.
func readHead(path string, n int) (string, error) {
	fd, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer fd.Close()
	b := make([]byte, n)
	k, err := io.ReadFull(fd, b)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return "", err
	}
	return string(b[:k]), nil
}

package cni

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/nsnet/nsnet/ipalloc"
)

// The state of one network lives in DataDir/NETWORK:
//
//	lock                          flock: shared by ADD, DEL and CHECK,
//	                              exclusive by GC
//	attachments/CID:IFNAME        the attachment's record, written before
//	                              any kernel object of it exists
//	addrs/ADDRESS -> CID:IFNAME   one per address of the built-in allocator,
//	                              naming its owner
//	macs/MAC -> CID:IFNAME        one per MAC the runtime asked for in
//	                              bridge mode, where two would collide
//
// Every entry is a symbolic link whose target is its content. symlink(2)
// creates the name and its content in one atomic step and fails when the
// name exists, so a record is never seen half-written, two concurrent ADDs
// (separate processes) can never take the same address or attachment, and
// each costs a single metadata operation, which is what an ADD mostly pays
// for on a journaling filesystem.
//
// A container ID cannot contain ':' and an interface name cannot contain
// '/' or ':', so "CID:IFNAME" is a safe, unambiguous file name.

// record is what nsnet knows about one attachment. It is on disk before the
// interfaces exist, so DEL and GC can always find what to remove.
type record struct {
	ContainerID string     `json:"containerID"`
	IfName      string     `json:"ifName"`
	Netns       string     `json:"netns,omitempty"`
	Mode        Mode       `json:"mode"`
	HostVeth    string     `json:"hostVeth"`
	Bridge      string     `json:"bridge,omitempty"`
	Gateway     bool       `json:"gateway,omitempty"` // bridge carries the gateways
	Hairpin     bool       `json:"hairpin,omitempty"` // the bridge port is in hairpin mode
	MTU         int        `json:"mtu,omitempty"`
	MAC         string     `json:"mac,omitempty"` // the container end's, when the runtime chose it
	IPAM        string     `json:"ipam"`
	IPs         []recordIP `json:"ips,omitempty"`
	Routes      []Route    `json:"routes,omitempty"`
	// Allocated are the built-in allocator's addresses to free.
	Allocated  []netip.Addr `json:"allocated,omitempty"`
	Masquerade bool         `json:"masquerade,omitempty"`
}

// recordIP is one container address as configured: Addr carries the prefix
// length set on the interface, Subnet the network it came from.
type recordIP struct {
	Addr    netip.Prefix `json:"addr"`
	Subnet  netip.Prefix `json:"subnet"`
	Gateway netip.Addr   `json:"gateway,omitzero"`
}

func (r *record) key() string { return attachmentKey(r.ContainerID, r.IfName) }

func attachmentKey(containerID, ifName string) string { return containerID + ":" + ifName }

func splitKey(key string) (containerID, ifName string, ok bool) {
	return strings.Cut(key, ":")
}

// store is the open state directory of one network, locked.
type store struct {
	dir  string
	lock *os.File
}

// StateError reports a failure reading or writing nsnet's state directory.
type StateError struct {
	Op   string
	Path string
	Err  error
}

func (e *StateError) Error() string { return fmt.Sprintf("state %s %s: %v", e.Op, e.Path, e.Err) }
func (e *StateError) Unwrap() error { return e.Err }

func stateErr(op, path string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return &StateError{Op: op, Path: path, Err: err}
}

// openStore creates the network's state directory if needed and takes its
// lock, shared or exclusive. The lock is released by close (or when the
// process exits, which is what makes a crashed plugin harmless).
func openStore(dataDir, network string, exclusive bool) (*store, error) {
	dir := filepath.Join(dataDir, network)
	p := filepath.Join(dir, "lock")
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600)
	if errors.Is(err, fs.ErrNotExist) {
		// First use of the network: the directories are only made
		// then, which keeps every later ADD from paying for them.
		if err := makeDirs(dir); err != nil {
			return nil, err
		}
		f, err = os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600)
	}
	if err != nil {
		return nil, stateErr("open", p, err)
	}
	how := unix.LOCK_SH
	if exclusive {
		how = unix.LOCK_EX
	}
	for {
		err = unix.Flock(int(f.Fd()), how)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, stateErr("lock", p, err)
	}
	return &store{dir: dir, lock: f}, nil
}

// makeDirs makes the network's directories. Another process may see the
// network directory before its subdirectories exist; whoever then finds one
// missing calls makeDirs too.
func makeDirs(dir string) error {
	for _, d := range []string{filepath.Join(dir, "attachments"), filepath.Join(dir, "addrs"), filepath.Join(dir, "macs")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return stateErr("create", d, err)
		}
	}
	return nil
}

func (s *store) close() {
	if s.lock != nil {
		s.lock.Close() // closing the last descriptor drops the flock
		s.lock = nil
	}
}

func (s *store) recordPath(key string) string {
	return filepath.Join(s.dir, "attachments", key)
}

// maxRecord is the longest target a symbolic link can have (PATH_MAX-1).
const maxRecord = 4095

// exists reports whether the attachment has a record.
func (s *store) exists(key string) bool {
	_, err := os.Lstat(s.recordPath(key))
	return err == nil
}

// create records an attachment, failing with ExistsError when it is
// recorded already.
func (s *store) create(r *record) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if len(b) > maxRecord {
		// Only the namespace path and a delegated plugin's routes are
		// unbounded, and neither is needed to undo the attachment:
		// CHECK finds the routes in the previous result.
		c := *r
		c.Netns, c.Routes = "", nil
		if b, err = json.Marshal(&c); err != nil {
			return err
		}
		if len(b) > maxRecord {
			return fmt.Errorf("record of %s is %d bytes, more than the %d a state entry holds", r.key(), len(b), maxRecord)
		}
	}
	p := s.recordPath(r.key())
	err = os.Symlink(string(b), p)
	if errors.Is(err, fs.ErrNotExist) {
		// A concurrent first ADD is still making the directories.
		if err := makeDirs(s.dir); err != nil {
			return err
		}
		err = os.Symlink(string(b), p)
	}
	if errors.Is(err, fs.ErrExist) {
		return &ExistsError{What: fmt.Sprintf("attachment of container %s with interface %s", r.ContainerID, r.IfName), Hint: "DEL it first"}
	}
	if err != nil {
		return stateErr("create", p, err)
	}
	return nil
}

// errCorrupt is wrapped by read when a record exists but cannot be parsed
// (records are written atomically, so only by hand).
var errCorrupt = errors.New("record is incomplete or corrupt")

// read loads a record; a missing one matches fs.ErrNotExist.
func (s *store) read(key string) (*record, error) {
	p := s.recordPath(key)
	b, err := os.Readlink(p)
	if err != nil {
		return nil, stateErr("read", p, err)
	}
	var r record
	if err := json.Unmarshal([]byte(b), &r); err != nil || r.ContainerID == "" {
		return nil, stateErr("read", p, errCorrupt)
	}
	return &r, nil
}

// remove deletes a record; a missing one is not an error.
func (s *store) remove(key string) error {
	p := s.recordPath(key)
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return stateErr("remove", p, err)
	}
	return nil
}

// keys lists the recorded attachments.
func (s *store) keys() ([]string, error) {
	d := filepath.Join(s.dir, "attachments")
	ents, err := os.ReadDir(d)
	if err != nil {
		return nil, stateErr("list", d, err)
	}
	out := make([]string, 0, len(ents))
	for _, e := range ents {
		if _, _, ok := splitKey(e.Name()); ok {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

func (s *store) addrPath(a netip.Addr) string {
	return filepath.Join(s.dir, "addrs", a.String())
}

// allocate takes a free address of subnet for owner (an attachment key):
// one of pool(subnet), from the point ipalloc.StartFor derives from the
// owner, so an attachment that comes back gets its old address if it is
// still free, and different attachments rarely contend for the same one.
// Taking an address is creating its symlink: the file system decides
// between concurrent ADDs.
func (s *store) allocate(subnet netip.Prefix, owner string) (netip.Addr, error) {
	r := pool(subnet)
	a, err := r.Claim(r.StartFor(owner), func(a netip.Addr) (bool, error) { return s.claim(a, owner) })
	if errors.Is(err, ipalloc.ErrFull) {
		return netip.Addr{}, &ExhaustedError{Subnet: subnet}
	}
	return a, err
}

// take claims exactly a for owner (an address the runtime asked for). One
// that owner holds already (left by an ADD that died) is owner's.
func (s *store) take(a netip.Addr, owner string) error {
	ok, err := s.claim(a, owner)
	if err != nil || ok {
		return err
	}
	holder, err := s.owner(a)
	if err != nil {
		return err
	}
	if holder == owner {
		return nil
	}
	return &TakenError{Addr: a, Owner: holder}
}

// claim takes a for owner by creating its symlink, and reports false when
// someone holds it already.
func (s *store) claim(a netip.Addr, owner string) (bool, error) {
	return s.claimAt(s.addrPath(a), owner)
}

// claimAt creates the entry p naming owner, and reports false when it
// exists already.
func (s *store) claimAt(p, owner string) (bool, error) {
	err := os.Symlink(owner, p)
	if errors.Is(err, fs.ErrNotExist) {
		// A concurrent first ADD is still making the directories.
		if err := makeDirs(s.dir); err != nil {
			return false, err
		}
		err = os.Symlink(owner, p)
	}
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrExist):
		return false, nil
	}
	return false, stateErr("create", p, err)
}

// release frees an address if owner holds it; a missing address or one
// held by another attachment is left alone.
func (s *store) release(a netip.Addr, owner string) error {
	return s.releaseAt(s.addrPath(a), owner)
}

func (s *store) releaseAt(p, owner string) error {
	o, err := s.ownerAt(p)
	if err != nil || o != owner {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return stateErr("remove", p, err)
	}
	return nil
}

// owner reports who holds an address ("" when free).
func (s *store) owner(a netip.Addr) (string, error) {
	return s.ownerAt(s.addrPath(a))
}

func (s *store) ownerAt(p string) (string, error) {
	o, err := os.Readlink(p)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", stateErr("read", p, err)
	}
	return o, nil
}

// allocations lists every taken address with its owner.
func (s *store) allocations() (map[netip.Addr]string, error) {
	d := filepath.Join(s.dir, "addrs")
	ents, err := os.ReadDir(d)
	if err != nil {
		return nil, stateErr("list", d, err)
	}
	out := make(map[netip.Addr]string, len(ents))
	for _, e := range ents {
		a, err := netip.ParseAddr(e.Name())
		if err != nil {
			continue
		}
		o, err := s.owner(a)
		if err != nil {
			return nil, err
		}
		out[a] = o
	}
	return out, nil
}

func (s *store) macPath(mac string) string {
	return filepath.Join(s.dir, "macs", mac)
}

// takeMAC claims a MAC (as net.HardwareAddr.String writes it) for owner, as
// take does an address.
func (s *store) takeMAC(mac, owner string) error {
	ok, err := s.claimAt(s.macPath(mac), owner)
	if err != nil || ok {
		return err
	}
	holder, err := s.ownerAt(s.macPath(mac))
	if err != nil || holder == owner {
		return err
	}
	return &MACTakenError{MAC: mac, Owner: holder}
}

// releaseMAC frees a MAC if owner holds it; "" is no MAC.
func (s *store) releaseMAC(mac, owner string) error {
	if mac == "" {
		return nil
	}
	return s.releaseAt(s.macPath(mac), owner)
}

// macs lists every claimed MAC with its owner. A network made before MACs
// were claimed has no macs directory: none are.
func (s *store) macs() (map[string]string, error) {
	d := filepath.Join(s.dir, "macs")
	ents, err := os.ReadDir(d)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, stateErr("list", d, err)
	}
	out := make(map[string]string, len(ents))
	for _, e := range ents {
		o, err := s.ownerAt(s.macPath(e.Name()))
		if err != nil {
			return nil, err
		}
		out[e.Name()] = o
	}
	return out, nil
}

// pool is the addresses the built-in allocator hands out in subnet: its
// hosts (ipalloc.Hosts, the same rule labs follow) but the first, which is
// the gateway's.
func pool(subnet netip.Prefix) ipalloc.Range { return ipalloc.Hosts(subnet).Skip(1) }

// gatewayOf is the address the built-in allocator reserves for the gateway.
func gatewayOf(subnet netip.Prefix) netip.Addr { return ipalloc.Hosts(subnet).First }

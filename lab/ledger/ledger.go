// Package ledger keeps the record of what a lab owns: every namespace, link,
// changed sysctl and process that nsnet creates for a lab is written here
// before it is created, so that teardown after a crash removes exactly what
// nsnet made and nothing else.
//
// A ledger is one JSON file per lab under the state directory, replaced
// atomically (temporary file, fsync, rename, fsync of the directory), so a
// reader sees either the old or the new record, never a torn one. Writers
// serialize on a per-lab flock (see Lock).
package ledger

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"time"

	"github.com/nsnet/nsnet/internal/echo"
)

// Version is the format written by this package. A ledger of another version
// is refused rather than misread: a misread ledger could delete the wrong
// objects.
const Version = 1

// fileName is the ledger inside the lab's state directory.
const fileName = "ledger.json"

// Ledger is everything a lab owns or changed.
type Ledger struct {
	Version int    `json:"version"`
	Lab     string `json:"lab"`
	// File is the lab file the lab was last brought up from.
	File string `json:"file,omitempty"`
	// Mark is the ifalias that marks the lab's links (and the loopback of
	// its namespaces) in the kernel.
	Mark string `json:"mark"`
	// Host identifies the network namespace nsnet ran in: links recorded
	// for node "host" live there, and teardown refuses to look for them in
	// any other namespace.
	Host NSID `json:"host_netns"`
	// Complete is true once an up has finished; false while one runs or
	// after one was interrupted.
	Complete bool      `json:"complete"`
	Updated  time.Time `json:"updated"`
	Nodes    []Node    `json:"nodes"`
	Links    []Link    `json:"links"`
	Sysctls  []Sysctl  `json:"sysctls,omitempty"`
	Procs    []Proc    `json:"processes,omitempty"`
	// Faults are the runtime faults in force (nsnet fault set), each
	// recorded before it is made.
	Faults []Fault `json:"faults,omitempty"`
	// Partition is the partition in force (nsnet partition), if any.
	Partition *Partition `json:"partition,omitempty"`
	// Files are the files the lab writes outside its namespaces (each
	// node's /etc/netns/NETNS/hosts), recorded before they are written.
	Files []File `json:"files,omitempty"`
	// Guard is the nftables table (inet, in the machine's namespace) that
	// lets only the lab's hosts send to its VXLAN port, recorded before
	// it is made.
	Guard string `json:"guard,omitempty"`
	// HostName is, in a lab across machines, the host of the lab file
	// whose part this machine holds (nsnet up --host NAME, or the host
	// whose address is here). Empty for a lab on one machine.
	HostName string `json:"host,omitempty"`
	// VXLAN is what this machine's part of a lab across machines holds in
	// the machine's namespace, so that another lab's up can refuse a
	// collision before it changes anything. Nil without a link across
	// machines.
	VXLAN *VXLAN `json:"vxlan,omitempty"`
}

// VXLAN is a lab's use of the kernel's VXLAN socket on this machine: the
// UDP port its halves listen on (the socket is the machine's, shared by
// every VXLAN device of that port and family), the underlay family, and the
// addresses its guard admits on that port. The VNIs are on the links.
type VXLAN struct {
	Port  int      `json:"port"`
	IPv6  bool     `json:"ipv6,omitempty"`
	Allow []string `json:"allow"`
}

// File is a file the lab wrote, and the directories it made for it
// (innermost first), which down removes when they are left empty.
type File struct {
	Node string   `json:"node"`
	Path string   `json:"path"`
	Dirs []string `json:"dirs,omitempty"`
}

// Fault is a runtime fault on one link end.
type Fault struct {
	Node  string `json:"node"`
	Iface string `json:"iface"`
	// Spec is the fault in netem's word order (package fault).
	Spec string `json:"spec"`
	// Backend names the mechanisms that make it: "netem+tbf",
	// "tbf+nftables+delayer".
	Backend string `json:"backend"`
	// Delayer is the userspace delayer's share of the spec, if any.
	Delayer string `json:"delayer,omitempty"`
	Queue   uint16 `json:"queue,omitempty"`
	// Down: the fault took the end's carrier down.
	Down bool      `json:"down,omitempty"`
	Set  time.Time `json:"set"`
	// Until is when a reverter clears it by itself (fault set --for).
	Until time.Time `json:"until,omitzero"`
	// File: the fault is the lab file's (faults: on a link or an end),
	// which up keeps as the file says; a runtime fault has it false.
	File bool `json:"file,omitempty"`
}

// Partition is the groups of nodes cut off from each other.
type Partition struct {
	Groups [][]string `json:"groups"`
	OneWay bool       `json:"oneway,omitempty"`
	Set    time.Time  `json:"set"`
}

// NSID is a network namespace's identity (device and inode of its nsfs file).
type NSID struct {
	Dev uint64 `json:"dev"`
	Ino uint64 `json:"ino"`
}

// Node is a lab node. Netns is the namespace the lab created for it; empty
// for the host node, whose namespace the lab does not own.
type Node struct {
	Name  string `json:"name"`
	Netns string `json:"netns,omitempty"`
}

// Owned reports whether the lab created the node's namespace.
func (n Node) Owned() bool { return n.Netns != "" }

// Link is one interface the lab creates: a veth end or a bridge.
type Link struct {
	Node  string `json:"node"`
	Netns string `json:"netns,omitempty"` // empty: the host namespace
	Name  string `json:"name"`
	Kind  string `json:"kind"` // "veth" or "bridge"
	// MAC is the address nsnet gives the link when it creates it, derived
	// from the lab and the link's name: it identifies the link as the
	// lab's even if nsnet died before it could set the alias.
	MAC string `json:"mac"`
	// Peer is a veth's other end as "node:name".
	Peer string `json:"peer,omitempty"`
	// VNI is a VXLAN half's network identifier.
	VNI uint32 `json:"vni,omitempty"`
}

// Sysctl is a value the lab changed in a namespace it does not own (the
// host), with the value to restore on teardown. Sysctls inside the lab's
// own namespaces vanish with them and are not recorded.
type Sysctl struct {
	Node string `json:"node"`
	Key  string `json:"key"`
	Old  string `json:"old"`
	New  string `json:"new"`
}

// Proc is a process the lab started in a node. PID and Start (the start time
// in clock ticks after boot, field 22 of /proc/PID/stat) together identify it:
// a recycled PID has another start time and is never signalled.
type Proc struct {
	Node  string   `json:"node"`
	Netns string   `json:"netns,omitempty"`
	Index int      `json:"index"` // position in the node's process list
	Argv  []string `json:"argv"`
	PID   int      `json:"pid"`
	Start uint64   `json:"start"`
	Log   string   `json:"log,omitempty"`
	// Role marks a process nsnet runs for the lab itself rather than for
	// the lab file ("fault-delayer", "fault-reverter"): up leaves it, down
	// stops it.
	Role string `json:"role,omitempty"`
	// Restarts counts the times up started the process again after it
	// had died.
	Restarts int `json:"restarts,omitempty"`
	// Reaper and ReaperStart identify the process's reaper (its parent,
	// which keeps its exit status), 0 for a process without one.
	Reaper      int    `json:"reaper,omitempty"`
	ReaperStart uint64 `json:"reaper_start,omitempty"`
}

// Errors.
var (
	// ErrVersion is wrapped when a ledger was written by an incompatible
	// nsnet.
	ErrVersion = errors.New("unsupported ledger version")
)

// FileError describes a ledger that cannot be read or written.
type FileError struct {
	Op   string // "read", "write", "lock", ...
	Path string
	Err  error
}

func (e *FileError) Error() string { return fmt.Sprintf("ledger %s %s: %v", e.Op, e.Path, e.Err) }
func (e *FileError) Unwrap() error { return e.Err }

// nameRE is what a lab name may look like; it becomes a directory name, part
// of namespace names and of the alias, so it must be a safe path component.
var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// ValidName reports whether name can be a lab name.
func ValidName(name string) bool { return nameRE.MatchString(name) }

// NameRule explains ValidName in messages.
const NameRule = "must be 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit"

// Store is a state directory holding one subdirectory per lab.
type Store struct {
	Dir string
}

// LabDir is where the lab's ledger, lock and process logs live.
func (s Store) LabDir(lab string) string { return filepath.Join(s.Dir, lab) }

// Path is the lab's ledger file.
func (s Store) Path(lab string) string { return filepath.Join(s.Dir, lab, fileName) }

// Read returns the lab's ledger; a lab without one fails with an error
// matching fs.ErrNotExist.
func (s Store) Read(lab string) (*Ledger, error) {
	if !ValidName(lab) {
		return nil, &FileError{Op: "read", Path: echo.Clip(lab), Err: fmt.Errorf("invalid lab name %s: %s: %w", echo.Quote(lab), NameRule, fs.ErrNotExist)}
	}
	p := s.Path(lab)
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, &FileError{Op: "read", Path: p, Err: unwrapPath(err)}
	}
	var l Ledger
	if err := json.Unmarshal(b, &l); err != nil {
		return nil, &FileError{Op: "read", Path: p, Err: err}
	}
	if l.Version != Version {
		return nil, &FileError{Op: "read", Path: p, Err: fmt.Errorf("%w %d (this nsnet reads version %d)", ErrVersion, l.Version, Version)}
	}
	if l.Lab != lab {
		return nil, &FileError{Op: "read", Path: p, Err: fmt.Errorf("ledger is for lab %q", l.Lab)}
	}
	return &l, nil
}

// Write replaces the lab's ledger atomically and durably: when Write returns
// nil the new record survives a crash of nsnet or of the machine (for a
// state directory on a disk; /run is memory and only has to survive nsnet).
func (s Store) Write(l *Ledger) error {
	if !ValidName(l.Lab) {
		return &FileError{Op: "write", Path: echo.Clip(l.Lab), Err: fmt.Errorf("invalid lab name %s: %s", echo.Quote(l.Lab), NameRule)}
	}
	l.Version = Version
	l.Updated = time.Now().UTC().Truncate(time.Millisecond)
	dir := s.LabDir(l.Lab)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return &FileError{Op: "write", Path: dir, Err: unwrapPath(err)}
	}
	f, err := os.CreateTemp(dir, ".ledger-*.tmp")
	if err != nil {
		return &FileError{Op: "write", Path: dir, Err: unwrapPath(err)}
	}
	tmp := f.Name()
	werr := l.encode(f)
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp, filepath.Join(dir, fileName))
	}
	if werr != nil {
		os.Remove(tmp)
		return &FileError{Op: "write", Path: filepath.Join(dir, fileName), Err: unwrapPath(werr)}
	}
	// The rename is durable only once the directory is.
	if d, err := os.Open(dir); err == nil {
		err = d.Sync()
		d.Close()
		if err != nil {
			return &FileError{Op: "write", Path: dir, Err: err}
		}
	}
	return nil
}

// listsAt and filesAt are where encode puts the nodes, links and files, in
// the JSON of a ledger marshalled without them (field order is struct
// order; a string value holding these bytes would have its quotes escaped).
// Files are omitted when empty, so a stand-in marks their place.
var (
	listsAt   = []byte(`"nodes":null,"links":null`)
	filesAt   = []byte(`"files":[{"node":"\u0000","path":""}]`)
	filesMark = []File{{Node: "\x00"}}
)

// encode writes the ledger as json.Marshal does, followed by a newline, but
// marshals its nodes, links and files one at a time into a small buffer: a
// lab of 10,000 nodes has a ledger of 3 MB, and json.Marshal would hold it
// twice over (its buffer, which it also keeps in a pool for the next call,
// and the copy it returns) while up holds everything else.
func (l *Ledger) encode(f io.Writer) error {
	rest := *l
	rest.Nodes, rest.Links = nil, nil
	if len(rest.Files) > 0 {
		rest.Files = filesMark
	}
	b, err := json.Marshal(&rest)
	if err != nil {
		return err
	}
	at := bytes.Index(b, listsAt)
	fat := len(b)
	if len(l.Files) > 0 {
		fat = bytes.Index(b, filesAt)
	}
	if at < 0 || fat < at {
		return errors.New("ledger: no place for the nodes, links and files in its JSON")
	}
	w := bufio.NewWriterSize(f, 32<<10)
	w.Write(b[:at])
	if err := writeList(w, `"nodes":`, l.Nodes); err != nil {
		return err
	}
	if err := writeList(w, `,"links":`, l.Links); err != nil {
		return err
	}
	w.Write(b[at+len(listsAt) : fat])
	if fat < len(b) {
		if err := writeList(w, `"files":`, l.Files); err != nil {
			return err
		}
		w.Write(b[fat+len(filesAt):])
	}
	w.WriteByte('\n')
	return w.Flush()
}

// writeList writes key and the list's JSON, element by element.
func writeList[E any](w *bufio.Writer, key string, list []E) error {
	w.WriteString(key)
	if list == nil {
		w.WriteString("null")
		return nil
	}
	w.WriteByte('[')
	for i := range list {
		if i > 0 {
			w.WriteByte(',')
		}
		b, err := json.Marshal(&list[i])
		if err != nil {
			return err
		}
		w.Write(b)
	}
	w.WriteByte(']')
	return nil
}

// Labs lists the labs that have a ledger, sorted.
func (s Store) Labs() ([]string, error) {
	ents, err := os.ReadDir(s.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, &FileError{Op: "list", Path: s.Dir, Err: unwrapPath(err)}
	}
	var out []string
	for _, e := range ents {
		if !e.IsDir() || !ValidName(e.Name()) {
			continue
		}
		if _, err := os.Stat(s.Path(e.Name())); err == nil {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out, nil
}

func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		return le.Err
	}
	return err
}

// Node returns the named node's entry, or nil.
func (l *Ledger) Node(name string) *Node {
	for i := range l.Nodes {
		if l.Nodes[i].Name == name {
			return &l.Nodes[i]
		}
	}
	return nil
}

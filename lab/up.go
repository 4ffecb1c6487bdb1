package lab

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/nsnet/nsnet/internal/echo"
	"github.com/nsnet/nsnet/lab/ledger"
	"github.com/nsnet/nsnet/netns"
)

// Options are the environment of Up, Down, Status and friends.
type Options struct {
	// Netns is the directory of named namespaces (/run/netns).
	Netns netns.Dir
	// StateDir holds the labs' ledgers (/run/nsnet).
	StateDir string
	// EtcNetns is where up writes each node's hosts file, as
	// EtcNetns/NETNS/hosts, which exec binds over /etc/hosts inside the
	// node (ip netns exec does the same from /etc/netns). Empty: no hosts
	// files. The command line uses /etc/netns; tests a temporary
	// directory.
	EtcNetns string
	// Exe is the nsnet binary, which gates the processes labs start.
	Exe string
	// Log receives messages such as "waiting for the lock"; nil discards.
	Log io.Writer
	// Progress, when set, is called after each step of up and down.
	Progress func(done, total int)
	// Stop, when it closes, ends up or down before its next step with
	// ErrInterrupted (a Ctrl-C): the ledger keeps what was done.
	Stop <-chan struct{}
	// Inherited is given back to the program Exec runs: the signals
	// nsnet's caller ignored and the standard descriptors it closed.
	Inherited netns.Inherited
	// Settle bounds how long down waits for the kernel to destroy the host
	// ends of the lab's veths with their namespaces (a process outside the
	// lab holding a namespace open keeps them alive) before deleting them
	// itself; 0 is 10 s.
	Settle time.Duration
	// Host is the host of a lab across machines this machine is (--host);
	// empty: the one whose underlay address is on this machine.
	Host string
}

func (o Options) store() ledger.Store { return ledger.Store{Dir: o.StateDir} }

func (o Options) logf(format string, a ...any) {
	if o.Log != nil {
		fmt.Fprintf(o.Log, format, a...)
	}
}

// Result says what Up or Down did.
type Result struct {
	Plan *Plan
	// Ledger is the lab's ledger afterwards (nil after Down).
	Ledger *ledger.Ledger
	// NoLab is set by Down when the lab had no ledger once it held the
	// lock. TakenDown then tells that it had one when Down began: another
	// nsnet took the lab down while this one waited. Otherwise no lab of
	// that name exists here (a mistyped name?), and Labs lists those that
	// do.
	NoLab     bool
	TakenDown bool
	Labs      []string
}

// ErrForeignHost is matched when a lab is handled from another network
// namespace than the one it was brought up from: its host links are not
// here, and nothing here may be taken for them.
var ErrForeignHost = errors.New("lab was brought up from another network namespace")

// ErrOtherFile is matched by Up when the lab's name is in use by a lab
// brought up from another file.
var ErrOtherFile = errors.New("lab name is in use by another lab file")

// session is a locked lab with its system.
type session struct {
	name  string
	store ledger.Store
	lock  *ledger.Lock
	led   *ledger.Ledger
	sys   *System
	host  ledger.NSID
}

func (s *session) close() {
	if s.sys != nil {
		s.sys.Close()
	}
	if _, err := os.Stat(s.store.Path(s.name)); errors.Is(err, fs.ErrNotExist) {
		// Nothing was recorded (an up refused before any change): leave
		// no trace of the lab either.
		s.lock.Remove()
		return
	}
	s.lock.Release()
}

// open locks the lab (waiting, with a message, while another nsnet holds it),
// reads its ledger and opens the kernel.
func open(name string, opt Options) (*session, error) {
	store := opt.store()
	lock, err := store.Lock(name, func(pid int) {
		if pid > 0 {
			opt.logf("nsnet: lab %s is busy (nsnet pid %d is changing it); waiting\n", name, pid)
		} else {
			opt.logf("nsnet: lab %s is busy; waiting\n", name)
		}
	})
	if err != nil {
		return nil, err
	}
	s := &session{name: name, store: store, lock: lock}
	s.led, err = store.Read(name)
	if errors.Is(err, fs.ErrNotExist) {
		s.led, err = nil, nil
	}
	if err != nil {
		s.close()
		return nil, err
	}
	s.sys, err = NewSystem(opt.Netns, opt.Exe, store.LabDir(name), MarkPrefix+name)
	if err != nil {
		s.close()
		return nil, err
	}
	if opt.Settle > 0 {
		s.sys.Settle = opt.Settle
	}
	s.sys.EtcNetns = opt.EtcNetns
	if s.host, err = s.sys.HostID(); err != nil {
		s.close()
		return nil, err
	}
	if s.led != nil && s.led.Host != (ledger.NSID{}) && s.led.Host != s.host {
		s.close()
		return nil, fmt.Errorf("lab %s: %w (netns inode %d; this is %d): run nsnet from there", name, ErrForeignHost, s.led.Host.Ino, s.host.Ino)
	}
	return s, nil
}

// Up brings the lab to the state its file describes: it creates what is
// missing, repairs what drifted, removes what the file no longer has, and
// changes nothing when all is as written (Result.Plan is then empty).
func Up(l *Lab, opt Options) (*Result, error) {
	if opt.Exe == "" {
		for _, n := range l.Nodes {
			if len(n.Processes) > 0 {
				return nil, fmt.Errorf("lab %s starts processes, which needs the nsnet binary (Options.Exe)", l.Name)
			}
		}
	}
	if err := CheckSysctls(l); err != nil {
		return nil, err
	}
	s, err := open(l.Name, opt)
	if err != nil {
		return nil, err
	}
	defer s.close()
	// Each node's socket is kept open for the whole run (and its
	// namespace while it is needed).
	s.sys.growFDTable(2*len(l.Nodes) + 64)
	if s.led != nil && s.led.File != "" && l.File != "" && s.led.File != l.File {
		if _, err := os.Stat(s.led.File); err == nil {
			return nil, fmt.Errorf("lab %s: %w: it is up from %s (run nsnet down %s first)", l.Name, ErrOtherFile, s.led.File, l.Name)
		}
	}
	if l, err = part(l, opt, s.sys); err != nil {
		return nil, err
	}
	if s.led != nil && s.led.HostName != "" && l.Here != nil && s.led.HostName != l.Here.Name {
		return nil, fmt.Errorf("lab %s: this machine holds host %s's part, not %s's: nsnet down %s first to build %s's part here", l.Name, s.led.HostName, l.Here.Name, l.Name, l.Here.Name)
	}
	st, err := s.sys.Observe(l, s.led, opt.store())
	if err != nil {
		return nil, err
	}
	if err := s.sys.checkVXLANUse(l, st, opt.store()); err != nil {
		return nil, err
	}
	p, err := PlanUp(l, st)
	if err != nil {
		return nil, err
	}
	if err := checkHosts(l, s.led, opt.EtcNetns); err != nil {
		return nil, err
	}
	led := s.led
	if !p.Empty() || led == nil || !led.Complete || led.File != l.File {
		if led, err = Apply(p, s.sys, opt.store(), ApplyOptions{Host: s.host, Progress: opt.Progress, Stop: opt.Stop}); err != nil {
			return &Result{Plan: p, Ledger: led}, err
		}
	}
	if err := syncHosts(l, led, opt.store(), opt.EtcNetns); err != nil {
		return &Result{Plan: p, Ledger: led}, err
	}
	// Even with nothing to change: an up killed while it waited for
	// carrier left links that have none yet (Plan.Carrier).
	late, err := s.sys.AwaitCarrier(p, settleTime)
	if len(late) > 0 {
		p.Notes = append(p.Notes, fmt.Sprintf("no carrier yet after %v on %s", settleTime, strings.Join(late, ", ")))
	}
	return &Result{Plan: p, Ledger: led}, err
}

// settleTime bounds the wait for carrier after up: the kernel's link watch
// runs at least once a second.
const settleTime = 5 * time.Second

// Down removes everything the lab made and nothing else, from its ledger
// alone (the lab file is not needed), and deletes the ledger. A lab that does
// not exist is already down: that is success.
func Down(name string, opt Options) (*Result, error) {
	if !ledger.ValidName(name) {
		return nil, fmt.Errorf("invalid lab name %s: %s", echo.Quote(name), ledger.NameRule)
	}
	_, err := opt.store().Read(name)
	existed := err == nil
	s, err := open(name, opt)
	if err != nil {
		return nil, err
	}
	defer s.close()
	if err := CheckHost(s.led, opt.Host); err != nil {
		return nil, err
	}
	if s.led == nil {
		r := &Result{Plan: &Plan{Name: name, Mark: MarkPrefix + name}, NoLab: true, TakenDown: existed}
		if !existed {
			// While the lock is held: once it is gone, an up may make
			// the lab.
			labs, err := opt.store().Labs()
			if err != nil {
				return r, err
			}
			r.Labs = slices.DeleteFunc(labs, func(l string) bool { return l == name })
		}
		return r, s.lock.Remove()
	}
	if err := removeHosts(s.led, opt.store()); err != nil {
		return nil, err
	}
	st, err := s.sys.Observe(nil, s.led, opt.store())
	if err != nil {
		return nil, err
	}
	p := PlanDown(name, st)
	_, err = Apply(p, s.sys, opt.store(), ApplyOptions{Host: s.host, Progress: opt.Progress, Stop: opt.Stop})
	// The stopped processes' reapers are gone before down returns.
	s.sys.AwaitReapers()
	if err != nil {
		return &Result{Plan: p}, err
	}
	return &Result{Plan: p}, s.lock.Remove()
}

// PlanFor computes what Up would do now, changing nothing (and taking no lock:
// it may be read while another nsnet works on the lab).
func PlanFor(l *Lab, opt Options) (*Plan, error) {
	if err := CheckSysctls(l); err != nil {
		return nil, err
	}
	store := opt.store()
	led, err := store.Read(l.Name)
	if errors.Is(err, fs.ErrNotExist) {
		led, err = nil, nil
	}
	if err != nil {
		return nil, err
	}
	sys, err := NewSystem(opt.Netns, opt.Exe, store.LabDir(l.Name), l.Mark())
	if err != nil {
		return nil, err
	}
	defer sys.Close()
	if l, err = part(l, opt, sys); err != nil {
		return nil, err
	}
	st, err := sys.Observe(l, led, store)
	if err != nil {
		return nil, err
	}
	if err := sys.checkVXLANUse(l, st, store); err != nil {
		return nil, err
	}
	return PlanUp(l, st)
}

// OpenNode opens the namespace of a node of a lab that is up, by the lab's
// ledger (the lab file is not needed). The host node is the current
// namespace. The caller closes it.
func OpenNode(name, node string, opt Options) (*netns.NS, error) {
	led, err := opt.store().Read(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, &NotUpError{Lab: name, Err: err}
	}
	if err != nil {
		return nil, err
	}
	if err := CheckHost(led, opt.Host); err != nil {
		return nil, err
	}
	n := led.Node(node)
	if n == nil {
		return nil, NoNode(led, node)
	}
	if !n.Owned() {
		return netns.Current()
	}
	return opt.Netns.Open(n.Netns)
}

// Exec replaces the process with argv running in a node of a lab that is up,
// the way `nsnet netns exec` (and `ip netns exec`) do. It only returns on
// failure.
//
// Without argv it starts the user's shell ($SHELL, or /bin/sh) there, with a
// prompt that names the lab and the node.
func Exec(name, node string, argv []string, opt Options) error {
	if len(argv) == 0 {
		argv = nodeShell(name, node)
	}
	led, err := opt.store().Read(name)
	if errors.Is(err, fs.ErrNotExist) {
		return &NotUpError{Lab: name, Err: err}
	}
	if err != nil {
		return err
	}
	if err := CheckHost(led, opt.Host); err != nil {
		return err
	}
	n := led.Node(node)
	if n == nil {
		return NoNode(led, node)
	}
	if !n.Owned() {
		// The host: no namespace to enter.
		return execIn("", "", "", argv, opt.Inherited)
	}
	if !opt.Netns.Exists(n.Netns) {
		return fmt.Errorf("node %s of lab %s: namespace %s does not exist (nsnet up repairs it): %w", node, name, n.Netns, fs.ErrNotExist)
	}
	return execIn(opt.Netns.Path, n.Netns, opt.EtcNetns, argv, opt.Inherited)
}

// NameOf returns the lab a `down` or `status` argument means: the lab of a
// lab file that exists (only its name is read, so a file broken since up
// still names its lab), a lab by name, or the lab brought up from a file
// that is gone. A name that is none of these is taken as a lab name (whose
// down then has nothing to do) unless it looks like a file.
func NameOf(arg string, opt Options) (string, error) {
	if fi, err := os.Stat(arg); err == nil && fi.Mode().IsRegular() {
		return nameInFile(arg)
	}
	store := opt.store()
	if ledger.ValidName(arg) {
		if _, err := os.Stat(store.Path(arg)); err == nil {
			return arg, nil
		}
	}
	abs, err := filepath.Abs(arg)
	if err != nil {
		return "", err
	}
	labs, err := store.Labs()
	if err != nil {
		return "", err
	}
	for _, name := range labs {
		if led, err := store.Read(name); err == nil && led.File == abs {
			return name, nil
		}
	}
	if ledger.ValidName(arg) && !strings.HasSuffix(arg, ".yaml") && !strings.HasSuffix(arg, ".yml") {
		return arg, nil
	}
	return "", fmt.Errorf("%s: no such lab file, and no lab was brought up from it (see nsnet labs): %w", echo.Clip(arg), fs.ErrNotExist)
}

// nameInFile reads only the lab's name from a lab file.
func nameInFile(path string) (string, error) {
	data, err := readFile(path)
	if err != nil {
		return "", err
	}
	var doc struct {
		Lab string `yaml:"lab"`
	}
	// The name is outside the big sections: the YAML library would build
	// the whole file's tree (70 MB for 10,000 nodes) to find it.
	text := data
	if sp, ok := splitFile(data); ok {
		text = sp.skeleton
	}
	if err := yaml.Unmarshal(text, &doc); err != nil || doc.Lab == "" {
		// Not even a name: report the file's problems.
		l, perr := Parse(path, data)
		if perr != nil {
			return "", perr
		}
		return l.Name, nil
	}
	if !ledger.ValidName(doc.Lab) {
		return "", fmt.Errorf("%s: invalid lab name %s: %s", echo.Clip(path), echo.Quote(doc.Lab), ledger.NameRule)
	}
	return doc.Lab, nil
}

// NodePrompt starts the prompt of a shell nsnet exec starts in a node.
func NodePrompt(lab, node string) string { return "(" + lab + " " + node + ") " }

// nodeShell is the shell exec starts when given no command, with PS1 set
// to name the node. The process is about to become the shell, so its own
// environment is the shell's: bash, whose ~/.bashrc usually sets PS1, gets
// PROMPT_COMMAND to put the node's name back in front of it.
func nodeShell(lab, node string) []string {
	sh := os.Getenv("SHELL")
	if sh == "" {
		sh = "/bin/sh"
	}
	p := NodePrompt(lab, node)
	os.Setenv("PS1", p+"$ ")
	if filepath.Base(sh) == "bash" {
		os.Setenv("PS1", p+`\w \$ `)
		os.Setenv("PROMPT_COMMAND", `case "$PS1" in "`+p+`"*) ;; *) PS1="`+p+`$PS1";; esac`)
	}
	return []string{sh}
}

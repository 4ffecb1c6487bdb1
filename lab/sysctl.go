package lab

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"

	"github.com/nsnet/nsnet/internal/echo"
	"github.com/nsnet/nsnet/netns"
)

// A node may set only what the kernel keeps per network namespace. Which keys
// those are is the kernel's to say, and it says so in any fresh, non-initial
// network namespace: the per-namespace tables are registered in every
// namespace, the machine's only in the initial one (so net.core.netdev_budget
// is absent from a fresh namespace), and a few machine-wide values are shown
// there read-only (net.core.rmem_max on recent kernels, 6.18 here). So a key is a node's
// to set exactly when /proc/sys holds it, writable, in a scratch namespace
// that nsnet makes for the question, in its own user namespace (a namespace
// owned by an unprivileged user namespace hides some keys that root's shows,
// and nodes are made the same way as the scratch one).
//
// Per-interface keys (net.ipv4.conf.eth0.rp_filter) are the exception: a
// fresh namespace has no eth0. Their directories are the ones that hold lo
// there, and a key of an interface the lab creates is checked against both
// default and lo, the template of every new interface's directory and a real
// one.
//
// The scratch namespace also tries every value, so that the kernel's own
// parser refuses a bad one before anything changes; each value tried is put
// back, so that tries do not depend on each other.

// sysctlState is how a namespace holds a /proc/sys path.
type sysctlState uint8

const (
	sysctlAbsent sysctlState = iota
	sysctlDir
	sysctlReadOnly
	sysctlWritable
)

// sysctlView looks up /proc/sys paths ("net/ipv4/ip_forward") in one
// namespace.
type sysctlView interface {
	state(path string) sysctlState
	// try writes value and puts the old value back; the error is the
	// kernel's answer to value.
	try(path, value string) error
}

// procSys is /proc/sys as the calling thread sees it.
type procSys struct{}

func (procSys) state(path string) sysctlState {
	fi, err := os.Stat("/proc/sys/" + path)
	switch {
	case err != nil:
		return sysctlAbsent
	case fi.IsDir():
		return sysctlDir
	case fi.Mode().Perm()&0o222 == 0:
		return sysctlReadOnly
	}
	return sysctlWritable
}

func (procSys) try(path, value string) error {
	p := "/proc/sys/" + path
	old, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	if err := writeProc(p, value); err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return pe.Err
		}
		return err
	}
	return writeProc(p, strings.TrimRight(string(old), "\n"))
}

func writeProc(path, value string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return err
	}
	_, werr := f.WriteString(value)
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	return werr
}

// CheckSysctls refuses, with the position of each in the lab file, every
// sysctl of the lab that the kernel does not keep per network namespace,
// that does not exist, or whose value the kernel does not take. It asks a
// scratch namespace (see above), which needs the privileges up needs; it
// changes nothing. Up and PlanFor call it; a lab without sysctls costs
// nothing.
func CheckSysctls(l *Lab) error { return checkSysctlsWith(l, procSys{}) }

// checkSysctlsWith is CheckSysctls with the namespace nsnet runs in seen
// through here (a test stands in for the initial namespace, which a sandbox
// cannot see).
func checkSysctlsWith(l *Lab, here sysctlView) error {
	if !slices.ContainsFunc(l.Nodes, func(n *Node) bool { return len(n.Sysctls) > 0 }) {
		return nil
	}
	// Where nsnet runs, for telling the machine's keys from keys that do
	// not exist: read here, outside the scratch namespace.
	machine := map[string]sysctlState{}
	for _, n := range l.Nodes {
		for _, sc := range n.Sysctls {
			p := sysctlPath(sc.Key)
			if _, ok := machine[p]; !ok {
				machine[p] = here.state(p)
			}
		}
	}
	var pr *problems
	err := netns.Scratch(func() error {
		pr = checkSysctls(l, procSys{}, machine)
		return nil
	})
	if err != nil {
		return fmt.Errorf("checking the lab's sysctls (in a scratch network namespace): %w", err)
	}
	return pr.err()
}

// sysctlPath is a key's path under /proc/sys (the key is valid: resolve
// checked it).
func sysctlPath(key string) string { return strings.ReplaceAll(key, ".", "/") }

// checkSysctls applies the rules with fresh showing a fresh namespace and
// machine the states of the keys' own paths where nsnet runs.
func checkSysctls(l *Lab, fresh sysctlView, machine map[string]sysctlState) *problems {
	pr := &problems{file: l.src}
	states := map[string]sysctlState{}
	state := func(p string) sysctlState {
		st, ok := states[p]
		if !ok {
			st = fresh.state(p)
			states[p] = st
		}
		return st
	}
	tried := map[[2]string]error{}
	for _, n := range l.Nodes {
		for _, sc := range n.Sysctls {
			c := strings.Split(sc.Key, ".")
			path := sysctlPath(sc.Key)
			var tmpl []string // paths the value must be good for
			i := ifaceComponent(c, sc.Iface)
			ifaceKey := i > 0 && state(strings.Join(c[:i], "/")+"/lo") == sysctlDir
			if ifaceKey {
				// A key of an interface the lab creates: it must be in
				// the template of new interfaces and in a real one.
				dir, rest := strings.Join(c[:i], "/"), strings.Join(c[i+1:], "/")
				for _, t := range []string{"default", "lo"} {
					if st := state(dir + "/" + t); st == sysctlDir {
						tmpl = append(tmpl, dir+"/"+t+"/"+rest)
					}
				}
			} else {
				tmpl = []string{path}
			}
			ok := true
			for _, t := range tmpl {
				switch state(t) {
				case sysctlWritable:
					continue
				case sysctlDir:
					pr.add(sc.keyAt, "%s is a directory of sysctls, not one", echo.Clip(sc.Key))
				case sysctlReadOnly:
					pr.add(sc.keyAt, "%s cannot be set in a network namespace: the kernel shows it there read-only (a value of the whole machine, or one it only reports)", echo.Clip(sc.Key))
				case sysctlAbsent:
					pr.add(sc.keyAt, "%s", absentRule(n, sc, c, state, machine[path], ifaceKey, t))
				}
				ok = false
				break
			}
			if !ok {
				continue
			}
			for _, t := range tmpl {
				k := [2]string{t, sc.Value}
				err, done := tried[k]
				if !done {
					err = fresh.try(t, sc.Value)
					tried[k] = err
				}
				if err != nil {
					pr.add(sc.at, "the kernel refuses %s for %s: %v", echo.Quote(sc.Value), echo.Clip(sc.Key), err)
					break
				}
			}
		}
	}
	return pr
}

// ifaceComponent is the index of the component of c that names iface, or 0.
func ifaceComponent(c []string, iface *Interface) int {
	if iface == nil {
		return 0
	}
	for i := len(c) - 2; i >= 2; i-- {
		if c[i] == iface.Name {
			return i
		}
	}
	return 0
}

// absentRule explains a key a fresh namespace lacks: it names an interface
// the node will not have, it is the machine's, or it does not exist.
func absentRule(n *Node, sc Sysctl, c []string, state func(string) sysctlState, machine sysctlState, iface bool, tmpl string) string {
	if iface {
		return fmt.Sprintf("no such sysctl for an interface: %s (the kernel has no /proc/sys/%s)", echo.Clip(sc.Key), echo.Clip(tmpl))
	}
	for i := len(c) - 2; i >= 2; i-- {
		dir := strings.Join(c[:i], "/")
		if state(dir+"/lo") != sysctlDir || state(dir+"/"+c[i]) != sysctlAbsent {
			continue
		}
		var names []string
		for _, it := range n.Interfaces {
			names = append(names, it.Name)
		}
		have := "it has none"
		if len(names) > 0 {
			have = "its interfaces: " + strings.Join(names, ", ")
		}
		return fmt.Sprintf("%s names interface %s, which node %s does not have: per-interface keys name all, default, lo or an interface the lab makes in the node (%s)", echo.Clip(sc.Key), echo.Quote(c[i]), n.Name, have)
	}
	if machine == sysctlDir {
		return fmt.Sprintf("%s is a directory of sysctls, not one", echo.Clip(sc.Key))
	}
	if machine != sysctlAbsent {
		return fmt.Sprintf("%s is global: the kernel keeps one value for the whole machine, not one per network namespace, so a lab may not set it", echo.Clip(sc.Key))
	}
	return fmt.Sprintf("no such sysctl: %s (the kernel has no /proc/sys/%s)", echo.Clip(sc.Key), echo.Clip(sysctlPath(sc.Key)))
}

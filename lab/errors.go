package lab

import (
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strings"

	"github.com/nsnet/nsnet/internal/echo"
)

// ErrInvalid is matched (errors.Is) by every error that rejects a lab file
// before anything was changed.
var ErrInvalid = errors.New("invalid lab")

// FieldError is one problem in a lab file, located by line, column and the
// path of the field, e.g. "links[2].a.addresses[0]".
type FieldError struct {
	File string
	Line int
	Col  int
	Path string
	Rule string
}

func (e *FieldError) Error() string {
	file := e.File
	if file == "" {
		file = "<input>"
	}
	if e.Path == "" {
		return fmt.Sprintf("%s:%d:%d: %s", file, e.Line, e.Col, e.Rule)
	}
	return fmt.Sprintf("%s:%d:%d: %s: %s", file, e.Line, e.Col, e.Path, e.Rule)
}

// Is makes every FieldError match ErrInvalid.
func (e *FieldError) Is(target error) bool { return target == ErrInvalid }

// InvalidError is every problem found in a lab file at once, in file order.
type InvalidError struct {
	Errs []*FieldError
}

func (e *InvalidError) Error() string {
	lines := make([]string, len(e.Errs))
	for i, fe := range e.Errs {
		lines[i] = fe.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap exposes each FieldError to errors.As and errors.Is.
func (e *InvalidError) Unwrap() []error {
	out := make([]error, len(e.Errs))
	for i, fe := range e.Errs {
		out[i] = fe
	}
	return out
}

// Is makes an InvalidError match ErrInvalid even when it is empty.
func (e *InvalidError) Is(target error) bool { return target == ErrInvalid }

// loc is where a value sits in the file. Line and Col are 32 bits: a lab
// file is at most MaxFileSize, and a big lab holds hundreds of thousands
// of locations.
type loc struct {
	Line, Col int32
	Path      string
}

// problems collects FieldErrors for one file.
type problems struct {
	file string
	errs []*FieldError
	// compact holds the paths of the file's compact entries (compact.go):
	// a problem there is said once, however many nodes it concerns.
	compact map[string]bool
}

// inCompact reports whether path is in a compact entry.
func (p *problems) inCompact(path string) bool {
	for i := 0; i <= len(path); i++ {
		if (i == len(path) || path[i] == '.') && p.compact[path[:i]] {
			return true
		}
	}
	return false
}

// add records a problem. Values in it are quoted short (echo.Quote) where
// they are formatted; the rule is bounded again here, for what reaches it
// through other errors (a YAML parser's message, say).
func (p *problems) add(at loc, format string, a ...any) {
	p.errs = append(p.errs, &FieldError{File: p.file, Line: int(at.Line), Col: int(at.Col), Path: at.Path, Rule: echo.Lines(fmt.Sprintf(format, a...))})
}

// err returns the collected problems sorted by position, or nil.
func (p *problems) err() error {
	if len(p.errs) == 0 {
		return nil
	}
	sort.SliceStable(p.errs, func(i, j int) bool {
		a, b := p.errs[i], p.errs[j]
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Col < b.Col
	})
	// A compact entry (count:) is checked once per node it stands for:
	// a problem at one place of it is said once, with how many more
	// nodes or links have it.
	first := map[FieldError]int{}
	more := map[int]int{}
	errs := p.errs[:0]
	for _, e := range p.errs {
		k := *e
		if p.inCompact(e.Path) {
			k.Rule = ""
		}
		if i, dup := first[k]; dup {
			if k.Rule == "" {
				more[i]++
			}
			continue
		}
		first[k] = len(errs)
		errs = append(errs, e)
	}
	for i, n := range more {
		errs[i].Rule += fmt.Sprintf(" (and in %d more of the nodes or links this compact entry stands for)", n)
	}
	p.errs = errs
	return &InvalidError{Errs: p.errs}
}

// NotUpError is a lab that has no ledger: it is not up. It matches
// fs.ErrNotExist and says only that, without the ledger's path.
type NotUpError struct {
	Lab string
	Err error // reading the ledger
}

func (e *NotUpError) Error() string {
	return fmt.Sprintf("no lab named %s is up (see nsnet labs)", echo.Clip(e.Lab))
}

func (e *NotUpError) Unwrap() error { return e.Err }

// NoNodeError is a node a lab that is up does not have; it lists the ones
// it has and matches fs.ErrNotExist.
type NoNodeError struct {
	Lab, Node string
	Nodes     []string
}

func (e *NoNodeError) Error() string {
	return fmt.Sprintf("lab %s has no node %s (nodes: %s)", e.Lab, echo.Clip(e.Node), strings.Join(e.Nodes, ", "))
}

func (e *NoNodeError) Is(target error) bool { return target == fs.ErrNotExist }

// ElsewhereError is a node of a lab across machines that lives on another
// machine than this one: there is nothing of it here to enter, probe or
// read. It matches fs.ErrNotExist, as NoNodeError does.
type ElsewhereError struct {
	Lab, Node string
	// Host and Address are the node's machine, as the lab file says; Here
	// is this machine's host in the lab.
	Host    string
	Address string
	Here    string
}

func (e *ElsewhereError) Error() string {
	return fmt.Sprintf("node %s of lab %s is on %s (%s), not on this machine (%s): run it there", echo.Clip(e.Node), e.Lab, e.Host, e.Address, e.Here)
}

func (e *ElsewhereError) Is(target error) bool { return target == fs.ErrNotExist }

// HostMismatchError is --host naming another host of a lab across machines
// than the one whose part this machine holds.
type HostMismatchError struct {
	Lab, Host string
	// Here is the host whose part is up on this machine; empty when the
	// lab runs on one machine.
	Here string
}

func (e *HostMismatchError) Error() string {
	if e.Here == "" {
		return fmt.Sprintf("--host %s: lab %s runs on one machine (its file has no hosts:)", echo.Quote(e.Host), e.Lab)
	}
	return fmt.Sprintf("--host %s: this machine holds host %s's part of lab %s, not %s's: run on %s, or drop --host", echo.Quote(e.Host), e.Here, e.Lab, e.Host, e.Host)
}

package ledger

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/nsnet/nsnet/internal/echo"
)

// lockName is the lock file inside the lab's state directory.
const lockName = "lock"

// Lock is an exclusive hold on one lab: only the holder reads-modifies-writes
// its ledger or changes its objects. Labs are locked independently, so
// different labs come up in parallel.
//
// It is an flock(2) on a file, so it is released by the kernel when the
// holder dies, even by SIGKILL: a crash never leaves a lab locked.
type Lock struct {
	f    *os.File
	path string
	dir  string
}

// Lock takes the lab's lock, waiting while another process holds it. Before
// waiting it calls onWait (if not nil) with the holder's PID (0 if unknown),
// so the user learns why nothing happens.
func (s Store) Lock(lab string, onWait func(pid int)) (*Lock, error) {
	return s.lock(lab, true, onWait)
}

// TryLock takes the lab's lock if it is free; ok is false when another
// process holds it.
func (s Store) TryLock(lab string) (l *Lock, ok bool, err error) {
	l, err = s.lock(lab, false, nil)
	if errors.Is(err, unix.EWOULDBLOCK) {
		return nil, false, nil
	}
	return l, err == nil, err
}

// Busy reports whether another process holds the lab's lock. It creates
// nothing: a reader (nsnet labs, status) racing a down that removed the
// lab's directory must not make it again, and a lab without a lock file is
// not busy.
func (s Store) Busy(lab string) (bool, error) {
	if !ValidName(lab) {
		return false, &FileError{Op: "lock", Path: lab, Err: fmt.Errorf("invalid lab name %q: %s", lab, NameRule)}
	}
	path := filepath.Join(s.LabDir(lab), lockName)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, &FileError{Op: "lock", Path: path, Err: unwrapPath(err)}
	}
	defer f.Close()
	switch err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); {
	case errors.Is(err, unix.EWOULDBLOCK):
		return true, nil
	case err != nil:
		return false, &FileError{Op: "lock", Path: path, Err: err}
	}
	return false, nil // the Close releases it
}

func (s Store) lock(lab string, wait bool, onWait func(int)) (*Lock, error) {
	if !ValidName(lab) {
		return nil, &FileError{Op: "lock", Path: echo.Clip(lab), Err: fmt.Errorf("invalid lab name %s: %s", echo.Quote(lab), NameRule)}
	}
	dir := s.LabDir(lab)
	path := filepath.Join(dir, lockName)
	for {
		// Not MkdirAll for the lab's directory: it fails when another
		// nsnet removes the directory between its Mkdir and its Lstat.
		if err := os.MkdirAll(s.Dir, 0o755); err != nil {
			return nil, &FileError{Op: "lock", Path: s.Dir, Err: unwrapPath(err)}
		}
		if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, &FileError{Op: "lock", Path: dir, Err: unwrapPath(err)}
		}
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
		if errors.Is(err, fs.ErrNotExist) {
			// A holder removed the lab's directory between MkdirAll and
			// here: make it again.
			continue
		}
		if err != nil {
			return nil, &FileError{Op: "lock", Path: path, Err: unwrapPath(err)}
		}
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if errors.Is(err, unix.EWOULDBLOCK) {
			if !wait {
				f.Close()
				return nil, &FileError{Op: "lock", Path: path, Err: err}
			}
			if onWait != nil {
				onWait(holder(path))
			}
			err = flockRetry(f)
		}
		if err != nil {
			f.Close()
			return nil, &FileError{Op: "lock", Path: path, Err: err}
		}
		// The previous holder may have removed the lab (and this file)
		// while we waited: then we hold a lock nobody else can see, and
		// must start over on the file that is there now.
		if !samePath(f, path) {
			f.Close()
			continue
		}
		f.Truncate(0)
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
		return &Lock{f: f, path: path, dir: dir}, nil
	}
}

func flockRetry(f *os.File) error {
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX)
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

func samePath(f *os.File, path string) bool {
	a, err := f.Stat()
	if err != nil {
		return false
	}
	b, err := os.Stat(path)
	if err != nil {
		return false
	}
	return os.SameFile(a, b)
}

// holder reads the PID the current holder wrote into the lock file.
func holder(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// Release drops the lock; the lab's files stay.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}

// Remove deletes the lab's state directory (ledger, logs, leftovers of
// interrupted writes) and then releases the lock. Waiters notice that the
// lock file they waited on is gone and start over.
//
// Once the lock file is unlinked the directory is no longer this holder's:
// another nsnet may already have made a new lock file in it (and hold it,
// and write a ledger), or removed it after finding nothing. So the
// directory itself is removed only if it is still there and empty.
func (l *Lock) Remove() error {
	if l == nil || l.f == nil {
		return nil
	}
	// Everything but the lock first, so a concurrent reader never sees a
	// ledger without the directory being locked.
	ents, err := os.ReadDir(l.dir)
	var errs []error
	if err != nil {
		errs = append(errs, err)
	}
	for _, e := range ents {
		if e.Name() == lockName {
			continue
		}
		if err := os.RemoveAll(filepath.Join(l.dir, e.Name())); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) == 0 {
		if err := os.Remove(l.path); err != nil {
			errs = append(errs, err)
		}
		if err := os.Remove(l.dir); err != nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, unix.ENOTEMPTY) && !errors.Is(err, unix.EEXIST) {
			errs = append(errs, err)
		}
	}
	errs = append(errs, l.Release())
	if err := errors.Join(errs...); err != nil {
		return &FileError{Op: "remove", Path: l.dir, Err: err}
	}
	return nil
}

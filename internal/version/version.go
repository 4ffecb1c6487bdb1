// Package version reads what a binary knows about its own build: the module
// version and the VCS revision and time that the go command stamps into every
// build made from a checkout (runtime/debug.BuildInfo). nsnet and nsnet-cni
// report the same thing from here.
package version

import (
	"fmt"
	"runtime/debug"
	"strings"
)

// Info is one binary's build information.
type Info struct {
	Program  string `json:"program"`
	Version  string `json:"version"`            // module version, "(devel)" for a build from a checkout
	Revision string `json:"revision,omitempty"` // VCS revision (vcs.revision)
	Time     string `json:"time,omitempty"`     // VCS commit time, RFC 3339 (vcs.time)
	Modified bool   `json:"modified,omitempty"` // the checkout had uncommitted changes
	Go       string `json:"go"`                 // the Go toolchain
	Module   string `json:"module,omitempty"`
}

// Stamp, when set, replaces the module version. A release build made from a
// checkout (where the module version is "(devel)") sets it with
//
//	go build -ldflags "-X github.com/nsnet/nsnet/internal/version.Stamp=v1.2.3"
//
// It is a variable only because -X needs one; nothing assigns it at run time.
var Stamp string

// Read returns the running binary's build information.
func Read(program string) Info {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return Info{Program: program, Version: or(Stamp, "(unknown)")}
	}
	return FromBuildInfo(program, Stamp, bi)
}

// FromBuildInfo is Read for a given BuildInfo; override is Stamp's role.
func FromBuildInfo(program, override string, bi *debug.BuildInfo) Info {
	in := Info{Program: program, Version: bi.Main.Version, Go: bi.GoVersion, Module: bi.Main.Path}
	if override != "" {
		in.Version = override
	}
	if in.Version == "" {
		in.Version = "(devel)"
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			in.Revision = s.Value
		case "vcs.time":
			in.Time = s.Value
		case "vcs.modified":
			in.Modified = s.Value == "true"
		}
	}
	return in
}

// String is the one line `nsnet version` prints:
//
//	nsnet v1.2.0 (revision 0123456789ab, 2026-12-01T10:00:00Z, modified) go1.26.8
func (in Info) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", in.Program, in.Version)
	var extra []string
	if in.Revision != "" {
		r := in.Revision
		if len(r) > 12 {
			r = r[:12]
		}
		extra = append(extra, "revision "+r)
	}
	if in.Time != "" {
		extra = append(extra, in.Time)
	}
	if in.Modified {
		extra = append(extra, "modified")
	}
	if len(extra) > 0 {
		fmt.Fprintf(&b, " (%s)", strings.Join(extra, ", "))
	}
	if in.Go != "" {
		b.WriteString(" " + in.Go)
	}
	return b.String()
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

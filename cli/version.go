package cli

import (
	"fmt"

	"github.com/nsnet/nsnet/internal/version"
)

// version prints `nsnet version`: what the go command stamped into this
// build (module version, VCS revision and time), or JSON with -j.
func (e *Env) version(c Command) (int, error) {
	in := version.Read("nsnet")
	if c.Opts.JSON {
		return 0, writeJSON(e.Stdout, in)
	}
	fmt.Fprintln(e.Stdout, in)
	return 0, nil
}

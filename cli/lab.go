package cli

import "fmt"

// lab runs the lab commands (up, down, plan, status, labs, exec, check).
func (e *Env) lab(c Command) (int, error) {
	return 2, fmt.Errorf("%s: not implemented yet", c.Object)
}

package cli

import "fmt"

// check runs a lab's reachability and isolation expectations.
func (e *Env) check(c Command) (int, error) {
	return 2, fmt.Errorf("check: not implemented yet")
}

package cli

import "fmt"

// bench compares nsnet with iproute2 and a tuned netlink loop.
func (e *Env) bench(c Command) (int, error) {
	return 2, fmt.Errorf("bench: not implemented yet")
}

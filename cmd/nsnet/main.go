// Command nsnet builds isolated networks from namespaces and veth pairs.
package main

import (
	"os"

	"github.com/nsnet/nsnet/cli"
)

func main() { os.Exit(cli.Main(os.Args[1:])) }

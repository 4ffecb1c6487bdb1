// Command nsnet builds isolated networks from namespaces and veth pairs.
package main

import (
	"os"

	"github.com/nsnet/nsnet/cli"
	"github.com/nsnet/nsnet/internal/fastexec" // netns exec without Go start-up
)

func main() { os.Exit(cli.Main(os.Args[1:], fastexec.Inherited())) }

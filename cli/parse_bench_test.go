package cli_test

import (
	"strings"
	"testing"

	"github.com/nsnet/nsnet/cli"
)

// BenchmarkParse: what parsing costs per command line (the table is built
// for each, as nsnet runs one command per process).
func BenchmarkParse(b *testing.B) {
	for _, line := range []string{"-br link", "a add 10.200.0.2/24 dev veth0", "netns exec direct_netns nsnet -br link"} {
		args := strings.Fields(line)
		b.Run(strings.ReplaceAll(line, " ", "_"), func(b *testing.B) {
			for b.Loop() {
				if _, err := cli.Parse(args); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

package ipalloc_test

import (
	"fmt"
	"net/netip"

	"github.com/nsnet/nsnet/ipalloc"
)

// A lab's automatic addresses: the lowest free host address, in order,
// skipping what the file already uses.
func ExampleRange_Claim() {
	hosts := ipalloc.Hosts(netip.MustParsePrefix("10.1.0.0/29"))
	used := map[netip.Addr]bool{netip.MustParseAddr("10.1.0.1"): true} // written in the file
	take := func(a netip.Addr) (bool, error) {
		if used[a] {
			return false, nil
		}
		used[a] = true
		return true, nil
	}
	for range 3 {
		a, err := hosts.Claim(hosts.First, take)
		fmt.Println(a, err)
	}
	// Output:
	// 10.1.0.2 <nil>
	// 10.1.0.3 <nil>
	// 10.1.0.4 <nil>
}

// The CNI plugin's pool: the subnet's hosts without the gateway, searched
// from a point derived from the attachment.
func ExampleRange_StartFor() {
	pool := ipalloc.Hosts(netip.MustParsePrefix("10.88.0.0/16")).Skip(1)
	fmt.Println(pool.First, pool.Last, pool.Size())
	start := pool.StartFor("c1:eth0")
	fmt.Println(pool.Contains(start), start == pool.StartFor("c1:eth0"))
	// Output:
	// 10.88.0.2 10.88.255.254 65533
	// true true
}

// Package kernel changes and reads the network configuration of one network
// namespace through rtnetlink: links (a driver per kind: veth, bridge),
// addresses, routes, neighbour entries and the links' queueing disciplines.
//
// It owns every conversation nsnet has with the kernel's networking: no other
// package builds a netlink message. Each change is one request, built in the
// file of the object it changes (link.go, veth.go, bridge.go, addr.go,
// route.go, neigh.go), and sent either alone by a Handle, which answers at
// once, or queued on a Batch (transport.go), which sends many in one system
// call and answers at Flush. Listings are dumps (and gets) on the same
// socket, retried whole when a concurrent change interrupts them. Messages
// are typed by github.com/jsimonetti/rtnetlink/v2 and carried by
// github.com/mdlayher/netlink.
//
// A Handle or Batch is bound to its namespace when it is opened: its netlink
// socket is created inside the namespace and stays there, so it can be used
// from any goroutine without switching threads.
package kernel

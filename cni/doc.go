// Package cni is nsnet's CNI plugin (spec 1.1): ADD, DEL, CHECK, STATUS and
// GC, with VERSION answered by skel. It wires a container's network
// namespace to the host with a veth pair, in one of two modes:
//
//   - ptp: the container end carries the container's /32 and /128 and routes
//     everything through a gateway address on the host end, which has host
//     routes back to the container (like the reference ptp plugin);
//   - bridge: the host end is a port of a bridge that carries the gateway
//     addresses (like the reference bridge plugin).
//
// Addresses come from the built-in allocator (ipam type "nsnet"), whose
// state lives in files under dataDir and survives restarts, or from any IPAM
// plugin through the spec's delegation protocol. Outbound masquerade is
// programmed through nftables' netlink interface.
//
// The kernel work goes through nsnet's kernel and netns packages, the same
// code that builds labs. Netlink and netfilter sockets are created on a
// locked thread inside their namespace (netns.NS.Do) and used from anywhere
// afterwards; nothing here calls setns itself or starts a goroutine while
// inside a namespace. Delegated IPAM plugins are started from ordinary
// goroutines, whose threads are in the plugin's own namespace.
//
// Ownership is recorded before anything is created: every attachment has a
// record on disk before its interfaces exist, and every host interface
// carries an alias naming its attachment, so DEL and GC never remove what is
// not theirs and always find what is.
//
// cni owns the CNI verbs, the attachment records and the allocator's state;
// it builds no netlink message itself (kernel does) and converts errors to
// CNI error codes only at its edge.
package cni

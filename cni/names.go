package cni

import (
	"crypto/sha256"
	"encoding/hex"
	"net"
)

// hostVethPrefix starts the name of every host-side veth nsnet creates.
const hostVethPrefix = "nsc"

// hostVethName derives the host end's name from the attachment: DEL and GC
// find the interface without any state, and the same attachment on two
// networks gets two names. 48 bits of hash make a collision between live
// attachments vanishingly unlikely, and ownership is checked by alias before
// anything is deleted anyway.
func hostVethName(network, containerID, ifName string) string {
	h := sha256.Sum256([]byte(network + "\x00" + containerID + "\x00" + ifName))
	return hostVethPrefix + hex.EncodeToString(h[:6])
}

// maxAlias is IFALIASZ-1: longer aliases are refused by the kernel.
const maxAlias = 255

// ownerAlias marks a host veth as belonging to one attachment of one
// network. It is readable in `ip link` when it fits; otherwise the
// container part is hashed.
func ownerAlias(network, containerID, ifName string) string {
	s := networkAliasPrefix(network) + containerID + " " + ifName
	if len(s) <= maxAlias {
		return s
	}
	h := sha256.Sum256([]byte(containerID + "\x00" + ifName))
	return networkAliasPrefix(network) + "#" + hex.EncodeToString(h[:16])
}

// networkAliasPrefix starts the alias of every veth of the network, which is
// how GC finds veths whose record was lost.
func networkAliasPrefix(network string) string {
	if len(network) > 128 {
		h := sha256.Sum256([]byte(network))
		network = "#" + hex.EncodeToString(h[:8])
	}
	return "nsnet-cni " + network + " "
}

// bridgeAlias marks a bridge nsnet created, and so may delete once no
// attachment uses it.
const bridgeAlias = "nsnet-cni bridge"

// bridgeMAC is a fixed, locally administered address for the bridge.
// Without one a Linux bridge takes the lowest MAC of its ports, so the
// gateway's MAC would change under the containers' ARP caches whenever a
// container comes or goes.
func bridgeMAC(bridge string) net.HardwareAddr {
	h := sha256.Sum256([]byte("nsnet-cni bridge " + bridge))
	mac := net.HardwareAddr(h[:6])
	mac[0] = mac[0]&0xfe | 0x02 // unicast, locally administered
	return mac
}

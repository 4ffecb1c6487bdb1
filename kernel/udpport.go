package kernel

import (
	"errors"

	"golang.org/x/sys/unix"

	"github.com/nsnet/nsnet/netns"
)

// UDPPortHeld reports whether something in ns holds UDP port on the
// wildcard address of one family (IPv6 with v6): a process's socket, or the
// kernel's own VXLAN socket of that port (a VXLAN device that is up binds
// it, on every address, without SO_REUSEADDR). It finds out by binding the
// port itself, for an instant, with IPV6_V6ONLY so that the two families
// stay apart as the kernel's VXLAN sockets keep them.
func UDPPortHeld(ns *netns.NS, port int, v6 bool) (bool, error) {
	var fd int
	fam := unix.AF_INET
	if v6 {
		fam = unix.AF_INET6
	}
	if err := ns.Do(func() error {
		var err error
		fd, err = unix.Socket(fam, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		return err
	}); err != nil {
		return false, &OpError{Op: "open udp socket", Name: ns.String(), Err: err}
	}
	defer unix.Close(fd)
	var sa unix.Sockaddr = &unix.SockaddrInet4{Port: port}
	if v6 {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1); err != nil {
			return false, &OpError{Op: "set IPV6_V6ONLY", Name: ns.String(), Err: err}
		}
		sa = &unix.SockaddrInet6{Port: port}
	}
	err := unix.Bind(fd, sa)
	switch {
	case err == nil:
		return false, nil
	case errors.Is(err, unix.EADDRINUSE):
		return true, nil
	}
	return false, &OpError{Op: "bind udp port", Name: ns.String(), Err: err}
}

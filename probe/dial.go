package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nsnet/nsnet/internal/echo"
	"github.com/nsnet/nsnet/netns"
)

// DialContext connects to addr (an IP literal and port; names would be
// resolved in the caller's namespace, so they are refused) from inside ns.
//
// Of d, Timeout, Deadline, LocalAddr, KeepAlive and Control/ControlContext
// are honoured (d may be nil); the context bounds the connect as well.
//
// Only socket(2) runs on a thread inside ns: the namespace is fixed when the
// socket is made. The connect is then driven by the runtime poller from an
// ordinary goroutine, so thousands of concurrent probes do not pin thousands
// of locked threads.
func DialContext(ctx context.Context, ns *netns.NS, d *net.Dialer, network, addr string) (net.Conn, error) {
	if ns == nil {
		return d.DialContext(ctx, network, addr)
	}
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Err: fmt.Errorf("address %s must be IP:PORT (names are not resolved inside a namespace)", echo.Quote(addr))}
	}
	ip := ap.Addr().Unmap()
	fam := unix.AF_INET
	if ip.Is6() {
		fam = unix.AF_INET6
	}
	typ := unix.SOCK_STREAM
	switch network {
	case "tcp", "tcp4", "tcp6":
	case "udp", "udp4", "udp6":
		typ = unix.SOCK_DGRAM
	default:
		return nil, &net.OpError{Op: "dial", Net: network, Err: fmt.Errorf("unsupported network %s", echo.Quote(network))}
	}
	var fd int
	var zone uint32
	if err := ns.Do(func() error {
		var err error
		if zone, err = zoneIndex(ip.Zone()); err != nil {
			return err
		}
		fd, err = unix.Socket(fam, typ|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		return err
	}); err != nil {
		return nil, &net.OpError{Op: "socket", Net: network, Err: err}
	}
	f := os.NewFile(uintptr(fd), "probe")
	defer f.Close()
	if d == nil {
		d = &net.Dialer{}
	}
	deadline := d.Deadline
	if d.Timeout > 0 && (deadline.IsZero() || time.Now().Add(d.Timeout).Before(deadline)) {
		deadline = time.Now().Add(d.Timeout)
	}
	if dl, ok := ctx.Deadline(); ok && (deadline.IsZero() || dl.Before(deadline)) {
		deadline = dl
	}
	var sa unix.Sockaddr
	if ip.Is4() {
		sa = &unix.SockaddrInet4{Addr: ip.As4(), Port: int(ap.Port())}
	} else {
		sa = &unix.SockaddrInet6{Addr: ip.As16(), Port: int(ap.Port()), ZoneId: zone}
	}
	opErr := func(err error) error {
		return &net.OpError{Op: "dial", Net: network, Addr: net.TCPAddrFromAddrPort(ap), Err: os.NewSyscallError("connect", err)}
	}
	if err := prepare(ctx, d, f, fd, fam, network, ap); err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Addr: net.TCPAddrFromAddrPort(ap), Err: err}
	}
	err = unix.Connect(fd, sa)
	if errors.Is(err, unix.EINPROGRESS) {
		if err := f.SetWriteDeadline(deadline); err != nil {
			return nil, opErr(err)
		}
		stop := context.AfterFunc(ctx, func() { f.SetWriteDeadline(time.Unix(1, 0)) })
		defer stop()
		rc, err := f.SyscallConn()
		if err != nil {
			return nil, opErr(err)
		}
		var connErr error
		werr := rc.Write(func(fd uintptr) bool {
			so, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_ERROR)
			if err != nil {
				connErr = err
				return true
			}
			if so != 0 {
				connErr = unix.Errno(so)
				return true
			}
			_, err = unix.Getpeername(int(fd))
			// ENOTCONN: still connecting, wait for writability.
			return err == nil
		})
		if werr != nil {
			if errors.Is(werr, os.ErrDeadlineExceeded) {
				if ctx.Err() != nil {
					return nil, opErr(ctx.Err())
				}
				if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
					// The poller saw the context's deadline before the
					// context did.
					return nil, opErr(context.DeadlineExceeded)
				}
				return nil, &net.OpError{Op: "dial", Net: network, Addr: net.TCPAddrFromAddrPort(ap), Err: timeoutError{}}
			}
			return nil, opErr(werr)
		}
		if connErr != nil {
			return nil, opErr(connErr)
		}
	} else if err != nil {
		return nil, opErr(err)
	}
	c, err := net.FileConn(f)
	if err != nil {
		return nil, opErr(err)
	}
	c.SetDeadline(time.Time{})
	if tc, ok := c.(*net.TCPConn); ok && d.KeepAlive >= 0 {
		// net.Dialer's default: keep-alive on, every 15 s unless set.
		tc.SetKeepAlive(true)
		if d.KeepAlive > 0 {
			tc.SetKeepAlivePeriod(d.KeepAlive)
		}
	}
	return c, nil
}

// prepare applies the dialer's settings that act before connect: the local
// address to bind and the Control hooks.
func prepare(ctx context.Context, d *net.Dialer, f *os.File, fd, fam int, network string, ap netip.AddrPort) error {
	if d.LocalAddr != nil {
		var la netip.AddrPort
		switch a := d.LocalAddr.(type) {
		case *net.TCPAddr:
			la = a.AddrPort()
		case *net.UDPAddr:
			la = a.AddrPort()
		default:
			return fmt.Errorf("local address %v: must be a *net.TCPAddr or *net.UDPAddr", d.LocalAddr)
		}
		ip := la.Addr().Unmap()
		var sa unix.Sockaddr
		switch {
		case fam == unix.AF_INET && (ip.Is4() || !ip.IsValid()):
			s4 := &unix.SockaddrInet4{Port: int(la.Port())}
			if ip.IsValid() {
				s4.Addr = ip.As4()
			}
			sa = s4
		case fam == unix.AF_INET6 && (ip.Is6() || !ip.IsValid()):
			s6 := &unix.SockaddrInet6{Port: int(la.Port())}
			if ip.IsValid() {
				s6.Addr = ip.As16()
			}
			sa = s6
		default:
			return fmt.Errorf("local address %v is not of the family of %v", d.LocalAddr, ap.Addr())
		}
		if err := unix.Bind(fd, sa); err != nil {
			return os.NewSyscallError("bind", err)
		}
	}
	if d.ControlContext == nil && d.Control == nil {
		return nil
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	if d.ControlContext != nil {
		return d.ControlContext(ctx, network, ap.String(), rc)
	}
	return d.Control(network, ap.String(), rc)
}

type timeoutError struct{}

func (timeoutError) Error() string   { return "i/o timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }
func (timeoutError) Is(target error) bool {
	return target == os.ErrDeadlineExceeded
}

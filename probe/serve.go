package probe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/nsnet/nsnet/netns"
)

// Listen opens a listening socket inside ns (nil: the caller's namespace).
// The socket stays in ns; it can be served from any goroutine.
func Listen(ns *netns.NS, network, addr string) (net.Listener, error) {
	var ln net.Listener
	err := do(ns, func() error {
		var err error
		ln, err = net.Listen(network, addr)
		return err
	})
	return ln, err
}

// ListenPacket opens a packet socket (udp) inside ns.
func ListenPacket(ns *netns.NS, network, addr string) (net.PacketConn, error) {
	var pc net.PacketConn
	err := do(ns, func() error {
		var err error
		pc, err = net.ListenPacket(network, addr)
		return err
	})
	return pc, err
}

func do(ns *netns.NS, fn func() error) error {
	if ns == nil {
		return fn()
	}
	return ns.Do(fn)
}

// HTTPBody is what the built-in HTTP responder answers, so a probe can tell
// it apart from any other server.
const HTTPBody = "nsnet http responder\n"

// ServeHTTP answers every request on ln with HTTPBody until ctx ends.
func ServeHTTP(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			io.WriteString(w, HTTPBody)
		}),
		ReadHeaderTimeout: 5 * time.Second,
	}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	err := srv.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// ServeTCPEcho echoes every connection on ln until ctx ends.
func ServeTCPEcho(ctx context.Context, ln net.Listener) error {
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		go func() {
			defer c.Close()
			c.SetDeadline(time.Now().Add(30 * time.Second))
			io.Copy(c, c)
		}()
	}
}

// ServeUDPEcho sends every datagram on pc back to its sender until ctx ends.
func ServeUDPEcho(ctx context.Context, pc net.PacketConn) error {
	go func() {
		<-ctx.Done()
		pc.Close()
	}()
	buf := make([]byte, 65536)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if _, err := pc.WriteTo(buf[:n], from); err != nil && ctx.Err() != nil {
			return nil
		}
	}
}

// FetchError is an HTTP fetch that got no response, with curl's exit code.
type FetchError struct {
	URL  string
	Code int // 7: could not connect, 28: timed out
	Err  error
}

func (e *FetchError) Error() string {
	return fmt.Sprintf("fetch %s: %v", e.URL, e.Err)
}

func (e *FetchError) Unwrap() error { return e.Err }

// Fetch GETs url from inside ns with a fresh connection and returns the
// status code and body (at most 1 MiB).
func Fetch(ctx context.Context, ns *netns.NS, url string, timeout time.Duration) (int, []byte, error) {
	dialer := &net.Dialer{Timeout: timeout}
	tr := &http.Transport{
		// Connections are made inside ns: the socket is created on a thread
		// in ns and then used from anywhere.
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return DialContext(ctx, ns, dialer, network, addr)
		},
		DisableKeepAlives: true,
		Proxy:             nil,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: timeout}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, nil, &FetchError{URL: url, Code: 3, Err: err}
	}
	resp, err := client.Do(req)
	if err != nil {
		code := 7
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			code = 28
		}
		// Say it as curl does, keeping the cause in the chain.
		var oe *net.OpError
		if errors.As(err, &oe) && oe.Op == "dial" {
			cause := oe.Err
			var se *os.SyscallError
			if errors.As(cause, &se) {
				cause = se.Err
			}
			host, port, _ := net.SplitHostPort(req.URL.Host)
			err = &dialError{msg: fmt.Sprintf("failed to connect to %s port %s: %v", host, port, cause), err: err}
		}
		return 0, nil, &FetchError{URL: url, Code: code, Err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, body, err
}

// dialError is a failed connection in curl's words, unwrapping to the cause.
type dialError struct {
	msg string
	err error
}

func (e *dialError) Error() string { return e.msg }
func (e *dialError) Unwrap() error { return e.err }

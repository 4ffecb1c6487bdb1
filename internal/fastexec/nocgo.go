//go:build !cgo

package fastexec

// Without cgo there is no constructor: `netns exec` takes the Go path in
// package netns, which behaves the same and starts about 1 ms slower.

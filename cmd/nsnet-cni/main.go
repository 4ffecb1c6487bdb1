// Command nsnet-cni is nsnet's CNI plugin; see package cni.
package main

import "github.com/nsnet/nsnet/cni"

func main() { cni.Main() }

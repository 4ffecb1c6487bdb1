// Command nsnet-cni is nsnet's CNI plugin; see package cni.
package main

import (
	"github.com/containernetworking/cni/pkg/skel"

	"github.com/nsnet/nsnet/cni"
)

func main() { skel.PluginMainFuncs(cni.Funcs(), cni.Versions(), cni.About) }

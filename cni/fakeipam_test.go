package cni_test

// fakeipam is a stand-in IPAM plugin for the delegation tests, played by
// the test binary itself (see TestMain). It hands out the address its
// configuration names and appends every call it gets to ipam.logFile, so
// the tests can see what was delegated.

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"
)

type fakeConf struct {
	types.PluginConf
	IPAM struct {
		LogFile string `json:"logFile"`
		Address string `json:"address"`
		Gateway string `json:"gateway"`
		Fail    string `json:"fail"`
	} `json:"ipam"`
}

func fakeHandle(verb string) func(*skel.CmdArgs) error {
	return func(args *skel.CmdArgs) error {
		var c fakeConf
		if err := json.Unmarshal(args.StdinData, &c); err != nil {
			return err
		}
		line := fmt.Sprintf("%s %s %s", verb, args.ContainerID, args.IfName)
		if verb == "GC" {
			var ids []string
			for _, a := range c.ValidAttachments {
				ids = append(ids, a.ContainerID+"/"+a.IfName)
			}
			line += " valid=" + strings.Join(ids, ",")
		}
		f, err := os.OpenFile(c.IPAM.LogFile, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return err
		}
		fmt.Fprintln(f, line)
		f.Close()
		if c.IPAM.Fail == verb {
			return types.NewError(types.ErrTryAgainLater, "fakeipam told to fail "+verb, "")
		}
		if verb != "ADD" {
			return nil
		}
		ip, ipn, err := net.ParseCIDR(c.IPAM.Address)
		if err != nil {
			return err
		}
		ipn.IP = ip
		res := &types100.Result{
			CNIVersion: c.CNIVersion,
			IPs:        []*types100.IPConfig{{Address: *ipn, Gateway: net.ParseIP(c.IPAM.Gateway)}},
			Routes:     []*types.Route{{Dst: net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}}},
			DNS:        types.DNS{Nameservers: []string{"192.0.2.53"}},
		}
		return types.PrintResult(res, c.CNIVersion)
	}
}

// fakeIPAM is the main function of the fakeipam plugin.
func fakeIPAM() {
	skel.PluginMainFuncs(skel.CNIFuncs{
		Add: fakeHandle("ADD"), Del: fakeHandle("DEL"), Check: fakeHandle("CHECK"),
		GC: fakeHandle("GC"), Status: fakeHandle("STATUS"),
	}, version.All, "fakeipam")
}

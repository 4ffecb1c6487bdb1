package kernel

import (
	"syscall"

	"github.com/jsimonetti/rtnetlink/v2"
	"github.com/jsimonetti/rtnetlink/v2/driver"
	mnl "github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Bridge is the bridge driver of a new link, with the kernel's defaults.
type Bridge struct{}

// Kind is the kernel's name for the driver.
func (Bridge) Kind() string { return "bridge" }

func (Bridge) linkInfo() (*rtnetlink.LinkInfo, error) {
	return &rtnetlink.LinkInfo{Kind: "bridge"}, nil
}

// AddBridge creates a bridge (down).
func (h *Handle) AddBridge(name string, mtu int, alias string) error {
	index, err := h.addLink(NewLink{Name: name, MTU: mtu, Kind: Bridge{}})
	if err != nil {
		return err
	}
	if alias != "" {
		return h.setIndex("set alias", index, LinkChange{Alias: alias})
	}
	return nil
}

// SetMaster attaches a link to a bridge; an empty bridge detaches it.
func (h *Handle) SetMaster(name, bridge string) error {
	if bridge == "" {
		return h.setName("set nomaster", name, LinkChange{NoMaster: true})
	}
	index, err := h.index(name)
	if err != nil {
		return err
	}
	master, err := h.index(bridge)
	if err != nil {
		return err
	}
	r, err := setLink("set master", name, index, LinkChange{MasterIndex: master})
	if err != nil {
		return err
	}
	return h.do(r)
}

// SetMasterIndex attaches the interface index to the bridge master.
func (h *Handle) SetMasterIndex(index, master int) error {
	return h.setIndex("set master", index, LinkChange{MasterIndex: master})
}

// SetHairpinIndex turns a bridge port's hairpin mode on or off: with it, the
// bridge may send a frame back out of the port it came in by, which is what
// lets a container reach itself through an address translated back to it
// (a Kubernetes service, a host port).
func (h *Handle) SetHairpinIndex(index int, on bool) error {
	mode := driver.BridgeEnableDisabled
	if on {
		mode = driver.BridgeEnableEnabled
	}
	m := rtnetlink.LinkMessage{Index: uint32(index), Attributes: &rtnetlink.LinkAttributes{Info: &rtnetlink.LinkInfo{
		SlaveKind: "bridge", SlaveData: &driver.BridgePort{Mode: &mode},
	}}}
	data, err := m.MarshalBinary()
	if err != nil {
		return &OpError{Op: "set hairpin", Name: indexName(index), Err: err}
	}
	return h.do(request{typ: unix.RTM_NEWLINK, data: data, what: "set hairpin", name: indexName(index)})
}

// HairpinIndex reports a bridge port's hairpin mode.
func (h *Handle) HairpinIndex(index int) (bool, error) {
	var on bool
	var failed error
	err := h.batch(func(b *Batch) error {
		return b.exchange([]request{getLink(index, "")}, func(_ int, m mnl.Message, errno syscall.Errno) {
			if errno != 0 {
				failed = opErr("get bridge port", indexName(index), errno)
				return
			}
			var lm rtnetlink.LinkMessage
			if err := lm.UnmarshalBinary(m.Data); err != nil {
				failed = &OpError{Op: "get bridge port", Name: indexName(index), Err: err}
				return
			}
			if a := lm.Attributes; a != nil && a.Info != nil {
				if p, ok := a.Info.SlaveData.(*driver.BridgePort); ok && p.Mode != nil {
					on = *p.Mode == driver.BridgeEnableEnabled
				}
			}
		})
	})
	if err == nil {
		err = failed
	}
	return on, err
}

// PortForwarding is the bridge port state (IFLA_BRPORT_STATE,
// BR_STATE_FORWARDING) in which a port passes frames. A port whose link just
// got carrier is disabled until the kernel's link watch enables it, so a
// frame sent through the bridge before is dropped.
const PortForwarding = 3

// portState reads a link's bridge port state from its link info: whether it
// is a bridge port and, if so, its STP state.
func portState(info *rtnetlink.LinkInfo) (bridgePort bool, state uint8) {
	if info == nil || info.SlaveKind != "bridge" {
		return false, 0
	}
	if p, ok := info.SlaveData.(*driver.BridgePort); ok && p.State != nil {
		state = uint8(*p.State)
	}
	return true, state
}

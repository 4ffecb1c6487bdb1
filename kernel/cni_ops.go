package kernel

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Operations on interfaces known by index. Hot paths that already hold an
// index (from LinkByName or a dump) use them to save the lookup by name
// every name-based operation costs.

func indexName(index int) string { return fmt.Sprintf("index %d", index) }

func byIndex(index int) netlink.Link {
	return &netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: index}}
}

// LinkByIndex returns one interface; a missing one matches fs.ErrNotExist.
func (h *Handle) LinkByIndex(index int) (Link, error) {
	l, err := h.nl.LinkByIndex(index)
	if err != nil {
		var lnf netlink.LinkNotFoundError
		if errors.As(err, &lnf) || errors.Is(err, unix.ENODEV) {
			return Link{}, &OpError{Op: "find device", Name: indexName(index), Err: kindError{errors.New("no such device"), fs.ErrNotExist}}
		}
		return Link{}, opErr("find device", indexName(index), err)
	}
	return toLink(l), nil
}

// AddAddrIndex is AddAddr for an interface known by index.
func (h *Handle) AddAddrIndex(index int, p netip.Prefix, opt AddrOptions) error {
	if !p.IsValid() {
		return fmt.Errorf("add address to %s: invalid prefix", indexName(index))
	}
	a := &netlink.Addr{IPNet: toIPNet(p)}
	if opt.NoDAD && p.Addr().Is6() {
		a.Flags = unix.IFA_F_NODAD
	}
	return opErr("add address", fmt.Sprintf("%s dev %s", p, indexName(index)), h.nl.AddrAdd(byIndex(index), a))
}

// SetMasterIndex attaches the interface index to the bridge master.
func (h *Handle) SetMasterIndex(index, master int) error {
	return opErr("set master", indexName(index), h.nl.LinkSetMasterByIndex(byIndex(index), master))
}

// SetHairpinIndex turns a bridge port's hairpin mode on or off: with it, the
// bridge may send a frame back out of the port it came in by, which is what
// lets a container reach itself through an address translated back to it
// (a Kubernetes service, a host port).
func (h *Handle) SetHairpinIndex(index int, on bool) error {
	return opErr("set hairpin", indexName(index), h.nl.LinkSetHairpin(byIndex(index), on))
}

// HairpinIndex reports a bridge port's hairpin mode.
func (h *Handle) HairpinIndex(index int) (bool, error) {
	p, err := h.nl.LinkGetProtinfo(byIndex(index))
	if err != nil {
		return false, opErr("get bridge port", indexName(index), err)
	}
	return p.Hairpin, nil
}

// DelLinkIndex deletes an interface by index; a missing one matches
// fs.ErrNotExist.
func (h *Handle) DelLinkIndex(index int) error {
	return opErr("delete device", indexName(index), h.nl.LinkDel(byIndex(index)))
}

// SetHardwareAddr sets an interface's MAC address.
func (h *Handle) SetHardwareAddr(name string, mac net.HardwareAddr) error {
	l, err := h.byName(name)
	if err != nil {
		return err
	}
	return opErr("set address", name, h.nl.LinkSetHardwareAddr(l, mac))
}

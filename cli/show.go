package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/nsnet/nsnet/kernel"
)

// linkView is what iproute2 prints for one link; it also serializes to the
// same JSON keys as `ip -j link`.
type linkView struct {
	IfIndex     int        `json:"ifindex,omitempty"`
	Link        string     `json:"link,omitempty"`
	LinkIndex   int        `json:"link_index,omitempty"`
	IfName      string     `json:"ifname"`
	Flags       []string   `json:"flags"`
	MTU         int        `json:"mtu,omitempty"`
	Qdisc       string     `json:"qdisc,omitempty"`
	Master      string     `json:"master,omitempty"`
	OperState   string     `json:"operstate"`
	LinkMode    string     `json:"linkmode,omitempty"`
	Group       string     `json:"group,omitempty"`
	TxQLen      int        `json:"txqlen,omitempty"`
	LinkType    string     `json:"link_type,omitempty"`
	Address     string     `json:"address,omitempty"`
	Broadcast   string     `json:"broadcast,omitempty"`
	LinkNetnsID *int       `json:"link_netnsid,omitempty"`
	AddrInfo    []addrView `json:"addr_info,omitempty"`

	peer       string          // "veth0" or "if3", for NAME@PEER
	netnsName  string          // link-netns NAME in full output
	addrs      []kernel.Addr   // for addr show
	briefAddrs []briefAddrView // -br -j addr
}

type addrView struct {
	Family        string `json:"family"`
	Local         string `json:"local"`
	PrefixLen     int    `json:"prefixlen"`
	Scope         string `json:"scope"`
	Label         string `json:"label,omitempty"`
	Tentative     bool   `json:"tentative,omitempty"`
	ValidLife     uint32 `json:"valid_life_time"`
	PreferredLife uint32 `json:"preferred_life_time"`
}

type briefAddrView struct {
	Local     string `json:"local"`
	PrefixLen int    `json:"prefixlen"`
}

type briefLinkJSON struct {
	Link      string   `json:"link,omitempty"`
	LinkIndex int      `json:"link_index,omitempty"`
	IfName    string   `json:"ifname"`
	OperState string   `json:"operstate"`
	Address   string   `json:"address,omitempty"`
	Flags     []string `json:"flags"`
}

type briefAddrJSON struct {
	Link      string          `json:"link,omitempty"`
	LinkIndex int             `json:"link_index,omitempty"`
	IfName    string          `json:"ifname"`
	OperState string          `json:"operstate"`
	AddrInfo  []briefAddrView `json:"addr_info"`
}

// views turns a link dump into what iproute2 shows: the peer of a veth by
// name while it is local, by index once it is in another namespace, and
// M-DOWN while a local peer is down.
func views(links []kernel.Link, nsName func(id int) string) []linkView {
	byIndex := make(map[int]kernel.Link, len(links))
	for _, l := range links {
		byIndex[l.Index] = l
	}
	out := make([]linkView, 0, len(links))
	for _, l := range links {
		v := linkView{
			IfIndex:   l.Index,
			IfName:    l.Name,
			MTU:       l.MTU,
			OperState: l.OperState,
			LinkMode:  "DEFAULT",
			Group:     "default",
			TxQLen:    l.TxQLen,
		}
		if l.Group != 0 {
			v.Group = fmt.Sprint(l.Group)
		}
		mdown := false
		if l.ParentIndex != 0 {
			if l.LinkNetNSID >= 0 {
				v.peer = fmt.Sprintf("if%d", l.ParentIndex)
				v.LinkIndex = l.ParentIndex
				id := l.LinkNetNSID
				v.LinkNetnsID = &id
				if nsName != nil {
					v.netnsName = nsName(id)
				}
			} else if p, ok := byIndex[l.ParentIndex]; ok {
				v.peer = p.Name
				v.Link = p.Name
				mdown = !p.Up()
			} else {
				v.peer = fmt.Sprintf("if%d", l.ParentIndex)
				v.LinkIndex = l.ParentIndex
			}
		}
		if l.MasterIndex != 0 {
			if m, ok := byIndex[l.MasterIndex]; ok {
				v.Master = m.Name
			}
		}
		v.Flags = kernel.FlagNames(l.Flags, mdown)
		v.Address = l.MAC.String()
		switch {
		case l.Flags&unix.IFF_LOOPBACK != 0:
			v.LinkType = "loopback"
			v.Broadcast = "00:00:00:00:00:00"
			if v.Address == "" {
				v.Address = "00:00:00:00:00:00"
			}
		case len(l.MAC) == 6 || l.EncapType == "ether":
			// A bridge whose last port left has the all-zero address,
			// which the netlink library reports as none at all.
			v.LinkType = "ether"
			v.Broadcast = "ff:ff:ff:ff:ff:ff"
			if v.Address == "" {
				v.Address = "00:00:00:00:00:00"
			}
		default:
			v.LinkType = "none"
		}
		out = append(out, v)
	}
	return out
}

func (v linkView) displayName() string {
	if v.peer != "" {
		return v.IfName + "@" + v.peer
	}
	return v.IfName
}

func flagText(flags []string) string { return "<" + strings.Join(flags, ",") + ">" }

// printLinksBrief matches `ip -br link` byte for byte.
func printLinksBrief(w io.Writer, vs []linkView) {
	for _, v := range vs {
		fmt.Fprintf(w, "%-16s %-14s %s %s \n", v.displayName(), v.OperState, v.Address, flagText(v.Flags))
	}
}

// printLinks follows `ip link`.
func printLinks(w io.Writer, vs []linkView, withMode bool) {
	for _, v := range vs {
		printLinkHead(w, v, withMode)
	}
}

func printLinkHead(w io.Writer, v linkView, withMode bool) {
	fmt.Fprintf(w, "%d: %s: %s mtu %d", v.IfIndex, v.displayName(), flagText(v.Flags), v.MTU)
	if v.Qdisc != "" {
		fmt.Fprintf(w, " qdisc %s", v.Qdisc)
	}
	if v.Master != "" {
		fmt.Fprintf(w, " master %s", v.Master)
	}
	fmt.Fprintf(w, " state %s", v.OperState)
	if withMode {
		fmt.Fprintf(w, " mode %s", v.LinkMode)
	}
	fmt.Fprintf(w, " group %s qlen %d\n", v.Group, v.TxQLen)
	fmt.Fprintf(w, "    link/%s %s brd %s", v.LinkType, v.Address, v.Broadcast)
	if v.LinkNetnsID != nil {
		if v.netnsName != "" {
			fmt.Fprintf(w, " link-netns %s", v.netnsName)
		} else {
			fmt.Fprintf(w, " link-netnsid %d", *v.LinkNetnsID)
		}
	}
	fmt.Fprintln(w)
}

func briefLinksJSON(vs []linkView) []briefLinkJSON {
	out := make([]briefLinkJSON, 0, len(vs))
	for _, v := range vs {
		out = append(out, briefLinkJSON{Link: v.Link, LinkIndex: v.LinkIndex, IfName: v.IfName, OperState: v.OperState, Address: v.Address, Flags: v.Flags})
	}
	return out
}

func attachAddrs(vs []linkView, addrs []kernel.Addr, family int) []linkView {
	for i := range vs {
		for _, a := range addrs {
			if a.LinkIndex != vs[i].IfIndex || (family != 0 && a.Family() != family) {
				continue
			}
			vs[i].addrs = append(vs[i].addrs, a)
			fam := "inet"
			if a.Family() == 6 {
				fam = "inet6"
			}
			av := addrView{
				Family:        fam,
				Local:         a.Prefix.Addr().String(),
				PrefixLen:     a.Prefix.Bits(),
				Scope:         kernel.ScopeName(a.Scope),
				Tentative:     a.Flags&unix.IFA_F_TENTATIVE != 0 && a.Flags&unix.IFA_F_DADFAILED == 0,
				ValidLife:     0xffffffff,
				PreferredLife: 0xffffffff,
			}
			if a.Family() == 4 {
				av.Label = a.Label
			}
			vs[i].AddrInfo = append(vs[i].AddrInfo, av)
			vs[i].briefAddrs = append(vs[i].briefAddrs, briefAddrView{Local: av.Local, PrefixLen: av.PrefixLen})
		}
	}
	return vs
}

// printAddrsBrief matches `ip -br addr`.
func printAddrsBrief(w io.Writer, vs []linkView) {
	for _, v := range vs {
		fmt.Fprintf(w, "%-16s %-14s ", v.displayName(), v.OperState)
		for _, a := range v.briefAddrs {
			fmt.Fprintf(w, "%s/%d ", a.Local, a.PrefixLen)
		}
		fmt.Fprintln(w)
	}
}

func printAddrs(w io.Writer, vs []linkView) {
	for _, v := range vs {
		printLinkHead(w, v, false)
		for i, a := range v.AddrInfo {
			fmt.Fprintf(w, "    %s %s/%d scope %s", a.Family, a.Local, a.PrefixLen, a.Scope)
			if a.Tentative {
				fmt.Fprint(w, " tentative")
			}
			if v.addrs[i].Flags&unix.IFA_F_NODAD != 0 {
				fmt.Fprint(w, " nodad")
			}
			if a.Label != "" {
				fmt.Fprintf(w, " %s", a.Label)
			} else {
				fmt.Fprint(w, " ")
			}
			fmt.Fprintln(w)
			fmt.Fprintln(w, "       valid_lft forever preferred_lft forever")
		}
	}
}

func briefAddrsJSON(vs []linkView) []briefAddrJSON {
	out := make([]briefAddrJSON, 0, len(vs))
	for _, v := range vs {
		ai := v.briefAddrs
		if ai == nil {
			ai = []briefAddrView{}
		}
		out = append(out, briefAddrJSON{Link: v.Link, LinkIndex: v.LinkIndex, IfName: v.IfName, OperState: v.OperState, AddrInfo: ai})
	}
	return out
}

func writeJSON(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

package kernel

import (
	"encoding/binary"

	mnl "github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// NeighTable is one of the kernel's neighbour tables (arp_cache for IPv4,
// ndisc_cache for IPv6) as RTM_GETNEIGHTBL reports it (ip ntable show).
//
// There is one table per family for the whole machine, shared by every
// network namespace: its limits are the initial namespace's
// net.ipv{4,6}.neigh.default.gc_thresh1/2/3, which a namespace owned by
// another user namespace (a sandbox) cannot even read under /proc/sys, but
// which this dump reports from any namespace. When an entry is to be made
// while Thresh3 dynamic entries exist (permanent ones do not count), the
// kernel refuses it and counts a table_full.
type NeighTable struct {
	Name                      string // arp_cache, ndisc_cache
	Family                    int    // unix.AF_INET, unix.AF_INET6
	Thresh1, Thresh2, Thresh3 int
	// Entries counts every entry of every namespace, permanent ones
	// included (ndtc_entries).
	Entries int
	// TableFulls counts entries refused because the table was full, since
	// boot (ndts_table_fulls).
	TableFulls uint64
}

// Attributes of RTM_GETNEIGHTBL (linux/neighbour.h); rtnetlink/v2 has no
// message type for neighbour tables, hence the hand decoding.
const (
	ndtaName    = 1
	ndtaThresh1 = 2
	ndtaThresh2 = 3
	ndtaThresh3 = 4
	ndtaConfig  = 5
	ndtaStats   = 7
	// offsets in struct ndt_config and struct ndt_stats
	ndtcEntriesOff    = 4
	ndtsTableFullsOff = 10 * 8
)

// NeighTables reads the kernel's neighbour tables (their limits, their
// entries and how often they were full).
func (h *Handle) NeighTables() ([]NeighTable, error) {
	var out []NeighTable
	data := []byte{unix.AF_UNSPEC, 0, 0, 0} // struct ndtmsg
	err := h.batch(func(b *Batch) error {
		out = out[:0]
		return b.dump("list neighbour tables", request{typ: unix.RTM_GETNEIGHTBL, data: data}, func(m mnl.Message) {
			if t, ok := decodeNeighTable(m); ok {
				out = append(out, t)
			}
		})
	})
	return out, err
}

// decodeNeighTable reads one RTM_NEWNEIGHTBL message; the per-device
// messages of the dump (no thresholds) are skipped.
func decodeNeighTable(m mnl.Message) (NeighTable, bool) {
	if m.Header.Type != unix.RTM_NEWNEIGHTBL || len(m.Data) < 4 {
		return NeighTable{}, false
	}
	t := NeighTable{Family: int(m.Data[0])}
	ad, err := mnl.NewAttributeDecoder(m.Data[4:])
	if err != nil {
		return NeighTable{}, false
	}
	has := false
	for ad.Next() {
		switch ad.Type() {
		case ndtaName:
			t.Name = ad.String()
		case ndtaThresh1:
			t.Thresh1 = int(ad.Uint32())
		case ndtaThresh2:
			t.Thresh2 = int(ad.Uint32())
		case ndtaThresh3:
			t.Thresh3, has = int(ad.Uint32()), true
		case ndtaConfig:
			if b := ad.Bytes(); len(b) >= ndtcEntriesOff+4 {
				t.Entries = int(binary.NativeEndian.Uint32(b[ndtcEntriesOff:]))
			}
		case ndtaStats:
			if b := ad.Bytes(); len(b) >= ndtsTableFullsOff+8 {
				t.TableFulls = binary.NativeEndian.Uint64(b[ndtsTableFullsOff:])
			}
		}
	}
	return t, has && ad.Err() == nil
}

package bench

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// nsnetLab builds the workload as a lab file with `nsnet up` and removes it
// with `nsnet down`, in a child process whose peak RSS is recorded.
// A runner named nsnet=BINARY runs that binary instead of Env.Nsnet.
type nsnetLab struct {
	env  *Env
	bin  string // "": Env.Nsnet
	name string // "": nsnet
}

func (r nsnetLab) Name() string {
	if r.name == "" {
		return "nsnet"
	}
	return r.name
}

func (r nsnetLab) file(w Workload) string {
	return filepath.Join(r.env.StateDir, fmt.Sprintf("bench-%s-%d.yaml", w.Mode, w.N))
}

func (r nsnetLab) Setup(w Workload) error {
	if r.env.Nsnet == "" && r.bin == "" {
		return fmt.Errorf("no nsnet binary")
	}
	if err := os.MkdirAll(r.env.StateDir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(r.file(w), LabYAML(w), 0o644); err != nil {
		return err
	}
	return r.run("up", r.file(w))
}

func (r nsnetLab) Teardown(w Workload) error { return r.run("down", r.file(w)) }

func (r nsnetLab) run(args ...string) error {
	bin := r.bin
	if bin == "" {
		bin = r.env.Nsnet
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "NSNET_STATE_DIR="+r.env.StateDir)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	rssStore(r.env, rusageMaxRSS(cmd))
	if err != nil {
		return fmt.Errorf("nsnet %v: %v: %s", args, err, bytes.TrimSpace(out.Bytes()))
	}
	return nil
}

func (r nsnetLab) lastRSS() int64 { return r.env.lastRSS }

func rssStore(env *Env, v int64) { env.lastRSS = v }

// LabYAML is the workload as an nsnet lab file. In ptp mode every host-side
// end holds the gateway 10.96.0.1/32 (a host address shared by the node's
// point-to-point links) and each node reaches it by an on-link /32 route,
// with its default route through it: exactly what the other runners build.
// Permanent neighbour entries (which labs install on point-to-point links)
// keep ARP out of the kernel's shared neighbour table.
func LabYAML(w Workload) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "lab: bench%s\n", w.Prefix)
	gw := w.Gateway()
	b.WriteString("nodes:\n")
	if w.Mode == PTP {
		b.WriteString("  host:\n    routes:\n")
		for i := 0; i < w.N; i++ {
			fmt.Fprintf(&b, "      - {to: %s/32, dev: %s}\n", w.Addr(i), w.HostIf(i))
		}
	}
	for i := 0; i < w.N; i++ {
		fmt.Fprintf(&b, "  n%d:\n    netns: %s\n", i, w.NS(i))
		if w.Mode == PTP {
			fmt.Fprintf(&b, "    routes:\n      - {to: %s/32, dev: eth0}\n      - {to: default, via: %s}\n", gw, gw)
		}
	}
	if w.Mode == Bridge {
		fmt.Fprintf(&b, "bridges:\n  %s: {node: host, subnets: [%s], addresses: [%s/12]}\n", w.BridgeName(), w.NodePrefix(0).Masked(), gw)
	}
	b.WriteString("links:\n")
	for i := 0; i < w.N; i++ {
		if w.Mode == Bridge {
			fmt.Fprintf(&b, "  - {a: {node: n%d, name: eth0, addresses: [%s]}, b: {bridge: %s, name: %s}}\n", i, w.NodePrefix(i), w.BridgeName(), w.HostIf(i))
			continue
		}
		fmt.Fprintf(&b, "  - {a: {node: n%d, name: eth0, addresses: [%s]}, b: {node: host, name: %s, addresses: [%s/32]}}\n", i, w.NodePrefix(i), w.HostIf(i), gw)
	}
	return b.Bytes()
}

package cni

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"strconv"
	"syscall"

	"github.com/containernetworking/cni/pkg/skel"

	"github.com/nsnet/nsnet/internal/version"
	"github.com/nsnet/nsnet/kernel"
	"github.com/nsnet/nsnet/netns"
)

// reapArg is the first argument of the plugin binary's reaper mode. CNI
// passes everything through the environment, so no runtime ever calls the
// plugin with arguments.
const reapArg = "reap-link"

// Main is the plugin binary's main: the CNI verbs, or, started by DEL with
// backgroundDelete, the reaper that deletes one link.
func Main() {
	if len(os.Args) == 5 && os.Args[1] == reapArg {
		if err := reapMain(os.Args[2:]); err != nil {
			fmt.Fprintf(os.Stderr, "nsnet-cni: %s: %v\n", reapArg, err)
			os.Exit(1)
		}
		return
	}
	if len(os.Args) >= 2 && os.Getenv("CNI_COMMAND") == "" && isVersionArg(os.Args[1]) {
		// The spec fixes VERSION's answer (cniVersion, supportedVersions),
		// so the build's own version is here, as nsnet version prints it.
		in := version.Read("nsnet-cni")
		if len(os.Args) == 3 && (os.Args[2] == "-j" || os.Args[2] == "--json") {
			b, _ := json.Marshal(in)
			fmt.Println(string(b))
			return
		}
		fmt.Println(in)
		return
	}
	skel.PluginMainFuncs(Funcs(), Versions(), About+"\n"+version.Read("nsnet-cni").String())
}

func isVersionArg(a string) bool {
	return a == "--version" || a == "-V" || a == "version"
}

// StartReaper starts this binary again to delete the host link, detached: in
// a session of its own, with no descriptor of the plugin's (a runtime waits
// for the plugin's stdout to close), and not waited for. It inherits the
// plugin's network namespace, which it checks by inode before deleting
// anything.
//
// The goroutine calling it must not be inside another namespace: the child
// is forked from the calling thread. Every namespace switch in nsnet is
// made on a locked thread that is restored or killed, so any other
// goroutine's thread is in the plugin's namespace.
func StartReaper(index int, alias string) error {
	self, err := netns.Current()
	if err != nil {
		return err
	}
	id, err := self.ID()
	self.Close()
	if err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.Command(exe, reapArg, strconv.Itoa(index), alias, strconv.FormatUint(id.Ino, 10))
	// The name it was run by: a program that is the plugin only under
	// that name (the test binary standing in for it) stays the plugin.
	cmd.Args[0] = os.Args[0]
	cmd.Env = []string{}
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	// Not waited for: it is re-parented when the plugin exits.
	return cmd.Process.Release()
}

// reapMain deletes the link at INDEX if it still carries ALIAS and is down,
// from the namespace whose inode is INO.
func reapMain(args []string) error {
	index, err := strconv.Atoi(args[0])
	if err != nil {
		return fmt.Errorf("bad index %q", args[0])
	}
	ino, err := strconv.ParseUint(args[2], 10, 64)
	if err != nil {
		return fmt.Errorf("bad namespace inode %q", args[2])
	}
	ns, h, err := kernel.OpenCurrent()
	if err != nil {
		return err
	}
	defer ns.Close()
	defer h.Close()
	if id, err := ns.ID(); err != nil || id.Ino != ino {
		return fmt.Errorf("not in the plugin's network namespace (inode %d)", ino)
	}
	return reapLink(h, index, args[1])
}

// reapLink deletes the link if it is still the one DEL left: same index,
// same alias, down. Already gone is success.
func reapLink(h *kernel.Handle, index int, alias string) error {
	l, err := h.LinkByIndex(index)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if l.Alias != alias || l.Up() {
		return nil // replaced, or taken over: not ours to delete
	}
	if err := h.DelLinkIndex(index); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

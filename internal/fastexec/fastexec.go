// Package fastexec makes `nsnet netns exec NAME CMD...` as cheap as
// `ip netns exec`: linked into the nsnet binary, it runs a C constructor
// before the Go runtime starts, and when the command line is exactly that
// form, it enters the namespace and execs the command without ever starting
// Go (whose runtime start-up alone costs about as much as the whole of
// `ip netns exec`). runc's nsenter does the same for the same reason.
//
// The constructor only takes the fast path when every step succeeds. When
// anything fails before the exec (a bad name, a missing namespace, no
// privilege, a command not found), it leaves the process as it found it, or
// inside the same namespaces the Go implementation would enter anyway, and
// returns; the Go implementation in package netns then runs, fails the same
// way, and reports it with its full message. Behaviour is therefore defined
// by netns.Exec; this is only a shortcut to it.
//
// Set NSNET_NO_FASTEXEC=1 to always use the Go implementation.
//
// The constructor also records, for every nsnet command, what the Go
// runtime would hide: the signals the caller ignored and the standard
// descriptors it closed (see Inherited), so that the Go paths that exec a
// program for the caller (netns exec, exec, sandbox) give them back as the
// fast path does by not touching them.
package fastexec

/*
#cgo CFLAGS: -O2 -Wall
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <unistd.h>

#ifndef NSFS_MAGIC
#define NSFS_MAGIC 0x6e736673
#endif
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

// valid_name mirrors netns.ValidateName.
static int valid_name(const char *s) {
	size_t n = strlen(s);
	if (n == 0 || n > 255 || strchr(s, '/') != NULL) return 0;
	if (strcmp(s, ".") == 0 || strcmp(s, "..") == 0) return 0;
	return 1;
}

// bind_etc mirrors netns' /etc/netns/NAME handling.
static int bind_etc(const char *name) {
	char dir[512], src[1024], dst[1024];
	const char *root = getenv("NSNET_ETC_NETNS");
	if (root == NULL || root[0] == '\0') root = "/etc/netns";
	snprintf(dir, sizeof dir, "%s/%s", root, name);
	DIR *d = opendir(dir);
	if (d == NULL) return 0;
	struct dirent *e;
	int rc = 0;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
		snprintf(src, sizeof src, "%s/%s", dir, e->d_name);
		snprintf(dst, sizeof dst, "/etc/%s", e->d_name);
		if (mount(src, dst, "none", MS_BIND, NULL) < 0) { rc = -1; break; }
	}
	closedir(d);
	return rc;
}

// What the caller handed nsnet that the Go runtime hides once it starts:
// the ignored signals (bit n-1 for signal n) and the closed standard
// descriptors (bit i for descriptor i). Written once, before Go runs.
static uint64_t nsnet_ignored;
static unsigned nsnet_closed;

static void record_inherited(void) {
	for (int n = 1; n <= 64; n++) {
		struct sigaction sa;
		if (sigaction(n, NULL, &sa) == 0 && sa.sa_handler == SIG_IGN) nsnet_ignored |= (uint64_t)1 << (n - 1);
	}
	for (int fd = 0; fd < 3; fd++) {
		if (fcntl(fd, F_GETFD) < 0 && errno == EBADF) nsnet_closed |= 1u << fd;
	}
}

static uint64_t nsnet_inherited_ignored(void) { return nsnet_ignored; }
static unsigned nsnet_inherited_closed(void) { return nsnet_closed; }

// try_fastexec execs a `netns exec` command line, or returns.
static void try_fastexec(int argc, char **argv) {
	if (argc < 5 || strcmp(argv[1], "netns") != 0 || strcmp(argv[2], "exec") != 0) return;
	const char *no = getenv("NSNET_NO_FASTEXEC");
	if (no != NULL && no[0] != '\0' && strcmp(no, "0") != 0) return;
	const char *name = argv[3];
	char **cmd = &argv[4];
	if (strcmp(cmd[0], "--") == 0) cmd++;
	if (cmd[0] == NULL || cmd[0][0] == '\0' || !valid_name(name)) return;

	char path[300];
	snprintf(path, sizeof path, "/run/netns/%s", name);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) return;
	struct statfs sf;
	if (fstatfs(fd, &sf) < 0 || (sf.f_type != NSFS_MAGIC && sf.f_type != PROC_SUPER_MAGIC)) { close(fd); return; }
	// Nothing has changed yet; a failure here leaves the Go path a clean
	// process to report from.
	if (setns(fd, CLONE_NEWNET) < 0) { close(fd); return; }
	close(fd);
	// From here on the process is in the target network namespace, where
	// the Go path would put it too: on failure, return and let it redo the
	// remaining steps and report.
	if (unshare(CLONE_NEWNS) < 0) return;
	if (mount("", "/", "none", MS_SLAVE | MS_REC, NULL) < 0) return;
	unsigned long flags = 0;
	if (umount2("/sys", MNT_DETACH) < 0) {
		struct statvfs sv;
		if (statvfs("/sys", &sv) == 0 && (sv.f_flag & ST_RDONLY)) flags = MS_RDONLY;
	}
	if (mount(name, "/sys", "sysfs", flags, NULL) < 0) return;
	if (bind_etc(name) < 0) return;
	// Only stdin, stdout and stderr pass to the command.
	if (syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) < 0) return;
	execvp(cmd[0], cmd);
	// Not found or not executable: the Go path reports it.
}

__attribute__((constructor)) static void nsnet_fastexec(int argc, char **argv, char **envp) {
	(void)envp;
	try_fastexec(argc, argv);
	// Go runs: record what its runtime will hide. Nothing the fast path
	// tried changed signal dispositions or descriptors 0-2.
	record_inherited();
}
*/
import "C"

import "github.com/nsnet/nsnet/netns"

// Inherited returns the signals nsnet's caller had ignored and the standard
// descriptors it had closed, as the constructor saw them before the Go
// runtime started (the runtime then installs handlers and opens /dev/null).
func Inherited() netns.Inherited {
	return netns.Inherited{Ignored: uint64(C.nsnet_inherited_ignored()), Closed: uint8(C.nsnet_inherited_closed())}
}

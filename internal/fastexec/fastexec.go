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
// The constructor is also the reaper of a lab's processes (`exec
// --lab-reaper`, see lab.Reaper, which defines it): a process that lives as
// long as the lab process it waits for, and costs about 14 MB as a Go
// program against well under 1 MB without Go.
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
#include <sys/wait.h>
#include <time.h>
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

// proc_start is a process's start time (field 22 of /proc/PID/stat), 0 if
// unknown.
static unsigned long long proc_start(pid_t pid) {
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) return 0;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0) return 0;
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	if (p == NULL) return 0;
	// After the name: state is field 3; starttime is field 22.
	for (int f = 2; f < 22 && p != NULL; f++) p = strchr(p + 1, ' ');
	return p == NULL ? 0 : strtoull(p + 1, NULL, 10);
}

// try_reaper runs `exec --lab-reaper DIR NS -- CMD...`, the parent that
// keeps a lab process's exit status, as lab.Reaper does (which defines it;
// see lab/proc.go), without starting Go: it stays for the process's whole
// life, and a Go runtime would cost it about 14 MB. It returns only when
// nothing has changed yet, for the Go path to do the same and report.
static void try_reaper(int argc, char **argv) {
	if (argc < 7 || strcmp(argv[1], "exec") != 0 || strcmp(argv[2], "--lab-reaper") != 0 || strcmp(argv[5], "--") != 0) return;
	const char *no = getenv("NSNET_NO_FASTEXEC");
	if (no != NULL && no[0] != '\0' && strcmp(no, "0") != 0) return;
	const char *exitf = getenv("NSNET_LAB_EXIT_FILE");
	if (exitf == NULL || exitf[0] == '\0' || strlen(exitf) > 4000) return;
	for (int fd = 3; fd <= 5; fd++) {
		if (fcntl(fd, F_GETFD) < 0) return;
	}
	char dir[4096], name[4096];
	snprintf(dir, sizeof dir, "%s", exitf);
	char *slash = strrchr(dir, '/');
	if (slash == NULL || slash[1] == '\0') return;
	snprintf(name, sizeof name, "%s", slash + 1);
	if (slash == dir) slash[1] = '\0'; else slash[0] = '\0';
	// Held from now on: once down removed the directory, no file can be
	// made in it, so a late reaper leaves nothing behind.
	int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0) return;
	int gp[2];
	if (pipe2(gp, O_CLOEXEC) < 0) { close(dirfd); return; }
	char **gargv = calloc((size_t)argc + 1, sizeof *gargv);
	if (gargv == NULL) { close(dirfd); close(gp[0]); close(gp[1]); return; }
	gargv[0] = argv[0];
	gargv[1] = "exec";
	gargv[2] = "--lab-gate";
	for (int i = 3; i < argc; i++) gargv[i] = argv[i];
	// From here on this process is the reaper, whatever happens.
	unsetenv("NSNET_LAB_EXIT_FILE");
	fcntl(3, F_SETFD, FD_CLOEXEC);
	fcntl(5, F_SETFD, FD_CLOEXEC);
	pid_t pid = fork();
	if (pid < 0) {
		dprintf(2, "nsnet: lab process reaper: fork: %s\n", strerror(errno));
		_exit(1);
	}
	if (pid == 0) {
		// The gate: its go-ahead on 3, its exec failure on 4, a
		// session of its own.
		if (dup2(gp[0], 3) < 0) _exit(127);
		setsid();
		execv("/proc/self/exe", gargv);
		dprintf(2, "nsnet: lab process reaper: exec: %s\n", strerror(errno));
		_exit(127);
	}
	close(gp[0]);
	close(4);
	unsigned long long start = proc_start(pid);
	dprintf(5, "%d\n", (int)pid);
	close(5);
	char buf[16];
	size_t got = 0;
	for (;;) {
		ssize_t n = read(3, buf + got, sizeof buf - 1 - got);
		if (n < 0 && errno == EINTR) continue;
		if (n <= 0) break;
		got += (size_t)n;
		if (got == sizeof buf - 1) break;
	}
	close(3);
	buf[got] = '\0';
	int status = 0;
	if (strcmp(buf, "go\n") != 0) {
		// Never recorded: the gate exits without running anything.
		close(gp[1]);
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
		_exit(0);
	}
	if (write(gp[1], "go\n", 3) != 3) {}
	close(gp[1]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
	if (start == 0) _exit(1);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct tm tm;
	gmtime_r(&ts.tv_sec, &tm);
	char at[64];
	strftime(at, sizeof at, "%Y-%m-%dT%H:%M:%S", &tm);
	char js[256];
	int code = WIFEXITED(status) ? WEXITSTATUS(status) : 0;
	int sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
	int len;
	if (sig != 0) {
		len = snprintf(js, sizeof js, "{\"pid\":%d,\"start\":%llu,\"code\":0,\"signal\":%d,\"at\":\"%s.%09ldZ\"}\n", (int)pid, start, sig, at, ts.tv_nsec);
	} else {
		len = snprintf(js, sizeof js, "{\"pid\":%d,\"start\":%llu,\"code\":%d,\"at\":\"%s.%09ldZ\"}\n", (int)pid, start, code, at, ts.tv_nsec);
	}
	char tmp[4200];
	snprintf(tmp, sizeof tmp, ".%s.%d", name, (int)getpid());
	int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) _exit(0); // the lab is gone
	int ok = write(fd, js, (size_t)len) == len;
	close(fd);
	if (!ok || renameat(dirfd, tmp, dirfd, name) < 0) unlinkat(dirfd, tmp, 0);
	_exit(0);
}

__attribute__((constructor)) static void nsnet_fastexec(int argc, char **argv, char **envp) {
	(void)envp;
	try_fastexec(argc, argv);
	try_reaper(argc, argv);
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

/* Docker's default hardening, applied inside the container before the
 * command runs: masked and read-only paths, the default capability set,
 * no_new_privs, sane rlimits, and the default seccomp filter. */
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <sched.h>
#include <seccomp.h>
#include <stdio.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "runner.h"


/* ---- paths -------------------------------------------------------------- */

/* What the kernel exposes about the host (memory, keys, timers, hardware)
 * that a container must not read. */
static const char *const masked[] = {
	"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
	"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
	"/sys/firmware", "/sys/devices/virtual/powercap",
};

/* What would change the host's kernel if written. */
static const char *const readonly[] = {
	"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
};

static int mask_path(const char *path, char *err, size_t errlen)
{
	struct stat st;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : FAIL("%s: %s", path, errno_name(errno));
	if (S_ISDIR(st.st_mode)) {
		if (mount("tmpfs", path, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
			  "size=0,mode=0555") < 0)
			return FAIL("masking %s: %s", path, errno_name(errno));
	} else if (mount("/dev/null", path, NULL, MS_BIND, NULL) < 0) {
		return FAIL("masking %s: %s", path, errno_name(errno));
	}
	return 0;
}

static int readonly_path(const char *path, char *err, size_t errlen)
{
	if (mount(path, path, NULL, MS_BIND | MS_REC, NULL) < 0)
		return errno == ENOENT ? 0 : FAIL("bind %s: %s", path, errno_name(errno));
	if (mount(NULL, path, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV |
		  MS_NOEXEC, NULL) < 0)
		return FAIL("read-only %s: %s", path, errno_name(errno));
	return 0;
}

int security_mask_paths(char *err, size_t errlen)
{
	for (size_t i = 0; i < sizeof(masked) / sizeof(masked[0]); i++)
		if (mask_path(masked[i], err, errlen) < 0)
			return -1;
	for (size_t i = 0; i < sizeof(readonly) / sizeof(readonly[0]); i++)
		if (readonly_path(readonly[i], err, errlen) < 0)
			return -1;
	return 0;
}

/* ---- capabilities, no_new_privs, rlimits -------------------------------- */

static const cap_value_t default_caps[] = {
	CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_FSETID, CAP_FOWNER, CAP_MKNOD, CAP_NET_RAW,
	CAP_SETGID, CAP_SETUID, CAP_SETFCAP, CAP_SETPCAP, CAP_NET_BIND_SERVICE,
	CAP_SYS_CHROOT, CAP_KILL, CAP_AUDIT_WRITE,
};
#define NDEFAULT (sizeof(default_caps) / sizeof(default_caps[0]))

static bool is_default_cap(int cap)
{
	for (size_t i = 0; i < NDEFAULT; i++)
		if (default_caps[i] == cap)
			return true;
	return false;
}

/* The kernel may know more capabilities than our headers: ask it. */
static int last_cap(void)
{
	int c = CAP_LAST_CAP;

	while (prctl(PR_CAPBSET_READ, c + 1, 0, 0, 0) >= 0)
		c++;
	return c;
}

static int set_caps(const cap_value_t *caps, int n)
{
	cap_t c = cap_init();
	int ret = -1;

	if (!c)
		return -1;
	/* Inheritable stays empty (CVE-2022-24769): a file's inheritable
	 * capabilities must not grant more than the bounding set suggests. */
	if (n == 0 || (cap_set_flag(c, CAP_PERMITTED, n, caps, CAP_SET) == 0 &&
		       cap_set_flag(c, CAP_EFFECTIVE, n, caps, CAP_SET) == 0))
		ret = cap_set_proc(c);
	cap_free(c);
	return ret;
}

static int set_rlimits(char *err, size_t errlen)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return FAIL("getrlimit NOFILE: %s", errno_name(errno));
	/* docker's 1048576, but never above what we were given. */
	rl.rlim_max = rl.rlim_max < 1048576 ? rl.rlim_max : 1048576;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		return FAIL("setrlimit NOFILE %lu: %s", (unsigned long)rl.rlim_max, errno_name(errno));
	/* Core dumps of a container's processes must not land on the host
	 * through a core_pattern pipe: none by default, as docker's daemon. */
	rl.rlim_cur = rl.rlim_max = 0;
	if (setrlimit(RLIMIT_CORE, &rl) < 0)
		return FAIL("setrlimit CORE: %s", errno_name(errno));
	return 0;
}

int security_restrict(char *err, size_t errlen)
{
	int last = last_cap();

	if (set_rlimits(err, errlen) < 0)
		return -1;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return FAIL("no_new_privs: %s", errno_name(errno));
	for (int cap = 0; cap <= last; cap++) {
		if (is_default_cap(cap))
			continue;
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
			return FAIL("dropping capability %d: %s", cap, errno_name(errno));
	}
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
		return FAIL("clearing ambient capabilities: %s", errno_name(errno));
	if (set_caps(default_caps, (int)NDEFAULT) < 0)
		return FAIL("setting capabilities: %s", errno_name(errno));
	return 0;
}

int security_drop_all_caps(void)
{
	for (int cap = 0, last = last_cap(); cap <= last; cap++)
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL && errno != EPERM)
			return -1;
	return set_caps(NULL, 0);
}

/* ---- seccomp ------------------------------------------------------------ */

/* Denied with EPERM, as Docker's default profile does (or as its
 * capability conditions amount to without CAP_SYS_ADMIN, CAP_SYS_BOOT,
 * CAP_SYS_MODULE, CAP_SYS_TIME, CAP_SYSLOG...). ptrace stays allowed, as
 * Docker allows it on kernels >= 4.8. */
static const char *const denied[] = {
	"acct", "add_key", "bpf", "clock_adjtime", "clock_settime", "create_module",
	"delete_module", "finit_module", "get_kernel_syms", "get_mempolicy", "init_module",
	"ioperm", "iopl", "kcmp", "kexec_file_load", "kexec_load", "keyctl", "lookup_dcookie",
	"mbind", "mount", "mount_setattr", "move_mount", "move_pages", "name_to_handle_at",
	"nfsservctl", "open_by_handle_at", "open_tree", "fsopen", "fsconfig", "fsmount", "fspick",
	"perf_event_open", "pivot_root", "process_vm_readv", "process_vm_writev", "query_module",
	"quotactl", "quotactl_fd", "reboot", "request_key", "set_mempolicy", "setns",
	"settimeofday", "stime", "swapoff", "swapon", "syslog", "sysfs", "_sysctl", "umount",
	"umount2", "unshare", "uselib", "userfaultfd", "ustat", "vm86", "vm86old",
	"io_uring_setup", "io_uring_enter", "io_uring_register",
};

/* clone() flags that would create namespaces. */
static const unsigned long clone_ns_flags[] = {
	CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET,
	CLONE_NEWCGROUP,
};

static int add_rules(scmp_filter_ctx ctx, char *err, size_t errlen)
{
	int r, nr;

	for (size_t i = 0; i < sizeof(denied) / sizeof(denied[0]); i++) {
		nr = seccomp_syscall_resolve_name(denied[i]);
		if (nr == __NR_SCMP_ERROR)
			continue; /* not on this architecture */
		r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0);
		if (r < 0 && r != -EEXIST)
			return FAIL("seccomp rule for %s: %s", denied[i], errno_name(-r));
	}
	for (size_t i = 0; i < sizeof(clone_ns_flags) / sizeof(clone_ns_flags[0]); i++) {
		r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
				     SCMP_A0(SCMP_CMP_MASKED_EQ, clone_ns_flags[i], clone_ns_flags[i]));
		if (r < 0)
			return FAIL("seccomp rule for clone: %s", errno_name(-r));
	}
	/* clone3 passes its flags in memory, where no filter can look:
	 * ENOSYS makes libcs fall back to clone(), which is filtered. */
	r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
	if (r < 0 && r != -EEXIST)
		return FAIL("seccomp rule for clone3: %s", errno_name(-r));
	return 0;
}

/* The monitor answers these two with the container's numbers (notify.c). */
static int add_notify_rules(scmp_filter_ctx ctx, char *err, size_t errlen)
{
	static const int calls[] = { SCMP_SYS(sysinfo), SCMP_SYS(sched_getaffinity) };

	for (size_t i = 0; i < sizeof(calls) / sizeof(calls[0]); i++) {
		int r = seccomp_rule_add(ctx, SCMP_ACT_NOTIFY, calls[i], 0);

		if (r < 0)
			return FAIL("seccomp notify rule: %s", errno_name(-r));
	}
	return 0;
}

/* The listener goes to the monitor; we keep no copy (it is CLOEXEC
 * anyway): the kernel fails the calls with ENOSYS once no one holds it. */
static int pass_listener(scmp_filter_ctx ctx, int sock, char *err, size_t errlen)
{
	int fd = seccomp_notify_fd(ctx), r;

	if (fd < 0)
		return FAIL("seccomp listener: %s", errno_name(-fd));
	r = notify_pass(sock, fd);
	if (r < 0)
		r = FAIL("passing the seccomp listener: %s", errno_name(errno));
	close(fd);
	return r;
}

int security_seccomp(int notify_sock, char *err, size_t errlen)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	int r;

	if (!ctx)
		return FAIL("seccomp_init failed");
	/* Filter the 32-bit entry points as well: otherwise `int 0x80`
	 * would reach the denied calls under their i386 numbers. */
	r = seccomp_arch_add(ctx, SCMP_ARCH_X86);
	if (r < 0 && r != -EEXIST && r != -EINVAL)
		goto fail;
	r = seccomp_arch_add(ctx, SCMP_ARCH_X32);
	if (r < 0 && r != -EEXIST && r != -EINVAL)
		goto fail;
	if (add_rules(ctx, err, errlen) < 0 ||
	    (notify_sock >= 0 && add_notify_rules(ctx, err, errlen) < 0)) {
		seccomp_release(ctx);
		return -1;
	}
	r = seccomp_load(ctx);
	if (r < 0)
		goto fail;
	r = notify_sock >= 0 ? pass_listener(ctx, notify_sock, err, errlen) : 0;
	seccomp_release(ctx);
	return r;
fail:
	seccomp_release(ctx);
	return FAIL("loading the seccomp filter: %s", errno_name(-r));
}

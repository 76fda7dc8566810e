/* /proc truth for containers: one strata-procfs daemon per $STRATA_ROOT,
 * started on first use, and its files bound over the container's /proc
 * and /sys/devices/system/cpu/online so free, top and nproc see the
 * container's limits (docs/procfs.md explains what each file shows). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "log.h"
#include "runner.h"
#include "state.h"

#define FUSE_MAGIC 0x65735546

static const char *const proc_files[] = {
	"meminfo", "cpuinfo", "stat", "uptime", "loadavg", "diskstats", "swaps",
};

static void procfs_mnt(char *buf, size_t len)
{
	snprintf(buf, len, "%s/procfs", root_dir());
}

/* Mounted and answering: a dead FUSE mount fails the stat with ENOTCONN. */
static int procfs_state(const char *mnt)
{
	char probe[PATH_MAX + 32];
	struct statfs sfs;
	struct stat st;

	if (statfs(mnt, &sfs) < 0)
		return -errno;
	if ((unsigned long)sfs.f_type != FUSE_MAGIC)
		return 0;
	snprintf(probe, sizeof(probe), "%s/proc/meminfo", mnt);
	if (stat(probe, &st) < 0)
		return -errno;
	return 1;
}

int procfs_ensure(char *err, size_t errlen)
{
	char mnt[PATH_MAX], pidfile[PATH_MAX + 16];
	char bin[PATH_MAX], msg[ERRLEN];
	int fd, st, ret = -1;

	procfs_mnt(mnt, sizeof(mnt));
	if (procfs_state(mnt) == 1)
		return 0;
	/* Two runs starting at once must not both start a daemon. */
	fd = root_lock("procfs.lock", LOCK_EX);
	if (fd < 0)
		return FAIL("locking %s/procfs.lock: %s", root_dir(), errno_name(-fd));
	st = procfs_state(mnt);
	if (st == 1) {
		ret = 0;
		goto out;
	}
	if (st == -ENOTCONN || st == -ECONNABORTED) {
		/* A daemon that died without unmounting: clear its corpse. */
		if (umount2(mnt, MNT_DETACH) < 0)
			log_warn("umount %s: %s", mnt, errno_name(errno));
	}
	if (mkdir(mnt, 0755) < 0 && errno != EEXIST) {
		FAIL("cannot create %s: %s", mnt, errno_name(errno));
		goto out;
	}
	if (find_helper("strata-procfs", "STRATA_PROCFS", bin, sizeof(bin)) < 0) {
		FAIL("strata-procfs not found (next to strata, or in PATH); use --no-procfs to run without it");
		goto out;
	}
	snprintf(pidfile, sizeof(pidfile), "%s/procfs.pid", root_dir());
	{
		char *argv[] = { bin, "--loadavg", "--pidfile", pidfile, mnt, NULL };

		st = run_helper(argv, msg, sizeof(msg));
	}
	if (st != 0) {
		FAIL("starting strata-procfs on %s failed%s%s", mnt, msg[0] ? ": " : "", msg);
		goto out;
	}
	if (procfs_state(mnt) != 1) {
		FAIL("strata-procfs started but %s does not answer", mnt);
		goto out;
	}
	ret = 0;
out:
	close(fd);
	return ret;
}

static int bind_file(int rootfd, const char *src, const char *dst, char *err, size_t errlen)
{
	int fd = open_in_root(rootfd, dst, OPEN_EXISTING, 0), e;

	if (fd == -ENOENT)
		return 0; /* the kernel has no such file: nothing to stand in for */
	if (fd < 0)
		return FAIL("%s: %s", dst, errno_name(-fd));
	e = mount_on_fd(src, fd, NULL, MS_BIND, NULL);
	close(fd);
	if (e < 0)
		return FAIL("bind %s on %s: %s", src, dst, errno_name(-e));
	return 0;
}

int procfs_bind(int rootfd, char *err, size_t errlen)
{
	char mnt[PATH_MAX], src[PATH_MAX + 32], dst[64];

	procfs_mnt(mnt, sizeof(mnt));
	for (size_t i = 0; i < sizeof(proc_files) / sizeof(proc_files[0]); i++) {
		snprintf(src, sizeof(src), "%s/proc/%s", mnt, proc_files[i]);
		snprintf(dst, sizeof(dst), "/proc/%s", proc_files[i]);
		if (bind_file(rootfd, src, dst, err, errlen) < 0)
			return -1;
	}
	return 0;
}

int procfs_bind_sys(int rootfd, char *err, size_t errlen)
{
	char mnt[PATH_MAX], src[PATH_MAX + 48];

	procfs_mnt(mnt, sizeof(mnt));
	snprintf(src, sizeof(src), "%s/sys/devices/system/cpu/online", mnt);
	return bind_file(rootfd, src, "/sys/devices/system/cpu/online", err, errlen);
}

/* The container's root: a strata-unionfs mount of the image's layers and
 * the container's upper/work dirs, then /proc, /dev, /sys, the /etc files
 * and volumes, then pivot_root.
 *
 * The union is mounted by the child, in the container's own mount
 * namespace, on a /dev/fuse fd the parent opened; the parent then runs
 * strata-unionfs on that fd ("/dev/fd/N" as the mountpoint). So the daemon
 * lives in the host's mount and pid namespaces (never inside the container,
 * never in its cgroups), while the mount exists only in the container's
 * namespace: when that namespace dies the kernel tears the mount down, the
 * FUSE connection ends, and the daemon exits. The host's mount table never
 * changes. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <sched.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "image.h"
#include "log.h"
#include "parse.h"
#include "state.h"


int open_in_root(int rootfd, const char *path, int create, mode_t mode)
{
	struct open_how how = { .flags = O_PATH | O_CLOEXEC,
				.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS };
	char buf[PATH_MAX], *p, *slash;
	int fd, parent;

	if (strlen(path) >= sizeof(buf))
		return -ENAMETOOLONG;
	fd = (int)syscall(SYS_openat2, rootfd, path, &how, sizeof(how));
	if (fd >= 0 || errno != ENOENT || create == OPEN_EXISTING)
		return fd >= 0 ? fd : -errno;
	/* Create the missing tail one component at a time, each below a
	 * parent that was itself resolved inside the root. */
	snprintf(buf, sizeof(buf), "%s", path);
	for (size_t n = strlen(buf); n > 1 && buf[n - 1] == '/'; n--)
		buf[n - 1] = '\0';
	slash = strrchr(buf, '/');
	if (!slash || !slash[1])
		return -EINVAL;
	*slash = '\0';
	p = slash + 1;
	parent = open_in_root(rootfd, buf[0] ? buf : "/", OPEN_DIR, 0755);
	if (parent < 0)
		return parent;
	if (create == OPEN_DIR) {
		if (mkdirat(parent, p, mode) < 0 && errno != EEXIST) {
			int e = errno;

			close(parent);
			return -e;
		}
	} else {
		int f = openat(parent, p, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, mode);

		if (f < 0) {
			int e = errno;

			close(parent);
			return -e;
		}
		close(f);
	}
	close(parent);
	fd = (int)syscall(SYS_openat2, rootfd, path, &how, sizeof(how));
	return fd >= 0 ? fd : -errno;
}

int mount_on_fd(const char *src, int fd, const char *type, unsigned long flags, const char *data)
{
	char target[64];

	snprintf(target, sizeof(target), "/proc/self/fd/%d", fd);
	return mount(src, target, type, flags, data) < 0 ? -errno : 0;
}

/* Makes the mount at fd read-only together with every mount below it: a
 * remount reaches the top one only, and an MS_REC bind brings the
 * source's submounts along writable. */
static int mount_set_ro(int fd)
{
	struct mount_attr attr = { .attr_set = MOUNT_ATTR_RDONLY };

	if (syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr,
		    sizeof(attr)) == 0)
		return 0;
	if (errno != ENOSYS)
		return -errno;
	/* Before 5.12: the top mount at least. */
	return mount_on_fd(NULL, fd, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL);
}

/* Mounts at path inside the root (created as a directory if missing). */
static int mount_at(int rootfd, const char *path, const char *src, const char *type,
		    unsigned long flags, const char *data, char *err, size_t errlen)
{
	int fd = open_in_root(rootfd, path, OPEN_DIR, 0755), e;

	if (fd < 0)
		return FAIL("cannot create mountpoint %s: %s", path, errno_name(-fd));
	e = mount_on_fd(src, fd, type, flags, data);
	close(fd);
	if (e < 0)
		return FAIL("mount %s on %s: %s", type ? type : src, path, errno_name(-e));
	return 0;
}

/* ---- the union ---------------------------------------------------------- */

int union_open_fuse(char *err, size_t errlen)
{
	int fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return FAIL("cannot open /dev/fuse: %s (is the fuse module loaded?)", errno_name(errno));
	return fd;
}

int rootfs_mount_union(const struct container *c, int fusefd, char *err, size_t errlen)
{
	char rootfs[PATH_MAX], data[256], src[64];

	if (container_path(c, "rootfs", rootfs, sizeof(rootfs)) < 0)
		return FAIL("container path too long");
	/* Nothing we mount from here on may propagate to the host. */
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return FAIL("making / rprivate: %s", errno_name(errno));
	snprintf(data, sizeof(data),
		 "fd=%d,rootmode=40000,user_id=0,group_id=0,allow_other,default_permissions", fusefd);
	snprintf(src, sizeof(src), "strata-%.12s", c->id);
	if (mount(src, rootfs, "fuse.strata-unionfs", 0, data) < 0)
		return FAIL("mounting the union on %s: %s", rootfs, errno_name(errno));
	return 0;
}

/* lowerdir=A:B,upperdir=U,workdir=W,xino=off with ':' in a layer path
 * escaped.  A container's union is mounted once in its life, so inode
 * numbers kept in memory are stable for as long as anyone can see them:
 * a persistent xino table would only cost files and syncs at start. */
static char *union_options(const struct container *c)
{
	size_t len = 80 + 2 * (sizeof(c->dir) + 16);
	char *s, *p;

	for (size_t i = 0; i < c->nlayers; i++)
		len += 2 * strlen(c->layers[i]) + 1;
	s = p = malloc(len);
	if (!s)
		return NULL;
	p += sprintf(p, "lowerdir=");
	for (size_t i = 0; i < c->nlayers; i++) {
		if (i)
			*p++ = ':';
		for (const char *q = c->layers[i]; *q; q++) {
			if (*q == ':' || *q == '\\')
				*p++ = '\\';
			*p++ = *q;
		}
	}
	sprintf(p, ",upperdir=%s/upper,workdir=%s/work,xino=off", c->dir, c->dir);
	return s;
}

int union_spawn_daemon(const struct container *c, int fusefd, int go_fd, struct helper *h,
		       char *err, size_t errlen)
{
	/* The daemon gets fusefd as its descriptor 3, go_fd as 4. */
	char bin[PATH_MAX], mnt[] = "/dev/fd/3", wait[] = "--wait-fd=4";
	char *opts = union_options(c);
	int fds[2] = { fusefd, go_fd }, r;

	if (!opts)
		return FAIL("out of memory");
	if (find_helper("strata-unionfs", "STRATA_UNIONFS", bin, sizeof(bin)) < 0) {
		free(opts);
		return FAIL("strata-unionfs not found (next to strata, or in PATH)");
	}
	/* libfuse takes an inherited connection only as "/dev/fd/N", and
	 * strata-unionfs resolves that path: a bare devtmpfs (an initramfs,
	 * the test VM) lacks the symlink every udev makes, so make it. */
	if (access("/dev/fd", F_OK) < 0 && symlink("/proc/self/fd", "/dev/fd") < 0 &&
	    errno != EEXIST) {
		free(opts);
		return FAIL("/dev/fd is missing and cannot be created: %s", errno_name(errno));
	}
	{
		char *argv[] = { bin, wait, "-o", opts, mnt, NULL };

		r = helper_spawn(argv, fds, 2, false, h) < 0 ? errno : 0;
	}
	free(opts);
	return r ? FAIL("starting strata-unionfs: %s", errno_name(r)) : 0;
}

int union_daemon_started(struct helper *h, char *err, size_t errlen)
{
	char msg[ERRLEN];
	int st = helper_detached(h, msg, sizeof(msg));

	if (st != 0)
		return FAIL("strata-unionfs failed%s%s", msg[0] ? ": " : "", msg);
	return 0;
}

pid_t union_daemon_pid(const char *upper)
{
	char needle[PATH_MAX + 16], path[300], *cmd;
	DIR *d = opendir("/proc");
	struct dirent *e;
	pid_t found = 0;
	size_t nl;

	if (!d)
		return 0;
	nl = (size_t)snprintf(needle, sizeof(needle), "upperdir=%s", upper);
	while (!found && (e = readdir(d))) {
		char *p, *end;
		size_t len = 0;
		int fd;

		if (!isdigit((unsigned char)e->d_name[0]))
			continue;
		snprintf(path, sizeof(path), "/proc/%s/cmdline", e->d_name);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		cmd = malloc(65536);
		if (cmd) {
			ssize_t n = read(fd, cmd, 65535);

			len = n > 0 ? (size_t)n : 0;
			cmd[len] = '\0';
		}
		close(fd);
		/* The -o list holds "...,upperdir=U,..." (cmdline args are NUL
		 * separated; the list is one of them). */
		for (p = cmd; p && p < cmd + len; p += strlen(p) + 1) {
			end = strstr(p, needle);
			if (end && (end[nl] == ',' || end[nl] == '\0') && strstr(cmd, "strata-unionfs")) {
				found = (pid_t)atoi(e->d_name);
				break;
			}
		}
		free(cmd);
	}
	closedir(d);
	return found;
}

int union_wait_released(const char *upper, int timeout_ms)
{
	int fd = open(upper, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	/* The daemon usually exits within a millisecond or two of its mount
	 * namespace: poll often at first, then back off. */
	long delay_us = 250, waited_us = 0;

	if (fd < 0)
		return 0;
	for (;;) {
		if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
			close(fd);
			return 0;
		}
		if (errno != EWOULDBLOCK || waited_us >= (long)timeout_ms * 1000)
			break;
		usleep((useconds_t)delay_us);
		waited_us += delay_us;
		if (delay_us < 20000)
			delay_us *= 2;
	}
	close(fd);
	return -1;
}

int union_mount_ro(char **dirs, size_t n, const char *mnt, char *err, size_t errlen)
{
	struct container tmp = { .layers = dirs, .nlayers = n };
	char bin[PATH_MAX], msg[ERRLEN], *opts, *cut;
	int st;

	opts = union_options(&tmp);
	if (!opts)
		return FAIL("out of memory");
	cut = strstr(opts, ",upperdir=");
	if (cut)
		strcpy(cut, ",xino=off");
	if (find_helper("strata-unionfs", "STRATA_UNIONFS", bin, sizeof(bin)) < 0) {
		free(opts);
		return FAIL("strata-unionfs not found (next to strata, or in PATH)");
	}
	{
		char *argv[] = { bin, "-o", opts, (char *)mnt, NULL };

		st = run_helper(argv, msg, sizeof(msg));
	}
	free(opts);
	if (st != 0)
		return FAIL("strata-unionfs failed%s%s", msg[0] ? ": " : "", msg);
	return 0;
}

/* ---- /dev --------------------------------------------------------------- */

static const struct {
	const char *name;
	unsigned int major, minor;
} devices[] = {
	{ "null", 1, 3 }, { "zero", 1, 5 }, { "full", 1, 7 },
	{ "random", 1, 8 }, { "urandom", 1, 9 }, { "tty", 5, 0 },
};

/* mknod where we may; a bind of the host's node where we may not (a user
 * namespace or a nodev-restricted host). */
static int make_device(int devfd, const char *name, unsigned int ma, unsigned int mi,
		       char *err, size_t errlen)
{
	char host[64];
	int fd, e;

	if (mknodat(devfd, name, S_IFCHR | 0666, makedev(ma, mi)) == 0)
		return fchmodat(devfd, name, 0666, 0) < 0 ? FAIL("chmod /dev/%s: %s", name,
								  errno_name(errno)) : 0;
	if (errno != EPERM)
		return FAIL("mknod /dev/%s: %s", name, errno_name(errno));
	fd = openat(devfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
	if (fd < 0)
		return FAIL("creating /dev/%s: %s", name, errno_name(errno));
	close(fd);
	fd = openat(devfd, name, O_PATH | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return FAIL("opening /dev/%s: %s", name, errno_name(errno));
	snprintf(host, sizeof(host), "/dev/%s", name);
	e = mount_on_fd(host, fd, NULL, MS_BIND, NULL);
	close(fd);
	return e < 0 ? FAIL("bind %s: %s", host, errno_name(-e)) : 0;
}

static int setup_dev(int rootfd, char *err, size_t errlen)
{
	static const char *const links[][2] = {
		{ "/proc/self/fd", "fd" },         { "/proc/self/fd/0", "stdin" },
		{ "/proc/self/fd/1", "stdout" },   { "/proc/self/fd/2", "stderr" },
		{ "pts/ptmx", "ptmx" },            { "/proc/kcore", "core" },
	};
	int devfd, fd;

	if (mount_at(rootfd, "/dev", "tmpfs", "tmpfs", MS_NOSUID | MS_STRICTATIME,
		     "mode=755,size=65536k", err, errlen) < 0)
		return -1;
	fd = open_in_root(rootfd, "/dev", OPEN_EXISTING, 0);
	if (fd < 0)
		return FAIL("/dev: %s", errno_name(-fd));
	/* Reopen as a real directory fd: O_PATH cannot be used with mknodat. */
	devfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	close(fd);
	if (devfd < 0)
		return FAIL("/dev: %s", errno_name(errno));
	for (size_t i = 0; i < sizeof(devices) / sizeof(devices[0]); i++) {
		if (make_device(devfd, devices[i].name, devices[i].major, devices[i].minor, err,
				errlen) < 0)
			goto fail;
	}
	for (size_t i = 0; i < sizeof(links) / sizeof(links[0]); i++) {
		if (symlinkat(links[i][0], devfd, links[i][1]) < 0) {
			FAIL("symlink /dev/%s: %s", links[i][1], errno_name(errno));
			goto fail;
		}
	}
	close(devfd);
	if (mount_at(rootfd, "/dev/pts", "devpts", "devpts", MS_NOSUID | MS_NOEXEC,
		     "newinstance,ptmxmode=0666,mode=0620,gid=5", err, errlen) < 0 ||
	    mount_at(rootfd, "/dev/shm", "shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
		     "mode=1777,size=65536k", err, errlen) < 0 ||
	    mount_at(rootfd, "/dev/mqueue", "mqueue", "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC,
		     NULL, err, errlen) < 0)
		return -1;
	return 0;
fail:
	close(devfd);
	return -1;
}

/* ---- /etc files and volumes --------------------------------------------- */

static int write_file(const char *dir, const char *name, const char *text)
{
	char p[PATH_MAX + 32];
	int fd, e = 0;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	if (write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		e = -EIO;
	if (close(fd) < 0 && !e)
		e = -errno;
	return e;
}

int rootfs_etc_files(const struct container *c, char *err, size_t errlen)
{
	char hosts[1024], *text;
	int e;

	snprintf(hosts, sizeof(hosts) - 16, "%s\n", c->hostname);
	e = write_file(c->dir, "hostname", hosts);
	if (!e && c->net_host) {
		text = read_text("/etc/hosts", 1 << 20);
		e = write_file(c->dir, "hosts", text ? text : "127.0.0.1\tlocalhost\n");
		free(text);
	} else if (!e) {
		snprintf(hosts, sizeof(hosts),
			 "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
			 "fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\n"
			 "ff02::2\tip6-allrouters\n127.0.1.1\t%s\n", c->hostname);
		e = write_file(c->dir, "hosts", hosts);
	}
	if (!e) {
		text = read_text("/etc/resolv.conf", 1 << 20);
		e = write_file(c->dir, "resolv.conf", text ? text : "");
		free(text);
	}
	return e < 0 ? FAIL("writing %s/{hostname,hosts,resolv.conf}: %s", c->dir, errno_name(-e)) : 0;
}

static int bind_into(int rootfd, const char *src, const char *target, bool ro, char *err,
		     size_t errlen)
{
	struct stat st;
	int fd, e;

	if (stat(src, &st) < 0)
		return FAIL("volume source %s: %s", src, errno_name(errno));
	fd = open_in_root(rootfd, target, S_ISDIR(st.st_mode) ? OPEN_DIR : OPEN_FILE, 0755);
	if (fd < 0)
		return FAIL("cannot create mountpoint %s: %s", target, errno_name(-fd));
	e = mount_on_fd(src, fd, NULL, MS_BIND | MS_REC, NULL);
	close(fd);
	/* The read-only flag is per mount: set it on the new bind itself,
	 * reached by resolving the path again (the old fd still names the
	 * directory underneath). The container has neither CAP_SYS_ADMIN nor
	 * mount(2) (seccomp), so it cannot remount it writable. */
	if (!e && ro) {
		fd = open_in_root(rootfd, target, OPEN_EXISTING, 0);
		e = fd < 0 ? fd : mount_set_ro(fd);
		if (fd >= 0)
			close(fd);
	}
	if (e < 0)
		return FAIL("bind %s on %s%s: %s", src, target, ro ? " (ro)" : "", errno_name(-e));
	return 0;
}

static int setup_etc(const struct container *c, int rootfd, char *err, size_t errlen)
{
	static const char *const files[] = { "hostname", "hosts", "resolv.conf" };

	for (size_t i = 0; i < 3; i++) {
		char src[PATH_MAX], dst[64];

		if (container_path(c, files[i], src, sizeof(src)) < 0)
			return FAIL("container path too long");
		snprintf(dst, sizeof(dst), "/etc/%s", files[i]);
		if (bind_into(rootfd, src, dst, false, err, errlen) < 0)
			return -1;
	}
	return 0;
}

int rootfs_setup(const struct container *c, char *err, size_t errlen)
{
	char rootfs[PATH_MAX];
	int rootfd, ret = -1;

	if (container_path(c, "rootfs", rootfs, sizeof(rootfs)) < 0)
		return FAIL("container path too long");
	rootfd = open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		return FAIL("opening the container root: %s", errno_name(errno));
	if (mount_at(rootfd, "/proc", "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL,
		     err, errlen) < 0)
		goto out;
	if (!c->no_procfs && procfs_bind(rootfd, err, errlen) < 0)
		goto out;
	if (setup_dev(rootfd, err, errlen) < 0)
		goto out;
	if (mount_at(rootfd, "/sys", "sysfs", "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
		     NULL, err, errlen) < 0)
		goto out;
	if (!c->no_procfs && procfs_bind_sys(rootfd, err, errlen) < 0)
		goto out;
	if (setup_etc(c, rootfd, err, errlen) < 0)
		goto out;
	/* docker makes a missing working directory; here, before a
	 * --read-only root would refuse it. */
	if (c->workdir && strcmp(c->workdir, "/")) {
		int fd = open_in_root(rootfd, c->workdir, OPEN_DIR, 0755);

		if (fd < 0) {
			FAIL("working directory %s: %s", c->workdir, errno_name(-fd));
			goto out;
		}
		close(fd);
	}
	for (size_t i = 0; i < c->nvols; i++) {
		if (bind_into(rootfd, c->vols[i].source, c->vols[i].target, c->vols[i].ro, err,
			      errlen) < 0)
			goto out;
	}
	ret = 0;
out:
	close(rootfd);
	return ret;
}

int rootfs_pivot(const struct container *c, char *err, size_t errlen)
{
	char rootfs[PATH_MAX];

	if (container_path(c, "rootfs", rootfs, sizeof(rootfs)) < 0)
		return FAIL("container path too long");
	if (chdir(rootfs) < 0)
		return FAIL("chdir to the container root: %s", errno_name(errno));
	/* pivot_root(".", ".") stacks the old root on the new one, so no
	 * put_old directory has to be made in the image. */
	if (syscall(SYS_pivot_root, ".", ".") == 0) {
		if (umount2(".", MNT_DETACH) < 0)
			return FAIL("detaching the old root: %s", errno_name(errno));
	} else if (errno == EINVAL) {
		/* The host runs from an initramfs, whose root cannot be
		 * pivoted away: move the new root over it and chroot. */
		if (mount(".", "/", NULL, MS_MOVE, NULL) < 0)
			return FAIL("moving the root (pivot_root: EINVAL): %s", errno_name(errno));
		if (chroot(".") < 0)
			return FAIL("chroot: %s", errno_name(errno));
	} else {
		return FAIL("pivot_root: %s", errno_name(errno));
	}
	if (chdir("/") < 0)
		return FAIL("chdir /: %s", errno_name(errno));
	if (c->read_only && mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL) < 0)
		return FAIL("remounting / read-only: %s", errno_name(errno));
	return 0;
}

int rootfs_bind_console(const char *slave, char *err, size_t errlen)
{
	int fd = open("/dev/console", O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0620);

	if (fd < 0)
		return FAIL("creating /dev/console: %s", errno_name(errno));
	close(fd);
	if (mount(slave, "/dev/console", NULL, MS_BIND, NULL) < 0)
		return FAIL("bind %s on /dev/console: %s", slave, errno_name(errno));
	return 0;
}

int net_loopback_up(char *err, size_t errlen)
{
	struct ifreq ifr = { 0 };
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (s < 0)
		return FAIL("socket: %s", errno_name(errno));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0) {
		close(s);
		return FAIL("lo: %s", errno_name(errno));
	}
	ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
	if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0) {
		close(s);
		return FAIL("bringing lo up: %s", errno_name(errno));
	}
	close(s);
	return 0;
}

/* fusefloor: the fastest a FUSE file server can answer open+read+close on
 * this machine, as a reference for the /proc virtualizers (bench/procfs.sh).
 *
 *   fusefloor SRCDIR MOUNTPOINT
 *
 * Serves MOUNTPOINT/proc/NAME for every regular file NAME in SRCDIR, read
 * once at start, the way strata-procfs serves a file: a direct_io open
 * without FLUSH, each read answered by offset from memory, one request loop
 * that polls 50 us for the next request before sleeping.  It does nothing
 * else (no cgroups, no per-reader text), so its rate is the protocol's own
 * cost: OPEN, READ and RELEASE round trips through /dev/fuse.  Runs in the
 * foreground until unmounted.  Exit status 0, 1 on a setup error. */
#define FUSE_USE_VERSION 312
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define MAX_FILES 32
#define PROC_INO 2
#define FILE0_INO 3
#define SPIN_NS 50000
#define TIMEOUT 86400.0

static struct {
	char name[NAME_MAX + 1];
	char *data;
	size_t len;
} files[MAX_FILES];
static unsigned int nfiles;

static int load(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	if (!d)
		return -1;
	while ((e = readdir(d)) && nfiles < MAX_FILES) {
		char path[PATH_MAX], *buf;
		int fd;
		ssize_t n;

		if (e->d_type != DT_REG)
			continue;
		snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
		buf = malloc(1 << 20);
		fd = open(path, O_RDONLY);
		n = fd < 0 || !buf ? -1 : read(fd, buf, 1 << 20);
		if (fd >= 0)
			close(fd);
		if (n < 0) {
			free(buf);
			closedir(d);
			return -1;
		}
		snprintf(files[nfiles].name, sizeof files[nfiles].name, "%s", e->d_name);
		files[nfiles].data = buf;
		files[nfiles].len = (size_t)n;
		nfiles++;
	}
	closedir(d);
	return 0;
}

static void fill_stat(fuse_ino_t ino, struct stat *st)
{
	memset(st, 0, sizeof *st);
	st->st_ino = ino;
	st->st_nlink = 1;
	st->st_mode = ino < FILE0_INO ? S_IFDIR | 0555 : S_IFREG | 0444;
}

static void ff_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e = { .attr_timeout = TIMEOUT, .entry_timeout = TIMEOUT };

	if (parent == FUSE_ROOT_ID && !strcmp(name, "proc"))
		e.ino = PROC_INO;
	for (unsigned int i = 0; parent == PROC_INO && i < nfiles; i++)
		if (!strcmp(files[i].name, name))
			e.ino = FILE0_INO + i;
	if (!e.ino) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	fill_stat(e.ino, &e.attr);
	fuse_reply_entry(req, &e);
}

static void ff_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct stat st;

	(void)fi;
	fill_stat(ino, &st);
	fuse_reply_attr(req, &st, TIMEOUT);
}

static void ff_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (ino < FILE0_INO || ino >= FILE0_INO + nfiles) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	fi->direct_io = 1;
	fi->noflush = 1;
	fuse_reply_open(req, fi);
}

static void ff_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	size_t len = files[ino - FILE0_INO].len;
	size_t n = (size_t)off >= len ? 0 : len - (size_t)off;

	(void)fi;
	fuse_reply_buf(req, files[ino - FILE0_INO].data + off, n < size ? n : size);
}

static void ff_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	fuse_reply_err(req, 0);
}

static const struct fuse_lowlevel_ops ops = {
	.lookup = ff_lookup,
	.getattr = ff_getattr,
	.open = ff_open,
	.read = ff_read,
	.release = ff_release,
};

static unsigned long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (unsigned long long)ts.tv_sec * 1000000000ULL + (unsigned long long)ts.tv_nsec;
}

/* strata-procfs's loop: poll briefly for the next request before sleeping. */
static ssize_t spin_read(int fd, void *buf, size_t len, void *userdata)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	unsigned long long until = now_ns() + SPIN_NS;

	(void)userdata;
	while (poll(&p, 1, 0) == 0 && now_ns() < until)
		sched_yield();
	return read(fd, buf, len);
}

static ssize_t plain_writev(int fd, struct iovec *iov, int count, void *userdata)
{
	(void)userdata;
	return writev(fd, iov, count);
}

static const struct fuse_custom_io io = { .read = spin_read, .writev = plain_writev };

int main(int argc, char **argv)
{
	char *fargv[] = { "fusefloor", "-o", "ro,allow_other,default_permissions,fsname=fusefloor",
			  NULL };
	struct fuse_args args = FUSE_ARGS_INIT(3, fargv);
	struct fuse_session *se;
	int ret;

	if (argc != 3) {
		fprintf(stderr, "usage: fusefloor SRCDIR MOUNTPOINT\n");
		return 1;
	}
	if (load(argv[1]) < 0 || !nfiles) {
		fprintf(stderr, "fusefloor: cannot read files from %s\n", argv[1]);
		return 1;
	}
	se = fuse_session_new(&args, &ops, sizeof ops, NULL);
	if (!se || fuse_session_mount(se, argv[2]) < 0) {
		fprintf(stderr, "fusefloor: cannot mount on %s\n", argv[2]);
		return 1;
	}
	if (fuse_session_custom_io(se, &io, fuse_session_fd(se)) < 0) {
		fuse_session_unmount(se);
		return 1;
	}
	ret = fuse_session_loop(se);
	fuse_session_unmount(se);
	fuse_session_destroy(se);
	return ret == 0 || ret == -ENODEV || ret == -ECONNABORTED ? 0 : 1;
}

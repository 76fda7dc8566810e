/* Turning a parsed configuration into open, validated, locked branches. */
#include "branch.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "log.h"
#include "ufs.h"
#include "whiteout.h"
#include "xino.h"

#define META_DIR_AUFS WH_META_PREFIX "strata"  /* in the rw branch */
#define META_DIR_OVERLAY "strata"              /* in the overlay workdir */

static int fail(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

void work_tmpname(char *buf, size_t len)
{
	static unsigned long counter;
	static pid_t pid; /* taken once serving started: no fork after that */
	unsigned long n = __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED);
	pid_t p = __atomic_load_n(&pid, __ATOMIC_RELAXED);

	if (!p) {
		p = getpid();
		__atomic_store_n(&pid, p, __ATOMIC_RELAXED);
	}
	snprintf(buf, len, "#%d.%lu", (int)p, n);
}

/* "/a/b" is inside "/a" (or equal to it). */
static bool path_within(const char *inner, const char *outer)
{
	size_t len = strlen(outer);

	if (strcmp(outer, "/") == 0)
		return true;
	return strncmp(inner, outer, len) == 0 && (inner[len] == '/' || inner[len] == '\0');
}

static int open_branch(unsigned int i, const struct branch_spec *spec, char *err, size_t errlen)
{
	struct branch *br = &ufs.br[i];
	char real[PATH_MAX];
	struct stat st;

	if (!realpath(spec->path, real))
		return fail(err, errlen, "branch '%s': %s", spec->path, errno_name(errno));
	if (access(real, R_OK | X_OK) < 0)
		return fail(err, errlen, "branch '%s' is not readable: %s", spec->path,
			    errno_name(errno));
	br->fd = open(real, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (br->fd < 0)
		return fail(err, errlen, "branch '%s': %s", spec->path, errno_name(errno));
	if (fstat(br->fd, &st) < 0)
		return fail(err, errlen, "branch '%s': %s", spec->path, errno_name(errno));
	br->path = strdup(real);
	if (!br->path)
		return fail(err, errlen, "out of memory");
	br->perm = spec->perm;
	br->honour_wh = spec->perm != BR_RO;
	br->dev = st.st_dev;
	if (spec->perm == BR_RW && access(real, W_OK) < 0)
		return fail(err, errlen, "branch '%s' is not writable: %s", spec->path,
			    errno_name(errno));
	return 0;
}

static int check_branch_set(const char *mnt, char *err, size_t errlen)
{
	for (unsigned int i = 0; i < ufs.nbr; i++) {
		struct stat a, b;

		if (path_within(mnt, ufs.br[i].path))
			return fail(err, errlen, "mountpoint '%s' is inside branch '%s'", mnt,
				    ufs.br[i].path);
		if (path_within(ufs.br[i].path, mnt))
			return fail(err, errlen, "branch '%s' is inside the mountpoint '%s'",
				    ufs.br[i].path, mnt);
		if (fstat(ufs.br[i].fd, &a) < 0)
			return fail(err, errlen, "branch '%s': %s", ufs.br[i].path, errno_name(errno));
		for (unsigned int j = 0; j < i; j++) {
			if (fstat(ufs.br[j].fd, &b) < 0)
				return fail(err, errlen, "branch '%s': %s", ufs.br[j].path,
					    errno_name(errno));
			if (a.st_dev == b.st_dev && a.st_ino == b.st_ino)
				return fail(err, errlen, "branch '%s' is given twice", ufs.br[i].path);
			if (path_within(ufs.br[i].path, ufs.br[j].path) ||
			    path_within(ufs.br[j].path, ufs.br[i].path))
				return fail(err, errlen, "branches '%s' and '%s' overlap",
					    ufs.br[j].path, ufs.br[i].path);
		}
	}
	return 0;
}

/* umount(8) returns before the old daemon has noticed and let go of its
 * lock, so "umount; mount" would fail without a short grace period. */
static int lock_with_grace(int fd)
{
	for (int tries = 0; tries < 200; tries++) {
		if (flock(fd, LOCK_EX | LOCK_NB) == 0)
			return 0;
		if (errno != EWOULDBLOCK)
			return -1;
		usleep(10000);
	}
	errno = EWOULDBLOCK;
	return -1;
}

/* One live mount per writable branch: a second mount sharing the upper or
 * work dir would corrupt both views. The lock lives as long as the fd. */
static int lock_dir(const char *path, int *fd_out, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return fail(err, errlen, "'%s': %s", path, errno_name(errno));
	if (lock_with_grace(fd) < 0) {
		int e = errno;

		close(fd);
		if (e == EWOULDBLOCK)
			return fail(err, errlen, "'%s' is in use by another live mount", path);
		return fail(err, errlen, "cannot lock '%s': %s", path, errno_name(e));
	}
	*fd_out = fd;
	return 0;
}

static int mkdir_at(int dirfd, const char *name, const char *what, char *err, size_t errlen)
{
	if (mkdirat(dirfd, name, 0700) < 0 && errno != EEXIST)
		return fail(err, errlen, "cannot create %s: %s", what, errno_name(errno));
	return 0;
}

/* Sets up META/work (emptied: leftovers of an interrupted copy-up) and
 * returns META's fd for the xino default location. */
static int setup_work(const struct union_config *cfg, char *err, size_t errlen, int *meta_fd)
{
	int base, meta, fd;
	const char *meta_name;

	if (cfg->syntax == SYNTAX_OVERLAY) {
		char real[PATH_MAX];
		struct stat ws, us;

		if (!realpath(cfg->workdir, real))
			return fail(err, errlen, "workdir '%s': %s", cfg->workdir, errno_name(errno));
		if (path_within(real, ufs.br[0].path) || path_within(ufs.br[0].path, real))
			return fail(err, errlen, "workdir '%s' and upperdir '%s' overlap", real,
				    ufs.br[0].path);
		base = open(real, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (base < 0)
			return fail(err, errlen, "workdir '%s': %s", cfg->workdir, errno_name(errno));
		if (fstat(base, &ws) < 0 || fstat(ufs.br[0].fd, &us) < 0) {
			close(base);
			return fail(err, errlen, "workdir '%s': %s", cfg->workdir, errno_name(errno));
		}
		if (ws.st_dev != us.st_dev) {
			close(base);
			return fail(err, errlen,
				    "workdir '%s' is not on the same filesystem as upperdir '%s'",
				    cfg->workdir, ufs.br[0].path);
		}
		if (lock_dir(real, &ufs.lock_fds[1], err, errlen) < 0) {
			close(base);
			return -1;
		}
		meta_name = META_DIR_OVERLAY;
	} else {
		base = dup(ufs.br[0].fd);
		if (base < 0)
			return fail(err, errlen, "dup: %s", errno_name(errno));
		meta_name = META_DIR_AUFS;
	}
	if (mkdir_at(base, meta_name, "the meta directory", err, errlen) < 0) {
		close(base);
		return -1;
	}
	meta = openat(base, meta_name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	close(base);
	if (meta < 0)
		return fail(err, errlen, "meta directory: %s", errno_name(errno));
	/* A crash can leave half-built copies in work: start from empty. */
	fd = remove_tree_at(meta, "work");
	if (fd < 0 || mkdir_at(meta, "work", "the work directory", err, errlen) < 0) {
		close(meta);
		return fd < 0 ? fail(err, errlen, "cannot empty the work directory: %s",
				     errno_name(-fd)) : -1;
	}
	ufs.work_fd = openat(meta, "work", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (ufs.work_fd < 0) {
		close(meta);
		return fail(err, errlen, "work directory: %s", errno_name(errno));
	}
	*meta_fd = meta;
	return 0;
}

static uint64_t fnv1a(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

/* A read-only union keeps its table where aufs keeps its own: in /tmp, one
 * per distinct branch list. */
static int default_ro_xino_dir(char *buf, size_t len)
{
	char list[UNION_MAX_BRANCHES * (PATH_MAX / 8)] = "";
	char top[64];
	size_t used = 0;

	for (unsigned int i = 0; i < ufs.nbr; i++) {
		int n = snprintf(list + used, sizeof(list) - used, "%s:", ufs.br[i].path);

		if (n < 0 || (size_t)n >= sizeof(list) - used)
			break;
		used += (size_t)n;
	}
	snprintf(top, sizeof(top), "/tmp/.strata-xino-%u", (unsigned int)getuid());
	if (mkdir(top, 0700) < 0 && errno != EEXIST)
		return -errno;
	snprintf(buf, len, "%s/%016llx", top, (unsigned long long)fnv1a(list));
	return 0;
}

static int setup_xino(const struct union_config *cfg, int meta_fd, char *err, size_t errlen)
{
	char dir[PATH_MAX];

	if (cfg->xino_off) {
		ufs.xino = xino_open(NULL);
	} else {
		if (cfg->xino_path) {
			snprintf(dir, sizeof(dir), "%s", cfg->xino_path);
		} else if (meta_fd >= 0) {
			snprintf(dir, sizeof(dir), "/proc/self/fd/%d/xino", meta_fd);
		} else if (default_ro_xino_dir(dir, sizeof(dir)) < 0) {
			return fail(err, errlen, "cannot create the xino directory in /tmp: %s",
				    errno_name(errno));
		}
		ufs.xino = xino_open(dir);
		if (!ufs.xino && errno == EBUSY && !cfg->xino_path && meta_fd < 0) {
			/* Another read-only union of the same branches holds the
			 * shared default table: numbers stay unique, not stable. */
			log_warn("xino table '%s' is in use; inode numbers of this mount will "
				 "not persist", dir);
			ufs.xino = xino_open(NULL);
		}
	}
	if (!ufs.xino)
		return fail(err, errlen, "xino table '%s': %s", cfg->xino_off ? "memory" : dir,
			    errno_name(errno));
	for (unsigned int i = 0; i < ufs.nbr; i++) {
		int e = xino_add_branch(ufs.xino, ufs.br[i].path, &ufs.br[i].xino_id);

		if (e < 0)
			return fail(err, errlen, "xino table for branch '%s': %s", ufs.br[i].path,
				    errno_name(-e));
	}
	return 0;
}

/* Filesystems whose close(2) does more than drop a reference: network and
 * FUSE ones write back or report delayed errors at close.  An unknown one
 * is trusted to be local, like ext4, xfs, btrfs and tmpfs. */
static bool flushes_on_close(int fd)
{
	static const unsigned long types[] = {
		0x6969,     /* NFS */
		0xFF534D42, /* CIFS */
		0xFE534D42, /* SMB2 */
		0x517B,     /* SMB */
		0x65735546, /* FUSE */
		0x01021997, /* 9p */
		0x00C36400, /* Ceph */
		0x6B414653, /* kAFS */
		0x5346414F, /* OpenAFS */
		0x0BD00BD0, /* Lustre */
	};
	struct statfs sf;

	if (fstatfs(fd, &sf) < 0)
		return true;
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if ((unsigned long)sf.f_type == types[i])
			return true;
	return false;
}

int branches_setup(struct union_config *cfg, char *err, size_t errlen)
{
	char mnt[PATH_MAX];
	int meta_fd = -1, ret = -1;

	ufs.cfg = cfg;
	ufs.work_fd = ufs.lock_fds[0] = ufs.lock_fds[1] = -1;
	for (unsigned int i = 0; i < UNION_MAX_BRANCHES; i++)
		ufs.br[i].fd = -1;
	if (!realpath(cfg->mountpoint, mnt))
		return fail(err, errlen, "mountpoint '%s': %s", cfg->mountpoint, errno_name(errno));
	for (unsigned int i = 0; i < cfg->nbranches; i++) {
		ufs.nbr = i + 1;
		if (open_branch(i, &cfg->branches[i], err, errlen) < 0)
			goto out;
	}
	if (check_branch_set(mnt, err, errlen) < 0)
		goto out;
	ufs.writable = ufs.br[0].perm == BR_RW && !cfg->read_only;
	ufs.flush_on_close = ufs.writable && flushes_on_close(ufs.br[0].fd);
	ufs.wh_format = cfg->whiteout;
	ufs.redirect_dir = cfg->redirect_dir;
	ufs.uid = geteuid();
	ufs.gid = getegid();
	ufs.ovl_xattr = (cfg->userxattr || ufs.uid != 0) ? "user.overlay." : "trusted.overlay.";
	if (ufs.br[0].perm == BR_RW) {
		if (lock_dir(ufs.br[0].path, &ufs.lock_fds[0], err, errlen) < 0)
			goto out;
		if (setup_work(cfg, err, errlen, &meta_fd) < 0)
			goto out;
	}
	if (setup_xino(cfg, meta_fd, err, errlen) < 0)
		goto out;
	ret = 0;
out:
	if (meta_fd >= 0)
		close(meta_fd);
	if (ret < 0)
		branches_teardown();
	return ret;
}

void branches_teardown(void)
{
	if (ufs.xino)
		xino_close(ufs.xino);
	ufs.xino = NULL;
	for (unsigned int i = 0; i < ufs.nbr; i++) {
		if (ufs.br[i].fd >= 0)
			close(ufs.br[i].fd);
		free(ufs.br[i].path);
		ufs.br[i].fd = -1;
		ufs.br[i].path = NULL;
	}
	ufs.nbr = 0;
	if (ufs.work_fd >= 0)
		close(ufs.work_fd);
	for (int i = 0; i < 2; i++)
		if (ufs.lock_fds[i] >= 0)
			close(ufs.lock_fds[i]);
	ufs.work_fd = ufs.lock_fds[0] = ufs.lock_fds[1] = -1;
}

/* difftest: build the two lower layers from the seed.
 *
 * BASE/l2 is the bottom layer: a random tree of directories, files (some
 * empty, some large, some sparse), symlinks and fifos with varied modes,
 * owners and user xattrs.  BASE/l1 sits on top of it and, name by name,
 * merges directories, makes some opaque (trusted.overlay.opaque=y), whites
 * names out (char device 0:0), replaces files by directories and the other
 * way round, and adds new names.  Both copies come from the same seed, so A
 * and B are byte-identical. */
#include "difftest.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#define MAX_DEPTH 3

static void gen_dir(struct rng *r, const char *dir, int depth);

static void gen_xattrs(struct rng *r, const char *path)
{
	static const char *const xn[] = { "user.a", "user.b", "user.c" };
	char val[64];
	size_t i, len;

	for (i = 0; i < 3; i++) {
		if (!rng_pct(r, 15))
			continue;
		len = rng_below(r, sizeof(val));
		rng_fill(r, (unsigned char *)val, len);
		if (lsetxattr(path, xn[i], val, len, 0) < 0)
			die("lsetxattr %s: %s", path, strerror(errno));
	}
}

static void gen_owner(struct rng *r, const char *path)
{
	static const uid_t ids[] = { 1000, 0, 65534 };

	if (!rng_pct(r, 12))
		return;
	if (lchown(path, ids[rng_below(r, 3)], ids[rng_below(r, 3)]) < 0)
		die("lchown %s: %s", path, strerror(errno));
}

static void write_all(int fd, const unsigned char *p, size_t len, off_t off,
		      const char *path)
{
	while (len > 0) {
		ssize_t n = pwrite(fd, p, len, off);

		if (n < 0)
			die("pwrite %s: %s", path, strerror(errno));
		p += n;
		len -= (size_t)n;
		off += n;
	}
}

static void gen_file(struct rng *r, const char *path)
{
	unsigned int kind = (unsigned int)rng_below(r, 100);
	size_t len;
	off_t off = 0;
	unsigned char *data;
	int fd;

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		die("create %s: %s", path, strerror(errno));
	if (kind < 8)
		len = 0;
	else if (kind < 55)
		len = rng_below(r, 200);
	else if (kind < 85)
		len = rng_below(r, 8192);
	else if (kind < 95)
		len = rng_below(r, 100000);
	else
		len = 4096;
	data = xmalloc(len);
	rng_fill(r, data, len);
	if (kind >= 95) {
		/* sparse: a data block in the middle of a 1 MiB hole */
		off = (off_t)rng_below(r, 256) * 4096;
		if (ftruncate(fd, 1 << 20) < 0)
			die("ftruncate %s: %s", path, strerror(errno));
	}
	write_all(fd, data, len, off, path);
	free(data);
	if (fchmod(fd, pick_file_mode(r)) < 0)
		die("fchmod %s: %s", path, strerror(errno));
	if (close(fd) < 0)
		die("close %s: %s", path, strerror(errno));
	gen_xattrs(r, path);
	gen_owner(r, path);
}

static void gen_symlink(struct rng *r, const char *path)
{
	char *t = pick_target(r);

	if (symlink(t, path) < 0)
		die("symlink %s: %s", path, strerror(errno));
	free(t);
	gen_owner(r, path);
}

static void gen_fifo(struct rng *r, const char *path)
{
	if (mkfifo(path, 0644) < 0)
		die("mkfifo %s: %s", path, strerror(errno));
	gen_owner(r, path);
}

static void gen_subdir(struct rng *r, const char *path, int depth, bool opaque)
{
	if (mkdir(path, 0755) < 0)
		die("mkdir %s: %s", path, strerror(errno));
	if (opaque && lsetxattr(path, "trusted.overlay.opaque", "y", 1, 0) < 0)
		die("set opaque on %s: %s", path, strerror(errno));
	gen_dir(r, path, depth);
	if (chmod(path, pick_dir_mode(r)) < 0)
		die("chmod %s: %s", path, strerror(errno));
	gen_xattrs(r, path);
	gen_owner(r, path);
}

static void gen_whiteout(const char *path)
{
	if (mknod(path, S_IFCHR | 0000, makedev(0, 0)) < 0)
		die("mknod whiteout %s: %s", path, strerror(errno));
}

/* A new non-whiteout entry of random type. */
static void gen_entry(struct rng *r, const char *path, int depth)
{
	unsigned int t = (unsigned int)rng_below(r, 100);

	if (t < 30 && depth < MAX_DEPTH)
		gen_subdir(r, path, depth + 1, false);
	else if (t < 45)
		gen_symlink(r, path);
	else if (t < 48)
		gen_fifo(r, path);
	else
		gen_file(r, path);
}

static void gen_dir(struct rng *r, const char *dir, int depth)
{
	unsigned int n = depth == 0 ? 8 + (unsigned int)rng_below(r, 6)
				    : (unsigned int)rng_below(r, 6);
	struct stat st;

	while (n--) {
		char *p = xasprintf("%s/%s", dir, pick_name(r));

		if (lstat(p, &st) == 0) {
			free(p);
			continue;
		}
		gen_entry(r, p, depth);
		free(p);
	}
}

/* l1 over l2, one directory level: decide what to do with each pool name. */
static void gen_over(struct rng *r, const char *up, const char *low, int depth)
{
	static const char *const pool[] = {
		"a", "b", "c", "d", "e", "f", "g", "h", "dir", "file", "x y",
		"\xc3\xa4-utf8",
	};
	size_t i;

	for (i = 0; i < sizeof(pool) / sizeof(pool[0]); i++) {
		char *u = xasprintf("%s/%s", up, pool[i]);
		char *l = xasprintf("%s/%s", low, pool[i]);
		unsigned int roll = (unsigned int)rng_below(r, 100);
		struct stat st;

		if (lstat(l, &st) < 0) {
			if (errno != ENOENT)
				die("lstat %s: %s", l, strerror(errno));
			if (roll < 12)
				gen_entry(r, u, depth);
			else if (roll < 15)
				gen_whiteout(u); /* nothing below to hide */
		} else if (S_ISDIR(st.st_mode)) {
			if (roll < 30 && depth < MAX_DEPTH) {
				/* merged; l1's own mode and xattrs win */
				if (mkdir(u, 0755) < 0)
					die("mkdir %s: %s", u, strerror(errno));
				gen_over(r, u, l, depth + 1);
				if (chmod(u, rng_pct(r, 70) ? st.st_mode & 07777
							   : pick_dir_mode(r)) < 0)
					die("chmod %s: %s", u, strerror(errno));
				gen_xattrs(r, u);
			} else if (roll < 40) {
				gen_subdir(r, u, depth + 1, true);
			} else if (roll < 55) {
				gen_whiteout(u);
			} else if (roll < 62) {
				gen_file(r, u);
			} else if (roll < 65) {
				gen_symlink(r, u);
			}
		} else {
			if (roll < 20)
				gen_whiteout(u);
			else if (roll < 35)
				gen_file(r, u);
			else if (roll < 42 && depth < MAX_DEPTH)
				gen_subdir(r, u, depth + 1, false);
			else if (roll < 45)
				gen_symlink(r, u);
		}
		free(u);
		free(l);
	}
}

void gen_layers(const char *base, uint64_t seed)
{
	struct rng r;
	char *l1 = xasprintf("%s/l1", base);
	char *l2 = xasprintf("%s/l2", base);

	rng_seed(&r, seed ^ 0x6c61796572730aULL);
	gen_dir(&r, l2, 0);
	gen_over(&r, l1, l2, 0);
	free(l1);
	free(l2);
}

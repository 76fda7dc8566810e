/* Directory trees to libarchive entries: the steps both walks share, and
 * the walk of one tree.  tar_merge.c walks layers merged; tar_write.c has
 * the writers; image_util.c the file helpers. */
#include "walker.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "log.h"

/* ---- entries ---- */

int walker_init(struct walker *w, unsigned int flags, tw_emit_fn emit, void *ctx,
		       struct img_err *eb)
{
	memset(w, 0, sizeof(*w));
	w->flags = flags;
	w->emit = emit;
	w->ctx = ctx;
	w->eb = eb;
	w->rd = archive_read_disk_new();
	w->links = archive_entry_linkresolver_new();
	if (!w->rd || !w->links)
		return img_fail(eb, "libarchive: ENOMEM");
	/* Sparse maps depend on how the filesystem allocated blocks, so equal
	 * content would hash differently; chattr flags (immutable...) would
	 * make a layer undeletable and mean nothing in a container. */
	if (archive_read_disk_set_behavior(w->rd, ARCHIVE_READDISK_NO_SPARSE |
						  ARCHIVE_READDISK_NO_FFLAGS) != ARCHIVE_OK)
		return img_fail(eb, "libarchive: %s", archive_error_string(w->rd));
	archive_entry_linkresolver_set_strategy(w->links, ARCHIVE_FORMAT_TAR_PAX_RESTRICTED);
	strcpy(w->path, ".");
	return 0;
}

void walker_fini(struct walker *w)
{
	if (w->links) {
		struct archive_entry *e = NULL, *spare = NULL;

		/* The tar strategy defers nothing, but drain it all the same. */
		do {
			archive_entry_linkify(w->links, &e, &spare);
			archive_entry_free(e);
			archive_entry_free(spare);
			spare = NULL;
		} while (e);
		archive_entry_linkresolver_free(w->links);
	}
	if (w->rd)
		archive_read_free(w->rd);
}

int path_push(struct walker *w, const char *name, size_t *saved)
{
	size_t len = strlen(w->path);
	int n = snprintf(w->path + len, sizeof(w->path) - len, "/%s", name);

	*saved = len;
	if (n < 0 || (size_t)n >= sizeof(w->path) - len) {
		w->path[len] = '\0';
		return img_fail(w->eb, "%s/%s: ENAMETOOLONG", w->path, name);
	}
	return 0;
}

struct xattr {
	char *name;
	void *value;
	size_t size;
};

static int cmp_xattr(const void *a, const void *b)
{
	return strcmp(((const struct xattr *)a)->name, ((const struct xattr *)b)->name);
}

static const char *xattr_keep(const char *name)
{
	return name;
}

static const char *xattr_public(const char *name)
{
	return img_xattr_private(name) ? NULL : name;
}

int tw_map_xattrs(struct archive_entry *e, tw_xattr_map_fn map)
{
	int n = archive_entry_xattr_reset(e);
	struct xattr *xs = calloc((size_t)n + 1, sizeof(*xs));
	const char *name;
	const void *value;
	size_t size, count = 0;
	int err = 0;

	if (!xs)
		return -ENOMEM;
	while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
		name = map(name);
		if (!name)
			continue;
		xs[count].name = strdup(name);
		xs[count].value = malloc(size ? size : 1);
		xs[count].size = size;
		if (!xs[count].name || !xs[count].value) {
			count++;
			err = -ENOMEM;
			break;
		}
		memcpy(xs[count++].value, value, size);
	}
	if (!err) {
		qsort(xs, count, sizeof(*xs), cmp_xattr);
		archive_entry_xattr_clear(e);
		for (size_t i = 0; i < count; i++)
			archive_entry_xattr_add_entry(e, xs[i].name, xs[i].value, xs[i].size);
	}
	for (size_t i = 0; i < count; i++) {
		free(xs[i].name);
		free(xs[i].value);
	}
	free(xs);
	return err;
}

/* The entry for dirfd/name (stat'ed as st; fd open on it or -1), named
 * w->path in the archive. */
static struct archive_entry *make_entry(struct walker *w, int dirfd, const char *name,
					const struct stat *st, int fd)
{
	struct archive_entry *e = archive_entry_new();
	char src[64 + NAME_MAX];

	if (!e) {
		img_fail(w->eb, "%s: ENOMEM", w->path);
		return NULL;
	}
	if (at_path(src, sizeof(src), dirfd, name) < 0) {
		img_fail(w->eb, "%s: ENAMETOOLONG", w->path);
		goto fail;
	}
	archive_entry_copy_pathname(e, strcmp(w->path, ".") ? w->path : "./");
	archive_entry_copy_sourcepath(e, src);
	if (archive_read_disk_entry_from_file(w->rd, e, fd, st) != ARCHIVE_OK) {
		img_fail(w->eb, "%s: %s", w->path, archive_error_string(w->rd));
		goto fail;
	}
	/* atime and ctime change by merely reading or copying a tree. */
	archive_entry_unset_atime(e);
	archive_entry_unset_ctime(e);
	archive_entry_unset_birthtime(e);
	if (!S_ISREG(st->st_mode))
		archive_entry_set_size(e, 0);
	/* Directories that an extraction creates implicitly, and every
	 * directory it writes into, get the time of the extraction: their
	 * mtime would make equal content hash differently. */
	if (S_ISDIR(st->st_mode) && (w->flags & TW_CANONICAL))
		archive_entry_set_mtime(e, 0, 0);
	/* listxattr order is the filesystem's: sorted, a tree always gives
	 * the same stream. */
	if (tw_map_xattrs(e, (w->flags & TW_PUBLIC) ? xattr_public : xattr_keep) < 0) {
		img_fail(w->eb, "%s: ENOMEM", w->path);
		goto fail;
	}
	return e;
fail:
	archive_entry_free(e);
	return NULL;
}

/* Hands an entry on, as a hard link to an earlier name where it is one. */
static int emit_entry(struct walker *w, struct archive_entry *e, int fd)
{
	struct archive_entry *spare = NULL;

	archive_entry_linkify(w->links, &e, &spare);
	archive_entry_free(spare);
	if (archive_entry_hardlink(e))
		fd = -1;
	/* Inode numbers only served link detection; pax would record them
	 * (SCHILY.ino), and they differ on every copy. */
	archive_entry_set_dev(e, 0);
	archive_entry_set_ino(e, 0);
	archive_entry_set_nlink(e, 1);
	return w->emit(w->ctx, e, fd, w->eb);
}

/* Opens what was lstat'ed as st, and checks it is still that object: a
 * live tree (a running container's) may change under the walk, and a FIFO
 * swapped in must not block it (O_NONBLOCK). */
static int open_object(struct walker *w, int dirfd, const char *name, const struct stat *st)
{
	int flags = S_ISDIR(st->st_mode) ? O_RDONLY | O_DIRECTORY : O_RDONLY | O_NOCTTY | O_NONBLOCK;
	int fd = openat(dirfd, name, flags | O_NOFOLLOW | O_CLOEXEC);
	struct stat now;

	if (fd < 0)
		return img_fail(w->eb, "%s: open: %s", w->path, errno_name(errno));
	if (fstat(fd, &now) < 0 || now.st_ino != st->st_ino || now.st_dev != st->st_dev ||
	    (now.st_mode & S_IFMT) != (st->st_mode & S_IFMT)) {
		close(fd);
		return img_fail(w->eb, "%s: changed while being read", w->path);
	}
	return fd;
}

/* Builds, emits and frees the entry of dirfd/name; *fdp is the object
 * opened for data (regular) or listing (directory), -1 otherwise. */
int emit_object(struct walker *w, int dirfd, const char *name, const struct stat *st,
		       int *fdp)
{
	struct archive_entry *e;
	int r;

	*fdp = -1;
	if (S_ISREG(st->st_mode) || S_ISDIR(st->st_mode)) {
		*fdp = open_object(w, dirfd, name, st);
		if (*fdp < 0)
			return -1;
	}
	e = make_entry(w, dirfd, name, st, *fdp);
	if (!e)
		return -1;
	r = emit_entry(w, e, S_ISREG(st->st_mode) ? *fdp : -1);
	archive_entry_free(e);
	return r;
}

int enter_dir(struct walker *w)
{
	if (++w->depth > TW_MAX_DEPTH)
		return img_fail(w->eb, "%s: deeper than %d levels", w->path, TW_MAX_DEPTH);
	return 0;
}

/* ---- one tree ---- */

static int walk_children(struct walker *w, int dirfd);

static int walk_one(struct walker *w, int dirfd, const char *name)
{
	struct stat st;
	size_t saved;
	int fd = -1, r;

	if (path_push(w, name, &saved) < 0)
		return -1;
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		r = img_fail(w->eb, "%s: lstat: %s", w->path, errno_name(errno));
		goto out;
	}
	r = emit_object(w, dirfd, name, &st, &fd);
	/* A mount point is listed, its contents are another filesystem's. */
	if (!r && S_ISDIR(st.st_mode) && !((w->flags & TW_ONE_FS) && st.st_dev != w->root_dev))
		r = walk_children(w, fd);
out:
	if (fd >= 0)
		close(fd);
	w->path[saved] = '\0';
	return r;
}

static int walk_children(struct walker *w, int dirfd)
{
	char **names = NULL;
	size_t n = 0;
	int r = enter_dir(w);

	if (!r && (r = add_names(dirfd, false, &names, &n)) < 0)
		r = img_fail(w->eb, "%s: readdir: %s", w->path, errno_name(-r));
	if (!r && n)
		qsort(names, n, sizeof(*names), cmp_names);
	for (size_t i = 0; !r && i < n; i++)
		r = walk_one(w, dirfd, names[i]);
	tw_free_names(names, n);
	w->depth--;
	return r;
}

int tw_walk_dir(const char *dir, unsigned int flags, tw_emit_fn emit, void *ctx,
		struct img_err *eb)
{
	struct walker w;
	struct stat st;
	int fd = -1, rootfd = -1, r;

	r = walker_init(&w, flags, emit, ctx, eb);
	if (r)
		goto out;
	fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		r = img_fail(eb, "%s: %s", dir, errno_name(errno));
		goto out;
	}
	w.root_dev = st.st_dev;
	r = emit_object(&w, fd, ".", &st, &rootfd);
	if (!r)
		r = walk_children(&w, rootfd);
out:
	if (rootfd >= 0)
		close(rootfd);
	if (fd >= 0)
		close(fd);
	walker_fini(&w);
	return r;
}

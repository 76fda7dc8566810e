/* Directory trees to libarchive entries: a plain walk, a merged walk over
 * overlay-format layers, and the writers the entries go to. */
#include "tarball.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "log.h"

int img_fail(struct img_err *eb, const char *fmt, ...)
{
	va_list ap;

	if (eb->len) {
		va_start(ap, fmt);
		vsnprintf(eb->msg, eb->len, fmt, ap);
		va_end(ap);
	}
	return -1;
}

int img_fail_prefix(struct img_err *eb, const char *fmt, ...)
{
	char *old = strndup(eb->msg, eb->len);
	va_list ap;
	size_t used;

	if (!old || !eb->len)
		goto out;
	va_start(ap, fmt);
	vsnprintf(eb->msg, eb->len, fmt, ap);
	va_end(ap);
	used = strlen(eb->msg);
	snprintf(eb->msg + used, eb->len - used, ": %s", old);
out:
	free(old);
	return -1;
}

bool img_xattr_private(const char *name)
{
	static const char *const prefixes[] = {
		"trusted.overlay.", "user.overlay.", "trusted.strata.", "user.strata.",
	};

	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
		if (strncmp(name, prefixes[i], strlen(prefixes[i])) == 0)
			return true;
	return false;
}

/* For kernels (or seccomp filters) without openat2: one component at a
 * time, never following a symlink, never going up. */
static int open_beneath_slow(int rootfd, const char *path, int flags)
{
	int fd = openat(rootfd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);

	while (fd >= 0 && *path) {
		size_t n = strcspn(path, "/");
		char name[NAME_MAX + 1];
		bool last = !path[n] || !path[n + strspn(path + n, "/")];
		int next;

		if (n > NAME_MAX || (n == 2 && !strncmp(path, "..", 2)) || path[0] == '/') {
			close(fd);
			errno = n > NAME_MAX ? ENAMETOOLONG : EXDEV;
			return -1;
		}
		memcpy(name, path, n);
		name[n] = '\0';
		next = openat(fd, n ? name : ".",
			      (last ? flags : O_PATH | O_DIRECTORY) | O_NOFOLLOW | O_CLOEXEC);
		close(fd);
		fd = next;
		path += n;
		path += strspn(path, "/");
	}
	return fd;
}

int img_open_beneath(int rootfd, const char *path, int flags)
{
	struct open_how how = {
		.flags = (unsigned int)flags | O_CLOEXEC,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
	};
	int fd = (int)syscall(SYS_openat2, rootfd, path, &how, sizeof(how));

	if (fd < 0 && errno == ENOSYS)
		return open_beneath_slow(rootfd, path, flags);
	return fd;
}

/* "/proc/self/fd/N/name": lets the path-only calls libarchive makes
 * (readlink, llistxattr, acl_get_file) reach an entry of a directory fd. */
static int at_path(char *buf, size_t len, int dirfd, const char *name)
{
	int n = snprintf(buf, len, "/proc/self/fd/%d/%s", dirfd, name);

	return (n < 0 || (size_t)n >= len) ? -ENAMETOOLONG : 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void tw_free_names(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

/* Adds the entries of dirfd to a growing array (without "." and ".."; and
 * without ".wh.*" union meta names when skip_meta). */
static int add_names(int dirfd, bool skip_meta, char ***names, size_t *n)
{
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct dirent *de;
	DIR *d;
	int err = 0;

	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		err = -errno;
		close(fd);
		return err;
	}
	while ((errno = 0, de = readdir(d))) {
		char **grown;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (skip_meta && !strncmp(de->d_name, ".wh.", 4))
			continue;
		grown = reallocarray(*names, *n + 1, sizeof(**names));
		if (!grown || !(grown[*n] = strdup(de->d_name))) {
			if (grown)
				*names = grown;
			err = -ENOMEM;
			break;
		}
		*names = grown;
		(*n)++;
	}
	if (!err && errno)
		err = -errno;
	closedir(d);
	return err;
}

int tw_list_dir(int dirfd, char ***names, size_t *n)
{
	*names = NULL;
	*n = 0;
	return add_names(dirfd, false, names, n);
}

/* Sorted, duplicates dropped (a merged directory lists each name once). */
static void sort_unique(char **names, size_t *n)
{
	size_t out = 0;

	if (*n)
		qsort(names, *n, sizeof(*names), cmp_str);
	for (size_t i = 0; i < *n; i++) {
		if (out && !strcmp(names[out - 1], names[i])) {
			free(names[i]);
			continue;
		}
		names[out++] = names[i];
	}
	*n = out;
}

int img_remove_tree_at(int dirfd, const char *name)
{
	char **names = NULL;
	size_t n = 0;
	struct stat st;
	int fd, err;

	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISDIR(st.st_mode))
		return unlinkat(dirfd, name, 0) < 0 && errno != ENOENT ? -errno : 0;
	/* A layer may hold read-only directories; their owner may open them
	 * up again, root does not need to. */
	if ((st.st_mode & 0700) != 0700 && fchmodat(dirfd, name, 0700, 0) < 0 && errno != EPERM)
		return -errno;
	fd = openat(dirfd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	err = add_names(fd, false, &names, &n);
	for (size_t i = 0; !err && i < n; i++)
		err = img_remove_tree_at(fd, names[i]);
	tw_free_names(names, n);
	close(fd);
	if (!err && unlinkat(dirfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
		err = -errno;
	return err;
}

int img_remove_tree(const char *path)
{
	return img_remove_tree_at(AT_FDCWD, path);
}

/* ---- entries ---- */

struct walker {
	unsigned int flags;
	struct archive *rd; /* read_disk: builds an entry from a file */
	struct archive_entry_linkresolver *links;
	tw_emit_fn emit;
	void *ctx;
	struct img_err *eb;
	dev_t root_dev;
	int depth;
	char path[PATH_MAX]; /* archive path of the current object */
};

static int walker_init(struct walker *w, unsigned int flags, tw_emit_fn emit, void *ctx,
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

static void walker_fini(struct walker *w)
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

static int path_push(struct walker *w, const char *name, size_t *saved)
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
static int emit_object(struct walker *w, int dirfd, const char *name, const struct stat *st,
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

static int enter_dir(struct walker *w)
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
		qsort(names, n, sizeof(*names), cmp_str);
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

/* ---- merged layers ---- */

/* A directory of the merged view: for each layer, the path (root
 * relative) where it is looked up, and whether that layer's directory is
 * part of the merge. */
struct mdir {
	char **lpath;
	bool *contrib;
};

struct merge {
	struct walker w;
	int *roots; /* O_PATH fds of the layer roots, top first */
	size_t n;
};

static void mdir_free(struct mdir *d, size_t n)
{
	if (d->lpath)
		for (size_t i = 0; i < n; i++)
			free(d->lpath[i]);
	free(d->lpath);
	free(d->contrib);
	d->lpath = NULL;
	d->contrib = NULL;
}

static int mdir_alloc(struct mdir *d, size_t n)
{
	d->lpath = calloc(n, sizeof(*d->lpath));
	d->contrib = calloc(n, sizeof(*d->contrib));
	return d->lpath && d->contrib ? 0 : -ENOMEM;
}

static char *join(const char *dir, const char *name)
{
	char *out;

	if (!strcmp(dir, "."))
		return strdup(name);
	return asprintf(&out, "%s/%s", dir, name) < 0 ? NULL : out;
}

/* Opens the directory holding root-relative path in a layer (O_PATH) and
 * points *leaf at the last component. */
static int open_holder(int rootfd, const char *path, const char **leaf)
{
	const char *slash = strrchr(path, '/');
	char *dir;
	int fd;

	if (!slash) {
		*leaf = path;
		return openat(rootfd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	}
	*leaf = slash + 1;
	dir = strndup(path, (size_t)(slash - path));
	if (!dir) {
		errno = ENOMEM;
		return -1;
	}
	fd = img_open_beneath(rootfd, dir, O_PATH | O_DIRECTORY);
	free(dir);
	return fd;
}

static char *get_xattr(int dirfd, const char *name, const char *xname)
{
	char path[64 + NAME_MAX], buf[PATH_MAX];
	ssize_t len;

	if (at_path(path, sizeof(path), dirfd, name) < 0)
		return NULL;
	len = lgetxattr(path, xname, buf, sizeof(buf) - 1);
	if (len < 0)
		return NULL;
	buf[len] = '\0';
	return strdup(buf);
}

/* What a name of a merged directory resolves to. */
struct mlookup {
	bool found;
	size_t layer; /* topmost layer holding it */
	struct stat st;
	struct mdir child; /* when a directory */
	char *redirect;	   /* root relative, for the layers below redirect_at */
	size_t redirect_at;
};

/* overlayfs stores a redirect as absolute from the layer root or as a name
 * relative to the parent; make it root relative.  The parent's path is the
 * one in the layer just below the redirecting one. */
static char *redirect_path(const struct merge *m, const struct mdir *dir, size_t b,
			   const char *value)
{
	if (value[0] == '/') {
		while (*value == '/')
			value++;
		return strdup(value);
	}
	return join(b + 1 < m->n ? dir->lpath[b + 1] : ".", value);
}

enum step { STEP_NEXT, STEP_STOP };

/* A path that does not lead to a directory in a layer (missing, through a
 * non-directory or a symlink, or out of the layer) holds nothing there. */
static bool absent(int err)
{
	return err == ENOENT || err == ENOTDIR || err == ELOOP || err == EXDEV;
}

/* One layer of a lookup: overlayfs' rules (whiteouts end it, a non-dir
 * ends it, a directory merges with those below until an opaque one). */
static int lookup_in_layer(struct merge *m, const struct mdir *dir, size_t b, const char *path,
			   struct mlookup *r, enum step *next)
{
	const char *leaf;
	struct stat st;
	char *value;
	int hfd = open_holder(m->roots[b], path, &leaf);

	*next = STEP_NEXT;
	if (hfd < 0)
		return absent(errno) ? 0 : -errno;
	if (fstatat(hfd, leaf, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		int err = errno;

		close(hfd);
		return absent(err) ? 0 : -err;
	}
	if (S_ISCHR(st.st_mode) && st.st_rdev == 0) {
		*next = STEP_STOP; /* a whiteout */
	} else if (!r->found) {
		r->found = true;
		r->layer = b;
		r->st = st;
	} else if (!S_ISDIR(st.st_mode)) {
		*next = STEP_STOP; /* a non-directory below a directory */
	}
	if (*next == STEP_STOP || !S_ISDIR(r->st.st_mode)) {
		*next = STEP_STOP;
		close(hfd);
		return 0;
	}
	r->child.contrib[b] = true;
	value = get_xattr(hfd, leaf, XATTR_OVL_REDIRECT);
	if (value && !r->redirect) {
		r->redirect = redirect_path(m, dir, b, value);
		r->redirect_at = b;
	}
	free(value);
	value = get_xattr(hfd, leaf, XATTR_OVL_OPAQUE);
	if (value && !strcmp(value, "y"))
		*next = STEP_STOP;
	free(value);
	close(hfd);
	return 0;
}

static int merge_lookup(struct merge *m, const struct mdir *dir, const char *name,
			struct mlookup *r)
{
	int err = 0;

	memset(r, 0, sizeof(*r));
	if (mdir_alloc(&r->child, m->n) < 0)
		return -ENOMEM;
	for (size_t b = 0; b < m->n && !err; b++) {
		enum step next;
		char *path;

		/* Below a redirect the parent's layers no longer matter. */
		if (!r->redirect && !dir->contrib[b])
			continue;
		path = r->redirect ? strdup(r->redirect) : join(dir->lpath[b], name);
		if (!path)
			return -ENOMEM;
		err = lookup_in_layer(m, dir, b, path, r, &next);
		free(path);
		if (next == STEP_STOP)
			break;
	}
	/* Where the child's own children are looked up, in every layer. */
	for (size_t b = 0; b < m->n && !err; b++) {
		bool redirected = r->redirect && b > r->redirect_at;

		r->child.lpath[b] = redirected ? strdup(r->redirect) : join(dir->lpath[b], name);
		if (!r->child.lpath[b])
			err = -ENOMEM;
	}
	return err;
}

static void mlookup_free(struct mlookup *r, size_t n)
{
	mdir_free(&r->child, n);
	free(r->redirect);
}

static int merge_dir(struct merge *m, const struct mdir *dir);

static int merge_one(struct merge *m, const struct mdir *dir, const char *name)
{
	struct walker *w = &m->w;
	struct mlookup r;
	const char *leaf;
	size_t saved;
	int hfd = -1, fd = -1, err;

	if (path_push(w, name, &saved) < 0)
		return -1;
	err = merge_lookup(m, dir, name, &r);
	if (err < 0) {
		err = img_fail(w->eb, "%s: lookup: %s", w->path, errno_name(-err));
		goto out;
	}
	if (!r.found)
		goto out; /* whited out */
	hfd = open_holder(m->roots[r.layer], r.child.lpath[r.layer], &leaf);
	if (hfd < 0) {
		err = img_fail(w->eb, "%s: %s", w->path, errno_name(errno));
		goto out;
	}
	err = emit_object(w, hfd, leaf, &r.st, &fd);
	if (!err && S_ISDIR(r.st.st_mode))
		err = merge_dir(m, &r.child);
out:
	if (fd >= 0)
		close(fd);
	if (hfd >= 0)
		close(hfd);
	mlookup_free(&r, m->n);
	w->path[saved] = '\0';
	return err;
}

static int merge_dir(struct merge *m, const struct mdir *dir)
{
	char **names = NULL;
	size_t n = 0;
	int err = enter_dir(&m->w);

	for (size_t b = 0; b < m->n && !err; b++) {
		int fd;

		if (!dir->contrib[b])
			continue;
		fd = !strcmp(dir->lpath[b], ".") ?
			     openat(m->roots[b], ".", O_PATH | O_DIRECTORY | O_CLOEXEC) :
			     img_open_beneath(m->roots[b], dir->lpath[b], O_PATH | O_DIRECTORY);
		if (fd < 0)
			err = -errno;
		else
			err = add_names(fd, true, &names, &n);
		if (fd >= 0)
			close(fd);
		if (err)
			err = img_fail(m->w.eb, "%s (layer %zu): %s", m->w.path, b, errno_name(-err));
	}
	if (!err)
		sort_unique(names, &n);
	for (size_t i = 0; !err && i < n; i++)
		err = merge_one(m, dir, names[i]);
	tw_free_names(names, n);
	m->w.depth--;
	return err;
}

/* The root merges every layer down to the first opaque root. */
static int merge_root(struct merge *m, struct mdir *root)
{
	bool stop = false;
	struct stat st;
	int fd = -1, r;

	if (mdir_alloc(root, m->n) < 0)
		return img_fail(m->w.eb, "merge: ENOMEM");
	for (size_t b = 0; b < m->n; b++) {
		char *opaque;

		root->lpath[b] = strdup(".");
		if (!root->lpath[b])
			return img_fail(m->w.eb, "merge: ENOMEM");
		root->contrib[b] = !stop;
		opaque = get_xattr(m->roots[b], ".", XATTR_OVL_OPAQUE);
		stop = stop || (opaque && !strcmp(opaque, "y"));
		free(opaque);
	}
	if (fstat(m->roots[0], &st) < 0)
		return img_fail(m->w.eb, "layer 0: %s", errno_name(errno));
	r = emit_object(&m->w, m->roots[0], ".", &st, &fd);
	if (fd >= 0)
		close(fd);
	return r;
}

int tw_walk_layers(char *const *layers, size_t nlayers, tw_emit_fn emit, void *ctx,
		   struct img_err *eb)
{
	struct merge m = { .n = nlayers };
	struct mdir root = { 0 };
	int r;

	if (!nlayers)
		return img_fail(eb, "no layers");
	r = walker_init(&m.w, TW_PUBLIC, emit, ctx, eb);
	m.roots = calloc(nlayers, sizeof(*m.roots));
	if (!r && !m.roots)
		r = img_fail(eb, "merge: ENOMEM");
	for (size_t b = 0; m.roots && b < nlayers; b++)
		m.roots[b] = -1;
	for (size_t b = 0; !r && b < nlayers; b++) {
		m.roots[b] = open(layers[b], O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (m.roots[b] < 0)
			r = img_fail(eb, "%s: %s", layers[b], errno_name(errno));
	}
	if (!r)
		r = merge_root(&m, &root);
	if (!r)
		r = merge_dir(&m, &root);
	mdir_free(&root, nlayers);
	for (size_t b = 0; m.roots && b < nlayers; b++)
		if (m.roots[b] >= 0)
			close(m.roots[b]);
	free(m.roots);
	walker_fini(&m.w);
	return r;
}

/* ---- writers ---- */

static int copy_data(struct archive *a, struct archive_entry *e, int fd, struct img_err *eb)
{
	static char buf[1 << 16]; /* the store is single-threaded (see image.h) */
	int64_t left = archive_entry_size(e);

	while (left > 0) {
		size_t want = left < (int64_t)sizeof(buf) ? (size_t)left : sizeof(buf);
		ssize_t n = read(fd, buf, want);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return img_fail(eb, "%s: read: %s", archive_entry_pathname(e),
					errno_name(errno));
		if (n == 0)
			break; /* it shrank while read: the writer pads the rest */
		if (archive_write_data(a, buf, (size_t)n) != n)
			return img_fail(eb, "%s: %s", archive_entry_pathname(e),
					archive_error_string(a));
		left -= n;
	}
	return 0;
}

int tw_write_entry(void *archive, struct archive_entry *e, int datafd, struct img_err *eb)
{
	struct archive *a = archive;

	if (archive_write_header(a, e) != ARCHIVE_OK)
		return img_fail(eb, "%s: %s", archive_entry_pathname(e), archive_error_string(a));
	if (datafd >= 0 && copy_data(a, e, datafd, eb) < 0)
		return -1;
	if (archive_write_finish_entry(a) != ARCHIVE_OK)
		return img_fail(eb, "%s: %s", archive_entry_pathname(e), archive_error_string(a));
	return 0;
}

struct archive *tw_tar_writer(int fd, struct img_err *eb)
{
	struct archive *a = archive_write_new();

	if (!a) {
		img_fail(eb, "libarchive: ENOMEM");
		return NULL;
	}
	if (archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
	    archive_write_open_fd(a, fd) != ARCHIVE_OK) {
		img_fail(eb, "tar writer: %s", archive_error_string(a));
		archive_write_free(a);
		return NULL;
	}
	return a;
}

int tw_close(struct archive *a, const char *what, struct img_err *eb)
{
	int r = 0;

	if (archive_write_close(a) != ARCHIVE_OK)
		r = img_fail(eb, "%s: %s", what, archive_error_string(a));
	archive_write_free(a);
	return r;
}

struct tw_digest {
	EVP_MD_CTX *md;
};

static la_ssize_t digest_write(struct archive *a, void *ctx, const void *buf, size_t len)
{
	struct tw_digest *dg = ctx;

	if (EVP_DigestUpdate(dg->md, buf, len) != 1) {
		archive_set_error(a, EIO, "sha256 update failed");
		return -1;
	}
	return (la_ssize_t)len;
}

static void digest_free(struct tw_digest *dg)
{
	if (dg)
		EVP_MD_CTX_free(dg->md);
	free(dg);
}

struct archive *tw_digest_writer(struct tw_digest **dgp, struct img_err *eb)
{
	struct tw_digest *dg = calloc(1, sizeof(*dg));
	struct archive *a = archive_write_new();

	if (!dg || !a || !(dg->md = EVP_MD_CTX_new())) {
		img_fail(eb, "sha256: ENOMEM");
		goto fail;
	}
	if (EVP_DigestInit_ex(dg->md, EVP_sha256(), NULL) != 1) {
		img_fail(eb, "sha256: EVP_DigestInit_ex failed");
		goto fail;
	}
	if (archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
	    archive_write_open(a, dg, NULL, digest_write, NULL) != ARCHIVE_OK) {
		img_fail(eb, "digest writer: %s", archive_error_string(a));
		goto fail;
	}
	*dgp = dg;
	return a;
fail:
	if (a)
		archive_write_free(a);
	digest_free(dg);
	return NULL;
}

void tw_digest_abort(struct archive *a, struct tw_digest *dg)
{
	archive_write_free(a);
	digest_free(dg);
}

int tw_digest_finish(struct archive *a, struct tw_digest *dg, char hex[65], struct img_err *eb)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;
	int r = tw_close(a, "digest", eb);

	if (!r && (EVP_DigestFinal_ex(dg->md, md, &len) != 1 || len != 32))
		r = img_fail(eb, "sha256: EVP_DigestFinal_ex failed");
	for (unsigned int i = 0; !r && i < len; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	digest_free(dg);
	return r;
}

/* Building a layer directory from a tar, a directory tree or entries made
 * in code, converting whiteouts to the overlay format on the way. */
#include "layer.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define WH_PREFIX ".wh."
#define WH_META_PREFIX ".wh..wh."
#define WH_OPAQUE ".wh..wh..opq"

/* ---- entry names ---- */

/* "./a//b/" -> "a/b"; the root is "". */
static int normalize(const char *in, char *out, size_t len)
{
	size_t o = 0;

	while (*in) {
		size_t n = strcspn(in, "/");

		if (n && !(n == 1 && in[0] == '.')) {
			if (o + n + 2 > len)
				return -ENAMETOOLONG;
			if (o)
				out[o++] = '/';
			memcpy(out + o, in, n);
			o += n;
		}
		in += n;
		in += *in == '/';
	}
	out[o] = '\0';
	return 0;
}

/* Refuses what could land outside the layer.  libarchive's SECURE flags
 * would stop these too, but only mid-extraction and with a less telling
 * message.  what: NULL for the entry's own path, else "hard link target". */
static int check_path(const char *entry, const char *path, const char *what,
		      struct img_err *eb)
{
	int depth = 0;

	if (path[0] == '/')
		return what ? img_fail(eb, "entry '%s': %s '%s' is absolute", entry, what, path) :
			      img_fail(eb, "entry '%s': absolute path", entry);
	for (const char *p = path; *p;) {
		size_t n = strcspn(p, "/");

		if (n == 2 && p[0] == '.' && p[1] == '.')
			return what ? img_fail(eb, "entry '%s': %s '%s' leaves the root", entry,
					       what, path) :
				      img_fail(eb, "entry '%s': path leaves the root ('..')", entry);
		if (n && ++depth > TW_MAX_DEPTH)
			return img_fail(eb, "entry '%s': deeper than %d levels", entry, TW_MAX_DEPTH);
		p += n;
		p += *p == '/';
	}
	return 0;
}

static int check_entry(struct archive_entry *e, struct img_err *eb)
{
	const char *path = archive_entry_pathname(e);
	const char *link = archive_entry_hardlink(e);
	char norm[PATH_MAX];
	const char *base;

	if (!path || !*path)
		return img_fail(eb, "entry with an empty or unreadable path");
	if (check_path(path, path, NULL, eb) < 0)
		return -1;
	if (link && check_path(path, link, "hard link target", eb) < 0)
		return -1;
	if (normalize(path, norm, sizeof(norm)) < 0)
		return img_fail(eb, "entry '%s': ENAMETOOLONG", path);
	if (!*norm && archive_entry_filetype(e) != AE_IFDIR)
		return img_fail(eb, "entry '%s': the root must be a directory", path);
	base = strrchr(norm, '/');
	base = base ? base + 1 : norm;
	if (!strncmp(base, WH_PREFIX, 4) && strncmp(base, WH_META_PREFIX, 8) &&
	    (!base[4] || !strcmp(base + 4, ".") || !strcmp(base + 4, "..")))
		return img_fail(eb, "entry '%s': invalid whiteout", path);
	return 0;
}

/* ---- filling a layer ---- */

struct filler {
	struct archive *disk;
	enum layer_source how;
	int diffd; /* DIR/diff */
	int cwd;   /* the caller's working directory */
	char **opaque; /* directories (normalized) marked by .wh..wh..opq */
	size_t nopaque;
	bool root_time;
	struct timespec root_mtime;
	bool umask_set;
	mode_t umask; /* the caller's */
};

static const char *xattr_import(const char *name)
{
	return img_xattr_private(name) ? NULL : name;
}

/* The union's markers stay, in the namespace kernel overlayfs reads
 * without userxattr; its other private xattrs (xino, origin, impure...)
 * describe the old mount only. */
static const char *xattr_commit(const char *name)
{
	if (!strcmp(name, XATTR_OVL_OPAQUE) || !strcmp(name, "user.overlay.opaque"))
		return XATTR_OVL_OPAQUE;
	if (!strcmp(name, XATTR_OVL_REDIRECT) || !strcmp(name, "user.overlay.redirect"))
		return XATTR_OVL_REDIRECT;
	return img_xattr_private(name) ? NULL : name;
}

static void make_whiteout(struct archive_entry *e, const char *path)
{
	archive_entry_set_hardlink(e, NULL);
	archive_entry_set_symlink(e, NULL);
	archive_entry_copy_pathname(e, path);
	archive_entry_set_filetype(e, AE_IFCHR);
	archive_entry_set_perm(e, 0);
	archive_entry_set_rdev(e, 0);
	archive_entry_set_size(e, 0);
	archive_entry_xattr_clear(e);
	archive_entry_acl_clear(e);
}

static bool dir_exists(struct filler *f, const char *dir)
{
	int fd;

	if (!*dir)
		return true;
	fd = img_open_beneath(f->diffd, dir, O_PATH | O_DIRECTORY);
	if (fd < 0)
		return false;
	close(fd);
	return true;
}

/* ".wh..wh..opq" in DIR: DIR becomes opaque once everything is written.
 * The marker is written as DIR itself when nothing made DIR yet. */
static int opaque_marker(struct filler *f, struct archive_entry *e, const char *dir,
			 struct img_err *eb)
{
	char **grown = reallocarray(f->opaque, f->nopaque + 1, sizeof(*f->opaque));

	if (!grown)
		return img_fail(eb, "%s: ENOMEM", archive_entry_pathname(e));
	f->opaque = grown;
	if (!(f->opaque[f->nopaque] = strdup(dir)))
		return img_fail(eb, "%s: ENOMEM", archive_entry_pathname(e));
	f->nopaque++;
	if (dir_exists(f, dir))
		return 0;
	make_whiteout(e, dir);
	archive_entry_set_filetype(e, AE_IFDIR);
	archive_entry_set_perm(e, 0755);
	return 1;
}

/* ".wh.NAME" in DIR becomes what overlayfs reads: a char device 0:0 NAME. */
static int oci_whiteout(struct archive_entry *e, const char *dir, const char *name,
			struct img_err *eb)
{
	char target[PATH_MAX];
	int n = snprintf(target, sizeof(target), "%s%s%s", dir, *dir ? "/" : "", name);

	if (n < 0 || (size_t)n >= sizeof(target))
		return img_fail(eb, "entry '%s': ENAMETOOLONG", archive_entry_pathname(e));
	make_whiteout(e, target);
	return 1;
}

/* Inside a directory named .wh.*: an aufs meta directory (.wh..wh.plnk,
 * strata-unionfs's .wh..wh.strata), never part of the image. */
static bool under_meta_dir(const char *norm, const char *base)
{
	for (const char *p = norm; p && p < base; p = strchr(p, '/'), p = p ? p + 1 : NULL)
		if (!strncmp(p, WH_PREFIX, 4))
			return true;
	return false;
}

/* Rewrites an entry for the layer: 1 to write it, 0 to skip it, -1. */
static int filter_entry(struct filler *f, struct archive_entry *e, struct img_err *eb)
{
	const char *path = archive_entry_pathname(e);
	char norm[PATH_MAX], *slash, *base;

	if (normalize(path, norm, sizeof(norm)) < 0)
		return img_fail(eb, "entry '%s': ENAMETOOLONG", path);
	if (tw_map_xattrs(e, f->how == LAYER_COMMIT ? xattr_commit : xattr_import) < 0)
		return img_fail(eb, "entry '%s': ENOMEM", path);
	if (!*norm) {
		/* libarchive does not restore the time of a directory that
		 * exists already, which the root always does. */
		f->root_time = archive_entry_mtime_is_set(e);
		f->root_mtime.tv_sec = archive_entry_mtime(e);
		f->root_mtime.tv_nsec = archive_entry_mtime_nsec(e);
		return 1;
	}
	slash = strrchr(norm, '/');
	base = slash ? slash + 1 : norm;
	if (under_meta_dir(norm, base))
		return 0;
	if (strncmp(base, WH_PREFIX, 4))
		return 1;
	if (slash)
		*slash = '\0';
	else
		norm[0] = '\0';
	if (!strcmp(base, WH_OPAQUE))
		return opaque_marker(f, e, norm, eb);
	if (!strncmp(base, WH_META_PREFIX, 8))
		return 0;
	return oci_whiteout(e, norm, base + 4, eb);
}

static int filler_open(struct filler *f, const char *dir, enum layer_source how,
		       struct img_err *eb)
{
	int flags = ARCHIVE_EXTRACT_SECURE_SYMLINKS | ARCHIVE_EXTRACT_SECURE_NODOTDOT |
		    ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS | ARCHIVE_EXTRACT_TIME |
		    ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_XATTR | ARCHIVE_EXTRACT_ACL;
	char diff[PATH_MAX];

	memset(f, 0, sizeof(*f));
	f->how = how;
	f->diffd = f->cwd = -1;
	/* Owners are the image's numeric ids (no name lookup: the host's
	 * /etc/passwd says nothing about the image's); only root sets them. */
	if (geteuid() == 0)
		flags |= ARCHIVE_EXTRACT_OWNER;
	if (snprintf(diff, sizeof(diff), "%s/diff", dir) >= (int)sizeof(diff))
		return img_fail(eb, "%s/diff: ENAMETOOLONG", dir);
	/* 0755 whatever the umask: a root the tar does not describe. */
	if (mkdir(diff, 0700) < 0 || chmod(diff, 0755) < 0)
		return img_fail(eb, "%s: mkdir: %s", diff, errno_name(errno));
	f->diffd = open(diff, O_PATH | O_DIRECTORY | O_CLOEXEC);
	f->cwd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (f->diffd < 0 || f->cwd < 0)
		return img_fail(eb, "%s: %s", f->diffd < 0 ? diff : ".", errno_name(errno));
	f->disk = archive_write_disk_new();
	if (!f->disk || archive_write_disk_set_options(f->disk, flags) != ARCHIVE_OK)
		return img_fail(eb, "libarchive: write_disk: ENOMEM");
	if (fchdir(f->diffd) < 0) {
		int err = errno;

		archive_write_free(f->disk);
		f->disk = NULL;
		return img_fail(eb, "%s: chdir: %s", diff, errno_name(err));
	}
	/* The directories write_disk makes implicitly get 0755 & ~umask: a
	 * strict caller's umask must not make them 0700 in the image, where
	 * other users need to traverse them.  Restored by filler_close. */
	f->umask = umask(022);
	f->umask_set = true;
	return 0;
}

/* Whiteouts inside an opaque directory hide nothing, and overlayfs takes
 * them for corruption. */
static int make_opaque(struct filler *f, const char *dir, struct img_err *eb)
{
	int fd = *dir ? img_open_beneath(f->diffd, dir, O_RDONLY | O_DIRECTORY) :
			openat(f->diffd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	char **names;
	size_t n;
	int err;

	if (fd < 0)
		return img_fail(eb, "opaque directory '%s': %s", dir, errno_name(errno));
	if (fsetxattr(fd, XATTR_OVL_OPAQUE, "y", 1, 0) < 0) {
		err = errno;
		close(fd);
		return img_fail(eb, "opaque directory '%s': setxattr: %s", dir, errno_name(err));
	}
	err = tw_list_dir(fd, &names, &n);
	for (size_t i = 0; !err && i < n; i++) {
		struct stat st;

		if (fstatat(fd, names[i], &st, AT_SYMLINK_NOFOLLOW) < 0)
			err = -errno;
		else if (S_ISCHR(st.st_mode) && st.st_rdev == 0 && unlinkat(fd, names[i], 0) < 0)
			err = -errno;
	}
	tw_free_names(names, n);
	close(fd);
	if (err)
		return img_fail(eb, "opaque directory '%s': %s", dir, errno_name(-err));
	return 0;
}

/* Finishes the layer (markers, then libarchive's deferred directory modes
 * and times) when ok; always restores the working directory. */
static int filler_close(struct filler *f, bool ok, struct img_err *eb)
{
	int r = ok ? 0 : -1;

	for (size_t i = 0; !r && i < f->nopaque; i++)
		r = make_opaque(f, f->opaque[i], eb);
	if (f->disk) {
		if (!r && archive_write_close(f->disk) != ARCHIVE_OK)
			r = img_fail(eb, "finishing layer: %s", archive_error_string(f->disk));
		archive_write_free(f->disk);
	}
	if (!r && f->root_time) {
		struct timespec ts[2] = { { .tv_nsec = UTIME_OMIT }, f->root_mtime };

		if (utimensat(f->diffd, ".", ts, 0) < 0)
			r = img_fail(eb, "layer root: utimensat: %s", errno_name(errno));
	}
	if (f->umask_set)
		umask(f->umask);
	if (f->cwd >= 0 && fchdir(f->cwd) < 0 && !r)
		r = img_fail(eb, "restoring the working directory: %s", errno_name(errno));
	for (size_t i = 0; i < f->nopaque; i++)
		free(f->opaque[i]);
	free(f->opaque);
	if (f->cwd >= 0)
		close(f->cwd);
	if (f->diffd >= 0)
		close(f->diffd);
	return r;
}

static int filler_put(void *ctx, struct archive_entry *e, int datafd, struct img_err *eb)
{
	struct filler *f = ctx;
	int k = filter_entry(f, e, eb);

	if (k <= 0)
		return k;
	if (archive_entry_filetype(e) != AE_IFREG)
		datafd = -1;
	return tw_write_entry(f->disk, e, datafd, eb);
}

/* ---- from a tar ---- */

static struct archive *open_tar(const char *tar, struct img_err *eb)
{
	struct archive *a = archive_read_new();

	if (!a) {
		img_fail(eb, "libarchive: ENOMEM");
		return NULL;
	}
	/* Any compression libarchive knows (gzip, xz, zstd...), but only tar:
	 * a zip or cpio is not an image. */
	if (archive_read_support_filter_all(a) != ARCHIVE_OK ||
	    archive_read_support_format_tar(a) != ARCHIVE_OK ||
	    archive_read_open_filename(a, tar, 1 << 16) != ARCHIVE_OK) {
		img_fail(eb, "%s", archive_error_string(a));
		archive_read_free(a);
		return NULL;
	}
	return a;
}

/* Reads the next header: 1, 0 at the end, -1. */
static int next_header(struct archive *a, struct archive_entry **e, struct img_err *eb)
{
	int r = archive_read_next_header(a, e);

	if (r == ARCHIVE_EOF)
		return 0;
	/* WARN: e.g. a name not convertible to the locale; still usable. */
	if (r == ARCHIVE_OK || r == ARCHIVE_WARN)
		return 1;
	return img_fail(eb, "%s", archive_error_string(a));
}

/* The whole archive is checked before anything is written, so a bad one
 * fails fast and names its first bad entry. */
static int prescan(const char *tar, struct img_err *eb)
{
	struct archive *a = open_tar(tar, eb);
	struct archive_entry *e;
	int r;

	if (!a)
		return -1;
	while ((r = next_header(a, &e, eb)) > 0)
		if (check_entry(e, eb) < 0) {
			r = -1;
			break;
		}
	archive_read_free(a);
	return r;
}

static int copy_blocks(struct archive *in, struct archive *out, struct archive_entry *e,
		       struct img_err *eb)
{
	for (;;) {
		const void *buf;
		size_t size;
		la_int64_t off;
		int r = archive_read_data_block(in, &buf, &size, &off);

		if (r == ARCHIVE_EOF)
			return 0;
		if (r != ARCHIVE_OK)
			return img_fail(eb, "entry '%s': %s", archive_entry_pathname(e),
					archive_error_string(in));
		if (archive_write_data_block(out, buf, size, off) != ARCHIVE_OK)
			return img_fail(eb, "entry '%s': %s", archive_entry_pathname(e),
					archive_error_string(out));
	}
}

static int extract(struct filler *f, struct archive *in, struct img_err *eb)
{
	struct archive_entry *e;
	int r;

	while ((r = next_header(in, &e, eb)) > 0) {
		char name[PATH_MAX];
		int k;

		/* Checked again: the prescan read the file once before. */
		if (check_entry(e, eb) < 0)
			return -1;
		/* Named as in the tar, even when rewritten (a whiteout). */
		snprintf(name, sizeof(name), "%s", archive_entry_pathname(e));
		k = filter_entry(f, e, eb);
		if (k < 0)
			return -1;
		if (k == 0)
			continue;
		if (archive_write_header(f->disk, e) != ARCHIVE_OK)
			return img_fail(eb, "entry '%s': %s", name, archive_error_string(f->disk));
		if (archive_entry_filetype(e) == AE_IFREG && copy_blocks(in, f->disk, e, eb) < 0)
			return -1;
		if (archive_write_finish_entry(f->disk) != ARCHIVE_OK)
			return img_fail(eb, "entry '%s': %s", name, archive_error_string(f->disk));
	}
	return r;
}

int layer_from_tar(const char *dir, const char *tar, struct img_err *eb)
{
	struct archive *in;
	struct filler f;
	struct stat st;
	int r;

	/* A pipe cannot be read twice: its entries are only checked as they
	 * are extracted, which leaves nothing behind either (the caller
	 * removes DIR), just later. */
	if (stat(tar, &st) == 0 && S_ISREG(st.st_mode) && prescan(tar, eb) < 0)
		return -1;
	in = open_tar(tar, eb);
	if (!in)
		return -1;
	r = filler_open(&f, dir, LAYER_IMPORT, eb);
	if (!r)
		r = extract(&f, in, eb);
	r = filler_close(&f, r == 0, eb) < 0 ? -1 : r;
	archive_read_free(in);
	return r;
}

/* ---- from a tree, or from code ---- */

int layer_from_dir(const char *dir, const char *src, enum layer_source how, struct img_err *eb)
{
	char *abs = realpath(src, NULL);
	struct filler f;
	int r;

	/* The walk runs with the cwd inside the new layer. */
	if (!abs)
		return img_fail(eb, "%s: %s", src, errno_name(errno));
	r = filler_open(&f, dir, how, eb);
	/* An imported tree is listed, not entered, at its mount points: a
	 * stray /proc or /sys has no place in an image. */
	if (!r)
		r = tw_walk_dir(abs, how == LAYER_IMPORT ? TW_ONE_FS : 0, filler_put, &f, eb);
	r = filler_close(&f, r == 0, eb);
	free(abs);
	return r;
}

struct layer_writer {
	struct filler f;
};

struct layer_writer *layer_writer_open(const char *dir, struct img_err *eb)
{
	struct layer_writer *lw = calloc(1, sizeof(*lw));

	if (!lw) {
		img_fail(eb, "layer writer: ENOMEM");
		return NULL;
	}
	if (filler_open(&lw->f, dir, LAYER_IMPORT, eb) < 0) {
		filler_close(&lw->f, false, eb);
		free(lw);
		return NULL;
	}
	return lw;
}

int layer_writer_put(struct layer_writer *lw, struct archive_entry *e, int datafd,
		     struct img_err *eb)
{
	return filler_put(&lw->f, e, datafd, eb);
}

int layer_writer_close(struct layer_writer *lw, bool ok, struct img_err *eb)
{
	int r = filler_close(&lw->f, ok, eb);

	free(lw);
	return r;
}

/* ---- sealing ---- */

struct sealer {
	struct archive *a;
	unsigned long long size;
};

static int seal_put(void *ctx, struct archive_entry *e, int datafd, struct img_err *eb)
{
	struct sealer *s = ctx;

	if (archive_entry_filetype(e) == AE_IFREG && !archive_entry_hardlink(e))
		s->size += (unsigned long long)archive_entry_size(e);
	return tw_write_entry(s->a, e, datafd, eb);
}

static int write_meta(const char *dir, const char *id, unsigned long long size,
		      struct img_err *eb)
{
	json_object *o = json_object_new_object();
	char path[PATH_MAX], now[32];
	int r = 0;

	img_time_now(now);
	if (snprintf(path, sizeof(path), "%s/layer.json", dir) >= (int)sizeof(path))
		r = img_fail(eb, "%s/layer.json: ENAMETOOLONG", dir);
	else if (!o || json_object_object_add(o, "id", json_object_new_string(id)) ||
	    json_object_object_add(o, "size", json_object_new_uint64(size)) ||
	    json_object_object_add(o, "created", json_object_new_string(now)))
		r = img_fail(eb, "%s: ENOMEM", path);
	else if (json_object_to_file_ext(path, o, JSON_C_TO_STRING_PRETTY) < 0)
		r = img_fail(eb, "%s: %s", path, json_util_get_last_err());
	json_object_put(o);
	return r;
}

int layer_seal(const char *dir, char id[65], unsigned long long *size, struct img_err *eb)
{
	struct sealer s = { 0 };
	struct tw_digest *dg;
	char diff[PATH_MAX];
	int fd, r;

	if (snprintf(diff, sizeof(diff), "%s/diff", dir) >= (int)sizeof(diff))
		return img_fail(eb, "%s/diff: ENAMETOOLONG", dir);
	s.a = tw_digest_writer(&dg, eb);
	if (!s.a)
		return -1;
	if (tw_walk_dir(diff, TW_CANONICAL, seal_put, &s, eb) < 0) {
		tw_digest_abort(s.a, dg);
		return -1;
	}
	if (tw_digest_finish(s.a, dg, id, eb) < 0 || write_meta(dir, id, s.size, eb) < 0)
		return -1;
	*size = s.size;
	/* One syncfs instead of an fsync per file: the layer must be on disk
	 * before a manifest may name it. */
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return img_fail(eb, "%s: %s", dir, errno_name(errno));
	r = syncfs(fd);
	if (r < 0)
		r = img_fail(eb, "%s: syncfs: %s", dir, errno_name(errno));
	close(fd);
	return r;
}

/* Internal to the image store: turning directory trees into libarchive
 * entries, one tree (tw_walk_dir) or a stack of layers merged as the union
 * shows them (tw_walk_layers), and the writers those entries go to (a tar
 * file, or a sha256 digest of the tar stream).
 *
 * Entries are produced in sorted name order with hard links resolved
 * (archive_entry_linkresolver), so the same tree always gives the same
 * stream.  Paths are "./" for the root and "./a/b" below it. */
#ifndef STRATA_RUNNER_TARBALL_H
#define STRATA_RUNNER_TARBALL_H

#include <archive.h>
#include <archive_entry.h>
#include <stdbool.h>
#include <stddef.h>

/* A caller's error buffer; img_fail() fills it and returns -1. */
struct img_err {
	char *msg;
	size_t len;
};

int img_fail(struct img_err *eb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Puts "prefix: " in front of the message already in eb; returns -1. */
int img_fail_prefix(struct img_err *eb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The xattrs the union keeps for itself: never part of an exported image. */
#define XATTR_OVL_OPAQUE "trusted.overlay.opaque"
#define XATTR_OVL_REDIRECT "trusted.overlay.redirect"
bool img_xattr_private(const char *name);

/* Deepest tree walked or imported: each level holds a file descriptor, and
 * no real root filesystem comes near it. */
#define TW_MAX_DEPTH 512

enum tw_flags {
	TW_CANONICAL = 1 << 0, /* digest form: directory mtimes zeroed */
	TW_PUBLIC = 1 << 1,    /* drop the union's private xattrs */
	TW_ONE_FS = 1 << 2,    /* do not descend into other filesystems */
};

/* Rewrites an entry's xattrs, sorted by name: map gives the name to store
 * (possibly another) or NULL to drop it.  0 or -ENOMEM. */
typedef const char *(*tw_xattr_map_fn)(const char *name);
int tw_map_xattrs(struct archive_entry *e, tw_xattr_map_fn map);

/* The names in a directory (no "." nor ".."), unsorted; 0 or -errno. */
int tw_list_dir(int dirfd, char ***names, size_t *n);
void tw_free_names(char **names, size_t n);

/* Gets every entry of a walk; datafd is open on a regular file's data and
 * -1 otherwise (also for hard links, which carry no data).  The entry
 * belongs to the walker.  Returns 0, or -1 with eb filled (ends the walk). */
typedef int (*tw_emit_fn)(void *ctx, struct archive_entry *e, int datafd, struct img_err *eb);

int tw_walk_dir(const char *dir, unsigned int flags, tw_emit_fn emit, void *ctx,
		struct img_err *eb);

/* layers: directories, top first, in overlay format (char 0:0 whiteouts,
 * trusted.overlay.opaque/redirect); emits the merged, flattened view. */
int tw_walk_layers(char *const *layers, size_t nlayers, tw_emit_fn emit, void *ctx,
		   struct img_err *eb);

/* A tw_emit_fn whose ctx is a struct archive * open for writing (a tar
 * writer or an archive_write_disk). */
int tw_write_entry(void *archive, struct archive_entry *e, int datafd, struct img_err *eb);

/* A pax (restricted: ustar unless needed) writer on fd. */
struct archive *tw_tar_writer(int fd, struct img_err *eb);

/* A tar writer whose output only feeds a sha256; tw_digest_finish closes
 * it and gives the lowercase hex digest.  Both it and tw_digest_abort free
 * the writer. */
struct tw_digest;
struct archive *tw_digest_writer(struct tw_digest **dg, struct img_err *eb);
int tw_digest_finish(struct archive *a, struct tw_digest *dg, char hex[65], struct img_err *eb);
void tw_digest_abort(struct archive *a, struct tw_digest *dg);

/* Closes and frees a writer; reports a failed close (a short write). */
int tw_close(struct archive *a, const char *what, struct img_err *eb);

/* Opens path (relative, no "..") below rootfd without following any
 * symlink: openat2 RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS. */
int img_open_beneath(int rootfd, const char *path, int flags);

/* Removes a tree without following symlinks; 0 or -errno (ENOENT is
 * success: the tree is gone either way). */
int img_remove_tree_at(int dirfd, const char *name);
int img_remove_tree(const char *path);
/* The current UTC time as "2024-01-31T12:00:00Z". */
void img_time_now(char buf[32]);

#endif

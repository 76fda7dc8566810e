/* The on-disk markers of a union layer, in both formats.
 *
 *   aufs / OCI:  ".wh.NAME" hides NAME; ".wh..wh..opq" makes a dir opaque.
 *   overlayfs:   a char device 0:0 named NAME hides NAME; the xattr
 *                {trusted,user}.overlay.opaque = "y" makes a dir opaque and
 *                {trusted,user}.overlay.redirect names where a renamed
 *                directory's lower content lives.
 * Both are always read; ufs.wh_format selects what is written. */
#ifndef STRATA_UNIONFS_WHITEOUT_H
#define STRATA_UNIONFS_WHITEOUT_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

#define WH_PREFIX ".wh."
#define WH_PREFIX_LEN 4
#define WH_OPAQUE_NAME ".wh..wh..opq"
/* aufs keeps its own meta directories in the rw branch under this prefix. */
#define WH_META_PREFIX ".wh..wh."

/* Names that are never visible nor creatable through the mount. */
static inline bool wh_is_meta_name(const char *name)
{
	return __builtin_strncmp(name, WH_PREFIX, WH_PREFIX_LEN) == 0;
}

static inline bool wh_is_overlay_whiteout(const struct stat *st)
{
	return S_ISCHR(st->st_mode) && st->st_rdev == 0;
}

/* Is NAME whited out in dirfd by an aufs marker ".wh.NAME"? */
bool wh_aufs_exists(int dirfd, const char *name);

struct dir_markers {
	bool opaque;
	char *redirect; /* malloc'ed raw xattr value, or NULL */
};

/* Reads the opaque and redirect markers of directory NAME in dirfd. */
void wh_read_dir_markers(int dirfd, const char *name, struct dir_markers *m);

/* Replaces whatever NAME is in dirfd (nothing, a file, a symlink, or a
 * directory holding only whiteouts) by a whiteout, atomically where the
 * format allows: the whiteout is built in the work dir and exchanged in. */
int wh_whiteout(int dirfd, const char *name);

/* Removes a whiteout of either format for NAME, if any. Returns 0 or -errno. */
int wh_remove(int dirfd, const char *name);

/* Marks directory NAME in dirfd opaque / sets its redirect, in the written
 * format (opaque) or as overlay xattr (redirect, both formats). */
int wh_set_opaque(int dirfd, const char *name);
int wh_set_redirect(int dirfd, const char *name, const char *redirect);

/* Deletes the contents of directory NAME in dirfd that are whiteouts or
 * opaque markers, so it can be removed; -ENOTEMPTY when anything else is
 * inside. */
int wh_clear_dir(int dirfd, const char *name);

/* xattr names the union keeps for itself: hidden from listings, refused. */
bool xattr_is_private(const char *name);

/* Removes a tree rooted at NAME in dirfd (leftovers in the work dir). */
int remove_tree_at(int dirfd, const char *name);

#endif

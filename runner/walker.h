/* Internal to the tree walks (tarball.c for one tree, tar_merge.c for
 * layers merged): the state both share, and the steps both take. */
#ifndef STRATA_RUNNER_WALKER_H
#define STRATA_RUNNER_WALKER_H

#include <limits.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "tarball.h"

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

int walker_init(struct walker *w, unsigned int flags, tw_emit_fn emit, void *ctx,
		struct img_err *eb);
void walker_fini(struct walker *w);
/* Appends "/name" to w->path; *saved is the length to cut it back to. */
int path_push(struct walker *w, const char *name, size_t *saved);
/* Builds, emits and frees the entry of dirfd/name; *fdp is the object
 * opened for data (regular) or listing (directory), -1 otherwise. */
int emit_object(struct walker *w, int dirfd, const char *name, const struct stat *st, int *fdp);
/* One level down; -1 beyond TW_MAX_DEPTH.  The caller decrements depth. */
int enter_dir(struct walker *w);

/* "/proc/self/fd/N/name": reaches an entry of a directory fd for the
 * path-only calls (lgetxattr, readlink...). */
int at_path(char *buf, size_t len, int dirfd, const char *name);
/* Adds the entries of dirfd to a growing array (without "." and ".."; and
 * without ".wh.*" union meta names when skip_meta); 0 or -errno. */
int add_names(int dirfd, bool skip_meta, char ***names, size_t *n);
/* Sorted, duplicates dropped. */
void sort_unique(char **names, size_t *n);
/* qsort() comparison of two char * names. */
int cmp_names(const void *a, const void *b);

#endif

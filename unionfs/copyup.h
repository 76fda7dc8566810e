/* Copy-up: making an object of a lower branch exist in the upper one. */
#ifndef STRATA_UNIONFS_COPYUP_H
#define STRATA_UNIONFS_COPYUP_H

#include <stdbool.h>

#include "node.h"

enum copy_data {
	COPY_DATA,    /* the content is needed (open for write, append, link) */
	COPY_NO_DATA, /* it is about to be truncated to 0: copy metadata only */
};

/* Copies n (and first its missing ancestors) to the upper branch, built in
 * the work dir and renamed into place.  No-op when n is already there.
 * Returns 0 or -errno (-EROFS on a read-only union). */
int copy_up(struct node *n, enum copy_data data);

/* Whether copy_up(n, COPY_DATA) would copy file data: n is a regular file
 * not yet in the upper branch of a writable union.  That copy-up is the
 * one that takes long (a second per GiB), which callers that must not
 * wait long hand to another thread. */
bool copy_up_copies_data(const struct node *n);

/* Copies xattrs (but the union's private ones) from one entry to another. */
int copy_xattrs(int src_dirfd, const char *src, int dst_dirfd, const char *dst);

#endif

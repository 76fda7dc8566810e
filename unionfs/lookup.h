/* namei: resolving a name in a merged directory, top branch first. */
#ifndef STRATA_UNIONFS_LOOKUP_H
#define STRATA_UNIONFS_LOOKUP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "node.h"

struct resolved {
	bool found;
	unsigned int branch;    /* topmost branch holding the name */
	struct stat st;         /* lstat of the object there */
	uint32_t gen;           /* generation (file-handle hash) for xino */
	uint64_t dir_branches;  /* dirs: every contributing branch */
	bool opaque;            /* dirs: merging stopped at an opaque marker */
	char *redirect;         /* dirs: root-relative lower path, malloc'ed */
	unsigned int redirect_branch;
	bool upper_whiteout;    /* branch 0 holds a whiteout for the name */
	uint64_t union_ino;     /* the xino number when already known, else 0 */
};

void resolved_free(struct resolved *r);

/* Resolves name in parent. Returns 0 (r->found tells whether it exists)
 * or -errno for a backing-filesystem error. */
int resolve_child(struct node *parent, const char *name, struct resolved *r);

/* resolve_child + the node table: on success *out holds a new kernel
 * reference and st is the attribute to report. -ENOENT when absent. */
int lookup_child(struct node *parent, const char *name, struct node **out, struct stat *st);
/* lookup_child for a name a listing of parent found first in branch
 * listed: the read-only branches between the top one and it held neither
 * the name nor a whiteout for it, and cannot have changed since, so only
 * the top branch (which can) is looked at again before it. */
int lookup_listed(struct node *parent, const char *name, unsigned int listed,
		  const int *dirfds, struct node **out, struct stat *st);
/* resolve_child as lookup_listed does it (dirfds: the parent's directory
 * in each branch, already open, -1 where not; or NULL). */
int resolve_listed(struct node *parent, const char *name, unsigned int listed,
		   const int *dirfds, struct resolved *r);
/* lookup_child for a name resolved earlier (r, from resolve_listed, with
 * no namespace change since: see dirahead.h): only its attributes are read
 * again, in dirfd (the parent's directory in r->branch), and r is used only
 * while the object there is still the one resolved.  -ESTALE when it is
 * not, or when r cannot be used this way: the caller looks the name up. */
int lookup_resolved(struct node *parent, const char *name, const struct resolved *r, int dirfd,
		    struct node **out, struct stat *st);

/* Updates n from a resolution (after lookup, copy-up, create). */
int node_apply(struct node *n, const struct resolved *r);

/* The attributes of n as the union reports them. */
int node_getattr(struct node *n, struct stat *st);

/* Turns a backing stat into the reported one for n. */
void node_fill_stat(const struct node *n, struct stat *st);

/* Generation of name in dirfd for the xino key: a hash of its file handle,
 * which carries the inode generation on the filesystems that have one. */
uint32_t backing_gen(int dirfd, const char *name);

/* The union inode number for an object in branch b. 0 on error (errno). */
uint64_t union_ino(unsigned int b, const struct stat *st, uint32_t gen);

/* Root directory's contributing branches (stops at an opaque root). */
void root_init_branches(void);

#endif

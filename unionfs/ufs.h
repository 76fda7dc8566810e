/* The one mounted union: branches, work directory, xino table, root node.
 * There is exactly one per daemon, so it is a global. */
#ifndef STRATA_UNIONFS_UFS_H
#define STRATA_UNIONFS_UFS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "opts.h"

struct fuse_session;
struct node;
struct xino;

struct branch {
	char *path;        /* canonical absolute path */
	int fd;            /* O_PATH|O_DIRECTORY fd of the branch root */
	enum branch_perm perm;
	bool honour_wh;    /* whiteouts/opaque markers in it hide lower names */
	uint32_t xino_id;  /* this branch's id in the xino table */
	dev_t dev;
};

struct ufs {
	struct union_config *cfg;
	struct branch br[UNION_MAX_BRANCHES]; /* [0] = top */
	unsigned int nbr;
	bool writable;          /* br[0] is rw and the mount is not ro */
	/* The upper filesystem does work when a file is closed (NFS writes
	 * back and reports errors there): only then is FLUSH worth its round
	 * trip.  Locks never need it, the kernel keeps them. */
	bool flush_on_close;
	int work_fd;            /* where copy-ups are built; -1 when read-only */
	int lock_fds[2];        /* flock()ed upper and work dirs, -1 when unused */
	struct xino *xino;
	struct node *root;
	enum whiteout_format wh_format;
	const char *ovl_xattr;  /* "trusted.overlay." or "user.overlay.": written */
	bool redirect_dir;
	struct fuse_session *se;
	uid_t uid;              /* daemon's euid: copy-up chowns only if root */
	gid_t gid;              /* daemon's egid */
	/* The kernel sends modes without the caller's umask (FUSE_DONT_MASK):
	 * the daemon applies it, unless a default ACL decides instead. */
	bool dont_mask;
	/* Taken for writing while a rename moves a node (changes parent/name),
	 * for reading while a path is built from the parent chain. */
	pthread_rwlock_t tree_lock;
};

extern struct ufs ufs;

#endif

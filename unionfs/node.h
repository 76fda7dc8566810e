/* The inode table: one node per name the kernel knows about.
 *
 * A node is identified by (parent, name) and does not hold file descriptors,
 * so memory and fds stay bounded by what the kernel references (the open-file
 * limit is far below the size of real trees).  Backing objects are reached by
 * path relative to a branch root fd, resolved with RESOLVE_BENEATH. */
#ifndef STRATA_UNIONFS_NODE_H
#define STRATA_UNIONFS_NODE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <uthash.h>

#include "ufs.h"

struct ufile;
struct preload_map;
struct dirahead;

struct node {
	struct node *parent;     /* holds a reference; NULL only for the root */
	char *name;
	uint64_t ino;            /* st_ino the union reports (from xino) */
	/* Kernel lookups + children in the table + temporary references.
	 * Dropped to zero only under the parent's lock, so a concurrent lookup
	 * in the parent's table never finds a dying node. */
	uint64_t refs;
	bool hashed;             /* present in the parent's child table */
	mode_t type;             /* S_IFMT of the visible object */
	uint8_t branch;          /* topmost branch that holds the object */
	bool opaque;             /* dir: nothing below `dir_lowest` contributes */
	uint64_t dir_branches;   /* dir: bit b set when branch b contributes */
	char *redirect;          /* dir: lower path for branches > redirect_branch */
	uint8_t redirect_branch;
	/* dir: O_PATH fds of the directory per branch (-1: not cached), so a
	 * lookup inside it starts there instead of walking from the branch
	 * root. Bounded globally; closed when the node is freed. */
	int *dirfds;
	/* A regular file with several names in the upper branch is one node,
	 * whatever name it is reached by (so one kernel inode and one page
	 * cache), and holds an O_PATH fd of its own: its names come and go. */
	int self_fd;
	UT_hash_handle link_hh; /* in the table of such nodes, by backing_ino */
	bool in_links;
	/* Backing identity of the object in `branch`, to notice replacement. */
	ino_t backing_ino;
	pthread_mutex_t lock;    /* guards the child table and the fields above */
	/* Serialises copy-up of this node. Separate from `lock`, which a
	 * rename takes under the tree lock while copy-up takes the tree lock
	 * under this one. */
	pthread_mutex_t copy_lock;
	struct node *children;   /* uthash head of the child table */
	/* Open file handles (file.c), under `lock`: once the name is gone,
	 * they are the only way to the object. */
	struct ufile *open_files;
	/* How the kernel does the I/O of those handles (file.c), under `lock`.
	 * A FUSE inode is either passed through to one registered backing
	 * file (backing_id, while pt_opens > 0) or uses the page cache, never
	 * both at once: the kernel fails an open that breaks the rule. */
	int backing_id;
	uint32_t pt_opens;
	uint32_t cached_opens;
	/* The branch of the backing file.  In a writable union not 0 only for
	 * a lower copy opened to execute it: nothing may then change the data
	 * until those handles close (file_begin_change()). */
	uint8_t backing_branch;
	/* Opens for writing and truncates between file_begin_change() and
	 * file_end_change(): no lower copy is passed through meanwhile. */
	uint32_t changing;
	/* Written through passthrough since the page cache last served it. */
	bool page_cache_stale;
	/* Its data was handed to the kernel's page cache at an open, and which
	 * windows random reads hit (preload.c), under `lock`. */
	bool preloaded;
	struct preload_map *preload_map;
	/* dir: its listing, prepared ahead of a walk (dirahead.h), under
	 * `lock`. */
	struct dirahead *ahead;
	/* The object's last attributes, kept when its name went away, for an
	 * fstat() through a descriptor the kernel still has. */
	struct stat gone_st;
	bool has_gone_st;
	UT_hash_handle hh;
};

/* Sets up the root node from the branch roots. */
int node_table_init(void);
void node_table_destroy(void);

static inline uint64_t node_id(const struct node *n)
{
	return n == ufs.root ? 1 : (uint64_t)(uintptr_t)n;
}

struct node *node_from_id(uint64_t id);

/* Finds the child `name` of `parent` in the table, creating it when absent;
 * returns it with one temporary reference. NULL with errno on ENOMEM. */
struct node *node_get_child(struct node *parent, const char *name, bool *created);
/* Finds without creating; NULL when absent. Returns a temporary reference. */
struct node *node_find_child(struct node *parent, const char *name);

void node_ref(struct node *n);
void node_unref(struct node *n);
/* Drops `count` references at once (FORGET). */
void node_unref_many(struct node *n, uint64_t count);

/* Moves n to (newparent, newname) in the table; caller holds tree_lock for
 * writing.  A node already at the destination is unhashed first.  *drop is
 * set to a node the caller must node_unref() once the tree lock is released. */
int node_move(struct node *n, struct node *newparent, const char *newname,
	      struct node **drop);
/* Removes n from its parent's table (its name is gone); it lives on until
 * its references drop. Caller holds tree_lock for writing. */
void node_unhash(struct node *n);
/* Remembers st (the object as it was) for a node whose name is going. */
void node_set_gone(struct node *n, const struct stat *st);

/* Replaces n's redirect (NULL: none), under the tree lock. */
void node_set_redirect(struct node *n, const char *redirect, unsigned int branch);

/* Path of n inside branch b, relative to the branch root ("." for the
 * root), following directory redirects. Caller holds tree_lock for reading.
 * Returns a malloc'ed string or NULL (ENOMEM). */
char *node_path(const struct node *n, unsigned int b);

/* Opens the directory n in branch b: O_PATH|O_DIRECTORY, or flags given.
 * Served from the node's fd cache when it can be.  Returns a new fd the
 * caller closes, or -errno. */
int node_open_dir(struct node *n, unsigned int b, int flags);
/* The directory n in branch b as an O_PATH fd without a new descriptor
 * when it can be: n's cached fd, borrowed (*owned false) for as long as
 * the caller holds a reference to n; else a new fd (*owned true) the
 * caller closes.  -errno on failure.  A dup and a close cost ~2.5 us on a
 * VM whose syscalls cost ~1 us, and lookups use one per branch. */
int node_dir_fd(struct node *n, unsigned int b, bool *owned);
static inline void node_dir_fd_done(int fd, bool owned)
{
	if (owned && fd >= 0)
		close(fd);
}
/* fstat of the directory n in its top branch through the fd cache only (it
 * follows the object after its name is gone); -ENOENT when not cached. */
int node_fstat_cached_dir(const struct node *n, struct stat *st);
/* Opens parent of n in branch b (O_PATH|O_DIRECTORY) and returns the fd;
 * *name is set to a malloc'ed copy of n's name, consistent with the fd. */
int node_open_parent(struct node *n, unsigned int b, char **name);

/* Where a node's object is, for the *at() calls: (dirfd, name), or for a
 * node with its own fd (AT_FDCWD, "/proc/self/fd/N") to be followed. */
struct node_loc {
	int dirfd;
	const char *name;
	int nofollow;    /* AT_SYMLINK_NOFOLLOW, or 0 for the /proc path */
	bool is_self;
	bool owns_dirfd;     /* else dirfd is pinned's cached fd */
	struct node *pinned; /* the parent whose fd is borrowed, referenced */
	char *owned_name;
	char proc[40];
};

/* Locates n's object in branch b. Returns 0 or -errno; release with
 * node_loc_done(). */
int node_locate(struct node *n, unsigned int b, struct node_loc *loc);
void node_loc_done(struct node_loc *loc);

/* The shared node of the upper hard-linked file with inode ino, with a
 * new reference, or NULL. */
struct node *node_find_linked(ino_t ino);
/* Makes n the shared node of its upper object (opens its own fd, enters
 * it in the table). 0 or -errno; a no-op when it already is. */
int node_make_shared(struct node *n);

/* Opens path (relative to branch root) beneath branch b: openat2 with
 * RESOLVE_BENEATH|RESOLVE_NO_MAGICLINKS, so no symlink leads outside; paths
 * longer than PATH_MAX are resolved in pieces.  Returns fd or -errno. */
int branch_open(unsigned int b, const char *path, int flags);
/* openat2(dirfd, path) with RESOLVE_BENEATH|RESOLVE_NO_MAGICLINKS (path
 * shorter than PATH_MAX).  Returns fd or -errno. */
int openat2_beneath(int dirfd, const char *path, int flags);

#endif

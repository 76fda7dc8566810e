/* A merged directory listing (readdir.c): every contributing branch read
 * top-down, each name once, whiteouts and meta names dropped. */
#ifndef STRATA_UNIONFS_LISTING_H
#define STRATA_UNIONFS_LISTING_H

#include <stdbool.h>
#include <stdint.h>

#include <uthash.h>

#include "node.h"
#include "opts.h"

struct listed {
	char *name;
	uint64_t ino;        /* 0 until a plain READDIR needs it */
	unsigned char type;
	unsigned int branch; /* the topmost branch holding the name */
	bool visible;        /* false: a whiteout that hides lower branches */
	UT_hash_handle hh;
};

struct listing {
	struct listed **order; /* visible entries in output order */
	size_t count, cap;
	struct listed *seen;   /* every name met so far, by name */
	/* The directory read in each branch (-1: none), kept open while the
	 * names are looked up, so that a lookup needs no open of its own.
	 * Only as many as listing_keep_fd() allows are kept. */
	int fds[UNION_MAX_BRANCHES];
};

/* An empty listing, which listing_free() may be called on. */
void listing_init(struct listing *l);
/* Lists the merged directory n (l need not be initialised). 0 or -errno. */
int listing_build(struct node *n, struct listing *l);
/* Closes the listing's directories; the names stay. */
void listing_close_fds(struct listing *l);
void listing_free(struct listing *l);

#endif

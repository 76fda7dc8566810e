/* Directory read-ahead: the listings a tree walk will ask for next,
 * prepared by an otherwise idle CPU.
 *
 * A walk (find, du, ls -R, tar) lists a directory, then each of its
 * subdirectories in turn, and waits for every reply.  The daemon's work
 * for a listing, a stat, a file handle and an xino record per name, is on
 * the walk's critical path while the other CPU idles.  So when a listing
 * names subdirectories, one low-priority thread (SCHED_IDLE and the idle
 * I/O class: it takes only what nobody else wants) lists them and resolves
 * their names ahead of the walk, the first-named first, as a depth-first
 * walk goes.  The READDIRPLUS that then comes for one only reads each
 * name's attributes again (lookup_resolved()).
 *
 * What is prepared never goes stale unnoticed.  Every request that may
 * change a name, a branch or a directory marker (a create, remove, rename,
 * link, copy-up, attribute or xattr change) bumps a generation before its
 * reply is written, from the I/O layer, and a prepared listing is used
 * only if no bump happened since it was begun.  Attributes, which change
 * without the daemon (writes passed through to the backing file), are
 * never prepared. */
#ifndef STRATA_UNIONFS_DIRAHEAD_H
#define STRATA_UNIONFS_DIRAHEAD_H

#include <stdbool.h>
#include <stddef.h>

#include "listing.h"
#include "lookup.h"
#include "node.h"

/* A prepared listing: the names, and each name's resolution (ent[i] for
 * list.order[i]; ent[i].found false where it could not be made). */
struct dirahead {
	uint64_t gen;
	struct listing list;
	struct resolved *ent;
};

/* From the I/O layer, for each request as read (per thread), and before
 * each reply is written: the bump, when the request may change names. */
void dirahead_note_request(const void *buf, size_t len);
void dirahead_note_reply(void);

/* The subdirectories a listing reply just named, in its order: prepares
 * them (takes references of its own). */
void dirahead_want(struct node *const *dirs, size_t count);

/* dir's prepared listing, if one is ready and still exact: the caller owns
 * it (dirahead_free()).  NULL otherwise. */
struct dirahead *dirahead_take(struct node *dir);
/* Frees count resolutions and their array (a listing's `ent`), or a
 * whole prepared listing. */
void dirahead_free_entries(struct resolved *ent, size_t count);
void dirahead_free(struct dirahead *a);

/* Stops the thread and drops everything prepared (before the node table
 * goes). */
void dirahead_stop(void);

#endif

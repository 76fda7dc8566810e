/* xino: the persistent translation from (branch, backing inode) to the inode
 * number the union reports, so st_ino is unique across the mount, does not
 * change at copy-up and survives unmount/remount.  Format in docs/unionfs.md.
 *
 * Thread-safe.  The table is the only source of st_ino values. */
#ifndef STRATA_UNIONFS_XINO_H
#define STRATA_UNIONFS_XINO_H

#include <stdint.h>
#include <sys/types.h>

struct xino;

/* Identity of one backing inode.  `gen` distinguishes a reused inode number
 * (ext4 recycles them quickly): pass the inode generation when known, else a
 * hash of the file handle, else 0. */
struct xino_key {
	uint32_t branch_id;  /* from xino_add_branch(), stable across remounts */
	uint64_t ino;        /* st_ino on the backing filesystem */
	uint32_t gen;
};

/* Opens or creates the table in directory `dir` (created 0700 if missing;
 * its parent must exist); dir == NULL keeps the table in memory only (no
 * persistence; used for -o xino=off-with-uniqueness and in tests).  Returns
 * NULL with errno set: EBUSY when another open table (another mount) holds
 * `dir`, EUCLEAN when its content is not a table of this version. */
struct xino *xino_open(const char *dir);
void xino_close(struct xino *x);

/* A stable 32-bit id for a branch, from its canonical absolute path; the
 * same path gives the same id on every mount (hash collisions are resolved
 * through the paths stored on disk), and registering a path again returns
 * its id. Registers the branch with the table (opens its backing file).
 * Returns 0 on success, -errno on failure. */
int xino_add_branch(struct xino *x, const char *canonical_path, uint32_t *branch_id);

/* Returns the union inode number for key, allocating a fresh one (never 0 or
 * 1, never reused) the first time the key is seen, or when the stored gen
 * differs.  Backing numbers >= 2^36 are mapped in memory only (new numbers
 * after a remount).  Returns 0 on failure (errno set; EINVAL for a branch
 * id not registered with xino_add_branch). */
uint64_t xino_get(struct xino *x, const struct xino_key *key);

/* Records that key must report `ino` (copy-up: the upper copy keeps the
 * lower file's number); the allocator never hands out `ino` afterwards.
 * Returns 0 or -errno (-EINVAL for ino 0 or an unregistered branch). */
int xino_set(struct xino *x, const struct xino_key *key, uint64_t ino);

#endif

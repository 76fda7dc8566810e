/* difftest: differential test of strata-unionfs against kernel overlayfs.
 *
 * Two identical layer sets are built from one seed; copy A is mounted with
 * kernel overlayfs, copy B with strata-unionfs.  A seeded random sequence of
 * operations is applied to both through the same relative paths and every
 * observable result (return value, errno, data, listings, modes, sizes, link
 * counts, xattrs) is compared.  The first difference is reported with the
 * seed and the step so it can be replayed with --seed S --steps K+1. */
#ifndef STRATA_DIFFTEST_H
#define STRATA_DIFFTEST_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <limits.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/types.h>

#define NHELD 4		/* file descriptors kept open across steps */
#define MAX_FILE (4 << 20)	/* bytes compared per regular file */

/* ---- util.c ---------------------------------------------------------- */

struct rng {
	uint64_t s;
};

void rng_seed(struct rng *r, uint64_t seed);
uint64_t rng_next(struct rng *r);
uint64_t rng_below(struct rng *r, uint64_t n);	/* 0 <= x < n, n > 0 */
bool rng_pct(struct rng *r, unsigned int pct);	/* true with pct% chance */
void rng_fill(struct rng *r, unsigned char *buf, size_t len);

void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void *xmalloc(size_t n);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
const char *errname(int err);

/* Growable byte buffer. */
struct buf {
	char *p;
	size_t len, cap;
};

void buf_add(struct buf *b, const void *data, size_t len);
void buf_printf(struct buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void buf_reset(struct buf *b);
void buf_free(struct buf *b);
const char *buf_str(struct buf *b);	/* NUL-terminated view */

/* Relative path helpers: the mount root is ".", other paths "a/b". */
char *path_join(const char *dir, const char *name);
char *path_parent(const char *path);
bool path_is_under(const char *path, const char *dir);	/* dir or below */

/* rm -rf that never crosses a mount point; false on error (errno set). */
bool rm_tree(const char *path);

/* The name pool shared by the layer generator and the operation generator,
 * so new names keep colliding with whiteouts and lower entries. */
const char *pick_name(struct rng *r);
/* A symlink target that can never resolve outside the symlink's own
 * subtree: relative without "..", or absolute below a missing directory. */
char *pick_target(struct rng *r);
mode_t pick_file_mode(struct rng *r);

/* --avoid: argument patterns left out (to get past a known, open bug) */
enum {
	AVOID_SETID = 1,	/* S_ISUID/S_ISGID in generated modes */
	AVOID_LONGNAME = 2,	/* 255-byte names */
	AVOID_NOREPLACE = 4,	/* RENAME_NOREPLACE */
	AVOID_EXCHANGE = 8,	/* RENAME_EXCHANGE */
};
extern unsigned int avoid;
unsigned int avoid_lookup(const char *name);	/* 0 if unknown */
const char *avoid_names(void);
mode_t pick_dir_mode(struct rng *r);

/* ---- layers.c -------------------------------------------------------- */

/* Build BASE/l1 (upper lower) and BASE/l2 (bottom) from the seed. */
void gen_layers(const char *base, uint64_t seed);

/* ---- difftest.c ------------------------------------------------------ */

struct side {
	const char *name;	/* "overlay" / "strata" in reports */
	char *base;		/* TMP/A or TMP/B */
	char *mnt;
	int root;		/* O_DIRECTORY fd of the mount root, -1 if none */
	bool fuse;		/* mounted with strata-unionfs */
	bool mounted;
	int held[NHELD];	/* -1 when unused */
};

struct entry {
	char *path;
	mode_t type;		/* S_IFREG, S_IFDIR, ... */
};

struct op;

struct ctx {
	uint64_t seed;
	long step;		/* current step, -1 during setup/final phases */
	const char *phase;	/* "run", "remount", ... */
	char *opdesc;		/* description of the current operation */
	bool verbose;
	struct side a, b;
	struct rng rng;
	/* A's tree, sorted by path, refreshed after every step. */
	struct entry *ents;
	size_t nents, cap;
	char *held_path[NHELD];	/* what the held fds were opened on */
	unsigned int disabled;	/* bitmask of disabled operations */
	bool recheck;		/* comparing state: worth a second look later */
	FILE *record;		/* --record: every operation, as text */
	struct op *replay;	/* --replay: the operations to run */
	size_t nreplay, ireplay;
};

extern atomic_long progress;	/* bumped by every compare; watchdog */
extern atomic_bool dying;	/* the watchdog is reporting and cleaning up */

struct options {
	uint64_t seed;
	long steps, runs, full_every, after_remount, hang_timeout, inject;
	bool verbose, keep, self_check, no_cross, after_set, run_only, minimize;
	char *avoid;
	const char *record, *replay;
	unsigned int disabled;
	const char *strata;
};
extern struct options opt;
extern struct ctx *gctx;
extern char *tmpdir;

/* Report a difference and exit 1 (cleanup runs from atexit). */
void mismatch(struct ctx *c, const char *path, const char *fmt_a,
	      const char *fmt_b) __attribute__((noreturn));
void mismatchf(struct ctx *c, const char *path, const char *what,
	       const char *va, const char *vb) __attribute__((noreturn));

void fail(struct ctx *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3), noreturn));
void print_where(struct ctx *c);

/* ---- mounts.c -------------------------------------------------------- */

void mount_side(struct ctx *c, struct side *s, bool strata, const char *work);
void unmount_both(struct ctx *c);	/* and wait for the daemon to exit */
void cleanup(void);			/* idempotent; atexit and watchdog */
void report_dead_daemon(void);
void crash_handler(int sig);
void *guard(void *arg);			/* the watchdog thread */
extern sigset_t guarded;		/* the signals it handles */

/* ---- compare.c ------------------------------------------------------- */

void compare_path(struct ctx *c, const char *path, bool listing);
void compare_tree(struct ctx *c);
void scan_tree(struct ctx *c);	/* refresh c->ents from side A */
/* Record every path's st_ino in both sides; then check it is unchanged. */
struct ino_map;
struct ino_map *ino_record(struct ctx *c);
void ino_check(struct ctx *c, struct ino_map *m);
void ino_free(struct ino_map *m);
/* Within each side, do the two names refer to the same inode?  Must agree. */
void compare_same_inode(struct ctx *c, const char *p1, const char *p2);

/* ---- ops.c ----------------------------------------------------------- */

int op_lookup(const char *name);	/* index or -1 */
const char *op_name(int op);
int op_count(void);
void run_step(struct ctx *c);
/* record.c */
struct op *load_ops(const char *path, size_t *n);
void minimize(char **args, int nargs) __attribute__((noreturn));

#endif

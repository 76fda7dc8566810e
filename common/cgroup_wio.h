/* Internal to the cgroup write side (cgroup_write.c creates and limits,
 * cgroup_kill.c joins, kills, removes and finds; cgroup_wio.c has the
 * file and directory steps both take). */
#ifndef STRATA_CGROUP_WIO_H
#define STRATA_CGROUP_WIO_H

#include <dirent.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "cgroup_write.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))
#define STRATA "strata"
#define ID_MAX 128
#define NUM_BUF 64                    /* one number, or "50000 100000" */
#define LIST_BUF 8192                 /* a cpuset list of 1024 CPUs, "0,2,4,..." */
#define CTRL_BUF 512                  /* cgroup.controllers, cgroup.subtree_control */
#define PROCS_MAX (16u << 20)         /* cgroup.procs of a huge container */
#define KILL_WAIT_NS 2000000000LL     /* for SIGKILLed processes to leave */
#define RMDIR_WAIT_NS 1000000000LL    /* for the kernel to drop a cgroup's last ref */
#define POLL_NS 10000000L
#define MAX_DEPTH 32                  /* cgroups a container nests below its own */
#define PERIOD_DEFAULT 100000
#define SHARES_MIN 2                  /* v1 cpu.shares range, as the kernel clamps */
#define SHARES_MAX 262144
#define MAX_DIRS (CG_NCTRL + 2)       /* dir[], v2_dir, dev_dir */


struct errbuf {
	char *s;
	size_t len;
};

/* An open cgroup directory and its path, for *at() calls and messages. */
struct cgd {
	int fd;
	char path[PATH_MAX];
};

typedef int (*entry_fn)(int dfd, const char *name, void *arg);

/* Formats "<what>: <errno name of -rc>" into e (may be NULL); returns rc. */
int fail(struct errbuf *e, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
long long now_ns(void);
/* One POLL_NS sleep. */
void nap(void);
/* An id is one safe path component: [A-Za-z0-9_.-], 1-ID_MAX, no leading '.'. */
bool id_ok(const char *id);
/* Splits ".../strata/<id>" into parent and id; -EINVAL for anything else. */
int split_path(const char *path, char *parent, size_t len, const char **id);
/* False for a plain directory tree standing in for cgroupfs. */
bool on_cgroupfs(int fd);
/* Opens name below parent (or the absolute name when parent is NULL). */
int cgd_open(struct cgd *d, const struct cgd *parent, const char *name, struct errbuf *e);
void cgd_close(struct cgd *d);
/* One value, one write(). */
int put(const struct cgd *d, const char *name, const char *val, struct errbuf *e);
int putf(const struct cgd *d, const char *name, struct errbuf *e, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* A small file, trailing newline dropped. */
int get(const struct cgd *d, const char *name, char *buf, size_t len, struct errbuf *e);
/* 1 when name exists below d, 0 when not, or -errno. */
int has_file(const struct cgd *d, const char *name, struct errbuf *e);
/* Is name a word of a controller list ("+name" counts)? */
bool has_word(const char *list, const char *name);
/* Calls fn for each entry of dfd of the given type (DT_REG, DT_DIR). */
int for_each(int dfd, unsigned char type, entry_fn fn, void *arg);
/* A stand-in tree's new directory gets what the kernel would give it. */
int populate(const struct cgd *parent, struct cgd *d, struct errbuf *e);
/* Visits a .../strata/<id> directory and every cgroup below it, children
 * first; anything else is refused. */
int walk_path(const char *path, entry_fn visit, void *arg);
/* The pids in cgroup.procs (or tasks) of dfd: the count, *out malloc'ed. */
int read_pids(int dfd, pid_t **out);
/* dir[] for each controller strata/ hands down to its children (v2). */
int v2_assign(const struct cg_host *h, struct cg_container *c, struct errbuf *e);

#endif

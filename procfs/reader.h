/* Who is reading, and what they see.
 *
 * A FUSE request carries the reading thread's pid.  That pid is mapped to a
 * group (one per distinct set of cgroup paths) through a per-pid cache whose
 * entries are validated with a pidfd (or the process start time) so a
 * recycled pid never inherits another process's view, and re-resolved after
 * the TTL so a process moved to another cgroup is noticed.  Each group keeps
 * its cgroup values and the rendered texts for the TTL; rendering happens
 * outside every lock but the group's own, and no lock is held across I/O. */
#ifndef STRATA_PROCFS_READER_H
#define STRATA_PROCFS_READER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "cgroup.h"
#include "loadavg.h"
#include "view.h"

/* An immutable rendered file, shared by every open that got it. */
struct pf_text {
	unsigned int refs; /* atomic */
	size_t len;
	char *data;
};

void pf_text_get(struct pf_text *t);
void pf_text_put(struct pf_text *t);

/* host: the detected layout (kept by the caller for the process's life);
 * ttl_ms: --cache-ms; loadavg: sampler on (else host load averages). */
int reader_init(const struct cg_host *host, unsigned int ttl_ms, bool loadavg);
void reader_fini(void);

/* The text of file f as thread pid sees it now: a counted reference in *out.
 * pid 0 (a reader outside our pid namespace) gets the host's file.
 * may_block false: only what is cached (no file I/O); -EWOULDBLOCK when
 * the answer needs I/O.  Returns 0 or -errno. */
int reader_snapshot(pid_t pid, enum pf_file f, bool may_block, struct pf_text **out);

/* For the sampler: every known group, each with a reference taken
 * (release with reader_group_put); *out is malloc'ed. Returns the count. */
struct pf_group;
int reader_groups(struct pf_group ***out);
void reader_group_put(struct pf_group *g);
const struct cg_proc *reader_group_proc(const struct pf_group *g);
/* Folds one sample into g's decaying averages (seeds them the first time). */
void reader_group_add_sample(struct pf_group *g, const struct pf_load_sample *s);

/* Drops pid entries and idle groups nobody used for a while. */
void reader_sweep(void);

#endif

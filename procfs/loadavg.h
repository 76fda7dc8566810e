/* What the daemon reads about processes from /proc: start times (to tell
 * a recycled pid apart), the init of a pid namespace (a container's boot
 * time), and per-cgroup load averages.
 *
 * Load averages are computed the way the kernel computes the host's
 * (kernel/sched/loadavg.c): every 5 seconds the number of runnable (R) and
 * uninterruptible (D) tasks is folded into three exponentially decaying
 * averages with the kernel's 1, 5 and 15 minute factors.  The first sample
 * seeds all three, so a new container shows its current load at once
 * instead of climbing from zero. */
#ifndef STRATA_PROCFS_LOADAVG_H
#define STRATA_PROCFS_LOADAVG_H

#include <stdbool.h>
#include <sys/types.h>

#include "cgroup.h"

#define PF_LOAD_INTERVAL_S 5

/* Parent pid and start time (clock ticks since boot, field 22) of a task
 * from /proc/PID/stat; either pointer may be NULL. Returns 0 or -errno. */
int pf_proc_stat(pid_t pid, pid_t *ppid, uint64_t *start);

/* Start of pid 1 of pid's pid namespace, in seconds since host boot: the
 * container's boot for uptime.  Found through pid's ancestors in the same
 * namespace (whose top has NSpid ...1), else by one scan of /proc, and
 * remembered per namespace while that init lives.  False when unknown. */
bool pf_pidns_init_start(pid_t pid, long clk_tck, double *out);

struct pf_load_sample {
	unsigned int active;  /* R + D */
	unsigned int running; /* R */
	unsigned int total;   /* tasks (threads) in the cgroup */
	pid_t last_pid;       /* newest task, as numbered in its own pid namespace */
};

struct pf_load {
	bool seeded;
	double avg[3];
	struct pf_load_sample last;
};

/* Counts the tasks of p's cgroup by state.  Returns 0 or -errno. */
int pf_load_sample(const struct cg_host *h, const struct cg_proc *p, struct pf_load_sample *s);
/* Folds s into l (pure). */
void pf_load_update(struct pf_load *l, const struct pf_load_sample *s);

/* The background thread: samples every group every 5 s when sample is
 * true, and sweeps idle reader state either way. */
int pf_sampler_start(const struct cg_host *h, bool sample);
void pf_sampler_stop(void);

#endif

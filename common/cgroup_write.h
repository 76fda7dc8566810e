/* Creating, limiting, joining and removing a container's cgroups, on v1,
 * v2 and hybrid hosts (see cgroup.h for the layout detection). */
#ifndef STRATA_CGROUP_WRITE_H
#define STRATA_CGROUP_WRITE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "cgroup.h"

struct cg_limits {
	uint64_t memory;       /* bytes; 0 = no limit */
	uint64_t memory_swap;  /* docker semantics: memory+swap total; 0 = default, UINT64_MAX = unlimited */
	int64_t cpu_quota_us;  /* -1 = none (from --cpus: cpus * period) */
	uint64_t cpu_period_us;/* 0 = 100000 */
	uint64_t cpu_shares;   /* 0 = default; v2 converted to cpu.weight */
	char cpuset_cpus[128]; /* "" = inherit */
	int64_t pids_max;      /* 0 = no limit */
};

/* The cgroups made for one container: one directory per hierarchy that
 * carries a limit (plus the pids/cpu hierarchies used to find and kill its
 * processes), all named ".../strata/<id>".
 *
 * v1: one directory per hierarchy; co-mounted controllers ("cpu,cpuacct")
 * share one, so dir[CG_CPU] and dir[CG_CPUACCT] hold equal strings.  Always
 * made when the host has them: pids (finding and killing processes),
 * cpuacct (the usage strata-procfs shows) and devices (dev_dir, for
 * cg_container_devices); memory, cpu and cpuset only for a limit.  v2: one directory, and dir[c] equals v2_dir for each controller
 * enabled there.  Hybrid: the v1 ones plus v2_dir in the unified hierarchy
 * even when it holds no controller (its cgroup.kill ends the container in
 * one write); made only if that mount lets us. */
struct cg_container {
	char *dir[CG_NCTRL];   /* absolute directory per controller, NULL if none made */
	char *v2_dir;          /* the unified-hierarchy directory, if made */
	char *dev_dir;         /* the v1 devices hierarchy's, made whenever the host has one */
	bool has_swap;         /* a swap limit was written (false: memory only, or
				* swap accounting off: no memsw / memory.swap.max) */
};

/* Creates the container's cgroups under <hierarchy>/strata/<id> and writes
 * the limits (on v1 cpuset.mems is copied from the parent). On failure
 * nothing is left behind; err gets a one-line message naming the file and
 * the value, to which the caller may prefix its flag:
 * 'writing "1023" to /sys/fs/cgroup/cpuset/strata/ID/cpuset.cpus: ERANGE'.
 * Returns 0 or -errno: -EINVAL bad id or limits (checked before anything is
 * made), -ENODEV a limit whose controller the host lacks, -EEXIST the id's
 * cgroup exists already (never adopted).  id: [A-Za-z0-9_.-], 1-128, no
 * leading '.'.  strata/ itself is shared and stays.
 * memory_swap: 0 with a memory limit means swap = memory (docker's default,
 * memsw = 2 * memory); UINT64_MAX no swap limit; else >= memory, and only
 * with a memory limit.  cpu_quota_us: -1, or 1000 and up; period 1000 to
 * 1000000.  pids_max <= 0: no limit. */
int cg_container_create(const struct cg_host *h, const char *id, const struct cg_limits *l,
			struct cg_container *c, char *err, size_t errlen);
/* Docker's default device policy on c, before any process joins it: any
 * node may be made (mknod), but only c 1:3 null, 1:5 zero, 1:7 full,
 * 1:8 random, 1:9 urandom, 5:0 tty, 5:1 console, 5:2 ptmx and 136:* (the
 * ptys) may be opened.  v1: devices.deny "a", then devices.allow lines in
 * dev_dir; cgroup2: a BPF_PROG_TYPE_CGROUP_DEVICE program attached to
 * v2_dir (BPF_F_ALLOW_MULTI: a host's own device programs still apply).
 * Hybrid hosts get v1's only (it covers every process).  Returns 0, or
 * -errno with err set: -ENODEV when
 * c has neither a devices cgroup nor a cgroup2 directory (nothing could
 * enforce it, so the caller should refuse to run).  A stand-in tree gets
 * the v1 writes; a cgroup2 stand-in gets no program. */
int cg_container_devices(const struct cg_container *c, char *err, size_t errlen);
/* Moves pid (the whole process) into every cgroup of c; with skip_v2, into
 * all but v2_dir (the process was born there: clone3 CLONE_INTO_CGROUP). */
int cg_container_attach(const struct cg_container *c, pid_t pid, bool skip_v2, char *err,
			size_t errlen);
/* Was a process of c killed by the OOM killer? (memory.events oom_kill /
 * memory.oom_control oom_kill, kernel 4.13+: -ENODATA before). false
 * without a memory cgroup. */
int cg_container_oom_killed(const struct cg_container *c, bool *killed);
/* Pids still in c (from the pids, else cpu, else memory hierarchy, else
 * v2_dir). Returns the count (*pids malloc'ed, free it) or -errno. */
int cg_container_pids(const struct cg_container *c, pid_t **pids);
/* Kills what is left (SIGKILL; cgroup.kill on v2) and removes every
 * directory and any cgroup the container made below it, waiting (about
 * 2 s at most) for the kernel to empty them. Refuses (-EINVAL) any path
 * not of the form .../strata/<id>. On success c is freed and zeroed, so a
 * second call is a no-op; on failure (-EBUSY: a process would not die) c is
 * kept for a retry. Zombies do not count: their parent still has to reap
 * them. Failures are logged (log_warn) naming the directory. */
int cg_container_destroy(struct cg_container *c);
/* Rebuilds c from a host and an id (for `strata rm` after a crash).
 * -ENOENT when no hierarchy has the id's directory. */
int cg_container_find(const struct cg_host *h, const char *id, struct cg_container *c);
void cg_container_free(struct cg_container *c);

#endif

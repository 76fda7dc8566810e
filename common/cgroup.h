/* cgroup access shared by strata-procfs and the runner: v1, v2 and hybrid.
 *
 * The layout is read once (cg_host_detect) from /proc/self/mountinfo, or
 * from a directory standing in for /sys/fs/cgroup (tests, --cgroup-root).
 * A process's cgroups come from /proc/PID/cgroup as the daemon sees it, so
 * a reader in a cgroup namespace cannot make us resolve the wrong group.
 * Every reader falls back per field: a missing or unreadable file leaves
 * that field's `has_` flag false and never fails the whole read. */
#ifndef STRATA_CGROUP_H
#define STRATA_CGROUP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

enum cg_layout {
	CG_LAYOUT_NONE,   /* no cgroup filesystem */
	CG_LAYOUT_V1,     /* only v1 hierarchies */
	CG_LAYOUT_V2,     /* only the unified hierarchy */
	CG_LAYOUT_HYBRID, /* v1 hierarchies plus a cgroup2 mount */
};

/* The controllers Strata reads or sets. */
enum cg_ctrl {
	CG_MEMORY,
	CG_CPU,     /* v1 cpu (quota, shares); v2 cpu (cpu.max, cpu.stat) */
	CG_CPUACCT, /* v1 only; on v2 the same data is in cpu.stat */
	CG_CPUSET,
	CG_IO,      /* v1 blkio; v2 io */
	CG_PIDS,
	CG_NCTRL,
};

#define CG_UNLIMITED UINT64_MAX
#define CG_MAX_CPUS 1024

struct cg_host {
	enum cg_layout layout;
	/* Per controller: where its hierarchy is mounted (NULL: not
	 * available) and whether that hierarchy is the cgroup2 one. */
	char *mount[CG_NCTRL];
	bool is_v2[CG_NCTRL];
	char *v2_mount;     /* the cgroup2 mount, if any, even without controllers */
	char *v1_name_systemd; /* v1 name=systemd hierarchy, if mounted */
	char *v1_devices;   /* v1 devices hierarchy, if mounted (the runner's device policy) */
	/* Which cgroup each mount shows at its top (mountinfo's root field),
	 * NULL for "/".  A sub-cgroup mounted on its own (a container without a
	 * cgroup namespace) shows "/docker/x" here, and cg_open_dir() strips
	 * it from the /proc/PID/cgroup path. */
	char *mount_root[CG_NCTRL];
	char *v2_mount_root;
};

/* Detects the layout.  root == NULL: the host, from /proc/self/mountinfo.
 * root = DIR: a fake tree laid out like /sys/fs/cgroup (DIR/cgroup.controllers
 * means pure v2; DIR/<ctrl>/ dirs mean v1, with "cpu,cpuacct" and "blkio"
 * names accepted; DIR/unified/cgroup.controllers beside v1 dirs means hybrid).
 * Returns 0, or -errno (-ENOENT when there is no cgroup filesystem at all). */
int cg_host_detect(struct cg_host *h, const char *root);
/* The same from the text of a mountinfo file (tests pass fixture text whose
 * mount points are real directories: cgroup2's cgroup.controllers is read). */
int cg_host_parse_mountinfo(struct cg_host *h, const char *text);
void cg_host_free(struct cg_host *h);

/* Where one process is: the cgroup path (starting with "/") per controller,
 * relative to the hierarchy's mount; NULL when unknown. */
struct cg_proc {
	char *path[CG_NCTRL];
	char *v2_path; /* the "0::" line, if any */
};

/* From the text of /proc/PID/cgroup (tests pass fixture text). */
int cg_proc_parse(const struct cg_host *h, const char *text, struct cg_proc *p);
/* Reads /proc/PID/cgroup (proc_root: "/proc" normally). */
int cg_proc_read(const struct cg_host *h, const char *proc_root, pid_t pid, struct cg_proc *p);
void cg_proc_free(struct cg_proc *p);
/* True when every known controller path is "/" (the root cgroup); the
 * unified path of a hybrid layout, which holds none of them, is ignored. */
bool cg_proc_is_root(const struct cg_proc *p);

/* Opens the directory of p's cgroup for ctrl (O_PATH|O_DIRECTORY); -errno.
 * A path with "." or ".." components (a process outside our cgroup
 * namespace shows as "/../x") is refused with -EINVAL; a path outside the
 * mount's root gives -ENOENT. */
int cg_open_dir(const struct cg_host *h, const struct cg_proc *p, enum cg_ctrl ctrl);

/* Pass as ctrl to cg_open_ancestor() for the unified hierarchy itself
 * (v2_mount, v2_path), whatever controllers it holds. */
#define CG_V2_HIERARCHY ((enum cg_ctrl)CG_NCTRL)

/* Opens the directory `up` levels above p's cgroup (0: the cgroup itself,
 * as cg_open_dir); -ENOENT above the top of the mount. For limits that an
 * ancestor may set. */
int cg_open_ancestor(const struct cg_host *h, const struct cg_proc *p, enum cg_ctrl ctrl,
		     unsigned int up);

struct cg_memory {
	bool has_limit, has_swap_limit, has_usage, has_swap_usage, has_stat;
	uint64_t limit;       /* bytes; CG_UNLIMITED when none (v1: >= 2^62 too) */
	uint64_t swap_limit;  /* swap only (v1: memsw - mem limit); CG_UNLIMITED when none */
	uint64_t usage;       /* memory.usage_in_bytes / memory.current */
	uint64_t swap_usage;  /* v1: memsw.usage - usage; v2: memory.swap.current */
	/* From memory.stat (v1 non-total_ names; v2 names mapped). */
	uint64_t anon, file, shmem, active_anon, inactive_anon, active_file, inactive_file;
	uint64_t unevictable, slab, slab_reclaimable, slab_unreclaimable, swapcached;
	uint64_t mapped_file, dirty, writeback, kernel_stack, pagetables;
	bool oom_killed;      /* memory.events oom_kill > 0 / oom_control oom_kill > 0 */
	uint64_t oom_kill_count;
};
/* The effective limits are the minimum over the cgroup and its ancestors.
 * Returns 0, or -errno when the cgroup's directory cannot be opened (every
 * has_ flag false then); a missing file only clears its flag. */
int cg_read_memory(const struct cg_host *h, const struct cg_proc *p, struct cg_memory *m);

struct cg_cpu {
	bool has_quota, has_cpuset, has_usage, has_percpu, has_userSys, has_throttled;
	bool has_shares;
	int64_t quota_us;      /* -1: no quota */
	uint64_t period_us;
	uint64_t shares;       /* v1 cpu.shares, or v2 cpu.weight mapped to shares */
	/* Effective cpuset (cpuset.effective_cpus, else cpuset.cpus): bitmap. */
	uint64_t cpuset[CG_MAX_CPUS / 64];
	unsigned int cpuset_count;
	uint64_t usage_ns;     /* total cpu time */
	uint64_t percpu_ns[CG_MAX_CPUS]; /* v1 cpuacct.usage_percpu (by host cpu id) */
	uint64_t user_ns, system_ns;     /* v1 cpuacct.stat (USER_HZ converted), v2 cpu.stat */
	uint64_t throttled_ns;           /* v1 cpu.stat throttled_time, v2 throttled_usec */
	uint64_t nr_periods, nr_throttled;
};
/* quota_us/period_us are the tightest quota of the cgroup and its ancestors.
 * Returns 0, or -ENOENT when none of the cpu, cpuacct and cpuset cgroups
 * could be opened (every has_ flag false then). */
int cg_read_cpu(const struct cg_host *h, const struct cg_proc *p, struct cg_cpu *c);

/* Visible CPU count: |cpuset| cut to ceil(quota/period) when a quota is set. */
unsigned int cg_cpu_visible(const struct cg_cpu *c, unsigned int host_cpus);

/* "0-3,5" <-> bitmap of nbits bits in (nbits + 63) / 64 words.
 * Parse: returns the number of CPUs ("" and "\n" give 0), or -EINVAL on
 * garbage or a CPU >= nbits.  Format: writes "0-3,5" (no newline; "" when
 * empty) and returns its length, or -ENOSPC. */
int cg_cpulist_parse(const char *s, uint64_t *bits, unsigned int nbits);
int cg_cpulist_format(const uint64_t *bits, unsigned int nbits, char *buf, size_t len);

struct cg_io_dev {
	unsigned int major, minor;
	uint64_t rbytes, wbytes, rios, wios, dbytes, dios;
};
/* Up to max devices from blkio.throttle.io_service_bytes/_serviced (v1) or
 * io.stat (v2). Returns the count, or -errno. */
int cg_read_io(const struct cg_host *h, const struct cg_proc *p, struct cg_io_dev *devs,
	       int max);

/* Task ids of the cgroup (cgroup.threads / tasks) of the pids (or cpu)
 * controller, for the load-average sampler. Returns count or -errno; *out
 * is malloc'ed. */
int cg_read_tasks(const struct cg_host *h, const struct cg_proc *p, pid_t **out);

/* Reads a small cgroup file below dirfd into buf (NUL-terminated).
 * Returns length or -errno (-EFBIG when it does not fit). */
int cg_read_file(int dirfd, const char *name, char *buf, size_t len);

/* The same into a malloc'ed buffer grown as needed up to max bytes (tasks,
 * cpuacct.usage_percpu, mountinfo). Returns length or -errno. */
int cg_read_alloc(int dirfd, const char *name, char **out, size_t max);
/* The pids of a cgroup.procs, tasks or cgroup.threads text, in *out
 * (malloc'ed); stops at anything that is not a pid.  Returns the count or
 * -ENOMEM. */
int cg_parse_pids(const char *text, pid_t **out);

/* One decimal number ("max" gives CG_UNLIMITED). Returns 0 or -errno. */
int cg_read_u64(int dirfd, const char *name, uint64_t *val);

#endif

/* Rendering the virtual files from host files and one reader's cgroup data.
 * Pure functions (no I/O), so every file is unit-testable field by field. */
#ifndef STRATA_PROCFS_VIEW_H
#define STRATA_PROCFS_VIEW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cgroup.h"

enum pf_file {
	PF_MEMINFO,    /* proc/meminfo */
	PF_CPUINFO,    /* proc/cpuinfo */
	PF_STAT,       /* proc/stat */
	PF_UPTIME,     /* proc/uptime */
	PF_LOADAVG,    /* proc/loadavg */
	PF_DISKSTATS,  /* proc/diskstats */
	PF_SWAPS,      /* proc/swaps */
	PF_CPU_ONLINE, /* sys/devices/system/cpu/online */
	PF_NFILES,
};

/* Path of each file below the mountpoint, lxcfs layout ("proc/meminfo"). */
extern const char *const pf_file_path[PF_NFILES];

/* The host side: the real files' text (NUL-terminated; NULL if unreadable).
 * Renderers also consult other host texts than the one rendered: the cpu
 * files (cpuinfo, stat, uptime, online) use text[PF_CPU_ONLINE] for the
 * host's online CPUs (else 0..host_cpus-1); swaps uses text[PF_MEMINFO]
 * (MemTotal, SwapTotal; without it, any finite memory limit counts as a
 * limit and the swap size is the sum of text[PF_SWAPS]). */
struct pf_host {
	const char *text[PF_NFILES];
	unsigned int host_cpus;   /* configured CPUs (sysconf) */
	long clk_tck;             /* USER_HZ, normally 100 */
	double host_uptime;       /* seconds, from the host's /proc/uptime */
};

/* Per-cgroup state kept between reads so /proc/stat counters are monotonic
 * (idle never goes backwards). The caller keeps one per cgroup, zeroed
 * before first use, and serializes pf_render calls that share one (a
 * PF_STAT render writes it; PF_UPTIME only reads it). Indexed by the
 * reader's (renumbered) CPU. */
struct pf_stat_state {
	bool valid;
	uint64_t last_user[CG_MAX_CPUS], last_system[CG_MAX_CPUS], last_idle[CG_MAX_CPUS];
	uint64_t last_steal[CG_MAX_CPUS];
	double last_wall;         /* host uptime at the previous read */
};

/* What is known about the reader. `has_*` false = that part unknown: the
 * renderer then falls back (host value or an honest reduction). */
struct pf_reader {
	bool in_root_cgroup;      /* no limits at all: serve the host file as is */
	bool has_memory;
	struct cg_memory memory;
	bool has_cpu;
	struct cg_cpu cpu;
	const struct cg_io_dev *io;
	int nio;                  /* < 0 (e.g. cg_read_io's -errno): I/O unknown,
				   * host diskstats served; >= 0: io[0..nio) */
	bool has_load;
	double load[3];
	unsigned int running, total;
	unsigned int blocked;     /* uninterruptible tasks: stat procs_blocked */
	pid_t last_pid;
	bool has_init_start;
	double init_start;        /* reader's pid-1 start, seconds since host boot */
	struct pf_stat_state *stat_state; /* may be NULL: no monotonic fix-up */
};

/* Renders file f for r. Returns 0 with *out malloc'ed (*len bytes, also
 * NUL-terminated), or -errno. */
int pf_render(enum pf_file f, const struct pf_host *host, const struct pf_reader *r,
	      char **out, size_t *len);

#endif

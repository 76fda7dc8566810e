/* strata-procfs internals shared by main.c, supervisor.c, fs.c, reader.c and
 * loadavg.c.
 *
 * One binary, two roles: the supervisor (the process the user starts) mounts
 * the filesystem, answers the kernel's FUSE_INIT and then only keeps the
 * /dev/fuse descriptor and a worker alive; the worker (the same binary,
 * re-executed with a hidden --worker option) serves every request.  A
 * worker that dies is replaced on the same connection, so bind mounts in
 * containers never see "Transport endpoint is not connected". */
#ifndef STRATA_PROCFS_H
#define STRATA_PROCFS_H

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cgroup.h"
#include "view.h"

#define PF_DEFAULT_MOUNTPOINT "/var/lib/strata/procfs"
#define PF_DEFAULT_CACHE_MS 100
/* Measured on a 2-vCPU VM whose idle vCPUs halt (no guest halt-polling):
 * waking the sleeping request loop costs ~40 us, more than serving the
 * request; polling 50 us after each request more than doubles the
 * open+read+close rate of a lone reader, and costs nothing when idle. */
#define PF_DEFAULT_SPIN_US 50

struct pf_config {
	const char *mountpoint;
	bool foreground;
	bool debug;
	bool loadavg;          /* run the per-cgroup load-average sampler */
	unsigned int cache_ms; /* TTL of cached cgroup values and texts */
	unsigned int spin_us;  /* poll this long for the next request */
	const char *cgroup_root;
	const char *pidfile;
	/* Worker role (hidden --worker=FUSEFD,INITFD,GEN). */
	bool worker;
	int fuse_fd;
	int init_fd;
	unsigned int gen;
};

/* main.c: parses argv into cfg.  Returns 0 (run), 1 (help or version
 * printed: exit 0) or -1 (error printed: exit 1). */
int pf_parse_args(int argc, char **argv, struct pf_config *cfg);

/* fs.c: the request table, and a session built with the options every
 * role uses (so a worker's libfuse state matches the supervisor's). */
extern const struct fuse_lowlevel_ops pf_ops;
struct fuse_session *pf_session_new(const struct pf_config *cfg);
/* Worker generation stamped into file handles: a handle made by a dead
 * worker is recognised and served statelessly instead of dereferenced. */
void pf_fs_set_generation(unsigned int gen);
/* Helper threads for the requests that need I/O (see fs.c). */
#define PF_MAX_HELPERS 16
int pf_fs_start(unsigned int helpers);
void pf_fs_stop(void);

/* supervisor.c */
int pf_supervise(const struct pf_config *cfg, int argc, char **argv);
/* worker side of the hand-over (main.c calls it for --worker). */
int pf_worker(const struct pf_config *cfg);

/* The FUSE_INIT request as the kernel sent it: the supervisor answers it,
 * every worker replays it into its own session with the reply dropped. */
struct pf_init_info {
	uint32_t major, minor;
	uint64_t flags;    /* flags | flags2 << 32 */
};
int pf_init_parse(const void *req, size_t len, struct pf_init_info *info);

/* Kernel protocol bits newer than the distribution's linux/fuse.h. */
#define PF_FUSE_INIT_EXT (1ULL << 30)
#define PF_FUSE_HAS_RESEND (1ULL << 39)
#define PF_FUSE_NOTIFY_RESEND 7

/* Monotonic clock in nanoseconds. */
uint64_t pf_now_ns(void);

#endif

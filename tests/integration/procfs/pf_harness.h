/* Harness for the strata-procfs integration tests (root, real cgroups).
 *
 * pf_init() (every test's .init) makes /tmp/strata-pf.XXXXXX with m/ (the
 * mountpoint) and the pidfile; everything a test creates outside it
 * (cgroups, mounts, processes) is written to a registry file, and
 * pf_sweep() undoes it all: in the test's .fini and again in the Criterion
 * runner after every test, so a failed or crashed test leaves nothing
 * behind. */
#ifndef STRATA_PF_HARNESS_H
#define STRATA_PF_HARNESS_H

#include <criterion/criterion.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct pf_state {
	char root[128];
	char mnt[256];
	char pidfile[256];
	const char *bin; /* $STRATA_PROCFS */
	pid_t sup;       /* supervisor, 0 when not mounted */
};
extern struct pf_state PF;

void pf_init(void);
void pf_fini(void);
#define PTEST(suite, name, ...) Test(suite, name, .init = pf_init, .fini = pf_fini, ##__VA_ARGS__)

/* Records something for the sweep: "umount PATH", "cgroup NAME" (a
 * pf_cg_create() cgroup, removed with cg_container_destroy()). */
void pf_reg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Records a process: kind "daemon" (SIGTERM, then SIGKILL with its
 * worker) or "proc" (SIGKILL); skipped if the pid was reused since. */
void pf_reg_proc(const char *kind, pid_t pid);

/* Runs `$STRATA_PROCFS ARGS` (sh word splitting) and returns its exit
 * status; its output (stdout+stderr) goes to out. */
int pf_start(const char *args, char *out, size_t outlen);
/* Mounts on PF.mnt with extra options; asserts; sets PF.sup. */
void pf_mount(const char *extra);
pid_t pf_worker(void); /* the supervisor's child serving PF.mnt */
bool pf_is_mounted(const char *path);
bool pf_pid_alive(pid_t pid);
void pf_msleep(int ms);

/* sh -c CMD; stdout+stderr into out (NUL-terminated). Returns the exit
 * status, -1 when killed, -2 on timeout (10 s). */
int pf_sh(char *out, size_t outlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* The test cgroup "strata-pf-PID", made with cg_container_create() as a
 * container's (<hierarchy>/strata/strata-pf-PID in every hierarchy on v1
 * and hybrid hosts, one directory on pure v2): memory 256 MiB, CPU quota
 * 50000/100000, cpuset "0".  name gets its name, for pf_run_in() and
 * pf_cg_join(). */
#define PF_CG_MEM (256ULL << 20)
void pf_cg_create(char *name, size_t len);

/* Runs CMD in cgroup cg (NULL: the root cgroup of every hierarchy; on a
 * pure v2 host the v2 root), in a
 * private mount namespace (and a new pid namespace with its own /proc when
 * pidns) where the strata-procfs files are bound over /proc/meminfo,
 * cpuinfo, stat, uptime, loadavg and /sys/devices/system/cpu/online. */
int pf_run_in(const char *cg, bool pidns, char *out, size_t outlen, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
/* Moves pid (0: the caller) into cg (NULL: the roots). Returns 0 or -errno. */
int pf_cg_join(const char *cg, pid_t pid);

char *pf_slurp(const char *path); /* malloc'ed, NULL on error */

#endif

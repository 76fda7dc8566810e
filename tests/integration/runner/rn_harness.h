/* Harness for the strata (container runner) integration tests: real
 * containers from the busybox image, as root.
 *
 * Each test binary run gets its own /tmp/strata-rt.XXXXXX with root/ and
 * run/ ($STRATA_ROOT, $STRATA_RUN, set before the tests start), so it
 * never sees another run's containers. After every test (.fini, and again
 * from the Criterion runner even when the test crashed) rn_sweep() removes
 * whatever the test left: containers (strata rm -f), then by hand any
 * cgroup, strata-unionfs daemon or mount still naming one of them. At the
 * end the run's strata-procfs daemon is unmounted and the directory
 * removed. */
#ifndef STRATA_RN_HARNESS_H
#define STRATA_RN_HARNESS_H

#include <criterion/criterion.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

void rn_init(void);
void rn_fini(void);
#define RTEST(suite, name, ...) \
	Test(suite, name, .init = rn_init, .fini = rn_fini, .timeout = 180, ##__VA_ARGS__)

const char *rn_root(void); /* $STRATA_ROOT */
const char *rn_run(void);  /* $STRATA_RUN */

/* Runs `$STRATA ARGS` through sh (so ARGS may quote), stdin /dev/null,
 * stdout+stderr into out (NUL-terminated). Returns the exit status, -1
 * when killed by a signal, -2 after a timeout (120 s; it is then killed). */
int rn_strata(char *out, size_t outlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The same for any sh -c command. */
int rn_sh(char *out, size_t outlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* The full id behind a container name ("" when there is none). */
void rn_id(const char *name, char id[65]);
/* A field of `strata inspect REF` (the first object), by a dotted path
 * such as "State.OOMKilled", as text ("true", "137", "/x/upper"). */
bool rn_inspect(const char *ref, const char *key, char *val, size_t len);

/* Asserts that nothing of container id is left: no state, no container
 * dir, no cgroup in any hierarchy, no process naming it (the union daemon,
 * zombies aside), no mount naming it in /proc/self/mountinfo, and (when
 * pid > 0) that its init is gone. */
void rn_assert_gone(const char *id, pid_t pid);

/* Live processes (zombies aside) whose command line contains needle. */
int rn_procs_naming(const char *needle);

/* Used by the tests and the sweep. */
bool rn_pid_alive(pid_t pid); /* and not a zombie */
char *rn_slurp(const char *path);
void rn_msleep(int ms);
/* Layer directories of the busybox image (top first), NULL-terminated. */
char **rn_layers(const char *image);

#endif

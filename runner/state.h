/* The runner's bookkeeping.
 *
 *   $STRATA_RUN (default /run/strata)
 *     <id>/config.json   what the container was created with (struct container)
 *     <id>/state.json    status, pids, exit code, OOM, times (struct cstate)
 *     <id>/log           stdout+stderr of a -d container
 *     names/<name>       symlink to <id>: symlink(2) is atomic, so of two
 *                        `run --name X` at once exactly one wins
 *   $STRATA_ROOT (default /var/lib/strata)
 *     containers/<id>/{upper,work,rootfs,hostname,hosts,resolv.conf}
 *     volumes/<name>/_data
 *     layers/, images/ (image.c), procfs/ (the strata-procfs mount)
 *
 * Every state file is written to a temporary name and renamed, so a reader
 * sees the old or the new file, never half of one. */
#ifndef STRATA_STATE_H
#define STRATA_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "runner.h"

struct json_object;

enum cstatus { ST_CREATED, ST_RUNNING, ST_EXITED };

struct cstate {
	enum cstatus status;
	pid_t pid;                       /* the container's init, host pid */
	unsigned long long pid_start;    /* its start time (pid reuse guard) */
	pid_t monitor;                   /* who waits for it: the runner or the -d monitor */
	unsigned long long monitor_start;
	int exit_code;                   /* -1: unknown */
	bool oom_killed;
	char started[40], finished[40];  /* RFC 3339, "" when not yet */
};

/* Reads $STRATA_ROOT and $STRATA_RUN and creates the directories. */
int paths_init(char *err, size_t errlen);
const char *root_dir(void);
const char *run_dir(void);

void now_rfc3339(char *buf, size_t len);
int new_id(char id[ID_LEN + 1]);

/* Takes names/<name> for id; -1 with "already in use" when taken. */
int name_claim(const char *name, const char *id, char *err, size_t errlen);
/* Frees it if it still names id. */
void name_release(const char *name, const char *id);

int config_save(const struct container *c);
int config_load(const char *id, struct container *c);
int state_save(const char *id, const struct cstate *s);
int state_load(const char *id, struct cstate *s);
/* state_load, then marks a `running` container whose init and monitor are
 * both gone as exited (exit code unknown), e.g. after a crash. */
int state_refresh(const char *id, struct cstate *s);
/* Creates $STRATA_RUN/<id>. */
int state_create_dir(const char *id);
/* Removes $STRATA_RUN/<id> (lock held by the caller). */
int state_remove_dir(const char *id);
/* flock on $STRATA_RUN/<id>: returns the fd, -1 when the dir is gone. */
/* An fd holding flock(op) on $STRATA_ROOT/name (created if missing), or
 * -errno.  Closing the fd releases it. */
int root_lock(const char *name, int op);
int state_lock(const char *id);
void state_unlock(int fd);

/* Name, full id or unique id prefix -> id. */
int container_resolve(const char *ref, char id[ID_LEN + 1], char *err, size_t errlen);
/* Every container id (malloc'ed, NULL-terminated). */
char **container_list(void);

/* Process start time from /proc/PID/stat (0 when gone). */
/* Records pid as the one setting up a created container (the -d monitor
 * takes over from its caller). */
int state_set_monitor(const char *id, pid_t pid);
unsigned long long proc_start_time(pid_t pid);
bool proc_alive(pid_t pid, unsigned long long start);

/* `docker inspect`-like object of a container. */
struct json_object *container_json(const struct container *c, const struct cstate *s);
const char *status_name(enum cstatus st);
struct image;
struct json_object *image_json(const struct image *img);
/* "sh -c 'x…'" as docker ps shows a command. */
void command_text(char **argv, char *buf, size_t len);
/* The `strata ps` table (or JSON lines, or ids). */
int ps_print(bool all, bool quiet, bool json);
/* Is the image / named volume used by a container (any state)? */
bool image_used_by(const char *image, char id[ID_LEN + 1]);
bool volume_used_by(const char *name, char id[ID_LEN + 1]);

/* Writes data to path atomically (tmp + rename): readers see the old or
 * the new text, never a part.  No fsync: this is runtime state under
 * $STRATA_RUN (a tmpfs, /run, by default), which no reboot keeps anyway. */
int write_atomic(const char *path, const char *data);

#endif

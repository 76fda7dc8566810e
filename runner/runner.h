/* strata, the container runner: what its source files share.
 *
 * One container's life (see docs/runner.md):
 *   main.c       the command line; cli_run.c: `run`'s options into a
 *                struct container
 *   container.c  prepares its resources, clones the child, waits
 *   lifecycle.c  stop, rm, the cleanup, commit, export; image -> container
 *   rootfs.c     in the child: the strata-unionfs root, /proc, /dev, /sys,
 *                /etc files, volumes, pivot_root
 *   volume.c     -v parsing, named volumes
 *   procfs.c     the strata-procfs daemon and its files over /proc
 *   security.c   masked paths, capabilities, no_new_privs, rlimits, seccomp
 *   init.c       pid 1 inside, the command's exec, and `strata exec`
 *   tty.c        ptys, raw mode, the I/O relay, the parent/child channel
 *   state.c      $STRATA_RUN and $STRATA_ROOT bookkeeping (state.h)
 *   image.c, store.c, image_read.c, layer.c, busybox.c, tarball.c,
 *   tar_merge.c, tar_write.c: the image store (image.h)
 */
#ifndef STRATA_RUNNER_H
#define STRATA_RUNNER_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <sys/types.h>

#include "cgroup_write.h"

#define ERRLEN 512
#define ID_LEN 64
#define SHORT_ID 12

/* Exit statuses of `strata` itself, as docker's: 125 when the runner failed,
 * 126 when the command cannot be executed, 127 when it is not found. */
#define EXIT_RUNNER 125
#define EXIT_CANNOT_EXEC 126
#define EXIT_NOT_FOUND 127

/* One -v option. */
struct volume {
	char *source; /* host directory or file (named volume: its _data dir) */
	char *target; /* absolute path inside the container */
	char *name;   /* named volume, NULL for a host path */
	bool ro;
};

/* Everything a container was created with; saved as config.json. */
struct container {
	char id[ID_LEN + 1];
	char *name;
	char *image;
	char **argv;    /* the command, NULL-terminated */
	char **env;     /* KEY=VAL, NULL-terminated */
	char *workdir;  /* NULL: the image's, else "/" */
	char *user;     /* -u as given; NULL: root */
	char *hostname;
	bool rm, detach, interactive, tty, read_only, no_procfs, net_host;
	struct cg_limits limits;
	double cpus;          /* --cpus as given, 0 when unset (for inspect) */
	struct volume *vols;
	size_t nvols;
	char **layers;        /* absolute layer directories, top first */
	size_t nlayers;
	char created[40];     /* RFC 3339 */
	char dir[PATH_MAX];   /* $STRATA_ROOT/containers/<id> */
};

void container_free(struct container *c);
/* dir/<name> into buf; -1 when it does not fit. */
int container_path(const struct container *c, const char *name, char *buf, size_t len);

/* ---- container.c, lifecycle.c ---- */
/* `strata run`: returns the exit status for the caller. */
int container_run(struct container *c);
/* Removes everything a container left (cgroups, union daemon, dirs, state,
 * name); idempotent, takes the container's lock. */
int container_cleanup(const char *id);
int container_stop(const char *id, int timeout_s, char *err, size_t errlen);
int container_remove(const char *id, bool force, char *err, size_t errlen);
/* `strata run`'s layers, command, environment and workdir from the image
 * (building busybox on first use) and the command line; 0 or an exit
 * status after printing why. */
int container_from_image(struct container *c, int argc, char **argv, char **extra_env);
/* Creates the named volumes' directories. */
int container_make_volumes(struct container *c);
/* The lock that makes "in use" checks exact (lifecycle.c): use_lock()
 * returns an fd holding flock(op) on $STRATA_ROOT/use.lock, or -errno;
 * a run holds it shared from resolving its image until prepare() saved
 * its config. */
int use_lock(int op);
int use_hold_for_run(void);
void use_release_for_run(void);
/* `strata commit`: the upper dir as a new top layer over the image. */
int container_commit(const char *id, const char *name, char *err, size_t errlen);

/* ---- helper.c ---- */
/* A helper program started by helper_spawn(): its pid and the read end
 * of its stderr. */
struct helper {
	pid_t pid;
	int err_fd;
};
/* Runs argv[0] (a helper that daemonizes: strata-unionfs, strata-procfs)
 * and returns its exit status; the first line of its stderr goes to msg.
 * The same in two steps: helper_spawn() (0, or -1 with errno), in which
 * keep[i] becomes the helper's descriptor 3 + i (argv must say so), and
 * helper_finish() (the status). */
int run_helper(char *const argv[], char *msg, size_t msglen);
#define HELPER_MAX_KEEP 4
int helper_spawn(char *const argv[], const int *keep, size_t nkeep, bool keep_stdio,
		 struct helper *h);
int helper_finish(struct helper *h, char *msg, size_t msglen);
/* For a helper that detaches without forking (strata-unionfs --wait-fd):
 * waits for the end of its stderr, then 0 when it runs on (no line on
 * stderr, not exited), else its exit status (non-zero) with the line in
 * msg.  Either way h is done with. */
int helper_detached(struct helper *h, char *msg, size_t msglen);
/* Runs strata-image (runner/image_main.c) on $STRATA_ROOT with args (a
 * NULL-terminated list after the root), on our stdin and stdout: 0, or -1
 * with its one-line reason in err. */
int image_tool(const char *const args[], char *err, size_t errlen);
/* Path of a helper program: $ENV, next to /proc/self/exe, then PATH. */
int find_helper(const char *prog, const char *env, char *out, size_t len);

/* ---- rootfs.c ---- */
/* Opens /dev/fuse for the child to mount with (O_CLOEXEC). */
int union_open_fuse(char *err, size_t errlen);
/* In the child: makes / rprivate, mounts the FUSE connection fusefd on the
 * container's rootfs directory. */
int rootfs_mount_union(const struct container *c, int fusefd, char *err, size_t errlen);
/* In the parent: starts a strata-unionfs daemon on that connection, before
 * it is mounted; it starts up while the caller goes on, and serves once a
 * byte can be read from go_fd (a pipe whose write end the caller writes to
 * once the child mounted the connection, or closes to give up).
 * union_daemon_started() then waits until it is set up (0), or reports why
 * it failed (-1, err set). */
int union_spawn_daemon(const struct container *c, int fusefd, int go_fd, struct helper *h,
		       char *err, size_t errlen);
int union_daemon_started(struct helper *h, char *err, size_t errlen);
/* The pid of the strata-unionfs daemon serving c's upper dir, 0 if none. */
pid_t union_daemon_pid(const char *upper);
/* Waits up to timeout_ms for the daemon holding upper's lock to exit;
 * 0 when gone, -1 when still there. */
int union_wait_released(const char *upper, int timeout_ms);
/* Opens path (absolute, inside the container) below rootfd with every
 * symlink resolved inside the root (openat2 RESOLVE_IN_ROOT), creating
 * what is missing when create is OPEN_DIR or OPEN_FILE (mode for the new
 * ones). Returns an O_PATH fd or -errno. Mount targets are then named
 * /proc/self/fd/N, so an image's symlink can never redirect a mount onto
 * the host. */
enum { OPEN_EXISTING, OPEN_DIR, OPEN_FILE };
int open_in_root(int rootfd, const char *path, int create, mode_t mode);
/* mount(2) onto an fd from open_in_root(). */
int mount_on_fd(const char *src, int fd, const char *type, unsigned long flags,
		const char *data);
/* The container's hostname, hosts and resolv.conf, in its dir (the child
 * binds them over /etc/...). */
int rootfs_etc_files(const struct container *c, char *err, size_t errlen);
/* In the child: /proc, /dev, /sys, /etc files, volumes, then pivot_root. */
int rootfs_setup(const struct container *c, char *err, size_t errlen);
int rootfs_pivot(const struct container *c, char *err, size_t errlen);
/* In the child after pivot_root: /dev/console for a pty slave. */
int rootfs_bind_console(const char *slave, char *err, size_t errlen);
/* Mounts a read-only union of dirs (top first) on mnt in the caller's
 * mount namespace (which the caller made private). */
int union_mount_ro(char **dirs, size_t n, const char *mnt, char *err, size_t errlen);
/* ---- volume.c ---- */
/* -v SRC:DST[:ro|rw]: SRC absolute = a host path (must exist), else a
 * named volume ($STRATA_ROOT/volumes/NAME/_data). */
int volume_parse(const char *spec, struct volume *v, char *err, size_t errlen);
int volume_list(void);
int volume_remove(const char *name, char *err, size_t errlen);
/* `strata export` of a container (lifecycle.c): its merged tree as a tar. */
int container_export(const char *id, const char *dest, char *err, size_t errlen);
/* ---- rootfs.c ---- */
/* Brings up lo in a new network namespace. */
int net_loopback_up(char *err, size_t errlen);

/* ---- procfs.c ---- */
/* Makes sure a strata-procfs daemon serves $STRATA_ROOT/procfs. */
int procfs_ensure(char *err, size_t errlen);
/* In the child, before pivot_root: binds its files over /proc/... of the
 * root at rootfd. */
int procfs_bind(int rootfd, char *err, size_t errlen);
/* Same for /sys/devices/system/cpu/online, after /sys is mounted. */
int procfs_bind_sys(int rootfd, char *err, size_t errlen);

/* ---- security.c ---- */
/* After pivot_root: masked and read-only paths. */
int security_mask_paths(char *err, size_t errlen);
/* rlimits, no_new_privs, capability bounding set and sets; not seccomp. */
int security_restrict(char *err, size_t errlen);
/* The default seccomp filter (last step before exec). notify_sock >= 0:
 * sysinfo and sched_getaffinity go to a listener, which is sent over it
 * (SYNC_NOTIFY) for the monitor to answer (notify.c). */
int security_seccomp(int notify_sock, char *err, size_t errlen);
/* Drops every capability (pid 1 needs none once the command runs). */
int security_drop_all_caps(void);

/* ---- init.c ---- */
/* How the command is started inside (run and exec). */
struct exec_spec {
	char **argv;
	char **env;
	const char *workdir;
	const char *user;
	int stdio[3];       /* fds to put on 0, 1, 2; -1: keep */
	int tty_slave;      /* -1: no controlling terminal */
	int sync;           /* channel for an exec error, -1: none */
	bool notify;        /* filter sysinfo/sched_getaffinity to a listener sent
			     * over sync as SYNC_NOTIFY (notify.c) */
};
/* Never returns: sets the user, workdir, environment, then execs; on
 * failure sends the error on spec->sync and exits 126/127. */
__attribute__((noreturn)) void exec_command(const struct exec_spec *spec);
/* In the container's init after setup: restricts itself (capabilities,
 * no_new_privs, rlimits), forks the command, and becomes init_loop(). */
__attribute__((noreturn)) void init_start(struct exec_spec *spec);
/* Remembers main's argv, whose memory init_start() reuses for the
 * process title. */
void proc_title_init(int argc, char **argv);
/* base with extra's KEY=VAL overriding (malloc'ed, NULL on ENOMEM). */
char **env_merge(char *const *base, char *const *extra);
/* pid 1: forwards signals to cmd, reaps zombies, exits with cmd's status
 * (128+signal when it was killed). Never returns. */
__attribute__((noreturn)) void init_loop(pid_t cmd);
/* `strata exec`. Returns the exit status. */
int container_exec(const char *id, struct exec_spec *spec, bool tty, bool interactive);

/* ---- notify.c ---- */
/* The monitor's answers to the container's sysinfo(2) and
 * sched_getaffinity(2) (seccomp user notification), on a thread. */
struct pollfd;
struct notify {
	pthread_t thread;
	bool running, stopping;
	int stop[2];                    /* a pipe that ends the thread's poll */
	struct pollfd *pfd;             /* listeners, the exec socket, its clients */
	int *kind;
	size_t n, cap;
	const struct cg_container *cg;  /* the container's (for its task count) */
	unsigned long long init_start;  /* its init's start (clock ticks after boot) */
	struct cg_host host;
	struct cg_cpu cpu;              /* scratch: too big for the stack */
	struct seccomp_notif req;
	struct seccomp_notif_resp resp;
};
/* $STRATA_RUN/<id>/notify, where `strata exec` sends its listener; the
 * listening socket (CLOEXEC) or -1 after err. */
int notify_listen(const char *id, char *err, size_t errlen);
void notify_unlink(const char *id);
/* A connection to that socket, -1 when no monitor listens. */
int notify_connect(const char *id);
/* Sends a listener over a connection or the setup channel. */
int notify_pass(int sock, int listener);
void notify_init(struct notify *n);
/* Serves filter (a listener) and sock (notify_listen's; -1: none), both
 * taken over even on failure; init is the container's pid 1. 0 or -errno. */
int notify_start(struct notify *n, int filter, int sock, const struct cg_container *cg,
		 pid_t init);
/* Ends the thread and closes everything (idempotent). */
void notify_stop(struct notify *n);

/* ---- tty.c ---- */
/* The parent/child channel (SOCK_SEQPACKET): small typed messages, some
 * carrying one fd. */
enum sync_type {
	SYNC_CGROUP_READY = 1, /* parent: the child is in its cgroups */
	SYNC_FUSE_MOUNTED,     /* child: the union is mounted, serve it */
	SYNC_UNION_READY,      /* parent: strata-unionfs is serving */
	SYNC_PTY,              /* child: the pty master (fd) */
	SYNC_ERROR,            /* child: setup failed; code = exit status */
	SYNC_NOTIFY,           /* command: its seccomp listener (fd) */
};
struct sync_msg {
	int type;
	int code;
	char text[ERRLEN];
};
int sync_send(int sock, int type, int code, int fd, const char *text);
/* 1: a message (*fd set when one came, else -1), 0: EOF, -1: error,
 * -2: timeout. */
int sync_recv(int sock, struct sync_msg *m, int *fd, int timeout_ms);
/* Opens a new pty from ptmx (a path) and its slave. */
int pty_open(const char *ptmx, int *master, int *slave, char *slave_name, size_t len);
/* Relays between the caller and a container until pidfd is readable (the
 * container's init exited) and the pty output is drained. out_fd gets the
 * container's output (the terminal, or the log file with -d); in_fd is -1
 * unless -i. Forwards SIGINT/TERM/HUP/QUIT/USR1/USR2 to pid. */
int relay_run(int pidfd, pid_t pid, int master, int in_fd, int out_fd);
/* Puts fd's terminal in raw mode; restores it at exit. */
int tty_raw(int fd);
void tty_restore(void);

/* Formats a one-line error into err and returns -1; FAIL() is the usual
 * way to call it from functions with (char *err, size_t errlen). */
int errf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
#define FAIL(...) errf(err, errlen, __VA_ARGS__)

/* Appends a copy of s to the NULL-terminated *v; 0 or -1 (ENOMEM). */
int strv_add(char ***v, const char *s);

/* A generic `read the whole small file` helper (NUL-terminated, malloc'ed). */
char *read_text(const char *path, size_t max);
/* mkdir -p with mode for each missing component. */
int mkdir_p(const char *path, mode_t mode);
/* rm -rf that stays on one filesystem; 0 or -errno. */
int remove_tree(const char *path);

#endif

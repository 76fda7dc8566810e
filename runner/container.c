/* A container's life: prepare its files, create its cgroups, clone the
 * child into new namespaces, walk it through setup over the sync channel,
 * wait for it, record how it ended, clean up. Also stop and rm.
 *
 * Setup protocol (parent P, child C = the container's pid 1):
 *   P: clone                      C: / rprivate, mounts the union on P's
 *                                    /dev/fuse fd
 *                                 <- FUSE_MOUNTED
 *   P: starts strata-unionfs on that fd, and while it starts up moves C
 *      into its cgroups -> CGROUP_READY
 *                                 C: cgroup namespace, hostname
 *   P: once the daemon serves -> UNION_READY
 *                                 C: /proc, /dev, /sys, /etc, volumes,
 *                                    pivot_root, masks, (pty -> PTY),
 *                                    capabilities, forks the command
 *   P: reads until EOF            (the channel is CLOEXEC: EOF = exec done)
 * Any failure in C arrives as one ERROR message with the reason; P kills
 * C, cleans up and prints it. Every wait has a timeout, so nothing hangs. */
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "image.h"
#include "log.h"
#include "parse.h"
#include "state.h"

#define SETUP_TIMEOUT_MS 60000

/* The parent's view of one running container. */
struct run {
	struct container *c;
	struct cg_host host;
	struct cg_container cg;
	bool have_cg;
	pid_t pid;
	int pidfd, sock, fusefd, master, null, log_fd;
	int union_go;         /* written once the union is mounted: it serves */
	struct helper daemon; /* strata-unionfs until it is set up */
	int listener, nsock;  /* the command's seccomp listener, the exec socket */
	struct notify notify; /* answers them while the container runs */
	int exec_code;        /* 126/127 when the command could not be exec'd */
	char exec_err[ERRLEN];
};

/* HOSTNAME=, as docker sets it; an -e HOSTNAME=x still wins. */
static int add_hostname_env(struct container *c)
{
	char host[128], *base[] = { host, NULL }, **env;

	snprintf(host, sizeof(host), "HOSTNAME=%s", c->hostname);
	env = env_merge(base, c->env);
	if (!env)
		return -1;
	strv_free(c->env);
	c->env = env;
	return 0;
}

/* id, name, directories, config.json and a `created` state.json. */
static int prepare(struct container *c, char *err, size_t errlen)
{
	static const char *const sub[] = { "upper", "work", "rootfs" };
	struct cstate st = { .status = ST_CREATED, .exit_code = -1 };
	char p[PATH_MAX];
	int e;

	if (new_id(c->id) < 0)
		return FAIL("getrandom: %s", errno_name(errno));
	if (!c->name) {
		c->name = strndup(c->id, SHORT_ID);
		if (!c->name)
			return FAIL("out of memory");
	}
	/* The state dir exists before the name points at it: a rival run
	 * that finds the name taken must never see a dangling claim and
	 * mistake it for a crashed runner's. */
	e = state_create_dir(c->id);
	if (e < 0) {
		FAIL("creating %s/%s: %s", run_dir(), c->id, errno_name(-e));
		c->id[0] = '\0';
		return -1;
	}
	if (name_claim(c->name, c->id, err, errlen) < 0) {
		state_remove_dir(c->id);
		c->id[0] = '\0'; /* nothing of ours to clean up */
		return -1;
	}
	if (!c->hostname && !(c->hostname = strndup(c->id, SHORT_ID)))
		return FAIL("out of memory");
	if (add_hostname_env(c) < 0)
		return FAIL("out of memory");
	now_rfc3339(c->created, sizeof(c->created));
	snprintf(c->dir, sizeof(c->dir), "%s/containers/%s", root_dir(), c->id);
	if (mkdir(c->dir, 0700) < 0)
		return FAIL("creating %s: %s", c->dir, errno_name(errno));
	for (size_t i = 0; i < 3; i++) {
		container_path(c, sub[i], p, sizeof(p));
		if (mkdir(p, 0755) < 0)
			return FAIL("creating %s: %s", p, errno_name(errno));
	}
	if (rootfs_etc_files(c, err, errlen) < 0)
		return -1;
	/* Who sets it up: ps reports a created container whose runner died
	 * as exited (state_refresh). */
	st.monitor = getpid();
	st.monitor_start = proc_start_time(st.monitor);
	e = config_save(c);
	if (!e)
		e = state_save(c->id, &st);
	return e < 0 ? FAIL("writing the container's state: %s", errno_name(-e)) : 0;
}

/* ---- the child ---------------------------------------------------------- */

static __attribute__((noreturn)) void child_fail(int sock, const char *err)
{
	if (sync_send(sock, SYNC_ERROR, EXIT_RUNNER, -1, err) < 0)
		dprintf(2, "strata: %s\n", err);
	_exit(EXIT_RUNNER);
}

static int cmp_int(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

/* Closes every fd above 2 except keep[]: the init must not carry the
 * runner's host fds (directories of the store, locks) into the container. */
static int close_others(int *keep, size_t n)
{
	unsigned int from = 3;

	qsort(keep, n, sizeof(int), cmp_int);
	for (size_t i = 0; i < n; i++) {
		if (keep[i] < 3)
			continue;
		if ((unsigned int)keep[i] > from &&
		    syscall(SYS_close_range, from, (unsigned int)keep[i] - 1, 0) < 0)
			return -1;
		from = (unsigned int)keep[i] + 1;
	}
	return syscall(SYS_close_range, from, ~0U, 0) < 0 ? -1 : 0;
}

static void child_wait_for(int sock, int type)
{
	struct sync_msg m;
	int r = sync_recv(sock, &m, NULL, SETUP_TIMEOUT_MS);

	if (r != 1 || m.type != type)
		_exit(EXIT_RUNNER); /* the parent is gone or gave up: it reports */
}

static void child_setup_tty(struct exec_spec *spec, int sock)
{
	char err[ERRLEN], name[64];
	int master, slave, e;

	e = pty_open("/dev/pts/ptmx", &master, &slave, name, sizeof(name));
	if (e < 0) {
		snprintf(err, sizeof(err), "opening a pty: %s", errno_name(-e));
		child_fail(sock, err);
	}
	if (rootfs_bind_console(name, err, sizeof(err)) < 0)
		child_fail(sock, err);
	if (sync_send(sock, SYNC_PTY, 0, master, NULL) < 0)
		child_fail(sock, "passing the pty to the runner failed");
	close(master);
	spec->tty_slave = slave;
}

static __attribute__((noreturn)) void child_main(struct run *r, int sock)
{
	struct container *c = r->c;
	struct exec_spec spec = { .argv = c->argv, .env = c->env, .workdir = c->workdir,
				  .user = c->user, .tty_slave = -1, .sync = sock, .notify = true };
	int keep[] = { sock, r->fusefd, r->null, r->log_fd };
	char err[ERRLEN];

	if (!c->detach) {
		/* A foreground container does not outlive its runner. (A
		 * runner that died before this line is noticed below: the
		 * channel reads EOF.) */
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
			_exit(EXIT_RUNNER);
	}
	if (close_others(keep, sizeof(keep) / sizeof(keep[0])) < 0)
		child_fail(sock, "closing the runner's file descriptors failed");
	/* Out of the caller's session and process group: a ^C on its
	 * terminal reaches the runner, which forwards it exactly once. */
	if (setsid() < 0)
		child_fail(sock, "setsid failed");
	if (rootfs_mount_union(c, r->fusefd, err, sizeof(err)) < 0)
		child_fail(sock, err);
	close(r->fusefd);
	if (sync_send(sock, SYNC_FUSE_MOUNTED, 0, -1, NULL) < 0)
		_exit(EXIT_RUNNER);
	child_wait_for(sock, SYNC_CGROUP_READY);
	/* Now that we are in our cgroups, they become our cgroup root. */
	if (unshare(CLONE_NEWCGROUP) < 0) {
		snprintf(err, sizeof(err), "cgroup namespace: %s", errno_name(errno));
		child_fail(sock, err);
	}
	if (sethostname(c->hostname, strlen(c->hostname)) < 0) {
		snprintf(err, sizeof(err), "sethostname %s: %s", c->hostname, errno_name(errno));
		child_fail(sock, err);
	}
	child_wait_for(sock, SYNC_UNION_READY);
	if (rootfs_setup(c, err, sizeof(err)) < 0 || rootfs_pivot(c, err, sizeof(err)) < 0 ||
	    security_mask_paths(err, sizeof(err)) < 0)
		child_fail(sock, err);
	if (!c->net_host && net_loopback_up(err, sizeof(err)) < 0)
		child_fail(sock, err);
	if (c->tty)
		child_setup_tty(&spec, sock);
	spec.stdio[0] = c->interactive && !c->detach ? 0 : r->null;
	spec.stdio[1] = c->detach ? r->log_fd : 1;
	spec.stdio[2] = c->detach ? r->log_fd : 2;
	/* /proc/1 must not hand the host's strata binary or our memory to
	 * the container (CVE-2019-5736): only CAP_SYS_PTRACE could. */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		child_fail(sock, "PR_SET_DUMPABLE failed");
	init_start(&spec);
}

/* clone3 with a pidfd, born in the cgroup2 directory cgfd when it is not
 * -1 (*in_cgroup tells whether that happened: a kernel before 5.7, or a
 * cgroup that refuses it, gets a plain clone); clone + pidfd_open where
 * clone3 is missing. */
static pid_t clone_child(unsigned long flags, int cgfd, int *pidfd, bool *in_cgroup)
{
	struct clone_args args = { .flags = flags | CLONE_PIDFD,
				   .pidfd = (uint64_t)(uintptr_t)pidfd,
				   .exit_signal = SIGCHLD };
	pid_t pid;

	*in_cgroup = false;
	if (cgfd >= 0) {
		struct clone_args into = args;

		into.flags |= CLONE_INTO_CGROUP;
		into.cgroup = (uint64_t)cgfd;
		pid = (pid_t)syscall(SYS_clone3, &into, sizeof(into));
		if (pid >= 0) {
			*in_cgroup = true;
			return pid;
		}
	}
	pid = (pid_t)syscall(SYS_clone3, &args, sizeof(args));
	if (pid >= 0 || errno != ENOSYS)
		return pid;
	pid = (pid_t)syscall(SYS_clone, flags | SIGCHLD, NULL, NULL, NULL, NULL);
	if (pid > 0) {
		/* The relay waits on it: without one the child is killed. */
		*pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
		if (*pidfd < 0) {
			int e = errno;

			kill(pid, SIGKILL);
			while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
				;
			errno = e;
			return -1;
		}
	}
	return pid;
}

/* ---- the parent --------------------------------------------------------- */

static void run_init(struct run *r, struct container *c)
{
	memset(r, 0, sizeof(*r));
	r->c = c;
	r->pidfd = r->sock = r->fusefd = r->master = r->null = r->log_fd = -1;
	r->listener = r->nsock = r->union_go = -1;
	r->daemon.pid = -1;
	notify_init(&r->notify);
}

static void run_close(struct run *r)
{
	int *fds[] = { &r->pidfd,  &r->sock,     &r->fusefd, &r->master, &r->null,
		       &r->log_fd, &r->listener, &r->nsock,  &r->union_go };
	char msg[ERRLEN];

	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
		if (*fds[i] >= 0)
			close(*fds[i]);
		*fds[i] = -1;
	}
	/* A daemon never told to serve reads EOF on union_go and exits. */
	if (r->daemon.pid > 0)
		helper_finish(&r->daemon, msg, sizeof(msg));
	if (r->have_cg)
		cg_container_free(&r->cg);
	cg_host_free(&r->host);
	r->have_cg = false;
	notify_stop(&r->notify);
}

static int expect(struct run *r, int type, char *err, size_t errlen)
{
	struct sync_msg m;
	int fd, n = sync_recv(r->sock, &m, &fd, SETUP_TIMEOUT_MS);

	if (n == 1 && m.type == SYNC_ERROR)
		return FAIL("%s", m.text);
	if (fd >= 0)
		close(fd);
	if (n == 1 && m.type == type)
		return 0;
	if (n == -2)
		return FAIL("the container's setup timed out");
	return FAIL("the container's init exited during setup");
}

/* After UNION_READY: a pty maybe, then EOF once the command was exec'd;
 * an exec error is remembered (the container then exits 126/127). */
static int await_exec(struct run *r, char *err, size_t errlen)
{
	struct sync_msg m;
	int fd;

	for (;;) {
		int n = sync_recv(r->sock, &m, &fd, SETUP_TIMEOUT_MS);

		if (n == 0)
			return 0;
		if (n == -2)
			return FAIL("the container's setup timed out");
		if (n < 0)
			return FAIL("reading from the container: %s", errno_name(errno));
		if (m.type == SYNC_PTY && fd >= 0) {
			r->master = fd;
			continue;
		}
		if (m.type == SYNC_NOTIFY && fd >= 0 && r->listener < 0) {
			r->listener = fd;
			continue;
		}
		if (fd >= 0)
			close(fd);
		if (m.type != SYNC_ERROR)
			continue;
		if (m.code == EXIT_NOT_FOUND || m.code == EXIT_CANNOT_EXEC) {
			r->exec_code = m.code;
			snprintf(r->exec_err, sizeof(r->exec_err), "%s", m.text);
			continue;
		}
		return FAIL("%s", m.text);
	}
}

static unsigned long clone_flags(const struct container *c)
{
	return CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC |
	       (c->net_host ? 0 : CLONE_NEWNET);
}

static int start(struct run *r, char *err, size_t errlen)
{
	struct container *c = r->c;
	char msg[ERRLEN];
	bool in_v2;
	int sv[2], go[2], e, cgfd;

	e = cg_host_detect(&r->host, NULL);
	if (e < 0)
		return FAIL("no cgroup filesystem found: %s", errno_name(-e));
	if (cg_container_create(&r->host, c->id, &c->limits, &r->cg, err, errlen) < 0)
		return -1;
	r->have_cg = true;
	/* Before the child exists: its setup runs under the policy too. */
	if (cg_container_devices(&r->cg, err, errlen) < 0)
		return -1;
	r->nsock = notify_listen(c->id, err, errlen);
	if (r->nsock < 0 || (!c->no_procfs && procfs_ensure(err, errlen) < 0))
		return -1;
	r->fusefd = union_open_fuse(err, errlen);
	if (r->fusefd < 0)
		return -1;
	/* The union daemon starts up (exec, libfuse, checking the branches:
	 * several ms) while the child is cloned and mounts the connection,
	 * and serves once told it is mounted. */
	if (pipe2(go, O_CLOEXEC) < 0)
		return FAIL("pipe: %s", errno_name(errno));
	r->union_go = go[1];
	e = union_spawn_daemon(c, r->fusefd, go[0], &r->daemon, err, errlen);
	close(go[0]);
	if (e < 0)
		return -1;
	r->null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (r->null < 0)
		return FAIL("/dev/null: %s", errno_name(errno));
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return FAIL("socketpair: %s", errno_name(errno));
	/* Born in its cgroup2 directory, the child needs no cgroup.procs write
	 * there: on a pure cgroup v2 host that saves the RCU grace period
	 * every migration waits for (see below). */
	cgfd = r->cg.v2_dir ? open(r->cg.v2_dir, O_PATH | O_DIRECTORY | O_CLOEXEC) : -1;
	r->pid = clone_child(clone_flags(c), cgfd, &r->pidfd, &in_v2);
	if (r->pid < 0) {
		int err_clone = errno;

		if (cgfd >= 0)
			close(cgfd);
		close(sv[0]);
		close(sv[1]);
		return FAIL("clone: %s", errno_name(err_clone));
	}
	if (r->pid == 0) {
		close(sv[0]);
		child_main(r, sv[1]);
	}
	if (cgfd >= 0)
		close(cgfd);
	close(sv[1]);
	r->sock = sv[0];
	/* From here the daemon holds the only other reference: if it dies,
	 * the connection aborts instead of leaving the child stuck. */
	close(r->fusefd);
	r->fusefd = -1;
	if (expect(r, SYNC_FUSE_MOUNTED, err, errlen) < 0)
		return -1;
	if (write(r->union_go, "", 1) != 1) {
		int e_go = errno;

		/* EPIPE: it died setting up, and says why. */
		if (union_daemon_started(&r->daemon, err, errlen) < 0)
			return -1;
		return FAIL("starting the union daemon: %s", errno_name(e_go));
	}
	close(r->union_go);
	r->union_go = -1;
	/* Moving a task between cgroups waits for an RCU grace period (up to
	 * 10 ms here): the daemon finishes starting up meanwhile. */
	e = cg_container_attach(&r->cg, r->pid, in_v2, err, errlen);
	if (union_daemon_started(&r->daemon, e < 0 ? msg : err, e < 0 ? sizeof(msg) : errlen) < 0 ||
	    e < 0)
		return -1;
	if (sync_send(r->sock, SYNC_CGROUP_READY, 0, -1, NULL) < 0 ||
	    sync_send(r->sock, SYNC_UNION_READY, 0, -1, NULL) < 0)
		return FAIL("the container's init exited during setup");
	if (await_exec(r, err, errlen) < 0)
		return -1;
	close(r->sock);
	r->sock = -1;
	{
		struct cstate st = { .status = ST_RUNNING, .exit_code = -1, .pid = r->pid };

		st.pid_start = proc_start_time(r->pid);
		st.monitor = getpid();
		st.monitor_start = proc_start_time(st.monitor);
		now_rfc3339(st.started, sizeof(st.started));
		e = state_save(c->id, &st);
	}
	return e < 0 ? FAIL("writing state.json: %s", errno_name(-e)) : 0;
}

/* A failed start: kill what was started, then remove everything. */
static void abort_start(struct run *r)
{
	if (r->pid > 0) {
		if (r->pidfd < 0 || syscall(SYS_pidfd_send_signal, r->pidfd, SIGKILL, NULL, 0) < 0)
			kill(r->pid, SIGKILL);
		while (waitpid(r->pid, NULL, 0) < 0 && errno == EINTR)
			;
		r->pid = 0;
	}
	run_close(r);
	if (r->c->id[0])
		container_cleanup(r->c->id);
}

/* Waits for the init, records status and OOM, and cleans up for --rm. */
static int wait_and_finish(struct run *r, int out_fd)
{
	struct container *c = r->c;
	bool raw = c->tty && c->interactive && !c->detach && isatty(0);
	bool oom = false;
	struct cstate st;
	int status = 0, code, lock, e;

	/* Its listener and the exec socket now belong to the thread. */
	e = notify_start(&r->notify, r->listener, r->nsock, &r->cg, r->pid);
	r->listener = r->nsock = -1;
	if (e < 0)
		log_warn("cannot answer sysinfo(2) for %s (it gets ENOSYS): %s", c->name,
			 errno_name(-e));
	if (raw && tty_raw(0) < 0)
		log_warn("cannot put the terminal in raw mode");
	relay_run(r->pidfd, r->pid, r->master, c->tty && c->interactive && !c->detach ? 0 : -1,
		  out_fd);
	tty_restore();
	while (waitpid(r->pid, &status, 0) < 0) {
		if (errno != EINTR) {
			/* Never a success we did not see. */
			log_error("waiting for the container: %s", errno_name(errno));
			status = EXIT_RUNNER << 8;
			break;
		}
	}
	code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	notify_stop(&r->notify);
	notify_unlink(c->id);
	if (r->have_cg && cg_container_oom_killed(&r->cg, &oom) < 0)
		oom = false;
	lock = state_lock(c->id);
	if (lock >= 0 && state_load(c->id, &st) == 0) {
		st.status = ST_EXITED;
		st.exit_code = code;
		st.oom_killed = oom;
		now_rfc3339(st.finished, sizeof(st.finished));
		if (state_save(c->id, &st) < 0)
			log_warn("cannot record the exit of %s", c->name);
	}
	state_unlock(lock);
	/* Its processes are gone: the cgroups have nothing left to hold. */
	if (r->have_cg && cg_container_destroy(&r->cg) < 0)
		log_warn("cannot remove the cgroups of %s", c->name);
	run_close(r);
	if (c->rm)
		container_cleanup(c->id);
	return code;
}

/* The -d monitor: its own session, stdio on /dev/null, and no fd of our
 * caller's but keep: a pipe the caller reads to its end must see EOF when
 * `run -d` returns, not when the container exits. */
static int monitor_detach(int keep)
{
	int null = open("/dev/null", O_RDWR | O_CLOEXEC), fds[] = { keep };

	if (null < 0)
		return -1;
	if (setsid() < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(null, 2) < 0) {
		int e = errno;

		close(null);
		errno = e;
		return -1;
	}
	close(null);
	return close_others(fds, 1);
}

/* -d: a monitor process (double-forked, in its own session) starts the
 * container and waits for it; the caller waits only for "started". */
static int run_detached(struct run *r)
{
	struct container *c = r->c;
	char err[ERRLEN], msg[ERRLEN + 16] = "", logp[PATH_MAX + 80];
	int pfd[2], status, code = EXIT_RUNNER;
	ssize_t got = 0, n;
	pid_t mid;

	if (pipe2(pfd, O_CLOEXEC) < 0) {
		log_error("pipe: %s", errno_name(errno));
		container_cleanup(c->id);
		return EXIT_RUNNER;
	}
	mid = fork();
	if (mid < 0) {
		log_error("fork: %s", errno_name(errno));
		container_cleanup(c->id);
		return EXIT_RUNNER;
	}
	if (mid == 0) {
		close(pfd[0]);
		if (monitor_detach(pfd[1]) < 0) {
			dprintf(pfd[1], "%d detaching the monitor: %s", EXIT_RUNNER, errno_name(errno));
			container_cleanup(c->id);
			_exit(EXIT_RUNNER);
		}
		switch (fork()) {
		case -1:
			dprintf(pfd[1], "%d fork: %s", EXIT_RUNNER, errno_name(errno));
			container_cleanup(c->id);
			_exit(EXIT_RUNNER);
		case 0:
			break;
		default:
			_exit(0); /* the monitor is re-parented, our caller goes on */
		}
		if (state_set_monitor(c->id, getpid()) < 0)
			log_warn("cannot record the monitor of %s", c->name);
		snprintf(logp, sizeof(logp), "%s/%s/log", run_dir(), c->id);
		r->log_fd = open(logp, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
		if (r->log_fd < 0) {
			dprintf(pfd[1], "%d %s: %s", EXIT_RUNNER, logp, errno_name(errno));
			container_cleanup(c->id);
			_exit(EXIT_RUNNER);
		}
		if (start(r, err, sizeof(err)) < 0) {
			dprintf(pfd[1], "%d %s", EXIT_RUNNER, err);
			abort_start(r);
			_exit(EXIT_RUNNER);
		}
		dprintf(pfd[1], "%d %s", r->exec_code, r->exec_err);
		close(pfd[1]);
		_exit(wait_and_finish(r, r->log_fd) & 0xff);
	}
	close(pfd[1]);
	while (waitpid(mid, &status, 0) < 0 && errno == EINTR)
		;
	while ((n = read(pfd[0], msg + got, sizeof(msg) - 1 - (size_t)got)) > 0 ||
	       (n < 0 && errno == EINTR))
		got += n > 0 ? n : 0;
	close(pfd[0]);
	msg[got] = '\0';
	if (sscanf(msg, "%d", &code) != 1) {
		log_error("the container monitor died during setup");
		return EXIT_RUNNER;
	}
	if (code) {
		log_error("%s", strchr(msg, ' ') ? strchr(msg, ' ') + 1 : "setup failed");
		return code;
	}
	printf("%s\n", c->id);
	return 0;
}

int container_run(struct container *c)
{
	static const int held[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 };
	struct run r;
	char err[ERRLEN];
	sigset_t set;

	/* A ^C during setup must not kill us halfway (leaving a half-made
	 * container): held until relay_run() forwards it to the container. */
	sigemptyset(&set);
	for (size_t i = 0; i < sizeof(held) / sizeof(held[0]); i++)
		sigaddset(&set, held[i]);
	sigprocmask(SIG_BLOCK, &set, NULL);
	run_init(&r, c);
	if (prepare(c, err, sizeof(err)) < 0) {
		log_error("%s", err);
		if (c->id[0]) {
			/* config.json may not exist yet to name it */
			name_release(c->name, c->id);
			container_cleanup(c->id);
		}
		use_release_for_run();
		return EXIT_RUNNER;
	}
	/* config.json names the image and volumes now: image rm and volume
	 * rm see them in use.  Released before anything is forked. */
	use_release_for_run();
	if (c->detach)
		return run_detached(&r);
	if (start(&r, err, sizeof(err)) < 0) {
		log_error("%s", err);
		abort_start(&r);
		return EXIT_RUNNER;
	}
	if (r.exec_code)
		log_error("%s", r.exec_err);
	return wait_and_finish(&r, 1);
}

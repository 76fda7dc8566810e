/* The supervisor and the worker's side of the hand-over (see supervisor.h). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fuse.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fuse_loop.h"
#include "loadavg.h"
#include "log.h"
#include "reader.h"
#include "supervisor.h"

/* read(2) on /dev/fuse wants room for the largest request the kernel may
 * send even before INIT has set max_write. */
#define INIT_BUFSZ (256 * 1024)
#define INIT_MAX 4096
#define STOP_WAIT_MS 5000

int pf_init_parse(const void *req, size_t len, struct pf_init_info *info)
{
	struct fuse_in_header h;
	struct fuse_init_in in;

	if (len < sizeof(h) + 2 * sizeof(uint32_t))
		return -EINVAL;
	memcpy(&h, req, sizeof(h));
	if (h.opcode != FUSE_INIT || h.len != len)
		return -EPROTO;
	memset(&in, 0, sizeof(in));
	memcpy(&in, (const char *)req + sizeof(h),
	       len - sizeof(h) < sizeof(in) ? len - sizeof(h) : sizeof(in));
	info->major = in.major;
	info->minor = in.minor;
	info->flags = in.flags;
	/* flags2 exists only when the kernel says so. */
	if (in.flags & PF_FUSE_INIT_EXT)
		info->flags |= (uint64_t)in.flags2 << 32;
	return 0;
}

int pf_notify_resend(int fd)
{
	struct fuse_out_header oh = { .len = sizeof(oh), .error = PF_FUSE_NOTIFY_RESEND };
	ssize_t n;

	do
		n = write(fd, &oh, sizeof(oh));
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return n == (ssize_t)sizeof(oh) ? 0 : -EIO;
}

/* ---- the worker ----
 *
 * The worker's libfuse session talks to the inherited descriptor through a
 * custom I/O layer, so that replaying FUSE_INIT can drop the reply (the
 * kernel already has one).  One thread runs the request loop and answers
 * from the caches; helper threads (fs.c) do whatever needs I/O.  Without
 * RESEND the loop reads through a cloned descriptor: when the worker dies,
 * closing it makes the kernel fail the requests it held instead of keeping
 * those readers waiting forever. */

#define HELPERS 4

/* Set only while the main thread replays INIT, before any other thread. */
static bool swallow_replies;
static int serve_fd = -1;

static ssize_t io_writev(int fd, struct iovec *iov, int count, void *userdata)
{
	ssize_t total = 0;

	(void)userdata;
	if (!swallow_replies)
		return writev(serve_fd >= 0 ? serve_fd : fd, iov, count);
	for (int i = 0; i < count; i++)
		total += (ssize_t)iov[i].iov_len;
	return total;
}

static uint64_t spin_ns;

/* Requests come in bursts (open, read, release): polling briefly for the
 * next one keeps this thread on a running CPU instead of paying for a
 * wake-up from idle each time.  sched_yield() lets a reader that shares
 * this CPU run meanwhile. */
static void spin_for_request(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	uint64_t until = pf_now_ns() + spin_ns;

	while (poll(&p, 1, 0) == 0 && pf_now_ns() < until)
		sched_yield();
}

static ssize_t io_read(int fd, void *buf, size_t len, void *userdata)
{
	int rfd = serve_fd >= 0 ? serve_fd : fd;

	(void)userdata;
	if (spin_ns)
		spin_for_request(rfd);
	return read(rfd, buf, len);
}

static const struct fuse_custom_io worker_io = { .writev = io_writev, .read = io_read };

static int clone_fd(int fd)
{
	uint32_t master = (uint32_t)fd;
	int c = open("/dev/fuse", O_RDWR | O_CLOEXEC);

	if (c < 0)
		return -errno;
	if (ioctl(c, FUSE_DEV_IOC_CLONE, &master) < 0) {
		int err = -errno;

		close(c);
		return err;
	}
	return c;
}

static int replay_init(struct fuse_session *se, int init_fd, struct pf_init_info *info)
{
	char req[INIT_MAX];
	struct fuse_buf fb = { 0 };
	ssize_t n = pread(init_fd, req, sizeof(req), 0);
	int err;

	if (n < 0)
		return -errno;
	err = pf_init_parse(req, (size_t)n, info);
	if (err)
		return err;
	fb.mem = req;
	fb.size = (size_t)n;
	swallow_replies = true;
	fuse_session_process_buf(se, &fb);
	swallow_replies = false;
	return fuse_session_exited(se) ? -EPROTO : 0;
}

static int serve(struct fuse_session *se, int fd, bool resend)
{
	int err, ret;

	if (!resend) {
		serve_fd = clone_fd(fd);
		if (serve_fd < 0)
			log_warn("worker: cannot clone /dev/fuse (%s): a crash may leave reads hanging",
				 errno_name(-serve_fd));
	}
	err = pf_fs_start(HELPERS);
	if (err) {
		log_error("worker: cannot start helper threads: %s", errno_name(-err));
		return err;
	}
	ret = fuse_session_loop(se);
	pf_fs_stop();
	return ret;
}

int pf_worker(const struct pf_config *cfg)
{
	struct pf_init_info info;
	struct fuse_session *se;
	struct cg_host host;
	int err, ret = 1;

	if (!cfg->foreground)
		log_to_syslog();
	err = cg_host_detect(&host, cfg->cgroup_root);
	if (err) {
		log_error("worker: cannot detect the cgroup layout: %s", errno_name(-err));
		return 1;
	}
	err = reader_init(&host, cfg->cache_ms, cfg->loadavg);
	if (err) {
		log_error("worker: %s", errno_name(-err));
		goto out_host;
	}
	pf_fs_set_generation(cfg->gen);
	spin_ns = (uint64_t)cfg->spin_us * 1000;
	se = pf_session_new(cfg);
	if (!se || fuse_session_custom_io(se, &worker_io, cfg->fuse_fd) < 0) {
		log_error("worker: cannot create the FUSE session");
		goto out_reader;
	}
	err = replay_init(se, cfg->init_fd, &info);
	close(cfg->init_fd);
	if (err) {
		log_error("worker: cannot replay FUSE_INIT: %s", errno_name(-err));
		goto out_session;
	}
	err = pf_sampler_start(&host, cfg->loadavg);
	if (err) {
		log_error("worker: cannot start the sampler: %s", errno_name(-err));
		goto out_session;
	}
	/* With RESEND the supervisor recovers a dead worker's requests from
	 * the shared queue; without it, see serve(). */
	/* Exit 0 tells the supervisor the mount is gone; a signal (a planned
	 * restart) or a failure makes it start another worker. */
	ret = fuse_loop_ended_by_unmount(serve(se, cfg->fuse_fd, info.flags & PF_FUSE_HAS_RESEND)) ? 0 : 1;
	pf_sampler_stop();
out_session:
	if (se)
		fuse_session_destroy(se);
out_reader:
	reader_fini();
out_host:
	cg_host_free(&host);
	return ret;
}

/* ---- the supervisor ---- */

static struct {
	const struct pf_config *cfg;
	int argc;
	char **argv;
	char exe[PATH_MAX];
	char mnt[PATH_MAX];
	char pidfile[PATH_MAX]; /* absolute: we chdir("/") */
	struct fuse_session *se;
	int fd, init_fd;
	bool resend;
	pid_t worker;
	unsigned int gen;
	sigset_t old_mask;
} V = { .fd = -1, .init_fd = -1 };

static int mkdir_p(const char *path)
{
	char buf[PATH_MAX], *p;

	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
		return -ENAMETOOLONG;
	for (p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, 0755) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* A mount already there would be stacked on silently; a dead FUSE mount
 * answers ENOTCONN.  Both are "busy" to the user. */
static int check_mountpoint(const char *path)
{
	struct statx stx;
	int err;

	if (statx(AT_FDCWD, path, AT_NO_AUTOMOUNT, STATX_TYPE, &stx) < 0) {
		err = errno;
		if (err == ENOENT && mkdir_p(path) == 0)
			return check_mountpoint(path);
		if (err == ENOTCONN)
			log_error("mountpoint '%s' is busy: a dead FUSE mount is still there (run 'umount %s')",
				  path, path);
		else
			log_error("mountpoint '%s': %s", path, errno_name(err));
		return -1;
	}
	if (!S_ISDIR(stx.stx_mode)) {
		log_error("mountpoint '%s' is not a directory", path);
		return -1;
	}
	if ((stx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) &&
	    (stx.stx_attributes & STATX_ATTR_MOUNT_ROOT)) {
		log_error("mountpoint '%s' is busy: something is already mounted there", path);
		return -1;
	}
	return 0;
}

static int check_cgroups(const struct pf_config *cfg)
{
	struct cg_host host;
	int err = cg_host_detect(&host, cfg->cgroup_root);

	if (err == -ENOENT) {
		if (cfg->cgroup_root)
			log_error("no cgroup hierarchy found under '%s'", cfg->cgroup_root);
		else
			log_error("no cgroup filesystem is mounted (none in /proc/self/mountinfo)");
		return -1;
	}
	if (err) {
		log_error("cannot detect the cgroup layout: %s", errno_name(-err));
		return -1;
	}
	cg_host_free(&host);
	return 0;
}

/* Reads the kernel's FUSE_INIT, answers it through libfuse, and keeps the
 * request bytes in a memfd for the workers to replay. */
static int handshake(void)
{
	char *buf = malloc(INIT_BUFSZ);
	struct fuse_buf fb = { 0 };
	struct pf_init_info info;
	ssize_t n;
	int err;

	if (!buf)
		return -ENOMEM;
	do
		n = read(V.fd, buf, INIT_BUFSZ);
	while (n < 0 && errno == EINTR);
	err = n < 0 ? -errno : pf_init_parse(buf, (size_t)n, &info);
	if (!err && (size_t)n > INIT_MAX)
		err = -E2BIG;
	if (!err) {
		fb.mem = buf;
		fb.size = (size_t)n;
		fuse_session_process_buf(V.se, &fb);
		if (fuse_session_exited(V.se))
			err = -EPROTO;
	}
	if (!err) {
		V.resend = info.flags & PF_FUSE_HAS_RESEND;
		V.init_fd = memfd_create("strata-procfs-init", MFD_CLOEXEC);
		if (V.init_fd < 0 || write(V.init_fd, buf, (size_t)n) != n)
			err = -errno;
	}
	free(buf);
	return err;
}

static pid_t spawn_worker(void)
{
	char arg[64];
	char **av = calloc((size_t)V.argc + 2, sizeof(*av));
	pid_t pid;

	if (!av)
		return -ENOMEM;
	snprintf(arg, sizeof(arg), "--worker=%d,%d,%u", V.fd, V.init_fd, ++V.gen);
	av[0] = V.argv[0];
	av[1] = arg;
	for (int i = 1; i < V.argc; i++)
		av[i + 1] = V.argv[i];
	pid = fork();
	if (pid == 0) {
		/* Its own process group: a Ctrl-C at the terminal of a -f
		 * supervisor is for the supervisor, which then stops it. */
		setpgid(0, 0);
		sigprocmask(SIG_SETMASK, &V.old_mask, NULL);
		if (fcntl(V.fd, F_SETFD, 0) < 0 || fcntl(V.init_fd, F_SETFD, 0) < 0)
			_exit(127);
		/* The file on disk first: an upgraded binary takes over at
		 * the next restart.  /proc/self/exe if it was removed. */
		execv(V.exe, av);
		execv("/proc/self/exe", av);
		_exit(127);
	}
	free(av);
	if (pid < 0)
		return -errno;
	log_debug("worker %d (generation %u) started", (int)pid, V.gen);
	return pid;
}

static void write_pidfile(void)
{
	FILE *f;

	if (!V.pidfile[0])
		return;
	f = fopen(V.pidfile, "we");
	if (!f || fprintf(f, "%d\n", (int)getpid()) < 0 || fclose(f) != 0)
		log_warn("cannot write pidfile '%s': %s", V.pidfile, errno_name(errno));
}

/* Like fuse_daemonize(), but the parent waits for daemonize_done(), which
 * comes after the pidfile is written. */
static int ready_fd = -1;

static int daemonize(void)
{
	int p[2], null;
	char c = 1;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) < 0) {
		log_error("pipe: %s", errno_name(errno));
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		log_error("fork: %s", errno_name(errno));
		return -1;
	}
	if (pid > 0) {
		/* The parent leaves the mount to the child: exit status only. */
		close(p[1]);
		_exit(read(p[0], &c, 1) == 1 ? 0 : 1);
	}
	close(p[0]);
	ready_fd = p[1];
	if (setsid() < 0 || chdir("/") < 0)
		log_warn("setsid/chdir: %s", errno_name(errno));
	null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null >= 0) {
		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
		close(null);
	}
	return 0;
}

static void daemonize_done(void)
{
	char c = 1;

	if (ready_fd >= 0 && write(ready_fd, &c, 1) != 1)
		log_warn("cannot notify the parent: %s", errno_name(errno));
	if (ready_fd >= 0)
		close(ready_fd);
	ready_fd = -1;
}

static int wait_worker(int ms)
{
	sigset_t set;
	struct timespec ts = { .tv_sec = 0, .tv_nsec = 20 * 1000000L };
	int st;

	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	for (int waited = 0; waited < ms; waited += 20) {
		if (waitpid(V.worker, &st, WNOHANG) == V.worker)
			return 0;
		sigtimedwait(&set, NULL, &ts);
	}
	return -ETIMEDOUT;
}

static void stop_worker(void)
{
	if (V.worker <= 0)
		return;
	kill(V.worker, SIGTERM);
	if (wait_worker(STOP_WAIT_MS) < 0) {
		kill(V.worker, SIGKILL);
		waitpid(V.worker, NULL, 0);
	}
	V.worker = 0;
}

/* Delay before the next start: immediate, unless the worker keeps dying
 * right after starting (then 100 ms doubling up to 5 s). */
static uint64_t restart_delay_ns(uint64_t lived_ns, unsigned int *fast)
{
	uint64_t d;

	if (lived_ns > 2000000000ULL)
		*fast = 0;
	else
		(*fast)++;
	if (*fast <= 2)
		return 0;
	d = 100000000ULL << (*fast - 3 < 6 ? *fast - 3 : 6);
	return d > 5000000000ULL ? 5000000000ULL : d;
}

/* Returns the exit status of strata-procfs. */
static int supervise_loop(void)
{
	sigset_t set;
	uint64_t started = 0, restart_at = 0;
	unsigned int fast = 0;
	bool planned = false;

	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	restart_at = pf_now_ns();
	for (;;) {
		uint64_t now = pf_now_ns();
		struct timespec ts = { .tv_sec = 3600 };
		int sig, st;
		pid_t pid;

		if (!V.worker && restart_at && now >= restart_at) {
			pid = spawn_worker();
			if (pid < 0) {
				log_error("cannot start a worker: %s", errno_name((int)-pid));
				restart_at = now + 1000000000ULL;
			} else {
				V.worker = pid;
				started = now;
				restart_at = 0;
			}
		}
		if (!V.worker && restart_at) {
			uint64_t d = restart_at - now;

			ts.tv_sec = (time_t)(d / 1000000000ULL);
			ts.tv_nsec = (long)(d % 1000000000ULL);
		}
		sig = sigtimedwait(&set, NULL, &ts);
		if (sig == SIGTERM || sig == SIGINT) {
			log_info("signal %s: unmounting %s", sig == SIGTERM ? "TERM" : "INT", V.mnt);
			stop_worker();
			return 0;
		}
		if (sig == SIGHUP && V.worker) {
			log_info("SIGHUP: restarting the worker");
			planned = true;
			kill(V.worker, SIGTERM);
		}
		if (sig != SIGCHLD)
			continue;
		while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
			if (pid != V.worker)
				continue;
			V.worker = 0;
			if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
				log_info("%s was unmounted", V.mnt);
				return 0;
			}
			if (!planned) {
				if (WIFSIGNALED(st))
					log_warn("worker %d killed by signal %d; restarting", (int)pid,
						 WTERMSIG(st));
				else
					log_warn("worker %d exited with status %d; restarting", (int)pid,
						 WEXITSTATUS(st));
			}
			/* Whatever the dead worker had read and not answered
			 * goes back to the queue for the next one. */
			if (V.resend && pf_notify_resend(V.fd) < 0)
				log_warn("FUSE_NOTIFY_RESEND failed: %s", errno_name(errno));
			restart_at = pf_now_ns() +
				     (planned ? 0 : restart_delay_ns(pf_now_ns() - started, &fast));
			planned = false;
		}
	}
}

static int absolute(const char *path, char *buf, size_t len)
{
	char cwd[PATH_MAX];

	if (path[0] == '/')
		return snprintf(buf, len, "%s", path) < (int)len ? 0 : -1;
	if (!getcwd(cwd, sizeof(cwd)))
		return -1;
	return snprintf(buf, len, "%s/%s", cwd, path) < (int)len ? 0 : -1;
}

static int mount_fs(void)
{
	ssize_t n = readlink("/proc/self/exe", V.exe, sizeof(V.exe) - 1);

	if (n < 0) {
		log_error("cannot find my own executable: %s", errno_name(errno));
		return -1;
	}
	V.exe[n] = '\0';
	if (check_cgroups(V.cfg) < 0 || check_mountpoint(V.cfg->mountpoint) < 0)
		return -1;
	if (!realpath(V.cfg->mountpoint, V.mnt)) {
		log_error("mountpoint '%s': %s", V.cfg->mountpoint, errno_name(errno));
		return -1;
	}
	V.se = pf_session_new(V.cfg);
	if (!V.se) {
		log_error("cannot create the FUSE session (see the message above)");
		return -1;
	}
	if (fuse_session_mount(V.se, V.mnt) < 0) {
		log_error("cannot mount on '%s' (see the message above)", V.mnt);
		fuse_session_destroy(V.se);
		V.se = NULL;
		return -1;
	}
	V.fd = fuse_session_fd(V.se);
	return 0;
}

int pf_supervise(const struct pf_config *cfg, int argc, char **argv)
{
	sigset_t set;
	int err, ret = 1;

	V.cfg = cfg;
	V.argc = argc;
	V.argv = argv;
	/* Signals are taken synchronously (sigtimedwait) from before the
	 * mount on, so a SIGTERM at any point still unmounts. */
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &set, &V.old_mask) < 0) {
		log_error("sigprocmask: %s", errno_name(errno));
		return 1;
	}
	if (cfg->pidfile && absolute(cfg->pidfile, V.pidfile, sizeof(V.pidfile)) < 0) {
		log_error("pidfile '%s': path too long", cfg->pidfile);
		return 1;
	}
	if (mount_fs() < 0)
		return 1;
	err = handshake();
	if (err) {
		log_error("FUSE handshake on '%s' failed: %s", V.mnt, errno_name(-err));
		goto out;
	}
	if (!V.resend)
		log_info("kernel without FUSE_NOTIFY_RESEND: a worker crash fails its in-flight reads");
	/* The mount answers from here on; the parent returns only once the
	 * pidfile is written, so callers can use both at once. */
	if (!cfg->foreground && daemonize() < 0)
		goto out;
	write_pidfile();
	if (!cfg->foreground) {
		log_to_syslog();
		daemonize_done();
	}
	ret = supervise_loop();
	stop_worker();
	if (V.pidfile[0])
		unlink(V.pidfile);
out:
	fuse_session_unmount(V.se);
	fuse_session_destroy(V.se);
	if (V.init_fd >= 0)
		close(V.init_fd);
	return ret;
}

/* difftest: mounting and unmounting both sides, the strata-unionfs daemon
 * (we are its subreaper), cleanup on every exit path, and the watchdog
 * thread that handles signals and hangs. */
#include "difftest.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t cleanup_lock = PTHREAD_MUTEX_INITIALIZER;
static volatile pid_t mount_child = -1;

/* A crashed daemon shows up as ENOTCONN/ECONNABORTED; say so plainly. */
void report_dead_daemon(void)
{
	int status, i;
	pid_t pid;

	/* a dying daemon needs a moment to become a zombie */
	for (i = 0; i < 50 && (pid = waitpid(-1, &status, WNOHANG)) == 0; i++)
		usleep(20000);
	if (i == 50 || pid < 0)
		return;
	do {
		if (WIFSIGNALED(status))
			printf("difftest: strata-unionfs (pid %d) died: %s%s\n", pid,
			       strsignal(WTERMSIG(status)),
			       WCOREDUMP(status) ? " (core dumped)" : "");
		else if (WIFEXITED(status))
			printf("difftest: strata-unionfs (pid %d) exited with status %d\n",
			       pid, WEXITSTATUS(status));
	} while ((pid = waitpid(-1, &status, WNOHANG)) > 0);
}

/* ---- mounts and cleanup ----------------------------------------------- */

static void close_side_fds(struct side *s)
{
	int i;

	for (i = 0; i < NHELD; i++) {
		if (s->held[i] >= 0 && close(s->held[i]) < 0 && s->mounted)
			fprintf(stderr, "difftest: close held fd: %s\n", strerror(errno));
		s->held[i] = -1;
	}
	if (s->root >= 0 && close(s->root) < 0)
		fprintf(stderr, "difftest: close root fd: %s\n", strerror(errno));
	s->root = -1;
}

/* Unmount; returns 0, or the errno of the plain umount (it is then forced
 * or detached anyway, so cleanup can go on). */
static int unmount_side(struct side *s)
{
	int e = 0, tries;

	close_side_fds(s);
	if (!s->mounted)
		return 0;
	for (tries = 0; tries < 50; tries++) {
		if (umount2(s->mnt, 0) == 0 || errno == EINVAL) {
			/* EINVAL: already gone (aborted by the watchdog) */
			s->mounted = false;
			return 0;
		}
		e = errno;
		if (e != EBUSY)
			break;
		usleep(20000);
	}
	if (!(s->fuse && umount2(s->mnt, MNT_FORCE) == 0) &&
	    umount2(s->mnt, MNT_DETACH) < 0)
		fprintf(stderr, "difftest: cannot unmount %s: %s\n", s->mnt,
			strerror(errno));
	s->mounted = false;
	return e;
}

/* Our direct children right now (we are the subreaper of the daemon). */
static size_t list_children(pid_t *out, size_t max)
{
	pid_t self = getpid();
	struct dirent *de;
	size_t n = 0;
	DIR *d = opendir("/proc");

	if (!d)
		return 0;
	while ((de = readdir(d)) != NULL && n < max) {
		char path[64], st[512], *p;
		pid_t pid = (pid_t)atoi(de->d_name);
		long ppid;
		ssize_t len;
		int fd;

		if (pid <= 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/stat", pid);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		len = read(fd, st, sizeof(st) - 1);
		if (close(fd) < 0 || len <= 0)
			continue;
		st[len] = '\0';
		p = strrchr(st, ')');
		if (p && sscanf(p + 1, " %*c %ld", &ppid) == 1 && ppid == self)
			out[n++] = pid;
	}
	closedir(d);	/* a /proc listing: nothing to report or undo */
	return n;
}

/* What a stuck child is doing: each thread's state and wait channel. */
static void describe_child(pid_t pid)
{
	char path[320], buf[256];
	struct dirent *de;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	d = opendir(path);
	if (!d)
		return;
	while ((de = readdir(d)) != NULL) {
		ssize_t n;
		int fd;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%s/wchan", pid, de->d_name);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		n = read(fd, buf, sizeof(buf) - 1);
		if (close(fd) < 0 || n < 0)
			continue;
		buf[n] = '\0';
		printf("difftest:   pid %d thread %s waits in %s\n", pid, de->d_name,
		       n ? buf : "(running)");
	}
	closedir(d);
}

/* Descendants still around at cleanup: a daemon that did not exit after
 * umount, a hung mount helper.  Give them two seconds, then kill them, by
 * pid. */
static void reap_leftovers(void)
{
	pid_t kids[64];
	size_t n, k;
	int i;

	for (i = 0; i < 200; i++) {
		pid_t pid = waitpid(-1, NULL, WNOHANG);

		if (pid < 0)
			return;	/* ECHILD: none left */
		if (pid == 0)
			usleep(10000);
	}
	n = list_children(kids, 64);
	for (k = 0; k < n; k++) {
		fprintf(stderr, "difftest: killing leftover child %d\n", kids[k]);
		if (kill(kids[k], SIGKILL) < 0)
			fprintf(stderr, "difftest: kill %d: %s\n", kids[k], strerror(errno));
	}
	while (n && waitpid(-1, NULL, 0) > 0)
		;
}

void cleanup(void)
{
	struct ctx *c = gctx;

	pthread_mutex_lock(&cleanup_lock);
	if (c) {
		unmount_side(&c->a);
		unmount_side(&c->b);
	}
	if (mount_child > 0)
		kill(mount_child, SIGKILL);
	reap_leftovers();
	if (tmpdir) {
		if (opt.keep)
			fprintf(stderr, "difftest: kept %s\n", tmpdir);
		else if (!rm_tree(tmpdir))
			fprintf(stderr, "difftest: cannot remove %s: %s\n", tmpdir,
				strerror(errno));
		free(tmpdir);
		tmpdir = NULL;
	}
	pthread_mutex_unlock(&cleanup_lock);
}

void crash_handler(int sig)
{
	static const char msg[] = "difftest: crashed, detaching the mounts\n";
	struct ctx *c = gctx;

	/* Best effort only: async-signal-safe calls, results ignored. */
	if (write(2, msg, sizeof(msg) - 1) < 0 || !c)
		goto out;
	if (umount2(c->a.mnt, MNT_DETACH) < 0) {
		/* nothing better to do */
	}
	if (umount2(c->b.mnt, MNT_DETACH) < 0) {
		/* nothing better to do */
	}
out:
	signal(sig, SIG_DFL);
	raise(sig);
}

/* MNT_FORCE aborts a FUSE connection: a request blocked in it fails and the
 * main thread is released.  Kernel overlayfs sides are left alone. */
static void abort_fuse(struct ctx *c)
{
	struct side *s[2] = { &c->a, &c->b };
	int i;

	for (i = 0; i < 2; i++)
		if (s[i]->fuse && s[i]->mounted && umount2(s[i]->mnt, MNT_FORCE) < 0 &&
		    errno != EBUSY)
			fprintf(stderr, "difftest: umount -f %s: %s\n", s[i]->mnt,
				strerror(errno));
}

sigset_t guarded;

/* Watchdog: handles SIGINT/SIGTERM/SIGHUP/SIGQUIT (blocked everywhere else,
 * so they are seen even while the main thread sits in a hung FUSE request)
 * and reports a hang when no progress is made for --hang-timeout seconds. */
void *guard(void *arg)
{
	long last = progress;
	time_t since = time(NULL);

	(void)arg;
	for (;;) {
		struct timespec ts = { 1, 0 };
		int sig = sigtimedwait(&guarded, NULL, &ts);
		struct ctx *c = gctx;

		if (sig > 0) {
			atomic_store(&dying, true);
			fprintf(stdout, "difftest: interrupted by %s, seed=%llu step=%ld\n",
				strsignal(sig), c ? (unsigned long long)c->seed : 0ULL,
				c ? c->step : -1L);
			fflush(stdout);
			if (c)
				abort_fuse(c);
			cleanup();
			_exit(1);
		}
		if (progress != last) {
			last = progress;
			since = time(NULL);
			continue;
		}
		if (time(NULL) - since < opt.hang_timeout)
			continue;
		atomic_store(&dying, true);
		if (c) {
			printf("difftest: HANG seed=%llu ", (unsigned long long)c->seed);
			print_where(c);
			printf(" op=%s: no progress for %ld s (a side stopped answering)\n",
			       c->opdesc ? c->opdesc : "-", opt.hang_timeout);
			fflush(stdout);
			abort_fuse(c);
		}
		cleanup();
		_exit(1);
	}
	return NULL;
}

static void mount_kernel(struct ctx *c, struct side *s, const char *work)
{
	char *o = xasprintf("lowerdir=%s/l1:%s/l2,upperdir=%s/u,workdir=%s/%s,"
			    "redirect_dir=on,index=off,metacopy=off",
			    s->base, s->base, s->base, s->base, work);

	progress++;
	if (mount("overlay", s->mnt, "overlay", 0, o) < 0) {
		if (errno == ENODEV || errno == EPERM) {
			printf("difftest: SKIP kernel overlayfs unavailable: %s\n",
			       strerror(errno));
			exit(77);
		}
		fail(c, "mount -t overlay %s -o %s: %s", s->mnt, o, strerror(errno));
	}
	free(o);
	s->mounted = true;
	s->fuse = false;
}

static void mount_strata(struct ctx *c, struct side *s)
{
	char *o = xasprintf("lowerdir=%s/l1:%s/l2,upperdir=%s/u,workdir=%s/w",
			    s->base, s->base, s->base, s->base);
	struct stat st, pst;
	int status;
	pid_t pid;

	progress++;
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0)
		die("fork: %s", strerror(errno));
	if (pid == 0) {
		sigset_t none;

		sigemptyset(&none);
		if (sigprocmask(SIG_SETMASK, &none, NULL) < 0)
			_exit(127);
		execl(opt.strata, opt.strata, "-o", o, s->mnt, (char *)NULL);
		fprintf(stderr, "difftest: exec %s: %s\n", opt.strata, strerror(errno));
		_exit(127);
	}
	mount_child = pid;
	if (waitpid(pid, &status, 0) < 0)
		die("waitpid: %s", strerror(errno));
	mount_child = -1;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail(c, "%s -o %s %s: %s %d", opt.strata, o, s->mnt,
		     WIFEXITED(status) ? "exit status" : "killed by signal",
		     WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
	s->mounted = true;
	s->fuse = true;
	if (stat(s->mnt, &st) < 0 || stat(s->base, &pst) < 0)
		fail(c, "stat %s after mounting: %s", s->mnt, strerror(errno));
	if (st.st_dev == pst.st_dev)
		fail(c, "strata-unionfs returned before %s was mounted", s->mnt);
	free(o);
}

static void open_root(struct ctx *c, struct side *s)
{
	int i;

	s->root = open(s->mnt, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->root < 0)
		fail(c, "open %s mount root: %s", s->name, strerror(errno));
	for (i = 0; i < NHELD; i++)
		s->held[i] = -1;
}

void mount_side(struct ctx *c, struct side *s, bool strata, const char *work)
{
	if (strata)
		mount_strata(c, s);
	else
		mount_kernel(c, s, work);
	open_root(c, s);
}

/* After umount the daemon must exit, cleanly (within 30 s).  We are its
 * subreaper, so it is our child once it has daemonized. */
static void reap_daemon(struct ctx *c)
{
	int i, status;

	for (i = 0; i < 3000; i++) {
		pid_t pid = waitpid(-1, &status, WNOHANG);

		if (pid < 0 && errno == ECHILD)
			return;
		if (pid < 0)
			die("waitpid: %s", strerror(errno));
		if (pid > 0) {
			if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
				fail(c, "strata-unionfs (pid %d) %s %d after umount", pid,
				     WIFEXITED(status) ? "exited with status" : "was killed by signal",
				     WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
			continue;
		}
		usleep(10000);
		progress++;
	}
	{
		pid_t kids[64];
		size_t n = list_children(kids, 64), k;

		printf("difftest: strata-unionfs did not exit after umount:\n");
		for (k = 0; k < n; k++)
			describe_child(kids[k]);
	}
	fail(c, "strata-unionfs still running 30 s after umount");
}

void unmount_both(struct ctx *c)
{
	int i;
	int e;

	for (i = 0; i < NHELD; i++) {
		free(c->held_path[i]);
		c->held_path[i] = NULL;
	}
	e = unmount_side(&c->a);
	if (e)
		fail(c, "umount %s (%s): %s", c->a.mnt, c->a.name, strerror(e));
	e = unmount_side(&c->b);
	if (e)
		fail(c, "umount %s (%s): %s", c->b.mnt, c->b.name, strerror(e));
	reap_daemon(c);
}


/* difftest: differential test of strata-unionfs against kernel overlayfs.
 *
 *   difftest [--seed N] [--steps N] [--runs N] [--verbose] [--keep]
 *            [--self-check] [--full-every N] [--after-remount N]
 *            [--disable OP,...] [--avoid WHAT,...] [--no-cross]
 *            [--hang-timeout SEC] [--inject K]
 *
 * Needs root (kernel overlayfs) and, unless --self-check, the path of the
 * strata-unionfs binary in $STRATA_UNIONFS.  Exit status: 0 no difference,
 * 1 a difference (or a hang/crash of a side), 2 an internal error, 77 skip.
 *
 * Phases of one run: build identical layer sets A and B, mount A with kernel
 * overlayfs and B with strata-unionfs, run the random steps (whole-tree
 * compare every --full-every steps and at the end), unmount both and mount
 * them again (st_ino must be stable, trees equal), run --after-remount more
 * steps, and finally mount kernel overlayfs over the layers strata-unionfs
 * wrote (B) and compare that with A: the upper must be kernel-compatible. */
#include "difftest.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

static struct {
	uint64_t seed;
	long steps, runs, full_every, after_remount, hang_timeout, inject;
	bool verbose, keep, self_check, no_cross, after_set;
	char *avoid;
	unsigned int disabled;
	const char *strata;
} opt = {
	.steps = 3000, .runs = 1, .full_every = 100, .hang_timeout = 120,
	.inject = -1,
};

static struct ctx *gctx;
static char *tmpdir;
static pthread_mutex_t cleanup_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_bool dying;
static volatile pid_t mount_child = -1;

/* ---- reporting -------------------------------------------------------- */

static void print_where(struct ctx *c)
{
	if (strcmp(c->phase, "run") == 0)
		printf("step=%ld", c->step);
	else if (c->step >= 0)
		printf("step=%ld (%s)", c->step, c->phase);
	else
		printf("step=%s", c->phase);
}

static void replay_hint(struct ctx *c)
{
	printf("difftest: replay with: %sdifftest --seed %llu --steps %ld",
	       opt.self_check ? "" : "STRATA_UNIONFS=... ",
	       (unsigned long long)c->seed,
	       strcmp(c->phase, "run") == 0 ? c->step + 1 : opt.steps);
	if (strcmp(c->phase, "run") != 0)
		printf(" --after-remount %ld", opt.after_remount);
	if (opt.self_check)
		printf(" --self-check");
	if (opt.avoid)
		printf(" --avoid %s", opt.avoid);
	if (c->disabled) {
		int i;
		const char *sep = " --disable ";

		for (i = 0; i < op_count(); i++)
			if (c->disabled & (1u << i)) {
				printf("%s%s", sep, op_name(i));
				sep = ",";
			}
	}
	printf(" --verbose\n");
}

static void stop_if_dying(void)
{
	/* The watchdog is already reporting and cleaning up; let it. */
	if (atomic_load(&dying))
		for (;;)
			pause();
}

void mismatch(struct ctx *c, const char *path, const char *va, const char *vb)
{
	static bool rechecking;

	stop_if_dying();
	if (rechecking) {
		printf("difftest: 2 s later still: path=%s: %s=%s %s=%s\n",
		       path ? path : "-", c->a.name, va, c->b.name, vb);
		replay_hint(c);
		exit(1);
	}
	fflush(stdout);
	printf("difftest: MISMATCH seed=%llu ", (unsigned long long)c->seed);
	print_where(c);
	printf(" op=%s path=%s: %s=%s %s=%s\n", c->opdesc ? c->opdesc : "-",
	       path ? path : "-", c->a.name, va, c->b.name, vb);
	if (opt.inject >= 0 && strcmp(c->phase, "run") == 0 && c->step >= opt.inject) {
		printf("difftest: PASS the injected difference was found\n");
		exit(0);
	}
	if (path && c->recheck && c->a.root >= 0 && c->b.root >= 0) {
		/* Stale kernel caches (attr/entry timeouts of a FUSE side)
		 * heal with time, lasting damage does not: tell which. */
		rechecking = true;
		sleep(2);
		compare_path(c, path, true);
		printf("difftest: 2 s later path=%s compares equal (a stale cache?)\n", path);
	}
	replay_hint(c);
	exit(1);
}

void mismatchf(struct ctx *c, const char *path, const char *what,
	       const char *va, const char *vb)
{
	mismatch(c, path, xasprintf("%s %s", what, va), xasprintf("%s %s", what, vb));
}

static void fail(struct ctx *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3), noreturn));
static void fail(struct ctx *c, const char *fmt, ...)
{
	va_list ap;

	stop_if_dying();
	printf("difftest: FAIL seed=%llu ", (unsigned long long)c->seed);
	print_where(c);
	printf(": ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	exit(1);
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

/* Our descendants (we are their subreaper) still around after cleanup: a
 * daemon that did not exit after umount, a hung mount helper.  Give them two
 * seconds, then kill them, by pid. */
static void reap_leftovers(void)
{
	pid_t self = getpid();
	int i;

	for (i = 0; i < 200; i++) {
		pid_t pid = waitpid(-1, NULL, WNOHANG);

		if (pid < 0)
			return;	/* ECHILD: none left */
		if (pid == 0)
			usleep(10000);
	}
	for (i = 0; i < 2; i++) {
		DIR *d = opendir("/proc");
		struct dirent *de;

		if (!d)
			return;
		while ((de = readdir(d)) != NULL) {
			char path[64], st[512], *p;
			long ppid;
			pid_t pid = (pid_t)atoi(de->d_name);
			ssize_t n;
			int fd;

			if (pid <= 0)
				continue;
			snprintf(path, sizeof(path), "/proc/%d/stat", pid);
			fd = open(path, O_RDONLY | O_CLOEXEC);
			if (fd < 0)
				continue;
			n = read(fd, st, sizeof(st) - 1);
			if (close(fd) < 0 || n <= 0)
				continue;
			st[n] = '\0';
			p = strrchr(st, ')');
			if (!p || sscanf(p + 1, " %*c %ld", &ppid) != 1 || ppid != self)
				continue;
			fprintf(stderr, "difftest: killing leftover child %d\n", pid);
			kill(pid, SIGKILL);
		}
		closedir(d);
		while (waitpid(-1, NULL, i ? WNOHANG : 0) > 0)
			;
	}
}

static void cleanup(void)
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

static void crash_handler(int sig)
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

static sigset_t guarded;

/* Watchdog: handles SIGINT/SIGTERM/SIGHUP/SIGQUIT (blocked everywhere else,
 * so they are seen even while the main thread sits in a hung FUSE request)
 * and reports a hang when no progress is made for --hang-timeout seconds. */
static void *guard(void *arg)
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
		sigprocmask(SIG_SETMASK, &none, NULL);
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

static void mount_side(struct ctx *c, struct side *s, bool strata, const char *work)
{
	if (strata)
		mount_strata(c, s);
	else
		mount_kernel(c, s, work);
	open_root(c, s);
}

/* After umount the daemon must exit, cleanly.  We are its subreaper. */
static void reap_daemon(struct ctx *c)
{
	int i, status;

	for (i = 0; i < 1000; i++) {
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
	fail(c, "strata-unionfs still running 10 s after umount");
}

static void unmount_both(struct ctx *c)
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

/* ---- one run ---------------------------------------------------------- */

static void make_dirs(struct side *s, bool extra)
{
	static const char *const sub[] = { "l1", "l2", "u", "w", "mnt", "w2" };
	size_t i;

	if (mkdir(s->base, 0755) < 0)
		die("mkdir %s: %s", s->base, strerror(errno));
	for (i = 0; i < (extra ? 6u : 5u); i++) {
		char *p = xasprintf("%s/%s", s->base, sub[i]);

		if (mkdir(p, 0755) < 0)
			die("mkdir %s: %s", p, strerror(errno));
		free(p);
	}
}

/* --inject K: after step K change side B behind the differ's back (how
 * depends on K % 6) and compare the whole tree: it must be reported. */
static void inject(struct ctx *c)
{
	const char *reg = NULL, *lnk = NULL, *last = NULL;
	struct stat st;
	size_t i;
	int fd, kind = (int)(opt.inject % 6), err = 0;

	for (i = 0; i < c->nents; i++) {
		if (c->ents[i].type == S_IFREG && !reg)
			reg = c->ents[i].path;
		if (c->ents[i].type == S_IFLNK && !lnk)
			lnk = c->ents[i].path;
		if (c->ents[i].type != S_IFDIR)
			last = c->ents[i].path;
	}
	if ((kind == 0 || kind == 1) && !reg)
		kind = 3;
	if ((kind == 4 && !last) || (kind == 5 && !lnk))
		kind = 3;
	switch (kind) {
	case 0:
		fd = openat(c->b.root, reg, O_WRONLY | O_APPEND | O_CLOEXEC);
		if (fd < 0 || write(fd, "!", 1) != 1 || close(fd) < 0)
			err = errno;
		printf("difftest: injected: one byte appended to %s\n", reg);
		break;
	case 1:
		if (fstatat(c->b.root, reg, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    fchmodat(c->b.root, reg, (st.st_mode ^ 0100) & 07777, 0) < 0)
			err = errno;
		printf("difftest: injected: chmod of %s\n", reg);
		break;
	case 2: {
		char *f = xasprintf("%s/.", c->b.mnt);

		if (setxattr(f, "user.injected", "1", 1, 0) < 0)
			err = errno;
		free(f);
		printf("difftest: injected: xattr on the root\n");
		break;
	}
	case 3:
		if (mkdirat(c->b.root, "injected", 0755) < 0)
			err = errno;
		printf("difftest: injected: directory \"injected\"\n");
		break;
	case 4:
		if (unlinkat(c->b.root, last, 0) < 0)
			err = errno;
		printf("difftest: injected: unlink of %s\n", last);
		break;
	case 5:
		if (unlinkat(c->b.root, lnk, 0) < 0 || symlinkat("injected", c->b.root, lnk) < 0)
			err = errno;
		printf("difftest: injected: new target for symlink %s\n", lnk);
		break;
	}
	if (err)
		die("inject: %s", strerror(err));
	free(c->opdesc);
	c->opdesc = xstrdup("whole-tree compare after the injection");
	compare_tree(c);
}

static void run_steps(struct ctx *c, long from, long to)
{
	for (c->step = from; c->step < to; c->step++) {
		run_step(c);
		if (c->step == opt.inject)
			inject(c);
		if ((c->step + 1) % opt.full_every == 0) {
			char *d = xasprintf("whole-tree compare after %s", c->opdesc);

			if (c->verbose)
				printf("step %ld: whole-tree compare\n", c->step);
			free(c->opdesc);
			c->opdesc = d;
			compare_tree(c);
		}
	}
}

static void run_one(uint64_t seed)
{
	struct ctx *c = xmalloc(sizeof(*c));
	bool strata = !opt.self_check;
	struct ino_map *im;
	long n;

	memset(c, 0, sizeof(*c));
	c->seed = seed;
	c->step = -1;
	c->phase = "setup";
	c->verbose = opt.verbose;
	c->disabled = opt.disabled;
	rng_seed(&c->rng, seed);
	c->a.name = "overlay";
	c->b.name = strata ? "strata" : "overlay2";
	c->a.root = c->b.root = -1;

	tmpdir = xstrdup("/tmp/strata-difftest.XXXXXX");
	if (!mkdtemp(tmpdir))
		die("mkdtemp: %s", strerror(errno));
	c->a.base = xasprintf("%s/A", tmpdir);
	c->b.base = xasprintf("%s/B", tmpdir);
	c->a.mnt = xasprintf("%s/mnt", c->a.base);
	c->b.mnt = xasprintf("%s/mnt", c->b.base);
	make_dirs(&c->a, false);
	make_dirs(&c->b, true);
	gen_layers(c->a.base, seed);
	gen_layers(c->b.base, seed);
	gctx = c;

	mount_side(c, &c->a, false, "w");
	mount_side(c, &c->b, strata, "w");
	c->phase = "initial";
	compare_tree(c);

	c->phase = "run";
	run_steps(c, 0, opt.steps);
	c->phase = "final";
	compare_tree(c);

	/* Unmount, mount again: same tree, same inode numbers. */
	c->phase = "remount";
	c->step = -1;
	im = ino_record(c);
	unmount_both(c);
	mount_side(c, &c->a, false, "w");
	mount_side(c, &c->b, strata, "w");
	compare_tree(c);
	ino_check(c, im);
	ino_free(im);

	c->phase = "after-remount";
	n = opt.after_set ? opt.after_remount : opt.steps / 10;
	opt.after_remount = n;
	run_steps(c, opt.steps, opt.steps + n);
	compare_tree(c);
	c->step = -1;

	if (strata && !opt.no_cross) {
		/* The kernel reads what strata-unionfs wrote. */
		c->phase = "kernel-over-strata-upper";
		unmount_both(c);
		mount_side(c, &c->a, false, "w");
		c->b.name = "overlay(strata's layers)";
		mount_side(c, &c->b, false, "w2");
		compare_tree(c);
	}
	c->phase = "cleanup";
	unmount_both(c);
	cleanup();
	gctx = NULL;
	free(c->opdesc);
	free(c->a.base);
	free(c->b.base);
	free(c->a.mnt);
	free(c->b.mnt);
	for (n = 0; n < (long)c->nents; n++)
		free(c->ents[n].path);
	free(c->ents);
	free(c);
}

/* ---- main ------------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: difftest [options]\n"
		"  --seed N           PRNG seed (default: time based; always printed)\n"
		"  --steps N          random operations per run (default 3000)\n"
		"  --runs N           runs with seeds N, N+1, ... (default 1)\n"
		"  --verbose          print every operation and its result\n"
		"  --keep             keep the temporary directory\n"
		"  --self-check       kernel overlayfs on both sides (tests the differ)\n"
		"  --full-every N     whole-tree compare every N steps (default 100)\n"
		"  --after-remount N  steps after the remount (default steps/10)\n"
		"  --disable OP,...   never generate these operations\n"
		"  --no-cross         skip mounting kernel overlayfs over strata's layers\n"
		"  --avoid WHAT,...   leave out argument patterns, to get past a known\n"
		"                     bug: setid, longname, noreplace, exchange\n"
		"  --hang-timeout S   report a hang after S s without progress (120)\n"
		"  --inject K         after step K change side B behind the differ's\n"
		"                     back (K %% 6 picks how); exit 0 only if that is\n"
		"                     reported (tests the differ)\n"
		"env: STRATA_UNIONFS=path of the strata-unionfs binary\n");
}

static void parse_avoid(const char *arg)
{
	char *list = xstrdup(arg), *save = NULL, *t;

	for (t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		unsigned int a = avoid_lookup(t);

		if (!a)
			die("unknown --avoid %s; known: %s", t, avoid_names());
		avoid |= a;
	}
	free(list);
	free(opt.avoid);
	opt.avoid = xstrdup(arg);
}

static void set_handler(int sig, void (*fn)(int))
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = fn;
	sigemptyset(&sa.sa_mask);
	if (sigaction(sig, &sa, NULL) < 0)
		die("sigaction: %s", strerror(errno));
}

static long num_arg(const char *s, const char *what)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 0);
	if (errno || *end || v < 0)
		die("bad %s: %s", what, s);
	return v;
}

static void parse_disable(char *list)
{
	char *save = NULL, *t;

	for (t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		int op = op_lookup(t);

		if (op < 0) {
			int i;

			fprintf(stderr, "difftest: unknown operation %s; known:", t);
			for (i = 0; i < op_count(); i++)
				fprintf(stderr, " %s", op_name(i));
			fprintf(stderr, "\n");
			exit(2);
		}
		opt.disabled |= 1u << op;
	}
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "seed", required_argument, NULL, 's' },
		{ "steps", required_argument, NULL, 'n' },
		{ "runs", required_argument, NULL, 'r' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "keep", no_argument, NULL, 'k' },
		{ "self-check", no_argument, NULL, 'S' },
		{ "full-every", required_argument, NULL, 'F' },
		{ "after-remount", required_argument, NULL, 'A' },
		{ "disable", required_argument, NULL, 'D' },
		{ "no-cross", no_argument, NULL, 'X' },
		{ "avoid", required_argument, NULL, 'G' },
		{ "hang-timeout", required_argument, NULL, 'H' },
		{ "inject", required_argument, NULL, 'I' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	bool seeded = false;
	pthread_t th;
	long r;
	int ch, err;

	while ((ch = getopt_long(argc, argv, "s:n:r:vkh", lo, NULL)) != -1) {
		switch (ch) {
		case 's':
			errno = 0;
			opt.seed = strtoull(optarg, NULL, 0);
			if (errno)
				die("bad seed: %s", optarg);
			seeded = true;
			break;
		case 'n': opt.steps = num_arg(optarg, "--steps"); break;
		case 'r': opt.runs = num_arg(optarg, "--runs"); break;
		case 'v': opt.verbose = true; break;
		case 'k': opt.keep = true; break;
		case 'S': opt.self_check = true; break;
		case 'F': opt.full_every = num_arg(optarg, "--full-every"); break;
		case 'A':
			opt.after_remount = num_arg(optarg, "--after-remount");
			opt.after_set = true;
			break;
		case 'D': parse_disable(optarg); break;
		case 'X': opt.no_cross = true; break;
		case 'G': parse_avoid(optarg); break;
		case 'H': opt.hang_timeout = num_arg(optarg, "--hang-timeout"); break;
		case 'I': opt.inject = num_arg(optarg, "--inject"); break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	if (opt.full_every < 1)
		opt.full_every = 1;
	if (!seeded) {
		struct timespec ts;

		if (clock_gettime(CLOCK_REALTIME, &ts) < 0)
			die("clock_gettime: %s", strerror(errno));
		opt.seed = (uint64_t)ts.tv_sec * 1000003ULL ^ (uint64_t)ts.tv_nsec ^
			   (uint64_t)getpid() << 32;
		opt.seed %= 1000000000000ULL;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("difftest: seed=%llu steps=%ld runs=%ld mode=%s\n",
	       (unsigned long long)opt.seed, opt.steps, opt.runs,
	       opt.self_check ? "self-check (overlay vs overlay)" : "overlay vs strata-unionfs");
	if (geteuid() != 0) {
		printf("difftest: SKIP needs root for kernel overlayfs\n");
		return 77;
	}
	if (!opt.self_check) {
		opt.strata = getenv("STRATA_UNIONFS");
		if (!opt.strata || !*opt.strata)
			die("set STRATA_UNIONFS to the strata-unionfs binary (or use --self-check)");
		if (access(opt.strata, X_OK) < 0)
			die("%s: %s", opt.strata, strerror(errno));
	}

	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
		die("PR_SET_CHILD_SUBREAPER: %s", strerror(errno));
	sigemptyset(&guarded);
	sigaddset(&guarded, SIGINT);
	sigaddset(&guarded, SIGTERM);
	sigaddset(&guarded, SIGHUP);
	sigaddset(&guarded, SIGQUIT);
	err = pthread_sigmask(SIG_BLOCK, &guarded, NULL);
	if (err)
		die("pthread_sigmask: %s", strerror(err));
	set_handler(SIGSEGV, crash_handler);
	set_handler(SIGBUS, crash_handler);
	set_handler(SIGABRT, crash_handler);
	set_handler(SIGFPE, crash_handler);
	set_handler(SIGPIPE, SIG_IGN);
	if (atexit(cleanup) != 0)
		die("atexit failed");
	err = pthread_create(&th, NULL, guard, NULL);
	if (err)
		die("pthread_create: %s", strerror(err));

	for (r = 0; r < opt.runs; r++) {
		uint64_t seed = opt.seed + (uint64_t)r;

		if (opt.runs > 1)
			printf("difftest: run %ld seed=%llu\n", r + 1, (unsigned long long)seed);
		run_one(seed);
	}
	if (opt.inject >= 0) {
		printf("difftest: FAIL the difference injected after step %ld went unnoticed\n",
		       opt.inject);
		return 1;
	}
	printf("difftest: PASS seed=%llu steps=%ld runs=%ld\n",
	       (unsigned long long)opt.seed, opt.steps, opt.runs);
	return 0;
}

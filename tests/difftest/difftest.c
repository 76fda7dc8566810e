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

struct options opt = {
	.steps = 3000, .runs = 1, .full_every = 100, .hang_timeout = 120,
	.inject = -1,
};

struct ctx *gctx;	/* the run in progress, for cleanup and the watchdog */
char *tmpdir;
atomic_bool dying;

/* ---- reporting -------------------------------------------------------- */

void print_where(struct ctx *c)
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
	printf("difftest: replay with: %sdifftest --seed %llu",
	       opt.self_check ? "" : "STRATA_UNIONFS=... ",
	       (unsigned long long)c->seed);
	if (opt.replay)
		printf(" --replay %s", opt.replay);
	else
		printf(" --steps %ld", strcmp(c->phase, "run") == 0 ? c->step + 1 : opt.steps);
	if (strcmp(c->phase, "run") != 0 && !opt.replay)
		printf(" --after-remount %ld", opt.after_remount);
	if (opt.run_only)
		printf(" --run-only");
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
	report_dead_daemon();
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

void fail(struct ctx *c, const char *fmt, ...)
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

	if (opt.record) {
		c->record = fopen(opt.record, "w");
		if (!c->record)
			die("%s: %s", opt.record, strerror(errno));
	}
	if (opt.replay) {
		c->replay = load_ops(opt.replay, &c->nreplay);
		opt.steps = (long)c->nreplay;
		if (!opt.after_set)
			opt.after_remount = 0;
		opt.after_set = true;
	}
	c->phase = "run";
	run_steps(c, 0, opt.steps);
	c->phase = "final";
	compare_tree(c);
	if (c->record && fclose(c->record) == EOF)
		die("%s: %s", opt.record, strerror(errno));
	c->record = NULL;
	if (opt.run_only)
		goto out;

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
out:
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
	free(c->replay);
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
		"  --run-only         skip the remount and kernel-over-strata phases\n"
		"  --record FILE      write every operation to FILE, one per line\n"
		"  --replay FILE      run the operations in FILE instead of random ones\n"
		"                     (same --seed: the layers come from it)\n"
		"  --minimize         find the first mismatch, then shrink the sequence\n"
		"                     to the operations it needs and replay that verbosely\n"
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

static void parse_disable(const char *arg)
{
	char *list = xstrdup(arg), *save = NULL, *t;

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
	free(list);
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
		{ "run-only", no_argument, NULL, 'R' },
		{ "record", required_argument, NULL, 'W' },
		{ "replay", required_argument, NULL, 'P' },
		{ "minimize", no_argument, NULL, 'M' },
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
		case 'R': opt.run_only = true; break;
		case 'W': opt.record = optarg; break;
		case 'P': opt.replay = optarg; break;
		case 'M': opt.minimize = true; break;
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
	printf("difftest: seed=%llu ", (unsigned long long)opt.seed);
	if (opt.replay)
		printf("replay=%s", opt.replay);
	else
		printf("steps=%ld", opt.steps);
	printf(" runs=%ld mode=%s\n", opt.runs,
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
		/* The mounts run with another working directory (--minimize's
		 * children too): a relative path would not be found there. */
		opt.strata = realpath(opt.strata, NULL);
		if (!opt.strata || setenv("STRATA_UNIONFS", opt.strata, 1) < 0)
			die("STRATA_UNIONFS: %s", strerror(errno));
	}

	if (opt.minimize) {
		char **args = xmalloc((size_t)(argc + 3) * sizeof(*args));
		int i, n = 0;

		args[n++] = argv[0];
		args[n++] = "--seed";
		args[n++] = xasprintf("%llu", (unsigned long long)opt.seed);
		for (i = 1; i < argc; i++)
			if (strcmp(argv[i], "--minimize") != 0)
				args[n++] = argv[i];
		args[n] = NULL;
		minimize(args, n);
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

/* Unit tests for the xino table (unionfs/xino.c). */
#include "xino.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char tmp[64];
static char dir[128];

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void setup(void)
{
	strcpy(tmp, "/tmp/test_xino-XXXXXX");
	cr_assert_not_null(mkdtemp(tmp));
	snprintf(dir, sizeof(dir), "%s/xino", tmp);
}

static void teardown(void)
{
	nftw(tmp, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(xino, .init = setup, .fini = teardown);

static struct xino *open_ok(const char *d)
{
	struct xino *x = xino_open(d);

	cr_assert_not_null(x, "xino_open(%s): %s", d ? d : "NULL", strerror(errno));
	return x;
}

static uint32_t branch(struct xino *x, const char *path)
{
	uint32_t id;

	cr_assert_eq(xino_add_branch(x, path, &id), 0, "add_branch %s", path);
	return id;
}

static uint64_t get(struct xino *x, uint32_t br, uint64_t ino, uint32_t gen)
{
	struct xino_key k = { .branch_id = br, .ino = ino, .gen = gen };
	uint64_t v = xino_get(x, &k);

	cr_assert_gt(v, 1, "xino_get(%u, %llu) = %llu: %s", br,
		     (unsigned long long)ino, (unsigned long long)v, strerror(errno));
	return v;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Asserts the n numbers are pairwise distinct (sorts them). */
static void assert_distinct(uint64_t *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_u64);
	for (size_t i = 1; i < n; i++)
		cr_assert_neq(v[i - 1], v[i], "number %llu handed out twice",
			      (unsigned long long)v[i]);
}

/* Keys on two branches whose backing inode numbers collide (two tmpfs). */
static void check_distinct(struct xino *x)
{
	uint32_t a = branch(x, "/lower1"), b = branch(x, "/lower2");
	enum { N = 1000 };
	static uint64_t v[2 * N];

	cr_assert_neq(a, b);
	for (int i = 0; i < N; i++) {
		v[i] = get(x, a, i, 0);
		v[N + i] = get(x, b, i, 0);
	}
	for (int i = 0; i < N; i++) {
		cr_assert_eq(get(x, a, i, 0), v[i]);
		cr_assert_eq(get(x, b, i, 0), v[N + i]);
	}
	assert_distinct(v, 2 * N);
}

Test(xino, distinct_and_stable_on_disk)
{
	struct xino *x = open_ok(dir);

	check_distinct(x);
	xino_close(x);
}

Test(xino, distinct_and_stable_in_memory)
{
	struct xino *x = open_ok(NULL);

	check_distinct(x);
	xino_close(x);
}

Test(xino, persists_across_reopen)
{
	enum { N = 5000 };	/* more than one reservation batch */
	static uint64_t old[N], all[2 * N];
	struct xino *x = open_ok(dir);
	uint32_t br = branch(x, "/upper");

	for (int i = 0; i < N; i++)
		old[i] = get(x, br, i * 7 + 3, 1);
	xino_close(x);

	x = open_ok(dir);
	cr_assert_eq(branch(x, "/upper"), br);
	for (int i = 0; i < N; i++) {
		cr_assert_eq(get(x, br, i * 7 + 3, 1), old[i], "key %d changed", i);
		all[i] = old[i];
		all[N + i] = get(x, br, i * 7 + 4, 1);	/* new keys */
	}
	xino_close(x);
	assert_distinct(all, 2 * N);
}

/* Records far apart, in separate extents and map chunks with holes between
 * them: a lookup of a hole skips the read, so what reopening the table
 * learns about its extents must cover every record written. */
Test(xino, sparse_records_persist_across_reopen)
{
	static const uint64_t inos[] = { 3, 70001, 524287, 524288, 9000001, 1ULL << 33 };
	enum { N = sizeof(inos) / sizeof(inos[0]) };
	uint64_t old[N], again[2 * N];
	struct xino *x = open_ok(dir);
	uint32_t br = branch(x, "/lower");

	for (int i = 0; i < N; i++) {
		old[i] = get(x, br, inos[i], 7);
		cr_assert_eq(get(x, br, inos[i], 7), old[i], "ino %llu changed within a mount",
			     (unsigned long long)inos[i]);
	}
	xino_close(x);
	x = open_ok(dir);
	cr_assert_eq(branch(x, "/lower"), br);
	for (int i = 0; i < N; i++) {
		again[i] = get(x, br, inos[i], 7);
		cr_assert_eq(again[i], old[i], "ino %llu changed across a reopen",
			     (unsigned long long)inos[i]);
		again[N + i] = get(x, br, inos[i] + 4096, 7); /* a hole: new */
	}
	xino_close(x);
	assert_distinct(again, 2 * N);
}

/* A daemon killed without xino_close must not make the next mount reuse
 * numbers it handed out. */
Test(xino, no_reuse_after_crash)
{
	enum { N = 10000 };
	static uint64_t all[2 * N];
	struct xino *x;
	uint32_t br;
	int status;
	pid_t pid = fork();

	cr_assert_geq(pid, 0);
	if (pid == 0) {
		x = xino_open(dir);
		if (!x || xino_add_branch(x, "/upper", &br))
			_exit(1);
		for (int i = 0; i < N; i++) {
			struct xino_key k = { .branch_id = br, .ino = i };

			if (xino_get(x, &k) < 2)
				_exit(1);
		}
		_exit(0);	/* no xino_close */
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);

	x = open_ok(dir);
	br = branch(x, "/upper");
	for (int i = 0; i < 2 * N; i++)
		all[i] = get(x, br, i, 0);
	xino_close(x);
	assert_distinct(all, 2 * N);
}

/* With the header gone nothing says which numbers the old records use. */
Test(xino, lost_header_does_not_cause_duplicates)
{
	enum { N = 100 };
	uint64_t all[2 * N];
	char path[160];
	struct xino *x = open_ok(dir);
	uint32_t br = branch(x, "/upper");

	for (int i = 0; i < N; i++)
		get(x, br, i, 0);
	xino_close(x);
	snprintf(path, sizeof(path), "%s/header", dir);
	cr_assert_eq(unlink(path), 0);

	x = open_ok(dir);
	br = branch(x, "/upper");
	for (int i = 0; i < 2 * N; i++)
		all[i] = get(x, br, i, 0);
	xino_close(x);
	assert_distinct(all, 2 * N);
}

static uint32_t fnv1a(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

static void check_branch_ids(struct xino *x)
{
	uint32_t a = branch(x, "/srv/layers/a"), b = branch(x, "/srv/layers/b");
	uint32_t c1, c2;

	cr_assert_neq(a, b);
	cr_assert_eq(branch(x, "/srv/layers/a"), a);
	/* Known FNV-1a collision: the table must still tell them apart. */
	cr_assert_eq(fnv1a("costarring"), fnv1a("liquid"));
	c1 = branch(x, "costarring");
	c2 = branch(x, "liquid");
	cr_assert_neq(c1, c2);
	cr_assert_eq(get(x, c1, 5, 0) == get(x, c2, 5, 0), 0);
}

Test(xino, branch_ids_in_memory)
{
	struct xino *x = open_ok(NULL);

	check_branch_ids(x);
	xino_close(x);
}

Test(xino, branch_ids_stable_on_disk)
{
	struct xino *x = open_ok(dir);
	uint32_t a, b, c1, c2;

	check_branch_ids(x);
	a = branch(x, "/srv/layers/a");
	b = branch(x, "/srv/layers/b");
	c1 = branch(x, "costarring");
	c2 = branch(x, "liquid");
	xino_close(x);

	/* Other order, colliding path first: same ids. */
	x = open_ok(dir);
	cr_assert_eq(branch(x, "liquid"), c2);
	cr_assert_eq(branch(x, "/srv/layers/b"), b);
	cr_assert_eq(branch(x, "costarring"), c1);
	cr_assert_eq(branch(x, "/srv/layers/a"), a);
	xino_close(x);
}

static void check_gen(struct xino *x, const char *d)
{
	uint32_t br = branch(x, "/upper");
	uint64_t a = get(x, br, 42, 1), b = get(x, br, 42, 2);

	cr_assert_neq(a, b, "reused inode kept its old number");
	cr_assert_eq(get(x, br, 42, 2), b);
	if (!d)
		return;
	xino_close(x);
	x = open_ok(d);
	br = branch(x, "/upper");
	cr_assert_eq(get(x, br, 42, 2), b);
	cr_assert_neq(get(x, br, 42, 1), b);
	xino_close(x);
}

Test(xino, generation_change_on_disk)
{
	check_gen(open_ok(dir), dir);
}

Test(xino, generation_change_in_memory)
{
	struct xino *x = open_ok(NULL);

	check_gen(x, NULL);
	xino_close(x);
}

static void check_set(struct xino *x, const char *d)
{
	uint32_t lo = branch(x, "/lower"), up = branch(x, "/upper");
	struct xino_key k = { .branch_id = up, .ino = 7, .gen = 3 };
	struct xino_key ahead = { .branch_id = up, .ino = 8 };
	uint64_t n = get(x, lo, 100, 0), future;

	/* Copy-up: the upper inode reports the lower file's number. */
	cr_assert_eq(xino_set(x, &k, n), 0);
	cr_assert_eq(xino_get(x, &k), n);
	/* A number the allocator has not reached must never be allocated. */
	future = n + 1;
	cr_assert_eq(xino_set(x, &ahead, future), 0);
	for (int i = 0; i < 10; i++)
		cr_assert_neq(get(x, lo, 200 + i, 0), future);
	cr_assert_eq(xino_set(x, &k, 0), -EINVAL);
	if (!d)
		return;
	xino_close(x);
	x = open_ok(d);
	cr_assert_eq(branch(x, "/lower"), lo);
	cr_assert_eq(branch(x, "/upper"), up);
	cr_assert_eq(xino_get(x, &k), n);
	cr_assert_eq(xino_get(x, &ahead), future);
	xino_close(x);
}

Test(xino, set_on_disk)
{
	check_set(open_ok(dir), dir);
}

Test(xino, set_in_memory)
{
	struct xino *x = open_ok(NULL);

	check_set(x, NULL);
	xino_close(x);
}

Test(xino, unknown_branch_is_einval)
{
	struct xino *x = open_ok(dir);
	struct xino_key k = { .branch_id = branch(x, "/upper") + 1, .ino = 1 };

	errno = 0;
	cr_assert_eq(xino_get(x, &k), 0);
	cr_assert_eq(errno, EINVAL);
	cr_assert_eq(xino_set(x, &k, 5), -EINVAL);
	xino_close(x);
}

/* Inode numbers too large for a file offset live in memory. */
Test(xino, huge_inode_numbers)
{
	char path[160];
	struct stat st;
	struct xino *x = open_ok(dir);
	uint32_t br = branch(x, "/upper");
	uint64_t big = get(x, br, 1ULL << 40, 0), max = get(x, br, UINT64_MAX, 9);
	uint64_t small = get(x, br, 5, 0);

	cr_assert_neq(big, max);
	cr_assert_neq(big, small);
	cr_assert_neq(max, small);
	cr_assert_eq(get(x, br, 1ULL << 40, 0), big);
	cr_assert_eq(get(x, br, UINT64_MAX, 9), max);
	snprintf(path, sizeof(path), "%s/br-%08x", dir, br);
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_lt(st.st_size, 1 << 20, "huge inode written to the file");
	xino_close(x);

	/* Documented: not persistent, but never a duplicate. */
	x = open_ok(dir);
	br = branch(x, "/upper");
	cr_assert_eq(get(x, br, 5, 0), small);
	cr_assert_neq(get(x, br, 1ULL << 40, 0), big);
	cr_assert_neq(get(x, br, 1ULL << 40, 0), small);
	xino_close(x);
}

enum { THREADS = 8, KEYS = 20000 };

struct worker {
	pthread_t tid;
	struct xino *x;
	uint32_t br[2];
	int t;
	uint64_t got[2][KEYS];
	int failed;
};

static void *work(void *arg)
{
	struct worker *w = arg;

	/* Each thread walks the same keys from a different start. */
	for (int i = 0; i < 2 * KEYS; i++) {
		int k = (i / 2 + w->t * (KEYS / THREADS)) % KEYS, b = (i + w->t) & 1;
		struct xino_key key = { .branch_id = w->br[b], .ino = k };

		w->got[b][k] = xino_get(w->x, &key);
		w->failed |= w->got[b][k] < 2;
	}
	return NULL;
}

static void check_threads(struct xino *x)
{
	static struct worker w[THREADS];
	static uint64_t all[2 * KEYS];
	uint32_t br[2] = { branch(x, "/one"), branch(x, "/two") };

	for (int t = 0; t < THREADS; t++) {
		w[t] = (struct worker){ .x = x, .br = { br[0], br[1] }, .t = t };
		cr_assert_eq(pthread_create(&w[t].tid, NULL, work, &w[t]), 0);
	}
	for (int t = 0; t < THREADS; t++) {
		cr_assert_eq(pthread_join(w[t].tid, NULL), 0);
		cr_assert_eq(w[t].failed, 0);
	}
	for (int b = 0; b < 2; b++)
		for (int k = 0; k < KEYS; k++) {
			for (int t = 1; t < THREADS; t++)
				cr_assert_eq(w[t].got[b][k], w[0].got[b][k],
					     "key %d/%d got two numbers", b, k);
			all[b * KEYS + k] = w[0].got[b][k];
		}
	assert_distinct(all, 2 * KEYS);
}

Test(xino, concurrent_on_disk, .timeout = 60)
{
	struct xino *x = open_ok(dir);

	check_threads(x);
	xino_close(x);
}

Test(xino, concurrent_in_memory, .timeout = 60)
{
	struct xino *x = open_ok(NULL);

	check_threads(x);
	xino_close(x);
}

Test(xino, missing_parent_fails)
{
	char d[160];

	snprintf(d, sizeof(d), "%s/no/such/xino", tmp);
	errno = 0;
	cr_assert_null(xino_open(d));
	cr_assert_eq(errno, ENOENT);
}

Test(xino, second_open_is_ebusy)
{
	struct xino *x = open_ok(dir);

	errno = 0;
	cr_assert_null(xino_open(dir));
	cr_assert_eq(errno, EBUSY);
	xino_close(x);
	xino_close(open_ok(dir));
}

Test(xino, corrupt_header_is_refused)
{
	char path[160];
	int fd;

	xino_close(open_ok(dir));
	snprintf(path, sizeof(path), "%s/header", dir);
	fd = open(path, O_WRONLY);
	cr_assert_geq(fd, 0);
	cr_assert_eq(pwrite(fd, "garbage!", 8, 0), 8);
	close(fd);
	errno = 0;
	cr_assert_null(xino_open(dir));
	cr_assert_eq(errno, EUCLEAN);
}

Test(xino, private_modes)
{
	char path[160];
	struct stat st;
	struct xino *x = open_ok(dir);
	uint32_t br = branch(x, "/upper");

	get(x, br, 1, 0);
	cr_assert_eq(stat(dir, &st), 0);
	cr_assert_eq(st.st_mode & 07777, 0700);
	snprintf(path, sizeof(path), "%s/header", dir);
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(st.st_mode & 07777, 0600);
	snprintf(path, sizeof(path), "%s/br-%08x", dir, br);
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(st.st_mode & 07777, 0600);
	xino_close(x);
}

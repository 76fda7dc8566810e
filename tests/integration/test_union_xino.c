/* Semantic point 11: st_ino unique across the whole mount (even when two
 * lower branches are separate tmpfs instances with colliding inode numbers),
 * identical before and after copy-up and across unmount/remount; st_dev the
 * same for every object. */
#include "harness.h"

#include <dirent.h>
#include <fcntl.h>
#include <search.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

struct obj {
	char path[512];
	ino_t ino;
	dev_t dev;
};

static struct obj objs[4096];
static size_t nobjs;

static void walk(const char *base, const char *rel)
{
	const char *dir = *rel ? pf("%s/%s", base, rel) : base;
	DIR *d = opendir(dir);
	cr_assert(d, "opendir %s: %s", dir, strerror(errno));
	struct dirent *e;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		cr_assert(nobjs < sizeof objs / sizeof *objs);
		struct obj *o = &objs[nobjs++];
		snprintf(o->path, sizeof o->path, "%s%s%s", rel, *rel ? "/" : "", e->d_name);
		struct stat st;
		cr_assert(fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0);
		cr_assert_eq(e->d_ino, st.st_ino, "%s: d_ino %llu, st_ino %llu", o->path,
			     (unsigned long long)e->d_ino, (unsigned long long)st.st_ino);
		o->ino = st.st_ino;
		o->dev = st.st_dev;
		if (S_ISDIR(st.st_mode)) {
			char sub[512];
			snprintf(sub, sizeof sub, "%s", o->path);
			walk(base, sub);
		}
	}
	closedir(d);
}

static int cmp_ino(const void *a, const void *b)
{
	ino_t x = ((const struct obj *)a)->ino, y = ((const struct obj *)b)->ino;
	return x < y ? -1 : x > y;
}

static int cmp_path(const void *a, const void *b)
{
	return strcmp(((const struct obj *)a)->path, ((const struct obj *)b)->path);
}

/* Walks the mount; checks uniqueness and st_dev; returns a sorted copy. */
static struct obj *snapshot(size_t *n)
{
	nobjs = 0;
	walk(H.mnt, "");
	struct stat root;
	cr_assert(stat(H.mnt, &root) == 0);
	struct obj *v = malloc((nobjs + 1) * sizeof *v);
	memcpy(v, objs, nobjs * sizeof *v);
	snprintf(v[nobjs].path, sizeof v[nobjs].path, ".");
	v[nobjs].ino = root.st_ino;
	v[nobjs].dev = root.st_dev;
	size_t m = nobjs + 1;
	for (size_t i = 0; i < m; i++)
		cr_assert_eq(v[i].dev, root.st_dev, "%s: st_dev %lu, root %lu", v[i].path,
			     (unsigned long)v[i].dev, (unsigned long)root.st_dev);
	qsort(v, m, sizeof *v, cmp_ino);
	for (size_t i = 1; i < m; i++)
		cr_assert(v[i].ino != v[i - 1].ino, "st_ino %llu shared by %s and %s",
			  (unsigned long long)v[i].ino, v[i - 1].path, v[i].path);
	qsort(v, m, sizeof *v, cmp_path);
	*n = m;
	return v;
}

static void assert_same_inos(struct obj *a, size_t na, struct obj *b, size_t nb, const char *when)
{
	cr_assert_eq(na, nb, "%s: %zu objects, before %zu", when, nb, na);
	for (size_t i = 0; i < na; i++) {
		cr_assert_str_eq(a[i].path, b[i].path, "%s: object lists differ", when);
		cr_assert_eq(a[i].ino, b[i].ino, "%s: st_ino of %s changed from %llu to %llu", when,
			     a[i].path, (unsigned long long)a[i].ino, (unsigned long long)b[i].ino);
	}
}

/* Same names, same order of creation: tmpfs hands out the same numbers. */
static void fill(const char *root, const char *tag)
{
	for (int i = 0; i < 20; i++)
		mk_file(pf("%s/f%02d_%s", root, i, tag), tag, 0644);
	for (int i = 0; i < 5; i++) {
		mk_dir(pf("%s/d%d", root, i), 0755);
		for (int j = 0; j < 4; j++)
			mk_file(pf("%s/d%d/%s%d", root, i, tag, j), tag, 0644);
	}
}

static bool raw_collision(void)
{
	struct stat a, b;
	for (int i = 0; i < 20; i++)
		for (int j = 0; j < 20; j++)
			if (!stat(LO(0, pf("f%02d_A", i)), &a) && !stat(LO(1, pf("f%02d_B", j)), &b) &&
			    a.st_ino == b.st_ino)
				return true;
	return false;
}

UTEST(xino, unique_stable_across_copyup_and_remount, .timeout = 120)
{
	mount_tmpfs(H.lo[0], "size=8m");
	mount_tmpfs(H.lo[1], "size=8m");
	fill(H.lo[0], "A");
	fill(H.lo[1], "B");
	cr_assert(raw_collision(), "precondition: the two tmpfs should share inode numbers");
	mk_file(UP("upperfile"), "u", 0644);
	mk_dir(UP("d0"), 0755);
	h_mount(fmt, 2, NULL);
	size_t n0;
	struct obj *s0 = snapshot(&n0);
	cr_assert_gt(n0, 60);
	/* copy up files and directories of both lowers */
	for (int i = 0; i < 20; i += 2) {
		assert_ok(chmod(MN(pf("f%02d_A", i)), 0600));
		cr_assert_eq(try_spew(MN(pf("f%02d_B", i)), "+", O_WRONLY | O_APPEND), 0);
	}
	for (int i = 0; i < 5; i++)
		assert_ok(chmod(MN(pf("d%d/B%d", i, i % 4)), 0600));
	assert_ok(chmod(MN("d3"), 0700));
	cr_assert(exists(UP("f00_A")) && exists(UP("f02_B")) && exists(UP("d4/B0")));
	size_t n1;
	struct obj *s1 = snapshot(&n1);
	assert_same_inos(s0, n0, s1, n1, "after copy-up");
	h_remount();
	size_t n2;
	struct obj *s2 = snapshot(&n2);
	assert_same_inos(s0, n0, s2, n2, "after remount");
	/* new objects get numbers of their own */
	spew(MN("brand-new"), "n");
	assert_ok(mkdir(MN("d1/newdir"), 0755));
	size_t n3;
	snapshot(&n3);
	cr_assert_eq(n3, n0 + 2);
	/* an open fd keeps reporting the same number */
	int fd = open(MN("f05_A"), O_RDONLY);
	struct stat before, after;
	assert_ok(fstat(fd, &before));
	assert_ok(chmod(MN("f05_A"), 0640));
	assert_ok(fstat(fd, &after));
	cr_assert_eq(before.st_ino, after.st_ino);
	close(fd);
}

UTEST(xino, stable_across_remount_for_lower_only_objects)
{
	fill(H.lo[0], "A");
	fill(H.lo[1], "B");
	h_mount(fmt, 2, NULL);
	size_t n0;
	struct obj *s0 = snapshot(&n0);
	h_remount();
	size_t n1;
	struct obj *s1 = snapshot(&n1);
	assert_same_inos(s0, n0, s1, n1, "after remount");
	/* and in another order of first lookups */
	h_remount();
	struct stat st;
	for (size_t i = n0; i-- > 0;)
		if (strcmp(s0[i].path, ".")) {
			assert_ok(lstat(MN(s0[i].path), &st));
			cr_assert_eq(st.st_ino, s0[i].ino, "%s after remount, looked up last-first",
				     s0[i].path);
		}
}

UTEST(xino, merged_dir_keeps_number_when_copied_up)
{
	mk_file(LO(0, "d/x"), "x", 0644);
	mk_file(LO(1, "d/y"), "y", 0644);
	mk_file(LO(1, "e/z"), "z", 0644);
	h_mount(fmt, 2, NULL);
	struct stat a, b;
	assert_ok(stat(MN("d"), &a));
	assert_ok(stat(MN("e"), &b));
	spew(MN("d/new"), "n");
	assert_ok(unlink(MN("e/z")));
	cr_assert(exists(UP("d")) && exists(UP("e")));
	struct stat a2, b2;
	assert_ok(stat(MN("d"), &a2));
	assert_ok(stat(MN("e"), &b2));
	cr_assert_eq(a.st_ino, a2.st_ino);
	cr_assert_eq(b.st_ino, b2.st_ino);
	h_remount();
	assert_ok(stat(MN("d"), &a2));
	assert_ok(stat(MN("e"), &b2));
	cr_assert_eq(a.st_ino, a2.st_ino);
	cr_assert_eq(b.st_ino, b2.st_ino);
}

UTEST(xino, readonly_union_with_xino_dir_is_stable)
{
	mount_tmpfs(H.lo[0], "size=4m");
	mount_tmpfs(H.lo[1], "size=4m");
	fill(H.lo[0], "A");
	fill(H.lo[1], "B");
	const char *opts = fmt == FMT_AUFS
				   ? pf("dirs=%s=ro:%s=ro,xino=%s", H.lo[0], H.lo[1], RT("xinodir"))
				   : pf("lowerdir=%s:%s,xino=%s", H.lo[0], H.lo[1], RT("xinodir"));
	h_mount_opts(opts);
	size_t n0;
	struct obj *s0 = snapshot(&n0);
	h_remount();
	size_t n1;
	struct obj *s1 = snapshot(&n1);
	assert_same_inos(s0, n0, s1, n1, "read-only union after remount");
	cr_assert(exists(RT("xinodir")), "-o xino=PATH did not create the table directory");
}

UTEST(xino, xino_off_still_unique)
{
	mount_tmpfs(H.lo[0], "size=4m");
	mount_tmpfs(H.lo[1], "size=4m");
	fill(H.lo[0], "A");
	fill(H.lo[1], "B");
	h_mount(fmt, 2, "xino=off");
	size_t n;
	snapshot(&n);
	cr_assert_gt(n, 60);
}

/* Names in dir, newline separated ("" when missing). */
static char *names_in(const char *dir)
{
	char *l = ls(dir, false);
	return l ? l : strdup("");
}

UTEST(xino, readonly_union_default_table_is_stable)
{
	/* without -o xino= a read-only union keeps its table in
	 * /tmp/.strata-xino-UID/ (docs/unionfs.md); remove what we add */
	char tdir[64];
	snprintf(tdir, sizeof tdir, "/tmp/.strata-xino-%u", (unsigned)getuid());
	char *before = names_in(tdir);
	fill(H.lo[0], "A");
	fill(H.lo[1], "B");
	const char *opts = fmt == FMT_AUFS ? pf("dirs=%s=ro:%s=ro", H.lo[0], H.lo[1])
					   : pf("lowerdir=%s:%s", H.lo[0], H.lo[1]);
	h_mount_opts(opts);
	size_t n0;
	struct obj *s0 = snapshot(&n0);
	h_remount();
	size_t n1;
	struct obj *s1 = snapshot(&n1);
	h_umount();
	char *after = names_in(tdir);
	/* delete the entries this test created */
	for (char *name = strtok(after, "\n"); name; name = strtok(NULL, "\n")) {
		char pat[300];
		snprintf(pat, sizeof pat, "\n%s\n", name);
		char *b = malloc(strlen(before) + 3);
		sprintf(b, "\n%s\n", before);
		if (!strstr(b, pat))
			rm_rf(pf("%s/%s", tdir, name));
		free(b);
	}
	assert_same_inos(s0, n0, s1, n1, "read-only union (default table) after remount");
}

/* Semantic point 2: readdir merges all branches, lists each name once,
 * d_type == lstat type, d_ino == st_ino, hides whiteouts and meta names,
 * handles 50 000-entry directories over many getdents calls, and seekdir to
 * a telldir value resumes at the same name. */
#include "harness.h"

#include <dirent.h>
#include <fcntl.h>
#include <search.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/xattr.h>
#include <unistd.h>

struct ld64 {
	uint64_t d_ino;
	int64_t d_off;
	unsigned short d_reclen;
	unsigned char d_type;
	char d_name[];
};

struct dent {
	char *name;
	uint64_t ino;
	unsigned char type;
};

/* Reads a whole directory with raw getdents64 and a small buffer. */
static struct dent *read_all(const char *dir, size_t bufsize, size_t *count, int *calls)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY);
	cr_assert(fd >= 0, "open %s: %s", dir, strerror(errno));
	char *buf = malloc(bufsize);
	size_t n = 0, cap = 1024;
	struct dent *v = malloc(cap * sizeof *v);
	*calls = 0;
	for (;;) {
		long r = syscall(SYS_getdents64, fd, buf, bufsize);
		cr_assert(r >= 0, "getdents64 %s: %s", dir, strerror(errno));
		(*calls)++;
		if (r == 0)
			break;
		for (long off = 0; off < r;) {
			struct ld64 *e = (struct ld64 *)(buf + off);
			off += e->d_reclen;
			if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
				continue;
			if (n == cap) {
				cap *= 2;
				v = realloc(v, cap * sizeof *v);
			}
			v[n].name = strdup(e->d_name);
			v[n].ino = e->d_ino;
			v[n].type = e->d_type;
			n++;
		}
	}
	close(fd);
	free(buf);
	*count = n;
	return v;
}

static int cmp_dent(const void *a, const void *b)
{
	return strcmp(((const struct dent *)a)->name, ((const struct dent *)b)->name);
}

static void assert_no_dups(struct dent *v, size_t n)
{
	qsort(v, n, sizeof *v, cmp_dent);
	for (size_t i = 1; i < n; i++)
		cr_assert(strcmp(v[i - 1].name, v[i].name) != 0, "name \"%s\" listed twice", v[i].name);
}

UTEST(readdir, merged_each_name_once)
{
	mk_file(UP("a"), "a", 0644);
	mk_file(UP("both"), "u", 0644);
	mk_file(UP("d/z"), "z", 0644);
	mk_file(LO(0, "both"), "0", 0644);
	mk_file(LO(0, "b"), "b", 0644);
	mk_file(LO(0, "d/x"), "x", 0644);
	mk_file(LO(1, "both"), "1", 0644);
	mk_file(LO(1, "c"), "c", 0644);
	mk_file(LO(1, "d/y"), "y", 0644);
	mk_file(LO(1, "d/x"), "x1", 0644);
	mk_file(LO(1, "gone"), "g", 0644);
	mk_wh(fmt, H.up, "gone");
	mk_file(LO(1, "d/gone2"), "g", 0644);
	mk_wh(fmt, LO(0, "d"), "gone2");
	h_mount(fmt, 2, NULL);

	size_t n;
	int calls;
	struct dent *v = read_all(H.mnt, 4096, &n, &calls);
	assert_no_dups(v, n);
	assert_str(ls(H.mnt, false), "a\nb\nboth\nc\nd");
	v = read_all(MN("d"), 4096, &n, &calls);
	assert_no_dups(v, n);
	assert_str(ls(MN("d"), false), "x\ny\nz");
	assert_file(MN("d/x"), "x");
}

UTEST(readdir, dtype_and_dino_match_lstat)
{
	mk_file(UP("uf"), "f", 0644);
	mk_dir(UP("ud"), 0755);
	mk_symlink("t", UP("ul"));
	mk_file(LO(0, "lf"), "f", 0644);
	mk_dir(LO(0, "ld"), 0755);
	mk_symlink("t", LO(0, "ll"));
	cr_assert(mkfifo(LO(0, "lp"), 0644) == 0);
	cr_assert(mknod(LO(0, "lc"), S_IFCHR | 0644, makedev(1, 3)) == 0);
	cr_assert(mknod(LO(0, "lb"), S_IFBLK | 0644, makedev(7, 0)) == 0);
	cr_assert(mknod(LO(1, "ls"), S_IFSOCK | 0644, 0) == 0);
	mk_dir(LO(1, "merged/in1"), 0755);
	mk_file(LO(0, "merged/in0"), "0", 0644);
	mk_file(UP("merged/inu"), "u", 0644);
	/* type conflicts across branches: the top one is what lstat and d_type say */
	mk_file(UP("fileoverdir"), "f", 0644);
	mk_dir(LO(0, "fileoverdir"), 0755);
	mk_dir(LO(0, "diroverlink"), 0755);
	mk_symlink("x", LO(1, "diroverlink"));
	mk_symlink("x", LO(0, "linkoverfile"));
	mk_file(LO(1, "linkoverfile"), "f", 0644);
	h_mount(fmt, 2, NULL);

	const char *dirs[] = {H.mnt, MN("merged")};
	for (int di = 0; di < 2; di++) {
		size_t n;
		int calls;
		struct dent *v = read_all(dirs[di], 512, &n, &calls);
		cr_assert(n > 0);
		for (size_t i = 0; i < n; i++) {
			struct stat st;
			const char *p = pf("%s/%s", dirs[di], v[i].name);
			cr_assert(lstat(p, &st) == 0, "lstat %s: %s", p, strerror(errno));
			cr_assert_eq(v[i].type, IFTODT(st.st_mode), "%s: d_type %d, lstat type %d", p,
				     v[i].type, IFTODT(st.st_mode));
			cr_assert_eq(v[i].ino, st.st_ino, "%s: d_ino %llu, st_ino %llu", p,
				     (unsigned long long)v[i].ino, (unsigned long long)st.st_ino);
		}
		assert_no_dups(v, n);
	}
	assert_str(ls(H.mnt, false), "diroverlink\nfileoverdir\nlb\nlc\nld\nlf\nlinkoverfile\nll\n"
				     "lp\nls\nmerged\nud\nuf\nul");
	/* "." has the directory's own number */
	int fd = open(H.mnt, O_RDONLY | O_DIRECTORY);
	char buf[4096];
	long r = syscall(SYS_getdents64, fd, buf, sizeof buf);
	cr_assert(r > 0);
	struct stat st;
	assert_ok(fstat(fd, &st));
	bool seen_dot = false;
	for (long off = 0; off < r;) {
		struct ld64 *e = (struct ld64 *)(buf + off);
		off += e->d_reclen;
		if (!strcmp(e->d_name, ".")) {
			seen_dot = true;
			cr_assert_eq(e->d_ino, st.st_ino, "d_ino of \".\" is not the root's st_ino");
			cr_assert_eq(e->d_type, DT_DIR);
		}
	}
	cr_assert(seen_dot, "no \".\" entry");
	close(fd);
}

/* READDIRPLUS hands out attributes from a listing made at the first
 * getdents: a file copied up after that must still be reported as its
 * upper copy when its entry goes out later (the kernel keeps what the
 * reply says, over attributes it already had). */
UTEST(readdir, entries_listed_before_a_copy_up_report_the_copy)
{
	for (int i = 0; i < 300; i++)
		mk_file(LO(1, pf("d/f%03d", i)), "lower", 0644);
	h_mount(fmt, 2, NULL);
	int fd = open(MN("d"), O_RDONLY | O_DIRECTORY);
	cr_assert(fd >= 0);
	char buf[1024];
	long r = syscall(SYS_getdents64, fd, buf, sizeof buf);
	cr_assert_gt(r, 0);
	/* The last names are not in the first small reply: change them now. */
	assert_ok(try_spew(MN("d/f299"), "+longer", O_WRONLY | O_APPEND));
	assert_ok(unlink(MN("d/f298")));
	/* A name looked up in the directory makes the kernel ask for the next
	 * chunk with READDIRPLUS again (FUSE_I_ADVISE_RDPLUS). */
	struct stat st;
	for (int i = 0; (r = syscall(SYS_getdents64, fd, buf, sizeof buf)) > 0; i++)
		assert_ok(stat(MN(pf("d/f%03d", 200 + i % 90)), &st));
	cr_assert_eq(r, 0, "getdents64: %s", strerror(errno));
	close(fd);
	assert_ok(stat(MN("d/f299"), &st));
	cr_assert_eq(st.st_size, 12, "size of the copied-up file: %lld", (long long)st.st_size);
	assert_file(MN("d/f299"), "lower+longer");
	assert_errno(stat(MN("d/f298"), &st), ENOENT);
	size_t n;
	int calls;
	struct dent *v = read_all(MN("d"), 4096, &n, &calls);
	cr_assert_eq(n, 299);
	for (size_t i = 0; i < n; i++) {
		assert_ok(lstat(pf("%s/%s", MN("d"), v[i].name), &st));
		cr_assert_eq(v[i].ino, st.st_ino, "%s: d_ino %llu, st_ino %llu", v[i].name,
			     (unsigned long long)v[i].ino, (unsigned long long)st.st_ino);
	}
}

UTEST(readdir, hides_whiteouts_and_meta_names)
{
	enum ufmt other = fmt == FMT_AUFS ? FMT_OVL : FMT_AUFS;
	mk_file(LO(1, "gone"), "g", 0644);
	mk_wh(fmt, H.lo[0], "gone");
	mk_file(LO(1, "gone2"), "g", 0644);
	mk_wh(other, H.lo[0], "gone2");
	mk_wh(fmt, H.up, "nothing-below");
	mk_wh(other, H.up, "nothing-below-2");
	mk_file(LO(0, "opq/in"), "i", 0644);
	mk_opq(FMT_AUFS, LO(0, "opq"));
	mk_file(LO(0, "keep"), "k", 0644);
	h_mount(fmt, 2, NULL);
	/* create and delete through the mount: whiteouts/meta written now */
	spew(MN("tmp"), "t");
	assert_ok(unlink(MN("tmp")));
	assert_ok(unlink(MN("keep")));
	spew(MN("new"), "n");

	assert_str(ls(H.mnt, false), "new\nopq");
	assert_str(ls(MN("opq"), false), "in");
	size_t n;
	int calls;
	struct dent *v = read_all(H.mnt, 1024, &n, &calls);
	for (size_t i = 0; i < n; i++) {
		cr_assert(strncmp(v[i].name, ".wh.", 4) != 0, "meta name %s listed", v[i].name);
		cr_assert(v[i].type != DT_CHR, "char device %s listed (a whiteout?)", v[i].name);
	}
}

static void make_names(const char *dir, const char *prefix, int from, int to)
{
	mkdir_p(dir, 0755);
	int dfd = open(dir, O_RDONLY | O_DIRECTORY);
	cr_assert(dfd >= 0);
	for (int i = from; i < to; i++) {
		char name[32];
		snprintf(name, sizeof name, "%s%05d", prefix, i);
		int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL, 0644);
		cr_assert(fd >= 0, "create %s/%s: %s", dir, name, strerror(errno));
		close(fd);
	}
	close(dfd);
}

UTEST(readdir, fifty_thousand_entries_small_buffer, .timeout = 280)
{
	make_names(UP("big"), "f", 0, 20000);
	make_names(LO(0, "big"), "f", 15000, 40000);
	make_names(LO(1, "big"), "f", 35000, 50000);
	make_names(LO(1, "big"), "w", 0, 1000);
	for (int i = 0; i < 1000; i++)
		mk_wh(fmt, UP("big"), pf("w%05d", i));
	h_mount(fmt, 2, NULL);

	for (int pass = 0; pass < 2; pass++) {
		size_t n;
		int calls;
		struct dent *v = read_all(MN("big"), pass ? 600 : 1024, &n, &calls);
		cr_assert_gt(calls, 100, "only %d getdents calls", calls);
		qsort(v, n, sizeof *v, cmp_dent);
		for (size_t i = 1; i < n; i++)
			cr_assert(strcmp(v[i - 1].name, v[i].name) != 0, "pass %d: %s listed twice",
				  pass, v[i].name);
		cr_assert_eq(n, 50000, "pass %d: %zu entries listed, want 50000", pass, n);
		for (size_t i = 0; i < n; i++) {
			char want[32];
			snprintf(want, sizeof want, "f%05zu", i);
			cr_assert_str_eq(v[i].name, want, "pass %d: entry %zu", pass, i);
			cr_assert_eq(v[i].type, DT_REG);
			free(v[i].name);
		}
		free(v);
	}
}

UTEST(readdir, seekdir_telldir_resume, .timeout = 200)
{
	make_names(UP("s"), "a", 0, 1200);
	make_names(LO(0, "s"), "a", 1000, 2200);
	make_names(LO(1, "s"), "a", 2000, 3000);
	make_names(LO(1, "s"), "b", 0, 300);
	for (int i = 0; i < 300; i += 2)
		mk_wh(fmt, LO(0, "s"), pf("b%05d", i));
	h_mount(fmt, 2, NULL);

	DIR *d = opendir(MN("s"));
	cr_assert(d);
	size_t cap = 4096, n = 0;
	long *pos = malloc(cap * sizeof *pos);
	char **names = malloc(cap * sizeof *names);
	for (;;) {
		long p = telldir(d);
		errno = 0;
		struct dirent *e = readdir(d);
		if (!e) {
			cr_assert_eq(errno, 0, "readdir: %s", strerror(errno));
			break;
		}
		cr_assert(n < cap);
		pos[n] = p;
		names[n] = strdup(e->d_name);
		n++;
	}
	cr_assert_eq(n, 3000 + 150 + 2, "%zu entries (with . and ..)", n);
	/* forwards, backwards and scattered seeks */
	size_t order[] = {0, 1, 2, 57, 1499, 2999, 3151, 1000, 17, 2500, 3100, 640, 3, 2048};
	for (size_t k = 0; k < sizeof order / sizeof *order; k++) {
		size_t i = order[k];
		if (i >= n)
			continue;
		seekdir(d, pos[i]);
		struct dirent *e = readdir(d);
		cr_assert(e, "readdir after seekdir to entry %zu: %s", i, strerror(errno));
		cr_assert_str_eq(e->d_name, names[i], "seekdir to entry %zu", i);
		/* and the listing goes on in the same order */
		if (i + 1 < n) {
			e = readdir(d);
			cr_assert(e);
			cr_assert_str_eq(e->d_name, names[i + 1], "entry after %zu", i);
		}
	}
	for (size_t i = 0; i < n; i += 97) {
		seekdir(d, pos[i]);
		struct dirent *e = readdir(d);
		cr_assert(e && !strcmp(e->d_name, names[i]), "seek %zu", i);
	}
	rewinddir(d);
	struct dirent *e = readdir(d);
	cr_assert(e);
	cr_assert_str_eq(e->d_name, names[0]);
	closedir(d);
}

UTEST(readdir, reflects_changes_through_the_mount)
{
	mk_file(LO(0, "a"), "a", 0644);
	mk_file(LO(1, "b"), "b", 0644);
	mk_file(LO(0, "d/x"), "x", 0644);
	h_mount(fmt, 2, NULL);
	assert_str(ls(H.mnt, false), "a\nb\nd");
	assert_ok(unlink(MN("b")));
	assert_str(ls(H.mnt, false), "a\nd");
	spew(MN("b"), "again");
	spew(MN("c"), "c");
	assert_str(ls(H.mnt, false), "a\nb\nc\nd");
	assert_ok(unlink(MN("d/x")));
	assert_str(ls(MN("d"), false), "");
	assert_ok(mkdir(MN("d/sub"), 0755));
	assert_str(ls(MN("d"), false), "sub");
	/* an open directory stream sees names created before it was rewound */
	DIR *dd = opendir(H.mnt);
	cr_assert(dd);
	while (readdir(dd))
		;
	spew(MN("late"), "l");
	rewinddir(dd);
	int seen = 0;
	struct dirent *e;
	while ((e = readdir(dd)))
		seen += !strcmp(e->d_name, "late");
	closedir(dd);
	cr_assert_eq(seen, 1, "\"late\" seen %d times after rewinddir", seen);
}

UTEST(readdir, dir_with_all_lower_entries_whited_out_is_empty)
{
	mk_file(LO(0, "e/x"), "x", 0644);
	mk_file(LO(1, "e/y"), "y", 0644);
	mk_wh(fmt, UP("e"), "x");
	mk_wh(fmt, UP("e"), "y");
	h_mount(fmt, 2, NULL);
	assert_str(ls(MN("e"), false), "");
	size_t n;
	int calls;
	read_all(MN("e"), 4096, &n, &calls);
	cr_assert_eq(n, 0);
}

UTEST(readdir, listing_survives_remount)
{
	make_names(UP("r"), "n", 0, 300);
	make_names(LO(0, "r"), "n", 200, 600);
	h_mount(fmt, 1, NULL);
	for (int i = 0; i < 50; i++)
		assert_ok(unlink(MN(pf("r/n%05d", i * 10))));
	char *before = ls(MN("r"), false);
	cr_assert_eq(count_entries(MN("r"), false), 550);
	h_remount();
	assert_str(ls(MN("r"), false), before);
}

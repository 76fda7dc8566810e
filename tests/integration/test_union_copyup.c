/* Semantic points 3 and 4: read-only operations never copy up; the first
 * modification copies data (sparse stays sparse), mode, owner, ns
 * timestamps and xattrs, after creating the missing parents with their lower
 * metadata; the copy is atomic (workdir leftovers go at the next mount) and an
 * fd opened read-only before the copy-up sees later writes. */
#include "harness.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/statfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#define F "a/b/f"
#define MT_S 1500000000
#define MT_NS 123456789L

static char *lower_data; /* 100 000 bytes, not all the same */
static size_t lower_len = 100000;

/* l0: a/ (0750 1111:2222 user.dirattr=D)  a/b/ (0705 1112:2223)
 *     a/b/f (0640 1234:5678, 3 xattrs, mtime MT_S.MT_NS)  a/lnk -> b/f */
static void setup_lower(void)
{
	lower_data = malloc(lower_len + 1);
	for (size_t i = 0; i < lower_len; i++)
		lower_data[i] = (char)('a' + (i * 7 + i / 26) % 26);
	lower_data[lower_len] = 0;
	mk_filen(LO(0, F), lower_data, lower_len, 0640);
	mk_symlink("b/f", LO(0, "a/lnk"));
	cr_assert(setxattr(LO(0, F), "user.one", "1", 1, 0) == 0);
	cr_assert(setxattr(LO(0, F), "user.bin", "\0\1\2", 3, 0) == 0);
	cr_assert(setxattr(LO(0, F), "trusted.t", "tv", 2, 0) == 0);
	cr_assert(setxattr(LO(0, "a"), "user.dirattr", "D", 1, 0) == 0);
	cr_assert(chown(LO(0, F), 1234, 5678) == 0);
	cr_assert(chown(LO(0, "a/b"), 1112, 2223) == 0);
	cr_assert(chown(LO(0, "a"), 1111, 2222) == 0);
	cr_assert(chmod(LO(0, "a/b"), 0705) == 0);
	cr_assert(chmod(LO(0, "a"), 0750) == 0);
	set_times(LO(0, F), MT_S, MT_NS);
}

static void assert_xattr(const char *path, const char *name, const void *val, size_t len)
{
	char buf[256];
	ssize_t n = lgetxattr(path, name, buf, sizeof buf);
	cr_assert(n >= 0, "getxattr %s %s: %s", path, name, strerror(errno));
	cr_assert(n == (ssize_t)len && !memcmp(buf, val, len), "%s: xattr %s differs", path, name);
}

static void assert_meta(const char *path, mode_t mode, uid_t uid, gid_t gid)
{
	struct stat st;
	cr_assert(lstat(path, &st) == 0, "lstat %s: %s", path, strerror(errno));
	cr_assert_eq(st.st_mode & 07777, mode, "%s: mode %04o, want %04o", path,
		     st.st_mode & 07777, mode);
	cr_assert_eq(st.st_uid, uid, "%s: uid %u, want %u", path, st.st_uid, uid);
	cr_assert_eq(st.st_gid, gid, "%s: gid %u, want %u", path, st.st_gid, gid);
}

static void assert_mtime(const char *path, time_t s, long ns)
{
	struct stat st;
	cr_assert(lstat(path, &st) == 0, "lstat %s: %s", path, strerror(errno));
	cr_assert(st.st_mtim.tv_sec == s && st.st_mtim.tv_nsec == ns, "%s: mtime %lld.%09ld, want %lld.%09ld",
		  path, (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec, (long long)s, ns);
}

/* The parents of the copy exist in upper with the lower metadata. */
static void assert_parents_copied(void)
{
	assert_meta(UP("a"), 0750, 1111, 2222);
	assert_xattr(UP("a"), "user.dirattr", "D", 1);
	assert_meta(UP("a/b"), 0705, 1112, 2223);
}

static void assert_lower_untouched(void)
{
	char *c = slurp(LO(0, F));
	cr_assert(c && !strcmp(c, lower_data), "lower file changed");
	assert_meta(LO(0, F), 0640, 1234, 5678);
	assert_mtime(LO(0, F), MT_S, MT_NS);
	assert_xattr(LO(0, F), "user.one", "1", 1);
}

/* Everything but what the operation changed went up unchanged. */
static void assert_copied(bool data, bool mode, bool owner, bool mtime, bool xattrs)
{
	cr_assert(exists(UP(F)), "no copy-up: %s missing", UP(F));
	if (data) {
		char *c = slurp(UP(F));
		cr_assert(c && strlen(c) == lower_len && !strcmp(c, lower_data), "upper data differs");
		c = slurp(MN(F));
		cr_assert(c && !strcmp(c, lower_data), "data through the mount differs");
	}
	struct stat st;
	assert_ok(lstat(UP(F), &st));
	if (mode)
		cr_assert_eq(st.st_mode & 07777, 0640, "mode %04o", st.st_mode & 07777);
	if (owner)
		cr_assert(st.st_uid == 1234 && st.st_gid == 5678, "owner %u:%u", st.st_uid, st.st_gid);
	if (mtime) {
		assert_mtime(UP(F), MT_S, MT_NS);
		assert_mtime(MN(F), MT_S, MT_NS);
	}
	if (xattrs) {
		assert_xattr(UP(F), "user.one", "1", 1);
		assert_xattr(UP(F), "user.bin", "\0\1\2", 3);
		assert_xattr(UP(F), "trusted.t", "tv", 2);
	}
	assert_parents_copied();
	assert_lower_untouched();
}

UTEST(copyup, read_only_operations_leave_upper_untouched)
{
	setup_lower();
	mk_file(LO(1, "a/b/g"), "g", 0644);
	h_mount(fmt, 2, NULL);
	char *before = tree(H.up, true, true);
	struct stat st;
	assert_ok(stat(MN(F), &st));
	assert_ok(lstat(MN("a/lnk"), &st));
	int fd = open(MN(F), O_RDONLY);
	cr_assert(fd >= 0);
	char buf[64];
	cr_assert_eq(read(fd, buf, sizeof buf), (ssize_t)sizeof buf);
	void *m = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 0);
	cr_assert(m != MAP_FAILED);
	cr_assert(!memcmp(m, lower_data, 4096));
	munmap(m, 4096);
	assert_ok(fstat(fd, &st));
	close(fd);
	free(ls(H.mnt, false));
	free(ls(MN("a"), false));
	free(ls(MN("a/b"), false));
	assert_str(rdlink(MN("a/lnk")), "b/f");
	cr_assert_eq(getxattr(MN(F), "user.one", buf, sizeof buf), 1);
	cr_assert_gt(listxattr(MN(F), buf, sizeof buf), 0);
	cr_assert_eq(getxattr(MN("a"), "user.dirattr", buf, sizeof buf), 1);
	assert_ok(access(MN(F), R_OK | W_OK));
	assert_ok(access(MN("a/b"), R_OK | W_OK | X_OK));
	struct statfs sf;
	assert_ok(statfs(MN(F), &sf));
	fd = open(MN("a/b"), O_RDONLY | O_DIRECTORY);
	cr_assert(fd >= 0);
	close(fd);
	assert_file(MN("a/b/g"), "g");
	assert_errno(open(MN("a/b/missing"), O_RDONLY), ENOENT);
	assert_str(tree(H.up, true, true), before);
	assert_str(before, "");
	assert_lower_untouched();
}

UTEST(copyup, open_for_write_without_writing)
{
	setup_lower();
	h_mount(fmt, 1, NULL);
	int fd = open(MN(F), O_WRONLY);
	cr_assert(fd >= 0, "open O_WRONLY: %s", strerror(errno));
	close(fd);
	assert_copied(true, true, true, true, true);
}

UTEST(copyup, open_rdwr_and_write)
{
	setup_lower();
	h_mount(fmt, 1, NULL);
	int fd = open(MN(F), O_RDWR);
	cr_assert(fd >= 0);
	cr_assert_eq(pwrite(fd, "XY", 2, 3), 2);
	close(fd);
	char *want = strdup(lower_data);
	want[3] = 'X';
	want[4] = 'Y';
	assert_file(UP(F), want);
	assert_file(MN(F), want);
	assert_copied(false, true, true, false, true);
}

UTEST(copyup, o_trunc)
{
	setup_lower();
	h_mount(fmt, 1, NULL);
	int fd = open(MN(F), O_WRONLY | O_TRUNC);
	cr_assert(fd >= 0);
	struct stat st;
	assert_ok(fstat(fd, &st));
	cr_assert_eq(st.st_size, 0);
	cr_assert_eq(write(fd, "new", 3), 3);
	close(fd);
	assert_file(UP(F), "new");
	assert_file(MN(F), "new");
	assert_copied(false, true, true, false, true);
}

UTEST(copyup, chmod)
{
	setup_lower();
	h_mount(fmt, 1, NULL);
	assert_ok(chmod(MN(F), 0604));
	assert_meta(UP(F), 0604, 1234, 5678);
	assert_meta(MN(F), 0604, 1234, 5678);
	assert_copied(true, false, true, true, true);
}

UTEST(copyup, chown)
{
	setup_lower();
	h_mount(fmt, 1, NULL);
	assert_ok(chown(MN(F), 4321, 8765));
	assert_meta(UP(F), 0640, 4321, 8765);
	assert_meta(MN(F), 0640, 4321, 8765);
	assert_copied(true, true, false, true, true);
}

UTEST(copyup, utimens)
{
	setup_lower();
	h_mount(fmt, 1, NULL);
	struct timespec ts[2] = {{1600000000, 111111111}, {1600000001, 987654321}};
	assert_ok(utimensat(AT_FDCWD, MN(F), ts, 0));
	assert_mtime(UP(F), 1600000001, 987654321);
	assert_mtime(MN(F), 1600000001, 987654321);
	struct stat st;
	assert_ok(stat(UP(F), &st));
	cr_assert(st.st_atim.tv_sec == 1600000000 && st.st_atim.tv_nsec == 111111111);
	assert_copied(true, true, true, false, true);
}

UTEST(copyup, truncate)
{
	setup_lower();
	h_mount(fmt, 1, NULL);
	assert_ok(truncate(MN(F), 5));
	assert_file(UP(F), pf("%.5s", lower_data));
	assert_file(MN(F), pf("%.5s", lower_data));
	assert_copied(false, true, true, false, true);
	assert_ok(truncate(MN(F), 10));
	char buf[16];
	int fd = open(MN(F), O_RDONLY);
	cr_assert_eq(read(fd, buf, sizeof buf), 10);
	close(fd);
	cr_assert(!memcmp(buf, lower_data, 5) && !memcmp(buf + 5, "\0\0\0\0\0", 5));
}

UTEST(copyup, setxattr)
{
	setup_lower();
	h_mount(fmt, 1, NULL);
	assert_ok(setxattr(MN(F), "user.new", "n", 1, 0));
	assert_xattr(UP(F), "user.new", "n", 1);
	assert_xattr(MN(F), "user.new", "n", 1);
	assert_copied(true, true, true, true, true);
	char buf[8];
	assert_errno(getxattr(LO(0, F), "user.new", buf, sizeof buf), ENODATA);
}

UTEST(copyup, removexattr)
{
	setup_lower();
	h_mount(fmt, 1, NULL);
	assert_ok(removexattr(MN(F), "user.one"));
	char buf[8];
	assert_errno(getxattr(UP(F), "user.one", buf, sizeof buf), ENODATA);
	assert_errno(getxattr(MN(F), "user.one", buf, sizeof buf), ENODATA);
	assert_xattr(UP(F), "user.bin", "\0\1\2", 3);
	assert_copied(true, true, true, true, false);
}

UTEST(copyup, link)
{
	setup_lower();
	h_mount(fmt, 1, NULL);
	assert_ok(link(MN(F), MN("a/b/g")));
	assert_copied(true, true, true, true, true);
	struct stat s1, s2;
	assert_ok(stat(UP(F), &s1));
	assert_ok(stat(UP("a/b/g"), &s2));
	cr_assert(s1.st_ino == s2.st_ino && s1.st_nlink == 2, "upper f and g are not one inode");
}

UTEST(copyup, dir_and_symlink_metadata)
{
	setup_lower();
	h_mount(fmt, 1, NULL);
	assert_ok(chmod(MN("a/b"), 0711));
	assert_meta(UP("a/b"), 0711, 1112, 2223);
	assert_meta(UP("a"), 0750, 1111, 2222);
	assert_str(ls(MN("a/b"), false), "f");
	assert_ok(lchown(MN("a/lnk"), 77, 88));
	assert_str(rdlink(UP("a/lnk")), "b/f");
	assert_meta(UP("a/lnk"), 0777, 77, 88);
	assert_file(MN("a/lnk"), lower_data);
}

UTEST(copyup, deep_parents_get_lower_metadata)
{
	mk_file(LO(0, "p/q/r/s/file"), "deep", 0600);
	mode_t modes[] = {0711, 0755, 0700, 0775};
	const char *dirs[] = {"p", "p/q", "p/q/r", "p/q/r/s"};
	for (int i = 3; i >= 0; i--) {
		cr_assert(chmod(LO(0, dirs[i]), modes[i]) == 0);
		cr_assert(chown(LO(0, dirs[i]), 100u + (unsigned)i, 200u + (unsigned)i) == 0);
	}
	h_mount(fmt, 1, NULL);
	cr_assert_eq(try_spew(MN("p/q/r/s/file"), "more", O_WRONLY | O_APPEND), 0);
	assert_file(UP("p/q/r/s/file"), "deepmore");
	for (int i = 0; i < 4; i++)
		assert_meta(UP(dirs[i]), modes[i], 100u + (unsigned)i, 200u + (unsigned)i);
}

UTEST(copyup, sparse_file_stays_sparse, .timeout = 120)
{
	mk_sparse(LO(0, "sp"), 1L << 30, 700L << 20, "B");
	int fd = open(LO(0, "sp"), O_WRONLY);
	cr_assert_eq(pwrite(fd, "A", 1, 0), 1);
	close(fd);
	h_mount(fmt, 1, NULL);
	assert_ok(chmod(MN("sp"), 0600));
	struct stat st;
	assert_ok(stat(UP("sp"), &st));
	cr_assert_eq(st.st_size, 1L << 30);
	cr_assert_lt(st.st_blocks * 512, 8L << 20, "copy is not sparse: %lld bytes allocated",
		     (long long)st.st_blocks * 512);
	fd = open(MN("sp"), O_RDONLY);
	char c[2] = {0};
	cr_assert_eq(pread(fd, c, 1, 700L << 20), 1);
	cr_assert_eq(c[0], 'B');
	cr_assert_eq(pread(fd, c, 1, 0), 1);
	cr_assert_eq(c[0], 'A');
	cr_assert_eq(pread(fd, c, 1, 300L << 20), 1);
	cr_assert_eq(c[0], 0);
	close(fd);
}

UTEST(copyup, big_file_data_intact)
{
	size_t len = 3u << 20;
	unsigned char *d = malloc(len);
	uint64_t x = 88172645463325252ULL;
	for (size_t i = 0; i < len; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		d[i] = (unsigned char)x;
	}
	mk_filen(LO(0, "big"), d, len, 0644);
	h_mount(fmt, 1, NULL);
	cr_assert_eq(try_spew(MN("big"), "TAIL", O_WRONLY | O_APPEND), 0);
	int fd = open(UP("big"), O_RDONLY);
	cr_assert(fd >= 0);
	size_t n = 0;
	char *got = read_fd_all(fd, &n);
	close(fd);
	cr_assert_eq(n, len + 4);
	cr_assert(!memcmp(got, d, len) && !memcmp(got + len, "TAIL", 4), "copied data differs");
}

UTEST(copyup, readonly_fd_sees_writes_after_copyup)
{
	setup_lower();
	h_mount(fmt, 1, NULL);
	int ro = open(MN(F), O_RDONLY);
	cr_assert(ro >= 0);
	char buf[16] = {0};
	cr_assert_eq(pread(ro, buf, 7, 0), 7);
	cr_assert(!memcmp(buf, lower_data, 7));
	int wr = open(MN(F), O_WRONLY);
	cr_assert(wr >= 0);
	cr_assert_eq(pwrite(wr, "CHANGED", 7, 0), 7);
	assert_ok(fsync(wr));
	close(wr);
	/* drop cached pages so the read has to go to the filesystem */
	posix_fadvise(ro, 0, 0, POSIX_FADV_DONTNEED);
	memset(buf, 0, sizeof buf);
	cr_assert_eq(pread(ro, buf, 7, 0), 7);
	cr_assert_str_eq(buf, "CHANGED", "read-only fd opened before the copy-up reads stale data");
	cr_assert_eq(try_spew(MN(F), "++", O_WRONLY | O_APPEND), 0);
	posix_fadvise(ro, 0, 0, POSIX_FADV_DONTNEED);
	memset(buf, 0, sizeof buf);
	cr_assert_eq(pread(ro, buf, 2, (off_t)lower_len), 2);
	cr_assert_str_eq(buf, "++");
	struct stat st;
	assert_ok(fstat(ro, &st));
	cr_assert_eq(st.st_size, (off_t)lower_len + 2);
	close(ro);
}

static const char *meta_work_dir(enum ufmt fmt)
{
	return fmt == FMT_AUFS ? UP(".wh..wh.strata/work") : pf("%s/strata/work", H.wk);
}

UTEST(copyup, workdir_leftovers_removed_at_next_mount)
{
	mk_file(LO(0, "f"), "f", 0644);
	h_mount(fmt, 1, NULL);
	h_umount();
	char w[PATH_MAX];
	snprintf(w, sizeof w, "%s", meta_work_dir(fmt));
	mkdir_p(w, 0700);
	mk_file(pf("%s/#partial-copy", w), "half a file", 0600);
	mk_file(pf("%s/leftdir/inner", w), "x", 0600);
	mk_symlink("/etc", pf("%s/leftlink", w));
	h_mount(fmt, 1, NULL);
	int n = count_entries(w, false);
	cr_assert_eq(n, 0, "%d leftovers in %s after mount: %s", n, w, ls(w, false));
	assert_str(ls(H.mnt, false), "f");
	assert_ok(chmod(MN("f"), 0600));
	assert_file(UP("f"), "f");
}

UTEST(copyup, copy_is_built_in_workdir_not_in_place)
{
	/* after the copy-up the work area holds nothing, and no temp name
	 * ever shows up in the upper directory */
	setup_lower();
	h_mount(fmt, 1, NULL);
	assert_ok(chmod(MN(F), 0600));
	assert_str(ls(UP("a/b"), false), "f");
	int n = count_entries(meta_work_dir(fmt), false);
	cr_assert(n <= 0, "work dir not empty after copy-up: %s", ls(meta_work_dir(fmt), false));
}

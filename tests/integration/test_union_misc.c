/* Semantic point 12: shared writable mmap of a copied-up file, O_APPEND,
 * O_TRUNC, fallocate, flock and fcntl locks, fsync/fdatasync, sparse files
 * over 4 GiB, 255-byte names, trees deeper than PATH_MAX. */
#include "harness.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#define GiB (1LL << 30)

UTEST(misc, shared_writable_mmap_of_copied_up_file)
{
	char data[8192];
	for (size_t i = 0; i < sizeof data; i++)
		data[i] = (char)('0' + i % 10);
	mk_filen(LO(0, "f"), data, sizeof data, 0644);
	h_mount(fmt, 1, NULL);
	int ro = open(MN("f"), O_RDONLY);
	cr_assert(ro >= 0);
	int fd = open(MN("f"), O_RDWR);
	cr_assert(fd >= 0);
	char *m = mmap(NULL, sizeof data, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	cr_assert(m != MAP_FAILED, "mmap MAP_SHARED: %s", strerror(errno));
	cr_assert(!memcmp(m, data, sizeof data));
	memcpy(m + 100, "MMAP", 4);
	memcpy(m + 5000, "PAGE2", 5);
	assert_ok(msync(m, sizeof data, MS_SYNC));
	munmap(m, sizeof data);
	close(fd);
	memcpy(data + 100, "MMAP", 4);
	memcpy(data + 5000, "PAGE2", 5);
	char got[8192];
	fd = open(MN("f"), O_RDONLY);
	cr_assert_eq(read(fd, got, sizeof got), (ssize_t)sizeof got);
	close(fd);
	cr_assert(!memcmp(got, data, sizeof data), "read after mmap write differs");
	fd = open(UP("f"), O_RDONLY);
	cr_assert(fd >= 0);
	cr_assert_eq(read(fd, got, sizeof got), (ssize_t)sizeof got);
	close(fd);
	cr_assert(!memcmp(got, data, sizeof data), "upper file lacks the mmap write");
	posix_fadvise(ro, 0, 0, POSIX_FADV_DONTNEED);
	cr_assert_eq(pread(ro, got, 4, 100), 4);
	cr_assert(!memcmp(got, "MMAP", 4));
	close(ro);
}

/* An unlinked file lives on through its open descriptors: its data and
 * attributes still change, as on overlayfs, and the lower file never does. */
UTEST(misc, unlinked_open_file_keeps_working)
{
	mk_file(LO(0, "f"), "lower", 0644);
	h_mount(fmt, 1, NULL);
	int ro = open(MN("f"), O_RDONLY);
	int rw = open(MN("f"), O_RDWR);
	cr_assert(ro >= 0 && rw >= 0);
	cr_assert_eq(pwrite(rw, "LO", 2, 0), 2);
	assert_ok(unlink(MN("f")));
	cr_assert(!exists(MN("f")));
	cr_assert_eq(pwrite(rw, "W", 1, 5), 1);
	assert_ok(fchmod(rw, 0600));
	assert_ok(fchown(rw, 1, 2));
	struct timespec ts[2] = { { .tv_sec = 1000, .tv_nsec = 0 }, { .tv_sec = 2000, .tv_nsec = 5 } };
	assert_ok(futimens(rw, ts));
	struct stat st;
	assert_ok(fstat(ro, &st));
	cr_assert_eq(st.st_mode & 07777, 0600);
	cr_assert(st.st_uid == 1 && st.st_gid == 2, "owner %u:%u", st.st_uid, st.st_gid);
	cr_assert_eq(st.st_mtim.tv_sec, 2000);
	cr_assert_eq(st.st_size, 6);
	char buf[16] = "";
	cr_assert_eq(pread(ro, buf, sizeof buf, 0), 6);
	cr_assert_str_eq(buf, "LOwerW");
	assert_ok(close(rw));
	assert_ok(close(ro));
	assert_file(LO(0, "f"), "lower");
}

UTEST(misc, o_append_and_o_trunc)
{
	mk_file(LO(0, "f"), "abc", 0644);
	mk_file(LO(0, "t"), "to be truncated", 0644);
	h_mount(fmt, 1, NULL);
	int a = open(MN("f"), O_WRONLY | O_APPEND);
	int b = open(MN("f"), O_WRONLY | O_APPEND);
	cr_assert(a >= 0 && b >= 0);
	cr_assert_eq(write(a, "def", 3), 3);
	cr_assert_eq(write(b, "ghi", 3), 3);
	cr_assert_eq(pwrite(a, "jk", 2, 0), 2); /* Linux: O_APPEND wins over the offset */
	close(a);
	close(b);
	assert_file(MN("f"), "abcdefghijk");
	assert_file(UP("f"), "abcdefghijk");
	assert_file(LO(0, "f"), "abc");
	int t = open(MN("t"), O_RDWR | O_TRUNC);
	cr_assert(t >= 0);
	struct stat st;
	assert_ok(fstat(t, &st));
	cr_assert_eq(st.st_size, 0);
	close(t);
	assert_file(MN("t"), "");
	spew(MN("u"), "upper content");
	t = open(MN("u"), O_WRONLY | O_TRUNC);
	close(t);
	assert_file(MN("u"), "");
}

UTEST(misc, fallocate)
{
	mk_file(LO(0, "l"), "lower", 0644);
	h_mount(fmt, 1, NULL);
	int fd = open(MN("new"), O_RDWR | O_CREAT, 0644);
	cr_assert(fd >= 0);
	assert_ok(fallocate(fd, 0, 0, 1 << 20));
	struct stat st;
	assert_ok(fstat(fd, &st));
	cr_assert_eq(st.st_size, 1 << 20);
	assert_ok(stat(UP("new"), &st));
	cr_assert_geq(st.st_blocks * 512, 1 << 20, "upper file not allocated");
	cr_assert_eq(pwrite(fd, "XXXXXXXX", 8, 4096), 8);
	assert_ok(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 65536));
	char buf[8];
	cr_assert_eq(pread(fd, buf, 8, 4096), 8);
	cr_assert(!memcmp(buf, "\0\0\0\0\0\0\0\0", 8), "punched range not zero");
	close(fd);
	fd = open(MN("l"), O_RDWR);
	cr_assert(fd >= 0);
	assert_ok(fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, 1 << 16));
	assert_ok(fstat(fd, &st));
	cr_assert_eq(st.st_size, 5);
	assert_ok(fallocate(fd, 0, 0, 100));
	assert_ok(fstat(fd, &st));
	cr_assert_eq(st.st_size, 100);
	close(fd);
	assert_ok(stat(UP("l"), &st));
	cr_assert_eq(st.st_size, 100);
}

UTEST(misc, flock)
{
	mk_file(LO(0, "f"), "f", 0644);
	h_mount(fmt, 1, NULL);
	int a = open(MN("f"), O_RDONLY), b = open(MN("f"), O_RDONLY);
	cr_assert(a >= 0 && b >= 0);
	assert_ok(flock(a, LOCK_EX));
	assert_errno(flock(b, LOCK_EX | LOCK_NB), EWOULDBLOCK);
	assert_errno(flock(b, LOCK_SH | LOCK_NB), EWOULDBLOCK);
	assert_ok(flock(a, LOCK_UN));
	assert_ok(flock(b, LOCK_SH | LOCK_NB));
	assert_ok(flock(a, LOCK_SH | LOCK_NB));
	assert_errno(flock(a, LOCK_EX | LOCK_NB), EWOULDBLOCK);
	close(a);
	close(b);
}

UTEST(misc, fcntl_locks)
{
	mk_file(LO(0, "f"), "0123456789abcdefghijklmnopqrstuvwxyz", 0644);
	h_mount(fmt, 1, NULL);
	int fd = open(MN("f"), O_RDWR);
	cr_assert(fd >= 0);
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 10};
	assert_ok(fcntl(fd, F_SETLK, &fl));
	pid_t me = getpid();
	pid_t c = fork();
	cr_assert(c >= 0);
	if (c == 0) {
		int cfd = open(MN("f"), O_RDWR);
		struct flock l = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 5, .l_len = 2};
		if (fcntl(cfd, F_SETLK, &l) == 0 || (errno != EAGAIN && errno != EACCES))
			_exit(1);
		l = (struct flock){.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 10};
		if (fcntl(cfd, F_GETLK, &l) < 0 || l.l_type != F_WRLCK || l.l_pid != me)
			_exit(2);
		l = (struct flock){.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 20, .l_len = 5};
		if (fcntl(cfd, F_SETLK, &l) < 0)
			_exit(3);
		_exit(0);
	}
	int status;
	waitpid(c, &status, 0);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		  "child lock checks failed at step %d", WEXITSTATUS(status));
	/* open file description locks */
	int a = open(MN("f"), O_RDWR), b = open(MN("f"), O_RDWR);
	struct flock o = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 30, .l_len = 2};
	assert_ok(fcntl(a, F_OFD_SETLK, &o));
	o.l_start = 31;
	assert_errno(fcntl(b, F_OFD_SETLK, &o), EAGAIN);
	o.l_type = F_UNLCK;
	o.l_start = 30;
	assert_ok(fcntl(a, F_OFD_SETLK, &o));
	o.l_type = F_WRLCK;
	o.l_start = 31;
	assert_ok(fcntl(b, F_OFD_SETLK, &o));
	close(a);
	close(b);
	close(fd);
}

UTEST(misc, fsync_fdatasync)
{
	mk_file(LO(0, "f"), "f", 0644);
	h_mount(fmt, 1, NULL);
	int fd = open(MN("f"), O_RDWR);
	cr_assert(fd >= 0);
	cr_assert_eq(write(fd, "F", 1), 1);
	assert_ok(fsync(fd));
	assert_ok(fdatasync(fd));
	close(fd);
	fd = open(MN("f"), O_RDONLY);
	assert_ok(fsync(fd));
	close(fd);
	spew(MN("u"), "u");
	fd = open(MN("u"), O_WRONLY | O_SYNC);
	cr_assert(fd >= 0);
	cr_assert_eq(write(fd, "U", 1), 1);
	assert_ok(fdatasync(fd));
	close(fd);
	fd = open(H.mnt, O_RDONLY | O_DIRECTORY);
	assert_ok(fsync(fd));
	close(fd);
	assert_ok(syncfs(open(H.mnt, O_RDONLY)));
	assert_file(UP("f"), "F");
}

UTEST(misc, sparse_files_over_4_gib, .timeout = 120)
{
	mk_sparse(LO(0, "lbig"), 5 * GiB, 4 * GiB + GiB / 2, "X");
	h_mount(fmt, 1, NULL);
	int fd = open(MN("big"), O_RDWR | O_CREAT, 0644);
	cr_assert(fd >= 0);
	assert_ok(ftruncate(fd, 5 * GiB));
	cr_assert_eq(pwrite(fd, "hello", 5, 4 * GiB + GiB / 2), 5);
	close(fd);
	fd = open(MN("big"), O_RDONLY);
	char buf[8] = {0};
	cr_assert_eq(pread(fd, buf, 5, 4 * GiB + GiB / 2), 5);
	cr_assert_str_eq(buf, "hello");
	cr_assert_eq(pread(fd, buf, 5, GiB), 5);
	cr_assert(!memcmp(buf, "\0\0\0\0\0", 5));
	cr_assert_eq(lseek(fd, 0, SEEK_END), 5 * GiB);
	close(fd);
	struct stat st;
	assert_ok(stat(MN("big"), &st));
	cr_assert_eq(st.st_size, 5 * GiB);
	assert_ok(stat(UP("big"), &st));
	cr_assert_lt(st.st_blocks * 512, 16 << 20);
	/* the lower one: read, then write far out (copy-up keeps it sparse) */
	fd = open(MN("lbig"), O_RDWR);
	cr_assert(fd >= 0);
	cr_assert_eq(pread(fd, buf, 1, 4 * GiB + GiB / 2), 1);
	cr_assert_eq(buf[0], 'X');
	cr_assert_eq(pwrite(fd, "Y", 1, 4 * GiB + 3 * GiB / 4), 1);
	close(fd);
	assert_ok(stat(UP("lbig"), &st));
	cr_assert_eq(st.st_size, 5 * GiB);
	cr_assert_lt(st.st_blocks * 512, 16 << 20, "copied-up 5 GiB file not sparse");
	fd = open(MN("lbig"), O_RDONLY);
	cr_assert_eq(pread(fd, buf, 1, 4 * GiB + 3 * GiB / 4), 1);
	cr_assert_eq(buf[0], 'Y');
	cr_assert_eq(pread(fd, buf, 1, 4 * GiB + GiB / 2), 1);
	cr_assert_eq(buf[0], 'X');
	close(fd);
}

static char *name_of(char *p, char c, size_t len)
{
	memset(p, c, len);
	p[len] = 0;
	return p;
}

UTEST(misc, names_of_255_bytes)
{
	char n255[300], m255[300], lname[300], ldir[300], n256[300];
	name_of(n255, 'a', 255);
	name_of(m255, 'b', 255);
	/* aufs whiteouts need 4 bytes of prefix: the longest deletable lower name is 251 */
	name_of(lname, 'l', fmt == FMT_AUFS ? 251 : 255);
	name_of(ldir, 'd', 255);
	name_of(n256, 'c', 256);
	mk_file(LO(0, lname), "lower", 0644);
	mk_file(LO(0, pf("%s/x", ldir)), "x", 0644);
	h_mount(fmt, 1, NULL);
	spew(MN(n255), "long");
	assert_file(MN(n255), "long");
	assert_file(UP(n255), "long");
	assert_file(MN(lname), "lower");
	assert_file(MN(pf("%s/x", ldir)), "x");
	char *l = ls(H.mnt, false);
	cr_assert(strstr(l, n255) && strstr(l, lname) && strstr(l, ldir), "long names not listed");
	assert_ok(rename(MN(n255), MN(m255)));
	assert_file(MN(m255), "long");
	assert_errno(open(MN(n256), O_WRONLY | O_CREAT, 0644), ENAMETOOLONG);
	assert_ok(mkdir(MN(pf("%s/%s", ldir, n255)), 0755));
	assert_ok(unlink(MN(lname)));
	assert_errno(access(MN(lname), F_OK), ENOENT);
	assert_ok(unlink(MN(m255)));
	assert_str(ls(H.mnt, false), ldir);
	h_remount();
	assert_str(ls(H.mnt, false), ldir);
}

#define DEPTH 25

static const char *level_name(int i)
{
	static char b[4][256];
	static int k;
	char *p = b[k++ % 4];
	memset(p, 'a' + i % 26, 200);
	snprintf(p + 190, 11, "%010d", i);
	return p;
}

/* Walks the chain with openat; returns the fd of the deepest dir. */
static int walk_chain(int root, bool list_each)
{
	int fd = dup(root);
	for (int i = 0; i < DEPTH; i++) {
		if (list_each) {
			int dfd = openat(fd, ".", O_RDONLY | O_DIRECTORY);
			DIR *d = fdopendir(dfd);
			cr_assert(d);
			int n = 0;
			struct dirent *e;
			while ((e = readdir(d)))
				if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
					n++;
					cr_assert_str_eq(e->d_name, level_name(i), "level %d", i);
				}
			closedir(d);
			cr_assert_eq(n, 1, "level %d lists %d entries", i, n);
		}
		int next = openat(fd, level_name(i), O_RDONLY | O_DIRECTORY);
		cr_assert(next >= 0, "openat level %d: %s", i, strerror(errno));
		close(fd);
		fd = next;
	}
	return fd;
}

static void make_chain(int root)
{
	int fd = dup(root);
	for (int i = 0; i < DEPTH; i++) {
		cr_assert(mkdirat(fd, level_name(i), 0755) == 0, "mkdirat level %d: %s", i,
			  strerror(errno));
		int next = openat(fd, level_name(i), O_RDONLY | O_DIRECTORY);
		cr_assert(next >= 0);
		close(fd);
		fd = next;
	}
	int f = openat(fd, "leaf", O_WRONLY | O_CREAT, 0644);
	cr_assert(f >= 0, "create leaf: %s", strerror(errno));
	cr_assert_eq(write(f, "deep", 4), 4);
	close(f);
	close(fd);
}

static char *read_at(int dfd, const char *name)
{
	int f = openat(dfd, name, O_RDONLY);
	if (f < 0)
		return NULL;
	char *s = read_fd_all(f, NULL);
	close(f);
	return s;
}

UTEST(misc, tree_deeper_than_path_max, .timeout = 120)
{
	cr_assert_gt(DEPTH * 201, PATH_MAX);
	mkdir_p(LO(0, "low"), 0755);
	int lr = open(LO(0, "low"), O_RDONLY | O_DIRECTORY);
	make_chain(lr);
	close(lr);
	h_mount(fmt, 1, NULL);
	/* a new deep tree through the mount */
	assert_ok(mkdir(MN("new"), 0755));
	int r = open(MN("new"), O_RDONLY | O_DIRECTORY);
	cr_assert(r >= 0);
	make_chain(r);
	int deep = walk_chain(r, true);
	assert_str(read_at(deep, "leaf"), "deep");
	close(deep);
	close(r);
	/* the lower deep tree: listed, read, then copied up from the bottom */
	r = open(MN("low"), O_RDONLY | O_DIRECTORY);
	cr_assert(r >= 0);
	deep = walk_chain(r, true);
	assert_str(read_at(deep, "leaf"), "deep");
	int f = openat(deep, "leaf", O_WRONLY | O_APPEND);
	cr_assert(f >= 0, "open deep lower leaf for write: %s", strerror(errno));
	cr_assert_eq(write(f, "+up", 3), 3);
	close(f);
	close(deep);
	close(r);
	int ur = open(UP("low"), O_RDONLY | O_DIRECTORY);
	cr_assert(ur >= 0, "deep copy-up created no upper chain");
	deep = walk_chain(ur, false);
	assert_str(read_at(deep, "leaf"), "deep+up");
	close(deep);
	close(ur);
	/* and the upper deep tree made through the mount is really there */
	ur = open(UP("new"), O_RDONLY | O_DIRECTORY);
	deep = walk_chain(ur, false);
	assert_str(read_at(deep, "leaf"), "deep");
	close(deep);
	close(ur);
}

/* ACLs as setfacl writes them (system.posix_acl_*, version 2). */
enum { ACL_USER_OBJ = 0x01, ACL_USER = 0x02, ACL_GROUP_OBJ = 0x04, ACL_MASK = 0x10,
       ACL_OTHER = 0x20 };
#define ACL_UNDEFINED_ID 0xffffffffu
struct acl_entry {
	uint16_t tag, perm;
	uint32_t id;
};

static size_t acl_blob(const struct acl_entry *e, size_t n, unsigned char *buf)
{
	uint32_t version = 2;
	size_t len = 4;

	memcpy(buf, &version, 4);
	for (size_t i = 0; i < n; i++, len += 8) {
		memcpy(buf + len, &e[i].tag, 2);
		memcpy(buf + len + 2, &e[i].perm, 2);
		memcpy(buf + len + 4, &e[i].id, 4);
	}
	return len;
}

/* owner rw, user uid r, owning group r, mask r, others nothing */
static size_t acl_granting_read(uid_t uid, unsigned char *buf)
{
	const struct acl_entry e[] = {
		{ ACL_USER_OBJ, 6, ACL_UNDEFINED_ID }, { ACL_USER, 4, uid },
		{ ACL_GROUP_OBJ, 4, ACL_UNDEFINED_ID }, { ACL_MASK, 4, ACL_UNDEFINED_ID },
		{ ACL_OTHER, 0, ACL_UNDEFINED_ID },
	};
	return acl_blob(e, sizeof e / sizeof e[0], buf);
}

static int read_as_user(void *arg)
{
	char got[16] = "";
	int fd = open((const char *)arg, O_RDONLY);

	UCHECK(fd >= 0, "open for reading");
	UCHECK(read(fd, got, sizeof got - 1) == 6, "read");
	close(fd);
	return 0;
}

static int read_denied_as_user(void *arg)
{
	UCHECK(open((const char *)arg, O_RDONLY) < 0 && errno == EACCES, "open must fail");
	return 0;
}

/* The kernel checks access with a file's ACL, not only its mode bits, as
 * on the upper filesystem itself; chmod narrows the ACL's mask. */
HTEST(misc, acl_entries_grant_and_chmod_narrows_them)
{
	uid_t uid;
	gid_t gid;
	char msg[512] = "";
	unsigned char acl[64], got[64];

	make_user(&uid, &gid);
	assert_ok(chmod(H.root, 0755));
	mk_file(LO(0, "f"), "secret", 0640);
	h_mount(FMT_OVL, 1, NULL);
	assert_ok(chmod(H.mnt, 0755));
	size_t len = acl_granting_read(uid, acl);
	assert_ok(setxattr(MN("f"), "system.posix_acl_access", acl, len, 0));
	cr_assert_eq(getxattr(MN("f"), "system.posix_acl_access", got, sizeof got), (ssize_t)len);
	cr_assert(!memcmp(got, acl, len), "the ACL reads back different");
	cr_assert_eq(as_user(uid, gid, read_as_user, MN("f"), msg, sizeof msg), 0, "%s", msg);
	assert_ok(chmod(MN("f"), 0600));
	cr_assert_eq(as_user(uid, gid, read_denied_as_user, MN("f"), msg, sizeof msg), 0, "%s", msg);
}

/* Without a default ACL the caller's umask applies; with one, POSIX has the
 * ACL decide instead (the daemon gets the mode unmasked, FUSE_DONT_MASK). */
static void check_creates(const char *dir, const char *file, const char *sub)
{
	struct stat st;
	mode_t old = umask(077);
	int fd = open(pf("%s/%s", dir, file), O_WRONLY | O_CREAT | O_EXCL, 0666);

	cr_assert(fd >= 0, "create: %s", strerror(errno));
	close(fd);
	cr_assert_eq(mkdir(pf("%s/%s", dir, sub), 0777), 0, "mkdir: %s", strerror(errno));
	umask(old);
	assert_ok(stat(pf("%s/%s", dir, file), &st));
	cr_assert_eq(st.st_mode & 07777, 0660, "file mode %o: the umask won over the ACL",
		     st.st_mode & 07777);
	assert_ok(stat(pf("%s/%s", dir, sub), &st));
	cr_assert_eq(st.st_mode & 07777, 0770, "dir mode %o", st.st_mode & 07777);
	cr_assert_gt(getxattr(pf("%s/%s", dir, file), "system.posix_acl_access", NULL, 0), 0,
		     "the new file has no access ACL from the default ACL");
	cr_assert_gt(getxattr(pf("%s/%s", dir, sub), "system.posix_acl_default", NULL, 0), 0,
		     "the new directory did not inherit the default ACL");
}

static void set_default_acl(const char *dir)
{
	const struct acl_entry e[] = {
		{ ACL_USER_OBJ, 7, ACL_UNDEFINED_ID }, { ACL_USER, 6, 1234 },
		{ ACL_GROUP_OBJ, 7, ACL_UNDEFINED_ID }, { ACL_MASK, 7, ACL_UNDEFINED_ID },
		{ ACL_OTHER, 0, ACL_UNDEFINED_ID },
	};
	unsigned char buf[64];
	size_t len = acl_blob(e, sizeof e / sizeof e[0], buf);

	assert_ok(setxattr(dir, "system.posix_acl_default", buf, len, 0));
}

HTEST(misc, default_acl_replaces_the_umask)
{
	mk_dir(LO(0, "d"), 0755);
	h_mount(FMT_OVL, 1, NULL);
	set_default_acl(MN("d"));
	check_creates(MN("d"), "f", "sub");
	/* No default ACL: the umask applies. */
	mode_t old = umask(027);
	int fd = open(MN("plain"), O_WRONLY | O_CREAT | O_EXCL, 0666);
	cr_assert(fd >= 0);
	close(fd);
	assert_ok(mkdir(MN("plaindir"), 0777));
	umask(old);
	struct stat st;
	assert_ok(stat(MN("plain"), &st));
	cr_assert_eq(st.st_mode & 07777, 0640, "mode %o", st.st_mode & 07777);
	assert_ok(stat(MN("plaindir"), &st));
	cr_assert_eq(st.st_mode & 07777, 0750, "mode %o", st.st_mode & 07777);
}

/* Over a whiteout the object is built in the work dir, away from the
 * directory whose default ACL it must inherit. */
UTEST(misc, default_acl_applies_over_a_whiteout)
{
	mk_file(LO(0, "d/f"), "lower", 0644);
	mk_dir(LO(0, "d/sub"), 0755);
	h_mount(fmt, 1, NULL);
	set_default_acl(MN("d"));
	assert_ok(unlink(MN("d/f")));
	assert_ok(rmdir(MN("d/sub")));
	check_creates(MN("d"), "f", "sub");
}

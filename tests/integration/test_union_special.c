/* Semantic point 9: fifos, sockets, device nodes, xattrs (private names
 * hidden and refused), statfs from the upper branch (or the top branch of a
 * read-only union). */
#include "harness.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/xattr.h>
#include <unistd.h>

static struct stat st_of(const char *p)
{
	struct stat st;
	cr_assert(lstat(p, &st) == 0, "lstat %s: %s", p, strerror(errno));
	return st;
}

UTEST(special, fifos)
{
	cr_assert(mkfifo(LO(0, "lp"), 0640) == 0);
	h_mount(fmt, 1, NULL);
	assert_ok(mkfifo(MN("p"), 0600));
	cr_assert(S_ISFIFO(st_of(MN("p")).st_mode));
	cr_assert(S_ISFIFO(st_of(UP("p")).st_mode));
	cr_assert_eq(st_of(MN("p")).st_mode & 07777, 0600);
	int fd = open(MN("p"), O_RDWR | O_NONBLOCK);
	cr_assert(fd >= 0, "open fifo: %s", strerror(errno));
	cr_assert_eq(write(fd, "through", 7), 7);
	char buf[8] = {0};
	cr_assert_eq(read(fd, buf, 7), 7);
	cr_assert_str_eq(buf, "through");
	close(fd);
	/* lower fifo: visible as a fifo, copied up as a fifo */
	cr_assert(S_ISFIFO(st_of(MN("lp")).st_mode));
	assert_ok(chmod(MN("lp"), 0604));
	struct stat up = st_of(UP("lp"));
	cr_assert(S_ISFIFO(up.st_mode) && (up.st_mode & 07777) == 0604);
	fd = open(MN("lp"), O_RDWR | O_NONBLOCK);
	cr_assert(fd >= 0);
	close(fd);
}

UTEST(special, unix_sockets)
{
	cr_assert(mknod(LO(0, "lsock"), S_IFSOCK | 0644, 0) == 0);
	h_mount(fmt, 1, NULL);
	cr_assert(S_ISSOCK(st_of(MN("lsock")).st_mode));
	int srv = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	cr_assert(strlen(MN("sock")) < sizeof a.sun_path);
	snprintf(a.sun_path, sizeof a.sun_path, "%s", MN("sock"));
	assert_ok(bind(srv, (struct sockaddr *)&a, sizeof a));
	assert_ok(listen(srv, 1));
	cr_assert(S_ISSOCK(st_of(MN("sock")).st_mode));
	cr_assert(S_ISSOCK(st_of(UP("sock")).st_mode));
	int cl = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_ok(connect(cl, (struct sockaddr *)&a, sizeof a));
	int ac = accept(srv, NULL, NULL);
	cr_assert(ac >= 0);
	cr_assert_eq(write(cl, "hi", 2), 2);
	char buf[4] = {0};
	cr_assert_eq(read(ac, buf, 2), 2);
	cr_assert_str_eq(buf, "hi");
	close(ac);
	close(cl);
	close(srv);
	assert_ok(unlink(MN("sock")));
	assert_errno(access(MN("sock"), F_OK), ENOENT);
}

UTEST(special, device_nodes)
{
	cr_assert(mknod(LO(0, "lc"), S_IFCHR | 0600, makedev(1, 5)) == 0);
	h_mount(fmt, 1, NULL);
	struct stat st = st_of(MN("lc"));
	cr_assert(S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 5));
	assert_ok(mknod(MN("null"), S_IFCHR | 0666, makedev(1, 3)));
	assert_ok(mknod(MN("loop"), S_IFBLK | 0600, makedev(7, 0)));
	st = st_of(MN("null"));
	cr_assert(S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3));
	st = st_of(UP("null"));
	cr_assert(S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3));
	st = st_of(MN("loop"));
	cr_assert(S_ISBLK(st.st_mode) && st.st_rdev == makedev(7, 0));
	assert_ok(chown(MN("lc"), 5, 6));
	st = st_of(UP("lc"));
	cr_assert(S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 5) && st.st_uid == 5);
	h_remount();
	st = st_of(MN("null"));
	cr_assert(S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3));
}

static bool listed(const char *path, const char *name)
{
	char buf[4096];
	ssize_t n = llistxattr(path, buf, sizeof buf);
	cr_assert(n >= 0, "listxattr %s: %s", path, strerror(errno));
	for (ssize_t o = 0; o < n; o += (ssize_t)strlen(buf + o) + 1)
		if (!strcmp(buf + o, name))
			return true;
	return false;
}

UTEST(special, xattr_roundtrip)
{
	mk_file(LO(0, "l"), "l", 0644);
	cr_assert(setxattr(LO(0, "l"), "user.low", "LOW", 3, 0) == 0);
	h_mount(fmt, 1, NULL);
	spew(MN("f"), "f");
	const char bin[] = {'v', 0, 'x', (char)0xff};
	assert_ok(setxattr(MN("f"), "user.k", bin, sizeof bin, 0));
	char buf[64];
	cr_assert_eq(getxattr(MN("f"), "user.k", NULL, 0), (ssize_t)sizeof bin);
	cr_assert_eq(getxattr(MN("f"), "user.k", buf, sizeof buf), (ssize_t)sizeof bin);
	cr_assert(!memcmp(buf, bin, sizeof bin));
	assert_errno(getxattr(MN("f"), "user.k", buf, 2), ERANGE);
	cr_assert(listed(MN("f"), "user.k"));
	assert_errno(setxattr(MN("f"), "user.k", "x", 1, XATTR_CREATE), EEXIST);
	assert_errno(setxattr(MN("f"), "user.none", "x", 1, XATTR_REPLACE), ENODATA);
	assert_ok(setxattr(MN("f"), "user.k", "y", 1, XATTR_REPLACE));
	cr_assert_eq(getxattr(MN("f"), "user.k", buf, sizeof buf), 1);
	assert_ok(setxattr(MN("f"), "trusted.root", "r", 1, 0));
	cr_assert(listed(UP("f"), "trusted.root"));
	assert_ok(removexattr(MN("f"), "user.k"));
	assert_errno(getxattr(MN("f"), "user.k", buf, sizeof buf), ENODATA);
	assert_errno(removexattr(MN("f"), "user.k"), ENODATA);
	/* lower xattrs read without copy-up */
	cr_assert_eq(getxattr(MN("l"), "user.low", buf, sizeof buf), 3);
	cr_assert(listed(MN("l"), "user.low"));
	cr_assert(!exists(UP("l")));
	/* on directories and symlinks too */
	assert_ok(mkdir(MN("d"), 0755));
	assert_ok(setxattr(MN("d"), "user.dir", "D", 1, 0));
	cr_assert_eq(getxattr(MN("d"), "user.dir", buf, sizeof buf), 1);
	assert_ok(symlink("t", MN("s")));
	assert_ok(lsetxattr(MN("s"), "trusted.lnk", "S", 1, 0));
	cr_assert_eq(lgetxattr(MN("s"), "trusted.lnk", buf, sizeof buf), 1);
	h_remount();
	cr_assert_eq(getxattr(MN("d"), "user.dir", buf, sizeof buf), 1);
	cr_assert_eq(getxattr(MN("f"), "trusted.root", buf, sizeof buf), 1);
}

static const char *private_names[] = {
	"trusted.overlay.opaque", "trusted.overlay.redirect", "trusted.overlay.origin",
	"user.overlay.opaque",    "user.overlay.redirect",    "user.strata.x",
	"trusted.strata.y",
};
#define NPRIV (sizeof private_names / sizeof *private_names)

UTEST(special, private_xattrs_hidden)
{
	mk_file(LO(0, "f"), "f", 0644);
	mk_dir(LO(0, "d"), 0755);
	for (size_t i = 0; i < NPRIV; i++) {
		/* "y" would make d opaque: use a value that means nothing */
		cr_assert(setxattr(LO(0, "f"), private_names[i], "n", 1, 0) == 0);
		cr_assert(setxattr(LO(0, "d"), private_names[i], "n", 1, 0) == 0);
	}
	cr_assert(setxattr(LO(0, "f"), "user.visible", "v", 1, 0) == 0);
	h_mount(fmt, 1, NULL);
	char buf[64];
	for (size_t i = 0; i < NPRIV; i++) {
		cr_assert(!listed(MN("f"), private_names[i]), "%s listed", private_names[i]);
		cr_assert(!listed(MN("d"), private_names[i]), "%s listed on dir", private_names[i]);
		assert_errno(getxattr(MN("f"), private_names[i], buf, sizeof buf), ENODATA);
		assert_errno(getxattr(MN("d"), private_names[i], buf, sizeof buf), ENODATA);
	}
	cr_assert(listed(MN("f"), "user.visible"));
	/* and after a copy-up */
	assert_ok(chmod(MN("f"), 0600));
	for (size_t i = 0; i < NPRIV; i++)
		cr_assert(!listed(MN("f"), private_names[i]), "%s listed after copy-up",
			  private_names[i]);
	cr_assert(listed(MN("f"), "user.visible"));
	/* whiteout/opaque/redirect markers the union wrote itself are hidden too */
	assert_ok(rmdir(MN("d")));
	assert_ok(mkdir(MN("d"), 0755));
	spew(MN("d/x"), "x");
	for (size_t i = 0; i < NPRIV; i++) {
		cr_assert(!listed(MN("d"), private_names[i]), "%s listed on new opaque dir",
			  private_names[i]);
		assert_errno(getxattr(MN("d"), private_names[i], buf, sizeof buf), ENODATA);
	}
}

UTEST(special, private_xattrs_refused)
{
	mk_file(LO(0, "f"), "f", 0644);
	mk_file(LO(0, "d/x"), "x", 0644);
	h_mount(fmt, 1, NULL);
	spew(MN("u"), "u");
	for (size_t i = 0; i < NPRIV; i++) {
		assert_errno(setxattr(MN("u"), private_names[i], "y", 1, 0), EPERM);
		assert_errno(setxattr(MN("f"), private_names[i], "y", 1, 0), EPERM);
		assert_errno(setxattr(MN("d"), private_names[i], "y", 1, 0), EPERM);
		assert_errno(removexattr(MN("u"), private_names[i]), EPERM);
	}
	char buf[8];
	for (size_t i = 0; i < NPRIV; i++)
		cr_assert(getxattr(UP("u"), private_names[i], buf, sizeof buf) < 0,
			  "%s reached the upper file", private_names[i]);
	cr_assert(!is_opaque(UP("d")) || !exists(UP("d")));
	assert_str(ls(MN("d"), false), "x");
}

static void assert_statfs_eq(const char *mnt, const char *ref)
{
	struct statfs a, b;
	cr_assert(statfs(mnt, &a) == 0, "statfs %s: %s", mnt, strerror(errno));
	cr_assert(statfs(ref, &b) == 0, "statfs %s: %s", ref, strerror(errno));
	cr_assert_eq(a.f_bsize, b.f_bsize, "f_bsize %ld vs %ld", (long)a.f_bsize, (long)b.f_bsize);
	cr_assert_eq(a.f_blocks, b.f_blocks, "f_blocks %llu vs %llu (of %s)",
		     (unsigned long long)a.f_blocks, (unsigned long long)b.f_blocks, ref);
	cr_assert_eq(a.f_files, b.f_files, "f_files %llu vs %llu", (unsigned long long)a.f_files,
		     (unsigned long long)b.f_files);
	long long df = (long long)a.f_bfree - (long long)b.f_bfree;
	cr_assert(df > -64 && df < 64, "f_bfree %llu vs %llu", (unsigned long long)a.f_bfree,
		  (unsigned long long)b.f_bfree);
}

UTEST(special, statfs_is_the_upper_branch)
{
	/* upper (and workdir) on a 7 MiB tmpfs: nothing else has that size */
	mount_tmpfs(RT("tu"), "size=7m,nr_inodes=1234");
	snprintf(H.up, sizeof H.up, "%s", RT("tu/u"));
	snprintf(H.wk, sizeof H.wk, "%s", RT("tu/w"));
	mkdir_p(H.up, 0755);
	mkdir_p(H.wk, 0755);
	mk_file(LO(0, "f"), "f", 0644);
	h_mount(fmt, 1, NULL);
	assert_statfs_eq(H.mnt, H.up);
	struct statfs a;
	assert_ok(statfs(H.mnt, &a));
	cr_assert_eq(a.f_bsize * a.f_blocks, 7L << 20);
	cr_assert_geq(a.f_namelen, 255);
	assert_statfs_eq(MN("f"), H.up);
	spew(MN("g"), "g");
	assert_statfs_eq(H.mnt, H.up);
}

UTEST(special, statfs_of_readonly_union_is_the_top_branch)
{
	mount_tmpfs(H.lo[0], "size=5m,nr_inodes=999");
	mk_file(LO(0, "f"), "f", 0644);
	mk_file(LO(1, "g"), "g", 0644);
	if (fmt == FMT_AUFS)
		h_mount_opts(pf("dirs=%s=ro:%s=ro,xino=%s", H.lo[0], H.lo[1], RT("xino")));
	else
		h_mount_opts(pf("lowerdir=%s:%s,xino=%s", H.lo[0], H.lo[1], RT("xino")));
	assert_statfs_eq(H.mnt, H.lo[0]);
	struct statfs a;
	assert_ok(statfs(H.mnt, &a));
	cr_assert_eq(a.f_bsize * a.f_blocks, 5L << 20);
	assert_errno(open(MN("new"), O_WRONLY | O_CREAT, 0644), EROFS);
	assert_errno(unlink(MN("g")), EROFS);
	assert_file(MN("g"), "g");
}

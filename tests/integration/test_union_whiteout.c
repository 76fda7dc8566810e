/* Semantic points 5 and 6 (+ the write side of 10): unlink/rmdir leave
 * exactly one whiteout and never copy data; no whiteout for upper-only names
 * or inside opaque dirs; merged-dir rmdir; create/mkdir/mknod/symlink/link
 * over a whiteout; mkdir over a whited-out dir gives an empty opaque dir;
 * O_CREAT|O_EXCL on a lower name fails EEXIST; ".wh.*" cannot be created. */
#include "harness.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

/* The upper dir holds exactly one entry: the whiteout of name. */
static void assert_only_whiteout(enum ufmt fmt, const char *dir, const char *name)
{
	cr_assert(is_whiteout(fmt, dir, name), "no %s-format whiteout for %s in %s (has: %s)",
		  fmt == FMT_AUFS ? "aufs" : "overlay", name, dir, ls(dir, true));
	cr_assert_eq(count_entries(dir, true), 1, "%s holds more than the whiteout: %s", dir,
		     ls(dir, true));
	cr_assert_eq(count_whiteouts(dir), 1);
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

UTEST(whiteout, unlink_lower_file_leaves_one_whiteout)
{
	mk_file(LO(0, "f"), "lower", 0644);
	mk_file(LO(1, "f"), "lower1", 0644);
	h_mount(fmt, 2, NULL);
	assert_ok(unlink(MN("f")));
	assert_errno(access(MN("f"), F_OK), ENOENT);
	assert_only_whiteout(fmt, H.up, "f");
	assert_file(LO(0, "f"), "lower");
	assert_str(ls(H.mnt, false), "");
	h_remount();
	assert_errno(access(MN("f"), F_OK), ENOENT);
}

UTEST(whiteout, unlink_readonly_and_huge_lower_files_copies_nothing, .timeout = 120)
{
	mk_file(LO(0, "ro"), "read only", 0444);
	cr_assert(chown(LO(0, "ro"), 4242, 4242) == 0);
	mk_sparse(LO(0, "huge"), 1L << 30, (1L << 30) - 1, "z");
	/* and 64 MiB of real data: a copy would take measurable time and space */
	int fd = open(LO(0, "real"), O_WRONLY | O_CREAT, 0644);
	cr_assert(fd >= 0);
	cr_assert(posix_fallocate(fd, 0, 64L << 20) == 0);
	close(fd);
	h_mount(fmt, 1, NULL);
	double t0 = now();
	assert_ok(unlink(MN("ro")));
	assert_ok(unlink(MN("huge")));
	assert_ok(unlink(MN("real")));
	double dt = now() - t0;
	cr_assert_lt(dt, 5.0, "three unlinks took %.1f s", dt);
	cr_assert_eq(count_entries(H.up, true), 3, "upper holds more than 3 whiteouts: %s",
		     ls(H.up, true));
	cr_assert(is_whiteout(fmt, H.up, "ro") && is_whiteout(fmt, H.up, "huge") &&
		  is_whiteout(fmt, H.up, "real"));
	assert_str(ls(H.mnt, false), "");
}

UTEST(whiteout, unlink_in_lower_subdir)
{
	mk_file(LO(0, "d/x"), "x", 0644);
	mk_file(LO(0, "d/y"), "y", 0644);
	h_mount(fmt, 1, NULL);
	assert_ok(unlink(MN("d/x")));
	assert_str(ls(MN("d"), false), "y");
	cr_assert(is_whiteout(fmt, UP("d"), "x"));
	cr_assert_eq(count_whiteouts(UP("d")), 1);
	cr_assert(!exists(UP("d/y")), "sibling copied up");
}

UTEST(whiteout, upper_only_name_leaves_no_whiteout)
{
	mk_file(LO(0, "other"), "o", 0644);
	h_mount(fmt, 1, NULL);
	spew(MN("new"), "n");
	assert_ok(mkdir(MN("newdir"), 0755));
	spew(MN("newdir/in"), "i");
	assert_ok(unlink(MN("new")));
	assert_ok(unlink(MN("newdir/in")));
	assert_ok(rmdir(MN("newdir")));
	cr_assert_eq(count_whiteouts(H.up), 0, "upper: %s", ls(H.up, true));
	assert_str(ls(H.up, true), "");
}

UTEST(whiteout, unlink_name_in_upper_and_lower)
{
	mk_file(UP("f"), "upper", 0644);
	mk_file(LO(0, "f"), "lower", 0644);
	h_mount(fmt, 1, NULL);
	assert_ok(unlink(MN("f")));
	assert_errno(access(MN("f"), F_OK), ENOENT);
	assert_only_whiteout(fmt, H.up, "f");
	if (fmt == FMT_AUFS)
		cr_assert(!exists(UP("f")));
}

UTEST(whiteout, rmdir_lower_dir)
{
	mk_dir(LO(0, "d"), 0755);
	mk_dir(LO(1, "d"), 0755);
	h_mount(fmt, 2, NULL);
	assert_ok(rmdir(MN("d")));
	assert_errno(access(MN("d"), F_OK), ENOENT);
	assert_only_whiteout(fmt, H.up, "d");
}

UTEST(whiteout, rmdir_merged_dir_after_emptying_it)
{
	mk_file(LO(0, "d/a"), "a", 0644);
	mk_file(LO(0, "d/b"), "b", 0644);
	mk_file(LO(1, "d/c"), "c", 0644);
	mk_file(UP("d/u"), "u", 0644);
	h_mount(fmt, 2, NULL);
	assert_errno(rmdir(MN("d")), ENOTEMPTY);
	const char *names[] = {"a", "b", "c", "u"};
	for (int i = 0; i < 4; i++) {
		assert_ok(unlink(MN(pf("d/%s", names[i]))));
		if (i < 3)
			assert_errno(rmdir(MN("d")), ENOTEMPTY);
	}
	assert_str(ls(MN("d"), false), "");
	assert_ok(rmdir(MN("d")));
	assert_errno(access(MN("d"), F_OK), ENOENT);
	assert_only_whiteout(fmt, H.up, "d");
	if (fmt == FMT_AUFS)
		cr_assert(!exists(UP("d")), "upper d left behind");
	h_remount();
	assert_errno(access(MN("d"), F_OK), ENOENT);
	assert_str(ls(H.mnt, false), "");
}

UTEST(whiteout, rmdir_with_visible_entry_fails_enotempty)
{
	mk_file(LO(0, "d/a"), "a", 0644);
	mk_file(LO(1, "d/b"), "b", 0644);
	mk_dir(LO(0, "e/sub"), 0755);
	h_mount(fmt, 2, NULL);
	assert_ok(unlink(MN("d/a")));
	assert_errno(rmdir(MN("d")), ENOTEMPTY);
	assert_file(MN("d/b"), "b");
	assert_errno(rmdir(MN("e")), ENOTEMPTY);
	assert_str(ls(MN("e"), false), "sub");
}

UTEST(whiteout, rmdir_dir_whose_lower_entries_are_already_whited_out)
{
	mk_file(LO(0, "d/a"), "a", 0644);
	mk_file(LO(1, "d/b"), "b", 0644);
	mk_wh(fmt, UP("d"), "a");
	mk_wh(fmt, LO(0, "d"), "b");
	h_mount(fmt, 2, NULL);
	assert_str(ls(MN("d"), false), "");
	assert_ok(rmdir(MN("d")));
	assert_errno(access(MN("d"), F_OK), ENOENT);
	assert_only_whiteout(fmt, H.up, "d");
}

UTEST(whiteout, never_a_whiteout_inside_an_opaque_dir)
{
	mk_file(LO(0, "d/x"), "x", 0644);
	mk_file(LO(0, "d/sub/y"), "y", 0644);
	mk_file(LO(0, "o/z"), "z", 0644);
	mk_opq(fmt, UP("o"));
	h_mount(fmt, 1, NULL);
	assert_ok(unlink(MN("d/x")));
	assert_ok(unlink(MN("d/sub/y")));
	assert_ok(rmdir(MN("d/sub")));
	assert_ok(rmdir(MN("d")));
	assert_ok(mkdir(MN("d"), 0755));
	assert_str(ls(MN("d"), false), "");
	cr_assert(is_opaque(UP("d")), "mkdir over a whited-out dir did not make it opaque");
	/* names that exist below, but hidden by the opaque dir */
	spew(MN("d/x"), "new x");
	assert_ok(unlink(MN("d/x")));
	assert_ok(mkdir(MN("d/sub"), 0755));
	spew(MN("d/sub/y"), "new y");
	assert_ok(unlink(MN("d/sub/y")));
	cr_assert_eq(count_whiteouts(UP("d/sub")), 0, "whiteout in d/sub: %s", ls(UP("d/sub"), true));
	assert_ok(rmdir(MN("d/sub")));
	cr_assert_eq(count_whiteouts(UP("d")), 0, "whiteout in opaque d: %s", ls(UP("d"), true));
	spew(MN("o/z"), "z2");
	assert_ok(unlink(MN("o/z")));
	cr_assert_eq(count_whiteouts(UP("o")), 0, "whiteout in opaque o: %s", ls(UP("o"), true));
	assert_str(ls(MN("o"), false), "");
}

UTEST(whiteout, create_over_whiteout_replaces_it)
{
	mk_file(LO(0, "f"), "lower", 0644);
	mk_file(LO(0, "g"), "lower", 0644);
	mk_wh(fmt, H.up, "g");
	h_mount(fmt, 1, NULL);
	assert_ok(unlink(MN("f")));
	int fd = open(MN("f"), O_WRONLY | O_CREAT | O_EXCL, 0600);
	cr_assert(fd >= 0, "O_EXCL create over whiteout: %s", strerror(errno));
	cr_assert_eq(write(fd, "new", 3), 3);
	close(fd);
	assert_file(MN("f"), "new");
	spew(MN("g"), "new g");
	assert_file(MN("g"), "new g");
	cr_assert_eq(count_whiteouts(H.up), 0, "whiteout left: %s", ls(H.up, true));
	assert_str(ls(H.up, true), "f\ng");
	struct stat st;
	assert_ok(lstat(UP("f"), &st));
	cr_assert(S_ISREG(st.st_mode) && (st.st_mode & 07777) == 0600);
	h_remount();
	assert_file(MN("f"), "new");
}

UTEST(whiteout, mkdir_mknod_symlink_link_over_whiteout)
{
	const char *names[] = {"dir", "fifo", "sym", "hard", "dev"};
	for (int i = 0; i < 5; i++)
		mk_file(LO(0, names[i]), "lower", 0644);
	mk_file(UP("src"), "src", 0644);
	h_mount(fmt, 1, NULL);
	for (int i = 0; i < 5; i++)
		assert_ok(unlink(MN(names[i])));
	cr_assert_eq(count_whiteouts(H.up), 5);
	assert_ok(mkdir(MN("dir"), 0755));
	assert_ok(mkfifo(MN("fifo"), 0644));
	assert_ok(symlink("target", MN("sym")));
	assert_ok(link(MN("src"), MN("hard")));
	assert_ok(mknod(MN("dev"), S_IFCHR | 0600, makedev(1, 3)));
	struct stat st;
	assert_ok(lstat(MN("dir"), &st));
	cr_assert(S_ISDIR(st.st_mode));
	assert_str(ls(MN("dir"), false), "");
	assert_ok(lstat(MN("fifo"), &st));
	cr_assert(S_ISFIFO(st.st_mode));
	assert_str(rdlink(MN("sym")), "target");
	assert_file(MN("hard"), "src");
	assert_ok(lstat(MN("dev"), &st));
	cr_assert(S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3));
	cr_assert_eq(count_whiteouts(H.up), 0, "whiteouts left: %s", ls(H.up, true));
}

UTEST(whiteout, mkdir_over_whited_out_dir_is_empty_and_opaque)
{
	mk_file(LO(0, "d/x"), "x", 0644);
	mk_file(LO(1, "d/y"), "y", 0644);
	mk_file(LO(1, "d/sub/z"), "z", 0644);
	h_mount(fmt, 2, NULL);
	assert_ok(unlink(MN("d/x")));
	assert_ok(unlink(MN("d/y")));
	assert_ok(unlink(MN("d/sub/z")));
	assert_ok(rmdir(MN("d/sub")));
	assert_ok(rmdir(MN("d")));
	assert_ok(mkdir(MN("d"), 0700));
	assert_str(ls(MN("d"), false), "");
	assert_errno(access(MN("d/x"), F_OK), ENOENT);
	assert_errno(access(MN("d/sub"), F_OK), ENOENT);
	cr_assert(is_opaque(UP("d")));
	cr_assert(!is_any_whiteout(H.up, "d"));
	struct stat st;
	assert_ok(stat(MN("d"), &st));
	cr_assert_eq(st.st_mode & 07777, 0700);
	h_remount();
	assert_str(ls(MN("d"), false), "");
	/* and through a whiteout written before mounting */
	h_umount();
	mk_file(LO(0, "e/x"), "x", 0644);
	mk_wh(fmt, H.up, "e");
	h_mount(fmt, 2, NULL);
	assert_ok(mkdir(MN("e"), 0755));
	assert_str(ls(MN("e"), false), "");
}

UTEST(whiteout, excl_create_on_lower_name_fails_eexist)
{
	mk_file(LO(0, "f"), "lower", 0644);
	mk_file(LO(1, "d/g"), "lower", 0644);
	h_mount(fmt, 2, NULL);
	assert_errno(open(MN("f"), O_WRONLY | O_CREAT | O_EXCL, 0644), EEXIST);
	assert_errno(open(MN("d/g"), O_WRONLY | O_CREAT | O_EXCL, 0644), EEXIST);
	assert_errno(mkdir(MN("f"), 0755), EEXIST);
	assert_errno(mkdir(MN("d"), 0755), EEXIST);
	assert_errno(symlink("t", MN("f")), EEXIST);
	assert_errno(mkfifo(MN("d/g"), 0644), EEXIST);
	assert_errno(link(MN("d/g"), MN("f")), EEXIST);
	assert_file(MN("f"), "lower");
	assert_str(tree(H.up, false, true), "");
}

UTEST(whiteout, wh_prefixed_names_cannot_be_created)
{
	mk_file(LO(0, "a"), "a", 0644);
	spew(UP("u"), "u");
	h_mount(fmt, 1, NULL);
	char *before = tree(H.up, false, true);
	errno = 0;
	int fd = open(MN(".wh.x"), O_WRONLY | O_CREAT, 0644);
	cr_assert(fd < 0 && (errno == EPERM || errno == EINVAL), "create .wh.x: fd %d errno %s", fd,
		  strerrorname_np(errno));
#define REFUSED(expr)                                                                           \
	do {                                                                                    \
		errno = 0;                                                                      \
		int _r = (expr);                                                                \
		cr_assert(_r < 0 && (errno == EPERM || errno == EINVAL), "%s: %d/%s", #expr, _r, \
			  strerrorname_np(errno));                                              \
	} while (0)
	REFUSED(mkdir(MN(".wh.d"), 0755));
	REFUSED(mkdir(MN(".wh..wh..opq"), 0755));
	REFUSED(symlink("t", MN(".wh.s")));
	REFUSED(mkfifo(MN(".wh.p"), 0644));
	REFUSED(link(MN("u"), MN(".wh.l")));
	REFUSED(rename(MN("a"), MN(".wh.a")));
	REFUSED(rename(MN("u"), MN(".wh.u")));
	assert_file(MN("a"), "a");
	assert_file(MN("u"), "u");
	assert_str(ls(H.mnt, false), "a\nu");
	assert_str(tree(H.up, false, true), before);
}

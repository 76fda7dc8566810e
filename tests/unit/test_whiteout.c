/* The whiteout codec: both on-disk formats, read and written. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "ufs.h"
#include "whiteout.h"

struct ufs ufs = { .tree_lock = PTHREAD_RWLOCK_INITIALIZER };

static char top[64];
static int dirfd_;

static void setup(void)
{
	char path[128];

	snprintf(top, sizeof(top), "/tmp/strata-wh-XXXXXX");
	cr_assert_not_null(mkdtemp(top));
	snprintf(path, sizeof(path), "%s/work", top);
	cr_assert_eq(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/dir", top);
	cr_assert_eq(mkdir(path, 0755), 0);
	ufs.work_fd = open(top, O_PATH | O_DIRECTORY);
	cr_assert_geq(ufs.work_fd, 0);
	ufs.work_fd = openat(ufs.work_fd, "work", O_PATH | O_DIRECTORY);
	dirfd_ = open(path, O_PATH | O_DIRECTORY);
	cr_assert_geq(dirfd_, 0);
	ufs.ovl_xattr = geteuid() == 0 ? "trusted.overlay." : "user.overlay.";
}

static void teardown(void)
{
	char cmd[128];

	close(dirfd_);
	close(ufs.work_fd);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", top);
	cr_assert_eq(system(cmd), 0);
}

static void touch(const char *name)
{
	int fd = openat(dirfd_, name, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);

	cr_assert_geq(fd, 0, "create %s: %s", name, strerror(errno));
	cr_assert_eq(write(fd, "data", 4), 4);
	close(fd);
}

static bool exists(const char *name, struct stat *st)
{
	struct stat tmp;

	return fstatat(dirfd_, name, st ? st : &tmp, AT_SYMLINK_NOFOLLOW) == 0;
}

static int work_entries(void)
{
	char cmd[160];
	FILE *p;
	int n = -1;

	snprintf(cmd, sizeof(cmd), "ls -A %s/work | wc -l", top);
	p = popen(cmd, "r");
	cr_assert_not_null(p);
	cr_assert_eq(fscanf(p, "%d", &n), 1);
	pclose(p);
	return n;
}

TestSuite(whiteout, .init = setup, .fini = teardown);

Test(whiteout, meta_names)
{
	cr_assert(wh_is_meta_name(".wh.foo"));
	cr_assert(wh_is_meta_name(".wh..wh..opq"));
	cr_assert_not(wh_is_meta_name(".whfoo"));
	cr_assert_not(wh_is_meta_name("foo.wh."));
	cr_assert_not(wh_is_meta_name(".w"));
}

Test(whiteout, overlay_device_is_whiteout_only_at_0_0)
{
	struct stat st = { .st_mode = S_IFCHR, .st_rdev = makedev(0, 0) };

	cr_assert(wh_is_overlay_whiteout(&st));
	st.st_rdev = makedev(1, 3);
	cr_assert_not(wh_is_overlay_whiteout(&st));
	st.st_mode = S_IFREG;
	st.st_rdev = 0;
	cr_assert_not(wh_is_overlay_whiteout(&st));
}

Test(whiteout, aufs_whiteout_replaces_file)
{
	struct stat st;

	ufs.wh_format = WH_FORMAT_AUFS;
	touch("victim");
	cr_assert_not(wh_aufs_exists(dirfd_, "victim"));
	cr_assert_eq(wh_whiteout(dirfd_, "victim"), 0);
	cr_assert_not(exists("victim", NULL));
	cr_assert(exists(".wh.victim", &st));
	cr_assert(S_ISREG(st.st_mode));
	cr_assert_eq(st.st_size, 0);
	cr_assert(wh_aufs_exists(dirfd_, "victim"));
	cr_assert_eq(work_entries(), 0, "nothing may be left in the work dir");
	cr_assert_eq(wh_remove(dirfd_, "victim"), 0);
	cr_assert_not(exists(".wh.victim", NULL));
}

Test(whiteout, overlay_whiteout_replaces_file_atomically)
{
	struct stat st;

	if (geteuid() != 0)
		cr_skip_test("mknod of a whiteout needs root here");
	ufs.wh_format = WH_FORMAT_OVERLAY;
	touch("victim");
	cr_assert_eq(wh_whiteout(dirfd_, "victim"), 0);
	cr_assert(exists("victim", &st));
	cr_assert(wh_is_overlay_whiteout(&st), "mode %o rdev %lx", st.st_mode,
		  (unsigned long)st.st_rdev);
	cr_assert_eq(work_entries(), 0);
	cr_assert_eq(wh_remove(dirfd_, "victim"), 0);
	cr_assert_not(exists("victim", NULL));
}

Test(whiteout, overlay_whiteout_of_absent_name)
{
	struct stat st;

	if (geteuid() != 0)
		cr_skip_test("mknod of a whiteout needs root here");
	ufs.wh_format = WH_FORMAT_OVERLAY;
	cr_assert_eq(wh_whiteout(dirfd_, "ghost"), 0);
	cr_assert(exists("ghost", &st));
	cr_assert(wh_is_overlay_whiteout(&st));
}

Test(whiteout, whiteout_of_dir_holding_only_markers)
{
	struct stat st;

	ufs.wh_format = WH_FORMAT_AUFS;
	cr_assert_eq(mkdirat(dirfd_, "sub", 0755), 0);
	touch("sub/.wh.gone");
	cr_assert_eq(wh_whiteout(dirfd_, "sub"), 0);
	cr_assert_not(exists("sub", NULL));
	cr_assert(exists(".wh.sub", &st));
}

Test(whiteout, clear_dir_refuses_real_entries)
{
	cr_assert_eq(mkdirat(dirfd_, "sub", 0755), 0);
	touch("sub/.wh.gone");
	touch("sub/real");
	cr_assert_eq(wh_clear_dir(dirfd_, "sub"), -ENOTEMPTY);
	cr_assert(exists("sub/real", NULL));
}

Test(whiteout, opaque_markers_both_formats)
{
	struct dir_markers m;

	cr_assert_eq(mkdirat(dirfd_, "a", 0755), 0);
	cr_assert_eq(mkdirat(dirfd_, "o", 0755), 0);
	wh_read_dir_markers(dirfd_, "a", &m);
	cr_assert_not(m.opaque);
	cr_assert_null(m.redirect);

	ufs.wh_format = WH_FORMAT_AUFS;
	cr_assert_eq(wh_set_opaque(dirfd_, "a"), 0);
	cr_assert(exists("a/" WH_OPAQUE_NAME, NULL));
	wh_read_dir_markers(dirfd_, "a", &m);
	cr_assert(m.opaque);

	ufs.wh_format = WH_FORMAT_OVERLAY;
	cr_assert_eq(wh_set_opaque(dirfd_, "o"), 0);
	wh_read_dir_markers(dirfd_, "o", &m);
	cr_assert(m.opaque);
	cr_assert_not(exists("o/" WH_OPAQUE_NAME, NULL), "overlay format writes no file");
}

Test(whiteout, opaque_xattr_value_must_be_y)
{
	char path[64];
	struct dir_markers m;

	cr_assert_eq(mkdirat(dirfd_, "x", 0755), 0);
	snprintf(path, sizeof(path), "/proc/self/fd/%d/x", dirfd_);
	cr_assert_eq(lsetxattr(path, "user.overlay.opaque", "x", 1, 0), 0);
	wh_read_dir_markers(dirfd_, "x", &m);
	cr_assert_not(m.opaque, "\"x\" marks a dir with xwhiteouts, not an opaque one");
	cr_assert_eq(lsetxattr(path, "user.overlay.opaque", "y", 1, 0), 0);
	wh_read_dir_markers(dirfd_, "x", &m);
	cr_assert(m.opaque);
}

Test(whiteout, redirect_roundtrip)
{
	struct dir_markers m;

	cr_assert_eq(mkdirat(dirfd_, "moved", 0755), 0);
	cr_assert_eq(wh_set_redirect(dirfd_, "moved", "/old/place"), 0);
	wh_read_dir_markers(dirfd_, "moved", &m);
	cr_assert_str_eq(m.redirect, "/old/place");
	free(m.redirect);
}

Test(whiteout, private_xattrs)
{
	cr_assert(xattr_is_private("trusted.overlay.opaque"));
	cr_assert(xattr_is_private("user.overlay.redirect"));
	cr_assert(xattr_is_private("user.strata.anything"));
	cr_assert(xattr_is_private("trusted.strata.x"));
	cr_assert_not(xattr_is_private("user.overlay"));
	cr_assert_not(xattr_is_private("user.mime_type"));
	cr_assert_not(xattr_is_private("security.capability"));
}

Test(whiteout, remove_tree)
{
	cr_assert_eq(mkdirat(dirfd_, "t", 0755), 0);
	cr_assert_eq(mkdirat(dirfd_, "t/u", 0755), 0);
	touch("t/u/f");
	touch("t/g");
	cr_assert_eq(remove_tree_at(dirfd_, "t"), 0);
	cr_assert_not(exists("t", NULL));
	cr_assert_eq(remove_tree_at(dirfd_, "t"), 0, "absent is fine");
}

/* Semantic point 1 (and the read side of 10): lookup goes top-down, the
 * first branch holding a name wins whatever the types below; whiteouts and
 * opaque directories, in both on-disk formats, hide what is below them. */
#include "harness.h"

#include <fcntl.h>
#include <sys/xattr.h>
#include <unistd.h>

static mode_t ltype(const char *path)
{
	struct stat st;
	cr_assert(lstat(path, &st) == 0, "lstat %s: %s", path, strerror(errno));
	return st.st_mode & S_IFMT;
}

UTEST(lookup, top_branch_wins)
{
	mk_file(UP("x"), "u-x", 0644);
	mk_file(LO(0, "x"), "l0-x", 0644);
	mk_file(LO(1, "x"), "l1-x", 0644);
	mk_file(LO(0, "a"), "l0-a", 0644);
	mk_file(LO(1, "a"), "l1-a", 0644);
	mk_file(LO(1, "b"), "l1-b", 0644);
	mk_file(UP("c"), "u-c", 0644);
	mk_file(LO(0, "d/p"), "l0-d-p", 0644);
	mk_file(LO(1, "d/p"), "l1-d-p", 0644);
	mk_file(LO(1, "d/q"), "l1-d-q", 0644);
	mk_file(UP("d/r"), "u-d-r", 0644);
	chmod(LO(1, "b"), 0604);
	h_mount(fmt, 2, NULL);

	assert_file(MN("x"), "u-x");
	assert_file(MN("a"), "l0-a");
	assert_file(MN("b"), "l1-b");
	assert_file(MN("c"), "u-c");
	assert_file(MN("d/p"), "l0-d-p");
	assert_file(MN("d/q"), "l1-d-q");
	assert_file(MN("d/r"), "u-d-r");
	assert_errno(access(MN("nothere"), F_OK), ENOENT);
	assert_errno(access(MN("d/nothere"), F_OK), ENOENT);
	/* stat reports the winning object's size and mode */
	struct stat st;
	assert_ok(stat(MN("b"), &st));
	cr_assert_eq(st.st_size, 4);
	cr_assert_eq(st.st_mode & 07777, 0604);
}

UTEST(lookup, file_above_dir_hides_dir)
{
	mk_file(UP("fd"), "file", 0644);
	mk_file(LO(0, "fd/inner"), "hidden", 0644);
	mk_file(LO(0, "df"), "file-l0", 0644);
	mk_file(LO(1, "df/inner"), "hidden", 0644);
	mk_file(LO(0, "dd/in"), "in", 0644);
	mk_file(LO(1, "dd"), "file-l1", 0644);
	mk_symlink("target", LO(0, "sd"));
	mk_file(LO(1, "sd/inner"), "hidden", 0644);
	h_mount(fmt, 2, NULL);

	cr_assert_eq(ltype(MN("fd")), S_IFREG);
	assert_file(MN("fd"), "file");
	assert_errno(access(MN("fd/inner"), F_OK), ENOTDIR);
	cr_assert_eq(ltype(MN("df")), S_IFREG);
	assert_file(MN("df"), "file-l0");
	assert_errno(access(MN("df/inner"), F_OK), ENOTDIR);
	cr_assert_eq(ltype(MN("dd")), S_IFDIR);
	assert_str(ls(MN("dd"), false), "in");
	cr_assert_eq(ltype(MN("sd")), S_IFLNK);
	assert_str(rdlink(MN("sd")), "target");
}

UTEST(lookup, dir_above_file_not_merged)
{
	/* a directory does not merge with a non-directory below it */
	mk_file(UP("m/top"), "t", 0644);
	mk_file(LO(0, "m"), "a file", 0644);
	mk_file(LO(1, "m/deep"), "must stay hidden", 0644);
	h_mount(fmt, 2, NULL);
	cr_assert_eq(ltype(MN("m")), S_IFDIR);
	assert_str(ls(MN("m"), false), "top");
	assert_errno(access(MN("m/deep"), F_OK), ENOENT);
}

UTEST(lookup, whiteouts_hide_lower_names)
{
	mk_file(LO(0, "gone"), "l0", 0644);
	mk_file(LO(1, "gone"), "l1", 0644);
	mk_wh(fmt, H.up, "gone");
	mk_file(LO(1, "mid"), "l1", 0644);
	mk_wh(fmt, H.lo[0], "mid");
	mk_file(LO(0, "dir/a"), "a", 0644);
	mk_file(LO(1, "dir/b"), "b", 0644);
	mk_wh(fmt, H.up, "dir");
	mk_file(LO(0, "sub/keep"), "k", 0644);
	mk_file(LO(1, "sub/hide"), "h", 0644);
	mk_wh(fmt, UP("sub"), "hide");
	mk_file(LO(1, "sub/hide2"), "h2", 0644);
	mk_wh(fmt, LO(0, "sub"), "hide2");
	mk_file(UP("visible"), "v", 0644);
	h_mount(fmt, 2, NULL);

	assert_errno(access(MN("gone"), F_OK), ENOENT);
	assert_errno(access(MN("mid"), F_OK), ENOENT);
	assert_errno(access(MN("dir"), F_OK), ENOENT);
	assert_errno(access(MN("dir/a"), F_OK), ENOENT);
	assert_file(MN("sub/keep"), "k");
	assert_errno(access(MN("sub/hide"), F_OK), ENOENT);
	assert_errno(access(MN("sub/hide2"), F_OK), ENOENT);
	assert_str(ls(H.mnt, false), "sub\nvisible");
	assert_str(ls(MN("sub"), false), "keep");
}

UTEST(lookup, whiteout_only_hides_below_it)
{
	/* a whiteout in l0 hides l1's name, not the upper's; one in l1 hides nothing above */
	mk_file(UP("x"), "upper", 0644);
	mk_wh(fmt, H.lo[0], "x");
	mk_file(LO(1, "x"), "l1", 0644);
	mk_file(LO(0, "y"), "l0-y", 0644);
	mk_wh(fmt, H.lo[1], "y");
	h_mount(fmt, 2, NULL);
	assert_file(MN("x"), "upper");
	assert_file(MN("y"), "l0-y");
}

UTEST(lookup, other_format_is_read_too)
{
	/* both whiteout formats are always read, whatever the syntax */
	enum ufmt other = fmt == FMT_AUFS ? FMT_OVL : FMT_AUFS;
	mk_file(LO(0, "w1"), "l0", 0644);
	mk_wh(other, H.up, "w1");
	mk_file(LO(1, "w2"), "l1", 0644);
	mk_wh(other, H.lo[0], "w2");
	mk_file(LO(0, "o/a"), "a", 0644);
	mk_file(UP("o/b"), "b", 0644);
	mk_opq(other, UP("o"));
	mk_file(LO(0, "kept"), "k", 0644);
	h_mount(fmt, 2, NULL);
	assert_errno(access(MN("w1"), F_OK), ENOENT);
	assert_errno(access(MN("w2"), F_OK), ENOENT);
	assert_errno(access(MN("o/a"), F_OK), ENOENT);
	assert_str(ls(MN("o"), false), "b");
	assert_str(ls(H.mnt, false), "kept\no");
}

UTEST(lookup, opaque_dir_hides_everything_below)
{
	mk_file(UP("d/u"), "u", 0644);
	mk_opq(fmt, UP("d"));
	mk_file(LO(0, "d/a"), "a", 0644);
	mk_file(LO(1, "d/b"), "b", 0644);
	mk_file(LO(1, "d/sub/deep"), "deep", 0644);
	/* opaque in the middle branch: upper and l0 visible, l1 hidden */
	mk_file(UP("e/eu"), "eu", 0644);
	mk_file(LO(0, "e/e0"), "e0", 0644);
	mk_opq(fmt, LO(0, "e"));
	mk_file(LO(1, "e/e1"), "e1", 0644);
	/* empty opaque dir */
	mk_opq(fmt, UP("empty"));
	mk_file(LO(0, "empty/x"), "x", 0644);
	h_mount(fmt, 2, NULL);

	assert_str(ls(MN("d"), false), "u");
	assert_errno(access(MN("d/a"), F_OK), ENOENT);
	assert_errno(access(MN("d/sub/deep"), F_OK), ENOENT);
	assert_str(ls(MN("e"), false), "e0\neu");
	assert_errno(access(MN("e/e1"), F_OK), ENOENT);
	assert_str(ls(MN("empty"), false), "");
	assert_errno(access(MN("empty/x"), F_OK), ENOENT);
}

UTEST(lookup, user_overlay_opaque_is_read)
{
	/* user.overlay.opaque marks a dir opaque just like trusted.overlay.opaque */
	mk_file(LO(0, "d/top"), "t", 0644);
	cr_assert(setxattr(LO(0, "d"), "user.overlay.opaque", "y", 1, 0) == 0);
	mk_file(LO(1, "d/below"), "b", 0644);
	h_mount(fmt, 2, NULL);
	assert_str(ls(MN("d"), false), "top");
	assert_errno(access(MN("d/below"), F_OK), ENOENT);
}

UTEST(lookup, meta_names_never_found)
{
	mk_file(LO(0, "x"), "x", 0644);
	mk_wh(FMT_AUFS, H.lo[0], "y");
	mk_opq(FMT_AUFS, LO(0, "od"));
	h_mount(fmt, 1, NULL);
	assert_errno(access(MN(".wh.y"), F_OK), ENOENT);
	assert_errno(access(MN("od/.wh..wh..opq"), F_OK), ENOENT);
	assert_errno(access(MN(".wh..wh.strata"), F_OK), ENOENT);
	assert_errno(access(MN(".wh.x"), F_OK), ENOENT);
	assert_file(MN("x"), "x");
}

HTEST(lookup, aufs_ro_branch_does_not_honour_whiteouts)
{
	mk_wh(FMT_AUFS, H.lo[0], "x");
	mk_file(LO(1, "x"), "l1-x", 0644);
	mk_opq(FMT_AUFS, LO(0, "d"));
	mk_file(LO(1, "d/y"), "l1-y", 0644);
	h_mount_opts(pf("dirs=%s=rw:%s=ro:%s=ro", H.up, H.lo[0], H.lo[1]));
	assert_file(MN("x"), "l1-x");
	assert_file(MN("d/y"), "l1-y");
	assert_errno(access(MN(".wh.x"), F_OK), ENOENT);
	h_umount();
	/* the same layers with ro+wh: hidden */
	h_mount_opts(pf("dirs=%s=rw:%s=ro+wh:%s=ro", H.up, H.lo[0], H.lo[1]));
	assert_errno(access(MN("x"), F_OK), ENOENT);
	assert_errno(access(MN("d/y"), F_OK), ENOENT);
}

UTEST(lookup, three_way_merge_of_nested_dirs)
{
	mk_file(UP("a/b/c/u"), "u", 0644);
	mk_file(LO(0, "a/b/c/l0"), "l0", 0644);
	mk_file(LO(1, "a/b/c/l1"), "l1", 0644);
	mk_file(LO(1, "a/only1/f"), "f", 0644);
	mk_file(LO(0, "a/b/c2/g"), "g", 0644);
	h_mount(fmt, 2, NULL);
	assert_str(ls(MN("a/b/c"), false), "l0\nl1\nu");
	assert_file(MN("a/b/c/u"), "u");
	assert_file(MN("a/b/c/l0"), "l0");
	assert_file(MN("a/b/c/l1"), "l1");
	assert_file(MN("a/only1/f"), "f");
	assert_file(MN("a/b/c2/g"), "g");
	assert_str(ls(MN("a"), false), "b\nonly1");
	assert_str(ls(MN("a/b"), false), "c\nc2");
}

UTEST(lookup, upper_dir_metadata_wins)
{
	mk_dir(UP("d"), 0700);
	mk_dir(LO(0, "d"), 0755);
	mk_file(LO(0, "d/f"), "f", 0644);
	struct stat st;
	h_mount(fmt, 1, NULL);
	assert_ok(stat(MN("d"), &st));
	cr_assert_eq(st.st_mode & 07777, 0700);
	assert_file(MN("d/f"), "f");
}

UTEST(lookup, names_with_odd_bytes)
{
	const char *odd[] = {"sp ace", "new\nline", "tab\there", "\xff\xfe", "-dash", "a:b", "\\back"};
	for (size_t i = 0; i < sizeof odd / sizeof *odd; i++)
		mk_file(pf("%s/%s", H.lo[i % 2], odd[i]), odd[i], 0644);
	h_mount(fmt, 2, NULL);
	for (size_t i = 0; i < sizeof odd / sizeof *odd; i++)
		assert_file(pf("%s/%s", H.mnt, odd[i]), odd[i]);
	cr_assert_eq(count_entries(H.mnt, false), (int)(sizeof odd / sizeof *odd));
}

UTEST(lookup, aufs_whiteout_of_any_type_hides)
{
	/* OCI/aufs: ".wh.NAME" whites out NAME whatever its own type */
	mk_file(LO(1, "a"), "a", 0644);
	mk_dir(LO(0, ".wh.a"), 0755);
	mk_file(LO(1, "b"), "b", 0644);
	mk_symlink("whatever", LO(0, ".wh.b"));
	mk_file(LO(1, "c/x"), "x", 0644);
	cr_assert(mkfifo(LO(0, ".wh.c"), 0644) == 0);
	mk_file(LO(1, "d"), "d", 0644);
	h_mount(fmt, 2, NULL);
	assert_errno(access(MN("a"), F_OK), ENOENT);
	assert_errno(access(MN("b"), F_OK), ENOENT);
	assert_errno(access(MN("c"), F_OK), ENOENT);
	assert_str(ls(H.mnt, false), "d");
}

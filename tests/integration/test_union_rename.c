/* Semantic point 7: rename of files across branches, RENAME_NOREPLACE and
 * RENAME_EXCHANGE, the POSIX error cases, rename of directories with lower
 * content (redirect, survives remount), and -o redirect_dir=off -> EXDEV. */
#include "harness.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <unistd.h>

static int ren2(const char *a, const char *b, unsigned flags)
{
	return renameat2(AT_FDCWD, a, AT_FDCWD, b, flags);
}

UTEST(rename, lower_file_to_new_name)
{
	mk_file(LO(0, "a"), "A", 0640);
	mk_file(LO(1, "a"), "A1", 0644);
	h_mount(fmt, 2, NULL);
	assert_ok(rename(MN("a"), MN("b")));
	assert_errno(access(MN("a"), F_OK), ENOENT);
	assert_file(MN("b"), "A");
	struct stat st;
	assert_ok(stat(MN("b"), &st));
	cr_assert_eq(st.st_mode & 07777, 0640);
	assert_file(UP("b"), "A");
	cr_assert(is_whiteout(fmt, H.up, "a"), "old name not whited out: %s", ls(H.up, true));
	cr_assert_eq(count_whiteouts(H.up), 1);
	assert_file(LO(0, "a"), "A");
	assert_str(ls(H.mnt, false), "b");
	h_remount();
	assert_str(ls(H.mnt, false), "b");
	assert_file(MN("b"), "A");
}

UTEST(rename, upper_only_file_leaves_no_whiteout)
{
	mk_file(LO(0, "other"), "o", 0644);
	h_mount(fmt, 1, NULL);
	spew(MN("x"), "X");
	assert_ok(rename(MN("x"), MN("y")));
	assert_file(MN("y"), "X");
	assert_errno(access(MN("x"), F_OK), ENOENT);
	cr_assert_eq(count_whiteouts(H.up), 0, "upper: %s", ls(H.up, true));
	assert_str(ls(H.up, true), "y");
}

UTEST(rename, file_over_lower_file_and_across_dirs)
{
	mk_file(LO(0, "a"), "A", 0644);
	mk_file(LO(1, "c"), "C", 0644);
	mk_file(LO(0, "d1/f"), "F", 0644);
	mk_file(LO(1, "d2/keep"), "K", 0644);
	h_mount(fmt, 2, NULL);
	assert_ok(rename(MN("a"), MN("c")));
	assert_file(MN("c"), "A");
	assert_errno(access(MN("a"), F_OK), ENOENT);
	assert_ok(rename(MN("d1/f"), MN("d2/f")));
	assert_file(MN("d2/f"), "F");
	assert_str(ls(MN("d1"), false), "");
	assert_str(ls(MN("d2"), false), "f\nkeep");
	cr_assert(is_whiteout(fmt, UP("d1"), "f"));
	assert_str(ls(H.mnt, false), "c\nd1\nd2");
}

UTEST(rename, onto_a_whited_out_name)
{
	mk_file(LO(0, "a"), "A", 0644);
	mk_file(LO(0, "b"), "B", 0644);
	h_mount(fmt, 1, NULL);
	assert_ok(unlink(MN("b")));
	assert_ok(rename(MN("a"), MN("b")));
	assert_file(MN("b"), "A");
	assert_errno(access(MN("a"), F_OK), ENOENT);
	cr_assert(is_whiteout(fmt, H.up, "a"));
	cr_assert(!is_any_whiteout(H.up, "b"));
	cr_assert_eq(count_whiteouts(H.up), 1);
}

UTEST(rename, noreplace)
{
	mk_file(LO(0, "a"), "A", 0644);
	mk_file(LO(1, "b"), "B", 0644);
	h_mount(fmt, 2, NULL);
	assert_errno(ren2(MN("a"), MN("b"), RENAME_NOREPLACE), EEXIST);
	assert_file(MN("a"), "A");
	assert_file(MN("b"), "B");
	assert_str(tree(H.up, false, true), "");
	assert_ok(ren2(MN("a"), MN("c"), RENAME_NOREPLACE));
	assert_file(MN("c"), "A");
	assert_errno(access(MN("a"), F_OK), ENOENT);
	/* a whited-out name is free */
	assert_ok(unlink(MN("b")));
	assert_ok(ren2(MN("c"), MN("b"), RENAME_NOREPLACE));
	assert_file(MN("b"), "A");
}

UTEST(rename, exchange)
{
	mk_file(LO(0, "a"), "A", 0644);
	mk_file(LO(1, "b"), "B", 0600);
	mk_file(UP("u"), "U", 0644);
	h_mount(fmt, 2, NULL);
	assert_ok(ren2(MN("a"), MN("b"), RENAME_EXCHANGE));
	assert_file(MN("a"), "B");
	assert_file(MN("b"), "A");
	struct stat st;
	assert_ok(stat(MN("a"), &st));
	cr_assert_eq(st.st_mode & 07777, 0600);
	assert_ok(ren2(MN("u"), MN("a"), RENAME_EXCHANGE));
	assert_file(MN("u"), "B");
	assert_file(MN("a"), "U");
	/* file <-> upper-only directory */
	assert_ok(mkdir(MN("nd"), 0755));
	spew(MN("nd/in"), "in");
	assert_ok(ren2(MN("b"), MN("nd"), RENAME_EXCHANGE));
	assert_file(MN("nd"), "A");
	assert_file(MN("b/in"), "in");
	assert_errno(ren2(MN("a"), MN("missing"), RENAME_EXCHANGE), ENOENT);
	assert_str(ls(H.mnt, false), "a\nb\nnd\nu");
	h_remount();
	assert_file(MN("a"), "U");
	assert_file(MN("u"), "B");
	assert_file(MN("nd"), "A");
	assert_file(MN("b/in"), "in");
}

UTEST(rename, posix_errors)
{
	mk_file(LO(0, "d/sub/x"), "x", 0644);
	mk_file(LO(0, "s/x"), "x", 0644);
	mk_file(LO(1, "t/y"), "y", 0644);
	mk_file(LO(0, "f"), "f", 0644);
	mk_dir(LO(1, "emptydir"), 0755);
	h_mount(fmt, 2, NULL);
	assert_errno(rename(MN("d"), MN("d/sub/x2")), EINVAL);
	assert_errno(rename(MN("d"), MN("d/new")), EINVAL);
	assert_errno(rename(MN("s"), MN("t")), ENOTEMPTY);
	assert_errno(rename(MN("f"), MN("t")), EISDIR);
	assert_errno(rename(MN("f"), MN("emptydir")), EISDIR);
	assert_errno(rename(MN("s"), MN("f")), ENOTDIR);
	assert_errno(rename(MN("missing"), MN("z")), ENOENT);
	assert_errno(rename(MN("f"), MN("nodir/z")), ENOENT);
	assert_errno(rename(MN("f/"), MN("z")), ENOTDIR);
	assert_str(ls(H.mnt, false), "d\nemptydir\nf\ns\nt");
	assert_file(MN("t/y"), "y");
	assert_file(MN("s/x"), "x");
	assert_file(MN("d/sub/x"), "x");
	assert_str(tree(H.up, false, true), "");
}

UTEST(rename, dir_onto_dir_whose_entries_were_deleted)
{
	mk_file(LO(0, "t/y"), "y", 0644);
	mk_file(LO(1, "t/z"), "z", 0644);
	h_mount(fmt, 2, NULL);
	assert_ok(unlink(MN("t/y")));
	assert_ok(unlink(MN("t/z")));
	assert_ok(mkdir(MN("s"), 0755));
	spew(MN("s/q"), "q");
	assert_ok(rename(MN("s"), MN("t")));
	assert_str(ls(MN("t"), false), "q");
	assert_errno(access(MN("s"), F_OK), ENOENT);
	h_remount();
	assert_str(ls(MN("t"), false), "q");
	assert_str(ls(H.mnt, false), "t");
}

UTEST(rename, dir_with_lower_content)
{
	mk_file(LO(0, "d/x"), "X", 0644);
	mk_file(LO(0, "d/sub/y"), "Y", 0644);
	mk_file(LO(1, "d/z"), "Z", 0644);
	mk_file(LO(1, "d/sub/w"), "W", 0644);
	h_mount(fmt, 2, NULL);
	struct stat st;
	assert_ok(stat(MN("d/sub/y"), &st));
	assert_ok(rename(MN("d"), MN("e")));
	assert_errno(access(MN("d"), F_OK), ENOENT);
	assert_str(ls(MN("e"), false), "sub\nx\nz");
	assert_str(ls(MN("e/sub"), false), "w\ny");
	assert_file(MN("e/x"), "X");
	assert_file(MN("e/sub/y"), "Y");
	assert_file(MN("e/z"), "Z");
	assert_str(ls(H.mnt, false), "e");
	/* no copy of the tree */
	cr_assert(!exists(UP("e/x")) && !exists(UP("e/z")) && !exists(UP("e/sub/y")),
		  "the directory's content was copied up: %s", tree(H.up, false, true));
	h_remount();
	assert_str(ls(H.mnt, false), "e");
	assert_str(ls(MN("e"), false), "sub\nx\nz");
	assert_str(ls(MN("e/sub"), false), "w\ny");
	assert_file(MN("e/sub/w"), "W");
	/* the old name is free and comes back empty */
	assert_ok(mkdir(MN("d"), 0755));
	assert_str(ls(MN("d"), false), "");
	/* modifications inside the renamed dir */
	cr_assert_eq(try_spew(MN("e/x"), "+", O_WRONLY | O_APPEND), 0);
	assert_ok(unlink(MN("e/z")));
	spew(MN("e/new"), "N");
	assert_str(ls(MN("e"), false), "new\nsub\nx");
	h_remount();
	assert_file(MN("e/x"), "X+");
	assert_str(ls(MN("e"), false), "new\nsub\nx");
	assert_str(ls(MN("d"), false), "");
}

UTEST(rename, dir_twice_and_into_another_dir)
{
	mk_file(LO(0, "a/f"), "F", 0644);
	mk_file(LO(0, "p/q/g"), "G", 0644);
	h_mount(fmt, 1, NULL);
	assert_ok(rename(MN("a"), MN("b")));
	assert_ok(rename(MN("b"), MN("c")));
	assert_file(MN("c/f"), "F");
	assert_ok(mkdir(MN("n"), 0755));
	assert_ok(rename(MN("c"), MN("n/c")));
	assert_file(MN("n/c/f"), "F");
	assert_ok(rename(MN("p/q"), MN("q")));
	assert_file(MN("q/g"), "G");
	assert_str(ls(MN("p"), false), "");
	assert_str(ls(H.mnt, false), "n\np\nq");
	h_remount();
	assert_file(MN("n/c/f"), "F");
	assert_file(MN("q/g"), "G");
	assert_str(ls(H.mnt, false), "n\np\nq");
	assert_str(ls(MN("n"), false), "c");
}

UTEST(rename, subdir_of_renamed_dir_keeps_content)
{
	mk_file(LO(0, "top/mid/leaf/f"), "F", 0644);
	h_mount(fmt, 1, NULL);
	assert_ok(rename(MN("top"), MN("top2")));
	assert_ok(rename(MN("top2/mid/leaf"), MN("leaf2")));
	assert_file(MN("leaf2/f"), "F");
	assert_str(ls(MN("top2/mid"), false), "");
	h_remount();
	assert_file(MN("leaf2/f"), "F");
	assert_str(ls(MN("top2/mid"), false), "");
	assert_str(ls(H.mnt, false), "leaf2\ntop2");
}

/* The redirect of a renamed directory is followed below its layer one
 * component at a time, like overlayfs: an opaque parent in a middle layer
 * hides what the bottom layer has at the old path (so the bottom's names
 * neither show up nor block new ones), also after a remount. */
UTEST(rename, redirect_stops_at_opaque_parent_in_middle_layer)
{
	mk_file(LO(0, "p/d/a"), "A", 0644);
	mk_opq(fmt, LO(0, "p"));
	mk_file(LO(1, "p/d/b"), "B", 0644);
	mk_file(LO(1, "p/old"), "O", 0644);
	h_mount(fmt, 2, NULL);
	assert_str(ls(MN("p"), false), "d");
	assert_str(ls(MN("p/d"), false), "a");
	assert_ok(rename(MN("p/d"), MN("e")));
	assert_str(ls(MN("e"), false), "a");
	h_remount();
	assert_str(ls(MN("e"), false), "a");
	assert_errno(access(MN("e/b"), F_OK), ENOENT);
	assert_ok(link(MN("e/a"), MN("e/b")));
	assert_file(MN("e/b"), "A");
	assert_str(ls(MN("e"), false), "a\nb");
	h_remount();
	assert_str(ls(MN("e"), false), "a\nb");
	assert_file(MN("e/b"), "A");
}

/* A directory held open and then renamed over (or removed) reports what
 * its backing object reports, as kernel overlayfs does: the backing
 * filesystem decides its size afterwards, not the union. */
UTEST(rename, held_dir_renamed_over_keeps_backing_attributes)
{
	struct stat st, bst;
	mk_dir(LO(0, "low"), 0750);
	h_mount(fmt, 1, NULL);
	assert_ok(mkdir(MN("d"), 0700));
	assert_ok(mkdir(MN("x"), 0755));
	assert_ok(mkdir(MN("y"), 0755));
	int fd = open(MN("d"), O_RDONLY | O_DIRECTORY);
	int bfd = open(UP("d"), O_PATH | O_DIRECTORY);
	int lfd = open(MN("low"), O_RDONLY | O_DIRECTORY);
	cr_assert(fd >= 0 && bfd >= 0 && lfd >= 0, "open: %s", strerror(errno));
	assert_ok(rename(MN("x"), MN("d")));
	assert_ok(fstat(fd, &st));
	assert_ok(fstat(bfd, &bst));
	cr_assert(S_ISDIR(st.st_mode) && (st.st_mode & 07777) == 0700, "mode %o", st.st_mode);
	cr_assert_eq(st.st_size, bst.st_size, "size %lld, backing %lld", (long long)st.st_size,
		     (long long)bst.st_size);
	/* a lower directory renamed over keeps its lower attributes */
	assert_ok(stat(LO(0, "low"), &bst));
	assert_ok(rename(MN("y"), MN("low")));
	assert_ok(fstat(lfd, &st));
	cr_assert(S_ISDIR(st.st_mode) && (st.st_mode & 07777) == 0750, "mode %o", st.st_mode);
	cr_assert_eq(st.st_size, bst.st_size, "size %lld, lower %lld", (long long)st.st_size,
		     (long long)bst.st_size);
	close(fd);
	close(bfd);
	close(lfd);
}

UTEST(rename, redirect_dir_off_gives_exdev_and_changes_nothing)
{
	mk_file(LO(0, "d/x"), "X", 0644);
	mk_file(UP("d/u"), "U", 0644);
	mk_file(LO(0, "l/y"), "Y", 0644);
	h_mount(fmt, 1, "redirect_dir=off");
	char *before = tree(H.up, false, true);
	assert_errno(rename(MN("d"), MN("e")), EXDEV);
	assert_errno(rename(MN("l"), MN("e")), EXDEV);
	assert_str(tree(H.up, false, true), before);
	assert_str(ls(H.mnt, false), "d\nl");
	assert_str(ls(MN("d"), false), "u\nx");
	assert_errno(access(MN("e"), F_OK), ENOENT);
	/* a directory that exists only in upper can still be renamed */
	assert_ok(mkdir(MN("new"), 0755));
	spew(MN("new/f"), "f");
	assert_ok(rename(MN("new"), MN("new2")));
	assert_file(MN("new2/f"), "f");
	/* files are not affected */
	assert_ok(rename(MN("d/x"), MN("x")));
	assert_file(MN("x"), "X");
}

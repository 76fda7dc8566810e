/* Semantic point 8 (hard links: one copy-up, shared st_ino, st_nlink 2, also
 * after remount) and the symlink part of 9 (targets byte for byte). */
#include "harness.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static struct stat st_of(const char *p)
{
	struct stat st;
	cr_assert(lstat(p, &st) == 0, "lstat %s: %s", p, strerror(errno));
	return st;
}

UTEST(links, hard_link_of_lower_file)
{
	mk_file(LO(0, "f"), "F", 0644);
	mk_file(LO(1, "other"), "O", 0644);
	h_mount(fmt, 2, NULL);
	ino_t ino0 = st_of(MN("f")).st_ino;
	assert_ok(link(MN("f"), MN("g")));
	struct stat sf = st_of(MN("f")), sg = st_of(MN("g"));
	cr_assert_eq(sf.st_ino, sg.st_ino, "f %llu, g %llu", (unsigned long long)sf.st_ino,
		     (unsigned long long)sg.st_ino);
	cr_assert_eq(sf.st_ino, ino0, "st_ino changed by the link's copy-up");
	cr_assert_eq(sf.st_nlink, 2);
	cr_assert_eq(sg.st_nlink, 2);
	/* one copy in upper, two names */
	struct stat uf = st_of(UP("f")), ug = st_of(UP("g"));
	cr_assert(uf.st_ino == ug.st_ino && uf.st_nlink == 2);
	/* a write through one name shows through the other */
	cr_assert_eq(try_spew(MN("g"), "+g", O_WRONLY | O_APPEND), 0);
	assert_file(MN("f"), "F+g");
	cr_assert_eq(try_spew(MN("f"), "+f", O_WRONLY | O_APPEND), 0);
	assert_file(MN("g"), "F+g+f");
	assert_file(LO(0, "f"), "F");
	h_remount();
	sf = st_of(MN("f"));
	sg = st_of(MN("g"));
	cr_assert_eq(sf.st_ino, sg.st_ino, "after remount: f %llu, g %llu",
		     (unsigned long long)sf.st_ino, (unsigned long long)sg.st_ino);
	cr_assert_eq(sf.st_ino, ino0, "after remount: st_ino changed");
	cr_assert_eq(sf.st_nlink, 2);
	assert_file(MN("g"), "F+g+f");
}

UTEST(links, hard_link_across_lower_dirs)
{
	mk_file(LO(0, "d1/f"), "F", 0600);
	mk_dir(LO(1, "d2"), 0755);
	h_mount(fmt, 2, NULL);
	assert_ok(link(MN("d1/f"), MN("d2/g")));
	assert_ok(link(MN("d1/f"), MN("h")));
	struct stat a = st_of(MN("d1/f")), b = st_of(MN("d2/g")), c = st_of(MN("h"));
	cr_assert(a.st_ino == b.st_ino && b.st_ino == c.st_ino);
	cr_assert_eq(a.st_nlink, 3);
	assert_file(MN("d2/g"), "F");
	assert_ok(unlink(MN("d1/f")));
	cr_assert(is_whiteout(fmt, UP("d1"), "f"), "lower d1/f not whited out");
	b = st_of(MN("d2/g"));
	cr_assert_eq(b.st_nlink, 2);
	assert_ok(unlink(MN("h")));
	cr_assert_eq(st_of(MN("d2/g")).st_nlink, 1);
	assert_file(MN("d2/g"), "F");
	h_remount();
	assert_file(MN("d2/g"), "F");
	assert_errno(access(MN("d1/f"), F_OK), ENOENT);
}

UTEST(links, hard_links_of_upper_files)
{
	h_mount(fmt, 1, NULL);
	spew(MN("a"), "A");
	assert_ok(link(MN("a"), MN("b")));
	struct stat a = st_of(MN("a")), b = st_of(MN("b"));
	cr_assert(a.st_ino == b.st_ino && a.st_nlink == 2);
	ino_t ino = a.st_ino;
	h_remount();
	a = st_of(MN("a"));
	b = st_of(MN("b"));
	cr_assert(a.st_ino == ino && b.st_ino == ino && b.st_nlink == 2);
	assert_errno(link(MN("a"), MN("b")), EEXIST);
	assert_ok(mkdir(MN("d"), 0755));
	assert_errno(link(MN("d"), MN("d2")), EPERM);
}

UTEST(links, link_then_modify_original_lower_name)
{
	mk_file(LO(0, "f"), "F", 0644);
	h_mount(fmt, 1, NULL);
	assert_ok(link(MN("f"), MN("g")));
	assert_ok(chmod(MN("f"), 0600));
	cr_assert_eq(st_of(MN("g")).st_mode & 07777, 0600);
	assert_ok(truncate(MN("g"), 0));
	struct stat f = st_of(MN("f"));
	cr_assert_eq(f.st_size, 0);
	cr_assert_eq(f.st_nlink, 2);
}

static const char *targets[] = {
	"no/such/target",
	"../up/and/over",
	"/etc/hostname",
	"a\001b\377 c\t\"quoted\"",
	"./.",
	"trailing/",
	"x",
};

/* Once the other names of an upper hard link are gone (st_nlink back to
 * 1), a fresh lookup of the remaining name must still lead to the node the
 * kernel already has for the file: a second node would have a page cache
 * and attributes of its own, and a descriptor held on the first would miss
 * changes made through the name (kernel overlayfs has one inode). */
UTEST(links, last_name_of_hard_link_keeps_the_open_inode)
{
	char buf[64];
	struct stat st;
	h_mount(fmt, 1, NULL);
	spew(MN("a"), "hello");
	assert_ok(link(MN("a"), MN("b")));
	int fd = open(MN("a"), O_RDONLY);
	cr_assert(fd >= 0, "open: %s", strerror(errno));
	cr_assert_eq(pread(fd, buf, sizeof(buf), 0), 5);
	assert_ok(unlink(MN("a")));
	/* Past the entry timeout (1 s), "b" is looked up again. */
	usleep(1200 * 1000);
	assert_ok(fstat(fd, &st));
	cr_assert_eq(st.st_nlink, 1);
	cr_assert_eq(try_spew(MN("b"), "HE", O_WRONLY), 0);
	cr_assert_eq(pread(fd, buf, sizeof(buf), 0), 5);
	cr_assert(memcmp(buf, "HEllo", 5) == 0, "held fd reads \"%.5s\"", buf);
	assert_ok(truncate(MN("b"), 2));
	assert_ok(fstat(fd, &st));
	cr_assert_eq(st.st_size, 2);
	cr_assert_eq(pread(fd, buf, sizeof(buf), 0), 2);
	close(fd);
	assert_file(MN("b"), "HE");
}

UTEST(links, symlink_targets_byte_for_byte)
{
	size_t nt = sizeof targets / sizeof *targets;
	char longt[4000];
	memset(longt, 'L', sizeof longt - 1);
	for (size_t i = 0; i < sizeof longt - 1; i += 100)
		longt[i] = '/';
	longt[sizeof longt - 1] = 0;
	for (size_t i = 0; i < nt; i++)
		mk_symlink(targets[i], LO(i % 2, pf("s%zu", i)));
	mk_symlink(longt, LO(0, "long"));
	h_mount(fmt, 2, NULL);
	for (size_t i = 0; i < nt; i++) {
		assert_str(rdlink(MN(pf("s%zu", i))), targets[i]);
		cr_assert_eq(st_of(MN(pf("s%zu", i))).st_size, (off_t)strlen(targets[i]));
	}
	assert_str(rdlink(MN("long")), longt);
	/* created through the mount */
	for (size_t i = 0; i < nt; i++)
		assert_ok(symlink(targets[i], MN(pf("n%zu", i))));
	assert_ok(symlink(longt, MN("nlong")));
	for (size_t i = 0; i < nt; i++) {
		assert_str(rdlink(MN(pf("n%zu", i))), targets[i]);
		assert_str(rdlink(UP(pf("n%zu", i))), targets[i]);
	}
	assert_str(rdlink(UP("nlong")), longt);
	h_remount();
	for (size_t i = 0; i < nt; i++) {
		assert_str(rdlink(MN(pf("s%zu", i))), targets[i]);
		assert_str(rdlink(MN(pf("n%zu", i))), targets[i]);
	}
	assert_str(rdlink(MN("nlong")), longt);
	cr_assert_eq(st_of(MN("s0")).st_mode & S_IFMT, S_IFLNK);
}

UTEST(links, symlinks_resolve_through_the_mount)
{
	mk_file(LO(0, "dir/t"), "T", 0644);
	mk_symlink("dir/t", LO(0, "rel"));
	mk_symlink("../dir/t", LO(1, "sub/up"));
	mk_symlink("dir", LO(1, "dirlink"));
	mk_symlink("dangling", LO(0, "dang"));
	mk_symlink("loop", LO(0, "loop"));
	h_mount(fmt, 2, NULL);
	assert_file(MN("rel"), "T");
	assert_file(MN("sub/up"), "T");
	assert_file(MN("dirlink/t"), "T");
	assert_errno(open(MN("dang"), O_RDONLY), ENOENT);
	assert_errno(open(MN("loop"), O_RDONLY), ELOOP);
	/* writing through a lower symlink copies up the target, not the link */
	cr_assert_eq(try_spew(MN("rel"), "+", O_WRONLY | O_APPEND), 0);
	assert_file(UP("dir/t"), "T+");
	assert_str(rdlink(MN("rel")), "dir/t");
	/* creating through a dangling symlink creates its target */
	cr_assert_eq(try_spew(MN("dang"), "now", O_WRONLY | O_CREAT), 0);
	assert_file(MN("dangling"), "now");
	assert_str(rdlink(MN("dang")), "dangling");
}

UTEST(links, symlink_copy_up_and_replace)
{
	mk_symlink("old-target", LO(0, "s"));
	h_mount(fmt, 1, NULL);
	assert_ok(lchown(MN("s"), 12, 34));
	assert_str(rdlink(UP("s")), "old-target");
	struct stat st = st_of(UP("s"));
	cr_assert(S_ISLNK(st.st_mode) && st.st_uid == 12 && st.st_gid == 34);
	assert_ok(unlink(MN("s")));
	assert_ok(symlink("new-target", MN("s")));
	assert_str(rdlink(MN("s")), "new-target");
	h_remount();
	assert_str(rdlink(MN("s")), "new-target");
}

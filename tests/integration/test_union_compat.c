/* Semantic point 10, the compatibility half: an upper written in overlay
 * format mounts with kernel overlayfs and shows exactly the tree seen through
 * strata-unionfs; a used upper works as a lower of a new mount (in either
 * syntax). */
#include "harness.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/xattr.h>
#include <unistd.h>

/* Layers with a bit of everything, then a sequence of modifications through
 * the mount that exercises every kind of marker the union writes. */
static void layers(void)
{
	mk_file(LO(0, "keep"), "keep", 0644);
	mk_file(LO(0, "del"), "delete me", 0644);
	mk_file(LO(1, "del"), "below", 0644);
	mk_file(LO(0, "mod"), "modify me", 0640);
	mk_file(LO(0, "d/x"), "dx", 0644);
	mk_file(LO(1, "d/y"), "dy", 0644);
	mk_file(LO(1, "d/sub/z"), "dz", 0644);
	mk_file(LO(0, "gone/a"), "a", 0644);
	mk_file(LO(1, "gone/b"), "b", 0644);
	mk_file(LO(0, "again/a"), "a", 0644);
	mk_file(LO(0, "mv/in"), "in", 0644);
	mk_file(LO(1, "mv/deep/in2"), "in2", 0644);
	mk_file(LO(0, "mvf"), "moved file", 0644);
	mk_file(LO(0, "hl"), "hard", 0644);
	mk_symlink("keep", LO(1, "sym"));
	mk_file(LO(0, "x/attr"), "attr", 0644);
	mk_file(LO(1, "tree/a/b/c"), "c", 0644);
}

static void modify(void)
{
	spew(MN("new"), "new file");
	assert_ok(mkdir(MN("newdir"), 0750));
	spew(MN("newdir/f"), "f");
	assert_ok(unlink(MN("del")));
	cr_assert_eq(try_spew(MN("mod"), " modified", O_WRONLY | O_APPEND), 0);
	assert_ok(chmod(MN("keep"), 0600));
	assert_ok(unlink(MN("d/y")));
	spew(MN("d/sub/new"), "n");
	assert_ok(unlink(MN("gone/a")));
	assert_ok(unlink(MN("gone/b")));
	assert_ok(rmdir(MN("gone")));
	assert_ok(unlink(MN("again/a")));
	assert_ok(rmdir(MN("again")));
	assert_ok(mkdir(MN("again"), 0755));
	spew(MN("again/fresh"), "fresh");
	assert_ok(rename(MN("mv"), MN("moved")));
	assert_ok(rename(MN("mvf"), MN("d/mvf")));
	assert_ok(link(MN("hl"), MN("hl2")));
	assert_ok(symlink("new", MN("sym2")));
	assert_ok(setxattr(MN("x/attr"), "user.k", "v", 1, 0));
	assert_ok(mkfifo(MN("fifo"), 0644));
	assert_ok(rename(MN("tree/a"), MN("a2")));
}

static char *overlay_tree(const char *lowers, const char *extra)
{
	const char *km = RT("kmnt"), *kw = RT("kwork");
	mkdir_p(km, 0755);
	mkdir_p(kw, 0755);
	char opts[8192];
	snprintf(opts, sizeof opts, "lowerdir=%s,upperdir=%s,workdir=%s%s%s", lowers, H.up, kw,
		 extra && *extra ? "," : "", extra ? extra : "");
	char kmc[PATH_MAX];
	snprintf(kmc, sizeof kmc, "%s", km);
	cr_assert(mount("overlay", kmc, "overlay", 0, opts) == 0, "kernel overlay mount -o %s: %s",
		  opts, strerror(errno));
	char *t = tree(kmc, true, false);
	cr_assert(umount2(kmc, 0) == 0, "umount kernel overlay: %s", strerror(errno));
	return t;
}

HTEST(compat, kernel_overlayfs_sees_the_same_tree)
{
	layers();
	h_mount(FMT_OVL, 2, NULL);
	modify();
	char *ours = tree(H.mnt, true, false);
	h_umount();
	char *kern = overlay_tree(pf("%s:%s", H.lo[0], H.lo[1]), "redirect_dir=on");
	assert_str(kern, ours);
	/* and the view survives the kernel mount unchanged */
	h_mount(FMT_OVL, 2, NULL);
	assert_str(tree(H.mnt, true, false), ours);
}

HTEST(compat, kernel_overlayfs_after_deep_changes)
{
	/* whiteouts in merged subdirectories, an opaque dir with a subdir,
	 * a renamed dir that was modified afterwards */
	mk_file(LO(0, "p/q/r/one"), "1", 0644);
	mk_file(LO(1, "p/q/r/two"), "2", 0644);
	mk_file(LO(1, "p/q/three"), "3", 0644);
	h_mount(FMT_OVL, 2, NULL);
	assert_ok(unlink(MN("p/q/r/two")));
	assert_ok(rename(MN("p/q"), MN("q")));
	spew(MN("q/r/added"), "a");
	assert_ok(unlink(MN("q/three")));
	assert_ok(mkdir(MN("p/q"), 0755));
	assert_ok(mkdir(MN("p/q/r"), 0755));
	spew(MN("p/q/r/one"), "replaced");
	char *ours = tree(H.mnt, true, false);
	h_umount();
	assert_str(overlay_tree(pf("%s:%s", H.lo[0], H.lo[1]), "redirect_dir=on"), ours);
}

static const char *reuse_opts(enum ufmt syntax, const char *up2, const char *wk2)
{
	if (syntax == FMT_AUFS)
		return pf("dirs=%s=rw:%s=ro+wh:%s=ro+wh:%s=ro+wh", up2, H.up, H.lo[0], H.lo[1]);
	return pf("lowerdir=%s:%s:%s,upperdir=%s,workdir=%s", H.up, H.lo[0], H.lo[1], up2, wk2);
}

static void reuse(enum ufmt fmt, enum ufmt second)
{
	layers();
	h_mount(fmt, 2, NULL);
	modify();
	char *ours = tree(H.mnt, true, false);
	h_umount();
	const char *up2 = RT("u2"), *wk2 = RT("w2");
	char u2[PATH_MAX], w2[PATH_MAX];
	snprintf(u2, sizeof u2, "%s", up2);
	snprintf(w2, sizeof w2, "%s", wk2);
	mkdir_p(u2, 0755);
	mkdir_p(w2, 0755);
	h_mount_opts(reuse_opts(second, u2, w2));
	assert_str(tree(H.mnt, true, false), ours);
	/* still a working union on top */
	assert_ok(unlink(MN("new")));
	assert_ok(unlink(MN("moved/in")));
	spew(MN("again/more"), "m");
	assert_errno(access(MN("new"), F_OK), ENOENT);
	assert_str(ls(MN("moved"), false), "deep");
	assert_str(ls(MN("again"), false), "fresh\nmore");
	cr_assert(!exists(pf("%s/new", u2)) || is_any_whiteout(u2, "new"));
}

UTEST(compat, used_upper_as_lower_same_syntax)
{
	reuse(fmt, fmt);
}

UTEST(compat, used_upper_as_lower_other_syntax)
{
	reuse(fmt, fmt == FMT_AUFS ? FMT_OVL : FMT_AUFS);
}

UTEST(compat, view_survives_remount)
{
	layers();
	h_mount(fmt, 2, NULL);
	modify();
	char *ours = tree(H.mnt, true, false);
	h_remount();
	assert_str(tree(H.mnt, true, false), ours);
}

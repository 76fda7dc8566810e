/* Semantic point 13: a non-root user mounts through fusermount3 and the
 * semantics still hold (copy-up, whiteouts, opaque dirs, readdir, rename of
 * lower dirs, hard links, xattrs, private names); an unreadable lower dir
 * gives EACCES and the mount stays up; the overlay-format upper written
 * without privileges (user.overlay.*) mounts with kernel overlayfs -o userxattr.
 * Runs as root, creating a throwaway user; all filesystem work through the
 * mount happens in a child process running as that user. */
#include "harness.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

static uid_t uid;
static gid_t gid;
static char ubin[PATH_MAX];

static void copy_binary(void)
{
	size_t n;

	snprintf(ubin, sizeof ubin, "%s/bin/strata-unionfs", H.root);
	free(mk_copy(H.bin, ubin, 0755, &n));
}

static void setup(void)
{
	/* as udev sets it on a normal system (fuse3's rule: MODE="0666"); the
	 * old mode comes back after the test */
	struct stat st;
	cr_assert(stat("/dev/fuse", &st) == 0, "/dev/fuse: %s", strerror(errno));
	chmod_restored("/dev/fuse", (st.st_mode & 07777) | 0666);
	make_user(&uid, &gid);
	copy_binary();
	mk_file(LO(0, "keep"), "keep", 0644);
	mk_file(LO(0, "mod"), "mod", 0644);
	mk_file(LO(0, "del"), "del", 0644);
	mk_file(LO(0, "d/x"), "x", 0644);
	mk_file(LO(1, "d/z"), "z", 0644);
	mk_file(LO(0, "gone/a"), "a", 0644);
	mk_file(LO(0, "mv/in"), "in", 0644);
	mk_file(LO(1, "mv/deep/in2"), "in2", 0644);
	mk_file(LO(0, "hl"), "hard", 0644);
	mk_file(LO(0, "secret/hidden"), "h", 0644);
	mk_file(LO(0, "attr"), "attr", 0644);
	chown_tree(H.root, uid, gid);
	cr_assert(chmod(LO(0, "secret"), 0) == 0);
	cr_assert(setxattr(LO(0, "attr"), "user.low", "L", 1, 0) == 0);
}

static void mount_as_user(enum ufmt fmt)
{
	char o[16384];
	snprintf(o, sizeof o, "%s", union_opts(fmt, 2, NULL));
	struct run_result r;
	char *argv[] = {ubin, "-o", o, H.mnt, NULL};
	run(&r, argv, uid, gid, NULL);
	cr_assert_eq(r.status, 0, "mount as uid %u failed (%d): %s", uid, r.status, r.err);
	char fstype[256], so[1024];
	cr_assert(mount_info(H.mnt, fstype, sizeof fstype, NULL, 0, so, sizeof so),
		  "exited 0 but not mounted");
	cr_assert(!strncmp(fstype, "fuse", 4), "fstype %s", fstype);
	cr_assert(strstr(so, pf("user_id=%u", uid)), "not a user mount: %s", so);
	H.daemon = find_daemon(H.mnt);
}

static void umount_as_user(void)
{
	pid_t d = find_daemon(H.mnt);
	struct run_result r;
	char *argv[] = {"fusermount3", "-u", H.mnt, NULL};
	run(&r, argv, uid, gid, NULL);
	cr_assert_eq(r.status, 0, "fusermount3 -u as the user: %s", r.err);
	cr_assert(!is_mounted(H.mnt));
	if (d > 0)
		cr_assert(wait_pid_gone(d, 10000), "daemon still running after fusermount3 -u");
}

static void in_user(int (*fn)(void *), void *arg)
{
	char msg[8192];
	int rc = as_user(uid, gid, fn, arg, msg, sizeof msg);
	cr_assert_eq(rc, 0, "as uid %u: %s", uid, msg);
}

static int ucontent(const char *path, const char *want)
{
	char *s = slurp(path);
	return s && !strcmp(s, want);
}

/* ---- the work done as the user ---- */

/* arg != NULL: no directory rename (kernel overlayfs never follows redirects
 * with -o userxattr, so such a tree cannot be compared with it) */
static int u_basic(void *arg)
{
	char buf[64];
	UCHECK(ucontent(MN("keep"), "keep"), "read lower file");
	char *l = ls(H.mnt, false);
	UCHECK(l && !strcmp(l, "attr\nd\ndel\ngone\nhl\nkeep\nmod\nmv\nsecret"), "root listing: %s", l);
	l = ls(MN("d"), false);
	UCHECK(l && !strcmp(l, "x\nz"), "merged listing: %s", l);
	UCHECK(try_spew(MN("mod"), "+", O_WRONLY | O_APPEND) == 0, "append to lower file");
	UCHECK(ucontent(MN("mod"), "mod+"), "copied-up content");
	UCHECK(unlink(MN("del")) == 0, "unlink lower file");
	UCHECK(access(MN("del"), F_OK) < 0 && errno == ENOENT, "deleted file still visible");
	UCHECK(unlink(MN("gone/a")) == 0 && rmdir(MN("gone")) == 0, "rmdir emptied lower dir");
	UCHECK(mkdir(MN("gone"), 0755) == 0, "mkdir over whiteout");
	l = ls(MN("gone"), false);
	UCHECK(l && !strcmp(l, ""), "new dir over whited-out dir not empty: %s", l);
	if (!arg) {
		UCHECK(rename(MN("mv"), MN("mv2")) == 0, "rename dir with lower content");
		l = ls(MN("mv2"), false);
		UCHECK(l && !strcmp(l, "deep\nin"), "renamed dir lists %s", l);
		UCHECK(ucontent(MN("mv2/deep/in2"), "in2"), "content of renamed dir");
	}
	UCHECK(link(MN("hl"), MN("hl2")) == 0, "hard link");
	struct stat a, b;
	UCHECK(stat(MN("hl"), &a) == 0 && stat(MN("hl2"), &b) == 0, "stat links");
	UCHECK(a.st_ino == b.st_ino && a.st_nlink == 2, "hard link: hl ino %llu nlink %lu, hl2 ino %llu nlink %lu",
	       (unsigned long long)a.st_ino, (unsigned long)a.st_nlink, (unsigned long long)b.st_ino,
	       (unsigned long)b.st_nlink);
	UCHECK(symlink("keep", MN("sym")) == 0, "symlink");
	UCHECK(ucontent(MN("sym"), "keep"), "follow new symlink");
	UCHECK(mkfifo(MN("fifo"), 0600) == 0, "mkfifo");
	UCHECK(setxattr(MN("keep"), "user.k", "v", 1, 0) == 0, "setxattr user.k");
	UCHECK(getxattr(MN("keep"), "user.k", buf, sizeof buf) == 1, "getxattr user.k");
	UCHECK(getxattr(MN("attr"), "user.low", buf, sizeof buf) == 1, "getxattr lower user.low");
	UCHECK(setxattr(MN("keep"), "user.overlay.opaque", "y", 1, 0) < 0 && errno == EPERM,
	       "private xattr not refused");
	UCHECK(open(MN(".wh.x"), O_WRONLY | O_CREAT, 0644) < 0, ".wh.x created");
	UCHECK(open(MN("keep"), O_WRONLY | O_CREAT | O_EXCL, 0644) < 0 && errno == EEXIST, "O_EXCL");
	/* A file its owner may write but not read. */
	UCHECK(try_spew(MN("wo"), "write-only", O_WRONLY | O_CREAT | O_EXCL) == 0, "create wo");
	UCHECK(chmod(MN("wo"), 0200) == 0, "chmod wo 0200");
	int fd = open(MN("wo"), O_WRONLY);
	UCHECK(fd >= 0, "open a mode-0200 file write-only");
	UCHECK(pwrite(fd, "XY", 2, 2) == 2, "partial-page write to a mode-0200 file");
	UCHECK(close(fd) == 0, "close of a mode-0200 file");
	UCHECK(chmod(MN("wo"), 0644) == 0, "chmod wo 0644");
	return 0;
}

static int u_secret(void *arg)
{
	(void)arg;
	struct stat st;
	/* the error may come at opendir or at the first readdir */
	errno = 0;
	DIR *d = opendir(MN("secret"));
	if (d) {
		errno = 0;
		struct dirent *e = readdir(d);
		UCHECK(!e && errno == EACCES, "listing a mode-000 lower dir: %s",
		       e ? e->d_name : "no error");
		closedir(d);
	} else {
		UCHECK(errno == EACCES, "opendir of a mode-000 lower dir");
	}
	errno = 0;
	UCHECK(stat(MN("secret/hidden"), &st) < 0 && errno == EACCES, "stat inside mode-000 dir");
	errno = 0;
	UCHECK(open(MN("secret/new"), O_WRONLY | O_CREAT, 0644) < 0, "create inside mode-000 dir");
	UCHECK(ucontent(MN("keep"), "keep"), "mount unusable after EACCES");
	UCHECK(try_spew(MN("after"), "a", O_WRONLY | O_CREAT) == 0, "write after EACCES");
	return 0;
}

static int u_after_remount(void *arg)
{
	(void)arg;
	UCHECK(ucontent(MN("mod"), "mod+"), "copied-up content after remount");
	UCHECK(access(MN("del"), F_OK) < 0 && errno == ENOENT, "whiteout lost at remount");
	char *l = ls(MN("gone"), false);
	UCHECK(l && !strcmp(l, ""), "opaque dir lost at remount: %s", l);
	l = ls(MN("mv2"), false);
	UCHECK(l && !strcmp(l, "deep\nin"), "renamed dir after remount: %s", l);
	UCHECK(access(MN("mv"), F_OK) < 0, "old dir name back after remount");
	struct stat a, b;
	UCHECK(stat(MN("hl"), &a) == 0 && stat(MN("hl2"), &b) == 0 && a.st_ino == b.st_ino &&
		       a.st_nlink == 2,
	       "hard link after remount");
	return 0;
}

static int u_tree(void *arg)
{
	char *t = tree(H.mnt, true, false);
	UCHECK(t != NULL, "tree of the mount");
	UCHECK(try_spew((const char *)arg, t, O_WRONLY | O_CREAT | O_TRUNC) == 0, "save tree");
	return 0;
}

/* ---- tests ---- */

UTEST(unpriv, user_mount_copyup_whiteout_readdir)
{
	setup();
	mount_as_user(fmt);
	in_user(u_basic, NULL);
	/* what landed in the upper branch, owned by the user */
	struct stat st;
	assert_file(UP("mod"), "mod+");
	assert_file(UP("wo"), "wrXYe-only");
	assert_ok(stat(UP("mod"), &st));
	cr_assert_eq(st.st_uid, uid);
	cr_assert(is_whiteout(fmt, H.up, "del"), "upper: %s", ls(H.up, true));
	cr_assert(is_opaque(UP("gone")), "mkdir over whiteout not opaque");
	if (fmt == FMT_OVL) {
		char v[4];
		cr_assert_eq(getxattr(UP("gone"), "user.overlay.opaque", v, sizeof v), 1,
			     "unprivileged overlay format must use user.overlay.opaque");
	}
	cr_assert(!exists(UP("mv2/in")), "renamed dir content copied up");
	umount_as_user();
	mount_as_user(fmt);
	in_user(u_after_remount, NULL);
	umount_as_user();
}

UTEST(unpriv, unreadable_lower_dir_gives_eacces_and_mount_stays_up)
{
	setup();
	mount_as_user(fmt);
	in_user(u_secret, NULL);
	cr_assert(is_mounted(H.mnt));
	cr_assert(pid_alive(H.daemon));
	umount_as_user();
}

HTEST(unpriv, user_written_upper_mounts_with_kernel_overlayfs_userxattr)
{
	setup();
	mount_as_user(FMT_OVL);
	in_user(u_basic, "no dir rename");
	char tpath[PATH_MAX];
	snprintf(tpath, sizeof tpath, "%s/usertree", H.root);
	in_user(u_tree, tpath);
	char *ours = slurp(tpath);
	cr_assert(ours);
	umount_as_user();
	/* the unreadable dir would make the kernel view differ only by
	 * permission; open it up for the comparison */
	cr_assert(chmod(LO(0, "secret"), 0755) == 0);
	char km[PATH_MAX], kw[PATH_MAX], opts[8192];
	snprintf(km, sizeof km, "%s/kmnt", H.root);
	snprintf(kw, sizeof kw, "%s/kwork", H.root);
	mkdir_p(km, 0755);
	mkdir_p(kw, 0755);
	snprintf(opts, sizeof opts, "lowerdir=%s:%s,upperdir=%s,workdir=%s,userxattr", H.lo[0],
		 H.lo[1], H.up, kw);
	int m = mount("overlay", km, "overlay", 0, opts);
	cr_assert_eq(m, 0, "kernel overlay -o %s: %s", opts, strerror(errno));
	char *kern = tree(km, true, false);
	umount2(km, 0);
	/* "secret" was mode 000 in the user's view */
	char *p = strstr(ours, "secret d 0000");
	if (p)
		memcpy(p, "secret d 0755", 13);
	/* the user could not list secret/, root can: drop its children */
	struct strv keep = {0};
	for (char *line = strtok(kern, "\n"); line; line = strtok(NULL, "\n"))
		if (strncmp(line, "secret/", 7))
			strv_push(&keep, strdup(line));
	char *kern2 = strv_join_sorted(&keep);
	struct strv keep2 = {0};
	for (char *line = strtok(ours, "\n"); line; line = strtok(NULL, "\n"))
		if (strncmp(line, "secret", 6) || !strncmp(line, "secret d", 8))
			strv_push(&keep2, strdup(line));
	char *ours2 = strv_join_sorted(&keep2);
	assert_str(kern2, ours2);
}

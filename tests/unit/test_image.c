/* The image store: import (tar, gzip, directory) with whiteout conversion
 * and refusal of escaping entries, content addressing, export of merged
 * layers, commit, removal with shared layers, the busybox image.
 *
 * Tars are built at test time with libarchive.  Most tests need root
 * (whiteouts are char devices 0:0, opaque markers trusted.* xattrs) and
 * are skipped without it. */
#include <archive.h>
#include <archive_entry.h>
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "image.h"

static char base[64];
static char root[128];
static char work[128];
static char err[1024];

static void setup(void)
{
	snprintf(base, sizeof(base), "/tmp/strata-image-XXXXXX");
	cr_assert_not_null(mkdtemp(base));
	snprintf(root, sizeof(root), "%s/root", base);
	snprintf(work, sizeof(work), "%s/work", base);
	cr_assert_eq(mkdir(work, 0755), 0);
	err[0] = '\0';
}

static void teardown(void)
{
	char cmd[160];

	/* A failed overlay comparison may leave its mount behind. */
	snprintf(cmd, sizeof(cmd), "%s/mnt", work);
	umount2(cmd, MNT_DETACH);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", base);
	cr_assert_eq(system(cmd), 0);
}

static void need_root(void)
{
	if (geteuid() != 0)
		cr_skip_test("needs root (char devices, trusted.* xattrs)");
}

/* ---- building tars ---- */

struct tent {
	const char *path;
	mode_t mode;	      /* type | permissions */
	const char *data;     /* regular file content */
	const char *symlink;  /* symlink target */
	const char *hardlink; /* hard link target */
};

static void make_tar(const char *file, const struct tent *t, size_t n, bool gzip)
{
	struct archive *a = archive_write_new();

	cr_assert_not_null(a);
	cr_assert_eq(archive_write_set_format_pax_restricted(a), ARCHIVE_OK);
	if (gzip)
		cr_assert_eq(archive_write_add_filter_gzip(a), ARCHIVE_OK);
	cr_assert_eq(archive_write_open_filename(a, file), ARCHIVE_OK);
	for (size_t i = 0; i < n; i++) {
		struct archive_entry *e = archive_entry_new();
		size_t len = t[i].data ? strlen(t[i].data) : 0;

		archive_entry_set_pathname(e, t[i].path);
		archive_entry_set_mode(e, t[i].mode);
		archive_entry_set_uid(e, 0);
		archive_entry_set_gid(e, 0);
		archive_entry_set_mtime(e, 1700000000, 0);
		archive_entry_set_size(e, (int64_t)len);
		if (t[i].symlink)
			archive_entry_set_symlink(e, t[i].symlink);
		if (t[i].hardlink) {
			archive_entry_set_hardlink(e, t[i].hardlink);
			archive_entry_set_size(e, 0);
			len = 0;
		}
		cr_assert_eq(archive_write_header(a, e), ARCHIVE_OK, "%s: %s", t[i].path,
			     archive_error_string(a));
		if (len)
			cr_assert_eq(archive_write_data(a, t[i].data, len), (ssize_t)len);
		archive_entry_free(e);
	}
	cr_assert_eq(archive_write_close(a), ARCHIVE_OK);
	archive_write_free(a);
}

#define D(p, m) { .path = (p), .mode = S_IFDIR | (m) }
#define F(p, m, d) { .path = (p), .mode = S_IFREG | (m), .data = (d) }
#define L(p, t) { .path = (p), .mode = S_IFLNK | 0777, .symlink = (t) }
#define H(p, m, t) { .path = (p), .mode = S_IFREG | (m), .hardlink = (t) }
#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* ---- reading tars ---- */

struct ent {
	char path[256];
	mode_t mode;
	unsigned long uid, gid;
	char data[256]; /* content or symlink target */
	char hardlink[256];
	time_t mtime;
};

static void norm(char *out, size_t len, const char *in)
{
	while (in[0] == '.' && in[1] == '/')
		in += 2;
	snprintf(out, len, "%s", *in ? in : ".");
	len = strlen(out);
	if (len > 1 && out[len - 1] == '/')
		out[len - 1] = '\0';
}

static size_t read_tar(const char *file, struct ent *out, size_t max)
{
	struct archive *a = archive_read_new();
	struct archive_entry *e;
	size_t n = 0;

	archive_read_support_filter_all(a);
	archive_read_support_format_tar(a);
	cr_assert_eq(archive_read_open_filename(a, file, 10240), ARCHIVE_OK, "%s: %s", file,
		     archive_error_string(a));
	while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
		struct ent *x = &out[n++];

		cr_assert_leq(n, max);
		memset(x, 0, sizeof(*x));
		norm(x->path, sizeof(x->path), archive_entry_pathname(e));
		x->mode = archive_entry_mode(e);
		x->uid = (unsigned long)archive_entry_uid(e);
		x->gid = (unsigned long)archive_entry_gid(e);
		x->mtime = archive_entry_mtime(e);
		if (archive_entry_symlink(e))
			snprintf(x->data, sizeof(x->data), "%s", archive_entry_symlink(e));
		if (archive_entry_hardlink(e))
			norm(x->hardlink, sizeof(x->hardlink), archive_entry_hardlink(e));
		else if (S_ISREG(x->mode))
			archive_read_data(a, x->data, sizeof(x->data) - 1);
	}
	archive_read_free(a);
	return n;
}

static const struct ent *find(const struct ent *v, size_t n, const char *path)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(v[i].path, path))
			return &v[i];
	return NULL;
}

/* ---- looking at the store ---- */

static int count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	if (!d)
		return errno == ENOENT ? 0 : -1;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

static int count_in(const char *sub)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%s", root, sub);
	return count_entries(path);
}

/* Nothing in the store but the (empty) layout. */
static void assert_store_empty(void)
{
	cr_assert_eq(count_in("images"), 0, "images left behind");
	cr_assert_eq(count_in("layers"), 0, "layers left behind");
	cr_assert_eq(count_in("tmp"), 0, "temp dirs left behind");
}

static void load(const char *name, struct image *img)
{
	cr_assert_eq(image_load(root, name, img, err, sizeof(err)), 0, "%s", err);
}

static void layer_path(char *buf, size_t len, const char *name, size_t i, const char *rel)
{
	struct image img;

	load(name, &img);
	cr_assert_lt(i, img.nlayers);
	snprintf(buf, len, "%s/%s", img.layers[i], rel);
	image_free(&img);
}

static void read_file(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY);
	ssize_t n;

	cr_assert_geq(fd, 0, "%s: %s", path, strerror(errno));
	n = read(fd, buf, len - 1);
	cr_assert_geq(n, 0);
	buf[n] = '\0';
	close(fd);
}

static void write_file(const char *path, const char *data)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	cr_assert_geq(fd, 0, "%s: %s", path, strerror(errno));
	cr_assert_eq(write(fd, data, strlen(data)), (ssize_t)strlen(data));
	close(fd);
}

static bool is_whiteout(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0);
}

static bool is_opaque(const char *path)
{
	char v[8];
	ssize_t n = lgetxattr(path, "trusted.overlay.opaque", v, sizeof(v));

	return n == 1 && v[0] == 'y';
}

static const struct tent base_tar[] = {
	D("./", 0755),
	D("etc/", 0755),
	F("etc/passwd", 0644, "root:x:0:0::/root:/bin/sh\n"),
	F("etc/gone", 0644, "to be deleted\n"),
	D("bin/", 0755),
	F("bin/tool", 04755, "#!/bin/sh\n"),
	L("bin/link", "tool"),
	L("bin/abs", "/etc/passwd"),
	H("bin/hard", 04755, "bin/tool"),
	D("opq/", 0700),
	F("opq/old", 0644, "old\n"),
	D("keep/", 0755),
	F("keep/a", 0600, "a\n"),
	D("dir2/", 0755),
	F("dir2/x", 0644, "x\n"),
};

static void import_base(const char *name)
{
	char tar[256];

	snprintf(tar, sizeof(tar), "%s/base.tar", work);
	make_tar(tar, base_tar, NELEM(base_tar), false);
	cr_assert_eq(image_import(root, tar, name, err, sizeof(err)), 0, "%s", err);
}

TestSuite(image, .init = setup, .fini = teardown);

/* ---- names ---- */

Test(image, names)
{
	char long_name[200];

	cr_assert(name_is_valid("busybox"));
	cr_assert(name_is_valid("a"));
	cr_assert(name_is_valid("My_image-1.2"));
	cr_assert_not(name_is_valid(""));
	cr_assert_not(name_is_valid(NULL));
	cr_assert_not(name_is_valid(".hidden"));
	cr_assert_not(name_is_valid("-x"));
	cr_assert_not(name_is_valid("a/b"));
	cr_assert_not(name_is_valid("a b"));
	cr_assert_not(name_is_valid("a:b"));
	memset(long_name, 'a', sizeof(long_name));
	long_name[128] = '\0';
	cr_assert(name_is_valid(long_name));
	long_name[128] = 'a';
	long_name[129] = '\0';
	cr_assert_not(name_is_valid(long_name));
}

Test(image, unknown_image_and_empty_list)
{
	struct image img;
	char **names;

	cr_assert_eq(image_load(root, "nope", &img, err, sizeof(err)), -1);
	cr_assert(strstr(err, "no such image 'nope'"), "%s", err);
	cr_assert_eq(image_list(root, &names, err, sizeof(err)), 0, "%s", err);
	cr_assert_null(names[0]);
	image_names_free(names);
	cr_assert_not(image_exists(root, "nope"));
	cr_assert_eq(image_remove(root, "nope", err, sizeof(err)), -1);
	cr_assert(strstr(err, "no such image"), "%s", err);
}

/* ---- import ---- */

Test(image, import_tar_converts_whiteouts)
{
	static const struct tent t[] = {
		D("etc/", 0755),
		F("etc/hosts", 0644, "127.0.0.1 localhost\n"),
		F("etc/.wh.removed", 0644, ""),
		D("etc/.wh..wh.plnk/", 0700),
		F("etc/.wh..wh.plnk/123", 0644, "aufs meta"),
		D("bin/", 0755),
		F("bin/tool", 0755, "#!/bin/sh\n"),
		L("bin/link", "tool"),
		H("bin/hard", 0755, "bin/tool"),
		D("opq/", 0750),
		F("opq/.wh..wh..opq", 0644, ""),
		F("opq/.wh.pointless", 0644, ""),
		F("opq/new", 0644, "new\n"),
		F("implicit/.wh..wh..opq", 0644, ""),
		F(".wh.toplevel", 0644, ""),
	};
	char tar[256], p[512], q[512], buf[256];
	struct stat st, st2;
	struct image img;

	need_root();
	snprintf(tar, sizeof(tar), "%s/t.tar", work);
	make_tar(tar, t, NELEM(t), false);
	cr_assert_eq(image_import(root, tar, "t", err, sizeof(err)), 0, "%s", err);
	load("t", &img);
	cr_assert_eq(img.nlayers, 1);
	cr_assert_null(img.cmd);
	cr_assert_not_null(img.created);
	cr_assert_eq(img.size, strlen("127.0.0.1 localhost\n") + strlen("#!/bin/sh\n") + 4);
	image_free(&img);

	layer_path(p, sizeof(p), "t", 0, "etc/hosts");
	read_file(p, buf, sizeof(buf));
	cr_assert_str_eq(buf, "127.0.0.1 localhost\n");
	layer_path(p, sizeof(p), "t", 0, "etc/removed");
	cr_assert(is_whiteout(p), "etc/.wh.removed not converted");
	layer_path(p, sizeof(p), "t", 0, "etc/.wh.removed");
	cr_assert_neq(lstat(p, &st), 0);
	layer_path(p, sizeof(p), "t", 0, "etc/.wh..wh.plnk");
	cr_assert_neq(lstat(p, &st), 0, "aufs meta directory imported");
	layer_path(p, sizeof(p), "t", 0, "toplevel");
	cr_assert(is_whiteout(p));

	layer_path(p, sizeof(p), "t", 0, "bin/link");
	cr_assert_eq(readlink(p, buf, sizeof(buf)), 4);
	cr_assert_eq(memcmp(buf, "tool", 4), 0);
	layer_path(p, sizeof(p), "t", 0, "bin/tool");
	layer_path(q, sizeof(q), "t", 0, "bin/hard");
	cr_assert_eq(stat(p, &st), 0);
	cr_assert_eq(stat(q, &st2), 0);
	cr_assert_eq(st.st_ino, st2.st_ino, "hard link not kept");
	cr_assert_eq(st.st_mode & 07777, 0755);

	layer_path(p, sizeof(p), "t", 0, "opq");
	cr_assert(is_opaque(p), "opq not opaque");
	cr_assert_eq(stat(p, &st), 0);
	cr_assert_eq(st.st_mode & 07777, 0750);
	layer_path(p, sizeof(p), "t", 0, "opq/.wh..wh..opq");
	cr_assert_neq(lstat(p, &st), 0);
	layer_path(p, sizeof(p), "t", 0, "opq/pointless");
	cr_assert_neq(lstat(p, &st), 0, "whiteout left inside an opaque directory");
	layer_path(p, sizeof(p), "t", 0, "opq/new");
	cr_assert_eq(lstat(p, &st), 0);
	layer_path(p, sizeof(p), "t", 0, "implicit");
	cr_assert(is_opaque(p), "directory named only by its opaque marker");
	cr_assert_eq(count_in("tmp"), 0);
}

static void assert_refused(const struct tent *t, size_t n, const char *needle)
{
	char tar[256];

	snprintf(tar, sizeof(tar), "%s/evil.tar", work);
	make_tar(tar, t, n, false);
	cr_assert_eq(image_import(root, tar, "evil", err, sizeof(err)), -1, "imported");
	cr_assert(strstr(err, needle), "message '%s' lacks '%s'", err, needle);
	cr_assert_null(strchr(err, '\n'));
	assert_store_empty();
}

Test(image, refuses_dotdot)
{
	static const struct tent t[] = {
		F("ok", 0644, "fine"),
		F("../evil", 0644, "evil"),
	};
	char p[256];
	struct stat st;

	assert_refused(t, NELEM(t), "entry '../evil'");
	snprintf(p, sizeof(p), "%s/root/evil", base);
	cr_assert_neq(lstat(p, &st), 0);
	assert_refused((const struct tent[]){ F("a/../../evil", 0644, "x") }, 1,
		       "entry 'a/../../evil'");
}

Test(image, refuses_absolute)
{
	static const struct tent t[] = { F("/abs", 0644, "evil") };

	assert_refused(t, NELEM(t), "entry '/abs'");
	assert_refused(t, NELEM(t), "absolute");
}

Test(image, refuses_hardlink_out)
{
	static const struct tent t[] = {
		D("dir/", 0755),
		H("dir/x", 0644, "../x"),
	};
	static const struct tent t2[] = { H("y", 0644, "/etc/passwd") };

	assert_refused(t, NELEM(t), "hard link");
	assert_refused(t, NELEM(t), "'../x'");
	assert_refused(t2, NELEM(t2), "entry 'y'");
}

/* A symlink's target is data, but nothing is ever written through one. */
Test(image, never_writes_through_symlinks)
{
	char outside[128], victim[300], tar[256];
	struct stat st;

	snprintf(outside, sizeof(outside), "%s/outside", base);
	cr_assert_eq(mkdir(outside, 0755), 0);
	snprintf(victim, sizeof(victim), "%s/victim", outside);
	write_file(victim, "precious");
	{
		const struct tent t[] = {
			L("link", outside),
			F("link/evil", 0644, "evil"),
		};

		assert_refused(t, NELEM(t), "link/evil");
	}
	{
		const struct tent t[] = {
			L("link", outside),
			H("stolen", 0644, "link/victim"),
		};

		assert_refused(t, NELEM(t), "stolen");
	}
	snprintf(tar, sizeof(tar), "%s/evil", outside);
	cr_assert_neq(lstat(tar, &st), 0, "wrote through a symlink");
	cr_assert_eq(stat(victim, &st), 0);
	cr_assert_eq(st.st_nlink, 1, "hard-linked a file outside the root");
}

Test(image, refuses_garbage_and_existing_names)
{
	char file[256], tar[256];

	snprintf(file, sizeof(file), "%s/not-a-tar", work);
	write_file(file, "this is not an archive at all, just text\n");
	cr_assert_eq(image_import(root, file, "x", err, sizeof(err)), -1);
	cr_assert(strstr(err, "not-a-tar"), "%s", err);
	assert_store_empty();
	cr_assert_eq(image_import(root, "/nonexistent.tar", "x", err, sizeof(err)), -1);
	cr_assert(strstr(err, "ENOENT"), "%s", err);
	cr_assert_eq(image_import(root, file, "bad/name", err, sizeof(err)), -1);
	cr_assert(strstr(err, "invalid image name"), "%s", err);

	snprintf(tar, sizeof(tar), "%s/ok.tar", work);
	make_tar(tar, (const struct tent[]){ F("f", 0644, "1") }, 1, false);
	cr_assert_eq(image_import(root, tar, "x", err, sizeof(err)), 0, "%s", err);
	make_tar(tar, (const struct tent[]){ F("f", 0644, "2") }, 1, false);
	cr_assert_eq(image_import(root, tar, "x", err, sizeof(err)), -1);
	cr_assert(strstr(err, "already exists"), "%s", err);
	cr_assert_eq(count_in("layers"), 1, "the refused import's layer stayed");
	cr_assert_eq(count_in("tmp"), 0);
}

/* Directories the tar does not list are 0755 whatever the caller's umask:
 * other users in the container must be able to traverse them. */
Test(image, implicit_dirs_ignore_umask)
{
	char tar[256], p[512];
	struct stat st;

	umask(077);
	snprintf(tar, sizeof(tar), "%s/t.tar", work);
	make_tar(tar, (const struct tent[]){ F("a/b/f", 0644, "deep\n") }, 1, false);
	cr_assert_eq(image_import(root, tar, "deep", err, sizeof(err)), 0, "%s", err);
	for (const char *const *d = (const char *const[]){ "", "a", "a/b", NULL }; *d; d++) {
		layer_path(p, sizeof(p), "deep", 0, *d);
		cr_assert_eq(stat(p, &st), 0);
		cr_assert_eq(st.st_mode & 07777, 0755, "'%s' is %o", *d, st.st_mode & 07777);
	}
	layer_path(p, sizeof(p), "deep", 0, "a/b/f");
	cr_assert_eq(stat(p, &st), 0);
	cr_assert_eq(st.st_mode & 07777, 0644);
}

/* Feeds file into a FIFO from a child; returns the FIFO's path. */
static pid_t feed_fifo(const char *file, char *fifo, size_t len)
{
	pid_t pid;

	snprintf(fifo, len, "%s/pipe", work);
	unlink(fifo);
	cr_assert_eq(mkfifo(fifo, 0600), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		char buf[4096];
		int in = open(file, O_RDONLY), out = open(fifo, O_WRONLY);
		ssize_t n;

		while (in >= 0 && out >= 0 && (n = read(in, buf, sizeof(buf))) > 0)
			if (write(out, buf, (size_t)n) != n)
				break;
		_exit(0);
	}
	return pid;
}

/* A pipe is read once: checked while extracting, refused all the same. */
Test(image, import_from_pipe)
{
	char tar[256], fifo[256], p[512], buf[64];
	pid_t pid;

	snprintf(tar, sizeof(tar), "%s/t.tar.gz", work);
	make_tar(tar, (const struct tent[]){ F("f", 0644, "piped\n") }, 1, true);
	pid = feed_fifo(tar, fifo, sizeof(fifo));
	cr_assert_eq(image_import(root, fifo, "piped", err, sizeof(err)), 0, "%s", err);
	waitpid(pid, NULL, 0);
	layer_path(p, sizeof(p), "piped", 0, "f");
	read_file(p, buf, sizeof(buf));
	cr_assert_str_eq(buf, "piped\n");
	cr_assert_eq(image_remove(root, "piped", err, sizeof(err)), 0, "%s", err);

	make_tar(tar, (const struct tent[]){ F("ok", 0644, "1"), F("../evil", 0644, "2") }, 2, false);
	pid = feed_fifo(tar, fifo, sizeof(fifo));
	cr_assert_eq(image_import(root, fifo, "evil", err, sizeof(err)), -1);
	waitpid(pid, NULL, 0);
	cr_assert(strstr(err, "entry '../evil'"), "%s", err);
	assert_store_empty();
}

Test(image, import_gzip)
{
	char tar[256], p[512], buf[64];

	snprintf(tar, sizeof(tar), "%s/t.tar.gz", work);
	make_tar(tar, (const struct tent[]){ D("d/", 0755), F("d/f", 0640, "zipped\n") },
		 2, true);
	cr_assert_eq(image_import(root, tar, "gz", err, sizeof(err)), 0, "%s", err);
	layer_path(p, sizeof(p), "gz", 0, "d/f");
	read_file(p, buf, sizeof(buf));
	cr_assert_str_eq(buf, "zipped\n");
}

Test(image, import_directory)
{
	char src[256], p[512], q[512], buf[64];
	struct stat st, st2;

	need_root();
	snprintf(src, sizeof(src), "%s/tree", work);
	cr_assert_eq(mkdir(src, 0755), 0);
	snprintf(p, sizeof(p), "%s/sub", src);
	cr_assert_eq(mkdir(p, 0710), 0);
	snprintf(p, sizeof(p), "%s/sub/file", src);
	write_file(p, "content\n");
	cr_assert_eq(lchown(p, 1234, 5678), 0); /* before chmod: it clears setgid */
	cr_assert_eq(chmod(p, 02751), 0);
	cr_assert_eq(setxattr(p, "user.test", "v", 1, 0), 0);
	snprintf(q, sizeof(q), "%s/sub/hard", src);
	cr_assert_eq(link(p, q), 0);
	snprintf(p, sizeof(p), "%s/ln", src);
	cr_assert_eq(symlink("/sub/file", p), 0);
	snprintf(p, sizeof(p), "%s/fifo", src);
	cr_assert_eq(mkfifo(p, 0600), 0);
	snprintf(p, sizeof(p), "%s/null", src);
	cr_assert_eq(mknod(p, S_IFCHR | 0666, makedev(1, 3)), 0);

	cr_assert_eq(image_import(root, src, "tree", err, sizeof(err)), 0, "%s", err);
	layer_path(p, sizeof(p), "tree", 0, "sub/file");
	read_file(p, buf, sizeof(buf));
	cr_assert_str_eq(buf, "content\n");
	cr_assert_eq(lstat(p, &st), 0);
	cr_assert_eq(st.st_mode & 07777, 02751);
	cr_assert_eq(st.st_uid, 1234);
	cr_assert_eq(st.st_gid, 5678);
	cr_assert_eq(lgetxattr(p, "user.test", buf, sizeof(buf)), 1);
	layer_path(q, sizeof(q), "tree", 0, "sub/hard");
	cr_assert_eq(lstat(q, &st2), 0);
	cr_assert_eq(st.st_ino, st2.st_ino);
	layer_path(p, sizeof(p), "tree", 0, "sub");
	cr_assert_eq(lstat(p, &st), 0);
	cr_assert_eq(st.st_mode & 07777, 0710);
	layer_path(p, sizeof(p), "tree", 0, "ln");
	cr_assert_eq(readlink(p, buf, sizeof(buf)), 9);
	layer_path(p, sizeof(p), "tree", 0, "fifo");
	cr_assert_eq(lstat(p, &st), 0);
	cr_assert(S_ISFIFO(st.st_mode));
	layer_path(p, sizeof(p), "tree", 0, "null");
	cr_assert_eq(lstat(p, &st), 0);
	cr_assert(S_ISCHR(st.st_mode));
	cr_assert_eq(st.st_rdev, makedev(1, 3));
	/* The source is untouched and nothing was left around. */
	snprintf(p, sizeof(p), "%s/sub/file", src);
	cr_assert_eq(lstat(p, &st), 0);
	cr_assert_eq(count_in("tmp"), 0);
}

/* ---- content addressing ---- */

Test(image, same_content_same_layer)
{
	char tar[256], a[512], b[512];
	struct stat sa, sb;

	need_root();
	import_base("a");
	snprintf(tar, sizeof(tar), "%s/base.tar", work);
	cr_assert_eq(image_import(root, tar, "b", err, sizeof(err)), 0, "%s", err);
	layer_path(a, sizeof(a), "a", 0, "");
	layer_path(b, sizeof(b), "b", 0, "");
	cr_assert_str_eq(a, b);
	cr_assert_eq(count_in("layers"), 1);
	cr_assert_eq(stat(a, &sa), 0);
	cr_assert_eq(stat(b, &sb), 0);
	cr_assert_eq(sa.st_ino, sb.st_ino);

	/* An export imported again is the same layer: the id depends on the
	 * content only, not on how or when it was written. */
	snprintf(tar, sizeof(tar), "%s/again.tar", work);
	cr_assert_eq(image_export(root, "a", tar, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(image_import(root, tar, "c", err, sizeof(err)), 0, "%s", err);
	layer_path(b, sizeof(b), "c", 0, "");
	cr_assert_str_eq(a, b);
	cr_assert_eq(count_in("layers"), 1);
}

Test(image, different_content_different_layer)
{
	char tar[256];

	snprintf(tar, sizeof(tar), "%s/1.tar", work);
	make_tar(tar, (const struct tent[]){ F("f", 0644, "1") }, 1, false);
	cr_assert_eq(image_import(root, tar, "one", err, sizeof(err)), 0, "%s", err);
	make_tar(tar, (const struct tent[]){ F("f", 0600, "1") }, 1, false);
	cr_assert_eq(image_import(root, tar, "two", err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(count_in("layers"), 2, "a mode change must change the id");
}

/* ---- commit and export ---- */

/* An upper dir as a container leaves it: a whiteout, an opaque directory,
 * a changed file, a new file, a renamed directory (redirect). */
static void make_upper(char *upper, size_t len)
{
	char p[512];

	snprintf(upper, len, "%s/upper", work);
	cr_assert_eq(mkdir(upper, 0755), 0);
	snprintf(p, sizeof(p), "%s/etc", upper);
	cr_assert_eq(mkdir(p, 0755), 0);
	snprintf(p, sizeof(p), "%s/etc/gone", upper);
	cr_assert_eq(mknod(p, S_IFCHR | 0, makedev(0, 0)), 0);
	snprintf(p, sizeof(p), "%s/etc/passwd", upper);
	write_file(p, "changed\n");
	snprintf(p, sizeof(p), "%s/new", upper);
	write_file(p, "brand new\n");
	snprintf(p, sizeof(p), "%s/opq", upper);
	cr_assert_eq(mkdir(p, 0755), 0);
	cr_assert_eq(setxattr(p, "trusted.overlay.opaque", "y", 1, 0), 0);
	snprintf(p, sizeof(p), "%s/opq/fresh", upper);
	write_file(p, "fresh\n");
	/* keep/ renamed to moved/: redirect to the lower content. */
	snprintf(p, sizeof(p), "%s/moved", upper);
	cr_assert_eq(mkdir(p, 0755), 0);
	cr_assert_eq(setxattr(p, "trusted.overlay.redirect", "/keep", 5, 0), 0);
	snprintf(p, sizeof(p), "%s/keep", upper);
	cr_assert_eq(mknod(p, S_IFCHR | 0, makedev(0, 0)), 0);
	/* A directory replaced by a file hides the lower directory's content. */
	snprintf(p, sizeof(p), "%s/dir2", upper);
	write_file(p, "now a file\n");
	/* strata-unionfs's aufs-syntax meta dir never enters an image. */
	snprintf(p, sizeof(p), "%s/.wh..wh.strata", upper);
	cr_assert_eq(mkdir(p, 0700), 0);
	snprintf(p, sizeof(p), "%s/.wh..wh.strata/xino", upper);
	write_file(p, "xino");
}

Test(image, commit_and_export)
{
	char upper[256], tar[256], p[512];
	struct ent v[64];
	const struct ent *x;
	struct image img;
	size_t n;

	need_root();
	import_base("base");
	make_upper(upper, sizeof(upper));
	cr_assert_eq(image_commit(root, upper, "base", "child", err, sizeof(err)), 0, "%s", err);
	load("child", &img);
	cr_assert_eq(img.nlayers, 2);
	image_free(&img);
	layer_path(p, sizeof(p), "child", 0, "etc/gone");
	cr_assert(is_whiteout(p));
	layer_path(p, sizeof(p), "child", 0, ".wh..wh.strata");
	cr_assert_neq(access(p, F_OK), 0, "meta dir committed");

	snprintf(tar, sizeof(tar), "%s/child.tar", work);
	cr_assert_eq(image_export(root, "child", tar, err, sizeof(err)), 0, "%s", err);
	n = read_tar(tar, v, NELEM(v));
	cr_assert_not_null(find(v, n, "."));
	cr_assert_null(find(v, n, "etc/gone"), "deleted file exported");
	cr_assert_null(find(v, n, "opq/old"), "opaque dir shows lower content");
	cr_assert_null(find(v, n, "keep"), "renamed dir still under its old name");
	cr_assert_null(find(v, n, ".wh..wh.strata"));
	x = find(v, n, "etc/passwd");
	cr_assert_not_null(x);
	cr_assert_str_eq(x->data, "changed\n");
	x = find(v, n, "new");
	cr_assert_not_null(x);
	cr_assert_str_eq(x->data, "brand new\n");
	x = find(v, n, "opq/fresh");
	cr_assert_not_null(x);
	cr_assert_null(find(v, n, "dir2/x"), "directory replaced by a file still has content");
	x = find(v, n, "dir2");
	cr_assert_not_null(x);
	cr_assert(S_ISREG(x->mode));
	x = find(v, n, "moved/a");
	cr_assert_not_null(x, "redirected directory lost its lower content");
	cr_assert_str_eq(x->data, "a\n");
	/* Sorted: bin/hard comes first and carries the data. */
	x = find(v, n, "bin/hard");
	cr_assert_not_null(x);
	cr_assert_str_eq(x->data, "#!/bin/sh\n");
	cr_assert_eq(x->mode, S_IFREG | 04755);
	x = find(v, n, "bin/tool");
	cr_assert_not_null(x);
	cr_assert_str_eq(x->hardlink, "bin/hard");
	x = find(v, n, "bin/abs");
	cr_assert_str_eq(x->data, "/etc/passwd");
	for (size_t i = 0; i < n; i++) {
		cr_assert_null(strstr(v[i].path, ".wh."), "%s exported", v[i].path);
		cr_assert_not(S_ISCHR(v[i].mode), "%s: whiteout exported", v[i].path);
	}
	/* The base is unchanged. */
	cr_assert_eq(image_export(root, "base", tar, err, sizeof(err)), 0, "%s", err);
	n = read_tar(tar, v, NELEM(v));
	cr_assert_not_null(find(v, n, "etc/gone"));
	cr_assert_not_null(find(v, n, "opq/old"));
}

/* The flattened export equals what kernel overlayfs shows for the same
 * layers. */
Test(image, export_equals_overlay_view)
{
	char upper[256], mnt[256], opts[2048], t1[256], t2[256];
	struct ent a[64], b[64];
	struct image img;
	size_t na, nb;

	need_root();
	import_base("base");
	make_upper(upper, sizeof(upper));
	cr_assert_eq(image_commit(root, upper, "base", "child", err, sizeof(err)), 0, "%s", err);
	load("child", &img);
	snprintf(mnt, sizeof(mnt), "%s/mnt", work);
	cr_assert_eq(mkdir(mnt, 0755), 0);
	snprintf(opts, sizeof(opts), "lowerdir=%s:%s,redirect_dir=follow", img.layers[0],
		 img.layers[1]);
	if (mount("overlay", mnt, "overlay", MS_RDONLY, opts) < 0) {
		image_free(&img);
		cr_skip_test("no kernel overlayfs here: %s", strerror(errno));
	}
	snprintf(t1, sizeof(t1), "%s/flat.tar", work);
	snprintf(t2, sizeof(t2), "%s/ovl.tar", work);
	cr_assert_eq(image_export(root, "child", t1, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(image_export_dir(mnt, t2, err, sizeof(err)), 0, "%s", err);
	umount(mnt);
	image_free(&img);
	na = read_tar(t1, a, NELEM(a));
	nb = read_tar(t2, b, NELEM(b));
	cr_assert_eq(na, nb, "%zu entries exported, overlay shows %zu", na, nb);
	for (size_t i = 0; i < na; i++) {
		cr_assert_str_eq(a[i].path, b[i].path);
		cr_assert_eq(a[i].mode, b[i].mode, "%s", a[i].path);
		cr_assert_eq(a[i].uid, b[i].uid, "%s", a[i].path);
		cr_assert_str_eq(a[i].data, b[i].data, "%s", a[i].path);
		cr_assert_str_eq(a[i].hardlink, b[i].hardlink, "%s", a[i].path);
		if (!S_ISDIR(a[i].mode))
			cr_assert_eq(a[i].mtime, b[i].mtime, "%s", a[i].path);
	}
}

Test(image, export_failure_leaves_nothing)
{
	char dest[256];

	snprintf(dest, sizeof(dest), "%s/out.tar", work);
	cr_assert_eq(image_export(root, "nope", dest, err, sizeof(err)), -1);
	cr_assert(strstr(err, "nope"), "%s", err);
	cr_assert_eq(access(dest, F_OK), -1);
	cr_assert_eq(count_entries(work), 0);
	cr_assert_eq(image_export_dir("/nonexistent", dest, err, sizeof(err)), -1);
	cr_assert(strstr(err, "/nonexistent"), "%s", err);
	cr_assert_eq(count_entries(work), 0);
}

Test(image, commit_refusals)
{
	char upper[256];

	need_root();
	snprintf(upper, sizeof(upper), "%s/upper", work);
	cr_assert_eq(mkdir(upper, 0755), 0);
	cr_assert_eq(image_commit(root, upper, "nobase", "x", err, sizeof(err)), -1);
	cr_assert(strstr(err, "no such image 'nobase'"), "%s", err);
	import_base("base");
	cr_assert_eq(image_commit(root, upper, "base", "base", err, sizeof(err)), -1);
	cr_assert(strstr(err, "already exists"), "%s", err);
	cr_assert_eq(count_in("layers"), 1);
	cr_assert_eq(count_in("tmp"), 0);
}

/* ---- removal ---- */

Test(image, remove_keeps_shared_layers)
{
	char upper[256], baselayer[512], childtop[512];
	char **names;

	need_root();
	import_base("base");
	import_base("base2"); /* same content: same layer */
	make_upper(upper, sizeof(upper));
	cr_assert_eq(image_commit(root, upper, "base", "child", err, sizeof(err)), 0, "%s", err);
	layer_path(baselayer, sizeof(baselayer), "base", 0, "");
	layer_path(childtop, sizeof(childtop), "child", 0, "");
	cr_assert_eq(count_in("layers"), 2);

	cr_assert_eq(image_list(root, &names, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(names[0], "base");
	cr_assert_str_eq(names[1], "base2");
	cr_assert_str_eq(names[2], "child");
	cr_assert_null(names[3]);
	image_names_free(names);

	cr_assert_eq(image_remove(root, "base", err, sizeof(err)), 0, "%s", err);
	cr_assert_not(image_exists(root, "base"));
	cr_assert_eq(access(baselayer, F_OK), 0, "shared layer deleted");
	cr_assert_eq(image_remove(root, "base2", err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(access(baselayer, F_OK), 0, "layer child uses deleted");
	cr_assert_eq(image_remove(root, "child", err, sizeof(err)), 0, "%s", err);
	cr_assert_neq(access(baselayer, F_OK), 0, "unused layer kept");
	cr_assert_neq(access(childtop, F_OK), 0, "unused layer kept");
	assert_store_empty();
}

/* ---- busybox ---- */

/* Whether this host can build the image at all (busybox-static). */
static bool have_static_busybox(void)
{
	char probe[128], e[512];

	snprintf(probe, sizeof(probe), "%s/probe", base);
	return image_ensure_busybox(probe, e, sizeof(e)) == 0;
}

Test(image, busybox)
{
	char p[512], buf[128];
	struct image img;
	struct stat st;

	need_root();
	if (!have_static_busybox())
		cr_skip_test("needs /bin/busybox from busybox-static");
	cr_assert_eq(image_ensure_busybox(root, err, sizeof(err)), 0, "%s", err);
	load("busybox", &img);
	cr_assert_eq(img.nlayers, 1);
	cr_assert_not_null(img.cmd);
	cr_assert_str_eq(img.cmd[0], "sh");
	cr_assert_null(img.cmd[1]);
	cr_assert_not_null(img.env);
	cr_assert(!strncmp(img.env[0], "PATH=", 5));
	cr_assert(strstr(img.env[0], "/bin"));
	image_free(&img);

	layer_path(p, sizeof(p), "busybox", 0, "bin/sh");
	cr_assert_eq(readlink(p, buf, sizeof(buf)), 7);
	cr_assert_eq(memcmp(buf, "busybox", 7), 0);
	cr_assert_eq(stat(p, &st), 0, "bin/sh does not resolve");
	cr_assert(st.st_mode & S_IXUSR);
	layer_path(p, sizeof(p), "busybox", 0, "usr/bin/top");
	memset(buf, 0, sizeof(buf));
	cr_assert_gt(readlink(p, buf, sizeof(buf)), 0);
	cr_assert_str_eq(buf, "../../bin/busybox");
	cr_assert_eq(stat(p, &st), 0);
	layer_path(p, sizeof(p), "busybox", 0, "tmp");
	cr_assert_eq(stat(p, &st), 0);
	cr_assert_eq(st.st_mode & 07777, 01777);
	layer_path(p, sizeof(p), "busybox", 0, "etc/passwd");
	read_file(p, buf, sizeof(buf));
	cr_assert(!strncmp(buf, "root:x:0:0:", 11), "%s", buf);
	cr_assert(strstr(buf, "nobody"));
	for (const char *const *f = (const char *const[]){ "etc/group", "etc/hostname", "etc/hosts",
							    "etc/resolv.conf", "dev", "proc", "sys",
							    "root", NULL };
	     *f; f++) {
		layer_path(p, sizeof(p), "busybox", 0, *f);
		cr_assert_eq(lstat(p, &st), 0, "%s missing", *f);
	}
	/* Idempotent. */
	cr_assert_eq(image_ensure_busybox(root, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(count_in("images"), 1);
	cr_assert_eq(count_in("layers"), 1);
	cr_assert_eq(count_in("tmp"), 0);
}

Test(image, busybox_concurrent_first_runs, .timeout = 60)
{
	enum { N = 3 };
	pid_t pids[N];

	need_root();
	if (!have_static_busybox())
		cr_skip_test("needs /bin/busybox from busybox-static");
	for (int i = 0; i < N; i++) {
		pids[i] = fork();
		cr_assert_geq(pids[i], 0);
		if (pids[i] == 0) {
			char e[512];

			_exit(image_ensure_busybox(root, e, sizeof(e)) == 0 ? 0 : 1);
		}
	}
	for (int i = 0; i < N; i++) {
		int status;

		cr_assert_eq(waitpid(pids[i], &status, 0), pids[i]);
		cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child %d failed", i);
	}
	cr_assert_eq(count_in("images"), 1);
	cr_assert_eq(count_in("layers"), 1);
	cr_assert_eq(count_in("tmp"), 0, "temp leftovers");
	cr_assert(image_exists(root, "busybox"));
}

Test(image, busybox_dynamic_refused)
{
	setenv("STRATA_BUSYBOX", "/bin/ls", 1);
	cr_assert_eq(image_ensure_busybox(root, err, sizeof(err)), -1);
	cr_assert(strstr(err, "busybox-static"), "%s", err);
	cr_assert(strstr(err, "/bin/ls"), "%s", err);
	assert_store_empty();
	setenv("STRATA_BUSYBOX", "/nonexistent/busybox", 1);
	cr_assert_eq(image_ensure_busybox(root, err, sizeof(err)), -1);
	cr_assert(strstr(err, "busybox-static"), "%s", err);
	assert_store_empty();
	unsetenv("STRATA_BUSYBOX");
}

/* A temp dir whose owner died is swept by the next writer. */
Test(image, stale_temp_dirs_swept)
{
	char stale[256], tar[256];

	snprintf(tar, sizeof(tar), "%s/ok.tar", work);
	make_tar(tar, (const struct tent[]){ F("f", 0644, "1") }, 1, false);
	cr_assert_eq(image_import(root, tar, "one", err, sizeof(err)), 0, "%s", err);
	snprintf(stale, sizeof(stale), "%s/tmp/crashed", root);
	cr_assert_eq(mkdir(stale, 0700), 0);
	snprintf(stale, sizeof(stale), "%s/tmp/crashed/layer", root);
	cr_assert_eq(mkdir(stale, 0500), 0);
	cr_assert_eq(image_import(root, tar, "two", err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(count_in("tmp"), 0);
}

/* Shared harness for the strata-unionfs integration tests; see harness.h. */
#include "harness.h"

#include <criterion/hooks.h>
#include <criterion/options.h>
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

struct h_state H;
int h_msgfd = 2;



/* ------------------------------------------------------------------ */
/* small utilities                                                    */

char *pf(const char *fmt, ...)
{
	static char ring[64][PATH_MAX];
	static unsigned next;
	char *b = ring[next++ % 64];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(b, PATH_MAX, fmt, ap);
	va_end(ap);
	return b;
}

uint64_t hash_bytes(const void *p, size_t n)
{
	const unsigned char *c = p;
	uint64_t h = 1469598103934665603ULL;
	for (size_t i = 0; i < n; i++) {
		h ^= c[i];
		h *= 1099511628211ULL;
	}
	return h;
}

void msleep(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

char *read_fd_all(int fd, size_t *len)
{
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap + 1);
	for (;;) {
		if (n == cap) {
			cap *= 2;
			buf = realloc(buf, cap + 1);
		}
		ssize_t r = read(fd, buf + n, cap - n);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			int e = errno;
			free(buf);
			errno = e;
			return NULL;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	buf[n] = 0;
	if (len)
		*len = n;
	return buf;
}

char *slurp(const char *path)
{
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return NULL;
	char *s = read_fd_all(fd, NULL);
	int e = errno;
	close(fd);
	errno = e;
	return s;
}

int try_spew(const char *path, const char *content, int flags)
{
	int fd = open(path, flags, 0644);
	if (fd < 0)
		return -1;
	size_t len = strlen(content), off = 0;
	while (off < len) {
		ssize_t w = write(fd, content + off, len - off);
		if (w < 0) {
			int e = errno;
			close(fd);
			errno = e;
			return -1;
		}
		off += (size_t)w;
	}
	if (close(fd) < 0)
		return -1;
	return 0;
}

void spew(const char *path, const char *content)
{
	cr_assert(try_spew(path, content, O_WRONLY | O_CREAT | O_TRUNC) == 0,
		  "write %s: %s", path, strerror(errno));
}

char *rdlink(const char *path)
{
	char *b = malloc(PATH_MAX + 1);
	ssize_t n = readlink(path, b, PATH_MAX);
	if (n < 0) {
		int e = errno;
		free(b);
		errno = e;
		return NULL;
	}
	b[n] = 0;
	return b;
}

bool exists(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0;
}

/* ------------------------------------------------------------------ */
/* building branch content                                            */

void mkdir_p(const char *path, mode_t mode)
{
	char b[PATH_MAX];
	snprintf(b, sizeof b, "%s", path);
	for (char *p = b + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(b, 0755) < 0 && errno != EEXIST)
			cr_assert_fail("mkdir %s: %s", b, strerror(errno));
		*p = '/';
	}
	if (mkdir(b, mode) < 0 && errno != EEXIST)
		cr_assert_fail("mkdir %s: %s", b, strerror(errno));
}

void mk_parents(const char *path)
{
	char b[PATH_MAX];
	snprintf(b, sizeof b, "%s", path);
	char *s = strrchr(b, '/');
	if (s && s != b) {
		*s = 0;
		mkdir_p(b, 0755);
	}
}

void mk_dir(const char *path, mode_t mode)
{
	mkdir_p(path, mode);
	cr_assert(chmod(path, mode) == 0, "chmod %s: %s", path, strerror(errno));
}

void mk_filen(const char *path, const void *buf, size_t len, mode_t mode)
{
	mk_parents(path);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	cr_assert(fd >= 0, "create %s: %s", path, strerror(errno));
	cr_assert(write(fd, buf, len) == (ssize_t)len, "write %s", path);
	cr_assert(fchmod(fd, mode) == 0);
	close(fd);
}

char *mk_copy(const char *from, const char *path, mode_t mode, size_t *len)
{
	int in = open(from, O_RDONLY | O_CLOEXEC);
	cr_assert(in >= 0, "%s: %s", from, strerror(errno));
	char *data = read_fd_all(in, len);
	close(in);
	cr_assert(data, "reading %s: %s", from, strerror(errno));
	mk_filen(path, data, *len, mode);
	return data;
}

void mk_file(const char *path, const char *content, mode_t mode)
{
	mk_filen(path, content, strlen(content), mode);
}

void mk_symlink(const char *target, const char *path)
{
	mk_parents(path);
	cr_assert(symlink(target, path) == 0, "symlink %s: %s", path, strerror(errno));
}

void mk_sparse(const char *path, off_t size, off_t data_at, const char *data)
{
	mk_parents(path);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	cr_assert(fd >= 0, "create %s: %s", path, strerror(errno));
	cr_assert(ftruncate(fd, size) == 0);
	if (data)
		cr_assert(pwrite(fd, data, strlen(data), data_at) == (ssize_t)strlen(data));
	close(fd);
}

void mk_wh(enum ufmt fmt, const char *dir, const char *name)
{
	mkdir_p(dir, 0755);
	if (fmt == FMT_AUFS) {
		mk_file(pf("%s/.wh.%s", dir, name), "", 0444);
	} else {
		const char *p = pf("%s/%s", dir, name);
		cr_assert(mknod(p, S_IFCHR | 0, makedev(0, 0)) == 0, "mknod %s: %s", p,
			  strerror(errno));
	}
}

void mk_opq(enum ufmt fmt, const char *dir)
{
	mkdir_p(dir, 0755);
	if (fmt == FMT_AUFS)
		mk_file(pf("%s/.wh..wh..opq", dir), "", 0444);
	else
		cr_assert(setxattr(dir, "trusted.overlay.opaque", "y", 1, 0) == 0,
			  "setxattr opaque %s: %s", dir, strerror(errno));
}

void set_times(const char *path, time_t s, long ns)
{
	struct timespec ts[2] = {{s - 1000, ns / 2}, {s, ns}};
	cr_assert(utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW) == 0, "utimensat %s: %s",
		  path, strerror(errno));
}

/* ------------------------------------------------------------------ */
/* inspecting backing trees                                           */

bool is_whiteout(enum ufmt fmt, const char *dir, const char *name)
{
	struct stat st;
	if (fmt == FMT_AUFS)
		return lstat(pf("%s/.wh.%s", dir, name), &st) == 0 && S_ISREG(st.st_mode);
	return lstat(pf("%s/%s", dir, name), &st) == 0 && S_ISCHR(st.st_mode) &&
	       st.st_rdev == makedev(0, 0);
}

bool is_any_whiteout(const char *dir, const char *name)
{
	return is_whiteout(FMT_AUFS, dir, name) || is_whiteout(FMT_OVL, dir, name);
}

static bool xattr_is_y(const char *path, const char *name)
{
	char v[8];
	ssize_t n = lgetxattr(path, name, v, sizeof v);
	return n == 1 && v[0] == 'y';
}

bool is_opaque(const char *dir)
{
	return exists(pf("%s/.wh..wh..opq", dir)) ||
	       xattr_is_y(dir, "trusted.overlay.opaque") || xattr_is_y(dir, "user.overlay.opaque");
}

int count_whiteouts(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return -1;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (strncmp(e->d_name, ".wh.", 4) == 0) {
			if (strncmp(e->d_name, ".wh..wh.", 8) != 0)
				n++;
			continue;
		}
		struct stat st;
		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0))
			n++;
	}
	closedir(d);
	return n;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}


void strv_push(struct strv *s, char *str)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 64;
		s->v = realloc(s->v, s->cap * sizeof *s->v);
	}
	s->v[s->n++] = str;
}

char *strv_join_sorted(struct strv *s)
{
	qsort(s->v, s->n, sizeof *s->v, cmp_str);
	size_t len = 1;
	for (size_t i = 0; i < s->n; i++)
		len += strlen(s->v[i]) + 1;
	char *out = malloc(len), *p = out;
	*p = 0;
	for (size_t i = 0; i < s->n; i++) {
		p += sprintf(p, "%s%s", i ? "\n" : "", s->v[i]);
		free(s->v[i]);
	}
	free(s->v);
	return out;
}

char *ls(const char *dir, bool skip_meta)
{
	DIR *d = opendir(dir);
	if (!d)
		return NULL;
	struct strv s = {0};
	struct dirent *e;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (skip_meta && !strcmp(e->d_name, ".wh..wh.strata"))
			continue;
		strv_push(&s, strdup(e->d_name));
	}
	closedir(d);
	return strv_join_sorted(&s);
}

int count_entries(const char *dir, bool skip_meta)
{
	DIR *d = opendir(dir);
	if (!d)
		return -1;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (skip_meta && !strcmp(e->d_name, ".wh..wh.strata"))
			continue;
		n++;
	}
	closedir(d);
	return n;
}

static char type_char(mode_t m)
{
	return S_ISREG(m) ? 'f' : S_ISDIR(m) ? 'd' : S_ISLNK(m) ? 'l' : S_ISCHR(m) ? 'c'
	     : S_ISBLK(m) ? 'b' : S_ISFIFO(m) ? 'p' : S_ISSOCK(m) ? 's' : '?';
}

static void tree_rec(int dfd, const char *rel, struct strv *out, bool owner, bool skip_meta)
{
	DIR *d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		strv_push(out, strdup(pf("%s <opendir failed: %s>", rel, strerror(errno))));
		return;
	}
	struct dirent *e;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (skip_meta && !strcmp(e->d_name, ".wh..wh.strata"))
			continue;
		size_t rl = strlen(rel) + strlen(e->d_name) + 2;
		char *r = malloc(rl);
		snprintf(r, rl, "%s%s%s", rel, *rel ? "/" : "", e->d_name);
		struct stat st;
		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			strv_push(out, strdup(pf("%.3000s <stat failed: %s>", r, strerror(errno))));
			free(r);
			continue;
		}
		char extra[PATH_MAX + 64] = "";
		if (S_ISREG(st.st_mode)) {
			int fd = openat(dirfd(d), e->d_name, O_RDONLY | O_NOFOLLOW);
			size_t n = 0;
			char *c = fd >= 0 ? read_fd_all(fd, &n) : NULL;
			snprintf(extra, sizeof extra, "%016llx",
				 c ? (unsigned long long)hash_bytes(c, n) : 0ULL);
			free(c);
			if (fd >= 0)
				close(fd);
		} else if (S_ISLNK(st.st_mode)) {
			char t[PATH_MAX + 1];
			ssize_t n = readlinkat(dirfd(d), e->d_name, t, PATH_MAX);
			t[n < 0 ? 0 : n] = 0;
			snprintf(extra, sizeof extra, "->%s", t);
		} else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
			snprintf(extra, sizeof extra, "%u:%u", major(st.st_rdev), minor(st.st_rdev));
		}
		char own[64] = "";
		if (owner)
			snprintf(own, sizeof own, " %u:%u", st.st_uid, st.st_gid);
		size_t ll = strlen(r) + strlen(extra) + 128;
		char *line = malloc(ll);
		snprintf(line, ll, "%s %c %04o %lld%s %s", r, type_char(st.st_mode),
			 st.st_mode & 07777, S_ISDIR(st.st_mode) ? 0LL : (long long)st.st_size, own,
			 extra);
		strv_push(out, line);
		if (S_ISDIR(st.st_mode)) {
			int cfd = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
			if (cfd >= 0)
				tree_rec(cfd, r, out, owner, skip_meta);
			else
				strv_push(out, strdup(pf("%.3000s <open failed: %s>", r, strerror(errno))));
		}
		free(r);
	}
	closedir(d);
}

char *tree(const char *dir, bool with_owner, bool skip_meta)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		return NULL;
	struct strv s = {0};
	tree_rec(fd, "", &s, with_owner, skip_meta);
	return strv_join_sorted(&s);
}

/* ------------------------------------------------------------------ */
/* removing trees                                                     */

static void rm_rf_at(int dfd, const char *name, dev_t dev)
{
	struct stat st;
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return;
	if (!S_ISDIR(st.st_mode)) {
		unlinkat(dfd, name, 0);
		return;
	}
	if (st.st_dev != dev)
		return; /* something mounted here: never delete through it */
	for (int pass = 0; pass < 3; pass++) {
		int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
		if (fd < 0) {
			fchmodat(dfd, name, 0700, 0);
			fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
			if (fd < 0)
				return;
		}
		DIR *d = fdopendir(fd);
		if (!d) {
			close(fd);
			return;
		}
		struct dirent *e;
		while ((e = readdir(d))) {
			if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
				continue;
			rm_rf_at(dirfd(d), e->d_name, dev);
		}
		closedir(d);
		if (unlinkat(dfd, name, AT_REMOVEDIR) == 0 || errno != ENOTEMPTY)
			return;
	}
}

void rm_rf(const char *path)
{
	struct stat st;
	if (lstat(path, &st) < 0)
		return;
	rm_rf_at(AT_FDCWD, path, st.st_dev);
}


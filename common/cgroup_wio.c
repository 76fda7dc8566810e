/* The cgroup write side's steps: messages, cgroup directories opened as
 * fds, one-write values, directory walks, and process lists. */
#include "cgroup_wio.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/magic.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "log.h"


int fail(struct errbuf *e, int rc,
						      const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!e || !e->s || e->len == 0)
		return rc;
	va_start(ap, fmt);
	n = vsnprintf(e->s, e->len, fmt, ap);
	va_end(ap);
	if (n >= 0 && (size_t)n < e->len)
		snprintf(e->s + n, e->len - (size_t)n, ": %s", errno_name(-rc));
	return rc;
}

long long now_ns(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts); /* cannot fail for this clock */
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

void nap(void)
{
	struct timespec ts = { 0, POLL_NS };

	(void)nanosleep(&ts, NULL); /* EINTR only shortens one poll */
}

/* An id becomes one path component: nothing that could climb out of
 * strata/ or hide ("." first). */
bool id_ok(const char *id)
{
	size_t len = strlen(id);

	if (len == 0 || len > ID_MAX || id[0] == '.')
		return false;
	for (; *id; id++) {
		char ch = *id;

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '_' || ch == '.' || ch == '-'))
			return false;
	}
	return true;
}

/* Splits ".../strata/<id>" into parent and id, refusing anything else:
 * destroy must never remove a directory Strata did not make. */
int split_path(const char *path, char *parent, size_t len, const char **id)
{
	static const char tail[] = "/" STRATA;
	const char *slash = strrchr(path, '/');
	size_t plen, tl = sizeof(tail) - 1;

	if (!slash || !id_ok(slash + 1) || strstr(path, "/../") || strstr(path, "/./"))
		return -EINVAL;
	plen = (size_t)(slash - path);
	if (plen < tl || plen >= len || memcmp(slash - tl, tail, tl) != 0)
		return -EINVAL;
	memcpy(parent, path, plen);
	parent[plen] = '\0';
	*id = slash + 1;
	return 0;
}

/* False for a tree standing in for cgroupfs. When unsure, behave as on the
 * real thing: never create files or skip a kill there. */
bool on_cgroupfs(int fd)
{
	struct statfs sf;

	if (fstatfs(fd, &sf) < 0)
		return true;
	return sf.f_type == CGROUP_SUPER_MAGIC || sf.f_type == CGROUP2_SUPER_MAGIC;
}

int cgd_open(struct cgd *d, const struct cgd *parent, const char *name,
		    struct errbuf *e)
{
	int n = parent ? snprintf(d->path, sizeof(d->path), "%s/%s", parent->path, name)
		       : snprintf(d->path, sizeof(d->path), "%s", name);

	d->fd = -1;
	if (n < 0 || (size_t)n >= sizeof(d->path))
		return fail(e, -ENAMETOOLONG, "%s/%s", parent ? parent->path : "", name);
	/* Below the mount, every component is ours: follow no symlink. */
	d->fd = openat(parent ? parent->fd : AT_FDCWD, name,
		       O_PATH | O_DIRECTORY | O_CLOEXEC | (parent ? O_NOFOLLOW : 0));
	return d->fd < 0 ? fail(e, -errno, "opening %s", d->path) : 0;
}

void cgd_close(struct cgd *d)
{
	if (d->fd >= 0)
		(void)close(d->fd); /* O_PATH: nothing to flush */
	d->fd = -1;
}

/* One value, one write(): cgroupfs parses each write on its own, so a
 * short write cannot be finished by a second one. */
int put(const struct cgd *d, const char *name, const char *val, struct errbuf *e)
{
	const char *buf = *val ? val : "\n"; /* "" would write nothing at all */
	size_t len = strlen(buf);
	int fd, rc = 0;
	ssize_t n;

	fd = openat(d->fd, name, O_WRONLY | O_TRUNC | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW);
	if (fd < 0)
		return fail(e, -errno, "writing \"%s\" to %s/%s", val, d->path, name);
	n = write(fd, buf, len);
	if (n < 0)
		rc = -errno;
	else if ((size_t)n != len)
		rc = -EIO;
	if (close(fd) < 0 && rc == 0)
		rc = -errno;
	return rc < 0 ? fail(e, rc, "writing \"%s\" to %s/%s", val, d->path, name) : 0;
}

int putf(const struct cgd *d, const char *name,
						      struct errbuf *e, const char *fmt, ...)
{
	char val[NUM_BUF];
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(val, sizeof(val), fmt, ap); /* numbers: always fits */
	va_end(ap);
	return put(d, name, val, e);
}

/* Reads a small file, trailing newline dropped. */
int get(const struct cgd *d, const char *name, char *buf, size_t len, struct errbuf *e)
{
	int rc = cg_read_file(d->fd, name, buf, len);

	if (rc < 0)
		return fail(e, rc, "reading %s/%s", d->path, name);
	while (rc > 0 && (buf[rc - 1] == '\n' || buf[rc - 1] == ' '))
		buf[--rc] = '\0';
	return 0;
}

/* 1 when name exists below d, 0 when not, or -errno. */
int has_file(const struct cgd *d, const char *name, struct errbuf *e)
{
	struct stat st;

	if (fstatat(d->fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
		return 1;
	return errno == ENOENT ? 0 : fail(e, -errno, "%s/%s", d->path, name);
}

/* Is name a word of a controller list? A stand-in tree's subtree_control
 * holds what was written ("+name"), hence the optional '+'. */
bool has_word(const char *list, const char *name)
{
	size_t nl = strlen(name);

	for (const char *t = list; *t;) {
		size_t len;

		t += strspn(t, " \t\n");
		t += *t == '+';
		len = strcspn(t, " \t\n");
		if (len == nl && memcmp(t, name, nl) == 0)
			return true;
		t += len;
	}
	return false;
}

/* ---- directory walks ---- */

static unsigned char entry_type(int dfd, const struct dirent *de)
{
	struct stat st;

	if (de->d_type != DT_UNKNOWN)
		return de->d_type;
	if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return DT_UNKNOWN;
	return (unsigned char)IFTODT(st.st_mode);
}

/* Calls fn for each entry of dfd of the given type (DT_REG, DT_DIR). */
int for_each(int dfd, unsigned char type, entry_fn fn, void *arg)
{
	int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc = 0;
	struct dirent *de;
	DIR *d;

	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		rc = -errno;
		(void)close(fd); /* read-only: nothing to lose */
		return rc;
	}
	for (;;) {
		errno = 0;
		de = readdir(d);
		if (!de) {
			rc = -errno;
			break;
		}
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
		    entry_type(fd, de) != type)
			continue;
		rc = fn(fd, de->d_name, arg);
		if (rc < 0)
			break;
	}
	(void)closedir(d); /* read-only: nothing to lose */
	return rc;
}

static int touch_in(int pfd, const char *name, void *arg)
{
	int fd = openat(*(int *)arg, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
			0644);

	(void)pfd;
	if (fd < 0)
		return -errno;
	return close(fd) < 0 ? -errno : 0;
}

/* A stand-in tree's new directory gets what the kernel would give it. */
int populate(const struct cgd *parent, struct cgd *d, struct errbuf *e)
{
	int rc = for_each(parent->fd, DT_REG, touch_in, &d->fd);

	return rc < 0 ? fail(e, rc, "populating %s", d->path) : 0;
}

struct walk {
	entry_fn visit;
	void *arg;
	unsigned int depth;
};

/* Visits name below pfd and every cgroup under it, children first (a
 * cgroup can only be removed once its children are gone).  The container
 * may have made those children through its cgroup namespace. */
static int walk(int pfd, const char *name, void *arg)
{
	struct walk *w = arg;
	int fd, rc;

	if (w->depth >= MAX_DEPTH)
		return -ELOOP;
	fd = openat(pfd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno; /* gone already */
	w->depth++;
	rc = for_each(fd, DT_DIR, walk, w);
	w->depth--;
	(void)close(fd); /* O_PATH: nothing to flush */
	return rc < 0 ? rc : w->visit(pfd, name, w->arg);
}

/* Walks a .../strata/<id> directory; anything else is refused. */
int walk_path(const char *path, entry_fn visit, void *arg)
{
	struct walk w = { .visit = visit, .arg = arg };
	char parent[PATH_MAX];
	const char *id;
	int pfd, rc = split_path(path, parent, sizeof(parent), &id);

	if (rc < 0)
		return rc;
	pfd = open(parent, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (pfd < 0)
		return errno == ENOENT ? 0 : -errno;
	rc = walk(pfd, id, &w);
	(void)close(pfd); /* O_PATH: nothing to flush */
	return rc;
}

/* ---- pids ---- */

/* Processes of one cgroup (cgroup.procs; v1 "tasks" before 3.0 kernels). */
int read_pids(int dfd, pid_t **out)
{
	char *text;
	int rc = cg_read_alloc(dfd, "cgroup.procs", &text, PROCS_MAX);

	if (rc == -ENOENT)
		rc = cg_read_alloc(dfd, "tasks", &text, PROCS_MAX);
	if (rc < 0)
		return rc;
	rc = cg_parse_pids(text, out);
	free(text);
	return rc;
}

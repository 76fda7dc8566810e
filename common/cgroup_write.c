/* Container cgroups: create, limit, join, find, kill and remove.
 *
 * Every container gets <hierarchy>/strata/<id>: one directory on v2, one
 * per v1 hierarchy it needs (see cgroup_write.h for which), and on hybrid
 * hosts one in the unified hierarchy too.  strata/ is shared and never
 * removed: removing it would race with a container being created beside it.
 *
 * A directory tree that is not a cgroup filesystem (tests, --cgroup-root)
 * stands in for one: a new directory gets an empty file for each of its
 * parent's, as the kernel gives a new cgroup its control files, those files
 * are unlinked before rmdir, and nothing is ever killed there (its
 * cgroup.procs lists no real process).  Nothing else differs, so the unit
 * tests run the real code paths. */
#include "cgroup_write.h"

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

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))
#define STRATA "strata"
#define ID_MAX 128
#define NUM_BUF 64                    /* one number, or "50000 100000" */
#define LIST_BUF 8192                 /* a cpuset list of 1024 CPUs, "0,2,4,..." */
#define CTRL_BUF 512                  /* cgroup.controllers, cgroup.subtree_control */
#define PROCS_MAX (16u << 20)         /* cgroup.procs of a huge container */
#define KILL_WAIT_NS 2000000000LL     /* for SIGKILLed processes to leave */
#define RMDIR_WAIT_NS 1000000000LL    /* for the kernel to drop a cgroup's last ref */
#define POLL_NS 10000000L
#define MAX_DEPTH 32                  /* cgroups a container nests below its own */
#define PERIOD_DEFAULT 100000
#define SHARES_MIN 2                  /* v1 cpu.shares range, as the kernel clamps */
#define SHARES_MAX 262144

/* v2 controller names by enum cg_ctrl (cpuacct's data lives in cpu). */
static const char *const v2_name[CG_NCTRL] = {
	[CG_MEMORY] = "memory", [CG_CPU] = "cpu", [CG_CPUACCT] = "cpu",
	[CG_CPUSET] = "cpuset", [CG_IO] = "io",	  [CG_PIDS] = "pids",
};

/* Enabled for strata/ and its children on v2, those the host has: io too,
 * for the stats strata-procfs shows, though Strata sets no io limit. */
static const char *const v2_enable[] = { "cpuset", "cpu", "io", "memory", "pids" };

struct errbuf {
	char *s;
	size_t len;
};

/* An open cgroup directory and its path, for *at() calls and messages. */
struct cgd {
	int fd;
	char path[PATH_MAX];
};

typedef int (*entry_fn)(int dfd, const char *name, void *arg);

__attribute__((format(printf, 3, 4))) static int fail(struct errbuf *e, int rc,
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

static long long now_ns(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts); /* cannot fail for this clock */
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void nap(void)
{
	struct timespec ts = { 0, POLL_NS };

	(void)nanosleep(&ts, NULL); /* EINTR only shortens one poll */
}

/* An id becomes one path component: nothing that could climb out of
 * strata/ or hide ("." first). */
static bool id_ok(const char *id)
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
static int split_path(const char *path, char *parent, size_t len, const char **id)
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
static bool on_cgroupfs(int fd)
{
	struct statfs sf;

	if (fstatfs(fd, &sf) < 0)
		return true;
	return sf.f_type == CGROUP_SUPER_MAGIC || sf.f_type == CGROUP2_SUPER_MAGIC;
}

static int cgd_open(struct cgd *d, const struct cgd *parent, const char *name,
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

static void cgd_close(struct cgd *d)
{
	if (d->fd >= 0)
		(void)close(d->fd); /* O_PATH: nothing to flush */
	d->fd = -1;
}

/* One value, one write(): cgroupfs parses each write on its own, so a
 * short write cannot be finished by a second one. */
static int put(const struct cgd *d, const char *name, const char *val, struct errbuf *e)
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

__attribute__((format(printf, 4, 5))) static int putf(const struct cgd *d, const char *name,
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
static int get(const struct cgd *d, const char *name, char *buf, size_t len, struct errbuf *e)
{
	int rc = cg_read_file(d->fd, name, buf, len);

	if (rc < 0)
		return fail(e, rc, "reading %s/%s", d->path, name);
	while (rc > 0 && (buf[rc - 1] == '\n' || buf[rc - 1] == ' '))
		buf[--rc] = '\0';
	return 0;
}

/* 1 when name exists below d, 0 when not, or -errno. */
static int has_file(const struct cgd *d, const char *name, struct errbuf *e)
{
	struct stat st;

	if (fstatat(d->fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
		return 1;
	return errno == ENOENT ? 0 : fail(e, -errno, "%s/%s", d->path, name);
}

/* Is name a word of a controller list? A stand-in tree's subtree_control
 * holds what was written ("+name"), hence the optional '+'. */
static bool has_word(const char *list, const char *name)
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
static int for_each(int dfd, unsigned char type, entry_fn fn, void *arg)
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

static int unlink_in(int dfd, const char *name, void *arg)
{
	(void)arg;
	return unlinkat(dfd, name, 0) < 0 ? -errno : 0;
}

/* A stand-in tree's new directory gets what the kernel would give it. */
static int populate(const struct cgd *parent, struct cgd *d, struct errbuf *e)
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
static int walk_path(const char *path, entry_fn visit, void *arg)
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

static int parse_pids(const char *text, pid_t **out)
{
	size_t cap = 1, n = 0;
	const char *s;
	pid_t *v;

	for (s = text; *s; s++)
		cap += *s == '\n' || *s == ' ';
	v = malloc(cap * sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (s = text + strspn(text, " \n"); *s && n < cap; s += strspn(s, " \n")) {
		char *end;
		long x;

		errno = 0;
		x = strtol(s, &end, 10);
		if (end == s || errno || x <= 0 || x > INT_MAX) {
			free(v);
			return -EINVAL;
		}
		v[n++] = (pid_t)x;
		s = end;
	}
	*out = v;
	return (int)n;
}

/* Processes of one cgroup (cgroup.procs; v1 "tasks" before 3.0 kernels). */
static int read_pids(int dfd, pid_t **out)
{
	char *text;
	int rc = cg_read_alloc(dfd, "cgroup.procs", &text, PROCS_MAX);

	if (rc == -ENOENT)
		rc = cg_read_alloc(dfd, "tasks", &text, PROCS_MAX);
	if (rc < 0)
		return rc;
	rc = parse_pids(text, out);
	free(text);
	return rc;
}

/* ---- creating ---- */

struct mk {
	const struct cg_host *h;
	const char *id;
	const struct cg_limits *l;
	struct cg_container *c;
	struct errbuf *e;
};

enum kind { PLAIN, V1_CPUSET, V2 };

/* A new v1 cpuset has no CPUs and no memory nodes and refuses tasks
 * (ENOSPC) until it has both: it gets cpus (or its parent's) and its
 * parent's nodes.  Values already there (an admin's, on strata/) stay. */
static int cpuset_v1(const struct cgd *parent, const struct cgd *d, const char *cpus,
		     struct errbuf *e)
{
	static const char *const names[] = { "cpuset.cpus", "cpuset.mems" };
	char val[LIST_BUF];

	for (size_t i = 0; i < NELEM(names); i++) {
		int rc = get(d, names[i], val, sizeof(val), e);

		if (rc == 0 && val[0])
			continue;
		if (rc == 0 && i == 0 && cpus && *cpus)
			rc = put(d, names[i], cpus, e);
		else if (rc == 0 && (rc = get(parent, names[i], val, sizeof(val), e)) == 0)
			rc = put(d, names[i], val, e);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* Enables in d's cgroup.subtree_control what avail lists of v2_enable and
 * is not on yet, in one write (only ever adding, so a controller someone
 * else enabled is never turned off). */
static int enable_subtree(const struct cgd *d, const char *avail, struct errbuf *e)
{
	char cur[CTRL_BUF], add[CTRL_BUF];
	size_t o = 0;
	int rc = get(d, "cgroup.subtree_control", cur, sizeof(cur), e);

	if (rc < 0)
		return rc;
	for (size_t i = 0; i < NELEM(v2_enable); i++) {
		if (has_word(avail, v2_enable[i]) && !has_word(cur, v2_enable[i]))
			o += (size_t)snprintf(add + o, sizeof(add) - o, "%s+%s", o ? " " : "",
					      v2_enable[i]);
	}
	return o ? put(d, "cgroup.subtree_control", add, e) : 0;
}

/* strata/ is where v2's "no internal processes" rule bites: we never put a
 * process there, so it may hand controllers down to the containers. */
static int prep_strata(enum kind k, const struct cgd *root, const struct cgd *s, struct errbuf *e)
{
	char avail[CTRL_BUF];
	int rc;

	if (k == V1_CPUSET)
		return cpuset_v1(root, s, NULL, e);
	if (k != V2)
		return 0;
	rc = cg_read_file(root->fd, "cgroup.controllers", avail, sizeof(avail));
	if (rc == -ENOENT)
		avail[0] = '\0';
	else if (rc < 0)
		return fail(e, rc, "reading %s/cgroup.controllers", root->path);
	rc = enable_subtree(root, avail, e);
	return rc < 0 ? rc : enable_subtree(s, avail, e);
}

static int open_strata(enum kind k, const struct cgd *root, struct cgd *s, struct errbuf *e)
{
	bool made = mkdirat(root->fd, STRATA, 0755) == 0;
	int rc;

	if (!made && errno != EEXIST)
		return fail(e, -errno, "mkdir %s/" STRATA, root->path);
	rc = cgd_open(s, root, STRATA, e);
	if (rc == 0 && made && !on_cgroupfs(s->fd))
		rc = populate(root, s, e);
	return rc < 0 ? rc : prep_strata(k, root, s, e);
}

/* Makes <mount>/strata/<id>; *slot gets its path the moment it exists, so
 * the caller's cleanup removes it whatever fails next. */
static int make_dir(struct mk *m, const char *mount, enum kind k, char **slot)
{
	struct cgd root = { .fd = -1 }, s = { .fd = -1 }, d = { .fd = -1 };
	char *path = NULL;
	int rc = cgd_open(&root, NULL, mount, m->e);

	if (rc == 0)
		rc = open_strata(k, &root, &s, m->e);
	if (rc == 0 && asprintf(&path, "%s/%s", s.path, m->id) < 0)
		rc = fail(m->e, -ENOMEM, "%s/%s", s.path, m->id);
	if (rc == 0 && mkdirat(s.fd, m->id, 0755) < 0)
		rc = fail(m->e, -errno, "mkdir %s", path);
	if (rc == 0) {
		*slot = path;
		path = NULL;
		rc = cgd_open(&d, &s, m->id, m->e);
	}
	if (rc == 0 && !on_cgroupfs(d.fd))
		rc = populate(&s, &d, m->e);
	if (rc == 0 && k == V1_CPUSET)
		rc = cpuset_v1(&s, &d, m->l->cpuset_cpus, m->e);
	free(path);
	cgd_close(&d);
	cgd_close(&s);
	cgd_close(&root);
	return rc;
}

/* The v1 hierarchies a container gets; want_v1 && !optional: must exist. */
static bool want_v1(const struct cg_limits *l, enum cg_ctrl ctrl)
{
	switch (ctrl) {
	case CG_MEMORY:
		return l->memory != 0;
	case CG_CPU:
		return l->cpu_quota_us >= 0 || l->cpu_shares != 0;
	case CG_CPUSET:
		return l->cpuset_cpus[0] != '\0';
	case CG_CPUACCT: /* the usage strata-procfs shows */
	case CG_PIDS:    /* how the processes are found and killed */
		return true;
	default:
		return false;
	}
}

static bool needed(const struct cg_limits *l, enum cg_ctrl ctrl)
{
	if (ctrl == CG_PIDS)
		return l->pids_max > 0;
	return ctrl != CG_CPUACCT && want_v1(l, ctrl);
}

static int make_v1(struct mk *m, enum cg_ctrl ctrl, bool share_only)
{
	const struct cg_host *h = m->h;
	const char *mount = h->mount[ctrl];
	bool cpuset = h->mount[CG_CPUSET] && !h->is_v2[CG_CPUSET] &&
		      strcmp(h->mount[CG_CPUSET], mount) == 0;

	/* Co-mounted controllers ("cpu,cpuacct") share one directory. */
	for (int o = 0; o < CG_NCTRL; o++) {
		if (o == (int)ctrl || !m->c->dir[o] || h->is_v2[o] || strcmp(h->mount[o], mount))
			continue;
		m->c->dir[ctrl] = strdup(m->c->dir[o]);
		return m->c->dir[ctrl] ? 0 : fail(m->e, -ENOMEM, "%s", m->c->dir[o]);
	}
	if (share_only)
		return 0;
	return make_dir(m, mount, cpuset ? V1_CPUSET : PLAIN, &m->c->dir[ctrl]);
}

/* dir[] for each controller strata/ hands down to its children. */
static int v2_assign(const struct cg_host *h, struct cg_container *c, struct errbuf *e)
{
	char parent[PATH_MAX], list[CTRL_BUF];
	struct cgd s;
	const char *id;
	int rc = split_path(c->v2_dir, parent, sizeof(parent), &id);

	if (rc < 0)
		return fail(e, rc, "%s", c->v2_dir);
	rc = cgd_open(&s, NULL, parent, e);
	if (rc == 0)
		rc = get(&s, "cgroup.subtree_control", list, sizeof(list), e);
	cgd_close(&s);
	for (int ctrl = 0; rc == 0 && ctrl < CG_NCTRL; ctrl++) {
		if (!h->is_v2[ctrl] || c->dir[ctrl] || !has_word(list, v2_name[ctrl]))
			continue;
		c->dir[ctrl] = strdup(c->v2_dir);
		if (!c->dir[ctrl])
			rc = fail(e, -ENOMEM, "%s", c->v2_dir);
	}
	return rc;
}

static int make_v2(struct mk *m)
{
	bool optional = true;
	int rc;

	for (int ctrl = 0; ctrl < CG_NCTRL; ctrl++)
		optional &= !m->h->is_v2[ctrl];
	rc = make_dir(m, m->h->v2_mount, V2, &m->c->v2_dir);
	/* Hybrid: a unified hierarchy without controllers only adds
	 * cgroup.kill; a host that does not let us write there still runs. */
	if (rc < 0 && optional && !m->c->v2_dir &&
	    (rc == -EACCES || rc == -EPERM || rc == -EROFS)) {
		log_debug("cgroup: skipping the unified hierarchy: %s", m->e->s ? m->e->s : "");
		if (m->e->s && m->e->len)
			m->e->s[0] = '\0';
		return 0;
	}
	return rc < 0 || !m->c->v2_dir ? rc : v2_assign(m->h, m->c, m->e);
}

/* docker: memory_swap is memory+swap; unset means as much swap as memory. */
static uint64_t memsw_total(const struct cg_limits *l)
{
	if (l->memory_swap)
		return l->memory_swap;
	return l->memory > UINT64_MAX / 2 ? CG_UNLIMITED : 2 * l->memory;
}

static int memory_v1(const struct cgd *d, uint64_t mem, uint64_t total, bool *has_swap,
		     struct errbuf *e)
{
	static const char mem_f[] = "memory.limit_in_bytes", sw_f[] = "memory.memsw.limit_in_bytes";
	char mv[NUM_BUF], sv[NUM_BUF];
	int rc = has_file(d, sw_f, e); /* absent: swapaccount=0 or no swap support */

	if (rc < 0)
		return rc;
	*has_swap = rc;
	snprintf(mv, sizeof(mv), "%" PRIu64, mem);
	if (total == CG_UNLIMITED)
		strcpy(sv, "-1");
	else
		snprintf(sv, sizeof(sv), "%" PRIu64, total);
	/* The kernel keeps memory <= memsw at every step.  A new cgroup has
	 * both unlimited, so memory goes first; EINVAL there means memsw is
	 * already below it, and raising memsw first is the way. */
	rc = put(d, mem_f, mv, e);
	if (rc == -EINVAL && *has_swap) {
		rc = put(d, sw_f, sv, e);
		return rc < 0 ? rc : put(d, mem_f, mv, e);
	}
	return rc < 0 || !*has_swap ? rc : put(d, sw_f, sv, e);
}

static int memory_v2(const struct cgd *d, uint64_t mem, uint64_t total, bool *has_swap,
		     struct errbuf *e)
{
	int rc = putf(d, "memory.max", e, "%" PRIu64, mem);

	if (rc == 0)
		rc = has_file(d, "memory.swap.max", e);
	if (rc <= 0)
		return rc;
	*has_swap = true;
	if (total == CG_UNLIMITED)
		return put(d, "memory.swap.max", "max", e);
	return putf(d, "memory.swap.max", e, "%" PRIu64, total - mem);
}

/* cpu.weight from cpu.shares as runc and docker map them. */
static uint64_t shares_to_weight(uint64_t s)
{
	s = s < SHARES_MIN ? SHARES_MIN : s > SHARES_MAX ? SHARES_MAX : s;
	return 1 + ((s - SHARES_MIN) * 9999) / (SHARES_MAX - SHARES_MIN);
}

static int cpu_limits(const struct cgd *d, bool v2, const struct cg_limits *l, struct errbuf *e)
{
	uint64_t period = l->cpu_period_us ? l->cpu_period_us : PERIOD_DEFAULT;
	int rc = 0;

	if (l->cpu_quota_us >= 0 && v2)
		rc = putf(d, "cpu.max", e, "%" PRId64 " %" PRIu64, l->cpu_quota_us, period);
	/* v1 checks the quota against the period: the period goes first. */
	if (l->cpu_quota_us >= 0 && !v2) {
		rc = putf(d, "cpu.cfs_period_us", e, "%" PRIu64, period);
		if (rc == 0)
			rc = putf(d, "cpu.cfs_quota_us", e, "%" PRId64, l->cpu_quota_us);
	}
	if (rc == 0 && l->cpu_shares && v2)
		rc = putf(d, "cpu.weight", e, "%" PRIu64, shares_to_weight(l->cpu_shares));
	else if (rc == 0 && l->cpu_shares)
		rc = putf(d, "cpu.shares", e, "%" PRIu64, l->cpu_shares);
	return rc;
}

static int limits(struct mk *m)
{
	const struct cg_limits *l = m->l;
	struct cg_container *c = m->c;
	const bool *v2 = m->h->is_v2;
	struct cgd d = { .fd = -1 };
	int rc = 0;

	if (l->memory && (rc = cgd_open(&d, NULL, c->dir[CG_MEMORY], m->e)) == 0)
		rc = (v2[CG_MEMORY] ? memory_v2 : memory_v1)(&d, l->memory, memsw_total(l),
							       &c->has_swap, m->e);
	cgd_close(&d);
	if (rc == 0 && want_v1(l, CG_CPU) && (rc = cgd_open(&d, NULL, c->dir[CG_CPU], m->e)) == 0)
		rc = cpu_limits(&d, v2[CG_CPU], l, m->e);
	cgd_close(&d);
	/* v1 got its cpuset.cpus when the directory was made. */
	if (rc == 0 && l->cpuset_cpus[0] && v2[CG_CPUSET] &&
	    (rc = cgd_open(&d, NULL, c->dir[CG_CPUSET], m->e)) == 0)
		rc = put(&d, "cpuset.cpus", l->cpuset_cpus, m->e);
	cgd_close(&d);
	if (rc == 0 && l->pids_max > 0 && (rc = cgd_open(&d, NULL, c->dir[CG_PIDS], m->e)) == 0)
		rc = putf(&d, "pids.max", m->e, "%" PRId64, l->pids_max);
	cgd_close(&d);
	return rc;
}

/* Everything that can be refused before a directory is made. */
static int check_limits(const char *id, const struct cg_limits *l, struct errbuf *e)
{
	uint64_t bits[CG_MAX_CPUS / 64];
	uint64_t sw = l->memory_swap;

	if (!id_ok(id))
		return fail(e, -EINVAL, "container id \"%s\"", id);
	if (sw && sw != CG_UNLIMITED && !l->memory)
		return fail(e, -EINVAL, "a memory+swap limit (%" PRIu64 ") needs a memory limit", sw);
	if (sw && sw != CG_UNLIMITED && sw < l->memory)
		return fail(e, -EINVAL, "memory+swap limit %" PRIu64 " is below memory limit %" PRIu64,
			    sw, l->memory);
	if (l->cpu_quota_us < -1 || (l->cpu_quota_us >= 0 && l->cpu_quota_us < 1000))
		return fail(e, -EINVAL, "cpu quota %" PRId64 "us (min 1000)", l->cpu_quota_us);
	if (l->cpu_period_us && (l->cpu_period_us < 1000 || l->cpu_period_us > 1000000))
		return fail(e, -EINVAL, "cpu period %" PRIu64 "us (1000 to 1000000)",
			    l->cpu_period_us);
	if (!memchr(l->cpuset_cpus, '\0', sizeof(l->cpuset_cpus)) ||
	    (l->cpuset_cpus[0] && cg_cpulist_parse(l->cpuset_cpus, bits, CG_MAX_CPUS) <= 0))
		return fail(e, -EINVAL, "cpuset \"%.*s\"", (int)sizeof(l->cpuset_cpus),
			    l->cpuset_cpus);
	return 0;
}

static int create(struct mk *m)
{
	const struct cg_host *h = m->h;
	bool any = false;
	int rc = 0;

	if (h->v2_mount)
		rc = make_v2(m);
	/* Twice: the second pass only fills in co-mounted controllers. */
	for (int pass = 0; pass < 2; pass++) {
		for (int ctrl = 0; rc == 0 && ctrl < CG_NCTRL; ctrl++) {
			if (h->mount[ctrl] && !h->is_v2[ctrl] && !m->c->dir[ctrl] &&
			    (want_v1(m->l, ctrl) || pass == 1))
				rc = make_v1(m, ctrl, pass == 1);
		}
	}
	for (int ctrl = 0; rc == 0 && ctrl < CG_NCTRL; ctrl++) {
		if (needed(m->l, ctrl) && !m->c->dir[ctrl])
			rc = fail(m->e, -ENODEV, "a %s limit, but no %s cgroup controller",
				  v2_name[ctrl], v2_name[ctrl]);
		any |= m->c->dir[ctrl] != NULL;
	}
	if (rc == 0 && !any && !m->c->v2_dir)
		rc = fail(m->e, -ENODEV, "no cgroup hierarchy to put a container in");
	return rc < 0 ? rc : limits(m);
}

int cg_container_create(const struct cg_host *h, const char *id, const struct cg_limits *l,
			struct cg_container *c, char *err, size_t errlen)
{
	struct errbuf e = { err, errlen };
	struct mk m = { .h = h, .id = id, .l = l, .c = c, .e = &e };
	int rc;

	memset(c, 0, sizeof(*c));
	if (err && errlen)
		err[0] = '\0';
	rc = check_limits(id, l, &e);
	if (rc == 0)
		rc = create(&m);
	if (rc < 0) {
		/* Our own cleanup must not replace the message that matters. */
		if (cg_container_destroy(c) < 0)
			log_warn("cgroup: %s: cleanup after a failed create left directories", id);
		cg_container_free(c);
	}
	return rc;
}

/* ---- using ---- */

/* dir[] and v2_dir with co-mounted duplicates dropped. */
static int unique_dirs(const struct cg_container *c, const char **out)
{
	int n = 0;

	for (int i = -1; i < CG_NCTRL; i++) {
		const char *s = i < 0 ? c->v2_dir : c->dir[i];
		bool dup = !s;

		for (int j = 0; j < n && !dup; j++)
			dup = strcmp(out[j], s) == 0;
		if (!dup)
			out[n++] = s;
	}
	return n;
}

int cg_container_attach(const struct cg_container *c, pid_t pid, char *err, size_t errlen)
{
	struct errbuf e = { err, errlen };
	const char *dirs[CG_NCTRL + 1];
	int n = unique_dirs(c, dirs), rc = 0;

	for (int i = 0; i < n && rc == 0; i++) {
		struct cgd d;

		rc = cgd_open(&d, NULL, dirs[i], &e);
		if (rc == 0)
			rc = putf(&d, "cgroup.procs", &e, "%d", (int)pid);
		cgd_close(&d);
	}
	return rc;
}

int cg_container_oom_killed(const struct cg_container *c, bool *killed)
{
	const char *dir = c->dir[CG_MEMORY];
	bool v2 = dir && c->v2_dir && strcmp(dir, c->v2_dir) == 0;
	char buf[1024];
	struct cgd d;
	int rc;

	*killed = false;
	if (!dir)
		return 0;
	rc = cgd_open(&d, NULL, dir, NULL);
	if (rc == 0)
		rc = get(&d, v2 ? "memory.events" : "memory.oom_control", buf, sizeof(buf), NULL);
	cgd_close(&d);
	if (rc < 0)
		return rc;
	/* "oom_kill N" lines: v1 since 4.13, v2 since 4.13 too. */
	for (const char *s = buf; *s; s += strcspn(s, "\n"), s += *s == '\n') {
		if (strncmp(s, "oom_kill ", 9) == 0) {
			*killed = strtoull(s + 9, NULL, 10) > 0;
			return 0;
		}
	}
	return -ENODATA;
}

int cg_container_pids(const struct cg_container *c, pid_t **pids)
{
	const char *dir = c->dir[CG_PIDS] ? c->dir[CG_PIDS]
			  : c->dir[CG_CPU] ? c->dir[CG_CPU]
			  : c->dir[CG_MEMORY] ? c->dir[CG_MEMORY] : c->v2_dir;
	struct cgd d;
	int rc;

	*pids = NULL;
	if (!dir)
		return -ENOENT;
	rc = cgd_open(&d, NULL, dir, NULL);
	if (rc == 0)
		rc = read_pids(d.fd, pids);
	cgd_close(&d);
	return rc;
}

/* ---- removing ---- */

/* SIGKILLs what name lists; *arg counts what was still there. */
static int kill_in(int pfd, const char *name, void *arg)
{
	int *found = arg, fd, n;
	pid_t *pids;

	if (!on_cgroupfs(pfd))
		return 0; /* a stand-in tree lists no process of ours */
	fd = openat(pfd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	n = read_pids(fd, &pids);
	(void)close(fd); /* O_PATH: nothing to flush */
	if (n < 0)
		return n == -ENOENT ? 0 : n;
	for (int i = 0; i < n; i++) {
		(*found)++;
		/* Killing ourselves or init would be worse than a leftover. */
		if (pids[i] == getpid() || pids[i] == 1)
			log_warn("cgroup: %s holds pid %d: not killing it", name, (int)pids[i]);
		else if (kill(pids[i], SIGKILL) < 0 && errno != ESRCH)
			log_warn("cgroup: kill %d: %s", (int)pids[i], errno_name(errno));
	}
	free(pids);
	return 0;
}

/* Until every directory is empty, or KILL_WAIT_NS passed: a process may
 * fork between our read and our kill, and a killed one takes a moment. */
static int kill_all(const char *const *dirs, int n)
{
	long long deadline = now_ns() + KILL_WAIT_NS;

	for (;;) {
		int found = 0;

		for (int i = 0; i < n; i++) {
			int rc = walk_path(dirs[i], kill_in, &found);

			if (rc < 0)
				log_warn("cgroup: killing in %s: %s", dirs[i], errno_name(-rc));
		}
		if (found == 0)
			return 0;
		if (now_ns() >= deadline)
			return -EBUSY;
		nap();
	}
}

static int rm_in(int pfd, const char *name, void *arg)
{
	long long deadline = *(long long *)arg;

	if (!on_cgroupfs(pfd)) {
		int fd = openat(pfd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC), rc;

		if (fd < 0)
			return errno == ENOENT ? 0 : -errno;
		rc = for_each(fd, DT_REG, unlink_in, NULL);
		(void)close(fd); /* O_PATH: nothing to flush */
		if (rc < 0)
			return rc;
	}
	/* EBUSY: the last task is gone but the kernel still holds the cgroup. */
	while (unlinkat(pfd, name, AT_REMOVEDIR) < 0) {
		if (errno == ENOENT)
			return 0;
		if (errno != EBUSY || now_ns() >= deadline)
			return -errno;
		nap();
	}
	return 0;
}

static void v2_kill(const char *dir)
{
	struct cgd d;
	int rc = cgd_open(&d, NULL, dir, NULL);

	/* ENOENT: gone already, or a kernel before 5.14; the SIGKILL loop
	 * does the work then. */
	if (rc == 0)
		rc = put(&d, "cgroup.kill", "1", NULL);
	cgd_close(&d);
	if (rc < 0 && rc != -ENOENT)
		log_warn("cgroup: %s/cgroup.kill: %s", dir, errno_name(-rc));
}

int cg_container_destroy(struct cg_container *c)
{
	const char *dirs[CG_NCTRL + 1];
	char parent[PATH_MAX];
	const char *id;
	long long deadline;
	int n = unique_dirs(c, dirs), rc;

	for (int i = 0; i < n; i++) {
		if (split_path(dirs[i], parent, sizeof(parent), &id) < 0) {
			log_error("cgroup: refusing to remove %s: not a strata cgroup", dirs[i]);
			return -EINVAL;
		}
	}
	if (c->v2_dir)
		v2_kill(c->v2_dir);
	rc = kill_all(dirs, n);
	if (rc < 0) {
		log_warn("cgroup: %s: processes still there after SIGKILL", dirs[0]);
		return rc;
	}
	deadline = now_ns() + RMDIR_WAIT_NS;
	for (int i = 0; i < n; i++) {
		int r = walk_path(dirs[i], rm_in, &deadline);

		if (r < 0) {
			log_warn("cgroup: removing %s: %s", dirs[i], errno_name(-r));
			rc = r;
		}
	}
	if (rc == 0)
		cg_container_free(c);
	return rc;
}

/* ---- finding ---- */

/* *out = <mount>/strata/<id> if it is a directory. */
static int existing(const char *mount, const char *id, char **out)
{
	struct stat st;
	char *path;
	int rc = 0;

	if (asprintf(&path, "%s/" STRATA "/%s", mount, id) < 0)
		return -ENOMEM;
	if (lstat(path, &st) < 0)
		rc = errno == ENOENT || errno == ENOTDIR ? 0 : -errno;
	else if (S_ISDIR(st.st_mode))
		*out = path;
	if (*out != path)
		free(path);
	return rc;
}

int cg_container_find(const struct cg_host *h, const char *id, struct cg_container *c)
{
	bool any = false;
	int rc = 0;

	memset(c, 0, sizeof(*c));
	if (!id_ok(id))
		return -EINVAL;
	if (h->v2_mount)
		rc = existing(h->v2_mount, id, &c->v2_dir);
	if (rc == 0 && c->v2_dir)
		rc = v2_assign(h, c, NULL);
	for (int ctrl = 0; rc == 0 && ctrl < CG_NCTRL; ctrl++) {
		if (h->mount[ctrl] && !h->is_v2[ctrl])
			rc = existing(h->mount[ctrl], id, &c->dir[ctrl]);
		any |= c->dir[ctrl] != NULL;
	}
	if (rc == 0 && !any && !c->v2_dir)
		rc = -ENOENT;
	if (rc < 0)
		cg_container_free(c);
	return rc;
}

void cg_container_free(struct cg_container *c)
{
	for (int i = 0; i < CG_NCTRL; i++)
		free(c->dir[i]);
	free(c->v2_dir);
	memset(c, 0, sizeof(*c));
}

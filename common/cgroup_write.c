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


/* v2 controller names by enum cg_ctrl (cpuacct's data lives in cpu). */
static const char *const v2_name[CG_NCTRL] = {
	[CG_MEMORY] = "memory", [CG_CPU] = "cpu", [CG_CPUACCT] = "cpu",
	[CG_CPUSET] = "cpuset", [CG_IO] = "io",	  [CG_PIDS] = "pids",
};

/* Enabled for strata/ and its children on v2, those the host has: io too,
 * for the stats strata-procfs shows, though Strata sets no io limit. */
static const char *const v2_enable[] = { "cpuset", "cpu", "io", "memory", "pids" };

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
int v2_assign(const struct cg_host *h, struct cg_container *c, struct errbuf *e)
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
	/* Always, as pids: the device policy is no limit one asks for. */
	if (rc == 0 && h->v1_devices)
		rc = make_dir(m, h->v1_devices, PLAIN, &m->c->dev_dir);
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

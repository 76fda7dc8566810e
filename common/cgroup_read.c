/* Readers of the controller files: memory, cpu, io and tasks, v1 and v2.
 *
 * Each field falls back on its own: a file that is missing (a controller
 * not enabled for this cgroup, swap accounting off, an older kernel) or
 * unreadable only leaves its has_ flag false.  Limits are the tightest of
 * the cgroup and its ancestors, as the kernel enforces them. */
#include "cgroup.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))
#define NUM_BUF 64        /* one number, or "max 100000" */
#define STAT_BUF 8192     /* memory.stat: ~1.6 KiB on a 6.x v2 kernel, room to grow */
#define CPUSET_BUF 8192   /* a worst-case list of 1024 CPUs, "0,2,4,..." */
#define BIG_MAX (16u << 20) /* tasks of a huge cgroup, io stats of many devices */
#define MAX_DEPTH 256     /* ancestors walked, far beyond any real nesting */
#define V1_UNLIMITED (1ULL << 62)

/* The expected absences are not worth a log line; anything else (EACCES,
 * EIO) is, when debugging why a container sees host values. */
static void note(const char *name, int rc)
{
	if (rc < 0 && rc != -ENOENT && rc != -ENODEV && rc != -EOPNOTSUPP)
		log_debug("cgroup: reading %s: %s", name, errno_name(-rc));
}

static int parse_u64(const char *s, char **end, uint64_t *v)
{
	unsigned long long x;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	x = strtoull(s, end, 10);
	if (errno == ERANGE)
		return -ERANGE; /* the only error strtoull has for digits */
	*v = x;
	return 0;
}

static bool only_space(const char *s)
{
	return s[strspn(s, " \t\n")] == '\0';
}

int cg_read_u64(int dirfd, const char *name, uint64_t *val)
{
	char buf[NUM_BUF], *end;
	int rc = cg_read_file(dirfd, name, buf, sizeof(buf));

	if (rc < 0)
		return rc;
	if (strncmp(buf, "max", 3) == 0 && only_space(buf + 3)) {
		*val = CG_UNLIMITED;
		return 0;
	}
	rc = parse_u64(buf, &end, val);
	if (rc == 0 && !only_space(end))
		rc = -EINVAL;
	return rc;
}

/* v1 says "no limit" with LONG_MAX rounded down to the page size (the
 * exact value depends on the page size); nothing from 2^62 up is real. */
static uint64_t norm_limit(uint64_t v)
{
	return v >= V1_UNLIMITED ? CG_UNLIMITED : v;
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

/* "key value" lines (memory.stat, cpu.stat, cpuacct.stat, memory.events). */
struct kv {
	const char *key;
	uint64_t *val;
	bool seen;
};

#define KV(key, val) { key, val, false }

/* Fills the listed keys; unknown keys and odd values are skipped, so one
 * line the kernel adds or changes cannot lose the others. */
static void parse_kv(const char *text, struct kv *kv, size_t n)
{
	while (*text) {
		size_t klen = strcspn(text, " \n");
		const char *nl = text + strcspn(text, "\n");
		uint64_t v;
		char *end;

		if (text[klen] == ' ' && parse_u64(text + klen + 1, &end, &v) == 0) {
			for (size_t i = 0; i < n; i++) {
				if (!kv[i].seen && strlen(kv[i].key) == klen &&
				    memcmp(kv[i].key, text, klen) == 0) {
					*kv[i].val = v;
					kv[i].seen = true;
					break;
				}
			}
		}
		text = *nl ? nl + 1 : nl;
	}
}

static bool kv_seen(const struct kv *kv, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++) {
		if (strcmp(kv[i].key, key) == 0)
			return kv[i].seen;
	}
	return false;
}

/* Reads name below dirfd and fills kv; false when the file is unreadable. */
static bool read_kv(int dirfd, const char *name, struct kv *kv, size_t n)
{
	char buf[STAT_BUF];
	int rc = cg_read_file(dirfd, name, buf, sizeof(buf));

	note(name, rc);
	if (rc < 0)
		return false;
	parse_kv(buf, kv, n);
	return true;
}

/* ---- walking up to the top of the hierarchy ---- */

/* Called with each level's directory, the cgroup's own first; returns true
 * to stop the walk. */
typedef bool (*visit_fn)(int dirfd, void *arg);

static void walk_up(const struct cg_host *h, const struct cg_proc *p, enum cg_ctrl ctrl,
		    int selffd, visit_fn fn, void *arg)
{
	if (fn(selffd, arg))
		return;
	for (unsigned int up = 1; up < MAX_DEPTH; up++) {
		int fd = cg_open_ancestor(h, p, ctrl, up);
		bool stop;

		if (fd < 0)
			return; /* past the top of the mount, or the path is gone */
		stop = fn(fd, arg);
		(void)close(fd); /* O_PATH: nothing to flush */
		if (stop)
			return;
	}
}

struct min_walk {
	const char *name;
	uint64_t min;
	bool any;
};

static bool visit_min(int dirfd, void *arg)
{
	struct min_walk *w = arg;
	uint64_t v;
	int rc = cg_read_u64(dirfd, w->name, &v);

	note(w->name, rc);
	if (rc == 0) {
		w->min = min_u64(w->min, norm_limit(v));
		w->any = true;
	}
	return false;
}

/* The tightest limit in name over the cgroup and its ancestors. */
static bool limit_walk(const struct cg_host *h, const struct cg_proc *p, enum cg_ctrl ctrl,
		       int dirfd, const char *name, uint64_t *out)
{
	struct min_walk w = { .name = name, .min = CG_UNLIMITED };

	walk_up(h, p, ctrl, dirfd, visit_min, &w);
	*out = w.min;
	return w.any;
}

/* ---- memory ---- */

static void mem_oom(int dirfd, const char *name, struct cg_memory *m)
{
	struct kv kv[] = { KV("oom_kill", &m->oom_kill_count) };

	if (read_kv(dirfd, name, kv, NELEM(kv)) && kv[0].seen)
		m->oom_killed = m->oom_kill_count > 0;
}

static void mem_v1(const struct cg_host *h, const struct cg_proc *p, int dfd, struct cg_memory *m)
{
	uint64_t hier = CG_UNLIMITED, hier_sw = CG_UNLIMITED, stat_swap = 0, memsw, sw_usage;
	/* v1 names: cache and rss are v2's file and anon. */
	struct kv kv[] = {
		KV("cache", &m->file), KV("rss", &m->anon), KV("shmem", &m->shmem),
		KV("active_anon", &m->active_anon), KV("inactive_anon", &m->inactive_anon),
		KV("active_file", &m->active_file), KV("inactive_file", &m->inactive_file),
		KV("unevictable", &m->unevictable), KV("mapped_file", &m->mapped_file),
		KV("dirty", &m->dirty), KV("writeback", &m->writeback),
		KV("swapcached", &m->swapcached), KV("swap", &stat_swap),
		/* Covers ancestors above our view of the hierarchy too. */
		KV("hierarchical_memory_limit", &hier), KV("hierarchical_memsw_limit", &hier_sw),
	};
	size_t n = NELEM(kv);

	m->has_stat = read_kv(dfd, "memory.stat", kv, n);
	m->has_limit = limit_walk(h, p, CG_MEMORY, dfd, "memory.limit_in_bytes", &m->limit);
	m->has_limit |= kv_seen(kv, n, "hierarchical_memory_limit");
	m->limit = min_u64(m->limit, norm_limit(hier));
	/* memsw limits memory plus swap; the swap alone is what is left. */
	m->has_swap_limit = limit_walk(h, p, CG_MEMORY, dfd, "memory.memsw.limit_in_bytes", &memsw);
	m->has_swap_limit |= kv_seen(kv, n, "hierarchical_memsw_limit");
	memsw = min_u64(memsw, norm_limit(hier_sw));
	if (memsw == CG_UNLIMITED || m->limit == CG_UNLIMITED)
		m->swap_limit = memsw;
	else
		m->swap_limit = memsw > m->limit ? memsw - m->limit : 0;
	m->has_usage = cg_read_u64(dfd, "memory.usage_in_bytes", &m->usage) == 0;
	if (m->has_usage && cg_read_u64(dfd, "memory.memsw.usage_in_bytes", &sw_usage) == 0) {
		m->swap_usage = sw_usage > m->usage ? sw_usage - m->usage : 0;
		m->has_swap_usage = true;
	} else if (kv_seen(kv, n, "swap")) {
		m->swap_usage = stat_swap;
		m->has_swap_usage = true;
	}
	mem_oom(dfd, "memory.oom_control", m);
}

static void mem_v2(const struct cg_host *h, const struct cg_proc *p, int dfd, struct cg_memory *m)
{
	struct kv kv[] = {
		KV("anon", &m->anon), KV("file", &m->file), KV("shmem", &m->shmem),
		KV("active_anon", &m->active_anon), KV("inactive_anon", &m->inactive_anon),
		KV("active_file", &m->active_file), KV("inactive_file", &m->inactive_file),
		KV("unevictable", &m->unevictable), KV("slab", &m->slab),
		KV("slab_reclaimable", &m->slab_reclaimable),
		KV("slab_unreclaimable", &m->slab_unreclaimable),
		KV("file_mapped", &m->mapped_file), KV("file_dirty", &m->dirty),
		KV("file_writeback", &m->writeback), KV("kernel_stack", &m->kernel_stack),
		KV("pagetables", &m->pagetables), KV("swapcached", &m->swapcached),
	};

	m->has_stat = read_kv(dfd, "memory.stat", kv, NELEM(kv));
	m->has_limit = limit_walk(h, p, CG_MEMORY, dfd, "memory.max", &m->limit);
	m->has_swap_limit = limit_walk(h, p, CG_MEMORY, dfd, "memory.swap.max", &m->swap_limit);
	m->has_usage = cg_read_u64(dfd, "memory.current", &m->usage) == 0;
	m->has_swap_usage = cg_read_u64(dfd, "memory.swap.current", &m->swap_usage) == 0;
	mem_oom(dfd, "memory.events", m);
}

int cg_read_memory(const struct cg_host *h, const struct cg_proc *p, struct cg_memory *m)
{
	int dfd;

	memset(m, 0, sizeof(*m));
	m->limit = m->swap_limit = CG_UNLIMITED;
	dfd = cg_open_dir(h, p, CG_MEMORY);
	if (dfd < 0)
		return dfd;
	if (h->is_v2[CG_MEMORY])
		mem_v2(h, p, dfd, m);
	else
		mem_v1(h, p, dfd, m);
	(void)close(dfd); /* O_PATH: nothing to flush */
	return 0;
}

/* ---- cpu ---- */

struct quota_walk {
	bool v2, any;
	int64_t quota;
	uint64_t period;
};

/* One level's quota: v1 cpu.cfs_quota_us + cpu.cfs_period_us, v2 cpu.max
 * ("max 100000", "50000 100000").  Returns 0, or -errno. */
static int read_quota(int dirfd, bool v2, int64_t *quota, uint64_t *period)
{
	char buf[NUM_BUF], *end;
	uint64_t q;
	int rc;

	if (!v2) {
		rc = cg_read_file(dirfd, "cpu.cfs_quota_us", buf, sizeof(buf));
		if (rc < 0)
			return rc;
		if (strncmp(buf, "-1", 2) == 0 && only_space(buf + 2))
			*quota = -1;
		else if (parse_u64(buf, &end, &q) == 0 && only_space(end) && q <= INT64_MAX)
			*quota = (int64_t)q;
		else
			return -EINVAL;
		return cg_read_u64(dirfd, "cpu.cfs_period_us", period);
	}
	rc = cg_read_file(dirfd, "cpu.max", buf, sizeof(buf));
	if (rc < 0)
		return rc;
	if (strncmp(buf, "max", 3) == 0) {
		*quota = -1;
		end = buf + 3;
	} else if (parse_u64(buf, &end, &q) == 0 && q <= INT64_MAX) {
		*quota = (int64_t)q;
	} else {
		return -EINVAL;
	}
	*period = 100000; /* the kernel's default, when only a quota is shown */
	if (*end == ' ' && parse_u64(end + 1, &end, period) < 0)
		return -EINVAL;
	return only_space(end) ? 0 : -EINVAL;
}

/* Keeps the level with the smallest quota/period: different levels may
 * use different periods, so compare the ratios, not the quotas. */
static bool visit_quota(int dirfd, void *arg)
{
	struct quota_walk *w = arg;
	uint64_t period = 0;
	int64_t quota = -1;
	int rc = read_quota(dirfd, w->v2, &quota, &period);

	note(w->v2 ? "cpu.max" : "cpu.cfs_quota_us", rc);
	if (rc < 0 || period == 0)
		return false;
	if (!w->any)
		w->period = period; /* our own period, even without a quota */
	w->any = true;
	if (quota > 0 && (w->quota < 0 || (unsigned __int128)quota * w->period <
						  (unsigned __int128)w->quota * period)) {
		w->quota = quota;
		w->period = period;
	}
	return false;
}

static void cpu_quota(const struct cg_host *h, const struct cg_proc *p, int dfd, struct cg_cpu *c)
{
	struct quota_walk w = { .v2 = h->is_v2[CG_CPU], .quota = -1, .period = 100000 };

	walk_up(h, p, CG_CPU, dfd, visit_quota, &w);
	c->has_quota = w.any;
	c->quota_us = w.quota;
	c->period_us = w.period;
}

/* v1 cpu.stat: nr_periods, nr_throttled, throttled_time (ns). */
static void cpu_v1(int dfd, struct cg_cpu *c)
{
	struct kv kv[] = {
		KV("nr_periods", &c->nr_periods),
		KV("nr_throttled", &c->nr_throttled),
		KV("throttled_time", &c->throttled_ns),
	};

	c->has_shares = cg_read_u64(dfd, "cpu.shares", &c->shares) == 0;
	if (read_kv(dfd, "cpu.stat", kv, NELEM(kv)))
		c->has_throttled = kv[0].seen && kv[1].seen && kv[2].seen;
}

/* v2 cpu.stat, in microseconds.  Usage is there whether or not the cpu
 * controller is enabled; the throttling lines only when it is. */
static void cpu_stat_v2(int dfd, struct cg_cpu *c)
{
	uint64_t usage, user, sys, throttled;
	struct kv kv[] = {
		KV("usage_usec", &usage), KV("user_usec", &user), KV("system_usec", &sys),
		KV("nr_periods", &c->nr_periods), KV("nr_throttled", &c->nr_throttled),
		KV("throttled_usec", &throttled),
	};

	if (!read_kv(dfd, "cpu.stat", kv, NELEM(kv)))
		return;
	if (kv[0].seen) {
		c->usage_ns = usage * 1000;
		c->has_usage = true;
	}
	if (kv[1].seen && kv[2].seen) {
		c->user_ns = user * 1000;
		c->system_ns = sys * 1000;
		c->has_userSys = true;
	}
	if (kv[3].seen && kv[4].seen && kv[5].seen) {
		c->throttled_ns = throttled * 1000;
		c->has_throttled = true;
	}
}

/* cpu.weight 1..10000 back to shares 2..262144, inverting runc's
 * weight = 1 + (shares - 2) * 9999 / 262142. */
static void cpu_v2(int dfd, struct cg_cpu *c)
{
	uint64_t w;

	if (cg_read_u64(dfd, "cpu.weight", &w) == 0 && w >= 1 && w <= 10000) {
		c->shares = 2 + (w - 1) * 262142 / 9999;
		c->has_shares = true;
	}
	cpu_stat_v2(dfd, c);
}

/* cpuacct.usage_percpu: "ns ns ns ...", indexed by host CPU id. */
static void cpuacct_percpu(int dfd, struct cg_cpu *c)
{
	const char *s;
	char *text, *end;
	unsigned int i = 0;
	int rc = cg_read_alloc(dfd, "cpuacct.usage_percpu", &text, BIG_MAX);

	note("cpuacct.usage_percpu", rc);
	if (rc < 0)
		return;
	for (s = text + strspn(text, " \n"); *s && i < CG_MAX_CPUS; s = end + strspn(end, " \n")) {
		if (parse_u64(s, &end, &c->percpu_ns[i]) < 0)
			break;
		i++;
	}
	c->has_percpu = i > 0;
	free(text);
}

static void cpuacct_v1(int dfd, struct cg_cpu *c)
{
	uint64_t user, sys;
	struct kv kv[] = { KV("user", &user), KV("system", &sys) };
	long tck;

	c->has_usage = cg_read_u64(dfd, "cpuacct.usage", &c->usage_ns) == 0;
	cpuacct_percpu(dfd, c);
	/* cpuacct.stat counts USER_HZ ticks. */
	if (!read_kv(dfd, "cpuacct.stat", kv, NELEM(kv)) || !kv[0].seen || !kv[1].seen)
		return;
	tck = sysconf(_SC_CLK_TCK);
	if (tck <= 0)
		tck = 100; /* what every Linux architecture uses */
	c->user_ns = user * (1000000000 / (uint64_t)tck);
	c->system_ns = sys * (1000000000 / (uint64_t)tck);
	c->has_userSys = true;
}

struct cpuset_walk {
	const char *const *names;
	struct cg_cpu *c;
};

/* The first level with a non-empty list wins: a v1 cgroup made without
 * clone_children starts empty, and a v2 one without the cpuset
 * controller has no file at all; both run on their parent's CPUs. */
static bool visit_cpuset(int dirfd, void *arg)
{
	struct cpuset_walk *w = arg;
	char buf[CPUSET_BUF];

	for (const char *const *name = w->names; *name; name++) {
		int n, rc = cg_read_file(dirfd, *name, buf, sizeof(buf));

		note(*name, rc);
		if (rc < 0)
			continue;
		n = cg_cpulist_parse(buf, w->c->cpuset, CG_MAX_CPUS);
		if (n < 0)
			return true; /* garbage: better no cpuset than a wrong one */
		if (n > 0) {
			w->c->cpuset_count = (unsigned int)n;
			w->c->has_cpuset = true;
			return true;
		}
	}
	return false;
}

static void cpu_cpuset(const struct cg_host *h, const struct cg_proc *p, int dfd, struct cg_cpu *c)
{
	/* v1 "noprefix" mounts (old Android, some embedded) drop "cpuset.". */
	static const char *const v1[] = { "cpuset.effective_cpus", "cpuset.cpus",
					  "effective_cpus", "cpus", NULL };
	static const char *const v2[] = { "cpuset.cpus.effective", "cpuset.cpus", NULL };
	struct cpuset_walk w = { .names = h->is_v2[CG_CPUSET] ? v2 : v1, .c = c };

	walk_up(h, p, CG_CPUSET, dfd, visit_cpuset, &w);
}

int cg_read_cpu(const struct cg_host *h, const struct cg_proc *p, struct cg_cpu *c)
{
	bool opened = false;
	int dfd;

	memset(c, 0, sizeof(*c));
	c->quota_us = -1;
	c->period_us = 100000;
	dfd = cg_open_dir(h, p, CG_CPU);
	if (dfd >= 0) {
		cpu_quota(h, p, dfd, c);
		if (h->is_v2[CG_CPU])
			cpu_v2(dfd, c);
		else
			cpu_v1(dfd, c);
		(void)close(dfd); /* O_PATH: nothing to flush */
		opened = true;
	}
	dfd = cg_open_dir(h, p, CG_CPUACCT);
	if (dfd >= 0) {
		if (!h->is_v2[CG_CPUACCT])
			cpuacct_v1(dfd, c);
		else if (!c->has_usage)
			cpu_stat_v2(dfd, c);
		(void)close(dfd);
		opened = true;
	}
	/* No cpuacct anywhere (hybrid without it): every cgroup2 directory has
	 * usage in cpu.stat, with or without controllers. */
	if (!c->has_usage && (dfd = cg_open_ancestor(h, p, CG_V2_HIERARCHY, 0)) >= 0) {
		cpu_stat_v2(dfd, c);
		(void)close(dfd);
		opened = true;
	}
	dfd = cg_open_dir(h, p, CG_CPUSET);
	if (dfd >= 0) {
		cpu_cpuset(h, p, dfd, c);
		(void)close(dfd);
		opened = true;
	}
	return opened ? 0 : -ENOENT;
}

unsigned int cg_cpu_visible(const struct cg_cpu *c, unsigned int host_cpus)
{
	unsigned int n = host_cpus;

	if (c->has_cpuset && c->cpuset_count > 0 && c->cpuset_count < n)
		n = c->cpuset_count;
	if (c->has_quota && c->quota_us > 0 && c->period_us > 0) {
		uint64_t q = ((uint64_t)c->quota_us + c->period_us - 1) / c->period_us;

		if (q < n)
			n = (unsigned int)q;
	}
	return n > 0 ? n : 1;
}

/* ---- io ---- */

static struct cg_io_dev *io_dev(struct cg_io_dev *devs, int *n, int max, unsigned int maj,
				unsigned int min)
{
	for (int i = 0; i < *n; i++) {
		if (devs[i].major == maj && devs[i].minor == min)
			return &devs[i];
	}
	if (*n >= max)
		return NULL; /* more devices than the caller has room for */
	memset(&devs[*n], 0, sizeof(devs[*n]));
	devs[*n].major = maj;
	devs[*n].minor = min;
	return &devs[(*n)++];
}

/* v1 "8:0 Read 4096" lines (also Write, Discard, Sync, Async, Total; a last
 * "Total N" line has no device).  ios picks the _serviced file's fields. */
static void io_v1_parse(const char *text, bool ios, struct cg_io_dev *devs, int *n, int max)
{
	for (; *text; text += strcspn(text, "\n"), text += *text == '\n') {
		unsigned int maj, min;
		char op[16];
		uint64_t v;
		struct cg_io_dev *d;

		if (sscanf(text, "%u:%u %15s %" SCNu64, &maj, &min, op, &v) != 4 ||
		    !(d = io_dev(devs, n, max, maj, min)))
			continue;
		if (strcmp(op, "Read") == 0)
			*(ios ? &d->rios : &d->rbytes) = v;
		else if (strcmp(op, "Write") == 0)
			*(ios ? &d->wios : &d->wbytes) = v;
		else if (strcmp(op, "Discard") == 0)
			*(ios ? &d->dios : &d->dbytes) = v;
	}
}

static int io_v1(int dfd, struct cg_io_dev *devs, int max)
{
	/* Throttle stats count every bio; the others only with CFQ or BFQ. */
	static const char *const files[][2] = {
		{ "blkio.throttle.io_service_bytes", "blkio.throttle.io_serviced" },
		{ "blkio.io_service_bytes_recursive", "blkio.io_serviced_recursive" },
		{ "blkio.bfq.io_service_bytes_recursive", "blkio.bfq.io_serviced_recursive" },
	};
	int rc = -ENOENT, n = 0;
	bool any = false;

	/* An empty file falls back too: the throttle files only list devices
	 * once blk-throttle has seen I/O on them. */
	for (size_t i = 0; i < NELEM(files) && n == 0; i++) {
		char *text;

		rc = cg_read_alloc(dfd, files[i][0], &text, BIG_MAX);
		note(files[i][0], rc);
		if (rc < 0)
			continue;
		any = true;
		io_v1_parse(text, false, devs, &n, max);
		free(text);
		if (cg_read_alloc(dfd, files[i][1], &text, BIG_MAX) >= 0) {
			io_v1_parse(text, true, devs, &n, max);
			free(text);
		}
	}
	return n > 0 || any ? n : rc;
}

/* v2 "8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=5 dios=6" (key order and
 * extra keys vary with the kernel and io cost model). */
static void io_v2_line(const char *s, struct cg_io_dev *d)
{
	static const char *const keys[] = { "rbytes", "wbytes", "rios", "wios", "dbytes", "dios" };
	uint64_t *vals[] = { &d->rbytes, &d->wbytes, &d->rios, &d->wios, &d->dbytes, &d->dios };

	while (*s && *s != '\n') {
		size_t tl = strcspn(s, " \n"), kl = strcspn(s, "= \n");
		char *end;

		for (size_t i = 0; s[kl] == '=' && i < NELEM(keys); i++) {
			if (strlen(keys[i]) == kl && memcmp(s, keys[i], kl) == 0)
				(void)parse_u64(s + kl + 1, &end, vals[i]);
		}
		s += tl;
		s += strspn(s, " ");
	}
}

static int io_v2(int dfd, struct cg_io_dev *devs, int max)
{
	char *text;
	int n = 0, rc = cg_read_alloc(dfd, "io.stat", &text, BIG_MAX);

	note("io.stat", rc);
	if (rc < 0)
		return rc;
	for (const char *s = text; *s; s += strcspn(s, "\n"), s += *s == '\n') {
		unsigned int maj, min;
		int off = 0;
		struct cg_io_dev *d;

		if (sscanf(s, "%u:%u %n", &maj, &min, &off) == 2 && off > 0 &&
		    (d = io_dev(devs, &n, max, maj, min)))
			io_v2_line(s + off, d);
	}
	free(text);
	return n;
}

int cg_read_io(const struct cg_host *h, const struct cg_proc *p, struct cg_io_dev *devs,
	       int max)
{
	int n, dfd;

	if (max <= 0)
		return 0;
	dfd = cg_open_dir(h, p, CG_IO);
	if (dfd < 0)
		return dfd;
	n = h->is_v2[CG_IO] ? io_v2(dfd, devs, max) : io_v1(dfd, devs, max);
	(void)close(dfd); /* O_PATH: nothing to flush */
	return n;
}

/* ---- tasks ---- */

int cg_parse_pids(const char *text, pid_t **out)
{
	size_t cap = 1, n = 0;
	const char *s;
	char *end;
	pid_t *v;

	for (s = text; *s; s++)
		cap += *s == '\n';
	v = malloc(cap * sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (s = text + strspn(text, " \n"); *s && n < cap; s = end + strspn(end, " \n")) {
		uint64_t id;

		if (parse_u64(s, &end, &id) < 0 || id == 0 || id > INT32_MAX)
			break;
		v[n++] = (pid_t)id;
	}
	*out = v;
	return (int)n;
}

/* One cgroup's tasks: v2 cgroup.threads (cgroup.procs when the cgroup is
 * not threaded-capable and refuses it), v1 tasks. */
static int tasks_in(int dfd, bool v2, pid_t **out)
{
	static const char *const v1_files[] = { "tasks", NULL };
	static const char *const v2_files[] = { "cgroup.threads", "cgroup.procs", NULL };
	int rc = -ENOENT;

	for (const char *const *f = v2 ? v2_files : v1_files; *f; f++) {
		char *text;

		rc = cg_read_alloc(dfd, *f, &text, BIG_MAX);
		note(*f, rc);
		if (rc < 0)
			continue;
		rc = cg_parse_pids(text, out);
		free(text);
		break;
	}
	return rc;
}

int cg_read_tasks(const struct cg_host *h, const struct cg_proc *p, pid_t **out)
{
	/* pids is the controller meant for counting tasks; cpu is the one the
	 * runnable ones compete in; the unified hierarchy holds every task. */
	static const enum cg_ctrl order[] = { CG_PIDS, CG_CPU, CG_V2_HIERARCHY };
	int rc = -ENOENT;

	*out = NULL;
	for (size_t i = 0; i < NELEM(order); i++) {
		enum cg_ctrl c = order[i];
		int dfd = cg_open_ancestor(h, p, c, 0);

		if (dfd < 0)
			continue;
		rc = tasks_in(dfd, c == CG_V2_HIERARCHY || h->is_v2[c], out);
		(void)close(dfd); /* O_PATH: nothing to flush */
		if (rc >= 0)
			break;
	}
	return rc;
}

/* Reader resolution and the per-cgroup caches (see reader.h). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "procfs.h"
#include "reader.h"

#ifndef PIDFD_THREAD
#define PIDFD_THREAD O_EXCL
#endif

#define PID_SLOTS 4096      /* direct-mapped by pid */
#define PID_STRIPES 64      /* locks over the pid slots */
#define GROUP_BUCKETS 256
#define MAX_IO_DEVS 64
#define PID_IDLE_NS (60ULL * 1000000000ULL)
#define GROUP_IDLE_NS (600ULL * 1000000000ULL)

struct pf_group {
	struct pf_group *next; /* hash chain (groups_lock) */
	uint64_t hash;
	char *key;
	struct cg_proc proc;
	bool root;             /* every path "/", or the unknown reader */
	unsigned int refs;     /* atomic; the table holds one */
	uint64_t last_used;    /* atomic */

	pthread_mutex_t lock;  /* the fields below; never held across I/O */
	bool no_limits;
	uint64_t vals_at, io_at;
	bool has_mem, has_cpu;
	struct cg_memory mem;
	struct cg_cpu cpu;
	struct cg_io_dev io[MAX_IO_DEVS];
	int nio;
	struct pf_stat_state *stat;
	struct pf_load load;
	struct pf_text *text[PF_NFILES];
	uint64_t text_at[PF_NFILES];
	double text_init[PF_NFILES];
};

struct pid_ent {
	pid_t pid;
	int pidfd;           /* -1: validated by start time instead */
	uint64_t start;      /* /proc/PID/stat field 22 */
	uint64_t at;         /* when resolved */
	struct pf_group *g;  /* a reference */
	bool has_init;
	double init_start;
};

static const char *const host_path[PF_NFILES] = {
	[PF_MEMINFO] = "/proc/meminfo",
	[PF_CPUINFO] = "/proc/cpuinfo",
	[PF_STAT] = "/proc/stat",
	[PF_UPTIME] = "/proc/uptime",
	[PF_LOADAVG] = "/proc/loadavg",
	[PF_DISKSTATS] = "/proc/diskstats",
	[PF_SWAPS] = "/proc/swaps",
	[PF_CPU_ONLINE] = "/sys/devices/system/cpu/online",
};

static struct {
	const struct cg_host *host;
	uint64_t ttl;
	bool loadavg;
	unsigned int host_cpus, online_cpus;
	long clk_tck;
	uint64_t host_mem;
	struct pf_group *root;   /* the host view */

	pthread_mutex_t groups_lock;
	struct pf_group *groups[GROUP_BUCKETS];

	pthread_mutex_t pid_lock[PID_STRIPES];
	struct pid_ent pids[PID_SLOTS];

	pthread_mutex_t host_lock;
	struct pf_text *host_text[PF_NFILES];
	uint64_t host_at[PF_NFILES];
} R = {
	.groups_lock = PTHREAD_MUTEX_INITIALIZER,
	.host_lock = PTHREAD_MUTEX_INITIALIZER,
};

/* ---- texts ---- */

void pf_text_get(struct pf_text *t)
{
	__atomic_add_fetch(&t->refs, 1, __ATOMIC_RELAXED);
}

void pf_text_put(struct pf_text *t)
{
	if (t && __atomic_sub_fetch(&t->refs, 1, __ATOMIC_ACQ_REL) == 0) {
		free(t->data);
		free(t);
	}
}

/* Takes ownership of data. */
static struct pf_text *text_new(char *data, size_t len)
{
	struct pf_text *t = malloc(sizeof(*t));

	if (!t) {
		free(data);
		return NULL;
	}
	t->refs = 1;
	t->len = len;
	t->data = data;
	return t;
}

/* ---- small file helpers ---- */

/* Whole file into a malloc'ed NUL-terminated buffer. -errno on failure. */
static int slurp(const char *path, char **out, size_t *lenp)
{
	int n = cg_read_alloc(AT_FDCWD, path, out, INT_MAX);

	if (n < 0)
		return n;
	*lenp = (size_t)n;
	return 0;
}

/* ---- groups ---- */

static uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static char *group_key(const struct cg_proc *p)
{
	size_t len = 4;
	char *key, *o;

	for (int c = 0; c < CG_NCTRL; c++)
		len += (p->path[c] ? strlen(p->path[c]) : 1) + 1;
	len += p->v2_path ? strlen(p->v2_path) : 1;
	key = malloc(len);
	if (!key)
		return NULL;
	o = key;
	for (int c = 0; c < CG_NCTRL; c++)
		o += sprintf(o, "%s\n", p->path[c] ? p->path[c] : "-");
	sprintf(o, "%s", p->v2_path ? p->v2_path : "-");
	return key;
}

static struct pf_group *group_alloc(char *key, uint64_t hash, struct cg_proc *p, bool root)
{
	struct pf_group *g = calloc(1, sizeof(*g));

	if (!g)
		return NULL;
	pthread_mutex_init(&g->lock, NULL);
	g->key = key;
	g->hash = hash;
	if (p) {
		g->proc = *p;
		memset(p, 0, sizeof(*p));
	}
	g->root = root;
	g->refs = 1;
	g->last_used = pf_now_ns();
	return g;
}

static void group_free(struct pf_group *g)
{
	for (int f = 0; f < PF_NFILES; f++)
		pf_text_put(g->text[f]);
	cg_proc_free(&g->proc);
	pthread_mutex_destroy(&g->lock);
	free(g->stat);
	free(g->key);
	free(g);
}

static void group_ref(struct pf_group *g)
{
	__atomic_add_fetch(&g->refs, 1, __ATOMIC_RELAXED);
}

void reader_group_put(struct pf_group *g)
{
	/* The table's own reference keeps this above zero; only the sweep,
	 * holding groups_lock, ever frees a group. */
	if (g)
		__atomic_sub_fetch(&g->refs, 1, __ATOMIC_ACQ_REL);
}

const struct cg_proc *reader_group_proc(const struct pf_group *g)
{
	return &g->proc;
}

/* The group for p (consumed), with a reference for the caller. */
static struct pf_group *group_get(struct cg_proc *p)
{
	char *key = group_key(p);
	struct pf_group *g, *fresh;
	uint64_t h;

	if (!key)
		return NULL;
	h = hash_str(key);
	pthread_mutex_lock(&R.groups_lock);
	for (g = R.groups[h % GROUP_BUCKETS]; g; g = g->next)
		if (g->hash == h && strcmp(g->key, key) == 0)
			break;
	if (g) {
		group_ref(g);
		pthread_mutex_unlock(&R.groups_lock);
		free(key);
		cg_proc_free(p);
		return g;
	}
	fresh = group_alloc(key, h, p, cg_proc_is_root(p));
	if (fresh) {
		fresh->next = R.groups[h % GROUP_BUCKETS];
		R.groups[h % GROUP_BUCKETS] = fresh;
		group_ref(fresh);
	} else {
		free(key);
		cg_proc_free(p);
	}
	pthread_mutex_unlock(&R.groups_lock);
	return fresh;
}

int reader_groups(struct pf_group ***out)
{
	struct pf_group **v = NULL, **nv, *g;
	size_t n = 0, cap = 0;

	pthread_mutex_lock(&R.groups_lock);
	for (int b = 0; b < GROUP_BUCKETS; b++) {
		for (g = R.groups[b]; g; g = g->next) {
			if (n == cap) {
				cap = cap ? cap * 2 : 32;
				nv = realloc(v, cap * sizeof(*v));
				if (!nv)
					goto out;
				v = nv;
			}
			group_ref(g);
			v[n++] = g;
		}
	}
out:
	pthread_mutex_unlock(&R.groups_lock);
	*out = v;
	return (int)n;
}

void reader_group_add_sample(struct pf_group *g, const struct pf_load_sample *s)
{
	pthread_mutex_lock(&g->lock);
	pf_load_update(&g->load, s);
	pthread_mutex_unlock(&g->lock);
}

/* ---- pid cache ---- */

static int pidfd_open_any(pid_t pid)
{
	/* Readers are threads: a thread pidfd (Linux 6.9+) names exactly the
	 * requesting thread; a process pidfd only works for a leader. */
	int fd = (int)syscall(SYS_pidfd_open, pid, PIDFD_THREAD);

	if (fd < 0 && errno == EINVAL)
		fd = (int)syscall(SYS_pidfd_open, pid, 0);
	return fd < 0 ? -errno : fd;
}

static bool pidfd_alive(int pidfd)
{
	return syscall(SYS_pidfd_send_signal, pidfd, 0, NULL, 0) == 0;
}

static void pid_ent_clear(struct pid_ent *e)
{
	if (e->pidfd >= 0)
		close(e->pidfd);
	reader_group_put(e->g);
	memset(e, 0, sizeof(*e));
	e->pidfd = -1;
}

/* Resolves pid from scratch (I/O, no lock held). */
static int pid_resolve(pid_t pid, struct pid_ent *e)
{
	struct cg_proc p;
	int err;

	memset(e, 0, sizeof(*e));
	e->pid = pid;
	e->pidfd = pidfd_open_any(pid);
	/* Without a pidfd the start time tells a recycled pid apart. */
	if (e->pidfd < 0 && pf_proc_stat(pid, NULL, &e->start) < 0)
		return -ESRCH;
	err = cg_proc_read(R.host, "/proc", pid, &p);
	if (err < 0) {
		pid_ent_clear(e);
		return err == -ENOENT ? -ESRCH : err;
	}
	e->g = group_get(&p);
	if (!e->g) {
		pid_ent_clear(e);
		return -ENOMEM;
	}
	e->has_init = pf_pidns_init_start(pid, R.clk_tck, &e->init_start);
	/* The pidfd was opened before the cgroup file was read: if it is
	 * still alive, what we read belonged to this very process. */
	if (e->pidfd >= 0 && !pidfd_alive(e->pidfd)) {
		pid_ent_clear(e);
		return -ESRCH;
	}
	e->at = pf_now_ns();
	return 0;
}

struct who {
	struct pf_group *g; /* a reference */
	bool has_init;
	double init_start;
};

static bool pid_lookup(pid_t pid, struct who *w)
{
	unsigned int slot = (unsigned int)pid % PID_SLOTS;
	pthread_mutex_t *lock = &R.pid_lock[slot % PID_STRIPES];
	struct pid_ent *e = &R.pids[slot];
	uint64_t start = 0, now = pf_now_ns();
	bool hit = false, by_start = false;

	pthread_mutex_lock(lock);
	if (e->g && e->pid == pid && now - e->at < R.ttl) {
		if (e->pidfd >= 0) {
			hit = pidfd_alive(e->pidfd);
		} else {
			hit = true;
			by_start = true;
			start = e->start;
		}
		if (hit) {
			w->g = e->g;
			group_ref(w->g);
			w->has_init = e->has_init;
			w->init_start = e->init_start;
		}
	}
	pthread_mutex_unlock(lock);
	if (hit && by_start) {
		uint64_t now_start;

		if (pf_proc_stat(pid, NULL, &now_start) < 0 || now_start != start) {
			reader_group_put(w->g);
			hit = false;
		}
	}
	return hit;
}

static int reader_who(pid_t pid, bool may_block, struct who *w)
{
	unsigned int slot = (unsigned int)pid % PID_SLOTS;
	pthread_mutex_t *lock = &R.pid_lock[slot % PID_STRIPES];
	struct pid_ent fresh, old;
	int err;

	if (pid <= 0) {
		/* Not visible in our pid namespace: a reader above us. */
		group_ref(R.root);
		*w = (struct who){ .g = R.root };
		return 0;
	}
	if (pid_lookup(pid, w))
		return 0;
	if (!may_block)
		return -EWOULDBLOCK;
	err = pid_resolve(pid, &fresh);
	if (err)
		return err;
	w->g = fresh.g;
	group_ref(w->g);
	w->has_init = fresh.has_init;
	w->init_start = fresh.init_start;
	pthread_mutex_lock(lock);
	old = R.pids[slot];
	R.pids[slot] = fresh;
	pthread_mutex_unlock(lock);
	if (old.g)
		pid_ent_clear(&old);
	return 0;
}

/* ---- host texts ---- */

static int host_text(enum pf_file f, struct pf_text **out)
{
	uint64_t now = pf_now_ns();
	struct pf_text *t = NULL, *old;
	char *data = NULL;
	size_t len = 0;
	int err;

	pthread_mutex_lock(&R.host_lock);
	if (R.host_text[f] && now - R.host_at[f] < R.ttl) {
		t = R.host_text[f];
		pf_text_get(t);
	}
	pthread_mutex_unlock(&R.host_lock);
	if (t) {
		*out = t;
		return 0;
	}
	err = slurp(host_path[f], &data, &len);
	if (err)
		return err;
	t = text_new(data, len);
	if (!t)
		return -ENOMEM;
	pf_text_get(t);
	pthread_mutex_lock(&R.host_lock);
	old = R.host_text[f];
	R.host_text[f] = t;
	R.host_at[f] = now;
	pthread_mutex_unlock(&R.host_lock);
	pf_text_put(old);
	*out = t;
	return 0;
}

static double boot_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- cgroup values ---- */

struct vals {
	bool has_mem, has_cpu;
	struct cg_memory mem;
	struct cg_cpu cpu;
};

static bool limited(const struct vals *v)
{
	if (v->has_mem) {
		if (v->mem.has_limit && v->mem.limit != CG_UNLIMITED && v->mem.limit < R.host_mem)
			return true;
		if (v->mem.has_swap_limit && v->mem.swap_limit != CG_UNLIMITED)
			return true;
	}
	if (v->has_cpu) {
		if (v->cpu.has_quota && v->cpu.quota_us >= 0)
			return true;
		if (v->cpu.has_cpuset && v->cpu.cpuset_count < R.online_cpus)
			return true;
	}
	return false;
}

static void read_vals(struct pf_group *g, struct vals *v)
{
	v->has_mem = cg_read_memory(R.host, &g->proc, &v->mem) == 0;
	v->has_cpu = cg_read_cpu(R.host, &g->proc, &v->cpu) == 0;
}

/* Seeds the load averages of a group nobody sampled yet, so the very first
 * read of loadavg in a new container already shows its load. */
static void seed_load(struct pf_group *g)
{
	struct pf_load_sample s;
	bool need;

	pthread_mutex_lock(&g->lock);
	need = !g->load.seeded;
	pthread_mutex_unlock(&g->lock);
	if (need && pf_load_sample(R.host, &g->proc, &s) == 0)
		reader_group_add_sample(g, &s);
}

/* Renders f for g with the group lock held (pure CPU: the view). */
static int render_locked(struct pf_group *g, enum pf_file f, const struct who *w,
			 struct pf_text *host_f, struct pf_text *host_online, struct pf_text **out)
{
	struct pf_host host = {
		.host_cpus = R.host_cpus,
		.clk_tck = R.clk_tck,
		.host_uptime = boot_seconds(),
	};
	struct pf_reader r = {
		.in_root_cgroup = g->root || g->no_limits,
		.has_memory = g->has_mem,
		.memory = g->mem,
		.has_cpu = g->has_cpu,
		.cpu = g->cpu,
		.io = g->io,
		.nio = g->nio,
		.has_init_start = w->has_init,
		.init_start = w->init_start,
	};
	char *data;
	size_t len;
	int err;

	if (r.in_root_cgroup && host_f) {
		/* Byte for byte the host's file: share the host snapshot. */
		pf_text_get(host_f);
		*out = host_f;
		return 0;
	}
	host.text[f] = host_f ? host_f->data : NULL;
	host.text[PF_CPU_ONLINE] = host_online ? host_online->data : NULL;
	if (R.loadavg && g->load.seeded) {
		r.has_load = true;
		memcpy(r.load, g->load.avg, sizeof(r.load));
		r.running = g->load.last.running;
		r.total = g->load.last.total;
		r.last_pid = g->load.last.last_pid;
	}
	if (f == PF_STAT) {
		if (!g->stat)
			g->stat = calloc(1, sizeof(*g->stat));
		r.stat_state = g->stat;
	}
	err = pf_render(f, &host, &r, &data, &len);
	if (err)
		return err;
	*out = text_new(data, len);
	return *out ? 0 : -ENOMEM;
}

static bool text_fresh(const struct pf_group *g, enum pf_file f, const struct who *w, uint64_t now)
{
	if (!g->text[f] || now - g->text_at[f] >= R.ttl)
		return false;
	/* uptime also depends on the reader's pid namespace. */
	return f != PF_UPTIME || g->text_init[f] == (w->has_init ? w->init_start : -1.0);
}

static int group_snapshot(struct pf_group *g, enum pf_file f, const struct who *w,
			  bool may_block, struct pf_text **out)
{
	struct pf_text *host_f = NULL, *host_online = NULL, *t = NULL, *old;
	struct vals *v = NULL;
	bool need_vals, need_io;
	uint64_t now = pf_now_ns();
	int err, nio = 0;
	struct cg_io_dev *io = NULL;

	__atomic_store_n(&g->last_used, now, __ATOMIC_RELAXED);
	pthread_mutex_lock(&g->lock);
	if (text_fresh(g, f, w, now)) {
		t = g->text[f];
		pf_text_get(t);
	}
	need_vals = !g->root && (!g->vals_at || now - g->vals_at >= R.ttl);
	need_io = !g->root && f == PF_DISKSTATS && (!g->io_at || now - g->io_at >= R.ttl);
	pthread_mutex_unlock(&g->lock);
	if (t) {
		*out = t;
		return 0;
	}
	if (!may_block)
		return -EWOULDBLOCK;

	/* Everything slow happens here, with no lock held. */
	if (need_vals) {
		v = malloc(sizeof(*v));
		if (!v)
			return -ENOMEM;
		read_vals(g, v);
	}
	if (need_io) {
		io = calloc(MAX_IO_DEVS, sizeof(*io));
		nio = io ? cg_read_io(R.host, &g->proc, io, MAX_IO_DEVS) : -ENOMEM;
	}
	if (f == PF_LOADAVG && R.loadavg && !g->root)
		seed_load(g);
	err = host_text(f, &host_f);
	if (err)
		log_debug("cannot read %s: %s", host_path[f], errno_name(-err));
	if (f != PF_CPU_ONLINE && host_text(PF_CPU_ONLINE, &host_online) < 0)
		host_online = NULL;
	else if (f == PF_CPU_ONLINE && host_f) {
		host_online = host_f;
		pf_text_get(host_online);
	}

	pthread_mutex_lock(&g->lock);
	if (v) {
		g->has_mem = v->has_mem;
		g->mem = v->mem;
		g->has_cpu = v->has_cpu;
		g->cpu = v->cpu;
		g->no_limits = !limited(v);
		g->vals_at = now;
	}
	if (io) {
		g->nio = nio > 0 ? nio : 0;
		memcpy(g->io, io, (size_t)g->nio * sizeof(*io));
		g->io_at = now;
	}
	err = render_locked(g, f, w, host_f, host_online, &t);
	if (!err) {
		old = g->text[f];
		g->text[f] = t;
		g->text_at[f] = now;
		g->text_init[f] = w->has_init ? w->init_start : -1.0;
		pf_text_get(t);
	} else {
		old = NULL;
	}
	pthread_mutex_unlock(&g->lock);

	pf_text_put(old);
	pf_text_put(host_f);
	pf_text_put(host_online);
	free(v);
	free(io);
	if (!err)
		*out = t;
	return err;
}

int reader_snapshot(pid_t pid, enum pf_file f, bool may_block, struct pf_text **out)
{
	struct who w;
	int err;

	if ((unsigned int)f >= PF_NFILES)
		return -EINVAL;
	err = reader_who(pid, may_block, &w);
	if (err == -EWOULDBLOCK)
		return err;
	if (err) {
		log_debug("reader %d: %s", (int)pid, errno_name(-err));
		return err == -ESRCH ? -EIO : err;
	}
	err = group_snapshot(w.g, f, &w, may_block, out);
	reader_group_put(w.g);
	return err;
}

/* ---- lifetime ---- */

void reader_sweep(void)
{
	uint64_t now = pf_now_ns();
	struct pf_group **pp, *g, *dead = NULL;

	for (unsigned int s = 0; s < PID_SLOTS; s++) {
		pthread_mutex_t *lock = &R.pid_lock[s % PID_STRIPES];
		struct pid_ent old = { .pidfd = -1 };

		pthread_mutex_lock(lock);
		if (R.pids[s].g && now - R.pids[s].at > PID_IDLE_NS) {
			old = R.pids[s];
			memset(&R.pids[s], 0, sizeof(R.pids[s]));
			R.pids[s].pidfd = -1;
		}
		pthread_mutex_unlock(lock);
		if (old.g)
			pid_ent_clear(&old);
	}
	pthread_mutex_lock(&R.groups_lock);
	for (int b = 0; b < GROUP_BUCKETS; b++) {
		for (pp = &R.groups[b]; (g = *pp);) {
			uint64_t used = __atomic_load_n(&g->last_used, __ATOMIC_RELAXED);

			/* refs == 1: only the table knows it, so no thread can
			 * reach it while we hold groups_lock. */
			if (__atomic_load_n(&g->refs, __ATOMIC_ACQUIRE) == 1 &&
			    now - used > GROUP_IDLE_NS) {
				*pp = g->next;
				g->next = dead;
				dead = g;
			} else {
				pp = &g->next;
			}
		}
	}
	pthread_mutex_unlock(&R.groups_lock);
	while ((g = dead)) {
		dead = g->next;
		group_free(g);
	}
}

int reader_init(const struct cg_host *host, unsigned int ttl_ms, bool loadavg)
{
	struct sysinfo si;
	long n;

	R.host = host;
	R.ttl = (uint64_t)ttl_ms * 1000000ULL;
	R.loadavg = loadavg;
	n = sysconf(_SC_NPROCESSORS_CONF);
	R.host_cpus = n > 0 ? (unsigned int)n : 1;
	n = sysconf(_SC_NPROCESSORS_ONLN);
	R.online_cpus = n > 0 ? (unsigned int)n : R.host_cpus;
	n = sysconf(_SC_CLK_TCK);
	R.clk_tck = n > 0 ? n : 100;
	if (sysinfo(&si) < 0)
		return -errno;
	R.host_mem = (uint64_t)si.totalram * si.mem_unit;
	for (int i = 0; i < PID_STRIPES; i++)
		pthread_mutex_init(&R.pid_lock[i], NULL);
	for (int i = 0; i < PID_SLOTS; i++)
		R.pids[i].pidfd = -1;
	R.root = group_alloc(NULL, 0, NULL, true);
	return R.root ? 0 : -ENOMEM;
}

void reader_fini(void)
{
	struct pf_group *g, *next;

	for (int i = 0; i < PID_SLOTS; i++)
		if (R.pids[i].g)
			pid_ent_clear(&R.pids[i]);
	for (int b = 0; b < GROUP_BUCKETS; b++) {
		for (g = R.groups[b]; g; g = next) {
			next = g->next;
			group_free(g);
		}
		R.groups[b] = NULL;
	}
	if (R.root)
		group_free(R.root);
	R.root = NULL;
	for (int f = 0; f < PF_NFILES; f++) {
		pf_text_put(R.host_text[f]);
		R.host_text[f] = NULL;
	}
}

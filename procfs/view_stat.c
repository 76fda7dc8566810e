/* proc/stat and proc/uptime from the cpu/cpuacct controllers.
 *
 * Per visible CPU: busy = the cgroup's usage on that CPU (v1
 * cpuacct.usage_percpu, the usage of CPUs the reader does not see spread
 * evenly over those it does; v2 has only totals, spread evenly), split into
 * user and system by the cgroup's user/system ratio; steal = CFS throttled
 * time spread evenly; idle = elapsed - busy - steal.  Elapsed is the time
 * since the container's init started (the origin of its uptime), else since
 * host boot, so each CPU line adds up to the wall clock and `top` computes
 * true percentages from two reads.
 *
 * The other lines: btime stays the host's (ps computes start times from it
 * and the per-process start times, which count from host boot); intr, ctxt
 * and softirq are not accounted per cgroup, so they are honestly zero (the
 * line layout, one column per IRQ, is kept); processes, procs_running and
 * procs_blocked come from the reader's pid namespace and cgroup when the
 * load sampler runs (processes = last pid allocated in the reader's pid
 * namespace, which counts forks since the container started), otherwise
 * they are the host's, as proc/loadavg is then. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "view.h"
#include "view_priv.h"

/* Columns of a cpu line, in the kernel's order. */
enum { F_USER, F_NICE, F_SYSTEM, F_IDLE, F_IOWAIT, F_IRQ, F_SOFTIRQ, F_STEAL, F_GUEST,
       F_GUEST_NICE, NF_MAX };

struct cpu_ticks {
	uint64_t user, system, steal, idle;
};

struct cpu_row {
	uint64_t v[NF_MAX];
};

static uint64_t scale(uint64_t v, uint64_t num, uint64_t den)
{
	return den ? (uint64_t)((double)v * (double)num / (double)den) : 0;
}

static uint64_t max_u64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

/* Seconds since the origin of the reader's clock: its init, else boot. */
static double elapsed_sec(const struct pf_host *h, const struct pf_reader *r)
{
	double s = h->host_uptime - (r->has_init_start ? r->init_start : 0);

	return s > 0 ? s : 0;
}

/* Usage on the CPUs the reader does not see (v1 per-CPU counts). */
static uint64_t hidden_ns(const struct cg_cpu *cpu, const struct pf_cpus *c)
{
	uint64_t sum = 0;
	unsigned int i;

	for (i = 0; i < CG_MAX_CPUS; i++)
		if (c->rank[i] < 0)
			sum += cpu->percpu_ns[i];
	return sum;
}

/* Busy ns per visible CPU into busy[]; false when the cgroup told nothing. */
static bool cg_busy(const struct pf_reader *r, const struct pf_cpus *c, uint64_t *busy)
{
	const struct cg_cpu *cpu = &r->cpu;
	uint64_t total, hidden;
	unsigned int k;

	if (!r->has_cpu)
		return false;
	if (cpu->has_percpu) {
		/* A quota cut hides CPUs the tasks still run on; their time
		 * must still show, or a busy container would look idle. */
		hidden = hidden_ns(cpu, c) / c->n;
		for (k = 0; k < c->n; k++)
			busy[k] = cpu->percpu_ns[c->id[k]] + hidden;
		return true;
	}
	if (cpu->has_usage)
		total = cpu->usage_ns;
	else if (cpu->has_userSys)
		total = cpu->user_ns + cpu->system_ns;
	else
		return false;
	for (k = 0; k < c->n; k++)
		busy[k] = total / c->n;
	return true;
}

/* Raw (not yet fixed-up) ticks per visible CPU; false: no cgroup usage. */
static bool cg_ticks(const struct pf_host *h, const struct pf_reader *r, const struct pf_cpus *c,
		     struct cpu_ticks *t, uint64_t *busy)
{
	const struct cg_cpu *cpu = &r->cpu;
	long hz = pf_hz(h);
	double ufrac = 1.0;
	uint64_t steal = 0, bt;
	unsigned int k;

	if (!cg_busy(r, c, busy))
		return false;
	/* No user/system split known: call it all user. */
	if (cpu->has_userSys && cpu->user_ns + cpu->system_ns)
		ufrac = (double)cpu->user_ns / ((double)cpu->user_ns + (double)cpu->system_ns);
	if (cpu->has_throttled)
		steal = pf_ns_to_ticks(cpu->throttled_ns / c->n, hz);
	for (k = 0; k < c->n; k++) {
		bt = pf_ns_to_ticks(busy[k], hz);
		t[k].user = (uint64_t)((double)bt * ufrac + 0.5);
		if (t[k].user > bt)
			t[k].user = bt;
		t[k].system = bt - t[k].user;
		t[k].steal = steal;
		t[k].idle = 0;
	}
	return true;
}

/* Keeps one CPU's counts within the elapsed time: busy at most all of it,
 * steal at most the rest. */
static void fit_elapsed(struct cpu_ticks *x, uint64_t elapsed)
{
	uint64_t busy = x->user + x->system;

	if (busy > elapsed) {
		x->user = scale(x->user, elapsed, busy);
		x->system = elapsed - x->user;
		busy = elapsed;
	}
	if (x->steal > elapsed - busy)
		x->steal = elapsed - busy;
}

/* Against the previous read (index k of st): nothing goes backwards, and
 * busy + steal grow by at most the wall time that passed (wall_ticks). */
static void fit_previous(struct cpu_ticks *x, const struct pf_stat_state *st, unsigned int k,
			 uint64_t wall_ticks)
{
	uint64_t du, ds, dst, grow;

	x->user = max_u64(x->user, st->last_user[k]);
	x->system = max_u64(x->system, st->last_system[k]);
	x->steal = max_u64(x->steal, st->last_steal[k]);
	du = x->user - st->last_user[k];
	ds = x->system - st->last_system[k];
	dst = x->steal - st->last_steal[k];
	grow = du + ds + dst;
	if (grow > wall_ticks) {
		/* The excess stays in the cgroup's counters and shows up
		 * at a later read, when the CPU was less than fully busy. */
		x->user = st->last_user[k] + scale(du, wall_ticks, grow);
		x->system = st->last_system[k] + scale(ds, wall_ticks, grow);
		x->steal = st->last_steal[k] + scale(dst, wall_ticks, grow);
	}
}

/* The final counters of one read.  st may be NULL (no history). */
static void fixup(const struct pf_host *h, const struct pf_reader *r, struct cpu_ticks *t,
		  unsigned int n, const struct pf_stat_state *st)
{
	long hz = pf_hz(h);
	uint64_t elapsed = (uint64_t)(elapsed_sec(h, r) * (double)hz), wall = 0, used;
	bool prev = st && st->valid;
	unsigned int k;

	if (prev && h->host_uptime > st->last_wall)
		wall = (uint64_t)((h->host_uptime - st->last_wall) * (double)hz);
	for (k = 0; k < n; k++) {
		fit_elapsed(&t[k], elapsed);
		if (prev)
			fit_previous(&t[k], st, k, wall);
		used = t[k].user + t[k].system + t[k].steal;
		t[k].idle = elapsed > used ? elapsed - used : 0;
		if (prev)
			t[k].idle = max_u64(t[k].idle, st->last_idle[k]);
	}
}

static void remember(struct pf_stat_state *st, const struct cpu_ticks *t, unsigned int n,
		     double wall)
{
	unsigned int k;

	for (k = 0; k < n; k++) {
		st->last_user[k] = t[k].user;
		st->last_system[k] = t[k].system;
		st->last_steal[k] = t[k].steal;
		st->last_idle[k] = t[k].idle;
	}
	st->last_wall = wall;
	st->valid = true;
}

/* The reader's fixed-up ticks into t[c->n]; PF_HOST_TEXT when the cgroup
 * gives no usage; 0 or -ENOMEM.  update: advance r->stat_state (stat
 * does; uptime only looks, so reading uptime never disturbs top). */
static int reader_ticks(const struct pf_host *h, const struct pf_reader *r,
			const struct pf_cpus *c, struct cpu_ticks *t, bool update)
{
	uint64_t *busy = malloc(c->n * sizeof(*busy));
	bool ok;

	if (!busy)
		return -ENOMEM;
	ok = cg_ticks(h, r, c, t, busy);
	free(busy);
	if (!ok)
		return PF_HOST_TEXT;
	fixup(h, r, t, c->n, r->stat_state);
	if (update && r->stat_state)
		remember(r->stat_state, t, c->n, h->host_uptime);
	return 0;
}

/* Numbers after the first word of a stat line into v; returns how many. */
static unsigned int line_numbers(const char *p, size_t len, uint64_t *v, unsigned int max)
{
	const char *end = p + len;
	unsigned int n = 0;

	while (p < end && *p != ' ' && *p != '\t')
		p++;
	while (n < max && pf_scan_u64(&p, end, &v[n]))
		n++;
	return n;
}

/* Host CPU id of a "cpuN ..." line, or -1 (also for the aggregate line). */
static long stat_cpu_id(const char *p, size_t len)
{
	const char *q = p + 3;
	uint64_t id;

	if (len < 4 || memcmp(p, "cpu", 3) || q[0] < '0' || q[0] > '9')
		return -1;
	if (!pf_scan_u64(&q, p + len, &id) || id >= CG_MAX_CPUS)
		return -1;
	return (long)id;
}

/* Without cgroup usage: the host's lines of the visible CPUs, renumbered
 * (they do describe the CPUs the container runs on). */
static void host_rows(const char *text, const struct pf_cpus *c, struct cpu_row *rows)
{
	const char *p, *next;
	size_t len;
	long id;

	for (p = text; p; p = next) {
		len = pf_line(p, &next);
		id = stat_cpu_id(p, len);
		if (id >= 0 && c->rank[id] >= 0)
			line_numbers(p, len, rows[c->rank[id]].v, NF_MAX);
	}
}

static void tick_rows(const struct cpu_ticks *t, unsigned int n, unsigned int nf,
		      struct cpu_row *rows)
{
	unsigned int k;

	for (k = 0; k < n; k++) {
		rows[k].v[F_USER] = t[k].user;
		rows[k].v[F_SYSTEM] = t[k].system;
		rows[k].v[F_IDLE] = t[k].idle;
		/* Kernels before 2.6.11 have no steal column. */
		if (nf > F_STEAL)
			rows[k].v[F_STEAL] = t[k].steal;
		else
			rows[k].v[F_IDLE] += t[k].steal;
	}
}

static void put_row(struct pf_buf *b, const char *name, const struct cpu_row *row, unsigned int nf)
{
	unsigned int i;

	pf_buf_puts(b, name);
	for (i = 0; i < nf; i++) {
		pf_buf_add(b, " ", 1);
		pf_buf_u64(b, row->v[i], 0);
	}
	pf_buf_add(b, "\n", 1);
}

static void put_cpu_lines(struct pf_buf *b, const struct cpu_row *rows, unsigned int n,
			  unsigned int nf)
{
	struct cpu_row sum = { { 0 } };
	char name[16];
	unsigned int k, i;

	for (k = 0; k < n; k++)
		for (i = 0; i < NF_MAX; i++)
			sum.v[i] += rows[k].v[i];
	put_row(b, "cpu ", &sum, nf);
	for (k = 0; k < n; k++) {
		snprintf(name, sizeof(name), "cpu%u", k);
		put_row(b, name, &rows[k], nf);
	}
}

/* "intr 5096623 0 14 ..." -> "intr 0 0 0 ...": same columns, all zero. */
static void put_zeroed(struct pf_buf *b, const char *p, size_t len)
{
	static const char zeros[] = " 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0";
	const char *end = p + len, *q = p;
	size_t n = 0, chunk;

	while (q < end && *q != ' ')
		q++;
	pf_buf_add(b, p, (size_t)(q - p));
	/* One column per blank-preceded field. */
	for (; q < end; q++)
		n += *q == ' ' && q + 1 < end && q[1] != ' ';
	for (; n; n -= chunk) {
		chunk = n < (sizeof(zeros) - 1) / 2 ? n : (sizeof(zeros) - 1) / 2;
		pf_buf_add(b, zeros, chunk * 2);
	}
	pf_buf_add(b, "\n", 1);
}

/* Lines other than the cpu ones; false: copy the host's. */
static bool put_other(struct pf_buf *b, const struct pf_reader *r, const char *p, size_t len)
{
	if (pf_line_key(p, len, "intr") || pf_line_key(p, len, "softirq")) {
		put_zeroed(b, p, len);
	} else if (pf_line_key(p, len, "ctxt")) {
		pf_buf_puts(b, "ctxt 0\n");
	} else if (r->has_load && pf_line_key(p, len, "processes")) {
		pf_buf_printf(b, "processes %ld\n", (long)(r->last_pid > 0 ? r->last_pid : 0));
	} else if (r->has_load && pf_line_key(p, len, "procs_running")) {
		pf_buf_printf(b, "procs_running %u\n", r->running);
	} else if (r->has_load && pf_line_key(p, len, "procs_blocked")) {
		pf_buf_printf(b, "procs_blocked %u\n", r->blocked);
	} else {
		return false;
	}
	return true;
}

static void put_stat(struct pf_buf *b, const struct pf_reader *r, const char *text,
		     const struct cpu_row *rows, unsigned int n, unsigned int nf)
{
	const char *p, *next;
	size_t len;

	for (p = text; p; p = next) {
		len = pf_line(p, &next);
		if (pf_line_key(p, len, "cpu")) {
			put_cpu_lines(b, rows, n, nf);
		} else if (stat_cpu_id(p, len) >= 0) {
			continue; /* replaced by put_cpu_lines */
		} else if (!put_other(b, r, p, len)) {
			pf_buf_add(b, p, len);
			if (p[len] == '\n')
				pf_buf_add(b, "\n", 1);
		}
	}
}

/* Columns of the host's aggregate cpu line (10 on kernels since 2.6.33). */
static unsigned int stat_columns(const char *text)
{
	uint64_t v[NF_MAX];
	unsigned int nf = NF_MAX;
	const char *p, *next;
	size_t len;

	for (p = text; p; p = next) {
		len = pf_line(p, &next);
		if (pf_line_key(p, len, "cpu")) {
			nf = line_numbers(p, len, v, NF_MAX);
			break;
		}
	}
	return nf >= 4 ? nf : 4;
}

int pf_render_stat(const struct pf_host *h, const struct pf_reader *r, struct pf_buf *b)
{
	const char *text = h->text[PF_STAT];
	struct cpu_ticks *t = NULL;
	struct cpu_row *rows;
	struct pf_cpus c;
	unsigned int nf;
	int ret;

	pf_visible_cpus(h, r, &c);
	if (!c.limited)
		return PF_HOST_TEXT;
	if (!text)
		return -EIO;
	nf = stat_columns(text);
	rows = calloc(c.n, sizeof(*rows));
	t = calloc(c.n, sizeof(*t));
	ret = rows && t ? reader_ticks(h, r, &c, t, true) : -ENOMEM;
	if (ret == 0)
		tick_rows(t, c.n, nf, rows);
	else if (ret == PF_HOST_TEXT)
		host_rows(text, &c, rows);
	if (ret >= 0) {
		put_stat(b, r, text, rows, c.n, nf);
		ret = 0;
	}
	free(rows);
	free(t);
	return ret;
}

/* The host's idle time (second field of its uptime). */
static double host_idle(const struct pf_host *h)
{
	const char *p = h->text[PF_UPTIME];
	char *end;
	double idle;

	if (!p)
		return 0;
	strtod(p, &end);
	idle = strtod(end, NULL);
	return idle > 0 ? idle : 0;
}

/* Idle seconds summed over the visible CPUs, as stat shows them; when the
 * CPU files are the host's or the usage is unknown, the host's idle share
 * applied to the container's uptime. */
static int uptime_idle(const struct pf_host *h, const struct pf_reader *r,
		       const struct pf_cpus *c, double up, double *idle)
{
	struct cpu_ticks *t;
	double frac, sum = 0;
	unsigned int k;
	int ret = PF_HOST_TEXT;
	long hz;

	if (c->limited) {
		t = calloc(c->n, sizeof(*t));
		if (!t)
			return -ENOMEM;
		ret = reader_ticks(h, r, c, t, false);
		for (k = 0; ret == 0 && k < c->n; k++)
			sum += (double)t[k].idle;
		free(t);
		if (ret < 0)
			return ret;
		hz = pf_hz(h);
		*idle = sum / (double)hz;
	}
	if (ret == PF_HOST_TEXT) {
		frac = h->host_uptime > 0 ? host_idle(h) / (h->host_uptime * c->nonline) : 0;
		*idle = (frac < 1 ? frac : 1) * up * c->n;
	}
	return 0;
}

int pf_render_uptime(const struct pf_host *h, const struct pf_reader *r, struct pf_buf *b)
{
	double up, idle;
	struct pf_cpus c;
	int ret;

	if (!r->has_init_start)
		return PF_HOST_TEXT;
	up = elapsed_sec(h, r);
	pf_visible_cpus(h, r, &c);
	ret = uptime_idle(h, r, &c, up, &idle);
	if (ret)
		return ret;
	if (idle > up * c.n)
		idle = up * c.n;
	pf_buf_printf(b, "%.2f %.2f\n", up, idle);
	return 0;
}

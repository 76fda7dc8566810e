/* The visible CPU set, proc/cpuinfo and sys/devices/system/cpu/online.
 *
 * The reader sees the CPUs of its cpuset (only the online ones), cut to
 * ceil(quota/period) when a CFS quota is set, keeping the lowest host ids,
 * renumbered 0..n-1.  cpuinfo, stat, uptime and online all derive from
 * pf_visible_cpus, so `nproc`, `top` and a JVM agree on the count. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "view.h"
#include "view_priv.h"

#define CPU_WORDS (CG_MAX_CPUS / 64)

static bool bit_test(const uint64_t *bits, unsigned int i)
{
	return bits[i / 64] >> (i % 64) & 1;
}

static void bit_set(uint64_t *bits, unsigned int i)
{
	bits[i / 64] |= 1ULL << (i % 64);
}

static bool is_digit(char ch)
{
	return ch >= '0' && ch <= '9';
}

/* A kernel cpulist ("0-3,8\n") into bits.  Returns the CPU count, or -1
 * when the text is not a cpulist.  Local rather than cg_cpulist_parse so the
 * renderers link without common/cgroup.c. */
static int cpulist_parse(const char *s, uint64_t *bits)
{
	uint64_t a, b, i;
	int n = 0;

	memset(bits, 0, CPU_WORDS * sizeof(*bits));
	while (*s && *s != '\n') {
		if (!pf_scan_u64(&s, s + strlen(s), &a))
			return -1;
		b = a;
		if (*s == '-') {
			s++;
			if (!is_digit(*s) || !pf_scan_u64(&s, s + strlen(s), &b) || b < a)
				return -1;
		}
		for (i = a; i <= b && i < CG_MAX_CPUS; i++) {
			if (!bit_test(bits, (unsigned int)i)) {
				bit_set(bits, (unsigned int)i);
				n++;
			}
		}
		if (*s == ',')
			s++;
		else if (*s && *s != '\n')
			return -1;
	}
	return n;
}

/* The host's online CPUs: its cpu/online file, else 0..host_cpus-1. */
static unsigned int online_cpus(const struct pf_host *h, uint64_t *bits)
{
	unsigned int i, n;
	int ret = -1;

	if (h->text[PF_CPU_ONLINE])
		ret = cpulist_parse(h->text[PF_CPU_ONLINE], bits);
	if (ret > 0)
		return (unsigned int)ret;
	memset(bits, 0, CPU_WORDS * sizeof(*bits));
	n = h->host_cpus ? h->host_cpus : 1;
	if (n > CG_MAX_CPUS)
		n = CG_MAX_CPUS;
	for (i = 0; i < n; i++)
		bit_set(bits, i);
	return n;
}

/* ceil(quota/period) when a quota applies, else 0. */
static uint64_t quota_cpus(const struct pf_reader *r)
{
	const struct cg_cpu *c = &r->cpu;

	if (!r->has_cpu || !c->has_quota || c->quota_us <= 0 || !c->period_us)
		return 0;
	return ((uint64_t)c->quota_us + c->period_us - 1) / c->period_us;
}

void pf_visible_cpus(const struct pf_host *h, const struct pf_reader *r, struct pf_cpus *c)
{
	uint64_t online[CPU_WORDS], vis[CPU_WORDS], any = 0, q, w;
	unsigned int i;

	c->nonline = online_cpus(h, online);
	memcpy(vis, online, sizeof(vis));
	if (r->has_cpu && r->cpu.has_cpuset) {
		for (i = 0; i < CPU_WORDS; i++) {
			vis[i] &= r->cpu.cpuset[i];
			any |= vis[i];
		}
		/* A cpuset of only offline CPUs cannot run anything; seeing
		 * no CPU at all would break readers, so fall back. */
		if (!any)
			memcpy(vis, online, sizeof(vis));
	}
	c->n = 0;
	memset(c->rank, 0xff, sizeof(c->rank)); /* all -1: hidden */
	for (i = 0; i < CPU_WORDS; i++)
		for (w = vis[i]; w; w &= w - 1)
			c->id[c->n++] = (uint16_t)(i * 64 + (unsigned int)__builtin_ctzll(w));
	q = quota_cpus(r);
	if (q && q < c->n)
		c->n = (unsigned int)q;
	for (i = 0; i < c->n; i++)
		c->rank[c->id[i]] = (int16_t)i;
	/* A quota below the online CPUs limits the container even when the
	 * CPU count is the host's (quota 1.5 on 2 CPUs): stat then comes
	 * from the cgroup, while cpuinfo and online come out the host's. */
	c->limited = c->n < c->nonline ||
		     (q && (uint64_t)r->cpu.quota_us < (uint64_t)c->nonline * r->cpu.period_us);
}

/* A block's host CPU id when its first line is "processor\t: N"; *num and
 * *num_end delimit N.  -1: not a CPU block (a preamble or trailer some
 * architectures print, kept as is). */
static long cpuinfo_block_cpu(const char *p, const char **num, const char **num_end)
{
	const char *end = strchr(p, '\n');
	uint64_t v;

	if (!end)
		end = p + strlen(p);
	if (!pf_line_key(p, (size_t)(end - p), "processor"))
		return -1;
	p += strlen("processor");
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	if (p >= end || *p != ':')
		return -1;
	p++;
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	*num = p;
	if (!pf_scan_u64(&p, end, &v) || v >= CG_MAX_CPUS)
		return -1;
	*num_end = p;
	return (long)v;
}

/* End of the block at p: past its lines and the blank lines that follow. */
static const char *cpuinfo_block_end(const char *p)
{
	bool blank, seen_blank = false;
	const char *nl;

	while (*p) {
		nl = strchr(p, '\n');
		blank = nl == p;
		if (!blank && seen_blank)
			break;
		seen_blank |= blank;
		p = nl ? nl + 1 : p + strlen(p);
	}
	return p;
}

int pf_render_cpuinfo(const struct pf_host *h, const struct pf_reader *r, struct pf_buf *b)
{
	const char *p, *end, *num, *num_end;
	struct pf_cpus c;
	long cpu;

	pf_visible_cpus(h, r, &c);
	if (!c.limited)
		return PF_HOST_TEXT;
	if (!h->text[PF_CPUINFO])
		return -EIO;
	for (p = h->text[PF_CPUINFO]; *p; p = end) {
		end = cpuinfo_block_end(p);
		cpu = cpuinfo_block_cpu(p, &num, &num_end);
		if (cpu < 0) {
			pf_buf_add(b, p, (size_t)(end - p));
		} else if (c.rank[cpu] >= 0) {
			/* Same block, renumbered; fields such as apicid
			 * and core id stay the host's (they are ids). */
			pf_buf_add(b, p, (size_t)(num - p));
			pf_buf_printf(b, "%d", c.rank[cpu]);
			pf_buf_add(b, num_end, (size_t)(end - num_end));
		}
	}
	return 0;
}

/* Renumbered CPUs are always the range 0..n-1. */
int pf_render_online(const struct pf_host *h, const struct pf_reader *r, struct pf_buf *b)
{
	struct pf_cpus c;

	pf_visible_cpus(h, r, &c);
	if (!c.limited && h->text[PF_CPU_ONLINE])
		return PF_HOST_TEXT;
	if (c.n == 1)
		pf_buf_puts(b, "0\n");
	else
		pf_buf_printf(b, "0-%u\n", c.n - 1);
	return 0;
}

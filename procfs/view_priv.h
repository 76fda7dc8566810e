/* Internals shared by the view_*.c renderers: a growable output buffer,
 * line and number scanning over host text, and the visible-CPU set that
 * cpuinfo, stat, uptime and cpu/online must agree on. */
#ifndef STRATA_PROCFS_VIEW_PRIV_H
#define STRATA_PROCFS_VIEW_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "view.h"

/* Output under construction.  The first failure is remembered in err and
 * every later append is a no-op, so renderers check once, at the end. */
struct pf_buf {
	char *s;
	size_t len, cap;
	int err;
};

void pf_buf_init(struct pf_buf *b, size_t hint);
void pf_buf_add(struct pf_buf *b, const char *s, size_t n);
void pf_buf_puts(struct pf_buf *b, const char *s);
void pf_buf_printf(struct pf_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* v in decimal, right-aligned in at least width columns (printf's "%*lu",
 * without printf's cost: meminfo and stat print dozens of numbers). */
void pf_buf_u64(struct pf_buf *b, uint64_t v, unsigned int width);
/* Hands the text over (*out, *len) or frees it and returns the error. */
int pf_buf_finish(struct pf_buf *b, char **out, size_t *len);

/* *out = a malloc'ed copy of text; -EIO when text is NULL (host unreadable). */
int pf_copy_host(const char *text, char **out, size_t *len);

/* Length of the line at p without its '\n'; *next is the following line, or
 * NULL when p's line was the last. */
size_t pf_line(const char *p, const char **next);
/* True when the line (p, len) starts with word followed by a blank or ':'
 * or the end of the line ("cpu" does not match "cpu0"). */
bool pf_line_key(const char *p, size_t len, const char *word);
/* Parses the unsigned decimal at *p after skipping blanks (not newlines);
 * advances *p past it. False when there is none. */
bool pf_scan_u64(const char **p, const char *end, uint64_t *v);

/* ns -> USER_HZ ticks without overflowing 64 bits. */
uint64_t pf_ns_to_ticks(uint64_t ns, long hz);
/* clk_tck, with the usual 100 when the caller left it unset. */
long pf_hz(const struct pf_host *h);

/* The CPUs the reader sees, by host id, ascending; visible index k is what
 * the reader knows as CPU k in every file. */
struct pf_cpus {
	unsigned int n;       /* visible CPUs, >= 1 */
	unsigned int nonline; /* host online CPUs, >= 1 */
	/* Fewer CPUs than the host, or a CFS quota below the online CPUs:
	 * the CPU files are virtualized.  False: they are the host's. */
	bool limited;
	uint16_t id[CG_MAX_CPUS];  /* visible index -> host id */
	int16_t rank[CG_MAX_CPUS]; /* host id -> visible index, -1: hidden */
};

void pf_visible_cpus(const struct pf_host *h, const struct pf_reader *r, struct pf_cpus *c);

/* The renderers, after the root-cgroup short cut. */
int pf_render_meminfo(const struct pf_host *h, const struct pf_reader *r, struct pf_buf *b);
int pf_render_swaps(const struct pf_host *h, const struct pf_reader *r, struct pf_buf *b);
int pf_render_cpuinfo(const struct pf_host *h, const struct pf_reader *r, struct pf_buf *b);
int pf_render_online(const struct pf_host *h, const struct pf_reader *r, struct pf_buf *b);
int pf_render_stat(const struct pf_host *h, const struct pf_reader *r, struct pf_buf *b);
int pf_render_uptime(const struct pf_host *h, const struct pf_reader *r, struct pf_buf *b);
int pf_render_loadavg(const struct pf_host *h, const struct pf_reader *r, struct pf_buf *b);
int pf_render_diskstats(const struct pf_host *h, const struct pf_reader *r, struct pf_buf *b);

/* Renderers return PF_HOST_TEXT to mean "serve the host file unchanged"
 * (the reader has no limit that concerns this file). */
#define PF_HOST_TEXT 1

#endif

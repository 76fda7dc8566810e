/* pf_render: dispatch to the per-file renderers, plus the text helpers they
 * share.  Nothing here does I/O: the daemon reads the host files and the
 * cgroup values, this code only turns them into the reader's files. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "view.h"
#include "view_priv.h"

const char *const pf_file_path[PF_NFILES] = {
	[PF_MEMINFO] = "proc/meminfo",
	[PF_CPUINFO] = "proc/cpuinfo",
	[PF_STAT] = "proc/stat",
	[PF_UPTIME] = "proc/uptime",
	[PF_LOADAVG] = "proc/loadavg",
	[PF_DISKSTATS] = "proc/diskstats",
	[PF_SWAPS] = "proc/swaps",
	[PF_CPU_ONLINE] = "sys/devices/system/cpu/online",
};

static bool pf_buf_reserve(struct pf_buf *b, size_t extra)
{
	size_t need, cap;
	char *s;

	if (b->err)
		return false;
	if (extra > SIZE_MAX / 2 - b->len) {
		b->err = -ENOMEM;
		return false;
	}
	need = b->len + extra + 1; /* always room for the NUL */
	if (need <= b->cap)
		return true;
	cap = b->cap ? b->cap : 256;
	while (cap < need)
		cap *= 2;
	s = realloc(b->s, cap);
	if (!s) {
		b->err = -ENOMEM;
		return false;
	}
	b->s = s;
	b->cap = cap;
	return true;
}

void pf_buf_init(struct pf_buf *b, size_t hint)
{
	b->s = NULL;
	b->len = 0;
	b->cap = 0;
	b->err = 0;
	if (pf_buf_reserve(b, hint))
		b->s[0] = '\0';
}

void pf_buf_add(struct pf_buf *b, const char *s, size_t n)
{
	if (!pf_buf_reserve(b, n))
		return;
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
}

void pf_buf_puts(struct pf_buf *b, const char *s)
{
	pf_buf_add(b, s, strlen(s));
}

void pf_buf_printf(struct pf_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	/* Most lines fit in what is left; format twice only when not. */
	if (!pf_buf_reserve(b, 64))
		return;
	va_start(ap, fmt);
	n = vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->err = -EINVAL;
		return;
	}
	if ((size_t)n >= b->cap - b->len) {
		if (!pf_buf_reserve(b, (size_t)n))
			return;
		va_start(ap, fmt);
		vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
	}
	b->len += (size_t)n;
}

void pf_buf_u64(struct pf_buf *b, uint64_t v, unsigned int width)
{
	char tmp[20];
	unsigned int n = 0, pad;

	do {
		tmp[sizeof(tmp) - ++n] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	pad = width > n ? width - n : 0;
	if (!pf_buf_reserve(b, pad + n))
		return;
	memset(b->s + b->len, ' ', pad);
	memcpy(b->s + b->len + pad, tmp + sizeof(tmp) - n, n);
	b->len += pad + n;
	b->s[b->len] = '\0';
}

int pf_buf_finish(struct pf_buf *b, char **out, size_t *len)
{
	if (!b->err)
		pf_buf_reserve(b, 0); /* an empty file still gets its NUL */
	if (b->err) {
		free(b->s);
		b->s = NULL;
		return b->err;
	}
	*out = b->s;
	*len = b->len;
	b->s = NULL;
	return 0;
}

int pf_copy_host(const char *text, char **out, size_t *len)
{
	size_t n;
	char *s;

	if (!text)
		return -EIO;
	n = strlen(text);
	s = malloc(n + 1);
	if (!s)
		return -ENOMEM;
	memcpy(s, text, n + 1);
	*out = s;
	*len = n;
	return 0;
}

size_t pf_line(const char *p, const char **next)
{
	const char *nl = strchr(p, '\n');

	if (!nl) {
		*next = NULL;
		return strlen(p);
	}
	*next = nl[1] ? nl + 1 : NULL;
	return (size_t)(nl - p);
}

bool pf_line_key(const char *p, size_t len, const char *word)
{
	size_t n = strlen(word);

	if (len < n || memcmp(p, word, n))
		return false;
	return len == n || p[n] == ' ' || p[n] == '\t' || p[n] == ':';
}

bool pf_scan_u64(const char **p, const char *end, uint64_t *v)
{
	const char *s = *p;
	uint64_t x = 0;

	while (s < end && (*s == ' ' || *s == '\t'))
		s++;
	if (s >= end || *s < '0' || *s > '9')
		return false;
	for (; s < end && *s >= '0' && *s <= '9'; s++) {
		/* Saturate rather than wrap: a bogus huge value stays huge. */
		if (x > (UINT64_MAX - 9) / 10)
			x = UINT64_MAX;
		else
			x = x * 10 + (uint64_t)(*s - '0');
	}
	*v = x;
	*p = s;
	return true;
}

uint64_t pf_ns_to_ticks(uint64_t ns, long hz)
{
	const uint64_t nsec = 1000000000ULL;

	return ns / nsec * (uint64_t)hz + ns % nsec * (uint64_t)hz / nsec;
}

long pf_hz(const struct pf_host *h)
{
	return h->clk_tck > 0 ? h->clk_tck : 100;
}

static int render(enum pf_file f, const struct pf_host *h, const struct pf_reader *r,
		  struct pf_buf *b)
{
	switch (f) {
	case PF_MEMINFO:
		return pf_render_meminfo(h, r, b);
	case PF_CPUINFO:
		return pf_render_cpuinfo(h, r, b);
	case PF_STAT:
		return pf_render_stat(h, r, b);
	case PF_UPTIME:
		return pf_render_uptime(h, r, b);
	case PF_LOADAVG:
		return pf_render_loadavg(h, r, b);
	case PF_DISKSTATS:
		return pf_render_diskstats(h, r, b);
	case PF_SWAPS:
		return pf_render_swaps(h, r, b);
	case PF_CPU_ONLINE:
		return pf_render_online(h, r, b);
	case PF_NFILES:
		break;
	}
	return -EINVAL;
}

int pf_render(enum pf_file f, const struct pf_host *host, const struct pf_reader *r,
	      char **out, size_t *len)
{
	struct pf_buf b;
	int ret;

	if (!host || !r || !out || !len || (unsigned int)f >= PF_NFILES)
		return -EINVAL;
	/* The root cgroup has no limits: byte for byte the host's file. */
	if (r->in_root_cgroup)
		return pf_copy_host(host->text[f], out, len);

	pf_buf_init(&b, host->text[f] ? strlen(host->text[f]) + 64 : 256);
	ret = render(f, host, r, &b);
	if (ret) {
		free(b.s);
		if (ret == PF_HOST_TEXT)
			return pf_copy_host(host->text[f], out, len);
		return ret;
	}
	return pf_buf_finish(&b, out, len);
}

/* proc/meminfo and proc/swaps from the memory controller.
 *
 * meminfo keeps every host line, in the host's order and column layout, and
 * rewrites the values the cgroup knows (the limit, usage and memory.stat
 * counters).  The lines the cgroup cannot know (CommitLimit, Vmalloc*,
 * HugePages_*, DirectMap*, ...) stay the host's, as lxcfs does: procps,
 * busybox and htop look lines up by key and some insist on finding them. */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "view.h"
#include "view_priv.h"

enum mem_key {
	MK_TOTAL,
	MK_FREE,
	MK_AVAIL,
	MK_BUFFERS,
	MK_CACHED,
	MK_SWAPCACHED,
	MK_ACTIVE,
	MK_INACTIVE,
	MK_ACTIVE_ANON,
	MK_INACTIVE_ANON,
	MK_ACTIVE_FILE,
	MK_INACTIVE_FILE,
	MK_UNEVICTABLE,
	MK_SWAPTOTAL,
	MK_SWAPFREE,
	MK_DIRTY,
	MK_WRITEBACK,
	MK_ANONPAGES,
	MK_MAPPED,
	MK_SHMEM,
	MK_KRECLAIMABLE,
	MK_SLAB,
	MK_SRECLAIMABLE,
	MK_SUNRECLAIM,
	MK_KERNELSTACK,
	MK_PAGETABLES,
	MK_N,
};

/* Keys with their lengths: lines are matched on the length first. */
#define KEY(s) { s, sizeof(s) - 1 }
static const struct {
	const char *name;
	size_t len;
} mem_key[MK_N] = {
	[MK_TOTAL] = KEY("MemTotal"),
	[MK_FREE] = KEY("MemFree"),
	[MK_AVAIL] = KEY("MemAvailable"),
	[MK_BUFFERS] = KEY("Buffers"),
	[MK_CACHED] = KEY("Cached"),
	[MK_SWAPCACHED] = KEY("SwapCached"),
	[MK_ACTIVE] = KEY("Active"),
	[MK_INACTIVE] = KEY("Inactive"),
	[MK_ACTIVE_ANON] = KEY("Active(anon)"),
	[MK_INACTIVE_ANON] = KEY("Inactive(anon)"),
	[MK_ACTIVE_FILE] = KEY("Active(file)"),
	[MK_INACTIVE_FILE] = KEY("Inactive(file)"),
	[MK_UNEVICTABLE] = KEY("Unevictable"),
	[MK_SWAPTOTAL] = KEY("SwapTotal"),
	[MK_SWAPFREE] = KEY("SwapFree"),
	[MK_DIRTY] = KEY("Dirty"),
	[MK_WRITEBACK] = KEY("Writeback"),
	[MK_ANONPAGES] = KEY("AnonPages"),
	[MK_MAPPED] = KEY("Mapped"),
	[MK_SHMEM] = KEY("Shmem"),
	[MK_KRECLAIMABLE] = KEY("KReclaimable"),
	[MK_SLAB] = KEY("Slab"),
	[MK_SRECLAIMABLE] = KEY("SReclaimable"),
	[MK_SUNRECLAIM] = KEY("SUnreclaim"),
	[MK_KERNELSTACK] = KEY("KernelStack"),
	[MK_PAGETABLES] = KEY("PageTables"),
};

#define SWAPS_HEADER "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n"

/* The container's memory figures, in kB, and its swap in use. */
struct mem_view {
	uint64_t kb[MK_N];
	uint64_t swap_used;
};

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

/* The key of a meminfo line ("Active(file)" of "Active(file):  12 kB"). */
static int mem_key_of(const char *line, size_t len)
{
	const char *colon = memchr(line, ':', len);
	size_t n;
	int k;

	if (!colon)
		return -1;
	n = (size_t)(colon - line);
	for (k = 0; k < MK_N; k++)
		if (mem_key[k].len == n && !memcmp(line, mem_key[k].name, n))
			return k;
	return -1;
}

/* The kB value of key in meminfo text. */
static bool meminfo_get(const char *text, const char *key, uint64_t *kb)
{
	const char *p, *next, *v;
	size_t len;

	for (p = text; p; p = next) {
		len = pf_line(p, &next);
		if (!pf_line_key(p, len, key))
			continue;
		v = memchr(p, ':', len);
		if (!v)
			return false;
		v++;
		return pf_scan_u64(&v, p + len, kb);
	}
	return false;
}

/* Everything memory.stat tells, in kB; zero when it was unreadable (the
 * container's share is unknown, and the host's figure would be a lie). */
static void mem_view_stat(const struct cg_memory *m, struct mem_view *v)
{
	uint64_t slab = m->slab ? m->slab : m->slab_reclaimable + m->slab_unreclaimable;

	if (!m->has_stat)
		return;
	v->kb[MK_CACHED] = m->file / 1024;
	v->kb[MK_SWAPCACHED] = m->swapcached / 1024;
	v->kb[MK_ACTIVE] = (m->active_anon + m->active_file) / 1024;
	v->kb[MK_INACTIVE] = (m->inactive_anon + m->inactive_file) / 1024;
	v->kb[MK_ACTIVE_ANON] = m->active_anon / 1024;
	v->kb[MK_INACTIVE_ANON] = m->inactive_anon / 1024;
	v->kb[MK_ACTIVE_FILE] = m->active_file / 1024;
	v->kb[MK_INACTIVE_FILE] = m->inactive_file / 1024;
	v->kb[MK_UNEVICTABLE] = m->unevictable / 1024;
	v->kb[MK_DIRTY] = m->dirty / 1024;
	v->kb[MK_WRITEBACK] = m->writeback / 1024;
	v->kb[MK_ANONPAGES] = m->anon / 1024;
	v->kb[MK_MAPPED] = m->mapped_file / 1024;
	v->kb[MK_SHMEM] = m->shmem / 1024;
	v->kb[MK_KRECLAIMABLE] = m->slab_reclaimable / 1024;
	v->kb[MK_SLAB] = slab / 1024;
	v->kb[MK_SRECLAIMABLE] = m->slab_reclaimable / 1024;
	v->kb[MK_SUNRECLAIM] = m->slab_unreclaimable / 1024;
	v->kb[MK_KERNELSTACK] = m->kernel_stack / 1024;
	v->kb[MK_PAGETABLES] = m->pagetables / 1024;
}

/* Memory in use: the usage counter, else what memory.stat adds up to. */
static uint64_t mem_usage_kb(const struct cg_memory *m)
{
	if (m->has_usage)
		return m->usage / 1024;
	if (m->has_stat)
		return (m->anon + m->file + m->slab) / 1024;
	return 0;
}

/* Swap: the swap limit, cut to the host's swap; swap limit 0 means none.
 * No swap limit (or swap accounting off) leaves the host's swap size,
 * which the container can indeed fill; used is the container's own. */
static void mem_view_swap(const struct cg_memory *m, uint64_t swap_lim, uint64_t host_swap,
			  struct mem_view *v)
{
	uint64_t total = min_u64(swap_lim, host_swap), used = 0;

	if (m->has_swap_usage)
		used = min_u64(m->swap_usage / 1024, total);
	v->kb[MK_SWAPTOTAL] = total;
	v->kb[MK_SWAPFREE] = total - used;
	v->swap_used = used;
}

/* Size column (kB) of a host swaps line; false for the header. */
static bool swap_size(const char *line, size_t len, uint64_t *size)
{
	const char *end = line + len, *p = line;
	int col;

	if (!len || pf_line_key(line, len, "Filename"))
		return false;
	/* Filename, Type, then Size (names have blanks escaped as \040). */
	for (col = 0; col < 2; col++) {
		while (p < end && *p != ' ' && *p != '\t')
			p++;
		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
	}
	return pf_scan_u64(&p, end, size);
}

/* The host's memory and swap size in kB.  Rendering swaps without the host
 * meminfo still works: the swap size is then the sum of the host's swaps,
 * and any finite memory limit counts as a limit. */
static void host_mem(const struct pf_host *h, uint64_t *total, uint64_t *swap)
{
	const char *p, *next;
	uint64_t size;
	size_t len;

	*swap = 0;
	if (h->text[PF_MEMINFO] && meminfo_get(h->text[PF_MEMINFO], "MemTotal", total)) {
		meminfo_get(h->text[PF_MEMINFO], "SwapTotal", swap);
		return;
	}
	*total = UINT64_MAX;
	for (p = h->text[PF_SWAPS]; p; p = next) {
		len = pf_line(p, &next);
		if (swap_size(p, len, &size))
			*swap += size;
	}
}

/* Computes the container's view.  PF_HOST_TEXT when no memory or swap limit
 * below the host's applies (such a reader sees the host file, as the issue
 * asks). */
static int mem_view(const struct pf_host *h, const struct pf_reader *r, struct mem_view *v)
{
	const struct cg_memory *m = &r->memory;
	uint64_t host_total, host_swap, lim = UINT64_MAX, swap_lim = UINT64_MAX;
	uint64_t total, usage, freekb, cache;

	if (!r->has_memory)
		return PF_HOST_TEXT;
	host_mem(h, &host_total, &host_swap);
	if (m->has_limit && m->limit != CG_UNLIMITED)
		lim = m->limit / 1024;
	if (m->has_swap_limit && m->swap_limit != CG_UNLIMITED)
		swap_lim = m->swap_limit / 1024;
	if (lim >= host_total && swap_lim >= host_swap)
		return PF_HOST_TEXT;

	memset(v, 0, sizeof(*v));
	mem_view_stat(m, v);
	total = min_u64(lim, host_total);
	usage = mem_usage_kb(m);
	freekb = total > usage ? total - usage : 0;
	/* What the kernel could reclaim without swapping: the page cache and
	 * reclaimable slab; a limit hit would evict exactly those first. */
	cache = v->kb[MK_ACTIVE_FILE] + v->kb[MK_INACTIVE_FILE] + v->kb[MK_SRECLAIMABLE];
	v->kb[MK_TOTAL] = total;
	v->kb[MK_FREE] = freekb;
	v->kb[MK_AVAIL] = min_u64(freekb + cache, total);
	v->kb[MK_BUFFERS] = 0; /* block-device cache is not charged as such */
	mem_view_swap(m, swap_lim, host_swap, v);
	return 0;
}

/* Writes "Key:   value kB" with a new value, laid out the way the kernel's
 * show_val_kb does: the key literal (padded to its column, 16 wide) then
 * the number in at least 8 columns.  The host line tells where the key
 * literal ends: its number ends at (key literal + max(8, its digits)), so a
 * 11-digit host value does not push the container's value to the right. */
static void mem_line(struct pf_buf *b, const char *line, size_t len, uint64_t kb)
{
	const char *end = line + len, *colon = memchr(line, ':', len), *p, *digits;
	size_t ndig, vend, keymin, width, keyend;

	if (!colon)
		goto verbatim;
	for (p = colon + 1; p < end && *p == ' '; p++)
		;
	for (digits = p; p < end && *p >= '0' && *p <= '9'; p++)
		;
	ndig = (size_t)(p - digits);
	if (!ndig)
		goto verbatim;
	vend = (size_t)(p - line);
	keymin = (size_t)(colon + 1 - line);
	width = ndig > 8 ? ndig : 8;
	if (vend >= keymin + width) {
		keyend = vend - width;
		width = 8;
	} else {
		/* Not the kernel's layout: keep the host's right edge. */
		keyend = keymin;
		width = vend - keymin;
	}
	pf_buf_add(b, line, keyend);
	pf_buf_u64(b, kb, (unsigned int)width);
	pf_buf_add(b, p, (size_t)(end - p));
	return;
verbatim:
	pf_buf_add(b, line, len);
}

int pf_render_meminfo(const struct pf_host *h, const struct pf_reader *r, struct pf_buf *b)
{
	const char *p, *next;
	struct mem_view v;
	size_t len;
	int ret, k;

	if (!h->text[PF_MEMINFO])
		return -EIO; /* nothing to keep the other lines from */
	ret = mem_view(h, r, &v);
	if (ret)
		return ret;
	for (p = h->text[PF_MEMINFO]; p; p = next) {
		len = pf_line(p, &next);
		k = mem_key_of(p, len);
		if (k >= 0)
			mem_line(b, p, len, v.kb[k]);
		else
			pf_buf_add(b, p, len);
		if (p[len] == '\n')
			pf_buf_add(b, "\n", 1);
	}
	return 0;
}

/* One host swap line, "<name><pad><type>\t<size>\t<used>\t<prio>", with
 * size and used replaced, in the kernel's swap_show layout (an extra tab
 * after numbers under 10^7 keeps the columns).  False: not such a line. */
static bool swap_line(struct pf_buf *b, const char *line, size_t len, uint64_t *size_left,
		      uint64_t *used_left)
{
	const char *tok[3], *e = line + len, *p;
	uint64_t size, used;
	int i;

	/* The last three blank-separated tokens are size, used, priority. */
	for (i = 2; i >= 0; i--) {
		while (e > line && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		while (e > line && e[-1] != ' ' && e[-1] != '\t')
			e--;
		if (e == line)
			return false;
		tok[i] = e;
	}
	p = tok[0];
	if (!pf_scan_u64(&p, line + len, &size))
		return false;
	p = tok[1];
	if (!pf_scan_u64(&p, line + len, &used))
		return false;
	size = min_u64(size, *size_left);
	used = min_u64(size, *used_left);
	*size_left -= size;
	*used_left -= used;
	if (!size)
		return true; /* the limit is used up by the swaps before */
	pf_buf_add(b, line, (size_t)(tok[0] - line));
	pf_buf_printf(b, "%" PRIu64 "\t%s%" PRIu64 "\t%s", size, size < 10000000 ? "\t" : "",
		      used, used < 10000000 ? "\t" : "");
	pf_buf_add(b, tok[2], (size_t)(line + len - tok[2]));
	pf_buf_add(b, "\n", 1);
	return true;
}

/* proc/swaps agrees with meminfo's SwapTotal/SwapFree: the host's swaps in
 * order, each cut to what is left of the swap limit, the container's swap
 * use filled in from the first; header only when the container has none. */
int pf_render_swaps(const struct pf_host *h, const struct pf_reader *r, struct pf_buf *b)
{
	uint64_t size_left, used_left;
	const char *p, *next;
	struct mem_view v;
	size_t len;
	int ret;

	ret = mem_view(h, r, &v);
	if (ret)
		return ret;
	pf_buf_puts(b, SWAPS_HEADER);
	size_left = v.kb[MK_SWAPTOTAL];
	used_left = v.swap_used;
	for (p = h->text[PF_SWAPS]; p && size_left; p = next) {
		len = pf_line(p, &next);
		if (!len || pf_line_key(p, len, "Filename"))
			continue;
		swap_line(b, p, len, &size_left, &used_left);
	}
	return 0;
}

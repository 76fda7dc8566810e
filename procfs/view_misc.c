/* proc/loadavg and proc/diskstats. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "view.h"
#include "view_priv.h"

/* Decayed averages from the sampler; a NaN or negative one (a sampler bug)
 * must not reach parsers that expect "d.dd". */
static double load_value(double v)
{
	return isfinite(v) && v > 0 ? v : 0;
}

int pf_render_loadavg(const struct pf_host *h, const struct pf_reader *r, struct pf_buf *b)
{
	(void)h;
	if (!r->has_load)
		return PF_HOST_TEXT; /* sampler off: the host's, as documented */
	pf_buf_printf(b, "%.2f %.2f %.2f %u/%u %ld\n", load_value(r->load[0]),
		      load_value(r->load[1]), load_value(r->load[2]), r->running, r->total,
		      (long)(r->last_pid > 0 ? r->last_pid : 0));
	return 0;
}

/* Diskstats columns after the name (Documentation/admin-guide/iostats.rst). */
enum {
	DS_READS,
	DS_READ_SECTORS = 2,
	DS_WRITES = 4,
	DS_WRITE_SECTORS = 6,
	DS_DISCARDS = 11,
	DS_DISCARD_SECTORS = 13,
	DS_MAX = 32,
};

static const struct cg_io_dev *io_find(const struct pf_reader *r, uint64_t major,
				       uint64_t minor)
{
	int i;

	for (i = 0; i < r->nio; i++)
		if (r->io[i].major == major && r->io[i].minor == minor)
			return &r->io[i];
	return NULL;
}

/* Column i of the container's line: completed I/Os and sectors (512-byte
 * units, whatever the device's block size) from the cgroup; merges, times
 * and queue depth are not accounted per cgroup, so 0. */
static uint64_t io_column(const struct cg_io_dev *d, unsigned int i)
{
	switch (i) {
	case DS_READS:
		return d->rios;
	case DS_READ_SECTORS:
		return d->rbytes / 512;
	case DS_WRITES:
		return d->wios;
	case DS_WRITE_SECTORS:
		return d->wbytes / 512;
	case DS_DISCARDS:
		return d->dios;
	case DS_DISCARD_SECTORS:
		return d->dbytes / 512;
	}
	return 0;
}

/* One host line "%4d %7d name f0 f1 ...": if the cgroup did I/O on that
 * device, its line with the cgroup's numbers and as many columns as the
 * host's kernel prints. */
static void disk_line(struct pf_buf *b, const struct pf_reader *r, const char *p, size_t len)
{
	const char *end = p + len, *name, *q = p;
	uint64_t major, minor, v;
	const struct cg_io_dev *d;
	unsigned int nf = 0, i;
	size_t nlen;

	if (!pf_scan_u64(&q, end, &major) || !pf_scan_u64(&q, end, &minor))
		return;
	while (q < end && (*q == ' ' || *q == '\t'))
		q++;
	name = q;
	while (q < end && *q != ' ' && *q != '\t')
		q++;
	nlen = (size_t)(q - name);
	d = io_find(r, major, minor);
	if (!nlen || !d)
		return;
	while (nf < DS_MAX && pf_scan_u64(&q, end, &v))
		nf++;
	pf_buf_printf(b, "%4" PRIu64 " %7" PRIu64 " %.*s", major, minor, (int)nlen, name);
	for (i = 0; i < nf; i++)
		pf_buf_printf(b, " %" PRIu64, io_column(d, i));
	pf_buf_add(b, "\n", 1);
}

/* Only the devices the cgroup has I/O stats for, named and ordered as in the
 * host's file; a device the host does not list is skipped (no name).
 * r->nio < 0: the cgroup's I/O stats are unknown: the host's file. */
int pf_render_diskstats(const struct pf_host *h, const struct pf_reader *r, struct pf_buf *b)
{
	const char *p, *next;
	size_t len;

	if (r->nio < 0)
		return PF_HOST_TEXT;
	for (p = h->text[PF_DISKSTATS]; p; p = next) {
		len = pf_line(p, &next);
		disk_line(b, r, p, len);
	}
	return 0;
}

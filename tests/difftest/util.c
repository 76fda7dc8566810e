/* difftest: PRNG, buffers, paths, name pools and a mount-safe rm -rf. */
#include "difftest.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* splitmix64: tiny, well mixed and fully reproducible across platforms. */
void rng_seed(struct rng *r, uint64_t seed)
{
	r->s = seed;
}

uint64_t rng_next(struct rng *r)
{
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

uint64_t rng_below(struct rng *r, uint64_t n)
{
	return rng_next(r) % n;
}

bool rng_pct(struct rng *r, unsigned int pct)
{
	return rng_below(r, 100) < pct;
}

void rng_fill(struct rng *r, unsigned char *buf, size_t len)
{
	uint64_t v = rng_next(r);
	size_t i;

	/* Text-like bytes with runs, so a diff in a hexdump is readable. */
	for (i = 0; i < len; i++) {
		if (i % 8 == 0)
			v = rng_next(r);
		buf[i] = (unsigned char)('a' + (v & 0x1f) % 26);
		v >>= 8;
	}
}

void die(const char *fmt, ...)
{
	va_list ap;

	/* fds closed under us by the watchdog's cleanup: not our error */
	while (atomic_load(&dying))
		pause();

	fprintf(stderr, "difftest: ERROR: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p)
		die("out of memory");
	return p;
}

void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p)
		die("out of memory");
	return p;
}

char *xstrdup(const char *s)
{
	char *p = strdup(s);

	if (!p)
		die("out of memory");
	return p;
}

char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		die("out of memory");
	return s;
}

const char *errname(int err)
{
	static __thread char num[32];
	const char *s;

	if (err == 0)
		return "0";
	s = strerrorname_np(err);
	if (s)
		return s;
	snprintf(num, sizeof(num), "errno%d", err);
	return num;
}

void buf_add(struct buf *b, const void *data, size_t len)
{
	if (b->len + len + 1 > b->cap) {
		b->cap = (b->len + len + 1) * 2;
		b->p = xrealloc(b->p, b->cap);
	}
	memcpy(b->p + b->len, data, len);
	b->len += len;
	b->p[b->len] = '\0';
}

void buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		die("out of memory");
	buf_add(b, s, (size_t)n);
	free(s);
}

void buf_reset(struct buf *b)
{
	b->len = 0;
	if (b->p)
		b->p[0] = '\0';
}

void buf_free(struct buf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

const char *buf_str(struct buf *b)
{
	if (!b->p)
		buf_add(b, "", 0);
	return b->p;
}

char *path_join(const char *dir, const char *name)
{
	if (strcmp(dir, ".") == 0)
		return xstrdup(name);
	return xasprintf("%s/%s", dir, name);
}

char *path_parent(const char *path)
{
	const char *slash = strrchr(path, '/');

	if (!slash)
		return xstrdup(".");
	return strndup(path, (size_t)(slash - path));
}

bool path_is_under(const char *path, const char *dir)
{
	size_t n = strlen(dir);

	if (strcmp(dir, ".") == 0)
		return true;
	return strncmp(path, dir, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

static int rm_one(const char *path, const struct stat *st, int flag,
		  struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP) {
		if (rmdir(path) < 0 && errno != ENOENT)
			return -1;
	} else if (unlink(path) < 0 && errno != ENOENT) {
		return -1;
	}
	return 0;
}

bool rm_tree(const char *path)
{
	/* FTW_MOUNT: a still-mounted mount point is left alone, never
	 * descended into (that would delete through the union). */
	return nftw(path, rm_one, 32, FTW_DEPTH | FTW_PHYS | FTW_MOUNT) == 0;
}

static const char *const names[] = {
	"a", "b", "c", "d", "e", "f", "g", "h", "dir", "file", "x y",
	"\xc3\xa4-utf8",
};

unsigned int avoid;

const char *pick_name(struct rng *r)
{
	static char longname[256];

	if (rng_pct(r, 1) && !(avoid & AVOID_LONGNAME)) {
		/* NAME_MAX bytes: the workdir temp names must still fit. */
		memset(longname, 'L', 255);
		longname[255] = '\0';
		return longname;
	}
	return names[rng_below(r, sizeof(names) / sizeof(names[0]))];
}

char *pick_target(struct rng *r)
{
	switch (rng_below(r, 7)) {
	case 0:
	case 1:
		return xstrdup(pick_name(r));
	case 2: {
		const char *n1 = pick_name(r);

		return xasprintf("%s/%s", n1, pick_name(r));
	}
	case 3:
		return xasprintf("./%s", pick_name(r));
	case 4:
		return xasprintf("/nonexistent-strata-difftest/%s", pick_name(r));
	case 5:
		return xstrdup("dangling-target");
	default: {
		/* long, odd bytes: targets must come back byte for byte */
		char t[300];
		size_t n = 100 + rng_below(r, 150), i;

		for (i = 0; i < n; i++)
			t[i] = (char)(i % 17 == 16 ? '/' : 'a' + rng_below(r, 26));
		t[n] = '\0';
		if (t[n - 1] == '/')
			t[n - 1] = 'z';
		return xstrdup(t);
	}
	}
}

mode_t pick_file_mode(struct rng *r)
{
	static const mode_t modes[] = {
		0644, 0644, 0644, 0600, 0755, 0444, 0400, 0666, 0000, 04755,
		02755, 0640,
	};

	return modes[rng_below(r, sizeof(modes) / sizeof(modes[0]))] &
	       (avoid & AVOID_SETID ? 01777 : 07777);
}

mode_t pick_dir_mode(struct rng *r)
{
	static const mode_t modes[] = {
		0755, 0755, 0755, 0700, 0555, 01777, 0750, 02775, 0711,
	};

	return modes[rng_below(r, sizeof(modes) / sizeof(modes[0]))] &
	       (avoid & AVOID_SETID ? 01777 : 07777);
}

static const char *const avoid_tab[] = { "setid", "longname", "noreplace", "exchange" };

unsigned int avoid_lookup(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(avoid_tab) / sizeof(avoid_tab[0]); i++)
		if (strcmp(name, avoid_tab[i]) == 0)
			return 1u << i;
	return 0;
}

const char *avoid_names(void)
{
	return "setid,longname,noreplace,exchange";
}

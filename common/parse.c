/* Small parsers shared by the Strata programs. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "parse.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- split_escaped ---------------------------------------------------- */

/* Only "\<sep>" and "\\" are escapes: any other backslash is data, so a
 * path such as "C:\dir" in a single-field value survives unchanged. */
static bool is_escape(const char *p, char sep)
{
	return p[0] == '\\' && (p[1] == sep || p[1] == '\\');
}

/* Length of the raw field at s (escapes included), up to the next
 * unescaped sep or the end of the string. */
static size_t raw_field_len(const char *s, char sep)
{
	const char *p = s;

	while (*p && *p != sep) {
		if (is_escape(p, sep))
			p++;
		p++;
	}
	return (size_t)(p - s);
}

static char *unescape_field(const char *s, size_t len, char sep)
{
	char *out = malloc(len + 1);
	char *d = out;
	size_t i = 0;

	if (!out)
		return NULL;
	while (i < len) {
		if (is_escape(s + i, sep))
			i++;
		*d++ = s[i++];
	}
	*d = '\0';
	return out;
}

static size_t count_fields(const char *s, char sep)
{
	size_t n = 1;

	for (;;) {
		s += raw_field_len(s, sep);
		if (!*s)
			return n;
		s++; /* the separator */
		n++;
	}
}

char **split_escaped(const char *s, char sep, size_t *count)
{
	size_t n, i;
	char **v;

	if (!s)
		s = "";
	n = count_fields(s, sep);
	v = calloc(n + 1, sizeof(*v));
	if (!v)
		return NULL;
	for (i = 0; i < n; i++) {
		size_t len = raw_field_len(s, sep);

		v[i] = unescape_field(s, len, sep);
		if (!v[i]) {
			strv_free(v);
			return NULL;
		}
		s += len + 1; /* past the separator; the last field ends at NUL */
	}
	if (count)
		*count = n;
	return v;
}

void strv_free(char **v)
{
	char **p;

	if (!v)
		return;
	for (p = v; *p; p++)
		free(*p);
	free(v);
}

/* ---- parse_size ------------------------------------------------------- */

/* log2 of the multiplier for a suffix letter; -1 if it is not one. */
static int suffix_shift(char c)
{
	static const char letters[] = "kmgtpe";
	const char *hit;

	if (!c)
		return -1;
	hit = strchr(letters, c | 0x20);
	return hit ? 10 * (int)(hit - letters + 1) : -1;
}

/* Accepts "", "b", "k", "kb", "kib" (any case) and the like.  The bare "b"
 * is there because people write "512b" meaning bytes. */
static int parse_suffix(const char *s, int *shift)
{
	*shift = 0;
	if (!*s)
		return 0;
	if (!strcasecmp(s, "b"))
		return 0;
	*shift = suffix_shift(s[0]);
	if (*shift < 0)
		return -1;
	s++;
	if (!*s || !strcasecmp(s, "b") || !strcasecmp(s, "ib"))
		return 0;
	return -1;
}

/* Decimal digits into *val, refusing overflow.  Returns the number of
 * digits consumed, or -1 on overflow. */
static int parse_digits(const char **sp, uint64_t *val)
{
	const char *s = *sp;
	uint64_t v = 0;

	while (*s >= '0' && *s <= '9') {
		unsigned int d = (unsigned int)(*s - '0');

		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
		s++;
	}
	*val = v;
	*sp = s;
	return 0;
}

/* floor(num / den * 2^shift) for num < den, by binary long division, so
 * that "1.5g" is exact without floating point or 128-bit arithmetic. */
static uint64_t scale_fraction(uint64_t num, uint64_t den, int shift)
{
	uint64_t q = 0;
	int i;

	for (i = 0; i < shift; i++) {
		num *= 2; /* num < den <= 10^18, so this cannot overflow */
		q = q * 2 + num / den;
		num %= den;
	}
	return q;
}

/* The fraction after the dot: at most 18 digits count (beyond that they
 * cannot change a 64-bit result), the rest must still be digits. */
static int parse_fraction(const char **sp, uint64_t *num, uint64_t *den)
{
	const char *s = *sp;
	int ndigits = 0;

	*num = 0;
	*den = 1;
	while (*s >= '0' && *s <= '9') {
		if (ndigits < 18) {
			*num = *num * 10 + (uint64_t)(*s - '0');
			*den *= 10;
		}
		ndigits++;
		s++;
	}
	*sp = s;
	return ndigits;
}

static int size_fail(int err)
{
	errno = err;
	return -1;
}

int parse_size(const char *s, uint64_t *bytes)
{
	uint64_t whole, num = 0, den = 1, frac;
	const char *p = s;
	int shift, nint, nfrac = 0;

	if (!s || !bytes)
		return size_fail(EINVAL);
	nint = (*p >= '0' && *p <= '9');
	if (parse_digits(&p, &whole) < 0)
		return size_fail(ERANGE);
	if (*p == '.') {
		p++;
		nfrac = parse_fraction(&p, &num, &den);
		if (!nfrac)
			return size_fail(EINVAL);
	}
	/* Rejects "", "-1", " 1", ".5" (we want a leading digit) and junk. */
	if (!nint || parse_suffix(p, &shift) < 0)
		return size_fail(EINVAL);
	/* A fraction of a byte means nothing. */
	if (nfrac && !shift)
		return size_fail(EINVAL);
	if (shift && whole > (UINT64_MAX >> shift))
		return size_fail(ERANGE);
	whole <<= shift;
	frac = scale_fraction(num, den, shift);
	if (whole > UINT64_MAX - frac)
		return size_fail(ERANGE);
	*bytes = whole + frac;
	return 0;
}

/* ---- parse_bool ------------------------------------------------------- */

int parse_bool(const char *s, bool *value)
{
	static const char *const yes[] = { "on", "yes", "true", "1" };
	static const char *const no[] = { "off", "no", "false", "0" };
	size_t i;

	if (!s || !value) {
		errno = EINVAL;
		return -1;
	}
	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (!strcasecmp(s, yes[i])) {
			*value = true;
			return 0;
		}
		if (!strcasecmp(s, no[i])) {
			*value = false;
			return 0;
		}
	}
	errno = EINVAL;
	return -1;
}

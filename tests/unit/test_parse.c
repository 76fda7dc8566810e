/* Unit tests for common/parse.c. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"

/* Splits s and checks the fields against the NULL-terminated want[]. */
static void check_split(const char *s, char sep, const char *const *want)
{
	size_t n = 12345, nwant = 0, i;
	char **v = split_escaped(s, sep, &n);

	while (want[nwant])
		nwant++;
	cr_assert_not_null(v, "split_escaped(\"%s\") failed", s);
	cr_assert_eq(n, nwant, "split_escaped(\"%s\"): %zu fields, want %zu", s, n, nwant);
	for (i = 0; i < nwant; i++)
		cr_assert_str_eq(v[i], want[i], "split_escaped(\"%s\") field %zu", s, i);
	cr_assert_null(v[n], "array not NULL-terminated for \"%s\"", s);
	strv_free(v);
}

#define SPLIT(s, sep, ...) check_split(s, sep, (const char *const[]){ __VA_ARGS__, NULL })

Test(split_escaped, plain_fields)
{
	SPLIT("a:b:c", ':', "a", "b", "c");
	SPLIT("/usr/lib:/opt", ':', "/usr/lib", "/opt");
}

Test(split_escaped, no_separator_is_one_field)
{
	SPLIT("/just/one/path", ':', "/just/one/path");
}

Test(split_escaped, empty_string_is_one_empty_field)
{
	SPLIT("", ':', "");
}

Test(split_escaped, empty_fields_kept)
{
	SPLIT("a::b", ':', "a", "", "b");
	SPLIT(":a", ':', "", "a");
	SPLIT("a:", ':', "a", "");
	SPLIT(":", ':', "", "");
	SPLIT(",,", ',', "", "", "");
}

Test(split_escaped, escaped_separator_is_data)
{
	SPLIT("a\\:b:c", ':', "a:b", "c");
	SPLIT("\\:", ':', ":");
	SPLIT("x\\:\\:y", ':', "x::y");
}

Test(split_escaped, escaped_backslash_is_one_backslash)
{
	/* "a\\:b": the backslash is escaped, so the colon separates. */
	SPLIT("a\\\\:b", ':', "a\\", "b");
	/* "\\\:": an escaped backslash, then an escaped colon. */
	SPLIT("\\\\\\:", ':', "\\:");
}

Test(split_escaped, other_backslashes_kept)
{
	SPLIT("a\\x:b", ':', "a\\x", "b");
	SPLIT("a\\", ':', "a\\");
	SPLIT("a\\,b:c", ':', "a\\,b", "c");
}

Test(split_escaped, comma_separator)
{
	SPLIT("fsname=a\\,b,ro", ',', "fsname=a,b", "ro");
	/* A colon escape is left for the next level of parsing. */
	SPLIT("lowerdir=/a\\:b:/c,ro", ',', "lowerdir=/a\\:b:/c", "ro");
}

Test(split_escaped, count_may_be_null)
{
	char **v = split_escaped("x:y", ':', NULL);

	cr_assert_not_null(v);
	cr_assert_str_eq(v[0], "x");
	cr_assert_str_eq(v[1], "y");
	cr_assert_null(v[2]);
	strv_free(v);
}

Test(split_escaped, many_fields)
{
	char buf[4000] = "";
	size_t n, i;
	char **v;

	for (i = 0; i < 1000; i++)
		strcat(buf, i ? ":x" : "x");
	v = split_escaped(buf, ':', &n);
	cr_assert_not_null(v);
	cr_assert_eq(n, 1000);
	for (i = 0; i < n; i++)
		cr_assert_str_eq(v[i], "x");
	cr_assert_null(v[1000]);
	strv_free(v);
}

Test(split_escaped, input_not_modified)
{
	char s[] = "a\\:b:c";
	char **v = split_escaped(s, ':', NULL);

	cr_assert_not_null(v);
	cr_assert_str_eq(s, "a\\:b:c");
	strv_free(v);
}

Test(strv_free, null_is_noop)
{
	strv_free(NULL);
}

/* ---- parse_size ---- */

static void check_size(const char *s, uint64_t want)
{
	uint64_t got = 0xdeadbeef;

	cr_assert_eq(parse_size(s, &got), 0, "parse_size(\"%s\") failed: %s", s,
		     strerror(errno));
	cr_assert_eq(got, want, "parse_size(\"%s\") = %llu, want %llu", s,
		     (unsigned long long)got, (unsigned long long)want);
}

static void check_size_err(const char *s, int want_errno)
{
	uint64_t got = 77;

	errno = 0;
	cr_assert_eq(parse_size(s, &got), -1, "parse_size(\"%s\") accepted", s);
	cr_assert_eq(errno, want_errno, "parse_size(\"%s\"): errno %d, want %d", s, errno,
		     want_errno);
	cr_assert_eq(got, 77, "parse_size(\"%s\") wrote its output on error", s);
}

Test(parse_size, plain_bytes)
{
	check_size("0", 0);
	check_size("4096", 4096);
	check_size("007", 7);
	check_size("512b", 512);
	check_size("512B", 512);
}

Test(parse_size, binary_suffixes)
{
	check_size("2k", 2048);
	check_size("2K", 2048);
	check_size("256m", 256ULL << 20);
	check_size("1G", 1ULL << 30);
	check_size("3t", 3ULL << 40);
	check_size("1P", 1ULL << 50);
	check_size("1e", 1ULL << 60);
}

Test(parse_size, suffix_spellings)
{
	check_size("2kb", 2048);
	check_size("2KB", 2048);
	check_size("2KiB", 2048);
	check_size("4mib", 4ULL << 20);
}

Test(parse_size, fractions)
{
	check_size("1.5g", 1610612736ULL);
	check_size("0.5k", 512);
	check_size("1.25K", 1280);
	/* Truncated, not rounded up. */
	check_size("1.0000000001k", 1024);
	check_size("1.9999999999k", 2047);
	check_size("15.9999e", 18446628781559090931ULL);
}

Test(parse_size, limits)
{
	check_size("18446744073709551615", UINT64_MAX);
	check_size("17179869183g", 18446744072635809792ULL);
	check_size("15e", 15ULL << 60);
}

Test(parse_size, overflow_is_erange)
{
	check_size_err("18446744073709551616", ERANGE);
	check_size_err("99999999999999999999999", ERANGE);
	check_size_err("16e", ERANGE);
	check_size_err("17179869184g", ERANGE);
	check_size_err("16777216T", ERANGE);
}

Test(parse_size, garbage_is_einval)
{
	static const char *const bad[] = {
		"", "-1", "+1", " 1", "1 ", "abc", "1x", "1kk", "1ibk", "1kbb",
		"k", "1.", ".5", "1.5", "1.5.5k", "0x10", "1,5k", "1e3x",
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		check_size_err(bad[i], EINVAL);
}

Test(parse_size, null_is_einval)
{
	uint64_t v;

	errno = 0;
	cr_assert_eq(parse_size(NULL, &v), -1);
	cr_assert_eq(errno, EINVAL);
}

/* ---- parse_bool ---- */

static void check_bool(const char *s, bool want)
{
	bool got = !want;

	cr_assert_eq(parse_bool(s, &got), 0, "parse_bool(\"%s\") failed", s);
	cr_assert_eq(got, want, "parse_bool(\"%s\") = %d", s, got);
}

Test(parse_bool, true_spellings)
{
	check_bool("on", true);
	check_bool("yes", true);
	check_bool("true", true);
	check_bool("1", true);
	check_bool("ON", true);
	check_bool("Yes", true);
}

Test(parse_bool, false_spellings)
{
	check_bool("off", false);
	check_bool("no", false);
	check_bool("false", false);
	check_bool("0", false);
	check_bool("OFF", false);
	check_bool("False", false);
}

Test(parse_bool, garbage_rejected)
{
	static const char *const bad[] = { "", "2", "maybe", "onn", " on", "on ", "y", "n", "10" };
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		bool v = true;

		errno = 0;
		cr_assert_eq(parse_bool(bad[i], &v), -1, "parse_bool(\"%s\") accepted", bad[i]);
		cr_assert_eq(errno, EINVAL, "parse_bool(\"%s\") errno", bad[i]);
		cr_assert_eq(v, true, "parse_bool(\"%s\") wrote its output on error", bad[i]);
	}
}

Test(parse_bool, null_rejected)
{
	bool v = false;

	cr_assert_eq(parse_bool(NULL, &v), -1);
	cr_assert_eq(v, false);
}

/* Small parsers shared by the Strata programs: option lists with escapes,
 * sizes with suffixes, on/off booleans. */
#ifndef STRATA_PARSE_H
#define STRATA_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Splits s at every unescaped sep, removing the escaping backslash from
 * "\<sep>" and "\\".  Returns a NULL-terminated malloc'ed array of malloc'ed
 * strings (free with strv_free), *count set; NULL on allocation failure.
 * Empty fields are kept ("a::b" gives "a", "", "b"). */
char **split_escaped(const char *s, char sep, size_t *count);
void strv_free(char **v);

/* "256m", "1G", "4096", "1.5g" -> bytes (binary multiples: k=1024).
 * Returns 0, or -1 with errno = EINVAL (garbage, negative) or ERANGE. */
int parse_size(const char *s, uint64_t *bytes);

/* "on"/"off", "yes"/"no", "true"/"false", "1"/"0" -> bool; -1 on anything else. */
int parse_bool(const char *s, bool *value);

#endif

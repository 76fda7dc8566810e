/* Logging shared by every Strata program.
 *
 * Messages go to stderr until log_to_syslog() is called (a daemon that has
 * detached from its terminal), then to syslog.  Every message is one line,
 * prefixed with the program name, so a user can tell which tool spoke. */
#ifndef STRATA_LOG_H
#define STRATA_LOG_H

#include <stdbool.h>

enum log_level { LOG_LVL_ERROR, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

void log_init(const char *progname, enum log_level level);
void log_set_level(enum log_level level);
bool log_enabled(enum log_level level);
void log_to_syslog(void);

void log_msg(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...)                                   \
	do {                                             \
		if (log_enabled(LOG_LVL_DEBUG))          \
			log_msg(LOG_LVL_DEBUG, __VA_ARGS__); \
	} while (0)

/* "ENOENT", "EACCES", ...: the symbolic name, which is what a user searches
 * for; falls back to the number for values glibc does not know. */
const char *errno_name(int err);

#endif

#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>

static const char *log_progname = "strata";
static enum log_level log_threshold = LOG_LVL_INFO;
static bool log_syslog;

void log_init(const char *progname, enum log_level level)
{
	log_progname = progname;
	log_threshold = level;
}

void log_set_level(enum log_level level)
{
	log_threshold = level;
}

bool log_enabled(enum log_level level)
{
	return level <= log_threshold;
}

void log_to_syslog(void)
{
	openlog(log_progname, LOG_PID, LOG_DAEMON);
	log_syslog = true;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	static const int syslog_prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
	static const char *const prefix[] = { "", "warning: ", "", "debug: " };
	char line[1024];
	va_list ap;
	int saved = errno;

	if (!log_enabled(level))
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (log_syslog)
		syslog(syslog_prio[level], "%s%s", prefix[level], line);
	else
		fprintf(stderr, "%s: %s%s\n", log_progname, prefix[level], line);
	errno = saved;
}

const char *errno_name(int err)
{
	static __thread char unknown[16];
	const char *name = strerrorname_np(err);

	if (name)
		return name;
	snprintf(unknown, sizeof(unknown), "errno %d", err);
	return unknown;
}

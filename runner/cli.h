/* Internal to the command line (main.c, cli_run.c). */
#ifndef STRATA_RUNNER_CLI_H
#define STRATA_RUNNER_CLI_H

#include <stdint.h>

struct command {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *usage;
};

/* The command being run (for its name and usage in messages). */
extern const struct command *current;

enum {
	OPT_RM = 256, OPT_NAME, OPT_MEMSWAP, OPT_CPUS, OPT_CPUSET, OPT_PIDS, OPT_HOSTNAME,
	OPT_NET, OPT_RO, OPT_NOPROCFS, OPT_FORMAT, OPT_HELP,
};

void usage(const struct command *cmd);
/* "error (see strata CMD --help)" and the status docker uses for it. */
int bad_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A decimal in [min, max] for option opt; 0 or the usage error status. */
int parse_uint(const char *opt, const char *s, uint64_t min, uint64_t max, uint64_t *out);
/* -e KEY=VAL, or -e KEY (the caller's value, if any), added to *env. */
int parse_env(const char *s, char ***env);
/* `strata run`. */
int cmd_run(int argc, char **argv);

#endif

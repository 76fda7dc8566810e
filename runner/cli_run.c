/* `strata run`'s command line: docker's options and defaults, every value
 * checked before anything is created. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "image.h"
#include "log.h"
#include "parse.h"
#include "state.h"

/* ---- run: option values -------------------------------------------------- */

static int parse_memory(const char *opt, const char *s, uint64_t *out)
{
	if (parse_size(s, out) < 0 || *out == 0)
		return bad_usage("invalid value '%s' for %s: expected a size such as 256m or 1g", s, opt);
	if (*out < (6ULL << 20))
		return bad_usage("%s %s: the minimum memory limit is 6m", opt, s);
	return 0;
}

static int parse_cpus(const char *s, struct container *c)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !isfinite(v) || v <= 0)
		return bad_usage("invalid value '%s' for --cpus: expected a positive number such as 0.5", s);
	if (v < 0.01 || (ncpu > 0 && v > (double)ncpu))
		return bad_usage("--cpus %s: the range is 0.01 to %ld (the CPUs available)", s, ncpu);
	c->cpus = v;
	c->limits.cpu_period_us = 100000;
	c->limits.cpu_quota_us = (int64_t)llround(v * 100000);
	return 0;
}

int parse_uint(const char *opt, const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *end || *s == '-' || v < min || v > max)
		return bad_usage("invalid value '%s' for %s: expected a number from %llu to %llu", s,
				 opt, (unsigned long long)min, (unsigned long long)max);
	*out = v;
	return 0;
}

static int parse_cpuset(const char *s, struct container *c)
{
	uint64_t want[CG_MAX_CPUS / 64] = { 0 }, online[CG_MAX_CPUS / 64] = { 0 };
	char *text = read_text("/sys/devices/system/cpu/online", 4096);
	int n = cg_cpulist_parse(s, want, CG_MAX_CPUS);

	if (n <= 0) {
		free(text);
		return bad_usage("invalid value '%s' for --cpuset-cpus: expected a CPU list such as 0-1,3", s);
	}
	if (text && cg_cpulist_parse(text, online, CG_MAX_CPUS) > 0) {
		for (unsigned int i = 0; i < CG_MAX_CPUS; i++) {
			if ((want[i / 64] >> (i % 64) & 1) && !(online[i / 64] >> (i % 64) & 1)) {
				text[strcspn(text, "\n")] = '\0';
				bad_usage("--cpuset-cpus %s: CPU %u is not available (online: %s)", s, i, text);
				free(text);
				return EXIT_RUNNER;
			}
		}
	}
	free(text);
	snprintf(c->limits.cpuset_cpus, sizeof(c->limits.cpuset_cpus), "%s", s);
	return 0;
}

static int add_volume(const char *spec, struct container *c)
{
	struct volume *nv = realloc(c->vols, (c->nvols + 1) * sizeof(*nv));
	char err[ERRLEN];

	if (!nv)
		return bad_usage("out of memory");
	c->vols = nv;
	if (volume_parse(spec, &c->vols[c->nvols], err, sizeof(err)) < 0)
		return bad_usage("%s", err);
	c->nvols++;
	return 0;
}

int parse_env(const char *s, char ***env)
{
	const char *val;
	char *kv;
	int r;

	if (!*s || *s == '=')
		return bad_usage("invalid environment variable '%s'", s);
	if (strchr(s, '='))
		return strv_add(env, s) < 0 ? bad_usage("out of memory") : 0;
	/* -e KEY passes the caller's value, if it has one. */
	val = getenv(s);
	if (!val)
		return 0;
	if (asprintf(&kv, "%s=%s", s, val) < 0)
		return bad_usage("out of memory");
	r = strv_add(env, kv);
	free(kv);
	return r < 0 ? bad_usage("out of memory") : 0;
}

static bool hostname_valid(const char *h)
{
	size_t n = strlen(h);

	if (n == 0 || n > 63 || h[0] == '-' || h[0] == '.')
		return false;
	return strspn(h, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.") == n;
}

/* ---- run ----------------------------------------------------------------- */


static int run_option(int o, const char *arg, struct container *c, char ***extra_env)
{
	uint64_t v;

	switch (o) {
	case OPT_RM: c->rm = true; return 0;
	case 'd': c->detach = true; return 0;
	case 'i': c->interactive = true; return 0;
	case 't': c->tty = true; return 0;
	case OPT_RO: c->read_only = true; return 0;
	case OPT_NOPROCFS: c->no_procfs = true; return 0;
	case OPT_NAME:
		if (!name_is_valid(arg))
			return bad_usage("invalid container name '%s': use [a-zA-Z0-9][a-zA-Z0-9_.-]*", arg);
		free(c->name);
		c->name = strdup(arg);
		return 0;
	case 'm': return parse_memory("--memory", arg, &c->limits.memory);
	case OPT_MEMSWAP:
		if (!strcmp(arg, "-1")) {
			c->limits.memory_swap = UINT64_MAX;
			return 0;
		}
		return parse_memory("--memory-swap", arg, &c->limits.memory_swap);
	case OPT_CPUS: return parse_cpus(arg, c);
	case 'c': return parse_uint("--cpu-shares", arg, 2, 262144, &c->limits.cpu_shares);
	case OPT_CPUSET: return parse_cpuset(arg, c);
	case OPT_PIDS:
		if (!strcmp(arg, "-1"))
			return 0;
		if (parse_uint("--pids-limit", arg, 1, INT64_MAX, &v))
			return EXIT_RUNNER;
		c->limits.pids_max = (int64_t)v;
		return 0;
	case 'v': return add_volume(arg, c);
	case 'e': return parse_env(arg, extra_env);
	case 'w':
		if (arg[0] != '/')
			return bad_usage("the working directory '%s' is not an absolute path", arg);
		free(c->workdir);
		c->workdir = strdup(arg);
		return 0;
	case 'u':
		free(c->user);
		c->user = strdup(arg);
		return 0;
	case 'h':
	case OPT_HOSTNAME:
		if (!hostname_valid(arg))
			return bad_usage("invalid hostname '%s'", arg);
		free(c->hostname);
		c->hostname = strdup(arg);
		return 0;
	case OPT_NET:
		if (strcmp(arg, "none") && strcmp(arg, "host"))
			return bad_usage("--net %s: only 'none' and 'host' are supported", arg);
		c->net_host = !strcmp(arg, "host");
		return 0;
	default:
		return bad_usage("unknown option");
	}
}

/* Limits that only make sense together, checked once all are known. */
static int check_combination(struct container *c)
{
	if (c->limits.memory_swap && c->limits.memory_swap != UINT64_MAX) {
		if (!c->limits.memory)
			return bad_usage("--memory-swap needs --memory as well");
		if (c->limits.memory_swap < c->limits.memory)
			return bad_usage("--memory-swap must be at least --memory (it is their total)");
	}
	return 0;
}

int cmd_run(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "rm", no_argument, NULL, OPT_RM },
		{ "detach", no_argument, NULL, 'd' },
		{ "interactive", no_argument, NULL, 'i' },
		{ "tty", no_argument, NULL, 't' },
		{ "name", required_argument, NULL, OPT_NAME },
		{ "memory", required_argument, NULL, 'm' },
		{ "memory-swap", required_argument, NULL, OPT_MEMSWAP },
		{ "cpus", required_argument, NULL, OPT_CPUS },
		{ "cpu-shares", required_argument, NULL, 'c' },
		{ "cpuset-cpus", required_argument, NULL, OPT_CPUSET },
		{ "pids-limit", required_argument, NULL, OPT_PIDS },
		{ "volume", required_argument, NULL, 'v' },
		{ "env", required_argument, NULL, 'e' },
		{ "workdir", required_argument, NULL, 'w' },
		{ "user", required_argument, NULL, 'u' },
		{ "hostname", required_argument, NULL, OPT_HOSTNAME },
		{ "net", required_argument, NULL, OPT_NET },
		{ "network", required_argument, NULL, OPT_NET },
		{ "read-only", no_argument, NULL, OPT_RO },
		{ "no-procfs", no_argument, NULL, OPT_NOPROCFS },
		{ "help", no_argument, NULL, OPT_HELP },
		{ NULL, 0, NULL, 0 },
	};
	struct container c = { .limits = { .cpu_quota_us = -1 } };
	char **extra_env = NULL;
	int o, r = 0;

	while (!r && (o = getopt_long(argc, argv, "+:ditm:c:v:e:w:u:h:", opts, NULL)) != -1) {
		if (o == OPT_HELP) {
			usage(current);
			goto out;
		}
		if (o == ':')
			r = bad_usage("option '%s' needs a value", argv[optind - 1]);
		else if (o == '?')
			r = bad_usage("unknown option '%s'", argv[optind - 1]);
		else
			r = run_option(o, optarg, &c, &extra_env);
	}
	if (!r && optind >= argc)
		r = bad_usage("an image is required: strata run [OPTIONS] IMAGE [CMD...]");
	if (!r)
		r = check_combination(&c);
	if (!r) {
		int e;

		c.image = strdup(argv[optind]);
		if (!name_is_valid(c.image))
			r = bad_usage("invalid image name '%s'", c.image);
		else if ((e = use_hold_for_run()) < 0) {
			log_error("locking %s/use.lock: %s", root_dir(), errno_name(-e));
			r = EXIT_RUNNER;
		} else
			r = container_from_image(&c, argc - optind - 1, argv + optind + 1, extra_env);
	}
	if (!r)
		r = container_make_volumes(&c);
	if (!r)
		r = container_run(&c);
out:
	use_release_for_run();
	strv_free(extra_env);
	container_free(&c);
	return r;
}

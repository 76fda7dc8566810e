/* strata-procfs: cgroup-aware /proc and /sys/devices/system/cpu files for
 * containers.  main() parses the command line and takes one of two roles:
 * the supervisor (what the user runs) or a worker (re-executed by the
 * supervisor with the hidden --worker option). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "procfs.h"

static void usage(const char *prog)
{
	printf("usage: %s [options] [MOUNTPOINT]\n"
	       "\n"
	       "Serves proc/{meminfo,cpuinfo,stat,uptime,loadavg,diskstats,swaps} and\n"
	       "sys/devices/system/cpu/online below MOUNTPOINT (default %s),\n"
	       "each showing the reading process's own cgroup limits and usage.\n"
	       "\n"
	       "  -f                 stay in the foreground\n"
	       "  -d                 debug output (implies -f)\n"
	       "  --loadavg          per-cgroup load averages (otherwise the host's)\n"
	       "  --cache-ms N       keep cgroup values and texts N ms (default %d, 0: never)\n"
	       "  --spin-us N        after a request, poll N us for the next before\n"
	       "                     sleeping (default %d, 0: never spin)\n"
	       "  --cgroup-root DIR  read cgroups from DIR instead of the mounted ones\n"
	       "  --pidfile FILE     write the supervisor's pid to FILE\n"
	       "  -h, --help         this help\n"
	       "  -V, --version      version\n",
	       prog, PF_DEFAULT_MOUNTPOINT, PF_DEFAULT_CACHE_MS, PF_DEFAULT_SPIN_US);
}

static int parse_worker(const char *s, struct pf_config *cfg)
{
	char tail;

	if (sscanf(s, "%d,%d,%u%c", &cfg->fuse_fd, &cfg->init_fd, &cfg->gen, &tail) != 3 ||
	    cfg->fuse_fd < 0 || cfg->init_fd < 0)
		return -1;
	cfg->worker = true;
	return 0;
}

static int parse_uint(const char *s, unsigned long max, unsigned int *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-' || v > max)
		return -1;
	*out = (unsigned int)v;
	return 0;
}

int pf_parse_args(int argc, char **argv, struct pf_config *cfg)
{
	enum { OPT_LOADAVG = 256, OPT_CACHE_MS, OPT_SPIN_US, OPT_CGROOT, OPT_PIDFILE, OPT_WORKER };
	static const struct option longopts[] = {
		{ "loadavg", no_argument, NULL, OPT_LOADAVG },
		{ "cache-ms", required_argument, NULL, OPT_CACHE_MS },
		{ "spin-us", required_argument, NULL, OPT_SPIN_US },
		{ "cgroup-root", required_argument, NULL, OPT_CGROOT },
		{ "pidfile", required_argument, NULL, OPT_PIDFILE },
		{ "worker", required_argument, NULL, OPT_WORKER },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	memset(cfg, 0, sizeof(*cfg));
	cfg->cache_ms = PF_DEFAULT_CACHE_MS;
	cfg->spin_us = PF_DEFAULT_SPIN_US;
	cfg->fuse_fd = cfg->init_fd = -1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":fdhV", longopts, NULL)) != -1) {
		switch (c) {
		case 'f':
			cfg->foreground = true;
			break;
		case 'd':
			cfg->debug = cfg->foreground = true;
			break;
		case OPT_LOADAVG:
			cfg->loadavg = true;
			break;
		case OPT_CACHE_MS:
			if (parse_uint(optarg, 3600000UL, &cfg->cache_ms) < 0) {
				log_error("--cache-ms: '%s' is not a number of milliseconds (0-3600000) (see --help)",
					  optarg);
				return -1;
			}
			break;
		case OPT_SPIN_US:
			if (parse_uint(optarg, 10000UL, &cfg->spin_us) < 0) {
				log_error("--spin-us: '%s' is not a number of microseconds (0-10000) (see --help)",
					  optarg);
				return -1;
			}
			break;
		case OPT_CGROOT:
			cfg->cgroup_root = optarg;
			break;
		case OPT_PIDFILE:
			cfg->pidfile = optarg;
			break;
		case OPT_WORKER:
			if (parse_worker(optarg, cfg) < 0) {
				log_error("--worker: bad value '%s'", optarg);
				return -1;
			}
			break;
		case 'h':
			usage(argv[0]);
			return 1;
		case 'V':
			printf("strata-procfs %s (libfuse %s)\n", STRATA_VERSION, fuse_pkgversion());
			return 1;
		case ':':
			log_error("option '%s' needs a value (see --help)", argv[optind - 1]);
			return -1;
		default:
			log_error("unknown option '%s' (see --help)", argv[optind - 1]);
			return -1;
		}
	}
	if (argc - optind > 1) {
		log_error("one mountpoint expected, got '%s' and '%s' (see --help)", argv[optind],
			  argv[optind + 1]);
		return -1;
	}
	cfg->mountpoint = optind < argc ? argv[optind] : PF_DEFAULT_MOUNTPOINT;
	if (!cfg->mountpoint[0]) {
		log_error("empty mountpoint (see --help)");
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct pf_config cfg;

	log_init("strata-procfs", LOG_LVL_INFO);
	switch (pf_parse_args(argc, argv, &cfg)) {
	case 1:
		return 0;
	case -1:
		return 1;
	default:
		break;
	}
	if (cfg.debug)
		log_set_level(LOG_LVL_DEBUG);
	if (cfg.worker)
		return pf_worker(&cfg);
	return pf_supervise(&cfg, argc, argv);
}

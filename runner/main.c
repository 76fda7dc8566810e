/* strata: the command line. Each command parses its own options
 * (docker's names and defaults), validates everything it can before it
 * creates anything, and hands over to container.c / init.c / image.c. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <json-c/json.h>
#include <math.h>
#include <signal.h>
#include <sys/file.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "image.h"
#include "log.h"
#include "parse.h"
#include "cli.h"
#include "state.h"


const struct command *current;

void usage(const struct command *cmd)
{
	printf("usage: strata %s\n", cmd->usage);
}

int bad_usage(const char *fmt, ...)
{
	char msg[ERRLEN];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_error("%s (see 'strata %s --help')", msg, current->name);
	return EXIT_RUNNER;
}

/* ---- ps ------------------------------------------------------------------ */

static int cmd_ps(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "all", no_argument, NULL, 'a' }, { "quiet", no_argument, NULL, 'q' },
		{ "format", required_argument, NULL, OPT_FORMAT }, { "help", no_argument, NULL, OPT_HELP },
		{ NULL, 0, NULL, 0 },
	};
	bool all = false, quiet = false, json = false;
	int o;

	while ((o = getopt_long(argc, argv, "+:aq", opts, NULL)) != -1) {
		if (o == 'a')
			all = true;
		else if (o == 'q')
			quiet = true;
		else if (o == OPT_FORMAT && !strcmp(optarg, "json"))
			json = true;
		else if (o == OPT_HELP)
			return usage(current), 0;
		else
			return bad_usage(o == OPT_FORMAT ? "--format: only 'json' is supported"
							 : "unknown option '%s'", argv[optind - 1]);
	}
	return ps_print(all, quiet, json);
}


/* ---- logs, exec, stop, rm, inspect ---------------------------------------- */

/* Resolves every operand; prints "no such container" for the bad ones. */
static int resolve(const char *ref, char id[ID_LEN + 1])
{
	char err[ERRLEN];

	if (container_resolve(ref, id, err, sizeof(err)) < 0) {
		log_error("%s", err);
		return -1;
	}
	return 0;
}

/* Options of the small commands: the letters seen are returned as a bit
 * mask (FLAG('f')), the value of the one option that takes one in *value.
 * Returns 0, 1 after --help, or the usage error status. */
#define FLAG(c) (1 << ((c) - 'a'))
static int simple_opts(int argc, char **argv, const char *shorts, const struct option *longs,
		       int min_args, int *mask, const char **value)
{
	int o;

	*mask = 0;
	while ((o = getopt_long(argc, argv, shorts, longs, NULL)) != -1) {
		const char *hit = o > 0 && o < 256 ? strchr(shorts, o) : NULL;

		if (o == OPT_HELP) {
			usage(current);
			return 1;
		}
		if (o == ':' || o == '?' || !hit)
			return bad_usage(o == ':' ? "option '%s' needs a value" : "unknown option '%s'",
					 argv[optind - 1]);
		*mask |= FLAG(o);
		if (hit[1] == ':' && value)
			*value = optarg;
	}
	if (argc - optind < min_args)
		return bad_usage("%s argument%s required", min_args == 1 ? "one" : "more",
				 min_args == 1 ? "" : "s");
	return 0;
}

static int cmd_logs(int argc, char **argv)
{
	static const struct option opts[] = { { "follow", no_argument, NULL, 'f' },
					      { "help", no_argument, NULL, OPT_HELP }, { 0 } };
	char id[ID_LEN + 1], path[PATH_MAX + 80], buf[65536];
	int mask, r = simple_opts(argc, argv, "+:f", opts, 1, &mask, NULL), fd;
	ssize_t n;

	if (r)
		return r > 0 ? 0 : r;
	if (resolve(argv[optind], id) < 0)
		return 1;
	snprintf(path, sizeof(path), "%s/%s/log", run_dir(), id);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		log_error("%s has no log: only a container run with -d keeps its output", argv[optind]);
		return 1;
	}
	for (;;) {
		struct cstate s;
		bool running;

		while ((n = read(fd, buf, sizeof(buf))) > 0)
			if (fwrite(buf, 1, (size_t)n, stdout) != (size_t)n)
				break;
		fflush(stdout);
		if (!(mask & FLAG('f')))
			break;
		running = state_refresh(id, &s) == 0 && s.status == ST_RUNNING;
		if (!running) {
			while ((n = read(fd, buf, sizeof(buf))) > 0)
				fwrite(buf, 1, (size_t)n, stdout);
			break;
		}
		usleep(100000);
	}
	close(fd);
	return 0;
}

static int cmd_exec(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "interactive", no_argument, NULL, 'i' }, { "tty", no_argument, NULL, 't' },
		{ "env", required_argument, NULL, 'e' },   { "workdir", required_argument, NULL, 'w' },
		{ "user", required_argument, NULL, 'u' },  { "help", no_argument, NULL, OPT_HELP },
		{ NULL, 0, NULL, 0 },
	};
	struct exec_spec spec = { .stdio = { -1, -1, -1 }, .tty_slave = -1, .sync = -1 };
	bool tty = false, interactive = false;
	char id[ID_LEN + 1], **env = NULL;
	int o, r = 0;

	while (!r && (o = getopt_long(argc, argv, "+:ite:w:u:", opts, NULL)) != -1) {
		switch (o) {
		case 'i': interactive = true; break;
		case 't': tty = true; break;
		case 'e': r = parse_env(optarg, &env); break;
		case 'w':
			if (optarg[0] != '/')
				r = bad_usage("the working directory '%s' is not an absolute path", optarg);
			spec.workdir = optarg;
			break;
		case 'u': spec.user = optarg; break;
		case OPT_HELP: usage(current); strv_free(env); return 0;
		default: r = bad_usage("unknown option or missing value '%s'", argv[optind - 1]);
		}
	}
	if (!r && argc - optind < 2)
		r = bad_usage("a container and a command are required");
	if (!r && resolve(argv[optind], id) < 0)
		r = 1;
	if (!r) {
		if (tty)
			strv_add(&env, "TERM=xterm");
		spec.env = env;
		spec.argv = argv + optind + 1;
		r = container_exec(id, &spec, tty, interactive);
	}
	strv_free(env);
	return r;
}

/* What stop and rm do to one container; arg is their option. */
typedef int (*container_act)(const char *id, int arg, char *err, size_t errlen);

/* Applies act to each operand from optind on, printing the operand when it
 * worked: 0, or 1 when any failed. */
static int each_container(int argc, char **argv, container_act act, int arg)
{
	int ret = 0;

	for (int i = optind; i < argc; i++) {
		char id[ID_LEN + 1], err[ERRLEN];

		if (resolve(argv[i], id) < 0) {
			ret = 1;
			continue;
		}
		if (act(id, arg, err, sizeof(err)) < 0) {
			log_error("%s", err);
			ret = 1;
			continue;
		}
		printf("%s\n", argv[i]);
	}
	return ret;
}

static int stop_one(const char *id, int timeout_s, char *err, size_t errlen)
{
	return container_stop(id, timeout_s, err, errlen);
}

static int rm_one(const char *id, int force, char *err, size_t errlen)
{
	return container_remove(id, force, err, errlen);
}

static int cmd_stop(int argc, char **argv)
{
	static const struct option opts[] = { { "time", required_argument, NULL, 't' },
					      { "help", no_argument, NULL, OPT_HELP }, { 0 } };
	const char *t = "10";
	uint64_t secs;
	int mask, r = simple_opts(argc, argv, "+:t:", opts, 1, &mask, &t);

	if (r)
		return r > 0 ? 0 : r;
	if (parse_uint("--time", t, 0, 86400, &secs))
		return EXIT_RUNNER;
	return each_container(argc, argv, stop_one, (int)secs);
}

static int cmd_rm(int argc, char **argv)
{
	static const struct option opts[] = { { "force", no_argument, NULL, 'f' },
					      { "help", no_argument, NULL, OPT_HELP }, { 0 } };
	int mask, r = simple_opts(argc, argv, "+:f", opts, 1, &mask, NULL);

	if (r)
		return r > 0 ? 0 : r;
	return each_container(argc, argv, rm_one, (mask & FLAG('f')) != 0);
}

static int cmd_inspect(int argc, char **argv)
{
	static const struct option opts[] = { { "help", no_argument, NULL, OPT_HELP }, { 0 } };
	json_object *all = json_object_new_array();
	int mask, r = simple_opts(argc, argv, "+:", opts, 1, &mask, NULL), ret = 0;

	if (r) {
		json_object_put(all);
		return r > 0 ? 0 : r;
	}
	for (int i = optind; i < argc; i++) {
		char id[ID_LEN + 1], err[ERRLEN];
		struct container c;
		struct cstate s;
		struct image img;

		if (container_resolve(argv[i], id, err, sizeof(err)) == 0 && config_load(id, &c) == 0) {
			if (state_refresh(id, &s) < 0)
				memset(&s, 0, sizeof(s));
			json_object_array_add(all, container_json(&c, &s));
			container_free(&c);
		} else if (name_is_valid(argv[i]) &&
			   image_load(root_dir(), argv[i], &img, err, sizeof(err)) == 0) {
			json_object_array_add(all, image_json(&img));
			image_free(&img);
		} else {
			log_error("no such container or image: '%s'", argv[i]);
			ret = 1;
		}
	}
	printf("%s\n", json_object_to_json_string_ext(all, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
							    JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(all);
	return ret;
}

/* ---- images and volumes -------------------------------------------------- */

static int cmd_images(int argc, char **argv)
{
	static const struct option opts[] = { { "help", no_argument, NULL, OPT_HELP }, { 0 } };
	char **names, err[ERRLEN];
	int mask, r = simple_opts(argc, argv, "+:", opts, 0, &mask, NULL);

	if (r)
		return r > 0 ? 0 : r;
	if (image_list(root_dir(), &names, err, sizeof(err)) < 0) {
		log_error("%s", err);
		return 1;
	}
	printf("%-30s   %-6s   %s\n", "IMAGE", "LAYERS", "COMMAND");
	for (size_t i = 0; names[i]; i++) {
		struct image img;
		char cmd[64];

		if (image_load(root_dir(), names[i], &img, err, sizeof(err)) < 0)
			continue;
		command_text(img.cmd, cmd, sizeof(cmd));
		printf("%-30s   %-6zu   %s\n", img.name, img.nlayers, img.cmd ? cmd : "");
		image_free(&img);
	}
	strv_free(names);
	return 0;
}

/* import SRC NAME, export C|IMAGE FILE, commit C NAME: two operands. */
static int two_operands(int argc, char **argv)
{
	static const struct option opts[] = { { "help", no_argument, NULL, OPT_HELP }, { 0 } };
	int mask, r = simple_opts(argc, argv, "+:", opts, 2, &mask, NULL);

	if (!r && argc - optind != 2)
		return bad_usage("exactly two arguments are expected");
	return r;
}

static int cmd_import(int argc, char **argv)
{
	char err[ERRLEN];
	int r = two_operands(argc, argv);

	if (r)
		return r > 0 ? 0 : r;
	if (!name_is_valid(argv[optind + 1]))
		return bad_usage("invalid image name '%s'", argv[optind + 1]);
	if (image_tool((const char *const[]){ "import", argv[optind], argv[optind + 1], NULL }, err,
		       sizeof(err)) < 0) {
		log_error("import: %s", err);
		return 1;
	}
	printf("%s\n", argv[optind + 1]);
	return 0;
}

static int cmd_export(int argc, char **argv)
{
	char id[ID_LEN + 1], err[ERRLEN];
	int r = two_operands(argc, argv);

	if (r)
		return r > 0 ? 0 : r;
	if (container_resolve(argv[optind], id, err, sizeof(err)) == 0)
		r = container_export(id, argv[optind + 1], err, sizeof(err));
	else if (name_is_valid(argv[optind]))
		r = image_tool((const char *const[]){ "export", argv[optind], argv[optind + 1], NULL },
			       err, sizeof(err));
	else
		r = (snprintf(err, sizeof(err), "no such container or image: '%s'", argv[optind]), -1);
	if (r < 0) {
		log_error("export: %s", err);
		return 1;
	}
	return 0;
}

static int cmd_commit(int argc, char **argv)
{
	char id[ID_LEN + 1], err[ERRLEN];
	int r = two_operands(argc, argv);

	if (r)
		return r > 0 ? 0 : r;
	if (resolve(argv[optind], id) < 0)
		return 1;
	if (!name_is_valid(argv[optind + 1]))
		return bad_usage("invalid image name '%s'", argv[optind + 1]);
	if (container_commit(id, argv[optind + 1], err, sizeof(err)) < 0) {
		log_error("commit: %s", err);
		return 1;
	}
	printf("%s\n", argv[optind + 1]);
	return 0;
}

static int cmd_rmi(int argc, char **argv)
{
	static const struct option opts[] = { { "help", no_argument, NULL, OPT_HELP }, { 0 } };
	int mask, r = simple_opts(argc, argv, "+:", opts, 1, &mask, NULL), ret = 0;

	if (r)
		return r > 0 ? 0 : r;
	for (int i = optind; i < argc; i++) {
		char err[ERRLEN], user[ID_LEN + 1];
		int lock = -1;

		if (!name_is_valid(argv[i])) {
			log_error("invalid image name '%s'", argv[i]);
			ret = 1;
		} else if ((lock = use_lock(LOCK_EX)) < 0) {
			log_error("locking %s/use.lock: %s", root_dir(), errno_name(-lock));
			ret = 1;
		} else if (image_used_by(argv[i], user)) {
			log_error("image %s is used by container %.12s: remove the container first",
				  argv[i], user);
			ret = 1;
		} else if (image_remove(root_dir(), argv[i], err, sizeof(err)) < 0) {
			log_error("%s", err);
			ret = 1;
		} else {
			printf("Deleted: %s\n", argv[i]);
		}
		if (lock >= 0)
			close(lock);
	}
	return ret;
}

static int cmd_volume(int argc, char **argv)
{
	static const struct option opts[] = { { "help", no_argument, NULL, OPT_HELP }, { 0 } };
	int mask, r = simple_opts(argc, argv, "+:", opts, 1, &mask, NULL), ret = 0;
	const char *sub = argv[optind];

	if (r)
		return r > 0 ? 0 : r;
	if (!strcmp(sub, "ls") || !strcmp(sub, "list"))
		return volume_list();
	if (strcmp(sub, "rm") && strcmp(sub, "remove"))
		return bad_usage("unknown volume command '%s' (ls, rm)", sub);
	if (argc - optind < 2)
		return bad_usage("volume rm needs a volume name");
	for (int i = optind + 1; i < argc; i++) {
		char err[ERRLEN];

		if (volume_remove(argv[i], err, sizeof(err)) < 0) {
			log_error("%s", err);
			ret = 1;
		} else {
			printf("%s\n", argv[i]);
		}
	}
	return ret;
}

static int cmd_image(int argc, char **argv)
{
	if (argc >= 2 && (!strcmp(argv[1], "rm") || !strcmp(argv[1], "remove")))
		return cmd_rmi(argc - 1, argv + 1);
	if (argc >= 2 && (!strcmp(argv[1], "ls") || !strcmp(argv[1], "list")))
		return cmd_images(argc - 1, argv + 1);
	if (argc >= 2 && !strcmp(argv[1], "--help"))
		return usage(current), 0;
	return bad_usage("unknown image command (ls, rm)");
}

/* ---- dispatch ------------------------------------------------------------ */

static const struct command commands[] = {
	{ "run", cmd_run,
	  "run [OPTIONS] IMAGE [CMD [ARG...]]\n\n"
	  "Runs CMD (default: the image's) in a new container.\n\n"
	  "  --rm                  remove the container when it exits\n"
	  "  -d, --detach          run in the background, print the id (output: strata logs)\n"
	  "  -i, --interactive     keep stdin open\n"
	  "  -t, --tty             allocate a pseudo-terminal\n"
	  "  --name NAME           name the container\n"
	  "  -m, --memory SIZE     memory limit (256m, 1g; at least 6m)\n"
	  "  --memory-swap SIZE    memory plus swap limit (-1: unlimited swap)\n"
	  "  --cpus N              CPU quota in CPUs (0.5 = half of one)\n"
	  "  -c, --cpu-shares N    relative CPU weight (default 1024)\n"
	  "  --cpuset-cpus LIST    CPUs allowed (0-1,3)\n"
	  "  --pids-limit N        maximum number of processes (-1: unlimited)\n"
	  "  -v, --volume SRC:DST[:ro]  bind a host path (absolute) or a named volume\n"
	  "  -e, --env KEY=VAL     set an environment variable (KEY alone: take ours)\n"
	  "  -w, --workdir DIR     working directory inside the container\n"
	  "  -u, --user UID[:GID]  user (name or number, looked up in the image)\n"
	  "  -h, --hostname NAME   hostname (default: the short id)\n"
	  "  --net none|host       network: a private loopback only (default), or the host's\n"
	  "  --read-only           mount the root read-only\n"
	  "  --no-procfs           do not bind strata-procfs's files over /proc" },
	{ "ps", cmd_ps, "ps [-a] [-q] [--format json]\n\n"
	  "Lists running containers (-a: all; -q: ids only; --format json: one object per line)." },
	{ "logs", cmd_logs, "logs [-f] CONTAINER\n\nPrints the output of a -d container (-f: follow)." },
	{ "exec", cmd_exec, "exec [-i] [-t] [-e KEY=VAL] [-w DIR] [-u USER] CONTAINER CMD [ARG...]\n\n"
	  "Runs CMD in a running container: its namespaces, cgroups and restrictions." },
	{ "stop", cmd_stop, "stop [-t SECONDS] CONTAINER...\n\n"
	  "Sends SIGTERM, then SIGKILL after SECONDS (default 10)." },
	{ "rm", cmd_rm, "rm [-f] CONTAINER...\n\n"
	  "Removes containers: cgroups, root filesystem, state (-f: kill a running one first)." },
	{ "inspect", cmd_inspect, "inspect CONTAINER|IMAGE...\n\nPrints details as a JSON array." },
	{ "images", cmd_images, "images\n\nLists images." },
	{ "import", cmd_import, "import TARBALL|DIR NAME\n\n"
	  "Makes image NAME from a tar (plain or gzip) or a directory." },
	{ "export", cmd_export, "export CONTAINER|IMAGE FILE\n\n"
	  "Writes the merged file system as a tar to FILE (-: stdout)." },
	{ "commit", cmd_commit, "commit CONTAINER NAME\n\n"
	  "Makes image NAME: the container's changes (deletions included) over its image." },
	{ "image", cmd_image, "image ls | image rm NAME...\n\n"
	  "Lists images, or removes images no container uses." },
	{ "rmi", cmd_rmi, "rmi NAME...\n\nRemoves images no container uses." },
	{ "volume", cmd_volume, "volume ls | volume rm NAME...\n\n"
	  "Lists or removes named volumes (not while a container uses them)." },
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void main_usage(FILE *f)
{
	fprintf(f, "usage: strata [-V] COMMAND [OPTIONS] [ARGS]\n\nCommands:\n");
	for (size_t i = 0; i < NCOMMANDS; i++) {
		const char *d = strstr(commands[i].usage, "\n\n");

		d = d ? d + 2 : "";
		fprintf(f, "  %-9s %.*s\n", commands[i].name, (int)strcspn(d, "\n"), d);
	}
	fprintf(f, "\nEnvironment: STRATA_ROOT (default /var/lib/strata), STRATA_RUN (default "
		   "/run/strata).\nRun 'strata COMMAND --help' for a command's options.\n");
}

int main(int argc, char **argv)
{
	char err[ERRLEN];

	log_init("strata", LOG_LVL_INFO);
	proc_title_init(argc, argv);
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
		main_usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? EXIT_RUNNER : 0;
	}
	if (!strcmp(argv[1], "-V") || !strcmp(argv[1], "--version")) {
		printf("strata %s\n", STRATA_VERSION);
		return 0;
	}
	/* Writes to a reader that went away must fail, not kill us midway
	 * through a cleanup. */
	signal(SIGPIPE, SIG_IGN);
	for (size_t i = 0; i < NCOMMANDS; i++) {
		if (strcmp(argv[1], commands[i].name))
			continue;
		current = &commands[i];
		if (argc > 2 && !strcmp(argv[2], "--help")) {
			usage(current);
			return 0;
		}
		if (geteuid() != 0) {
			log_error("%s: strata needs root (namespaces, mounts, cgroups)", argv[1]);
			return EXIT_RUNNER;
		}
		if (paths_init(err, sizeof(err)) < 0) {
			log_error("%s", err);
			return EXIT_RUNNER;
		}
		optind = 1;
		return commands[i].fn(argc - 1, argv + 1);
	}
	log_error("unknown command '%s' (see 'strata --help')", argv[1]);
	return EXIT_RUNNER;
}

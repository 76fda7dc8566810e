/* strata-unionfs: parse options, validate and lock branches, mount, serve. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "branch.h"
#include "dirahead.h"
#include "fuse_loop.h"
#include "log.h"
#include "lookup.h"
#include "node.h"
#include "ops.h"
#include "passthrough.h"
#include "preload.h"
#include "uring.h"

struct ufs ufs = { .tree_lock = PTHREAD_RWLOCK_INITIALIZER };

static int append_opt(char **list, const char *opt)
{
	char *joined;

	if (asprintf(&joined, "%s%s%s", *list, **list ? "," : "", opt) < 0)
		return -1;
	free(*list);
	*list = joined;
	return 0;
}

/* The -o list handed to libfuse: the user's generic options plus what a
 * union needs (fsname/subtype for mount tables, permissions as root). */
static char *fuse_option_string(const struct union_config *cfg)
{
	const char *fsname = cfg->source ? cfg->source : ufs.br[0].path;
	char *s = strdup(cfg->fuse_opts), *fsopt = NULL;
	bool ok = s != NULL;

	if (ok && !strstr(cfg->fuse_opts, "subtype="))
		ok = append_opt(&s, "subtype=strata-unionfs") == 0;
	if (ok && !strstr(cfg->fuse_opts, "fsname=")) {
		ok = asprintf(&fsopt, "fsname=%s", fsname) >= 0 && append_opt(&s, fsopt) == 0;
		free(fsopt);
	}
	if (ok && cfg->allow_other)
		ok = append_opt(&s, "allow_other") == 0;
	if (ok && cfg->default_permissions)
		ok = append_opt(&s, "default_permissions") == 0;
	if (!ok) {
		free(s);
		return NULL;
	}
	return s;
}

static struct fuse_session *make_session(const struct union_config *cfg)
{
	char *opts = fuse_option_string(cfg);
	char *argv[] = { "strata-unionfs", "-o", opts, cfg->debug ? "-d" : NULL, NULL };
	struct fuse_args args = FUSE_ARGS_INIT(cfg->debug ? 4 : 3, argv);
	struct fuse_session *se;

	if (!opts)
		return NULL;
	se = fuse_session_new(&args, &ufs_ops, sizeof(ufs_ops), NULL);
	fuse_opt_free_args(&args);
	free(opts);
	return se;
}

static int serve(struct fuse_session *se, const struct union_config *cfg)
{
	struct fuse_loop_config *loop;
	int ret;

	if (cfg->single_thread)
		return fuse_session_loop(se);
	loop = fuse_loop_cfg_create();
	if (!loop)
		return -ENOMEM;
	fuse_loop_cfg_set_clone_fd(loop, 1);
	fuse_loop_cfg_set_max_threads(loop, 16);
	ret = fuse_session_loop_mt(se, loop);
	fuse_loop_cfg_destroy(loop);
	return ret;
}

/* The exit status for how serving ended.  A positive value is the signal
 * (TERM, INT, HUP) that asked us to unmount and stop: also a clean end. */
static int serve_exit_status(int ret)
{
	if (ret > 0 || fuse_loop_ended_by_unmount(ret))
		return 0;
	log_error("serving '%s' failed: %s", ufs.cfg->mountpoint, errno_name(-ret));
	return 1;
}

/* libfuse unmounts by this path when a signal stops us, after
 * fuse_daemonize() has moved to "/": a relative one must be made absolute.
 * An absolute one is kept as given (/dev/fd/N names the directory an
 * inherited fd is open on, wherever it is). */
static int make_mountpoint_absolute(struct union_config *cfg)
{
	char cwd[PATH_MAX], *abs;

	if (cfg->mountpoint[0] == '/')
		return 0;
	if (!getcwd(cwd, sizeof(cwd)) || asprintf(&abs, "%s/%s", cwd, cfg->mountpoint) < 0) {
		log_error("mountpoint '%s': %s", cfg->mountpoint, errno_name(errno));
		return -1;
	}
	free(cfg->mountpoint);
	cfg->mountpoint = abs;
	return 0;
}

/* For strata run (--wait-fd): detached from the caller as fuse_daemonize()
 * does it (a session of our own, "/" as cwd, stdio on /dev/null) but
 * without its fork, a millisecond of every container start.  The caller
 * takes the end of our stderr as "set up"; an error before it is a line. */
static int detach_without_fork(void)
{
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);

	if (null < 0) {
		log_error("/dev/null: %s", errno_name(errno));
		return -1;
	}
	/* A process group leader (started from a shell) keeps its session. */
	(void)setsid();
	if (chdir("/") < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(null, 2) < 0) {
		log_error("detaching: %s", errno_name(errno));
		close(null);
		return -1;
	}
	close(null);
	return 0;
}

/* --wait-fd: the caller mounts the connection after starting us, and
 * reading it before would fail (EPERM).  A byte means "mounted, serve";
 * EOF means the caller gave up. */
static int wait_for_start(int fd)
{
	char go;
	ssize_t n;

	do
		n = read(fd, &go, 1);
	while (n < 0 && errno == EINTR);
	close(fd);
	if (n == 1)
		return 0;
	log_error("not started: %s", n < 0 ? errno_name(errno) : "the caller went away");
	return -1;
}

static int run(struct union_config *cfg)
{
	char err[512];
	struct fuse_session *se;
	int ret = 1;

	if (make_mountpoint_absolute(cfg) < 0)
		return 1;
	if (branches_setup(cfg, err, sizeof(err)) < 0) {
		log_error("%s", err);
		return 1;
	}
	if (node_table_init() < 0) {
		log_error("out of memory");
		goto out_branches;
	}
	root_init_branches();
	se = make_session(cfg);
	if (!se) {
		log_error("cannot create the FUSE session (see the message above)");
		goto out_nodes;
	}
	ufs.se = se;
	if (fuse_set_signal_handlers(se) < 0)
		goto out_session;
	if (fuse_session_mount(se, cfg->mountpoint) < 0) {
		log_error("cannot mount on '%s'", cfg->mountpoint);
		goto out_signals;
	}
	/* Registering backing files takes CAP_SYS_ADMIN: as anyone else,
	 * the kernel would refuse every one. */
	if (pt_install(se, cfg->passthrough && geteuid() == 0) < 0)
		log_warn("cannot wrap /dev/fuse: no passthrough, and a GETXATTR before every write");
	/* The mount is live here; the parent of fuse_daemonize() exits only
	 * after the child has detached, so callers can use it at once. */
	if (cfg->wait_fd >= 0 ? detach_without_fork() < 0 : fuse_daemonize(cfg->foreground) < 0)
		goto out_unmount;
	if (!cfg->foreground)
		log_to_syslog();
	if (cfg->wait_fd >= 0 && wait_for_start(cfg->wait_fd) < 0)
		goto out_unmount;
	ret = serve_exit_status(serve(se, cfg));
	/* Before anything they use goes: the rings' threads serve requests. */
	uring_stop();
	preload_stop();
	dirahead_stop();
out_unmount:
	fuse_session_unmount(se);
out_signals:
	fuse_remove_signal_handlers(se);
out_session:
	fuse_session_destroy(se);
out_nodes:
	node_table_destroy();
out_branches:
	branches_teardown();
	return ret;
}

int main(int argc, char **argv)
{
	struct union_config cfg;
	char err[512];
	int ret;

	log_init("strata-unionfs", LOG_LVL_INFO);
	switch (union_opts_parse(argc, argv, &cfg, err, sizeof(err))) {
	case OPTS_HELP:
		union_opts_usage(argv[0]);
		union_config_free(&cfg);
		return 0;
	case OPTS_VERSION:
		printf("strata-unionfs %s (libfuse %s)\n", STRATA_VERSION, fuse_pkgversion());
		union_config_free(&cfg);
		return 0;
	case OPTS_ERROR:
		log_error("%s (see --help)", err);
		return 1;
	case OPTS_OK:
		break;
	}
	if (cfg.debug)
		log_set_level(LOG_LVL_DEBUG);
	if (geteuid() == 0)
		cfg.allow_other = true;
	if (cfg.allow_other)
		cfg.default_permissions = true;
	/* The kernel already applied the caller's umask to every mode it
	 * sends; ours must not mask it a second time. */
	umask(0);
	ret = run(&cfg);
	union_config_free(&cfg);
	return ret;
}

/* A container after `run`: stop, rm and the cleanup behind both (and
 * behind --rm and a failed start), commit and export; and the steps of
 * `run` that turn an image and a command line into a container. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "image.h"
#include "log.h"
#include "parse.h"
#include "state.h"

/* ---- stop, rm, cleanup -------------------------------------------------- */

/* Polls pidfd up to ms; true when the process has exited. */
static bool wait_exit(int pidfd, int ms)
{
	struct pollfd p = { .fd = pidfd, .events = POLLIN };
	int n;

	do
		n = poll(&p, 1, ms);
	while (n < 0 && errno == EINTR);
	return n > 0;
}

static void msleep(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* Signals the init (checked against pid reuse) and waits up to ms. */
static int signal_init(const struct cstate *s, int sig, int ms)
{
	int pidfd = (int)syscall(SYS_pidfd_open, s->pid, 0);
	bool gone;

	if (pidfd < 0)
		return errno == ESRCH ? 1 : -1;
	if (!proc_alive(s->pid, s->pid_start)) {
		close(pidfd);
		return 1;
	}
	if (syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0) < 0 && errno != ESRCH) {
		close(pidfd);
		return -1;
	}
	gone = wait_exit(pidfd, ms);
	close(pidfd);
	return gone ? 1 : 0;
}

/* The monitor records the exit right after the init is reaped. */
static void await_recorded(const char *id)
{
	struct cstate s;

	for (int i = 0; i < 500; i++) {
		if (state_refresh(id, &s) < 0 || s.status != ST_RUNNING)
			return;
		msleep(10);
	}
}

int container_stop(const char *id, int timeout_s, char *err, size_t errlen)
{
	struct cstate s;
	int r;

	if (state_refresh(id, &s) < 0)
		return FAIL("cannot read the state of %.12s", id);
	if (s.status != ST_RUNNING)
		return 0;
	r = signal_init(&s, SIGTERM, timeout_s * 1000);
	if (r == 0)
		r = signal_init(&s, SIGKILL, 10000);
	if (r < 0)
		return FAIL("signalling %.12s: %s", id, errno_name(errno));
	if (r == 0)
		return FAIL("container %.12s did not die after SIGKILL", id);
	await_recorded(id);
	return 0;
}

int container_remove(const char *id, bool force, char *err, size_t errlen)
{
	struct container c;
	struct cstate s;

	if (state_refresh(id, &s) < 0)
		return container_cleanup(id) < 0 ? FAIL("cannot remove %.12s", id) : 0;
	if (s.status == ST_RUNNING) {
		if (config_load(id, &c) < 0)
			memset(&c, 0, sizeof(c));
		if (!force) {
			FAIL("container %s is running: stop it first, or use rm -f", c.name ?: id);
			container_free(&c);
			return -1;
		}
		container_free(&c);
		if (signal_init(&s, SIGKILL, 10000) < 0)
			return FAIL("killing %.12s: %s", id, errno_name(errno));
		await_recorded(id);
	}
	return container_cleanup(id) < 0 ? FAIL("cannot remove everything of %.12s (see above)", id)
					  : 0;
}

/* The union daemon exits when the container's mount namespace dies; one
 * that does not (a stray reference) is stopped by hand. */
static int stop_union_daemon(const char *upper)
{
	pid_t pid;

	if (union_wait_released(upper, 5000) == 0)
		return 0;
	pid = union_daemon_pid(upper);
	if (pid > 0) {
		log_warn("strata-unionfs %d still serves %s: stopping it", (int)pid, upper);
		kill(pid, SIGTERM);
		if (union_wait_released(upper, 3000) == 0)
			return 0;
		kill(pid, SIGKILL);
	}
	return union_wait_released(upper, 3000);
}

int container_cleanup(const char *id)
{
	struct container c;
	struct cg_host h = { 0 };
	struct cg_container cg = { 0 };
	char dir[PATH_MAX], upper[PATH_MAX + 8];
	int lock = state_lock(id), ret = 0, e;

	if (config_load(id, &c) < 0)
		memset(&c, 0, sizeof(c));
	snprintf(dir, sizeof(dir), "%s/containers/%s", root_dir(), id);
	if (cg_host_detect(&h, NULL) == 0 && cg_container_find(&h, id, &cg) == 0) {
		if (cg_container_destroy(&cg) < 0) {
			log_error("cannot remove the cgroups of %.12s", id);
			ret = -1;
		}
		cg_container_free(&cg);
	}
	cg_host_free(&h);
	snprintf(upper, sizeof(upper), "%s/upper", dir);
	if (stop_union_daemon(upper) < 0) {
		log_error("strata-unionfs still holds %s", upper);
		ret = -1;
	}
	e = remove_tree(dir);
	if (e < 0) {
		log_error("removing %s: %s", dir, errno_name(-e));
		ret = -1;
	}
	name_release(c.name, id);
	e = state_remove_dir(id);
	if (e < 0) {
		log_error("removing %s/%s: %s", run_dir(), id, errno_name(-e));
		ret = -1;
	}
	state_unlock(lock);
	container_free(&c);
	return ret;
}

int container_commit(const char *id, const char *name, char *err, size_t errlen)
{
	struct container c;
	char upper[PATH_MAX];
	int r;

	if (config_load(id, &c) < 0)
		return FAIL("cannot read the configuration of %.12s", id);
	container_path(&c, "upper", upper, sizeof(upper));
	/* Volumes are bind mounts: their content never reaches upper. */
	r = image_tool((const char *const[]){ "commit", upper, c.image, name, NULL }, err, errlen);
	container_free(&c);
	return r;
}

/* ---- from the command line ------------------------------------------- */

#define DEFAULT_PATH "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

static bool has_path(char **env)
{
	for (size_t i = 0; env && env[i]; i++)
		if (!strncmp(env[i], "PATH=", 5))
			return true;
	return false;
}

/* The environment: a default PATH, the image's, TERM with -t, then -e. */
static int image_env(struct container *c, const struct image *img, char **extra_env)
{
	char **env = NULL;
	int e = 0;

	if (!has_path(img->env))
		e |= strv_add(&env, DEFAULT_PATH);
	for (size_t i = 0; img->env && img->env[i]; i++)
		e |= strv_add(&env, img->env[i]);
	if (c->tty)
		e |= strv_add(&env, "TERM=xterm");
	c->env = e ? NULL : env_merge(env, extra_env);
	strv_free(env);
	return c->env ? 0 : -1;
}

int container_from_image(struct container *c, int argc, char **argv, char **extra_env)
{
	struct image img = { 0 };
	char err[ERRLEN];
	int e = 0;

	if (!strcmp(c->image, "busybox") && !image_exists(root_dir(), "busybox") &&
	    image_tool((const char *const[]){ "busybox", NULL }, err, sizeof(err)) < 0) {
		log_error("building the busybox image: %s", err);
		return EXIT_RUNNER;
	}
	if (image_load(root_dir(), c->image, &img, err, sizeof(err)) < 0) {
		log_error("unable to find image '%s': %s", c->image, err);
		return EXIT_RUNNER;
	}
	for (size_t i = 0; i < img.nlayers; i++)
		e |= strv_add(&c->layers, img.layers[i]);
	c->nlayers = img.nlayers;
	for (int i = 0; i < argc; i++)
		e |= strv_add(&c->argv, argv[i]);
	for (size_t i = 0; argc == 0 && img.cmd && img.cmd[i]; i++)
		e |= strv_add(&c->argv, img.cmd[i]);
	if (!e && (!c->argv || !c->argv[0])) {
		log_error("no command given, and image '%s' has no default command", c->image);
		image_free(&img);
		return EXIT_RUNNER;
	}
	e |= image_env(c, &img, extra_env);
	if (!c->workdir)
		c->workdir = strdup(img.workdir && *img.workdir ? img.workdir : "/");
	image_free(&img);
	if (e || !c->workdir || !c->layers) {
		log_error("out of memory");
		return EXIT_RUNNER;
	}
	return 0;
}

int container_make_volumes(struct container *c)
{
	for (size_t i = 0; i < c->nvols; i++) {
		int e;

		if (!c->vols[i].name)
			continue;
		e = mkdir_p(c->vols[i].source, 0755);
		if (e < 0) {
			log_error("creating volume %s: %s", c->vols[i].name, errno_name(-e));
			return EXIT_RUNNER;
		}
	}
	return 0;
}

/* ---- export ------------------------------------------------------------ */

/* A container's merged tree, for export: a read-only union of its upper
 * dir over its image's layers, mounted in a private mount namespace of a
 * child process, so the host never sees it and it goes away with us. */
int container_export(const char *id, const char *dest, char *err, size_t errlen)
{
	struct container c;
	char mnt[] = "/tmp/strata-export.XXXXXX", **dirs, upper[PATH_MAX], msg[ERRLEN] = "";
	int pfd[2], status;
	ssize_t n;
	pid_t pid;

	if (config_load(id, &c) < 0)
		return FAIL("cannot read the configuration of %.12s", id);
	dirs = calloc(c.nlayers + 2, sizeof(char *));
	container_path(&c, "upper", upper, sizeof(upper));
	if (!dirs || !mkdtemp(mnt) || pipe2(pfd, O_CLOEXEC) < 0) {
		free(dirs);
		container_free(&c);
		return FAIL("preparing the export: %s", errno_name(errno));
	}
	dirs[0] = upper;
	for (size_t i = 0; i < c.nlayers; i++)
		dirs[i + 1] = c.layers[i];
	pid = fork();
	if (pid == 0) {
		close(pfd[0]);
		if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
			dprintf(pfd[1], "private mount namespace: %s", errno_name(errno));
			_exit(1);
		}
		if (union_mount_ro(dirs, c.nlayers + 1, mnt, msg, sizeof(msg)) < 0 ||
		    image_tool((const char *const[]){ "export-dir", mnt, dest, NULL }, msg, sizeof(msg)) <
			    0) {
			dprintf(pfd[1], "%s", msg);
			umount2(mnt, MNT_DETACH);
			_exit(1);
		}
		umount2(mnt, 0);
		_exit(0);
	}
	close(pfd[1]);
	n = pid > 0 ? read(pfd[0], msg, sizeof(msg) - 1) : -1;
	msg[n > 0 ? n : 0] = '\0';
	close(pfd[0]);
	status = 1;
	while (pid > 0 && waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	rmdir(mnt);
	free(dirs);
	container_free(&c);
	if (pid < 0)
		return FAIL("fork: %s", errno_name(errno));
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		return FAIL("%s", msg[0] ? msg : "exporting failed");
	return 0;
}

/* ---- "in use" ----
 * Serialises "is it in use?" with "now it is": a run holds use.lock shared
 * from resolving its image and volumes until its config.json names them,
 * image rm and volume rm hold it exclusive across their check and the
 * removal.  It is dropped before a run forks anything that could keep a
 * copy of the fd. */
int use_lock(int op)
{
	return root_lock("use.lock", op);
}

static int run_use_fd = -1;

int use_hold_for_run(void)
{
	int fd = use_lock(LOCK_SH);

	if (fd < 0)
		return fd;
	use_release_for_run();
	run_use_fd = fd;
	return 0;
}

void use_release_for_run(void)
{
	if (run_use_fd >= 0)
		close(run_use_fd);
	run_use_fd = -1;
}

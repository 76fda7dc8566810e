/* Helper programs (strata-unionfs, strata-procfs, strata-image): finding
 * them, and running them with their stderr captured as the one-line reason
 * of a failure. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/close_range.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "state.h"

static bool executable(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

int find_helper(const char *prog, const char *env, char *out, size_t len)
{
	const char *v = env ? getenv(env) : NULL;
	char self[PATH_MAX], *slash, *path, *save = NULL;
	ssize_t n;

	if (v && *v) {
		snprintf(out, len, "%s", v);
		return executable(out) ? 0 : -1;
	}
	/* Next to our own binary: a build tree or an install prefix. */
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = '\0';
		slash = strrchr(self, '/');
		if (slash) {
			*slash = '\0';
			if ((size_t)snprintf(out, len, "%s/%s", self, prog) < len && executable(out))
				return 0;
		}
	}
	path = strdup(getenv("PATH") ?: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
	for (char *d = path ? strtok_r(path, ":", &save) : NULL; d; d = strtok_r(NULL, ":", &save)) {
		if ((size_t)snprintf(out, len, "%s/%s", d, prog) < len && executable(out)) {
			free(path);
			return 0;
		}
	}
	free(path);
	snprintf(out, len, "%s", prog);
	return -1;
}

int helper_spawn(char *const argv[], int extra_fd, bool keep_stdio, struct helper *h)
{
	int pipefd[2];

	h->pid = -1;
	h->err_fd = -1;
	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return -1;
	h->pid = fork();
	if (h->pid < 0) {
		close(pipefd[0]);
		close(pipefd[1]);
		return -1;
	}
	if (h->pid == 0) {
		int null = open("/dev/null", O_RDWR | O_CLOEXEC);
		sigset_t none;

		/* A daemon must get the signals we hold back during setup. */
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGPIPE, SIG_DFL);

		if (null < 0 || dup2(pipefd[1], 2) < 0 ||
		    (!keep_stdio && (dup2(null, 0) < 0 || dup2(null, 1) < 0)))
			_exit(126);
		/* The daemons outlive us (strata-procfs every container): none
		 * may keep an fd our caller gave us, such as a pipe it reads
		 * to its end. */
		if (syscall(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC) < 0)
			_exit(126);
		if (extra_fd >= 0 && fcntl(extra_fd, F_SETFD, 0) < 0)
			_exit(126);
		execv(argv[0], argv);
		dprintf(2, "cannot execute %s: %s\n", argv[0], errno_name(errno));
		_exit(127);
	}
	close(pipefd[1]);
	h->err_fd = pipefd[0];
	return 0;
}

int helper_finish(struct helper *h, char *msg, size_t msglen)
{
	size_t got = 0;
	int status;

	msg[0] = '\0';
	/* EOF comes when the helper's foreground part exits: its daemon
	 * points stderr at /dev/null when it detaches. */
	for (;;) {
		ssize_t n = read(h->err_fd, msg + got, msglen - 1 - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
		if (got >= msglen - 1) {
			char sink[512];

			while (read(h->err_fd, sink, sizeof(sink)) > 0)
				;
			break;
		}
	}
	msg[got] = '\0';
	close(h->err_fd);
	h->err_fd = -1;
	while (waitpid(h->pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	h->pid = -1;
	msg[strcspn(msg, "\n")] = '\0';
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int run_helper(char *const argv[], int extra_fd, char *msg, size_t msglen)
{
	struct helper h;

	msg[0] = '\0';
	if (helper_spawn(argv, extra_fd, false, &h) < 0)
		return -1;
	return helper_finish(&h, msg, msglen);
}

int image_tool(const char *const args[], char *err, size_t errlen)
{
	char bin[PATH_MAX], msg[ERRLEN];
	const char *argv[16] = { bin, root_dir() };
	struct helper h;
	size_t n = 2;
	int st;

	if (find_helper("strata-image", "STRATA_IMAGE", bin, sizeof(bin)) < 0)
		return FAIL("strata-image not found (next to strata, or in PATH)");
	for (size_t i = 0; args[i] && n < sizeof(argv) / sizeof(argv[0]) - 1; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	if (helper_spawn((char *const *)argv, -1, true, &h) < 0)
		return FAIL("starting strata-image: %s", errno_name(errno));
	st = helper_finish(&h, msg, sizeof(msg));
	if (st > 128 && !msg[0]) /* e.g. SIGPIPE: the reader of an export left */
		return FAIL("strata-image killed by signal %s", sigabbrev_np(st - 128));
	if (st != 0)
		return FAIL("%s", msg[0] ? msg : "strata-image failed");
	return 0;
}

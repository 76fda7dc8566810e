/* Helper programs (strata-unionfs, strata-procfs, strata-image): finding
 * them, and running them with their stderr captured as the one-line reason
 * of a failure. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
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

int helper_spawn(char *const argv[], const int *keep, size_t nkeep, bool keep_stdio,
		 struct helper *h)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, piped;
	int pipefd[2], src[HELPER_MAX_KEEP], e = 0;
	size_t copied = 0;

	h->pid = -1;
	h->err_fd = -1;
	if (nkeep > HELPER_MAX_KEEP) {
		errno = EINVAL;
		return -1;
	}
	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return -1;
	/* Sources above every target, so no dup2 overwrites one still to
	 * be copied (keep[1] may well be descriptor 3). */
	for (; copied < nkeep; copied++) {
		src[copied] = fcntl(keep[copied], F_DUPFD_CLOEXEC, 3 + (int)nkeep);
		if (src[copied] < 0) {
			e = errno;
			break;
		}
	}
	/* posix_spawn (a vfork): a fork copies our page tables first, which
	 * costs milliseconds of every container start on a VM. */
	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&attr);
	/* A daemon must get the signals we hold back during setup, and die of
	 * SIGPIPE as programs do. */
	sigemptyset(&none);
	sigemptyset(&piped);
	sigaddset(&piped, SIGPIPE);
	e = e ?: posix_spawnattr_setsigmask(&attr, &none);
	e = e ?: posix_spawnattr_setsigdefault(&attr, &piped);
	e = e ?: posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	e = e ?: posix_spawn_file_actions_adddup2(&fa, pipefd[1], 2);
	if (!e && !keep_stdio) {
		e = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDWR, 0);
		e = e ?: posix_spawn_file_actions_adddup2(&fa, 0, 1);
	}
	for (size_t i = 0; !e && i < nkeep; i++)
		e = posix_spawn_file_actions_adddup2(&fa, src[i], 3 + (int)i);
	/* The daemons outlive us (strata-procfs every container): none may
	 * keep an fd our caller gave us, such as a pipe it reads to its end. */
	e = e ?: posix_spawn_file_actions_addclosefrom_np(&fa, 3 + (int)nkeep);
	e = e ?: posix_spawn(&h->pid, argv[0], &fa, &attr, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	while (copied)
		close(src[--copied]);
	close(pipefd[1]);
	if (e) {
		h->pid = -1;
		close(pipefd[0]);
		errno = e;
		return -1;
	}
	h->err_fd = pipefd[0];
	return 0;
}

/* Reads h's stderr to its end (the helper's foreground part exits, or its
 * daemon points stderr at /dev/null when it detaches); its first line goes
 * to msg. */
static void read_first_line(struct helper *h, char *msg, size_t msglen)
{
	size_t got = 0;

	msg[0] = '\0';
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
	msg[strcspn(msg, "\n")] = '\0';
	close(h->err_fd);
	h->err_fd = -1;
}

/* waitpid() retried on EINTR: the pid, 0 (WNOHANG: still running) or -1. */
static pid_t wait_helper(const struct helper *h, int options, int *status)
{
	pid_t r;

	while ((r = waitpid(h->pid, status, options)) < 0 && errno == EINTR)
		;
	return r;
}

/* A status as the shell reports it: the exit code, or 128 + the signal. */
static int exit_code(int status)
{
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int helper_finish(struct helper *h, char *msg, size_t msglen)
{
	int status;

	read_first_line(h, msg, msglen);
	if (wait_helper(h, 0, &status) < 0)
		return -1;
	h->pid = -1;
	return exit_code(status);
}

int helper_detached(struct helper *h, char *msg, size_t msglen)
{
	int status, code;
	pid_t r;

	read_first_line(h, msg, msglen);
	/* Silent: it detached and runs on, unless it died without a word. */
	r = wait_helper(h, msg[0] ? 0 : WNOHANG, &status);
	/* Ours until it exits; a zombie then until we do. */
	h->pid = -1;
	if (r <= 0)
		return r;
	code = exit_code(status);
	return code ? code : 1;
}

int run_helper(char *const argv[], char *msg, size_t msglen)
{
	struct helper h;

	msg[0] = '\0';
	if (helper_spawn(argv, NULL, 0, false, &h) < 0)
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
	if (helper_spawn((char *const *)argv, NULL, 0, true, &h) < 0)
		return FAIL("starting strata-image: %s", errno_name(errno));
	st = helper_finish(&h, msg, sizeof(msg));
	if (st > 128 && !msg[0]) /* e.g. SIGPIPE: the reader of an export left */
		return FAIL("strata-image killed by signal %s", sigabbrev_np(st - 128));
	if (st != 0)
		return FAIL("%s", msg[0] ? msg : "strata-image failed");
	return 0;
}

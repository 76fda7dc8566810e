/* Inside the container: pid 1 (a minimal init that forwards signals and
 * reaps), the command's final steps before exec (user, workdir,
 * environment, seccomp), and `strata exec`, which joins a running
 * container's namespaces and cgroups and runs one more command there. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/close_range.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "parse.h"
#include "runner.h"
#include "state.h"

extern char **environ;

/* The signals pid 1 passes on to the command. */
static const int forwarded[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH };

static __attribute__((noreturn)) void exec_fail(const struct exec_spec *spec, int code,
						 const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void exec_fail(const struct exec_spec *spec, int code, const char *fmt, ...)
{
	char text[ERRLEN];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (spec->sync < 0 || sync_send(spec->sync, SYNC_ERROR, code, -1, text) < 0)
		dprintf(2, "strata: %s\n", text);
	_exit(code);
}

/* ---- environment -------------------------------------------------------- */

static bool same_key(const char *a, const char *b)
{
	size_t la = strcspn(a, "="), lb = strcspn(b, "=");

	return la == lb && !strncmp(a, b, la);
}

char **env_merge(char *const *base, char *const *extra)
{
	size_t nb = 0, ne = 0, n = 0;
	char **v;

	while (base && base[nb])
		nb++;
	while (extra && extra[ne])
		ne++;
	v = calloc(nb + ne + 1, sizeof(*v));
	if (!v)
		return NULL;
	for (size_t i = 0; i < nb + ne; i++) {
		const char *e = i < nb ? base[i] : extra[i - nb];
		size_t j;

		for (j = 0; j < n && !same_key(v[j], e); j++)
			;
		if (j < n)
			free(v[j]);
		v[j] = strdup(e);
		if (!v[j]) {
			strv_free(v);
			return NULL;
		}
		if (j == n)
			n++;
	}
	return v;
}

static bool env_has(char **env, const char *key)
{
	for (size_t i = 0; env && env[i]; i++)
		if (same_key(env[i], key))
			return true;
	return false;
}

/* ---- the user ----------------------------------------------------------- */

struct user {
	uid_t uid;
	gid_t gid;
	char home[PATH_MAX];
};

static bool numeric(const char *s, unsigned long *out)
{
	char *end;

	if (!*s || *s == '-')
		return false;
	errno = 0;
	*out = strtoul(s, &end, 10);
	return !errno && !*end && *out < 0xffffffffUL;
}

/* From the container's own /etc/passwd and /etc/group, never the host's. */
static int lookup_user(const char *spec, struct user *u, char *msg, size_t len)
{
	char name[256], *colon;
	struct passwd *pw = NULL;
	unsigned long num;
	bool have_num;
	FILE *f;

	u->uid = 0;
	u->gid = 0;
	snprintf(u->home, sizeof(u->home), "/root");
	if (!spec || !*spec)
		return 0;
	snprintf(name, sizeof(name), "%s", spec);
	colon = strchr(name, ':');
	if (colon)
		*colon++ = '\0';
	have_num = numeric(name, &num);
	f = fopen("/etc/passwd", "re");
	while (f && (pw = fgetpwent(f))) {
		if (have_num ? pw->pw_uid == (uid_t)num : !strcmp(pw->pw_name, name))
			break;
	}
	if (pw) {
		u->uid = pw->pw_uid;
		u->gid = pw->pw_gid;
		snprintf(u->home, sizeof(u->home), "%s", pw->pw_dir);
	} else if (have_num) {
		u->uid = (uid_t)num;
		u->gid = (gid_t)num;
		snprintf(u->home, sizeof(u->home), "/");
	} else {
		if (f)
			fclose(f);
		snprintf(msg, len, "unable to find user %s: no matching entries in passwd file", name);
		return -1;
	}
	if (f)
		fclose(f);
	if (!colon)
		return 0;
	if (numeric(colon, &num)) {
		u->gid = (gid_t)num;
		return 0;
	}
	f = fopen("/etc/group", "re");
	for (struct group *gr; f && (gr = fgetgrent(f));) {
		if (!strcmp(gr->gr_name, colon)) {
			u->gid = gr->gr_gid;
			fclose(f);
			return 0;
		}
	}
	if (f)
		fclose(f);
	snprintf(msg, len, "unable to find group %s: no matching entries in group file", colon);
	return -1;
}

/* ---- exec --------------------------------------------------------------- */

static void reset_signals(void)
{
	sigset_t all;

	for (int s = 1; s < NSIG; s++)
		signal(s, SIG_DFL);
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
}

static void setup_stdio(const struct exec_spec *spec)
{
	if (setsid() < 0)
		exec_fail(spec, EXIT_RUNNER, "setsid: %s", errno_name(errno));
	if (spec->tty_slave >= 0) {
		if (ioctl(spec->tty_slave, TIOCSCTTY, 0) < 0)
			exec_fail(spec, EXIT_RUNNER, "TIOCSCTTY: %s", errno_name(errno));
		for (int i = 0; i < 3; i++)
			if (dup2(spec->tty_slave, i) < 0)
				exec_fail(spec, EXIT_RUNNER, "dup2: %s", errno_name(errno));
		return;
	}
	for (int i = 0; i < 3; i++)
		if (spec->stdio[i] >= 0 && spec->stdio[i] != i && dup2(spec->stdio[i], i) < 0)
			exec_fail(spec, EXIT_RUNNER, "dup2: %s", errno_name(errno));
}

static void enter_workdir(const struct exec_spec *spec)
{
	const char *wd = spec->workdir && *spec->workdir ? spec->workdir : "/";
	int e;

	/* docker creates a missing working directory (as root). */
	e = mkdir_p(wd, 0755);
	if (e < 0 && e != -EEXIST)
		exec_fail(spec, EXIT_RUNNER, "working directory %s: %s", wd, errno_name(-e));
	if (chdir(wd) < 0)
		exec_fail(spec, EXIT_RUNNER, "working directory %s: %s", wd, errno_name(errno));
}

void exec_command(const struct exec_spec *spec)
{
	struct user u;
	char msg[ERRLEN], home[PATH_MAX + 8], **env;
	const char *prog = spec->argv && spec->argv[0] ? spec->argv[0] : NULL;

	reset_signals();
	setup_stdio(spec);
	/* Nothing of the caller's beyond 0-2 may reach the command: an
	 * inherited directory fd would be a way out of the root. */
	if (syscall(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC) < 0)
		exec_fail(spec, EXIT_RUNNER, "close_range: %s", errno_name(errno));
	if (!prog)
		exec_fail(spec, EXIT_RUNNER, "no command given and the image has none");
	if (lookup_user(spec->user, &u, msg, sizeof(msg)) < 0)
		exec_fail(spec, EXIT_RUNNER, "%s", msg);
	enter_workdir(spec);
	env = env_merge(spec->env, NULL);
	if (env && !env_has(env, "HOME")) {
		char *extra[] = { home, NULL }, **e2;

		snprintf(home, sizeof(home), "HOME=%s", u.home);
		e2 = env_merge(env, extra);
		strv_free(env);
		env = e2;
	}
	if (!env)
		exec_fail(spec, EXIT_RUNNER, "out of memory");
	if (setgroups(0, NULL) < 0 || setgid(u.gid) < 0 || setuid(u.uid) < 0)
		exec_fail(spec, EXIT_RUNNER, "switching to user %u:%u: %s", u.uid, u.gid,
			  errno_name(errno));
	if (security_seccomp(spec->notify ? spec->sync : -1, msg, sizeof(msg)) < 0)
		exec_fail(spec, EXIT_RUNNER, "%s", msg);
	/* execvp searches the PATH of our own environment. */
	environ = env;
	execvp(prog, spec->argv);
	if (errno == ENOENT && !strchr(prog, '/'))
		exec_fail(spec, EXIT_NOT_FOUND, "exec: \"%s\": executable file not found in $PATH", prog);
	if (errno == ENOENT)
		exec_fail(spec, EXIT_NOT_FOUND, "exec: \"%s\": no such file or directory", prog);
	exec_fail(spec, EXIT_CANNOT_EXEC, "exec: \"%s\": %s", prog,
		  errno == EACCES ? "permission denied" : errno_name(errno));
}

/* ---- pid 1 -------------------------------------------------------------- */

static char *args_start, *args_end;

void proc_title_init(int argc, char **argv)
{
	if (argc < 1)
		return;
	args_start = argv[0];
	args_end = argv[argc - 1] + strlen(argv[argc - 1]) + 1;
}

/* The container's ps shows pid 1 as "strata-init", not the runner's
 * command line with its host paths: the argument area is rewritten and
 * its end moved (PR_SET_MM needs CAP_SYS_RESOURCE, which we still have). */
static void set_proc_title(const char *title)
{
	size_t room = (size_t)(args_end - args_start), len = strlen(title) + 1;

	if (!args_start || room < len)
		return;
	memset(args_start, 0, room);
	memcpy(args_start, title, len);
	if (prctl(PR_SET_MM, PR_SET_MM_ARG_END, (unsigned long)(args_start + len), 0, 0) < 0)
		log_debug("PR_SET_MM_ARG_END: %s", errno_name(errno));
	prctl(PR_SET_NAME, title, 0, 0, 0);
}

void init_loop(pid_t cmd)
{
	sigset_t set;
	int status = 0;

	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++)
		sigaddset(&set, forwarded[i]);
	/* Blocked signals are queued even for pid 1 (which the kernel
	 * shields from signals it has no handler for). */
	sigprocmask(SIG_BLOCK, &set, NULL);
	for (;;) {
		siginfo_t si;
		pid_t p;

		if (sigwaitinfo(&set, &si) < 0)
			continue;
		if (si.si_signo != SIGCHLD) {
			kill(cmd, si.si_signo);
			continue;
		}
		/* Reap everything: orphans re-parented to us as well. */
		while ((p = waitpid(-1, &status, WNOHANG)) > 0) {
			if (p != cmd)
				continue;
			if (WIFSIGNALED(status))
				_exit(128 + WTERMSIG(status));
			_exit(WEXITSTATUS(status));
		}
		if (p < 0 && errno == ECHILD)
			_exit(EXIT_RUNNER);
	}
}

/* Forks the command under a blocked signal mask (so none is lost before
 * init_loop waits), then becomes its init. */
static __attribute__((noreturn)) void spawn_and_wait(struct exec_spec *spec, bool restricted)
{
	char err[ERRLEN];
	sigset_t set;
	pid_t pid;

	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++)
		sigaddset(&set, forwarded[i]);
	sigprocmask(SIG_BLOCK, &set, NULL);
	if (restricted && security_restrict(err, sizeof(err)) < 0)
		exec_fail(spec, EXIT_RUNNER, "%s", err);
	pid = fork();
	if (pid < 0)
		exec_fail(spec, EXIT_RUNNER, "fork: %s", errno_name(errno));
	if (pid == 0)
		exec_command(spec);
	/* The command holds what it needs; we keep nothing of it (the pty,
	 * the channel, the log), so they close when it ends, and no power:
	 * forwarding signals to our own child needs no capability. */
	for (int i = 0; i < 3; i++) {
		int null = open("/dev/null", O_RDWR | O_CLOEXEC);

		if (null >= 0) {
			dup3(null, i, 0);
			close(null);
		}
	}
	if (syscall(SYS_close_range, 3, ~0U, 0) < 0 || security_drop_all_caps() < 0) {
		kill(pid, SIGKILL);
		_exit(EXIT_RUNNER);
	}
	init_loop(pid);
}

void init_start(struct exec_spec *spec)
{
	set_proc_title("strata-init");
	spawn_and_wait(spec, true);
}

/* ---- strata exec -------------------------------------------------------- */

static const char *const ns_names[] = { "ipc", "uts", "net", "pid", "cgroup", "mnt" };
#define NNS (sizeof(ns_names) / sizeof(ns_names[0]))

static int open_namespaces(pid_t pid, int fds[NNS + 1], char *err, size_t errlen)
{
	char path[64];

	/* The init's root too: the namespace's root is not it when the host
	 * itself runs chrooted (an initramfs, the test VM) and the container
	 * had to chroot instead of pivot_root. */
	snprintf(path, sizeof(path), "/proc/%d/root", (int)pid);
	fds[NNS] = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fds[NNS] < 0) {
		snprintf(err, errlen, "%s: %s", path, errno_name(errno));
		return -1;
	}

	for (size_t i = 0; i < NNS; i++) {
		snprintf(path, sizeof(path), "/proc/%d/ns/%s", (int)pid, ns_names[i]);
		fds[i] = open(path, O_RDONLY | O_CLOEXEC);
		if (fds[i] < 0) {
			snprintf(err, errlen, "%s: %s", path, errno_name(errno));
			while (i--)
				close(fds[i]);
			close(fds[NNS]);
			return -1;
		}
	}
	return 0;
}

/* The first child: enters the cgroups and namespaces, opens the pty, and
 * forks the command, which is then in the container's pid namespace. */
static __attribute__((noreturn)) void exec_joiner(struct exec_spec *spec, int fds[NNS + 1],
						   struct cg_container *cg, bool tty)
{
	char err[ERRLEN], slave_name[64];
	int master, slave;

	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	if (cg_container_attach(cg, getpid(), false, err, sizeof(err)) < 0)
		exec_fail(spec, EXIT_RUNNER, "joining the container's cgroups: %s", err);
	for (size_t i = 0; i < NNS; i++) {
		if (setns(fds[i], 0) < 0)
			exec_fail(spec, EXIT_RUNNER, "joining the %s namespace: %s", ns_names[i],
				  errno_name(errno));
		close(fds[i]);
	}
	if (fchdir(fds[NNS]) < 0 || chroot(".") < 0 || chdir("/") < 0)
		exec_fail(spec, EXIT_RUNNER, "entering the container's root: %s", errno_name(errno));
	close(fds[NNS]);
	if (tty) {
		int e = pty_open("/dev/pts/ptmx", &master, &slave, slave_name, sizeof(slave_name));

		if (e < 0)
			exec_fail(spec, EXIT_RUNNER, "opening a pty: %s", errno_name(-e));
		if (sync_send(spec->sync, SYNC_PTY, 0, master, NULL) < 0)
			exec_fail(spec, EXIT_RUNNER, "passing the pty: %s", errno_name(errno));
		close(master);
		spec->tty_slave = slave;
	}
	spawn_and_wait(spec, true);
}

/* Until EOF (the command exec'd): its pty, its seccomp listener (handed on
 * to the monitor over conn), or its error. */
static int exec_wait_start(int sock, int conn, int *master, char *err, size_t errlen, int *code)
{
	struct sync_msg m;
	int fd, r;

	*master = -1;
	for (;;) {
		r = sync_recv(sock, &m, &fd, 60000);
		if (r == 0)
			return 0;
		if (r < 0) {
			snprintf(err, errlen, "no answer from the exec'd process%s",
				 r == -2 ? " (timeout)" : "");
			*code = EXIT_RUNNER;
			return -1;
		}
		if (m.type == SYNC_PTY) {
			*master = fd;
		} else if (m.type == SYNC_NOTIFY && fd >= 0) {
			if (conn < 0 || notify_pass(conn, fd) < 0)
				log_warn("the monitor did not take the seccomp listener: "
					 "sysinfo(2) gets ENOSYS");
			close(fd);
		} else if (m.type == SYNC_ERROR) {
			snprintf(err, errlen, "%s", m.text);
			*code = m.code ? m.code : EXIT_RUNNER;
			return -1;
		} else if (fd >= 0) {
			close(fd);
		}
	}
}

static void close_fds(int *fds, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

/* The joiner's exit status once it is gone; the relay runs meanwhile. */
static int exec_wait(pid_t pid, int master, bool tty, bool interactive)
{
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0), status;

	if (tty && master >= 0 && tty_raw(0) < 0)
		log_warn("cannot put the terminal in raw mode");
	if (pidfd < 0)
		log_warn("pidfd_open: %s: no relay", errno_name(errno));
	else
		relay_run(pidfd, pid, master, interactive ? 0 : -1, 1);
	tty_restore();
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			log_error("waitpid: %s", errno_name(errno));
			status = EXIT_RUNNER << 8;
			break;
		}
	}
	if (pidfd >= 0)
		close(pidfd);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Forks the joiner with the namespaces in fds (closed here on every path)
 * and returns the command's exit status. */
static int exec_start(const struct container *c, struct exec_spec *spec, int fds[NNS + 1],
		      struct cg_container *cg, int conn, bool tty, bool interactive)
{
	char err[ERRLEN], **env = env_merge(c->env, spec->env);
	int sv[2] = { -1, -1 }, null = open("/dev/null", O_RDONLY | O_CLOEXEC), master, code;
	pid_t pid = -1;

	if (!env || null < 0 || socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		log_error("preparing exec: %s", env ? errno_name(errno) : "out of memory");
	} else {
		spec->env = env;
		spec->workdir = spec->workdir ?: c->workdir;
		spec->user = spec->user ?: c->user;
		spec->stdio[0] = interactive ? -1 : null;
		spec->tty_slave = -1;
		spec->sync = sv[1];
		spec->notify = conn >= 0;
		pid = fork();
		if (pid < 0)
			log_error("fork: %s", errno_name(errno));
		if (pid == 0) {
			close(sv[0]);
			if (conn >= 0)
				close(conn);
			exec_joiner(spec, fds, cg, tty);
		}
	}
	close_fds(fds, NNS + 1);
	close_fds((int[]){ sv[1], null }, 2);
	code = EXIT_RUNNER;
	if (pid > 0) {
		/* An exec error is reported here; the joiner then exits with
		 * its code (126/127), which is what we return. */
		if (exec_wait_start(sv[0], conn, &master, err, sizeof(err), &code) < 0)
			log_error("%s", err);
		close(sv[0]);
		code = exec_wait(pid, master, tty, interactive);
		if (master >= 0)
			close(master);
	} else if (sv[0] >= 0) {
		close(sv[0]);
	}
	strv_free(env);
	return code;
}

int container_exec(const char *id, struct exec_spec *spec, bool tty, bool interactive)
{
	struct container c;
	struct cstate s;
	struct cg_host h = { 0 };
	struct cg_container cg = { 0 };
	char err[ERRLEN];
	int fds[NNS + 1], code = EXIT_RUNNER;

	if (config_load(id, &c) < 0 || state_refresh(id, &s) < 0) {
		log_error("container %.12s: cannot read its state", id);
		container_free(&c);
		return EXIT_RUNNER;
	}
	if (s.status != ST_RUNNING || !proc_alive(s.pid, s.pid_start)) {
		log_error("container %s is not running", c.name ?: id);
	} else if (open_namespaces(s.pid, fds, err, sizeof(err)) < 0) {
		log_error("%s", err);
	} else if (!proc_alive(s.pid, s.pid_start) || cg_host_detect(&h, NULL) < 0 ||
		   cg_container_find(&h, id, &cg) < 0) {
		/* The namespaces must be the container's, not those of a
		 * process that reused its pid between the check and the opens. */
		log_error("container %s is not running", c.name ?: id);
		close_fds(fds, NNS + 1);
	} else {
		/* No monitor (it died): a filter without the notify rules,
		 * rather than calls that fail with ENOSYS. */
		int conn = notify_connect(id);

		code = exec_start(&c, spec, fds, &cg, conn, tty, interactive);
		if (conn >= 0)
			close(conn);
	}
	cg_container_free(&cg);
	cg_host_free(&h);
	container_free(&c);
	return code;
}

/* Harness for the strata integration tests; see rn_harness.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "rn_harness.h"

#define TIMEOUT_MS 120000

static const char *env_or(const char *name, const char *def)
{
	const char *v = getenv(name);

	return v && *v ? v : def;
}

const char *rn_root(void)
{
	return env_or("STRATA_ROOT", "/nonexistent");
}

const char *rn_run(void)
{
	return env_or("STRATA_RUN", "/nonexistent");
}

void rn_msleep(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

char *rn_slurp(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t len = 0, cap = 1 << 16;
	char *buf, *nb;
	ssize_t n;

	if (fd < 0)
		return NULL;
	buf = malloc(cap);
	while (buf && (n = read(fd, buf + len, cap - len - 1)) > 0) {
		len += (size_t)n;
		if (cap - len < 4096) {
			nb = realloc(buf, cap * 2);
			if (!nb) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = nb;
			cap *= 2;
		}
	}
	close(fd);
	if (buf)
		buf[len] = '\0';
	return buf;
}

bool rn_pid_alive(pid_t pid)
{
	char path[64], *st, *p;
	bool alive;

	if (pid <= 0)
		return false;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	st = rn_slurp(path);
	p = st ? strrchr(st, ')') : NULL;
	alive = p && p[1] == ' ' && p[2] != 'Z' && p[2] != 'X';
	free(st);
	return alive;
}

/* sh -c cmd, output captured, with a timeout. */
static int run_cmd(char *out, size_t outlen, const char *cmd)
{
	int pfd[2], status = 0, waited = 0;
	size_t got = 0;
	pid_t pid;

	if (out && outlen)
		out[0] = '\0';
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return -3;
	pid = fork();
	if (pid < 0)
		return -3;
	if (pid == 0) {
		int null = open("/dev/null", O_RDONLY);

		setpgid(0, 0);
		dup2(null, 0);
		dup2(pfd[1], 1);
		dup2(pfd[1], 2);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	for (;;) {
		struct pollfd p = { .fd = pfd[0], .events = POLLIN };
		char sink[4096];
		ssize_t n;

		if (poll(&p, 1, 100) == 0) {
			waited += 100;
			if (waited >= TIMEOUT_MS) {
				kill(-pid, SIGKILL);
				close(pfd[0]);
				waitpid(pid, NULL, 0);
				return -2;
			}
			continue;
		}
		if (out && got + 1 < outlen)
			n = read(pfd[0], out + got, outlen - 1 - got);
		else
			n = read(pfd[0], sink, sizeof(sink));
		if (n <= 0)
			break;
		if (out && got + 1 < outlen)
			got += (size_t)n;
	}
	close(pfd[0]);
	if (out && outlen)
		out[got] = '\0';
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int rn_sh(char *out, size_t outlen, const char *fmt, ...)
{
	char *cmd;
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vasprintf(&cmd, fmt, ap);
	va_end(ap);
	if (r < 0)
		return -3;
	r = run_cmd(out, outlen, cmd);
	free(cmd);
	return r;
}

int rn_strata(char *out, size_t outlen, const char *fmt, ...)
{
	char *args, *cmd;
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vasprintf(&args, fmt, ap);
	va_end(ap);
	if (r < 0)
		return -3;
	r = asprintf(&cmd, "exec '%s' %s", env_or("STRATA_BIN", "strata"), args);
	free(args);
	if (r < 0)
		return -3;
	r = run_cmd(out, outlen, cmd);
	free(cmd);
	return r;
}

void rn_id(const char *name, char id[65])
{
	char p[4096];
	ssize_t n;

	snprintf(p, sizeof(p), "%s/names/%s", rn_run(), name);
	n = readlink(p, id, 64);
	id[n == 64 ? 64 : 0] = '\0';
}

static json_object *inspect(const char *ref)
{
	static char out[1 << 20];
	json_object *all;

	if (rn_strata(out, sizeof(out), "inspect '%s' 2>/dev/null", ref) != 0)
		return NULL;
	all = json_tokener_parse(out);
	return all;
}

bool rn_inspect(const char *ref, const char *key, char *val, size_t len)
{
	json_object *all = inspect(ref), *o;
	char path[256], *save = NULL;
	bool ok = false;

	val[0] = '\0';
	if (!all)
		return false;
	o = json_object_array_get_idx(all, 0);
	snprintf(path, sizeof(path), "%s", key);
	for (char *k = strtok_r(path, ".", &save); o && k; k = strtok_r(NULL, ".", &save))
		if (!json_object_object_get_ex(o, k, &o))
			o = NULL;
	if (o) {
		snprintf(val, len, "%s", json_object_get_string(o));
		ok = true;
	}
	json_object_put(all);
	return ok;
}

char **rn_layers(const char *image)
{
	json_object *all = inspect(image), *o, *l;
	char **v = NULL;
	size_t n;

	if (!all)
		return NULL;
	o = json_object_array_get_idx(all, 0);
	if (o && json_object_object_get_ex(o, "Layers", &l)) {
		n = json_object_array_length(l);
		v = calloc(n + 1, sizeof(*v));
		for (size_t i = 0; v && i < n; i++)
			v[i] = strdup(json_object_get_string(json_object_array_get_idx(l, i)));
	}
	json_object_put(all);
	return v;
}

/* ---- leftovers ---------------------------------------------------------- */

/* Every cgroup directory named .../strata/<id> on this host. */
static int cgroup_dirs(const char *id, char dirs[][4096], int max)
{
	DIR *d = opendir("/sys/fs/cgroup");
	struct dirent *e;
	struct stat st;
	int n = 0;

	if (!d)
		return 0;
	snprintf(dirs[n], 4096, "/sys/fs/cgroup/strata/%s", id);
	if (stat(dirs[n], &st) == 0)
		n++;
	while (n < max && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(dirs[n], 4096, "/sys/fs/cgroup/%s/strata/%s", e->d_name, id);
		if (stat(dirs[n], &st) == 0)
			n++;
	}
	closedir(d);
	return n;
}

/* Pids (not zombies) whose command line mentions needle. */
static int procs_naming(const char *needle, pid_t *pids, int max)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	int n = 0;

	if (!d)
		return 0;
	while (n < max && (e = readdir(d))) {
		char path[300], *cmd;
		ssize_t len;
		int fd;
		pid_t pid = (pid_t)atoi(e->d_name);

		if (pid <= 0 || pid == getpid())
			continue;
		snprintf(path, sizeof(path), "/proc/%s/cmdline", e->d_name);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		cmd = calloc(1, 65536);
		len = cmd ? read(fd, cmd, 65535) : -1;
		close(fd);
		for (ssize_t i = 0; i < len; i++)
			if (!cmd[i])
				cmd[i] = ' ';
		if (len > 0 && strstr(cmd, needle) && rn_pid_alive(pid))
			pids[n++] = pid;
		free(cmd);
	}
	closedir(d);
	return n;
}

int rn_procs_naming(const char *needle)
{
	pid_t pids[64];

	return procs_naming(needle, pids, 64);
}

void rn_assert_gone(const char *id, pid_t pid)
{
	char p[4096], dirs[16][4096], *mi;
	pid_t pids[16];
	struct stat st;
	int n;

	cr_assert(id && strlen(id) == 64, "bad container id '%s'", id ? id : "(null)");
	/* The union daemon exits asynchronously after its namespace died;
	 * strata rm waited for it, so allow no more than a moment. */
	for (int i = 0; i < 50 && procs_naming(id, pids, 16) > 0; i++)
		rn_msleep(20);
	n = procs_naming(id, pids, 16);
	cr_expect(n == 0, "%d process(es) still name container %.12s (first: pid %d)", n, id,
		  n ? (int)pids[0] : 0);
	snprintf(p, sizeof(p), "%s/%s", rn_run(), id);
	cr_expect(stat(p, &st) < 0 && errno == ENOENT, "state dir %s still there", p);
	snprintf(p, sizeof(p), "%s/containers/%s", rn_root(), id);
	cr_expect(stat(p, &st) < 0 && errno == ENOENT, "container dir %s still there", p);
	n = cgroup_dirs(id, dirs, 16);
	cr_expect(n == 0, "cgroup %s still there", n ? dirs[0] : "");
	mi = rn_slurp("/proc/self/mountinfo");
	cr_expect(mi && !strstr(mi, id), "a mount still names container %.12s", id);
	free(mi);
	if (pid > 0)
		cr_expect(!rn_pid_alive(pid), "the container's init %d is still alive", (int)pid);
}

/* Removes everything of every container of this run, by the book first
 * (strata rm -f), then by hand. */
static void sweep(void)
{
	const char *run = getenv("STRATA_RUN");
	struct dirent *e;
	DIR *d;

	if (!run)
		return;
	d = opendir(run);
	while (d && (e = readdir(d))) {
		char dirs[16][4096];
		pid_t pids[16];
		int n;

		if (strlen(e->d_name) != 64)
			continue;
		rn_strata(NULL, 0, "rm -f %s", e->d_name);
		n = procs_naming(e->d_name, pids, 16);
		for (int i = 0; i < n; i++)
			kill(pids[i], SIGKILL);
		n = cgroup_dirs(e->d_name, dirs, 16);
		for (int i = 0; i < n; i++)
			rmdir(dirs[i]);
		rn_sh(NULL, 0, "rm -rf '%s/%s' '%s/containers/%s'", run, e->d_name, rn_root(),
		      e->d_name);
	}
	if (d)
		closedir(d);
	/* Container dirs whose state vanished (a half-made container). */
	rn_sh(NULL, 0, "rm -rf '%s'/containers/* '%s'/names/*", rn_root(), run);
}

void rn_init(void)
{
	if (geteuid() != 0)
		cr_skip_test("the runner tests need root (namespaces, mounts, cgroups)");
	if (!getenv("STRATA_RUN"))
		cr_assert_fail("STRATA_RUN is not set: the harness did not start");
}

void rn_fini(void)
{
	sweep();
}

ReportHook(PRE_ALL)(struct criterion_test_set *set)
{
	static char dir[] = "/tmp/strata-rt.XXXXXX";
	char p[128];

	(void)set;
	if (!mkdtemp(dir))
		return;
	snprintf(p, sizeof(p), "%s/root", dir);
	setenv("STRATA_ROOT", p, 1);
	snprintf(p, sizeof(p), "%s/run", dir);
	setenv("STRATA_RUN", p, 1);
	setenv("STRATA_RT_DIR", dir, 1);
}

ReportHook(POST_FINI)(struct criterion_test_stats *stats)
{
	(void)stats;
	sweep();
}

ReportHook(TEST_CRASH)(struct criterion_test_stats *stats)
{
	(void)stats;
	sweep();
}

ReportHook(POST_ALL)(struct criterion_global_stats *stats)
{
	const char *dir = getenv("STRATA_RT_DIR");
	char p[4096], *pid;

	(void)stats;
	sweep();
	if (!dir)
		return;
	/* Our strata-procfs: unmounting stops it; the pidfile covers a
	 * daemon that is not mounted any more. */
	snprintf(p, sizeof(p), "%s/root/procfs.pid", dir);
	pid = rn_slurp(p);
	snprintf(p, sizeof(p), "%s/root/procfs", dir);
	umount2(p, MNT_DETACH);
	if (pid && atoi(pid) > 0) {
		for (int i = 0; i < 100 && rn_pid_alive(atoi(pid)); i++)
			rn_msleep(20);
		if (rn_pid_alive(atoi(pid)))
			kill(atoi(pid), SIGKILL);
	}
	free(pid);
	rn_sh(NULL, 0, "rm -rf '%s'", dir);
}

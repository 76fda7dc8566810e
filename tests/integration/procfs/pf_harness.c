/* Harness for the strata-procfs integration tests; see pf_harness.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
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

#include "cgroup.h"
#include "cgroup_write.h"
#include "pf_harness.h"

#define REG_ENV "STRATA_PF_IT_REGISTRY"

struct pf_state PF;

void pf_msleep(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

void pf_reg(const char *fmt, ...)
{
	const char *reg = getenv(REG_ENV);
	va_list ap;
	FILE *f;

	if (!reg || !(f = fopen(reg, "a")))
		return;
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	fputc('\n', f);
	fclose(f);
}

static int write_str(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), err = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, s, strlen(s)) < 0)
		err = -errno;
	close(fd);
	return err;
}

char *pf_slurp(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t len = 0, cap = 1 << 16;
	char *buf;
	ssize_t n;

	if (fd < 0)
		return NULL;
	buf = malloc(cap);
	while (buf && (n = read(fd, buf + len, cap - len - 1)) > 0) {
		len += (size_t)n;
		if (cap - len < 4096) {
			char *nb = realloc(buf, cap * 2);

			if (!nb) {
				free(buf);
				buf = NULL;
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

/* Start time of pid (field 22), 0 when gone: a registry entry is only
 * acted on while the pid still names the process that was registered. */
static unsigned long long start_time(pid_t pid)
{
	char path[64], *st, *p;
	unsigned long long t = 0;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	st = pf_slurp(path);
	p = st ? strrchr(st, ')') : NULL;
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu",
			 &t) != 1)
		t = 0;
	free(st);
	return t;
}

void pf_reg_proc(const char *kind, pid_t pid)
{
	pf_reg("%s %d %llu", kind, (int)pid, start_time(pid));
}

bool pf_pid_alive(pid_t pid)
{
	char path[64], *st, *p;
	bool alive;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	st = pf_slurp(path);
	if (!st)
		return false;
	p = strrchr(st, ')');
	alive = p && p[2] != 'Z' && p[2] != 'X';
	free(st);
	return alive;
}

bool pf_is_mounted(const char *path)
{
	char *mi = pf_slurp("/proc/self/mountinfo"), *line, *save;
	bool found = false;

	if (!mi)
		return false;
	for (line = strtok_r(mi, "\n", &save); line && !found; line = strtok_r(NULL, "\n", &save)) {
		char mp[4096];

		if (sscanf(line, "%*s %*s %*s %*s %4095s", mp) == 1 && strcmp(mp, path) == 0)
			found = true;
	}
	free(mi);
	return found;
}

/* The cgroup.procs files a process is written to to join cg (NULL: the
 * roots), found before any fork: the child of spawn_sh() only writes. */
#define MAX_JOIN (CG_NCTRL + 1)
struct join {
	int n;
	char procs[MAX_JOIN][PATH_MAX];
};

/* Co-mounted controllers ("cpu,cpuacct", every one on v2) share a dir. */
static void add_join(struct join *j, const char *dir)
{
	char procs[PATH_MAX];

	snprintf(procs, sizeof(procs), "%s/cgroup.procs", dir);
	for (int i = 0; i < j->n; i++)
		if (strcmp(j->procs[i], procs) == 0)
			return;
	if (j->n < MAX_JOIN)
		memcpy(j->procs[j->n++], procs, sizeof(procs));
}

static int join_prepare(const char *cg, struct join *j)
{
	struct cg_host h;
	int err;

	j->n = 0;
	err = cg_host_detect(&h, NULL);
	if (err < 0)
		return err;
	if (cg) {
		struct cg_container c;

		err = cg_container_find(&h, cg, &c);
		if (err == 0) {
			if (c.v2_dir)
				add_join(j, c.v2_dir);
			for (int i = 0; i < CG_NCTRL; i++)
				if (c.dir[i])
					add_join(j, c.dir[i]);
			cg_container_free(&c);
		}
	} else {
		/* Every controller's hierarchy, and the unified one on a pure v2
		 * host (on a hybrid one it holds no controller strata-procfs
		 * reads, and the process stays where it is there). */
		if (h.layout == CG_LAYOUT_V2 && h.v2_mount)
			add_join(j, h.v2_mount);
		for (int i = 0; i < CG_NCTRL; i++)
			if (h.mount[i])
				add_join(j, h.mount[i]);
	}
	cg_host_free(&h);
	return err < 0 ? err : j->n ? 0 : -ENOENT;
}

/* Only writes (no allocation): runs between fork and exec. */
static int join_do(const struct join *j, pid_t pid)
{
	char val[32];

	snprintf(val, sizeof(val), "%d", (int)pid);
	for (int i = 0; i < j->n; i++) {
		int err = write_str(j->procs[i], val);

		if (err)
			return err;
	}
	return 0;
}

/* ---- running commands ---- */

static int wait_child(pid_t pid, int fd, char *out, size_t outlen, int timeout_ms)
{
	size_t len = 0;
	int st, waited = 0;
	bool eof = false;

	while (!eof && waited < timeout_ms) {
		struct pollfd p = { .fd = fd, .events = POLLIN };

		if (poll(&p, 1, 50) <= 0) {
			waited += 50;
			continue;
		}
		char tmp[4096];
		ssize_t n = read(fd, tmp, sizeof(tmp));

		if (n <= 0) {
			eof = true;
			break;
		}
		if (out && len + 1 < outlen) {
			size_t c = (size_t)n < outlen - 1 - len ? (size_t)n : outlen - 1 - len;

			memcpy(out + len, tmp, c);
			len += c;
		}
	}
	if (out && outlen)
		out[len] = '\0';
	close(fd);
	if (!eof) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		return -2;
	}
	if (waitpid(pid, &st, 0) < 0)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Forks; the child runs sh -c cmd after joining cg (when join). -3: cg's
 * cgroup.procs files could not be found. */
static int spawn_sh(bool join, const char *cg, const char *cmd, char *out, size_t outlen)
{
	static struct join j;
	int p[2];
	pid_t pid;

	if (join && join_prepare(cg, &j) < 0)
		return -3;
	if (pipe2(p, O_CLOEXEC) < 0)
		return -1;
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		int null = open("/dev/null", O_RDONLY);

		if (join && join_do(&j, 0) < 0)
			_exit(126);
		dup2(null, 0);
		dup2(p[1], 1);
		dup2(p[1], 2);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	return wait_child(pid, p[0], out, outlen, 10000);
}

int pf_sh(char *out, size_t outlen, const char *fmt, ...)
{
	char *cmd;
	va_list ap;
	int ret;

	va_start(ap, fmt);
	ret = vasprintf(&cmd, fmt, ap);
	va_end(ap);
	cr_assert(ret >= 0);
	ret = spawn_sh(false, NULL, cmd, out, outlen);
	free(cmd);
	return ret;
}

/* ---- the daemon ---- */

int pf_start(const char *args, char *out, size_t outlen)
{
	return pf_sh(out, outlen, "exec %s %s 2>&1", PF.bin, args);
}

void pf_mount(const char *extra)
{
	char out[4096], *pid;
	int st;

	st = pf_sh(out, sizeof(out), "exec %s %s --pidfile %s %s 2>&1", PF.bin, extra ? extra : "",
		   PF.pidfile, PF.mnt);
	pf_reg("umount %s", PF.mnt);
	cr_assert(st == 0, "strata-procfs %s failed (%d): %s", extra ? extra : "", st, out);
	cr_assert(pf_is_mounted(PF.mnt), "%s not mounted", PF.mnt);
	pid = pf_slurp(PF.pidfile);
	cr_assert(pid != NULL, "no pidfile");
	PF.sup = (pid_t)atoi(pid);
	free(pid);
	cr_assert(PF.sup > 0 && pf_pid_alive(PF.sup));
	pf_reg_proc("daemon", PF.sup);
}

pid_t pf_worker(void)
{
	char path[128], *kids;
	pid_t w = 0;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)PF.sup, (int)PF.sup);
	for (int i = 0; i < 100 && w <= 0; i++) {
		kids = pf_slurp(path);
		w = kids ? (pid_t)atoi(kids) : 0;
		free(kids);
		if (w <= 0)
			pf_msleep(10);
	}
	return w;
}

/* ---- cgroups ----
 *
 * Through the project's own cgroup code (common/cgroup_write.h), so the
 * same tests run on v1, hybrid and pure v2 hosts: the test cgroup is the
 * container cgroup <hierarchy>/strata/<name> that cg_container_create()
 * makes, found again by name with cg_container_find(). */

static void host_detect(struct cg_host *h)
{
	int err = cg_host_detect(h, NULL);

	cr_assert(err == 0, "cg_host_detect: %s", strerror(-err));
}

int pf_cg_join(const char *cg, pid_t pid)
{
	struct join j;
	int err = join_prepare(cg, &j);

	return err < 0 ? err : join_do(&j, pid);
}

void pf_cg_create(char *name, size_t len)
{
	struct cg_limits l = {
		.memory = PF_CG_MEM,
		.memory_swap = CG_UNLIMITED, /* only the memory limit, as before */
		.cpu_quota_us = 50000,
		.cpu_period_us = 100000,
		.cpuset_cpus = "0",
	};
	struct cg_container c;
	struct cg_host h;
	char err[512];
	int rc;

	snprintf(name, len, "strata-pf-%d", (int)getpid());
	host_detect(&h);
	pf_reg("cgroup %s", name);
	rc = cg_container_create(&h, name, &l, &c, err, sizeof(err));
	cg_host_free(&h);
	cr_assert(rc == 0, "cg_container_create %s: %s (%s)", name, err, strerror(-rc));
	cg_container_free(&c);
}

int pf_run_in(const char *cg, bool pidns, char *out, size_t outlen, const char *fmt, ...)
{
	static const char *const files[] = { "proc/meminfo", "proc/cpuinfo", "proc/stat",
					     "proc/uptime", "proc/loadavg" };
	char *user, *cmd, binds[4096];
	size_t o = 0;
	va_list ap;
	int ret;

	va_start(ap, fmt);
	ret = vasprintf(&user, fmt, ap);
	va_end(ap);
	cr_assert(ret >= 0);
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		o += (size_t)snprintf(binds + o, sizeof(binds) - o, "mount --bind %s/%s /%s && ",
				      PF.mnt, files[i], files[i]);
	snprintf(binds + o, sizeof(binds) - o,
		 "mount --bind %s/sys/devices/system/cpu/online /sys/devices/system/cpu/online && ",
		 PF.mnt);
	ret = asprintf(&cmd, "exec unshare -m --propagation private %s sh -c '%s %s'",
		       pidns ? "-p -f --mount-proc" : "", binds, user);
	cr_assert(ret >= 0);
	ret = spawn_sh(true, cg, cmd, out, outlen);
	free(cmd);
	free(user);
	return ret;
}

/* ---- cleanup ---- */

/* Kills what is left in the test cgroup and removes it everywhere. */
static void sweep_cgroup(const char *name)
{
	struct cg_container c;
	struct cg_host h;

	if (cg_host_detect(&h, NULL) < 0)
		return;
	if (cg_container_find(&h, name, &c) == 0 && cg_container_destroy(&c) < 0) {
		fprintf(stderr, "cannot remove the cgroup %s\n", name);
		cg_container_free(&c);
	}
	cg_host_free(&h);
}

/* SIGTERM lets the supervisor unmount and stop its worker; a supervisor
 * that does not go in time is killed with its worker. */
static void stop_daemon(pid_t sup)
{
	char path[128], *kids;
	pid_t w;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)sup, (int)sup);
	kids = pf_slurp(path);
	w = kids ? (pid_t)atoi(kids) : 0;
	free(kids);
	kill(sup, SIGTERM);
	for (int i = 0; i < 100 && pf_pid_alive(sup); i++)
		pf_msleep(20);
	if (pf_pid_alive(sup))
		kill(sup, SIGKILL);
	if (w > 0 && pf_pid_alive(w))
		kill(w, SIGKILL);
}

static void sweep_registry(void)
{
	const char *reg = getenv(REG_ENV);
	char *text = reg ? pf_slurp(reg) : NULL, *line, *save;
	char *lines[1024];
	int n = 0;

	if (!text)
		return;
	for (line = strtok_r(text, "\n", &save); line && n < 1024; line = strtok_r(NULL, "\n", &save))
		lines[n++] = line;
	/* Processes first (they hold mounts and cgroups), then the rest,
	 * newest first. */
	for (int i = n - 1; i >= 0; i--) {
		int pid;
		unsigned long long t;
		char kind[16];

		if (sscanf(lines[i], "%15s %d %llu", kind, &pid, &t) != 3 || pid <= 1 ||
		    start_time(pid) != t)
			continue;
		if (strcmp(kind, "daemon") == 0)
			stop_daemon(pid);
		else if (strcmp(kind, "proc") == 0)
			kill(pid, SIGKILL);
	}
	pf_msleep(50);
	for (int i = n - 1; i >= 0; i--) {
		if (strncmp(lines[i], "umount ", 7) == 0)
			while (pf_is_mounted(lines[i] + 7) && umount2(lines[i] + 7, MNT_DETACH) == 0)
				;
		else if (strncmp(lines[i], "cgroup ", 7) == 0)
			sweep_cgroup(lines[i] + 7);
	}
	free(text);
	unlink(reg);
}

void pf_init(void)
{
	char tmpl[] = "/tmp/strata-pf.XXXXXX";

	PF.bin = getenv("STRATA_PROCFS");
	cr_assert(PF.bin, "STRATA_PROCFS is not set");
	cr_assert(mkdtemp(tmpl), "mkdtemp: %s", strerror(errno));
	snprintf(PF.root, sizeof(PF.root), "%s", tmpl);
	snprintf(PF.mnt, sizeof(PF.mnt), "%s/m", tmpl);
	snprintf(PF.pidfile, sizeof(PF.pidfile), "%s/pid", tmpl);
	cr_assert(mkdir(PF.mnt, 0755) == 0);
	pf_reg("rmtree %s", PF.root);
	PF.sup = 0;
}

void pf_fini(void)
{
	char cmd[300];

	sweep_registry();
	snprintf(cmd, sizeof(cmd), "rm -rf --one-file-system '%s'", PF.root);
	if (PF.root[0] && !pf_is_mounted(PF.mnt) && system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", PF.root);
}

ReportHook(PRE_ALL)(struct criterion_test_set *set)
{
	char reg[128];

	(void)set;
	snprintf(reg, sizeof(reg), "/tmp/strata-pf-registry.%d", (int)getpid());
	setenv(REG_ENV, reg, 1);
}

ReportHook(POST_FINI)(struct criterion_test_stats *stats)
{
	(void)stats;
	sweep_registry();
}

ReportHook(TEST_CRASH)(struct criterion_test_stats *stats)
{
	(void)stats;
	sweep_registry();
}

/* The load-average sampler (see loadavg.h). */
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "loadavg.h"
#include "log.h"
#include "procfs.h"
#include "reader.h"

/* ---- what the daemon reads about processes ---- */

#define NS_SLOTS 64 /* pid namespaces whose init we remember */

struct ns_ent {
	ino_t ino;
	pid_t init;
	uint64_t start;
};

static struct {
	pthread_once_t once;
	ino_t self;
	pthread_mutex_t lock;
	struct ns_ent ns[NS_SLOTS];
	unsigned int next;
} N = { .once = PTHREAD_ONCE_INIT, .lock = PTHREAD_MUTEX_INITIALIZER };

/* Small file into buf (NUL-terminated). Returns length or -errno. */
static ssize_t read_small(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	do
		n = read(fd, buf, len - 1);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		n = -errno;
	else
		buf[n] = '\0';
	close(fd);
	return n;
}

/* Parent pid and start time (clock ticks since boot) from /proc/PID/stat.
 * The command name may hold spaces and parentheses: scan from the last ')'. */
int pf_proc_stat(pid_t pid, pid_t *ppid, uint64_t *start)
{
	char path[64], buf[1024], *p;
	unsigned long long st;
	int pp;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (read_small(path, buf, sizeof(buf)) < 0)
		return -ESRCH;
	p = strrchr(buf, ')');
	/* ") S ppid pgrp session tty tpgid flags minflt cminflt majflt
	 *  cmajflt utime stime cutime cstime prio nice threads itreal start" */
	if (!p || sscanf(p + 2, "%*c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu",
			 &pp, &st) != 2)
		return -EINVAL;
	if (ppid)
		*ppid = pp;
	if (start)
		*start = st;
	return 0;
}

static int ns_inode(pid_t pid, ino_t *ino)
{
	char path[64];
	struct stat st;

	if (pid)
		snprintf(path, sizeof(path), "/proc/%d/ns/pid", (int)pid);
	else
		snprintf(path, sizeof(path), "/proc/self/ns/pid");
	if (stat(path, &st) < 0)
		return -errno;
	*ino = st.st_ino;
	return 0;
}

/* The pid a process has in its own (innermost) pid namespace: the last
 * number of the "NSpid:" line of /proc/PID/status. */
static pid_t inner_pid(pid_t pid)
{
	char path[64], buf[4096], *p, *end, *tok, *save;
	pid_t last = -1;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if (read_small(path, buf, sizeof(buf)) < 0)
		return -1;
	p = strstr(buf, "\nNSpid:");
	if (!p)
		return -1;
	p += 7;
	end = strchr(p, '\n');
	if (end)
		*end = '\0';
	for (tok = strtok_r(p, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save))
		last = (pid_t)strtol(tok, NULL, 10);
	return last;
}

static void ns_self_init(void)
{
	if (ns_inode(0, &N.self) < 0)
		N.self = 0;
}

/* ---- pid namespace init (for uptime) ----
 * The container's "boot" is the start of pid 1 of the reader's pid
 * namespace.  The reader's ancestors inside its namespace usually lead to
 * it; a process that joined the namespace from outside (docker exec) has a
 * parent outside, so the fallback scans /proc once per namespace. */

static pid_t ns_walk_to_init(pid_t pid, ino_t ino)
{
	pid_t cur = pid, ppid;
	ino_t pino;

	for (int i = 0; i < 256; i++) {
		if (pf_proc_stat(cur, &ppid, NULL) < 0 || ppid <= 0)
			break;
		if (ns_inode(ppid, &pino) < 0 || pino != ino)
			break;
		cur = ppid;
	}
	return inner_pid(cur) == 1 ? cur : -1;
}

static pid_t ns_scan_for_init(ino_t ino)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	pid_t found = -1;
	ino_t pino;

	if (!d)
		return -1;
	while (found < 0 && (de = readdir(d))) {
		char *end;
		long pid = strtol(de->d_name, &end, 10);

		if (*end || pid <= 0)
			continue;
		if (ns_inode((pid_t)pid, &pino) == 0 && pino == ino && inner_pid((pid_t)pid) == 1)
			found = (pid_t)pid;
	}
	closedir(d);
	return found;
}

static bool ns_cached(ino_t ino, uint64_t *start)
{
	struct ns_ent e = { 0 };
	uint64_t now_start;

	pthread_mutex_lock(&N.lock);
	for (unsigned int i = 0; i < NS_SLOTS; i++)
		if (N.ns[i].ino == ino && N.ns[i].init > 0)
			e = N.ns[i];
	pthread_mutex_unlock(&N.lock);
	/* Namespace inodes are recycled: trust the entry only while its init
	 * is still the same process. */
	if (!e.ino || pf_proc_stat(e.init, NULL, &now_start) < 0 || now_start != e.start)
		return false;
	*start = e.start;
	return true;
}

static void ns_remember(ino_t ino, pid_t init, uint64_t start)
{
	pthread_mutex_lock(&N.lock);
	N.ns[N.next] = (struct ns_ent){ .ino = ino, .init = init, .start = start };
	N.next = (N.next + 1) % NS_SLOTS;
	pthread_mutex_unlock(&N.lock);
}

bool pf_pidns_init_start(pid_t pid, long clk_tck, double *out)
{
	uint64_t start;
	ino_t ino;
	pid_t init;

	if (ns_inode(pid, &ino) < 0)
		return false;
	pthread_once(&N.once, ns_self_init);
	if (!ns_cached(ino, &start)) {
		init = ino == N.self ? 1 : ns_walk_to_init(pid, ino);
		if (init < 0)
			init = ns_scan_for_init(ino);
		if (init < 0 || pf_proc_stat(init, NULL, &start) < 0)
			return false;
		ns_remember(ino, init, start);
	}
	*out = (double)start / (double)(clk_tck > 0 ? clk_tck : 100);
	return true;
}

/* The kernel's fixed-point factors exp(-5s/1min), exp(-5s/5min),
 * exp(-5s/15min) (EXP_1, EXP_5, EXP_15 over FIXED_1 = 2048), so a busy
 * container's figures move exactly as the host's would. */
static const double decay[3] = { 1884.0 / 2048.0, 2014.0 / 2048.0, 2037.0 / 2048.0 };

void pf_load_update(struct pf_load *l, const struct pf_load_sample *s)
{
	for (int i = 0; i < 3; i++) {
		if (!l->seeded)
			l->avg[i] = s->active;
		else
			l->avg[i] = l->avg[i] * decay[i] + (double)s->active * (1.0 - decay[i]);
	}
	l->seeded = true;
	l->last = *s;
}

/* The state letter of /proc/TID/stat (after the last ')'); 0 when gone. */
static char task_state(pid_t tid)
{
	char path[64], buf[512], *p;
	int fd;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	p = strrchr(buf, ')');
	return p && p[1] == ' ' ? p[2] : 0;
}

int pf_load_sample(const struct cg_host *h, const struct cg_proc *p, struct pf_load_sample *s)
{
	pid_t *tids = NULL;
	int n = cg_read_tasks(h, p, &tids);

	if (n < 0)
		return n;
	memset(s, 0, sizeof(*s));
	for (int i = 0; i < n; i++) {
		char st = task_state(tids[i]);

		if (!st)
			continue; /* exited since the list was read */
		s->total++;
		if (st == 'R')
			s->running++;
		if (st == 'R' || st == 'D')
			s->active++;
		if (tids[i] > s->last_pid)
			s->last_pid = tids[i];
	}
	free(tids);
	/* loadavg's last field counts in the reader's pid namespace: the
	 * newest task's pid there (its innermost NSpid), not the host's. */
	if (s->last_pid > 0) {
		pid_t inner = inner_pid(s->last_pid);

		if (inner > 0)
			s->last_pid = inner;
	}
	return 0;
}

static struct {
	const struct cg_host *host;
	bool sample;
	bool running;
	bool stop;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
} S = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

static void sample_all(void)
{
	struct pf_group **gs;
	int n = reader_groups(&gs);

	for (int i = 0; i < n; i++) {
		const struct cg_proc *p = reader_group_proc(gs[i]);
		struct pf_load_sample s;

		/* The host view (no paths) has the kernel's own figures. */
		if (!cg_proc_is_root(p) && pf_load_sample(S.host, p, &s) == 0)
			reader_group_add_sample(gs[i], &s);
		reader_group_put(gs[i]);
	}
	free(gs);
}

static void *sampler(void *arg)
{
	struct timespec next;
	bool stop = false;

	(void)arg;
	clock_gettime(CLOCK_MONOTONIC, &next);
	while (!stop) {
		next.tv_sec += PF_LOAD_INTERVAL_S;
		pthread_mutex_lock(&S.lock);
		while (!S.stop && pthread_cond_timedwait(&S.cond, &S.lock, &next) != ETIMEDOUT)
			;
		stop = S.stop;
		pthread_mutex_unlock(&S.lock);
		if (stop)
			break;
		if (S.sample)
			sample_all();
		reader_sweep();
	}
	return NULL;
}

int pf_sampler_start(const struct cg_host *h, bool sample)
{
	pthread_condattr_t ca;
	int err;

	S.host = h;
	S.sample = sample;
	/* Ticks on the monotonic clock: a settimeofday must not bunch or
	 * starve samples, which would skew the averages. */
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_destroy(&S.cond);
	pthread_cond_init(&S.cond, &ca);
	pthread_condattr_destroy(&ca);
	err = pthread_create(&S.thread, NULL, sampler, NULL);
	if (err)
		return -err;
	S.running = true;
	return 0;
}

void pf_sampler_stop(void)
{
	if (!S.running)
		return;
	pthread_mutex_lock(&S.lock);
	S.stop = true;
	pthread_cond_signal(&S.cond);
	pthread_mutex_unlock(&S.lock);
	pthread_join(S.thread, NULL);
	S.running = false;
}

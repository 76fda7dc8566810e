/* Using a container's cgroups once made: joining them, reading their OOM
 * count and processes, killing and removing them, and finding them again
 * from an id (after a crash). */
#include "cgroup_wio.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/magic.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "log.h"


/* ---- using ---- */

/* dir[], v2_dir and dev_dir with co-mounted duplicates dropped (and
 * v2_dir itself with skip_v2). */
static int unique_dirs(const struct cg_container *c, bool skip_v2, const char **out)
{
	int n = 0;

	for (int i = -2; i < CG_NCTRL; i++) {
		const char *s = i == -2 ? c->v2_dir : i == -1 ? c->dev_dir : c->dir[i];
		bool dup = !s || (skip_v2 && c->v2_dir && strcmp(s, c->v2_dir) == 0);

		for (int j = 0; j < n && !dup; j++)
			dup = strcmp(out[j], s) == 0;
		if (!dup)
			out[n++] = s;
	}
	return n;
}

int cg_container_attach(const struct cg_container *c, pid_t pid, bool skip_v2, char *err,
			size_t errlen)
{
	struct errbuf e = { err, errlen };
	const char *dirs[MAX_DIRS];
	int n = unique_dirs(c, skip_v2, dirs), rc = 0;

	for (int i = 0; i < n && rc == 0; i++) {
		struct cgd d;

		rc = cgd_open(&d, NULL, dirs[i], &e);
		if (rc == 0)
			rc = putf(&d, "cgroup.procs", &e, "%d", (int)pid);
		cgd_close(&d);
	}
	return rc;
}

int cg_container_oom_killed(const struct cg_container *c, bool *killed)
{
	const char *dir = c->dir[CG_MEMORY];
	bool v2 = dir && c->v2_dir && strcmp(dir, c->v2_dir) == 0;
	char buf[1024];
	struct cgd d;
	int rc;

	*killed = false;
	if (!dir)
		return 0;
	rc = cgd_open(&d, NULL, dir, NULL);
	if (rc == 0)
		rc = get(&d, v2 ? "memory.events" : "memory.oom_control", buf, sizeof(buf), NULL);
	cgd_close(&d);
	if (rc < 0)
		return rc;
	/* "oom_kill N" lines: v1 since 4.13, v2 since 4.13 too. */
	for (const char *s = buf; *s; s += strcspn(s, "\n"), s += *s == '\n') {
		if (strncmp(s, "oom_kill ", 9) == 0) {
			*killed = strtoull(s + 9, NULL, 10) > 0;
			return 0;
		}
	}
	return -ENODATA;
}

int cg_container_pids(const struct cg_container *c, pid_t **pids)
{
	const char *dir = c->dir[CG_PIDS] ? c->dir[CG_PIDS]
			  : c->dir[CG_CPU] ? c->dir[CG_CPU]
			  : c->dir[CG_MEMORY] ? c->dir[CG_MEMORY] : c->v2_dir;
	struct cgd d;
	int rc;

	*pids = NULL;
	if (!dir)
		return -ENOENT;
	rc = cgd_open(&d, NULL, dir, NULL);
	if (rc == 0)
		rc = read_pids(d.fd, pids);
	cgd_close(&d);
	return rc;
}

/* ---- removing ---- */

/* SIGKILLs what name lists; *arg counts what was still there. */
static int kill_in(int pfd, const char *name, void *arg)
{
	int *found = arg, fd, n;
	pid_t *pids;

	if (!on_cgroupfs(pfd))
		return 0; /* a stand-in tree lists no process of ours */
	fd = openat(pfd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	n = read_pids(fd, &pids);
	(void)close(fd); /* O_PATH: nothing to flush */
	if (n < 0)
		return n == -ENOENT ? 0 : n;
	for (int i = 0; i < n; i++) {
		(*found)++;
		/* Killing ourselves or init would be worse than a leftover. */
		if (pids[i] == getpid() || pids[i] == 1)
			log_warn("cgroup: %s holds pid %d: not killing it", name, (int)pids[i]);
		else if (kill(pids[i], SIGKILL) < 0 && errno != ESRCH)
			log_warn("cgroup: kill %d: %s", (int)pids[i], errno_name(errno));
	}
	free(pids);
	return 0;
}

/* Until every directory is empty, or KILL_WAIT_NS passed: a process may
 * fork between our read and our kill, and a killed one takes a moment. */
static int kill_all(const char *const *dirs, int n)
{
	long long deadline = now_ns() + KILL_WAIT_NS;

	for (;;) {
		int found = 0;

		for (int i = 0; i < n; i++) {
			int rc = walk_path(dirs[i], kill_in, &found);

			if (rc < 0)
				log_warn("cgroup: killing in %s: %s", dirs[i], errno_name(-rc));
		}
		if (found == 0)
			return 0;
		if (now_ns() >= deadline)
			return -EBUSY;
		nap();
	}
}

static int unlink_in(int dfd, const char *name, void *arg)
{
	(void)arg;
	return unlinkat(dfd, name, 0) < 0 ? -errno : 0;
}

static int rm_in(int pfd, const char *name, void *arg)
{
	long long deadline = *(long long *)arg;

	if (!on_cgroupfs(pfd)) {
		int fd = openat(pfd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC), rc;

		if (fd < 0)
			return errno == ENOENT ? 0 : -errno;
		rc = for_each(fd, DT_REG, unlink_in, NULL);
		(void)close(fd); /* O_PATH: nothing to flush */
		if (rc < 0)
			return rc;
	}
	/* EBUSY: the last task is gone but the kernel still holds the cgroup. */
	while (unlinkat(pfd, name, AT_REMOVEDIR) < 0) {
		if (errno == ENOENT)
			return 0;
		if (errno != EBUSY || now_ns() >= deadline)
			return -errno;
		nap();
	}
	return 0;
}

static void v2_kill(const char *dir)
{
	struct cgd d;
	int rc = cgd_open(&d, NULL, dir, NULL);

	/* ENOENT: gone already, or a kernel before 5.14; the SIGKILL loop
	 * does the work then. */
	if (rc == 0)
		rc = put(&d, "cgroup.kill", "1", NULL);
	cgd_close(&d);
	if (rc < 0 && rc != -ENOENT)
		log_warn("cgroup: %s/cgroup.kill: %s", dir, errno_name(-rc));
}

int cg_container_destroy(struct cg_container *c)
{
	const char *dirs[MAX_DIRS];
	char parent[PATH_MAX];
	const char *id;
	long long deadline;
	int n = unique_dirs(c, false, dirs), rc;

	for (int i = 0; i < n; i++) {
		if (split_path(dirs[i], parent, sizeof(parent), &id) < 0) {
			log_error("cgroup: refusing to remove %s: not a strata cgroup", dirs[i]);
			return -EINVAL;
		}
	}
	if (c->v2_dir)
		v2_kill(c->v2_dir);
	rc = kill_all(dirs, n);
	if (rc < 0) {
		log_warn("cgroup: %s: processes still there after SIGKILL", dirs[0]);
		return rc;
	}
	deadline = now_ns() + RMDIR_WAIT_NS;
	for (int i = 0; i < n; i++) {
		int r = walk_path(dirs[i], rm_in, &deadline);

		if (r < 0) {
			log_warn("cgroup: removing %s: %s", dirs[i], errno_name(-r));
			rc = r;
		}
	}
	if (rc == 0)
		cg_container_free(c);
	return rc;
}

/* ---- finding ---- */

/* *out = <mount>/strata/<id> if it is a directory. */
static int existing(const char *mount, const char *id, char **out)
{
	struct stat st;
	char *path;
	int rc = 0;

	if (asprintf(&path, "%s/" STRATA "/%s", mount, id) < 0)
		return -ENOMEM;
	if (lstat(path, &st) < 0)
		rc = errno == ENOENT || errno == ENOTDIR ? 0 : -errno;
	else if (S_ISDIR(st.st_mode))
		*out = path;
	if (*out != path)
		free(path);
	return rc;
}

int cg_container_find(const struct cg_host *h, const char *id, struct cg_container *c)
{
	bool any = false;
	int rc = 0;

	memset(c, 0, sizeof(*c));
	if (!id_ok(id))
		return -EINVAL;
	if (h->v2_mount)
		rc = existing(h->v2_mount, id, &c->v2_dir);
	if (rc == 0 && c->v2_dir)
		rc = v2_assign(h, c, NULL);
	for (int ctrl = 0; rc == 0 && ctrl < CG_NCTRL; ctrl++) {
		if (h->mount[ctrl] && !h->is_v2[ctrl])
			rc = existing(h->mount[ctrl], id, &c->dir[ctrl]);
		any |= c->dir[ctrl] != NULL;
	}
	if (rc == 0 && h->v1_devices)
		rc = existing(h->v1_devices, id, &c->dev_dir);
	if (rc == 0 && !any && !c->v2_dir && !c->dev_dir)
		rc = -ENOENT;
	if (rc < 0)
		cg_container_free(c);
	return rc;
}

void cg_container_free(struct cg_container *c)
{
	for (int i = 0; i < CG_NCTRL; i++)
		free(c->dir[i]);
	free(c->v2_dir);
	free(c->dev_dir);
	memset(c, 0, sizeof(*c));
}

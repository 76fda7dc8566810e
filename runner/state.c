/* $STRATA_RUN / $STRATA_ROOT bookkeeping: ids, names, config.json,
 * state.json, and the small file helpers the runner shares. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "image.h"
#include "log.h"
#include "parse.h"
#include "state.h"

static char root_path[PATH_MAX] = "/var/lib/strata";
static char run_path[PATH_MAX] = "/run/strata";

const char *root_dir(void)
{
	return root_path;
}

const char *run_dir(void)
{
	return run_path;
}

static int set_path(char *dst, const char *env, char *err, size_t errlen)
{
	const char *v = getenv(env);

	if (!v || !*v)
		return 0;
	/* Paths end up in strata-unionfs's -o list, where ',' separates
	 * options and ':' layers: refuse them rather than mis-mount. */
	if (v[0] != '/' || strpbrk(v, ",:") || strlen(v) > PATH_MAX - 256) {
		snprintf(err, errlen, "$%s '%s': need an absolute path without ',' or ':'", env, v);
		return -1;
	}
	snprintf(dst, PATH_MAX, "%s", v);
	/* "/x/" and "/x" must give the same names everywhere. */
	for (size_t n = strlen(dst); n > 1 && dst[n - 1] == '/'; n--)
		dst[n - 1] = '\0';
	return 0;
}

int paths_init(char *err, size_t errlen)
{
	static const char *const root_sub[] = { "containers", "volumes" };
	char p[PATH_MAX + 32];
	int e;

	if (set_path(root_path, "STRATA_ROOT", err, errlen) < 0 ||
	    set_path(run_path, "STRATA_RUN", err, errlen) < 0)
		return -1;
	for (size_t i = 0; i < 2; i++) {
		snprintf(p, sizeof(p), "%s/%s", root_path, root_sub[i]);
		e = mkdir_p(p, 0700);
		if (e < 0) {
			snprintf(err, errlen, "cannot create '%s': %s", p, errno_name(-e));
			return -1;
		}
	}
	snprintf(p, sizeof(p), "%s/names", run_path);
	e = mkdir_p(p, 0700);
	if (e < 0) {
		snprintf(err, errlen, "cannot create '%s': %s", p, errno_name(-e));
		return -1;
	}
	return 0;
}

void now_rfc3339(char *buf, size_t len)
{
	struct timespec ts;
	struct tm tm;
	char sec[32];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(sec, sizeof(sec), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, len, "%s.%09ldZ", sec, ts.tv_nsec);
}

int new_id(char id[ID_LEN + 1])
{
	unsigned char raw[ID_LEN / 2];

	if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
		return -1;
	for (size_t i = 0; i < sizeof(raw); i++)
		sprintf(id + 2 * i, "%02x", raw[i]);
	/* docker's ids never look numeric in their short form; neither do ours,
	 * so a short id is never mistaken for a pid or a size. */
	if (id[0] >= '0' && id[0] <= '9')
		id[0] = (char)('a' + (id[0] - '0') % 6);
	return 0;
}

static bool state_dir_exists(const char *id)
{
	char p[PATH_MAX + 80];
	struct stat st;

	snprintf(p, sizeof(p), "%s/%s", run_path, id);
	return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

int name_claim(const char *name, const char *id, char *err, size_t errlen)
{
	char p[PATH_MAX + 160], other[ID_LEN + 2];
	ssize_t n;

	snprintf(p, sizeof(p), "%s/names/%s", run_path, name);
	for (int tries = 0; tries < 2; tries++) {
		if (symlink(id, p) == 0)
			return 0;
		if (errno != EEXIST) {
			snprintf(err, errlen, "cannot take the name '%s': %s", name, errno_name(errno));
			return -1;
		}
		n = readlink(p, other, sizeof(other) - 1);
		if (n < 0)
			continue; /* released meanwhile: try again */
		other[n] = '\0';
		if (state_dir_exists(other)) {
			snprintf(err, errlen,
				 "the container name \"%s\" is already in use by container %.12s: remove it or choose another name",
				 name, other);
			return -1;
		}
		/* A name left by a crashed runner: release it, then compete for
		 * it again through symlink(), which stays the only arbiter. */
		name_release(name, other);
	}
	snprintf(err, errlen, "the container name \"%s\" is being taken by another run", name);
	return -1;
}

void name_release(const char *name, const char *id)
{
	char p[PATH_MAX + 160], other[ID_LEN + 2], tmp[PATH_MAX + 200];
	ssize_t n;

	if (!name)
		return;
	snprintf(p, sizeof(p), "%s/names/%s", run_path, name);
	n = readlink(p, other, sizeof(other) - 1);
	if (n < 0)
		return;
	other[n] = '\0';
	if (strcmp(other, id))
		return;
	/* Rename first, so that we only ever delete the link we checked even
	 * if someone re-claims the name in between. */
	snprintf(tmp, sizeof(tmp), "%s/names/.release-%s-%d", run_path, id, (int)getpid());
	if (rename(p, tmp) < 0)
		return;
	n = readlink(tmp, other, sizeof(other) - 1);
	if (n >= 0) {
		other[n] = '\0';
		if (strcmp(other, id) && link(tmp, p) < 0 && errno != EEXIST)
			log_warn("cannot restore name '%s': %s", name, errno_name(errno));
	}
	unlink(tmp);
}

/* ---- JSON ---------------------------------------------------------- */

static json_object *jstr(const char *s)
{
	return s ? json_object_new_string(s) : NULL;
}

static json_object *jstrv(char **v)
{
	json_object *a = json_object_new_array();

	for (size_t i = 0; v && v[i]; i++)
		json_object_array_add(a, json_object_new_string(v[i]));
	return a;
}

static const char *gstr(json_object *o, const char *key)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

static char *gdup(json_object *o, const char *key)
{
	const char *s = gstr(o, key);

	return s ? strdup(s) : NULL;
}

static bool gbool(json_object *o, const char *key)
{
	json_object *v;

	return json_object_object_get_ex(o, key, &v) && json_object_get_boolean(v);
}

static int64_t gint(json_object *o, const char *key, int64_t def)
{
	json_object *v;

	return json_object_object_get_ex(o, key, &v) ? json_object_get_int64(v) : def;
}

static uint64_t guint(json_object *o, const char *key)
{
	json_object *v;

	return json_object_object_get_ex(o, key, &v) ? json_object_get_uint64(v) : 0;
}

/* An array of strings; anything else (a damaged file) reads as missing,
 * as does an element that is not a string: half a command is no command. */
static char **gstrv(json_object *o, const char *key, size_t *count)
{
	json_object *a;
	size_t n;
	char **v;

	if (count)
		*count = 0;
	if (!json_object_object_get_ex(o, key, &a) || !json_object_is_type(a, json_type_array))
		return NULL;
	n = json_object_array_length(a);
	for (size_t i = 0; i < n; i++)
		if (!json_object_is_type(json_object_array_get_idx(a, i), json_type_string))
			return NULL;
	v = calloc(n + 1, sizeof(*v));
	if (!v)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		v[i] = strdup(json_object_get_string(json_object_array_get_idx(a, i)));
		if (!v[i]) {
			strv_free(v);
			return NULL;
		}
	}
	if (count)
		*count = n;
	return v;
}

static int save_json(const char *id, const char *file, json_object *o)
{
	char p[PATH_MAX + 160];
	int e;

	snprintf(p, sizeof(p), "%s/%s/%s", run_path, id, file);
	e = write_atomic(p, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
							     JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	return e;
}

static json_object *load_json(const char *id, const char *file)
{
	char p[PATH_MAX + 160];
	char *text;
	json_object *o;

	snprintf(p, sizeof(p), "%s/%s/%s", run_path, id, file);
	text = read_text(p, 16 << 20);
	if (!text)
		return NULL;
	o = json_tokener_parse(text);
	free(text);
	return o;
}

static json_object *limits_json(const struct cg_limits *l)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "memory", json_object_new_uint64(l->memory));
	json_object_object_add(o, "memory_swap", json_object_new_uint64(l->memory_swap));
	json_object_object_add(o, "cpu_quota_us", json_object_new_int64(l->cpu_quota_us));
	json_object_object_add(o, "cpu_period_us", json_object_new_uint64(l->cpu_period_us));
	json_object_object_add(o, "cpu_shares", json_object_new_uint64(l->cpu_shares));
	json_object_object_add(o, "cpuset_cpus", json_object_new_string(l->cpuset_cpus));
	json_object_object_add(o, "pids_max", json_object_new_int64(l->pids_max));
	return o;
}

static void limits_parse(json_object *o, struct cg_limits *l)
{
	memset(l, 0, sizeof(*l));
	l->cpu_quota_us = -1;
	if (!o)
		return;
	l->memory = guint(o, "memory");
	l->memory_swap = guint(o, "memory_swap");
	l->cpu_quota_us = gint(o, "cpu_quota_us", -1);
	l->cpu_period_us = guint(o, "cpu_period_us");
	l->cpu_shares = guint(o, "cpu_shares");
	l->pids_max = gint(o, "pids_max", 0);
	snprintf(l->cpuset_cpus, sizeof(l->cpuset_cpus), "%s", gstr(o, "cpuset_cpus") ?: "");
}

int config_save(const struct container *c)
{
	json_object *o = json_object_new_object(), *vols = json_object_new_array();

	json_object_object_add(o, "id", json_object_new_string(c->id));
	json_object_object_add(o, "name", jstr(c->name));
	json_object_object_add(o, "image", jstr(c->image));
	json_object_object_add(o, "created", json_object_new_string(c->created));
	json_object_object_add(o, "argv", jstrv(c->argv));
	json_object_object_add(o, "env", jstrv(c->env));
	json_object_object_add(o, "workdir", jstr(c->workdir));
	json_object_object_add(o, "user", jstr(c->user));
	json_object_object_add(o, "hostname", jstr(c->hostname));
	json_object_object_add(o, "rm", json_object_new_boolean(c->rm));
	json_object_object_add(o, "detach", json_object_new_boolean(c->detach));
	json_object_object_add(o, "interactive", json_object_new_boolean(c->interactive));
	json_object_object_add(o, "tty", json_object_new_boolean(c->tty));
	json_object_object_add(o, "read_only", json_object_new_boolean(c->read_only));
	json_object_object_add(o, "no_procfs", json_object_new_boolean(c->no_procfs));
	json_object_object_add(o, "net_host", json_object_new_boolean(c->net_host));
	json_object_object_add(o, "limits", limits_json(&c->limits));
	json_object_object_add(o, "cpus", json_object_new_double(c->cpus));
	for (size_t i = 0; i < c->nvols; i++) {
		json_object *v = json_object_new_object();

		json_object_object_add(v, "source", jstr(c->vols[i].source));
		json_object_object_add(v, "target", jstr(c->vols[i].target));
		json_object_object_add(v, "name", jstr(c->vols[i].name));
		json_object_object_add(v, "ro", json_object_new_boolean(c->vols[i].ro));
		json_object_array_add(vols, v);
	}
	json_object_object_add(o, "volumes", vols);
	json_object_object_add(o, "layers", jstrv(c->layers));
	json_object_object_add(o, "dir", json_object_new_string(c->dir));
	return save_json(c->id, "config.json", o);
}

int config_load(const char *id, struct container *c)
{
	json_object *o = load_json(id, "config.json"), *vols, *lim;

	memset(c, 0, sizeof(*c));
	if (!o)
		return -1;
	snprintf(c->id, sizeof(c->id), "%s", gstr(o, "id") ?: id);
	c->name = gdup(o, "name");
	c->image = gdup(o, "image");
	snprintf(c->created, sizeof(c->created), "%s", gstr(o, "created") ?: "");
	c->argv = gstrv(o, "argv", NULL);
	c->env = gstrv(o, "env", NULL);
	c->workdir = gdup(o, "workdir");
	c->user = gdup(o, "user");
	c->hostname = gdup(o, "hostname");
	c->rm = gbool(o, "rm");
	c->detach = gbool(o, "detach");
	c->interactive = gbool(o, "interactive");
	c->tty = gbool(o, "tty");
	c->read_only = gbool(o, "read_only");
	c->no_procfs = gbool(o, "no_procfs");
	c->net_host = gbool(o, "net_host");
	limits_parse(json_object_object_get_ex(o, "limits", &lim) ? lim : NULL, &c->limits);
	c->cpus = json_object_object_get_ex(o, "cpus", &lim) ? json_object_get_double(lim) : 0;
	/* json-c aborts on an array call on anything else. */
	if (json_object_object_get_ex(o, "volumes", &vols) &&
	    json_object_is_type(vols, json_type_array)) {
		size_t n = json_object_array_length(vols);

		c->vols = calloc(n ? n : 1, sizeof(*c->vols));
		for (size_t i = 0; c->vols && i < n; i++) {
			json_object *v = json_object_array_get_idx(vols, i);

			c->vols[i].source = gdup(v, "source");
			c->vols[i].target = gdup(v, "target");
			c->vols[i].name = gdup(v, "name");
			c->vols[i].ro = gbool(v, "ro");
			c->nvols = i + 1;
		}
	}
	c->layers = gstrv(o, "layers", &c->nlayers);
	snprintf(c->dir, sizeof(c->dir), "%s", gstr(o, "dir") ?: "");
	json_object_put(o);
	return 0;
}

void container_free(struct container *c)
{
	free(c->name);
	free(c->image);
	strv_free(c->argv);
	strv_free(c->env);
	free(c->workdir);
	free(c->user);
	free(c->hostname);
	for (size_t i = 0; i < c->nvols; i++) {
		free(c->vols[i].source);
		free(c->vols[i].target);
		free(c->vols[i].name);
	}
	free(c->vols);
	strv_free(c->layers);
	memset(c, 0, sizeof(*c));
}

int container_path(const struct container *c, const char *name, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s/%s", c->dir, name);

	return n < 0 || (size_t)n >= len ? -1 : 0;
}

const char *status_name(enum cstatus st)
{
	return st == ST_RUNNING ? "running" : st == ST_EXITED ? "exited" : "created";
}

int state_save(const char *id, const struct cstate *s)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "status", json_object_new_string(status_name(s->status)));
	json_object_object_add(o, "pid", json_object_new_int(s->pid));
	json_object_object_add(o, "pid_start", json_object_new_uint64(s->pid_start));
	json_object_object_add(o, "monitor", json_object_new_int(s->monitor));
	json_object_object_add(o, "monitor_start", json_object_new_uint64(s->monitor_start));
	json_object_object_add(o, "exit_code", json_object_new_int(s->exit_code));
	json_object_object_add(o, "oom_killed", json_object_new_boolean(s->oom_killed));
	json_object_object_add(o, "started", json_object_new_string(s->started));
	json_object_object_add(o, "finished", json_object_new_string(s->finished));
	return save_json(id, "state.json", o);
}

int state_load(const char *id, struct cstate *s)
{
	json_object *o = load_json(id, "state.json");
	const char *st;

	memset(s, 0, sizeof(*s));
	s->exit_code = -1;
	if (!o)
		return -1;
	st = gstr(o, "status") ?: "";
	s->status = !strcmp(st, "running") ? ST_RUNNING : !strcmp(st, "exited") ? ST_EXITED
										   : ST_CREATED;
	s->pid = (pid_t)gint(o, "pid", 0);
	s->pid_start = guint(o, "pid_start");
	s->monitor = (pid_t)gint(o, "monitor", 0);
	s->monitor_start = guint(o, "monitor_start");
	s->exit_code = (int)gint(o, "exit_code", -1);
	s->oom_killed = gbool(o, "oom_killed");
	snprintf(s->started, sizeof(s->started), "%s", gstr(o, "started") ?: "");
	snprintf(s->finished, sizeof(s->finished), "%s", gstr(o, "finished") ?: "");
	json_object_put(o);
	return 0;
}

/* Start time (field 22 of /proc/PID/stat) and whether it is a zombie. */
static unsigned long long stat_of(pid_t pid, bool *zombie)
{
	char path[64], *st, *p, state = 0;
	unsigned long long t = 0;

	*zombie = false;
	if (pid <= 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	st = read_text(path, 1 << 16);
	p = st ? strrchr(st, ')') : NULL;
	if (!p || sscanf(p + 2, "%c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu",
			 &state, &t) != 2)
		t = 0;
	free(st);
	*zombie = state == 'Z' || state == 'X';
	return t;
}

int state_set_monitor(const char *id, pid_t pid)
{
	struct cstate s;
	int fd = state_lock(id), e = -1;

	if (fd < 0)
		return -1;
	if (state_load(id, &s) == 0 && s.status == ST_CREATED) {
		s.monitor = pid;
		s.monitor_start = proc_start_time(pid);
		e = state_save(id, &s);
	}
	state_unlock(fd);
	return e < 0 ? -1 : 0;
}

unsigned long long proc_start_time(pid_t pid)
{
	bool zombie;

	return stat_of(pid, &zombie);
}

/* A zombie counts as gone: it only waits for a parent (maybe a lazy
 * system init, when its monitor died) to reap it. */
bool proc_alive(pid_t pid, unsigned long long start)
{
	bool zombie;
	unsigned long long now = stat_of(pid, &zombie);

	return now && !zombie && (!start || now == start);
}

/* Nobody is left to record how it ended: a running container whose init
 * and monitor are gone, or a created one whose runner died during setup
 * (its child dies with it, or is killed by rm). A created state without a
 * monitor (older runners) is left alone. */
static bool orphaned(const struct cstate *s)
{
	if (s->status == ST_RUNNING)
		return !proc_alive(s->pid, s->pid_start) && !proc_alive(s->monitor, s->monitor_start);
	return s->status == ST_CREATED && s->monitor > 0 &&
	       !proc_alive(s->monitor, s->monitor_start);
}

int state_refresh(const char *id, struct cstate *s)
{
	int fd;

	if (state_load(id, s) < 0)
		return -1;
	if (!orphaned(s))
		return 0;
	fd = state_lock(id);
	if (fd < 0)
		return -1;
	if (state_load(id, s) == 0 && orphaned(s)) {
		s->status = ST_EXITED;
		s->exit_code = -1;
		now_rfc3339(s->finished, sizeof(s->finished));
		state_save(id, s);
	}
	state_unlock(fd);
	return 0;
}

int state_create_dir(const char *id)
{
	char p[PATH_MAX + 80];

	snprintf(p, sizeof(p), "%s/%s", run_path, id);
	return mkdir(p, 0700) < 0 ? -errno : 0;
}

int state_remove_dir(const char *id)
{
	char p[PATH_MAX + 80];

	snprintf(p, sizeof(p), "%s/%s", run_path, id);
	return remove_tree(p);
}

int root_lock(const char *name, int op)
{
	char p[PATH_MAX + 80];
	int fd, e;

	if (snprintf(p, sizeof(p), "%s/%s", root_path, name) >= (int)sizeof(p))
		return -ENAMETOOLONG;
	fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	while (flock(fd, op) < 0) {
		if (errno == EINTR)
			continue;
		e = -errno;
		close(fd);
		return e;
	}
	return fd;
}

int state_lock(const char *id)
{
	char p[PATH_MAX + 80];
	struct stat st;
	int fd;

	snprintf(p, sizeof(p), "%s/%s", run_path, id);
	fd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	while (flock(fd, LOCK_EX) < 0) {
		if (errno != EINTR) {
			close(fd);
			return -1;
		}
	}
	/* Removed while we waited: the holder cleaned it up. */
	if (fstat(fd, &st) < 0 || st.st_nlink == 0) {
		close(fd);
		return -1;
	}
	return fd;
}

void state_unlock(int fd)
{
	if (fd >= 0)
		close(fd);
}

static bool is_id(const char *s)
{
	size_t n = strlen(s);

	return n == ID_LEN && strspn(s, "0123456789abcdef") == n;
}

char **container_list(void)
{
	DIR *d = opendir(run_path);
	struct dirent *e;
	char **v = NULL, **nv;
	size_t n = 0;

	if (!d)
		return calloc(1, sizeof(char *));
	while ((e = readdir(d))) {
		if (!is_id(e->d_name))
			continue;
		nv = realloc(v, (n + 2) * sizeof(*v));
		if (!nv)
			break;
		v = nv;
		v[n++] = strdup(e->d_name);
		v[n] = NULL;
	}
	closedir(d);
	return v ? v : calloc(1, sizeof(char *));
}

int container_resolve(const char *ref, char id[ID_LEN + 1], char *err, size_t errlen)
{
	char p[PATH_MAX + 160];
	char **all;
	ssize_t n;
	int found = 0;

	if (!*ref || strchr(ref, '/') || ref[0] == '.') {
		snprintf(err, errlen, "no such container: '%s'", ref);
		return -1;
	}
	snprintf(p, sizeof(p), "%s/names/%s", run_path, ref);
	n = readlink(p, id, ID_LEN + 1);
	if (n == ID_LEN) {
		id[ID_LEN] = '\0';
		if (state_dir_exists(id))
			return 0;
	}
	all = container_list();
	for (size_t i = 0; all[i]; i++) {
		if (strncmp(all[i], ref, strlen(ref)))
			continue;
		if (found++ == 0)
			memcpy(id, all[i], ID_LEN + 1);
	}
	strv_free(all);
	if (found == 1)
		return 0;
	if (found > 1)
		snprintf(err, errlen, "'%s' matches several containers: give more of the id", ref);
	else
		snprintf(err, errlen, "no such container: '%s'", ref);
	return -1;
}

/* ---- inspect -------------------------------------------------------- */

static json_object *host_config_json(const struct container *c)
{
	json_object *h = json_object_new_object(), *binds = json_object_new_array();

	for (size_t i = 0; i < c->nvols; i++) {
		char b[2 * PATH_MAX + 8];

		snprintf(b, sizeof(b), "%s:%s%s", c->vols[i].name ?: c->vols[i].source,
			 c->vols[i].target, c->vols[i].ro ? ":ro" : "");
		json_object_array_add(binds, json_object_new_string(b));
	}
	json_object_object_add(h, "Binds", binds);
	json_object_object_add(h, "NetworkMode", json_object_new_string(c->net_host ? "host" : "none"));
	json_object_object_add(h, "AutoRemove", json_object_new_boolean(c->rm));
	json_object_object_add(h, "ReadonlyRootfs", json_object_new_boolean(c->read_only));
	json_object_object_add(h, "Memory", json_object_new_uint64(c->limits.memory));
	json_object_object_add(h, "MemorySwap", json_object_new_int64(
		c->limits.memory_swap == UINT64_MAX ? -1 : (int64_t)c->limits.memory_swap));
	json_object_object_add(h, "NanoCpus", json_object_new_int64((int64_t)(c->cpus * 1e9 + 0.5)));
	json_object_object_add(h, "CpuShares", json_object_new_uint64(c->limits.cpu_shares));
	json_object_object_add(h, "CpuQuota", json_object_new_int64(
		c->limits.cpu_quota_us < 0 ? 0 : c->limits.cpu_quota_us));
	json_object_object_add(h, "CpuPeriod", json_object_new_uint64(c->limits.cpu_period_us));
	json_object_object_add(h, "CpusetCpus", json_object_new_string(c->limits.cpuset_cpus));
	json_object_object_add(h, "PidsLimit", json_object_new_int64(c->limits.pids_max));
	json_object_object_add(h, "Procfs", json_object_new_boolean(!c->no_procfs));
	return h;
}

json_object *container_json(const struct container *c, const struct cstate *s)
{
	json_object *o = json_object_new_object(), *st = json_object_new_object();
	json_object *cfg = json_object_new_object(), *gd = json_object_new_object();
	char p[PATH_MAX + 160], lower[8192] = "";

	json_object_object_add(o, "Id", json_object_new_string(c->id));
	json_object_object_add(o, "Name", jstr(c->name));
	json_object_object_add(o, "Created", json_object_new_string(c->created));
	json_object_object_add(o, "Path", jstr(c->argv ? c->argv[0] : NULL));
	json_object_object_add(o, "Args", jstrv(c->argv ? c->argv + (c->argv[0] != NULL) : NULL));
	json_object_object_add(st, "Status", json_object_new_string(status_name(s->status)));
	json_object_object_add(st, "Running", json_object_new_boolean(s->status == ST_RUNNING));
	json_object_object_add(st, "OOMKilled", json_object_new_boolean(s->oom_killed));
	json_object_object_add(st, "Pid", json_object_new_int(s->status == ST_RUNNING ? s->pid : 0));
	json_object_object_add(st, "ExitCode", json_object_new_int(s->exit_code < 0 ? 0 : s->exit_code));
	json_object_object_add(st, "StartedAt", json_object_new_string(s->started));
	json_object_object_add(st, "FinishedAt", json_object_new_string(s->finished));
	json_object_object_add(o, "State", st);
	json_object_object_add(o, "Image", jstr(c->image));
	snprintf(p, sizeof(p), "%s/%s/log", run_path, c->id);
	json_object_object_add(o, "LogPath", json_object_new_string(c->detach ? p : ""));
	json_object_object_add(o, "HostConfig", host_config_json(c));
	json_object_object_add(cfg, "Hostname", jstr(c->hostname));
	json_object_object_add(cfg, "User", json_object_new_string(c->user ?: ""));
	json_object_object_add(cfg, "Env", jstrv(c->env));
	json_object_object_add(cfg, "Cmd", jstrv(c->argv));
	json_object_object_add(cfg, "WorkingDir", json_object_new_string(c->workdir ?: ""));
	json_object_object_add(cfg, "Tty", json_object_new_boolean(c->tty));
	json_object_object_add(cfg, "OpenStdin", json_object_new_boolean(c->interactive));
	json_object_object_add(cfg, "Image", jstr(c->image));
	json_object_object_add(o, "Config", cfg);
	for (size_t i = 0; i < c->nlayers; i++)
		snprintf(lower + strlen(lower), sizeof(lower) - strlen(lower), "%s%s", i ? ":" : "",
			 c->layers[i]);
	json_object_object_add(gd, "LowerDir", json_object_new_string(lower));
	container_path(c, "upper", p, sizeof(p));
	json_object_object_add(gd, "UpperDir", json_object_new_string(p));
	container_path(c, "work", p, sizeof(p));
	json_object_object_add(gd, "WorkDir", json_object_new_string(p));
	container_path(c, "rootfs", p, sizeof(p));
	json_object_object_add(gd, "MergedDir", json_object_new_string(p));
	json_object_object_add(o, "GraphDriver", json_object_new_object());
	json_object_object_add(json_object_object_get(o, "GraphDriver"), "Name",
			       json_object_new_string("strata-unionfs"));
	json_object_object_add(json_object_object_get(o, "GraphDriver"), "Data", gd);
	return o;
}

json_object *image_json(const struct image *img)
{
	json_object *o = json_object_new_object(), *layers = json_object_new_array();
	json_object *cfg = json_object_new_object(), *cmd = json_object_new_array();
	json_object *env = json_object_new_array();

	json_object_object_add(o, "Name", json_object_new_string(img->name));
	for (size_t i = 0; i < img->nlayers; i++)
		json_object_array_add(layers, json_object_new_string(img->layers[i]));
	json_object_object_add(o, "Layers", layers);
	for (size_t i = 0; img->cmd && img->cmd[i]; i++)
		json_object_array_add(cmd, json_object_new_string(img->cmd[i]));
	for (size_t i = 0; img->env && img->env[i]; i++)
		json_object_array_add(env, json_object_new_string(img->env[i]));
	json_object_object_add(cfg, "Cmd", cmd);
	json_object_object_add(cfg, "Env", env);
	json_object_object_add(cfg, "WorkingDir", json_object_new_string(img->workdir ?: ""));
	json_object_object_add(o, "Config", cfg);
	return o;
}

/* The first container whose config matches: its id goes to id. */
static bool container_matching(bool (*match)(const struct container *c, const char *what),
			       const char *what, char id[ID_LEN + 1])
{
	char **ids = container_list();
	bool found = false;

	for (size_t i = 0; !found && ids[i]; i++) {
		struct container c;

		if (config_load(ids[i], &c) < 0)
			continue;
		found = match(&c, what);
		if (found)
			snprintf(id, ID_LEN + 1, "%s", ids[i]);
		container_free(&c);
	}
	strv_free(ids);
	return found;
}

static bool uses_image(const struct container *c, const char *image)
{
	return c->image && !strcmp(c->image, image);
}

static bool uses_volume(const struct container *c, const char *name)
{
	for (size_t v = 0; v < c->nvols; v++)
		if (c->vols[v].name && !strcmp(c->vols[v].name, name))
			return true;
	return false;
}

bool image_used_by(const char *image, char id[ID_LEN + 1])
{
	return container_matching(uses_image, image, id);
}

bool volume_used_by(const char *name, char id[ID_LEN + 1])
{
	return container_matching(uses_volume, name, id);
}

/* Mounts, processes, the cleanup sweep and the Criterion hooks; see harness.h. */
#include "harness.h"

#include <criterion/hooks.h>
#include <criterion/options.h>
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define REG_ENV "STRATA_IT_REGISTRY"
#define ROOT_PREFIX "/tmp/strata-it."

/* Users and symlinks made by this worker, swept in h_fini. */
static char made_users[4][64];
static int n_made_users;
static char made_links[4][PATH_MAX];
static int n_made_links;
static char chmod_path[PATH_MAX];
static mode_t chmod_old;
/* ------------------------------------------------------------------ */
/* mounts and processes                                               */

static void unescape_mi(char *s)
{
	char *o = s;
	for (char *p = s; *p; p++) {
		if (p[0] == '\\' && p[1] >= '0' && p[1] <= '7' && p[2] && p[3]) {
			*o++ = (char)((p[1] - '0') * 64 + (p[2] - '0') * 8 + (p[3] - '0'));
			p += 3;
		} else {
			*o++ = *p;
		}
	}
	*o = 0;
}

/* Calls fn for every mountinfo line (fields already split). */
struct mi_entry {
	char mnt[PATH_MAX];
	char opts[1024];
	char fstype[256];
	char source[PATH_MAX];
	char super[1024];
};

static int read_mountinfo(struct mi_entry **out)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return 0;
	int n = 0, cap = 0;
	struct mi_entry *v = NULL;
	char *line = NULL;
	size_t ll = 0;
	while (getline(&line, &ll, f) > 0) {
		char *save = NULL, *tok[64];
		int nt = 0;
		for (char *t = strtok_r(line, " \n", &save); t && nt < 64; t = strtok_r(NULL, " \n", &save))
			tok[nt++] = t;
		if (nt < 7)
			continue;
		int dash = -1;
		for (int i = 6; i < nt; i++)
			if (!strcmp(tok[i], "-")) {
				dash = i;
				break;
			}
		if (dash < 0 || dash + 3 >= nt + 1)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			v = realloc(v, (size_t)cap * sizeof *v);
		}
		struct mi_entry *e = &v[n++];
		snprintf(e->mnt, sizeof e->mnt, "%s", tok[4]);
		unescape_mi(e->mnt);
		snprintf(e->opts, sizeof e->opts, "%s", tok[5]);
		snprintf(e->fstype, sizeof e->fstype, "%s", dash + 1 < nt ? tok[dash + 1] : "");
		snprintf(e->source, sizeof e->source, "%s", dash + 2 < nt ? tok[dash + 2] : "");
		snprintf(e->super, sizeof e->super, "%s", dash + 3 < nt ? tok[dash + 3] : "");
	}
	free(line);
	fclose(f);
	*out = v;
	return n;
}

bool mount_info(const char *path, char *fstype, size_t ftl, char *mntopts, size_t mol,
		char *superopts, size_t sol)
{
	struct mi_entry *v = NULL;
	int n = read_mountinfo(&v);
	int hit = -1;
	for (int i = 0; i < n; i++)
		if (!strcmp(v[i].mnt, path))
			hit = i;
	if (hit >= 0) {
		if (fstype)
			snprintf(fstype, ftl, "%s", v[hit].fstype);
		if (mntopts)
			snprintf(mntopts, mol, "%s", v[hit].opts);
		if (superopts)
			snprintf(superopts, sol, "%s", v[hit].super);
	}
	free(v);
	return hit >= 0;
}

bool is_mounted(const char *path)
{
	return mount_info(path, NULL, 0, NULL, 0, NULL, 0);
}

static bool read_small(const char *path, char *buf, size_t len, size_t *got)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return false;
	buf[n] = 0;
	if (got)
		*got = (size_t)n;
	return true;
}

bool pid_alive(pid_t pid)
{
	char st[512];
	if (pid <= 0 || !read_small(pf("/proc/%d/stat", pid), st, sizeof st, NULL))
		return false;
	char *rp = strrchr(st, ')');
	return rp && rp[1] == ' ' && rp[2] != 'Z' && rp[2] != 'X';
}

bool wait_pid_gone(pid_t pid, int ms)
{
	for (int t = 0; t < ms; t += 20) {
		if (!pid_alive(pid))
			return true;
		msleep(20);
	}
	return !pid_alive(pid);
}

/* Calls fn(pid, args, len) for every live process but ourselves. */
static void for_each_proc(void (*fn)(pid_t, const char *, size_t, void *), void *ctx)
{
	DIR *d = opendir("/proc");
	if (!d)
		return;
	struct dirent *e;
	static char buf[65536];
	while ((e = readdir(d))) {
		char *end;
		long pid = strtol(e->d_name, &end, 10);
		if (*end || pid <= 0 || pid == getpid())
			continue;
		size_t n = 0;
		if (!read_small(pf("/proc/%ld/cmdline", pid), buf, sizeof buf, &n) || n == 0)
			continue;
		if (!pid_alive((pid_t)pid))
			continue;
		fn((pid_t)pid, buf, n, ctx);
	}
	closedir(d);
}

struct find_ctx {
	const char *mnt;
	pid_t found;
};

static bool is_unionfs_exe(pid_t pid)
{
	char exe[PATH_MAX];
	ssize_t n = readlink(pf("/proc/%d/exe", pid), exe, sizeof exe - 1);
	if (n < 0)
		return false;
	exe[n] = 0;
	return strstr(exe, "strata-unionfs") != NULL;
}

static void find_cb(pid_t pid, const char *args, size_t len, void *vctx)
{
	struct find_ctx *c = vctx;
	for (size_t off = 0; off < len; off += strlen(args + off) + 1)
		if (!strcmp(args + off, c->mnt) && is_unionfs_exe(pid)) {
			c->found = pid;
			return;
		}
}

pid_t find_daemon(const char *mnt)
{
	struct find_ctx c = {mnt, 0};
	for_each_proc(find_cb, &c);
	return c.found;
}

struct kill_ctx {
	char pat[PATH_MAX + 2];
	int n;
};

static void kill_cb(pid_t pid, const char *args, size_t len, void *vctx)
{
	struct kill_ctx *c = vctx;
	for (size_t off = 0; off < len; off += strlen(args + off) + 1)
		if (strstr(args + off, c->pat)) {
			if (pid != getppid() && kill(pid, SIGKILL) == 0)
				c->n++;
			return;
		}
}

static void force_umount(const char *p)
{
	if (umount2(p, 0) == 0)
		return;
	if (umount2(p, MNT_FORCE) == 0)
		return;
	umount2(p, MNT_DETACH);
}

/* Unmounts everything below root, kills the processes started for it,
 * deletes it.  Never asserts: runs in the runner and in fini. */
static void sweep_root(const char *root)
{
	if (strncmp(root, ROOT_PREFIX, strlen(ROOT_PREFIX)) != 0 || strstr(root, ".."))
		return;
	size_t rl = strlen(root);
	for (int round = 0; round < 64; round++) {
		struct mi_entry *v = NULL;
		int n = read_mountinfo(&v), hit = -1;
		for (int i = 0; i < n; i++)
			if (!strncmp(v[i].mnt, root, rl) && (v[i].mnt[rl] == '/' || !v[i].mnt[rl]))
				hit = i;
		if (hit < 0) {
			free(v);
			break;
		}
		force_umount(v[hit].mnt);
		free(v);
		if (round == 32) {
			/* a daemon refuses to let go: kill it, then detach */
			struct kill_ctx k;
			snprintf(k.pat, sizeof k.pat, "%s/", root);
			k.n = 0;
			for_each_proc(kill_cb, &k);
		}
	}
	struct kill_ctx k;
	snprintf(k.pat, sizeof k.pat, "%s/", root);
	for (int i = 0; i < 50; i++) {
		k.n = 0;
		for_each_proc(kill_cb, &k);
		if (!k.n)
			break;
		msleep(20);
	}
	rm_rf(root);
}

static void spawn_quiet(char *const argv[])
{
	pid_t pid = fork();
	if (pid == 0) {
		int nul = open("/dev/null", O_RDWR);
		dup2(nul, 0);
		dup2(nul, 1);
		dup2(nul, 2);
		execvp(argv[0], argv);
		_exit(127);
	}
	if (pid > 0)
		waitpid(pid, NULL, 0);
}

static void sweep_user(const char *name)
{
	if (strncmp(name, "strit", 5) != 0 || !getpwnam(name))
		return;
	char *argv[] = {"userdel", "-f", (char *)name, NULL};
	spawn_quiet(argv);
	if (getgrnam(name)) {
		char *gargv[] = {"groupdel", (char *)name, NULL};
		spawn_quiet(gargv);
	}
}

static void reg_add(char kind, const char *what)
{
	const char *reg = getenv(REG_ENV);
	if (!reg)
		return;
	int fd = open(reg, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return;
	dprintf(fd, "%c %s\n", kind, what);
	close(fd);
}

static void sweep_link(const char *path)
{
	struct stat st;
	if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode))
		unlink(path);
}

static void sweep_chmod(const char *line)
{
	char *end;
	unsigned long mode = strtoul(line, &end, 8);
	if (*end == ' ' && !strncmp(end + 1, "/dev/", 5))
		chmod(end + 1, (mode_t)mode);
}

void chmod_restored(const char *path, mode_t mode)
{
	struct stat st;
	cr_assert(stat(path, &st) == 0, "stat %s: %s", path, strerror(errno));
	if ((st.st_mode & 07777) == mode)
		return;
	char line[PATH_MAX + 16];
	snprintf(line, sizeof line, "%o %s", st.st_mode & 07777, path);
	reg_add('C', line);
	snprintf(chmod_path, sizeof chmod_path, "%s", path);
	chmod_old = st.st_mode & 07777;
	cr_assert(chmod(path, mode) == 0, "chmod %s: %s", path, strerror(errno));
}

void reg_symlink(const char *path)
{
	reg_add('L', path);
	if (n_made_links < 4)
		snprintf(made_links[n_made_links++], PATH_MAX, "%s", path);
}

static void sweep_registry(void)
{
	const char *reg = getenv(REG_ENV);
	if (!reg)
		return;
	FILE *f = fopen(reg, "re");
	if (!f)
		return;
	char line[PATH_MAX + 8];
	struct strv users = {0};
	while (fgets(line, sizeof line, f)) {
		line[strcspn(line, "\n")] = 0;
		if (line[0] == 'D' && line[1] == ' ')
			sweep_root(line + 2);
		else if (line[0] == 'U' && line[1] == ' ')
			strv_push(&users, strdup(line + 2));
		else if (line[0] == 'L' && line[1] == ' ')
			sweep_link(line + 2);
		else if (line[0] == 'C' && line[1] == ' ')
			sweep_chmod(line + 2);
	}
	fclose(f);
	for (size_t i = 0; i < users.n; i++) {
		sweep_user(users.v[i]);
		free(users.v[i]);
	}
	free(users.v);
	truncate(reg, 0);
}

ReportHook(PRE_ALL)(struct criterion_test_set *set)
{
	(void)set;
	static char reg[64];
	snprintf(reg, sizeof reg, "/tmp/strata-it-registry.%d", getpid());
	setenv(REG_ENV, reg, 1);
	if (criterion_options.timeout <= 0)
		criterion_options.timeout = H_TIMEOUT;
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

ReportHook(POST_ALL)(struct criterion_global_stats *stats)
{
	(void)stats;
	sweep_registry();
	const char *reg = getenv(REG_ENV);
	if (reg)
		unlink(reg);
}

void h_init(void)
{
	memset(&H, 0, sizeof H);
	if (geteuid() != 0)
		cr_skip_test("the integration tests need root (FUSE and tmpfs mounts, mknod, "
			     "trusted.* xattrs, a throwaway user)");
	H.bin = getenv("STRATA_UNIONFS");
	cr_assert(H.bin && *H.bin, "STRATA_UNIONFS is not set (path of the strata-unionfs binary)");
	cr_assert(access(H.bin, X_OK) == 0, "STRATA_UNIONFS=%s: %s", H.bin, strerror(errno));
	snprintf(H.root, sizeof H.root, ROOT_PREFIX "XXXXXX");
	cr_assert(mkdtemp(H.root), "mkdtemp: %s", strerror(errno));
	reg_add('D', H.root);
	chmod(H.root, 0755);
	snprintf(H.up, sizeof H.up, "%s/u", H.root);
	snprintf(H.wk, sizeof H.wk, "%s/w", H.root);
	snprintf(H.mnt, sizeof H.mnt, "%s/m", H.root);
	for (int i = 0; i < 3; i++)
		snprintf(H.lo[i], sizeof H.lo[i], "%s/l%d", H.root, i);
	const char *dirs[] = {H.up, H.wk, H.mnt, H.lo[0], H.lo[1], H.lo[2], RT("log")};
	for (size_t i = 0; i < sizeof dirs / sizeof *dirs; i++)
		cr_assert(mkdir(dirs[i], 0755) == 0, "mkdir %s: %s", dirs[i], strerror(errno));
}

void h_fini(void)
{
	if (H.root[0])
		sweep_root(H.root);
	for (int i = 0; i < n_made_users; i++)
		sweep_user(made_users[i]);
	n_made_users = 0;
	for (int i = 0; i < n_made_links; i++)
		sweep_link(made_links[i]);
	n_made_links = 0;
	if (chmod_path[0]) {
		chmod(chmod_path, chmod_old);
		chmod_path[0] = 0;
	}
}

/* ------------------------------------------------------------------ */
/* running programs                                                   */

void run(struct run_result *r, char *const argv[], uid_t uid, gid_t gid, char *const extra_env[])
{
	static int seq;
	memset(r, 0, sizeof *r);
	char outp[PATH_MAX], errp[PATH_MAX];
	snprintf(outp, sizeof outp, "%s/log/run%d.out", H.root, seq);
	snprintf(errp, sizeof errp, "%s/log/run%d.err", H.root, seq++);
	int of = open(outp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
	int ef = open(errp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
	cr_assert(of >= 0 && ef >= 0, "log files in %s/log: %s", H.root, strerror(errno));

	size_t ne = 0;
	while (environ[ne])
		ne++;
	size_t nx = 0;
	while (extra_env && extra_env[nx])
		nx++;
	char **env = calloc(ne + nx + 1, sizeof *env);
	size_t k = 0;
	for (size_t i = 0; i < ne; i++) {
		bool overridden = false;
		for (size_t j = 0; j < nx; j++) {
			size_t l = strcspn(extra_env[j], "=") + 1;
			if (!strncmp(environ[i], extra_env[j], l))
				overridden = true;
		}
		if (!overridden)
			env[k++] = environ[i];
	}
	for (size_t j = 0; j < nx; j++)
		env[k++] = extra_env[j];
	env[k] = NULL;

	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		int nul = open("/dev/null", O_RDONLY);
		dup2(nul, 0);
		dup2(of, 1);
		dup2(ef, 2);
		if (chdir("/") < 0)
			_exit(126);
		if (uid != (uid_t)-1) {
			if (setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0 ||
			    setresuid(uid, uid, uid) < 0)
				_exit(126);
		}
		execvpe(argv[0], argv, env);
		dprintf(2, "exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	free(env);
	int status = 0;
	r->status = -2;
	for (int t = 0; t < 60000; t += 5) {
		pid_t w = waitpid(pid, &status, WNOHANG);
		if (w == pid) {
			r->status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
			break;
		}
		msleep(5);
	}
	if (r->status == -2) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
	}
	ssize_t n = pread(of, r->out, sizeof r->out - 1, 0);
	r->out[n > 0 ? n : 0] = 0;
	n = pread(ef, r->err, sizeof r->err - 1, 0);
	r->err[n > 0 ? n : 0] = 0;
	close(of);
	close(ef);
}

int sh(const char *fmt, ...)
{
	char cmd[16384];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof cmd, fmt, ap);
	va_end(ap);
	struct run_result r;
	char *argv[] = {"/bin/sh", "-c", cmd, NULL};
	run(&r, argv, (uid_t)-1, 0, NULL);
	return r.status;
}

/* ------------------------------------------------------------------ */
/* union mounts                                                       */

const char *union_opts(enum ufmt fmt, int nlower, const char *extra)
{
	static char o[16384];
	size_t n = 0;
	if (fmt == FMT_AUFS) {
		n += (size_t)snprintf(o + n, sizeof o - n, "dirs=%s=rw", H.up);
		for (int i = 0; i < nlower; i++)
			n += (size_t)snprintf(o + n, sizeof o - n, ":%s=ro+wh", H.lo[i]);
	} else {
		n += (size_t)snprintf(o + n, sizeof o - n, "lowerdir=");
		for (int i = 0; i < nlower; i++)
			n += (size_t)snprintf(o + n, sizeof o - n, "%s%s", i ? ":" : "", H.lo[i]);
		n += (size_t)snprintf(o + n, sizeof o - n, ",upperdir=%s,workdir=%s", H.up, H.wk);
	}
	if (extra && *extra)
		n += (size_t)snprintf(o + n, sizeof o - n, ",%s", extra);
	/* The suite run again with other defaults (meson.build: devfuse). */
	const char *suite_opts = getenv("STRATA_TEST_UNION_OPTS");
	if (suite_opts && *suite_opts && n < sizeof o)
		snprintf(o + n, sizeof o - n, ",%s", suite_opts);
	return o;
}

int try_mount_at(const char *opts, const char *mnt, char *err, size_t errlen)
{
	struct run_result r;
	char *argv[] = {(char *)H.bin, "-o", (char *)opts, (char *)mnt, NULL};
	run(&r, argv, (uid_t)-1, 0, NULL);
	if (err)
		snprintf(err, errlen, "%s", r.err);
	if (r.status == 0) {
		cr_assert(is_mounted(mnt),
			  "strata-unionfs exited 0 but %s is not mounted (it must return only once "
			  "the mount is live); stderr: %s",
			  mnt, r.err);
		if (!strcmp(mnt, H.mnt)) {
			H.daemon = find_daemon(mnt);
			snprintf(H.opts, sizeof H.opts, "%s", opts);
		}
	}
	return r.status;
}

void h_mount_opts(const char *opts)
{
	char err[8192];
	char o[16384];
	snprintf(o, sizeof o, "%s", opts);
	int st = try_mount_at(o, H.mnt, err, sizeof err);
	cr_assert(st == 0, "mount -o %s failed (exit %d): %s", o, st, err);
}

void h_mount(enum ufmt fmt, int nlower, const char *extra)
{
	H.fmt = fmt;
	h_mount_opts(union_opts(fmt, nlower, extra));
}

void h_umount_path(const char *mnt)
{
	pid_t d = find_daemon(mnt);
	cr_assert(umount2(mnt, 0) == 0, "umount %s: %s", mnt, strerror(errno));
	for (int t = 0; t < 10000 && is_mounted(mnt); t += 20)
		msleep(20);
	cr_assert(!is_mounted(mnt), "%s still mounted after umount", mnt);
	if (d > 0)
		cr_assert(wait_pid_gone(d, 10000), "daemon %d for %s still running 10 s after umount",
			  d, mnt);
}

void h_umount(void)
{
	h_umount_path(H.mnt);
	H.daemon = 0;
}

void h_remount(void)
{
	char o[16384];
	snprintf(o, sizeof o, "%s", H.opts);
	h_umount();
	h_mount_opts(o);
}

void mount_tmpfs(const char *path, const char *opts)
{
	mkdir_p(path, 0755);
	cr_assert(mount("tmpfs", path, "tmpfs", 0, opts) == 0, "mount tmpfs %s: %s", path,
		  strerror(errno));
}

/* ------------------------------------------------------------------ */
/* users                                                              */

void make_user(uid_t *uid, gid_t *gid)
{
	cr_assert(n_made_users < 4);
	char *name = made_users[n_made_users];
	snprintf(name, 64, "strit%d", (int)getpid());
	reg_add('U', name);
	n_made_users++;
	struct run_result r;
	char *argv[] = {"useradd", "-M", "-U", "-s", "/usr/sbin/nologin", "-d", "/nonexistent",
			name, NULL};
	run(&r, argv, (uid_t)-1, 0, NULL);
	cr_assert(r.status == 0, "useradd %s failed: %s", name, r.err);
	struct passwd *pw = getpwnam(name);
	cr_assert(pw, "getpwnam %s", name);
	*uid = pw->pw_uid;
	*gid = pw->pw_gid;
}

static uid_t ct_uid;
static gid_t ct_gid;
static int chown_cb(const char *p, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)sb;
	(void)type;
	(void)ftw;
	lchown(p, ct_uid, ct_gid);
	return 0;
}

void chown_tree(const char *path, uid_t uid, gid_t gid)
{
	ct_uid = uid;
	ct_gid = gid;
	cr_assert(nftw(path, chown_cb, 32, FTW_PHYS | FTW_MOUNT) == 0, "chown -R %s", path);
}

int as_user(uid_t uid, gid_t gid, int (*fn)(void *), void *arg, char *msg, size_t msglen)
{
	int p[2];
	cr_assert(pipe2(p, O_CLOEXEC) == 0);
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		close(p[0]);
		h_msgfd = p[1];
		if (setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0 ||
		    setresuid(uid, uid, uid) < 0) {
			dprintf(h_msgfd, "cannot drop privileges: %s\n", strerror(errno));
			_exit(2);
		}
		_exit(fn(arg) ? 1 : 0);
	}
	close(p[1]);
	size_t n = 0;
	if (msg && msglen)
		msg[0] = 0;
	int status = 0, rc = -2;
	for (int t = 0; t < 120000; t += 10) {
		struct pollfd pfd = {p[0], POLLIN, 0};
		if (poll(&pfd, 1, 10) > 0) {
			char b[512];
			ssize_t r = read(p[0], b, sizeof b);
			if (r > 0 && msg && n + (size_t)r < msglen) {
				memcpy(msg + n, b, (size_t)r);
				n += (size_t)r;
				msg[n] = 0;
			}
		}
		if (waitpid(pid, &status, WNOHANG) == pid) {
			rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
			break;
		}
	}
	if (rc == -2) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		if (msg && n + 32 < msglen)
			snprintf(msg + n, msglen - n, "timed out after 120 s\n");
	} else {
		char b[512];
		ssize_t r;
		while ((r = read(p[0], b, sizeof b)) > 0)
			if (msg && n + (size_t)r < msglen) {
				memcpy(msg + n, b, (size_t)r);
				n += (size_t)r;
				msg[n] = 0;
			}
	}
	close(p[0]);
	return rc;
}

/* cgroup layout detection, /proc/PID/cgroup, directory access, small file
 * reads and CPU lists.  The per-controller readers are in cgroup_read.c.
 *
 * Nothing here keeps state between calls, so every function may be called
 * from any thread (the FUSE workers of strata-procfs do). */
#include "cgroup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

/* mountinfo runs to megabytes on hosts with thousands of mounts;
 * /proc/PID/cgroup to a few KiB even with deep paths. */
#define MOUNTINFO_MAX (64u << 20)
#define PROC_CGROUP_MAX (1u << 20)
#define CONTROLLERS_BUF 512

struct ctrl_name {
	const char *name;
	enum cg_ctrl ctrl;
};

static const struct ctrl_name v1_names[] = {
	{ "memory", CG_MEMORY }, { "cpu", CG_CPU },	{ "cpuacct", CG_CPUACCT },
	{ "cpuset", CG_CPUSET }, { "blkio", CG_IO }, { "pids", CG_PIDS },
};

/* cpuacct has no v2 counterpart: cpu.stat carries the usage, so it goes
 * wherever cpu goes. */
static const struct ctrl_name v2_names[] = {
	{ "memory", CG_MEMORY }, { "cpu", CG_CPU }, { "cpu", CG_CPUACCT },
	{ "cpuset", CG_CPUSET }, { "io", CG_IO },   { "pids", CG_PIDS },
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static bool tok_eq(const char *tok, size_t len, const char *name)
{
	return strlen(name) == len && memcmp(tok, name, len) == 0;
}

static bool is_slash_root(const char *root)
{
	return !root || strcmp(root, "/") == 0;
}

/* ---- small file reads ---- */

int cg_read_file(int dirfd, const char *name, char *buf, size_t len)
{
	size_t off = 0;
	int fd, err = 0;

	if (len < 2 || len > INT_MAX)
		return -EINVAL;
	fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	for (;;) {
		/* When full, try one byte more: only EOF there means it fit. */
		bool full = off == len - 1;
		char extra;
		ssize_t n = read(fd, full ? &extra : buf + off, full ? 1 : len - 1 - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			err = -errno;
		else if (n > 0 && full)
			err = -EFBIG;
		if (n <= 0 || err)
			break;
		off += (size_t)n;
	}
	/* A read-only descriptor has nothing to flush: close cannot lose data. */
	(void)close(fd);
	buf[off] = '\0';
	return err ? err : (int)off;
}

int cg_read_alloc(int dirfd, const char *name, char **out, size_t max)
{
	size_t cap = max < 4096 ? max : 4096, off = 0;
	char *buf = NULL;
	int fd, err = 0;

	*out = NULL;
	if (max < 2 || max > INT_MAX)
		return -EINVAL;
	fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	for (;;) {
		ssize_t n;

		if (!buf || off == cap - 1) {
			char *nb;

			if (buf && cap >= max) {
				err = -EFBIG;
				break;
			}
			if (buf)
				cap = cap * 2 > max ? max : cap * 2;
			nb = realloc(buf, cap);
			if (!nb) {
				err = -ENOMEM;
				break;
			}
			buf = nb;
		}
		n = read(fd, buf + off, cap - 1 - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			err = -errno;
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	(void)close(fd); /* read-only: nothing to lose */
	if (err) {
		free(buf);
		return err;
	}
	buf[off] = '\0';
	*out = buf;
	return (int)off;
}

/* ---- layout detection ---- */

static int set_str(char **dst, const char *src)
{
	char *s = src ? strdup(src) : NULL;

	if (src && !s)
		return -ENOMEM;
	free(*dst);
	*dst = s;
	return 0;
}

/* Sets a mount unless one is known already: the first mount of a hierarchy
 * wins, except that one showing the whole hierarchy ("/") beats a bind
 * mount of a sub-cgroup, which could not reach our readers' cgroups. */
static int set_mount(char **mnt, char **mroot, const char *m, const char *root)
{
	if (*mnt && !(is_slash_root(root) && !is_slash_root(*mroot)))
		return 0;
	if (set_str(mnt, m) < 0 || set_str(mroot, is_slash_root(root) ? NULL : root) < 0)
		return -ENOMEM;
	return 0;
}

/* A v1 hierarchy's controllers, from "rw,cpu,cpuacct" or a directory name
 * "cpu,cpuacct" (sep ','). */
static int add_v1(struct cg_host *h, const char *mnt, const char *root, const char *list)
{
	const char *t = list;

	while (*t) {
		size_t len = strcspn(t, ",");

		for (size_t i = 0; i < NELEM(v1_names); i++) {
			enum cg_ctrl c = v1_names[i].ctrl;

			if (tok_eq(t, len, v1_names[i].name) &&
			    set_mount(&h->mount[c], &h->mount_root[c], mnt, root) < 0)
				return -ENOMEM;
		}
		if ((tok_eq(t, len, "name=systemd") || tok_eq(t, len, "systemd")) &&
		    !h->v1_name_systemd && set_str(&h->v1_name_systemd, mnt) < 0)
			return -ENOMEM;
		if (tok_eq(t, len, "devices") && !h->v1_devices && set_str(&h->v1_devices, mnt) < 0)
			return -ENOMEM;
		t += len;
		t += *t == ',';
	}
	return 0;
}

/* Gives the unified hierarchy the controllers its cgroup.controllers lists
 * and no v1 hierarchy holds (the kernel binds each to one hierarchy). */
static int assign_v2(struct cg_host *h)
{
	char path[PATH_MAX], buf[CONTROLLERS_BUF];
	const char *t = buf;
	int rc;

	if (snprintf(path, sizeof(path), "%s/cgroup.controllers", h->v2_mount) >=
	    (int)sizeof(path))
		return -ENAMETOOLONG;
	rc = cg_read_file(AT_FDCWD, path, buf, sizeof(buf));
	if (rc < 0) {
		/* Still a cgroup2 mount; it just holds no controller we can see. */
		log_debug("cgroup: %s: %s", path, errno_name(-rc));
		return 0;
	}
	while (*t) {
		size_t len = strcspn(t, " \t\n");

		for (size_t i = 0; i < NELEM(v2_names); i++) {
			enum cg_ctrl c = v2_names[i].ctrl;

			if (!tok_eq(t, len, v2_names[i].name) || h->mount[c])
				continue;
			if (set_str(&h->mount[c], h->v2_mount) < 0 ||
			    set_str(&h->mount_root[c], h->v2_mount_root) < 0)
				return -ENOMEM;
			h->is_v2[c] = true;
		}
		t += len;
		t += strspn(t, " \t\n");
	}
	return 0;
}

static int finish_detect(struct cg_host *h, bool any_v1)
{
	int rc = h->v2_mount ? assign_v2(h) : 0;

	if (rc < 0)
		return rc;
	if (any_v1)
		h->layout = h->v2_mount ? CG_LAYOUT_HYBRID : CG_LAYOUT_V1;
	else
		h->layout = h->v2_mount ? CG_LAYOUT_V2 : CG_LAYOUT_NONE;
	return h->layout == CG_LAYOUT_NONE ? -ENOENT : 0;
}

/* mountinfo writes space, tab, newline and backslash as \ooo. */
static void unescape(char *s)
{
	char *d = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*d++ = (char)((s[1] - '0') << 6 | (s[2] - '0') << 3 | (s[3] - '0'));
			s += 3;
		} else {
			*d++ = *s;
		}
	}
	*d = '\0';
}

/* "36 35 98:0 /root /mnt opts [optional...] - fstype source superopts".
 * Lines that do not parse are skipped: they are not cgroup mounts we
 * could use anyway. */
static int mountinfo_line(struct cg_host *h, char *line, bool *any_v1)
{
	char *f[6], *sep, *fstype, *super;

	for (int i = 0; i < 6; i++) {
		f[i] = strsep(&line, " ");
		if (!f[i])
			return 0;
	}
	do
		sep = strsep(&line, " ");
	while (sep && strcmp(sep, "-") != 0);
	fstype = strsep(&line, " ");
	if (!sep || !fstype || !strsep(&line, " ") || !(super = strsep(&line, " ")))
		return 0;
	unescape(f[3]);
	unescape(f[4]);
	if (strcmp(fstype, "cgroup2") == 0)
		return set_mount(&h->v2_mount, &h->v2_mount_root, f[4], f[3]);
	if (strcmp(fstype, "cgroup") != 0)
		return 0;
	*any_v1 = true;
	return add_v1(h, f[4], f[3], super);
}

static void host_init(struct cg_host *h)
{
	memset(h, 0, sizeof(*h));
}

int cg_host_parse_mountinfo(struct cg_host *h, const char *text)
{
	char *copy = strdup(text), *rest = copy, *line;
	bool any_v1 = false;
	int rc = 0;

	host_init(h);
	if (!copy)
		return -ENOMEM;
	while (rc == 0 && (line = strsep(&rest, "\n")))
		rc = mountinfo_line(h, line, &any_v1);
	free(copy);
	if (rc == 0)
		rc = finish_detect(h, any_v1);
	if (rc < 0 && rc != -ENOENT)
		cg_host_free(h);
	return rc;
}

static bool has_controllers_file(int dirfd, const char *dir)
{
	char path[PATH_MAX];
	struct stat st;

	if (snprintf(path, sizeof(path), "%s/cgroup.controllers", dir) >= (int)sizeof(path))
		return false;
	return fstatat(dirfd, path, &st, 0) == 0 && S_ISREG(st.st_mode);
}

/* One entry of a fake /sys/fs/cgroup: "unified" (hybrid's cgroup2) or a v1
 * hierarchy named after its controllers.  Symlinks ("cpu" -> "cpu,cpuacct",
 * as on real hosts) are taken in a second pass, so the path kept is the
 * real directory's whatever order readdir gives. */
static int tree_entry(struct cg_host *h, int dfd, const char *root, const char *name,
		      bool links, bool *any_v1)
{
	char path[PATH_MAX];
	struct stat st;

	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	if (S_ISLNK(st.st_mode) != links)
		return 0;
	if (fstatat(dfd, name, &st, 0) < 0 || !S_ISDIR(st.st_mode))
		return 0; /* files, dangling links: not hierarchies */
	if (snprintf(path, sizeof(path), "%s/%s", root, name) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	if (strcmp(name, "unified") == 0) {
		if (!h->v2_mount && has_controllers_file(dfd, name))
			return set_str(&h->v2_mount, path);
		return 0;
	}
	*any_v1 = true;
	return add_v1(h, path, NULL, name);
}

static int scan_tree(struct cg_host *h, DIR *d, const char *root, bool *any_v1)
{
	struct dirent *de;
	int rc = 0;

	for (int links = 0; links < 2 && rc == 0; links++) {
		rewinddir(d);
		for (errno = 0; rc == 0 && (de = readdir(d)); errno = 0) {
			if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
				rc = tree_entry(h, dirfd(d), root, de->d_name, links, any_v1);
		}
		if (rc == 0 && errno)
			rc = -errno;
	}
	return rc;
}

static int detect_tree(struct cg_host *h, const char *root)
{
	bool any_v1 = false;
	int rc;
	DIR *d;

	if (has_controllers_file(AT_FDCWD, root)) {
		if (set_str(&h->v2_mount, root) < 0)
			return -ENOMEM;
		return finish_detect(h, false);
	}
	d = opendir(root);
	if (!d)
		return -errno;
	rc = scan_tree(h, d, root, &any_v1);
	if (closedir(d) < 0 && rc == 0)
		rc = -errno;
	return rc < 0 ? rc : finish_detect(h, any_v1);
}

int cg_host_detect(struct cg_host *h, const char *root)
{
	char *text;
	int rc;

	if (root) {
		host_init(h);
		rc = detect_tree(h, root);
		if (rc < 0 && rc != -ENOENT)
			cg_host_free(h);
		return rc;
	}
	rc = cg_read_alloc(AT_FDCWD, "/proc/self/mountinfo", &text, MOUNTINFO_MAX);
	if (rc < 0) {
		log_debug("cgroup: /proc/self/mountinfo: %s", errno_name(-rc));
		host_init(h);
		return rc;
	}
	rc = cg_host_parse_mountinfo(h, text);
	free(text);
	return rc;
}

void cg_host_free(struct cg_host *h)
{
	for (int c = 0; c < CG_NCTRL; c++) {
		free(h->mount[c]);
		free(h->mount_root[c]);
	}
	free(h->v2_mount);
	free(h->v2_mount_root);
	free(h->v1_name_systemd);
	free(h->v1_devices);
	host_init(h);
}

/* ---- /proc/PID/cgroup ---- */

/* A v1 line: every listed controller this host has on a v1 hierarchy gets
 * the path.  Controllers the host put on cgroup2 ignore v1 lines. */
static int proc_v1_line(const struct cg_host *h, const char *ctrls, const char *path,
			struct cg_proc *p)
{
	const char *t = ctrls;

	while (*t) {
		size_t len = strcspn(t, ",");

		for (size_t i = 0; i < NELEM(v1_names); i++) {
			enum cg_ctrl c = v1_names[i].ctrl;

			if (tok_eq(t, len, v1_names[i].name) && h->mount[c] && !h->is_v2[c] &&
			    !p->path[c] && set_str(&p->path[c], path) < 0)
				return -ENOMEM;
		}
		t += len;
		t += *t == ',';
	}
	return 0;
}

/* "ID:CONTROLLERS:PATH"; PATH may itself hold ':', so split at two only.
 * Returns 1 for a usable line, 0 for one skipped, -ENOMEM. */
static int proc_line(const struct cg_host *h, char *line, struct cg_proc *p)
{
	static const char deleted[] = " (deleted)";
	char *ctrls, *path;
	size_t len;

	if (!strsep(&line, ":") || !(ctrls = strsep(&line, ":")) || !line || line[0] != '/')
		return 0;
	path = line;
	/* cgroup2 marks a removed cgroup; the name without it is what was. */
	len = strlen(path);
	if (len > sizeof(deleted) - 1 && strcmp(path + len - (sizeof(deleted) - 1), deleted) == 0)
		path[len - (sizeof(deleted) - 1)] = '\0';
	if (*ctrls)
		return proc_v1_line(h, ctrls, path, p) < 0 ? -ENOMEM : 1;
	if (!p->v2_path && set_str(&p->v2_path, path) < 0)
		return -ENOMEM;
	return 1;
}

int cg_proc_parse(const struct cg_host *h, const char *text, struct cg_proc *p)
{
	char *copy = strdup(text), *rest = copy, *line;
	int rc = 0, lines = 0;

	memset(p, 0, sizeof(*p));
	if (!copy)
		return -ENOMEM;
	while (rc >= 0 && (line = strsep(&rest, "\n"))) {
		rc = proc_line(h, line, p);
		lines += rc > 0;
	}
	free(copy);
	for (int c = 0; rc >= 0 && c < CG_NCTRL; c++) {
		if (h->is_v2[c] && p->v2_path && set_str(&p->path[c], p->v2_path) < 0)
			rc = -ENOMEM;
	}
	if (rc >= 0 && lines == 0)
		rc = -EINVAL;
	if (rc < 0) {
		cg_proc_free(p);
		return rc;
	}
	return 0;
}

int cg_proc_read(const struct cg_host *h, const char *proc_root, pid_t pid, struct cg_proc *p)
{
	char path[PATH_MAX], *text;
	int rc;

	memset(p, 0, sizeof(*p));
	if (snprintf(path, sizeof(path), "%s/%d/cgroup", proc_root, (int)pid) >=
	    (int)sizeof(path))
		return -ENAMETOOLONG;
	rc = cg_read_alloc(AT_FDCWD, path, &text, PROC_CGROUP_MAX);
	if (rc < 0)
		return rc;
	rc = cg_proc_parse(h, text, p);
	free(text);
	return rc;
}

void cg_proc_free(struct cg_proc *p)
{
	for (int c = 0; c < CG_NCTRL; c++)
		free(p->path[c]);
	free(p->v2_path);
	memset(p, 0, sizeof(*p));
}

bool cg_proc_is_root(const struct cg_proc *p)
{
	/* v2_path alone does not count: in a hybrid layout the unified
	 * hierarchy holds no controller we read, so it limits nothing. */
	for (int c = 0; c < CG_NCTRL; c++) {
		if (p->path[c] && strcmp(p->path[c], "/") != 0)
			return false;
	}
	return true;
}

/* ---- directories ---- */

/* Turns a /proc/PID/cgroup path into one relative to the mount, minus its
 * last `up` components: drops the mount's own root, and refuses "." and
 * "..", which would walk out of the hierarchy (a process outside our
 * cgroup namespace is shown as "/../x"). */
static int rel_path(const char *mroot, const char *path, unsigned int up, char *out, size_t len)
{
	unsigned int n = 0, keep;
	const char *t;
	size_t o = 0;

	if (path[0] != '/')
		return -EINVAL;
	if (!is_slash_root(mroot)) {
		size_t rl = strlen(mroot);

		if (strncmp(path, mroot, rl) != 0 || (path[rl] && path[rl] != '/'))
			return -ENOENT;
		path += rl;
	}
	for (t = path;;) {
		size_t cl;

		t += strspn(t, "/");
		cl = strcspn(t, "/");
		if (cl == 0)
			break;
		if (tok_eq(t, cl, ".") || tok_eq(t, cl, ".."))
			return -EINVAL;
		n++;
		t += cl;
	}
	if (up > n)
		return -ENOENT;
	keep = n - up;
	for (t = path; keep > 0; keep--) {
		size_t cl;

		t += strspn(t, "/");
		cl = strcspn(t, "/");
		if (o + cl + 2 > len)
			return -ENAMETOOLONG;
		if (o)
			out[o++] = '/';
		memcpy(out + o, t, cl);
		o += cl;
		t += cl;
	}
	if (o == 0)
		out[o++] = '.';
	out[o] = '\0';
	return 0;
}

int cg_open_ancestor(const struct cg_host *h, const struct cg_proc *p, enum cg_ctrl ctrl,
		     unsigned int up)
{
	const char *mnt, *mroot, *path;
	char rel[PATH_MAX], full[PATH_MAX];
	int rc, fd;

	if (ctrl == CG_V2_HIERARCHY) {
		mnt = h->v2_mount;
		mroot = h->v2_mount_root;
		path = p->v2_path;
	} else if ((unsigned int)ctrl < CG_NCTRL) {
		mnt = h->mount[ctrl];
		mroot = h->mount_root[ctrl];
		path = p->path[ctrl];
	} else {
		return -EINVAL;
	}
	if (!mnt || !path)
		return -ENOENT;
	rc = rel_path(mroot, path, up, rel, sizeof(rel));
	if (rc < 0)
		return rc;
	if (snprintf(full, sizeof(full), "%s/%s", mnt, rel) >= (int)sizeof(full))
		return -ENAMETOOLONG;
	fd = open(full, O_PATH | O_DIRECTORY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

int cg_open_dir(const struct cg_host *h, const struct cg_proc *p, enum cg_ctrl ctrl)
{
	return cg_open_ancestor(h, p, ctrl, 0);
}

/* ---- CPU lists ---- */

static int parse_cpu(const char **s, unsigned int *cpu)
{
	unsigned long v;
	char *end;

	if (**s < '0' || **s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoul(*s, &end, 10);
	if (errno || v > UINT_MAX)
		return -EINVAL;
	*cpu = (unsigned int)v;
	*s = end;
	return 0;
}

int cg_cpulist_parse(const char *s, uint64_t *bits, unsigned int nbits)
{
	unsigned int count = 0;

	memset(bits, 0, (nbits + 63) / 64 * sizeof(*bits));
	s += strspn(s, " \t\n");
	while (*s) {
		unsigned int a, b;

		if (parse_cpu(&s, &a) < 0)
			return -EINVAL;
		b = a;
		if (*s == '-' && (s++, parse_cpu(&s, &b) < 0))
			return -EINVAL;
		if (a > b || b >= nbits)
			return -EINVAL;
		for (unsigned int i = a; i <= b; i++)
			bits[i / 64] |= 1ULL << (i % 64);
		if (*s == ',' && s[1] >= '0' && s[1] <= '9')
			s++;
		else if (s[strspn(s, " \t\n")] == '\0')
			break;
		else
			return -EINVAL;
	}
	for (unsigned int w = 0; w < (nbits + 63) / 64; w++)
		count += (unsigned int)__builtin_popcountll(bits[w]);
	return (int)count;
}

static bool bit_set(const uint64_t *bits, unsigned int i)
{
	return bits[i / 64] >> (i % 64) & 1;
}

int cg_cpulist_format(const uint64_t *bits, unsigned int nbits, char *buf, size_t len)
{
	size_t o = 0;

	if (len == 0)
		return -ENOSPC;
	buf[0] = '\0';
	for (unsigned int i = 0; i < nbits; i++) {
		unsigned int j = i;
		int n;

		if (!bit_set(bits, i))
			continue;
		while (j + 1 < nbits && bit_set(bits, j + 1))
			j++;
		if (j == i)
			n = snprintf(buf + o, len - o, "%s%u", o ? "," : "", i);
		else
			n = snprintf(buf + o, len - o, "%s%u-%u", o ? "," : "", i, j);
		if (n < 0 || (size_t)n >= len - o)
			return -ENOSPC;
		o += (size_t)n;
		i = j;
	}
	return o > INT_MAX ? -ENOSPC : (int)o;
}

/* Volumes: parsing -v SRC:DST[:ro], and the named ones under
 * $STRATA_ROOT/volumes (ls, rm). */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image.h"
#include "log.h"
#include "parse.h"
#include "state.h"

/* ---- -v ---------------------------------------------------------------- */

static bool clean_abs_path(const char *p)
{
	if (p[0] != '/')
		return false;
	for (const char *q = p; (q = strstr(q, "..")); q += 2)
		if ((q == p || q[-1] == '/') && (q[2] == '/' || !q[2]))
			return false;
	return true;
}

int volume_parse(const char *spec, struct volume *v, char *err, size_t errlen)
{
	char **f, real[PATH_MAX];
	size_t n;
	int ret = -1;

	memset(v, 0, sizeof(*v));
	f = split_escaped(spec, ':', &n);
	if (!f)
		return FAIL("out of memory");
	if ((n != 2 && n != 3) || !f[0][0] || (n == 3 && strcmp(f[2], "ro") && strcmp(f[2], "rw"))) {
		FAIL("invalid volume '%s': expected SRC:DST[:ro]", spec);
		goto out;
	}
	if (!clean_abs_path(f[1]) || !strcmp(f[1], "/")) {
		FAIL("invalid volume '%s': the destination must be an absolute path (not /, no ..)", spec);
		goto out;
	}
	if (f[0][0] == '/') {
		if (!realpath(f[0], real)) {
			FAIL("volume source %s: %s", f[0], errno_name(errno));
			goto out;
		}
		v->source = strdup(real);
	} else if (!name_is_valid(f[0])) {
		FAIL("invalid volume name '%s': use [a-zA-Z0-9][a-zA-Z0-9_.-]*, or an absolute host path", f[0]);
		goto out;
	} else {
		v->name = strdup(f[0]);
		if (asprintf(&v->source, "%s/volumes/%s/_data", root_dir(), f[0]) < 0)
			v->source = NULL;
	}
	v->target = strdup(f[1]);
	v->ro = n == 3 && !strcmp(f[2], "ro");
	ret = v->source && v->target ? 0 : FAIL("out of memory");
out:
	if (ret < 0) {
		free(v->source);
		free(v->name);
		free(v->target);
		memset(v, 0, sizeof(*v));
	}
	strv_free(f);
	return ret;
}

/* ---- named volumes ---------------------------------------------------- */

int volume_list(void)
{
	char dir[PATH_MAX + 16];
	struct dirent *e;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/volumes", root_dir());
	d = opendir(dir);
	printf("%-8s   %s\n", "DRIVER", "VOLUME NAME");
	while (d && (e = readdir(d))) {
		if (e->d_name[0] != '.')
			printf("%-8s   %s\n", "local", e->d_name);
	}
	if (d)
		closedir(d);
	return 0;
}

int volume_remove(const char *name, char *err, size_t errlen)
{
	char dir[PATH_MAX + 16], user[ID_LEN + 1];
	struct stat st;
	int e, lock;

	if (!name_is_valid(name))
		return FAIL("invalid volume name '%s'", name);
	snprintf(dir, sizeof(dir), "%s/volumes/%s", root_dir(), name);
	if (stat(dir, &st) < 0)
		return FAIL("no such volume: %s", name);
	lock = use_lock(LOCK_EX);
	if (lock < 0)
		return FAIL("locking %s/use.lock: %s", root_dir(), errno_name(-lock));
	if (volume_used_by(name, user)) {
		close(lock);
		return FAIL("volume %s is in use by container %.12s: remove the container first", name, user);
	}
	e = remove_tree(dir);
	close(lock);
	return e < 0 ? FAIL("removing %s: %s", dir, errno_name(-e)) : 0;
}

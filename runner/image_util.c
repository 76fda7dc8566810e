/* The small fd-relative file helpers of the image store (errors, listing
 * and removing trees, opening beneath a root): no libarchive, so the
 * runner links them without it. */
#include "walker.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

int img_fail(struct img_err *eb, const char *fmt, ...)
{
	va_list ap;

	if (eb->len) {
		va_start(ap, fmt);
		vsnprintf(eb->msg, eb->len, fmt, ap);
		va_end(ap);
	}
	return -1;
}

int img_fail_prefix(struct img_err *eb, const char *fmt, ...)
{
	char *old = strndup(eb->msg, eb->len);
	va_list ap;
	size_t used;

	if (!old || !eb->len)
		goto out;
	va_start(ap, fmt);
	vsnprintf(eb->msg, eb->len, fmt, ap);
	va_end(ap);
	used = strlen(eb->msg);
	snprintf(eb->msg + used, eb->len - used, ": %s", old);
out:
	free(old);
	return -1;
}

bool img_xattr_private(const char *name)
{
	static const char *const prefixes[] = {
		"trusted.overlay.", "user.overlay.", "trusted.strata.", "user.strata.",
	};

	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
		if (strncmp(name, prefixes[i], strlen(prefixes[i])) == 0)
			return true;
	return false;
}

/* For kernels (or seccomp filters) without openat2: one component at a
 * time, never following a symlink, never going up. */
static int open_beneath_slow(int rootfd, const char *path, int flags)
{
	int fd = openat(rootfd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);

	while (fd >= 0 && *path) {
		size_t n = strcspn(path, "/");
		char name[NAME_MAX + 1];
		bool last = !path[n] || !path[n + strspn(path + n, "/")];
		int next;

		if (n > NAME_MAX || (n == 2 && !strncmp(path, "..", 2)) || path[0] == '/') {
			close(fd);
			errno = n > NAME_MAX ? ENAMETOOLONG : EXDEV;
			return -1;
		}
		memcpy(name, path, n);
		name[n] = '\0';
		next = openat(fd, n ? name : ".",
			      (last ? flags : O_PATH | O_DIRECTORY) | O_NOFOLLOW | O_CLOEXEC);
		close(fd);
		fd = next;
		path += n;
		path += strspn(path, "/");
	}
	return fd;
}

int img_open_beneath(int rootfd, const char *path, int flags)
{
	struct open_how how = {
		.flags = (unsigned int)flags | O_CLOEXEC,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
	};
	int fd = (int)syscall(SYS_openat2, rootfd, path, &how, sizeof(how));

	if (fd < 0 && errno == ENOSYS)
		return open_beneath_slow(rootfd, path, flags);
	return fd;
}

/* "/proc/self/fd/N/name": lets the path-only calls libarchive makes
 * (readlink, llistxattr, acl_get_file) reach an entry of a directory fd. */
int at_path(char *buf, size_t len, int dirfd, const char *name)
{
	int n = snprintf(buf, len, "/proc/self/fd/%d/%s", dirfd, name);

	return (n < 0 || (size_t)n >= len) ? -ENAMETOOLONG : 0;
}

int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void tw_free_names(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

/* Adds the entries of dirfd to a growing array (without "." and ".."; and
 * without ".wh.*" union meta names when skip_meta). */
int add_names(int dirfd, bool skip_meta, char ***names, size_t *n)
{
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct dirent *de;
	DIR *d;
	int err = 0;

	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		err = -errno;
		close(fd);
		return err;
	}
	while ((errno = 0, de = readdir(d))) {
		char **grown;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (skip_meta && !strncmp(de->d_name, ".wh.", 4))
			continue;
		grown = reallocarray(*names, *n + 1, sizeof(**names));
		if (!grown || !(grown[*n] = strdup(de->d_name))) {
			if (grown)
				*names = grown;
			err = -ENOMEM;
			break;
		}
		*names = grown;
		(*n)++;
	}
	if (!err && errno)
		err = -errno;
	closedir(d);
	return err;
}

int tw_list_dir(int dirfd, char ***names, size_t *n)
{
	*names = NULL;
	*n = 0;
	return add_names(dirfd, false, names, n);
}

/* Sorted, duplicates dropped (a merged directory lists each name once). */
void sort_unique(char **names, size_t *n)
{
	size_t out = 0;

	if (*n)
		qsort(names, *n, sizeof(*names), cmp_names);
	for (size_t i = 0; i < *n; i++) {
		if (out && !strcmp(names[out - 1], names[i])) {
			free(names[i]);
			continue;
		}
		names[out++] = names[i];
	}
	*n = out;
}

int img_remove_tree_at(int dirfd, const char *name)
{
	char **names = NULL;
	size_t n = 0;
	struct stat st;
	int fd, err;

	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISDIR(st.st_mode))
		return unlinkat(dirfd, name, 0) < 0 && errno != ENOENT ? -errno : 0;
	/* A layer may hold read-only directories; their owner may open them
	 * up again, root does not need to. */
	if ((st.st_mode & 0700) != 0700 && fchmodat(dirfd, name, 0700, 0) < 0 && errno != EPERM)
		return -errno;
	fd = openat(dirfd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	err = add_names(fd, false, &names, &n);
	for (size_t i = 0; !err && i < n; i++)
		err = img_remove_tree_at(fd, names[i]);
	tw_free_names(names, n);
	close(fd);
	if (!err && unlinkat(dirfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
		err = -errno;
	return err;
}

int img_remove_tree(const char *path)
{
	return img_remove_tree_at(AT_FDCWD, path);
}

void img_time_now(char buf[32])
{
	time_t now = time(NULL);
	struct tm tm;

	if (!gmtime_r(&now, &tm) || !strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm))
		strcpy(buf, "1970-01-01T00:00:00Z");
}

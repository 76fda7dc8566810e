/* Whiteouts, opaque directories and redirects: reading both formats,
 * writing the configured one. */
#include "whiteout.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "branch.h"
#include "log.h"
#include "ufs.h"
#include "xattr_at.h"

static const char *const opaque_xattrs[] = { "trusted.overlay.opaque", "user.overlay.opaque" };
static const char *const redirect_xattrs[] = { "trusted.overlay.redirect", "user.overlay.redirect" };

static int aufs_name(char *buf, size_t len, const char *name)
{
	int n = snprintf(buf, len, WH_PREFIX "%s", name);

	return (n < 0 || (size_t)n >= len) ? -ENAMETOOLONG : 0;
}

bool wh_aufs_exists(int dirfd, const char *name)
{
	char wh[NAME_MAX + WH_PREFIX_LEN + 1];
	struct stat st;

	if (aufs_name(wh, sizeof(wh), name) < 0)
		return false;
	return fstatat(dirfd, wh, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

static char *read_xattr(int dirfd, const char *name, const char *xname)
{
	char buf[4096];
	ssize_t len = xattr_get_at(dirfd, name, AT_SYMLINK_NOFOLLOW, xname, buf, sizeof(buf) - 1);

	if (len < 0)
		return NULL;
	buf[len] = '\0';
	return strdup(buf);
}

static bool xattr_present(const char *list, ssize_t len, const char *xname)
{
	for (ssize_t off = 0; off < len; off += (ssize_t)strlen(list + off) + 1)
		if (strcmp(list + off, xname) == 0)
			return true;
	return false;
}

void wh_read_dir_markers(int dirfd, const char *name, struct dir_markers *m)
{
	char list[4096];
	struct stat st;
	ssize_t len;

	m->opaque = false;
	m->redirect = NULL;
	/* One listxattr tells whether there is anything to read at all: most
	 * directories carry no overlay xattrs. */
	len = xattr_list_at(dirfd, name, AT_SYMLINK_NOFOLLOW, list, sizeof(list));
	for (size_t i = 0; len > 0 && i < 2; i++) {
		if (!m->opaque && xattr_present(list, len, opaque_xattrs[i])) {
			char *v = read_xattr(dirfd, name, opaque_xattrs[i]);

			m->opaque = v && strcmp(v, "y") == 0;
			free(v);
		}
		if (!m->redirect && xattr_present(list, len, redirect_xattrs[i]))
			m->redirect = read_xattr(dirfd, name, redirect_xattrs[i]);
	}
	if (!m->opaque) {
		char opq[NAME_MAX + sizeof(WH_OPAQUE_NAME) + 2];

		snprintf(opq, sizeof(opq), "%s/" WH_OPAQUE_NAME, name);
		m->opaque = fstatat(dirfd, opq, &st, AT_SYMLINK_NOFOLLOW) == 0;
	}
}

/* Whiteout objects, made whole by one call: -EEXIST when the name is
 * taken. */
static int make_aufs_marker(int dirfd, const char *name)
{
	int fd = openat(dirfd, name, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0444);

	if (fd < 0)
		return -errno;
	close(fd);
	return 0;
}

static int make_overlay_whiteout(int dirfd, const char *name)
{
	return mknodat(dirfd, name, S_IFCHR | 0, makedev(0, 0)) < 0 ? -errno : 0;
}

/* Removes what `tmp` in the work dir is: after an exchange it holds the
 * object that the whiteout replaced. */
static int discard_work_entry(const char *tmp)
{
	return remove_tree_at(ufs.work_fd, tmp);
}

static int overlay_whiteout(int dirfd, const char *name)
{
	char tmp[64];
	struct stat st;
	int err;

	/* Where the upper has nothing by that name (deleting a lower file),
	 * the whiteout is made in place: mknod either makes all of it or
	 * nothing, as the rename from the work dir would. */
	err = make_overlay_whiteout(dirfd, name);
	if (err != -EEXIST)
		return err;
	work_tmpname(tmp, sizeof(tmp));
	err = make_overlay_whiteout(ufs.work_fd, tmp);
	if (err)
		return err;
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		if (S_ISDIR(st.st_mode)) {
			err = wh_clear_dir(dirfd, name);
			if (err)
				goto fail;
		}
		/* Exchange, so the name never stops existing: a reader sees
		 * either the old object or the whiteout. */
		if (renameat2(ufs.work_fd, tmp, dirfd, name, RENAME_EXCHANGE) < 0) {
			err = -errno;
			goto fail;
		}
		return discard_work_entry(tmp);
	}
	if (renameat(ufs.work_fd, tmp, dirfd, name) < 0) {
		err = -errno;
		goto fail;
	}
	return 0;
fail:
	unlinkat(ufs.work_fd, tmp, 0);
	return err;
}

static int aufs_whiteout(int dirfd, const char *name)
{
	char wh[NAME_MAX + WH_PREFIX_LEN + 1];
	struct stat st;
	int err = aufs_name(wh, sizeof(wh), name);

	if (err)
		return err;
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode)) {
		err = wh_clear_dir(dirfd, name);
		if (err)
			return err;
	}
	/* The marker lands before the object goes, so a crash in between
	 * leaves the name hidden, never the lower object resurrected.  An
	 * empty file is made whole by its open, in place. */
	err = make_aufs_marker(dirfd, wh);
	if (err == -EEXIST)
		err = 0;
	if (err)
		return err;
	if (unlinkat(dirfd, name, 0) < 0 && errno == EISDIR)
		unlinkat(dirfd, name, AT_REMOVEDIR);
	return 0;
}

int wh_whiteout(int dirfd, const char *name)
{
	if (ufs.wh_format == WH_FORMAT_OVERLAY)
		return overlay_whiteout(dirfd, name);
	return aufs_whiteout(dirfd, name);
}

int wh_remove(int dirfd, const char *name)
{
	char wh[NAME_MAX + WH_PREFIX_LEN + 1];
	struct stat st;

	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    wh_is_overlay_whiteout(&st) && unlinkat(dirfd, name, 0) < 0)
		return -errno;
	if (aufs_name(wh, sizeof(wh), name) == 0 && unlinkat(dirfd, wh, 0) < 0 &&
	    errno != ENOENT)
		return -errno;
	return 0;
}

int wh_set_opaque(int dirfd, const char *name)
{
	char opq[NAME_MAX + sizeof(WH_OPAQUE_NAME) + 2];
	char xname[64];
	int fd;

	if (ufs.wh_format == WH_FORMAT_OVERLAY) {
		snprintf(xname, sizeof(xname), "%sopaque", ufs.ovl_xattr);
		if (xattr_set_at(dirfd, name, AT_SYMLINK_NOFOLLOW, xname, "y", 1, 0) < 0)
			return -errno;
		return 0;
	}
	snprintf(opq, sizeof(opq), "%s/" WH_OPAQUE_NAME, name);
	fd = openat(dirfd, opq, O_CREAT | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0444);
	if (fd < 0)
		return -errno;
	close(fd);
	return 0;
}

int wh_set_redirect(int dirfd, const char *name, const char *redirect)
{
	char xname[64];

	snprintf(xname, sizeof(xname), "%sredirect", ufs.ovl_xattr);
	if (xattr_set_at(dirfd, name, AT_SYMLINK_NOFOLLOW, xname, redirect, strlen(redirect), 0) < 0)
		return -errno;
	return 0;
}

/* An entry of an upper directory that only marks something: whiteouts of
 * either format and the aufs opaque marker. */
static bool is_marker(int dirfd, const struct dirent *de)
{
	struct stat st;

	if (wh_is_meta_name(de->d_name))
		return true;
	if (de->d_type != DT_CHR && de->d_type != DT_UNKNOWN)
		return false;
	return fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	       wh_is_overlay_whiteout(&st);
}

/* Calls fn for each entry (but . and ..) of directory name in dirfd, with
 * the directory's own fd, until fn returns non-zero. */
static int for_each_entry(int dirfd, const char *name,
			  int (*fn)(int fd, const struct dirent *de))
{
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	struct dirent *de;
	DIR *d;
	int err = 0;

	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	while (!err && (de = readdir(d))) {
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			err = fn(fd, de);
	}
	closedir(d);
	return err;
}

static int remove_marker(int fd, const struct dirent *de)
{
	if (!is_marker(fd, de))
		return -ENOTEMPTY;
	if (unlinkat(fd, de->d_name, 0) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

int wh_clear_dir(int dirfd, const char *name)
{
	return for_each_entry(dirfd, name, remove_marker);
}

bool xattr_is_private(const char *name)
{
	static const char *const prefixes[] = {
		"trusted.overlay.", "user.overlay.", "trusted.strata.", "user.strata.",
	};

	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
		if (!strncmp(name, prefixes[i], strlen(prefixes[i])))
			return true;
	return false;
}

static int remove_entry_tree(int fd, const struct dirent *de)
{
	return remove_tree_at(fd, de->d_name);
}

int remove_tree_at(int dirfd, const char *name)
{
	int err;

	if (unlinkat(dirfd, name, 0) == 0 || errno == ENOENT)
		return 0;
	if (errno != EISDIR && errno != EPERM)
		return -errno;
	err = for_each_entry(dirfd, name, remove_entry_tree);
	if (!err && unlinkat(dirfd, name, AT_REMOVEDIR) < 0)
		err = -errno;
	return err;
}

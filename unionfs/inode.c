/* Attribute and xattr requests, as fs/overlayfs/inode.c: reads go to the
 * topmost copy, changes copy up first. */
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "copyup.h"
#include "killpriv.h"
#include "log.h"
#include "lookup.h"
#include "ops.h"
#include "whiteout.h"
#include "xattr_at.h"

void ufs_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct stat st;
	int err;

	if (fi) {
		err = file_fstat(fi, &st);
		if (!err)
			node_fill_stat(req_node(ino), &st);
	} else {
		err = node_getattr(req_node(ino), &st);
	}
	if (err)
		fuse_reply_err(req, -err);
	else
		fuse_reply_attr(req, &st, attr_timeout(&st));
}

/* Runs fn on the upper copy of n, located for the *at() calls. */
static int with_upper(struct node *n, enum copy_data data,
		      int (*fn)(const struct node_loc *loc, void *arg), void *arg)
{
	struct node_loc loc;
	int err = copy_up(n, data);

	if (!err)
		err = node_locate(n, 0, &loc);
	if (err)
		return err;
	err = fn(&loc, arg);
	node_loc_done(&loc);
	return err;
}

struct setattr_args {
	const struct stat *attr;
	int to_set;
	int fd; /* an open file handle's fd, or -1 */
};

static int set_times(const struct node_loc *loc, const struct setattr_args *a)
{
	struct timespec tv[2] = { { .tv_nsec = UTIME_OMIT }, { .tv_nsec = UTIME_OMIT } };

	if (a->to_set & FUSE_SET_ATTR_ATIME_NOW)
		tv[0].tv_nsec = UTIME_NOW;
	else if (a->to_set & FUSE_SET_ATTR_ATIME)
		tv[0] = a->attr->st_atim;
	if (a->to_set & FUSE_SET_ATTR_MTIME_NOW)
		tv[1].tv_nsec = UTIME_NOW;
	else if (a->to_set & FUSE_SET_ATTR_MTIME)
		tv[1] = a->attr->st_mtim;
	if (a->fd >= 0)
		return futimens(a->fd, tv) < 0 ? -errno : 0;
	return utimensat(loc->dirfd, loc->name, tv, loc->nofollow) < 0 ? -errno : 0;
}

static int truncate_at(const struct node_loc *loc, off_t size)
{
	int fd = openat(loc->dirfd, loc->name,
			O_WRONLY | (loc->nofollow ? O_NOFOLLOW : 0) | O_CLOEXEC);
	int err = 0;

	if (fd < 0)
		return -errno;
	if (ftruncate(fd, size) < 0)
		err = -errno;
	close(fd);
	return err;
}

static int apply_setattr(const struct node_loc *loc, void *arg)
{
	const struct setattr_args *a = arg;
	const struct stat *attr = a->attr;

	if (a->to_set & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) {
		uid_t uid = (a->to_set & FUSE_SET_ATTR_UID) ? attr->st_uid : (uid_t)-1;
		gid_t gid = (a->to_set & FUSE_SET_ATTR_GID) ? attr->st_gid : (gid_t)-1;

		if ((a->fd >= 0 ? fchown(a->fd, uid, gid)
				: fchownat(loc->dirfd, loc->name, uid, gid, loc->nofollow)) < 0)
			return -errno;
	}
	if (a->to_set & FUSE_SET_ATTR_MODE) {
		int r = a->fd >= 0 ? fchmod(a->fd, attr->st_mode & 07777)
				   : fchmodat(loc->dirfd, loc->name, attr->st_mode & 07777, 0);

		if (r < 0)
			return -errno;
	}
	if (a->to_set & FUSE_SET_ATTR_SIZE) {
		int err = a->fd >= 0 ? (ftruncate(a->fd, attr->st_size) < 0 ? -errno : 0)
				     : truncate_at(loc, attr->st_size);

		if (err)
			return err;
	}
	if (a->to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_ATIME_NOW |
			 FUSE_SET_ATTR_MTIME_NOW))
		return set_times(loc, a);
	return 0;
}

/* A file whose name is gone (unlinked or renamed over) but is still open
 * is reached through one of its handles: fchmod, fchown, futimens and
 * ftruncate on it work, as on overlayfs.  A lower file is never changed. */
static int setattr_unlinked(struct node *n, struct setattr_args *a)
{
	int err, fd;

	if (n->branch != 0)
		return -ENOENT;
	if (a->fd >= 0)
		return apply_setattr(NULL, a);
	fd = node_dup_upper_fd(n);
	if (fd < 0)
		return fd;
	a->fd = fd;
	err = apply_setattr(NULL, a);
	close(fd);
	return err;
}

static bool name_is_gone(const struct node *n)
{
	return n != ufs.root && !__atomic_load_n(&n->hashed, __ATOMIC_ACQUIRE) &&
	       __atomic_load_n(&n->self_fd, __ATOMIC_ACQUIRE) < 0 && S_ISREG(n->type);
}

/* A SETATTR that changes nothing, or truncates with the kernel's
 * FATTR_KILL_SUIDGID, asks the daemon to clear the set-ID bits the
 * caller's change clears (killpriv.h): they become a mode change. */
static int add_killed_bits(fuse_req_t req, struct node *n, struct fuse_file_info *fi,
			   struct stat *attr, int *to_set)
{
	struct stat st;
	mode_t mode;
	int err;

	if (!killpriv_enabled() || !S_ISREG(n->type) || (*to_set & FUSE_SET_ATTR_MODE) ||
	    (*to_set != 0 && !(*to_set & FUSE_SET_ATTR_KILL_SUID)))
		return 0;
	err = fi ? file_fstat(fi, &st) : node_getattr(n, &st);
	if (err)
		return err;
	mode = killpriv_mode(req, &st);
	if (mode != (st.st_mode & 07777)) {
		attr->st_mode = mode;
		*to_set |= FUSE_SET_ATTR_MODE;
	}
	return 0;
}

static int setattr_apply(struct node *n, struct fuse_file_info *fi, struct setattr_args *a)
{
	/* Truncating to 0 needs no data from below. */
	enum copy_data data = ((a->to_set & FUSE_SET_ATTR_SIZE) && a->attr->st_size == 0) ?
				      COPY_NO_DATA : COPY_DATA;
	int err;

	if (fi && S_ISREG(n->type)) {
		err = copy_up(n, data);
		if (err)
			return err;
		a->fd = file_upper_fd(fi);
	}
	if (name_is_gone(n))
		return setattr_unlinked(n, a);
	return with_upper(n, data, apply_setattr, a);
}

void ufs_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		 struct fuse_file_info *fi)
{
	struct node *n = req_node(ino);
	struct setattr_args a = { .attr = attr, .fd = -1 };
	struct stat st;
	int err = add_killed_bits(req, n, fi, attr, &to_set);

	a.to_set = to_set & ~(FUSE_SET_ATTR_KILL_SUID | FUSE_SET_ATTR_KILL_SGID);
	/* Nothing to change: nothing to copy up either. */
	if (!err && (a.to_set & FUSE_SET_ATTR_SIZE) && !(err = file_begin_change(n))) {
		err = setattr_apply(n, fi, &a);
		file_end_change(n);
	} else if (!err && a.to_set) {
		err = setattr_apply(n, fi, &a);
	}
	if (!err)
		err = node_getattr(n, &st);
	if (err)
		fuse_reply_err(req, -err);
	else
		fuse_reply_attr(req, &st, attr_timeout(&st));
}

void ufs_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct node *n = req_node(ino);
	char buf[PATH_MAX + 1], *name;
	int dirfd = node_open_parent(n, n->branch, &name);
	ssize_t len;

	if (dirfd < 0) {
		fuse_reply_err(req, -dirfd);
		return;
	}
	len = readlinkat(dirfd, name, buf, sizeof(buf) - 1);
	if (len < 0) {
		fuse_reply_err(req, errno);
	} else {
		buf[len] = '\0';
		fuse_reply_readlink(req, buf);
	}
	close(dirfd);
	free(name);
}

void ufs_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs sv;
	int fd;

	(void)ino;
	/* O_PATH fds cannot be fstatvfs()ed on every kernel: open for real. */
	fd = openat(ufs.br[0].fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fstatvfs(fd, &sv) < 0) {
		fuse_reply_err(req, errno);
	} else {
		sv.f_namemax = NAME_MAX;
		fuse_reply_statfs(req, &sv);
	}
	if (fd >= 0)
		close(fd);
}

void ufs_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
	struct node *n = req_node(ino);
	struct node_loc loc;
	int err;

	if ((mask & W_OK) && !ufs.writable) {
		fuse_reply_err(req, EROFS);
		return;
	}
	err = node_locate(n, n->branch, &loc);
	if (err) {
		fuse_reply_err(req, -err);
		return;
	}
	/* Writing will copy up, so only the permission bits matter for W_OK,
	 * not whether the lower branch is writable. */
	if (faccessat(loc.dirfd, loc.name, mask & ~W_OK, AT_EACCESS) < 0)
		err = errno;
	node_loc_done(&loc);
	fuse_reply_err(req, err);
}

struct xattr_set_args {
	const char *name;
	const char *value;
	size_t size;
	int flags;
};

static int do_setxattr(const struct node_loc *loc, void *arg)
{
	const struct xattr_set_args *a = arg;

	return xattr_set_at(loc->dirfd, loc->name, loc->nofollow, a->name, a->value, a->size,
			    a->flags) < 0 ? -errno : 0;
}

static int do_removexattr(const struct node_loc *loc, void *arg)
{
	return xattr_remove_at(loc->dirfd, loc->name, loc->nofollow, arg) < 0 ? -errno : 0;
}

static ssize_t loc_getxattr(const struct node_loc *loc, const char *name, void *buf, size_t size)
{
	return xattr_get_at(loc->dirfd, loc->name, loc->nofollow, name, buf, size);
}

static ssize_t loc_listxattr(const struct node_loc *loc, char *buf, size_t size)
{
	return xattr_list_at(loc->dirfd, loc->name, loc->nofollow, buf, size);
}

void ufs_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
		  size_t size, int flags)
{
	struct xattr_set_args a = { name, value, size, flags };

	if (xattr_is_private(name)) {
		fuse_reply_err(req, EPERM);
		return;
	}
	fuse_reply_err(req, -with_upper(req_node(ino), COPY_DATA, do_setxattr, &a));
}

void ufs_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	struct node *n = req_node(ino);
	struct node_loc loc;
	int err;

	if (xattr_is_private(name)) {
		fuse_reply_err(req, EPERM);
		return;
	}
	/* Copying up to remove something that is not there would be waste. */
	err = node_locate(n, n->branch, &loc);
	if (!err) {
		if (loc_getxattr(&loc, name, NULL, 0) < 0)
			err = -errno;
		node_loc_done(&loc);
	}
	if (!err)
		err = with_upper(n, COPY_DATA, do_removexattr, (void *)name);
	fuse_reply_err(req, -err);
}

void ufs_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	struct node *n = req_node(ino);
	struct node_loc loc;
	char *buf = NULL;
	ssize_t len;
	int err;

	if (xattr_is_private(name)) {
		fuse_reply_err(req, ENODATA);
		return;
	}
	err = node_locate(n, n->branch, &loc);
	if (err) {
		fuse_reply_err(req, -err);
		return;
	}
	if (size) {
		buf = malloc(size);
		if (!buf) {
			fuse_reply_err(req, ENOMEM);
			goto out;
		}
	}
	len = loc_getxattr(&loc, name, buf, size);
	if (len < 0)
		fuse_reply_err(req, errno);
	else if (size)
		fuse_reply_buf(req, buf, (size_t)len);
	else
		fuse_reply_xattr(req, (size_t)len);
out:
	free(buf);
	node_loc_done(&loc);
}

/* Removes the private names from a listxattr result, in place. */
static size_t filter_xattr_list(char *list, size_t len)
{
	size_t out = 0;

	for (size_t off = 0; off < len;) {
		size_t l = strlen(list + off) + 1;

		if (!xattr_is_private(list + off)) {
			memmove(list + out, list + off, l);
			out += l;
		}
		off += l;
	}
	return out;
}

void ufs_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct node *n = req_node(ino);
	struct node_loc loc;
	char *buf = NULL;
	ssize_t len;
	size_t kept;
	int err = node_locate(n, n->branch, &loc);

	if (err) {
		fuse_reply_err(req, -err);
		return;
	}
	/* The full list is needed to know the filtered size. */
	len = loc_listxattr(&loc, NULL, 0);
	buf = len > 0 ? malloc((size_t)len) : NULL;
	if (len > 0 && buf)
		len = loc_listxattr(&loc, buf, (size_t)len);
	if (len < 0) {
		fuse_reply_err(req, errno);
	} else if (len > 0 && !buf) {
		fuse_reply_err(req, ENOMEM);
	} else {
		kept = filter_xattr_list(buf, (size_t)len);
		if (size == 0)
			fuse_reply_xattr(req, kept);
		else if (kept > size)
			fuse_reply_err(req, ERANGE);
		else
			fuse_reply_buf(req, buf, kept);
	}
	free(buf);
	node_loc_done(&loc);
}

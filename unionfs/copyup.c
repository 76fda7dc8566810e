/* Copy-up, as fs/overlayfs/copy_up.c: data (reflink, then sparse-aware
 * copy_file_range, then read/write), then xattrs, owner, mode and times, all
 * in a temporary in the work dir that is renamed into place at the end, so
 * no half-copied file is ever visible. */
#include "copyup.h"

#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "branch.h"
#include "log.h"
#include "lookup.h"
#include "ops.h"
#include "whiteout.h"
#include "xattr_at.h"
#include "xino.h"

static int copy_range_rw(int src, int dst, off_t from, off_t to)
{
	static const size_t bufsize = 1 << 20;
	char *buf = malloc(bufsize);
	int err = 0;

	if (!buf)
		return -ENOMEM;
	while (from < to) {
		size_t want = (size_t)(to - from) < bufsize ? (size_t)(to - from) : bufsize;
		ssize_t got = pread(src, buf, want, from);

		if (got <= 0) {
			err = got < 0 ? -errno : 0;
			break;
		}
		for (ssize_t done = 0; done < got;) {
			ssize_t w = pwrite(dst, buf + done, (size_t)(got - done), from + done);

			if (w < 0) {
				err = -errno;
				goto out;
			}
			done += w;
		}
		from += got;
	}
out:
	free(buf);
	return err;
}

static int copy_range(int src, int dst, off_t from, off_t to)
{
	loff_t in = from, out = from;

	while (in < to) {
		ssize_t n = copy_file_range(src, &in, dst, &out, (size_t)(to - in), 0);

		if (n < 0) {
			if (errno == EXDEV || errno == EINVAL || errno == EOPNOTSUPP ||
			    errno == ENOSYS)
				return copy_range_rw(src, dst, in, to);
			return -errno;
		}
		if (n == 0)
			break;
	}
	return 0;
}

/* Copies only the data extents, so holes stay holes. */
static int copy_data(int src, int dst, off_t size)
{
	off_t pos = 0;

	if (size == 0)
		return 0;
	if (ioctl(dst, FICLONE, src) == 0)
		return 0;
	while (pos < size) {
		off_t data = lseek(src, pos, SEEK_DATA), hole;
		int err;

		if (data < 0) {
			if (errno == ENXIO)
				break; /* only a hole remains */
			data = pos; /* no SEEK_DATA support: copy everything */
		}
		hole = lseek(src, data, SEEK_HOLE);
		if (hole < 0 || hole > size)
			hole = size;
		err = copy_range(src, dst, data, hole);
		if (err)
			return err;
		pos = hole;
	}
	if (ftruncate(dst, size) < 0)
		return -errno;
	return 0;
}

int copy_xattrs(int src_dirfd, const char *src, int dst_dirfd, const char *dst)
{
	const int nofollow = AT_SYMLINK_NOFOLLOW;
	char *list = NULL, *value = NULL;
	ssize_t len;
	int err = 0;

	len = xattr_list_at(src_dirfd, src, nofollow, NULL, 0);
	if (len <= 0)
		return (len < 0 && errno != ENOTSUP) ? -errno : 0;
	list = malloc((size_t)len);
	value = malloc(XATTR_SIZE_MAX);
	if (!list || !value) {
		err = -ENOMEM;
		goto out;
	}
	len = xattr_list_at(src_dirfd, src, nofollow, list, (size_t)len);
	if (len < 0) {
		err = -errno;
		goto out;
	}
	for (ssize_t off = 0; off < len; off += (ssize_t)strlen(list + off) + 1) {
		const char *name = list + off;
		ssize_t vlen;

		if (xattr_is_private(name))
			continue;
		vlen = xattr_get_at(src_dirfd, src, nofollow, name, value, XATTR_SIZE_MAX);
		if (vlen < 0)
			continue; /* vanished or unreadable for us: nothing to copy */
		if (xattr_set_at(dst_dirfd, dst, nofollow, name, value, (size_t)vlen, 0) < 0 &&
		    errno != EPERM && errno != ENOTSUP) {
			err = -errno;
			break;
		}
	}
out:
	free(list);
	free(value);
	return err;
}

static int create_regular(int srcdir, const char *name, const struct stat *st,
			  const char *tmp, enum copy_data data)
{
	int src, dst, err = 0;

	dst = openat(ufs.work_fd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (dst < 0)
		return -errno;
	if (data == COPY_DATA && st->st_size > 0) {
		src = openat(srcdir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		if (src < 0) {
			err = -errno;
		} else {
			err = copy_data(src, dst, st->st_size);
			close(src);
		}
	}
	close(dst);
	return err;
}

static int create_object(int srcdir, const char *name, const struct stat *st,
			 const char *tmp, enum copy_data data)
{
	char target[PATH_MAX];
	ssize_t len;

	switch (st->st_mode & S_IFMT) {
	case S_IFREG:
		return create_regular(srcdir, name, st, tmp, data);
	case S_IFDIR:
		return mkdirat(ufs.work_fd, tmp, 0700) < 0 ? -errno : 0;
	case S_IFLNK:
		len = readlinkat(srcdir, name, target, sizeof(target) - 1);
		if (len < 0)
			return -errno;
		target[len] = '\0';
		return symlinkat(target, ufs.work_fd, tmp) < 0 ? -errno : 0;
	default:
		return mknodat(ufs.work_fd, tmp, st->st_mode, st->st_rdev) < 0 ? -errno : 0;
	}
}

static int copy_metadata(int srcdir, const char *name, const struct stat *st, const char *tmp)
{
	struct timespec times[2] = { st->st_atim, st->st_mtim };
	int err = copy_xattrs(srcdir, name, ufs.work_fd, tmp);

	if (err)
		return err;
	if (fchownat(ufs.work_fd, tmp, st->st_uid, st->st_gid, AT_SYMLINK_NOFOLLOW) < 0 &&
	    (ufs.uid == 0 || errno != EPERM))
		return -errno;
	/* After chown, which clears set-id bits. */
	if (!S_ISLNK(st->st_mode) && fchmodat(ufs.work_fd, tmp, st->st_mode & 07777, 0) < 0)
		return -errno;
	if (utimensat(ufs.work_fd, tmp, times, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	return 0;
}

/* Keeps the lower object's inode number for its upper copy. */
static int register_copy(struct node *n, int dstdir, const char *name, struct stat *out)
{
	struct xino_key key = { .branch_id = ufs.br[0].xino_id };

	if (fstatat(dstdir, name, out, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	key.ino = out->st_ino;
	key.gen = backing_gen(dstdir, name);
	return xino_set(ufs.xino, &key, n->ino);
}

static int copy_up_locked(struct node *n, enum copy_data data)
{
	char *sname = NULL, *dname = NULL, tmp[64];
	int srcdir, dstdir = -1, err;
	struct stat st, upper;

	srcdir = node_open_parent(n, n->branch, &sname);
	if (srcdir < 0)
		return srcdir;
	err = fstatat(srcdir, sname, &st, AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
	if (!err) {
		dstdir = node_open_parent(n, 0, &dname);
		err = dstdir < 0 ? dstdir : 0;
	}
	if (err)
		goto out;
	work_tmpname(tmp, sizeof(tmp));
	err = create_object(srcdir, sname, &st, tmp, data);
	if (!err)
		err = copy_metadata(srcdir, sname, &st, tmp);
	if (!err && S_ISDIR(st.st_mode) && n->redirect) {
		char *abs;

		/* The upper copy must keep pointing at the moved lower content. */
		if (asprintf(&abs, "/%s", n->redirect) < 0) {
			err = -ENOMEM;
		} else {
			err = wh_set_redirect(ufs.work_fd, tmp, abs);
			free(abs);
		}
	}
	if (!err && renameat2(ufs.work_fd, tmp, dstdir, dname, RENAME_NOREPLACE) < 0)
		err = -errno;
	if (err) {
		remove_tree_at(ufs.work_fd, tmp);
		goto out;
	}
	file_retarget_all(n, dstdir, dname);
	err = register_copy(n, dstdir, dname, &upper);
	pthread_mutex_lock(&n->lock);
	n->backing_ino = upper.st_ino;
	n->dir_branches |= 1;
	__atomic_store_n(&n->branch, 0, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&n->lock);
	if (n->redirect)
		node_set_redirect(n, n->redirect, 0);
out:
	if (dstdir >= 0)
		close(dstdir);
	close(srcdir);
	free(sname);
	free(dname);
	return err;
}

bool copy_up_copies_data(const struct node *n)
{
	return ufs.writable && __atomic_load_n(&n->branch, __ATOMIC_ACQUIRE) != 0 &&
	       S_ISREG(__atomic_load_n(&n->type, __ATOMIC_RELAXED));
}

int copy_up(struct node *n, enum copy_data data)
{
	int err = 0;

	if (!ufs.writable)
		return -EROFS;
	if (__atomic_load_n(&n->branch, __ATOMIC_ACQUIRE) == 0)
		return 0;
	if (n->parent) {
		err = copy_up(n->parent, COPY_DATA);
		if (err)
			return err;
	}
	pthread_mutex_lock(&n->copy_lock);
	if (n->branch != 0)
		err = copy_up_locked(n, data);
	pthread_mutex_unlock(&n->copy_lock);
	if (err)
		log_debug("copy-up of '%s' failed: %s", n->name, errno_name(-err));
	return err;
}

/* Extended attributes relative to a directory fd (see xattr_at.h). */
#include "xattr_at.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

/* Linux 6.13, one number on every architecture; glibc 2.36 lacks them. */
#ifndef SYS_setxattrat
#define SYS_setxattrat 463
#define SYS_getxattrat 464
#define SYS_listxattrat 465
#define SYS_removexattrat 466
#endif

struct xattr_args {
	uint64_t value;
	uint32_t size;
	uint32_t flags;
};

/* Set once a call said ENOSYS: the kernel predates the *xattrat calls. */
static bool no_xattrat;

static bool use_at_calls(long ret)
{
	if (ret < 0 && errno == ENOSYS) {
		__atomic_store_n(&no_xattrat, true, __ATOMIC_RELAXED);
		return false;
	}
	return true;
}

void xattr_at_use_proc_paths(void)
{
	__atomic_store_n(&no_xattrat, true, __ATOMIC_RELAXED);
}

static bool have_at_calls(void)
{
	return !__atomic_load_n(&no_xattrat, __ATOMIC_RELAXED);
}

/* The fallback: the object's path through its directory's /proc link. */
static const char *proc_path(char *buf, size_t len, int dirfd, const char *name)
{
	if (dirfd == AT_FDCWD)
		return name;
	snprintf(buf, len, "/proc/self/fd/%d/%s", dirfd, name);
	return buf;
}

#define PROC_PATH_MAX (32 + 4096)

ssize_t xattr_get_at(int dirfd, const char *name, int flags, const char *xname, void *buf,
		     size_t size)
{
	struct xattr_args args = { .value = (uintptr_t)buf, .size = (uint32_t)size };
	char pbuf[PROC_PATH_MAX];
	const char *path;

	if (have_at_calls()) {
		long r = syscall(SYS_getxattrat, dirfd, name, flags, xname, &args, sizeof(args));

		if (use_at_calls(r))
			return r;
	}
	path = proc_path(pbuf, sizeof(pbuf), dirfd, name);
	return (flags & AT_SYMLINK_NOFOLLOW) ? lgetxattr(path, xname, buf, size)
					     : getxattr(path, xname, buf, size);
}

ssize_t xattr_list_at(int dirfd, const char *name, int flags, char *buf, size_t size)
{
	char pbuf[PROC_PATH_MAX];
	const char *path;

	if (have_at_calls()) {
		long r = syscall(SYS_listxattrat, dirfd, name, flags, buf, size);

		if (use_at_calls(r))
			return r;
	}
	path = proc_path(pbuf, sizeof(pbuf), dirfd, name);
	return (flags & AT_SYMLINK_NOFOLLOW) ? llistxattr(path, buf, size)
					     : listxattr(path, buf, size);
}

int xattr_set_at(int dirfd, const char *name, int flags, const char *xname, const void *value,
		 size_t size, int xflags)
{
	struct xattr_args args = { .value = (uintptr_t)value, .size = (uint32_t)size,
				   .flags = (uint32_t)xflags };
	char pbuf[PROC_PATH_MAX];
	const char *path;

	if (have_at_calls()) {
		long r = syscall(SYS_setxattrat, dirfd, name, flags, xname, &args, sizeof(args));

		if (use_at_calls(r))
			return (int)r;
	}
	path = proc_path(pbuf, sizeof(pbuf), dirfd, name);
	return (flags & AT_SYMLINK_NOFOLLOW) ? lsetxattr(path, xname, value, size, xflags)
					     : setxattr(path, xname, value, size, xflags);
}

int xattr_remove_at(int dirfd, const char *name, int flags, const char *xname)
{
	char pbuf[PROC_PATH_MAX];
	const char *path;

	if (have_at_calls()) {
		long r = syscall(SYS_removexattrat, dirfd, name, flags, xname);

		if (use_at_calls(r))
			return (int)r;
	}
	path = proc_path(pbuf, sizeof(pbuf), dirfd, name);
	return (flags & AT_SYMLINK_NOFOLLOW) ? lremovexattr(path, xname) : removexattr(path, xname);
}

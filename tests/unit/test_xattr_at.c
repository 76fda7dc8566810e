/* Extended attributes relative to a directory fd: the *xattrat system
 * calls and the /proc/self/fd fallback must behave alike.  Each test body
 * runs twice, once per path (Criterion runs every test in its own process,
 * so forcing the fallback in one does not leak into the others). */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "xattr_at.h"

static char top[64];
static int dirfd_;

static void setup(void)
{
	snprintf(top, sizeof(top), "/tmp/strata-xat-XXXXXX");
	cr_assert_not_null(mkdtemp(top));
	dirfd_ = open(top, O_PATH | O_DIRECTORY);
	cr_assert_geq(dirfd_, 0);
	int fd = openat(dirfd_, "f", O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
	cr_assert_geq(fd, 0);
	close(fd);
	cr_assert_eq(symlinkat("f", dirfd_, "link"), 0);
}

static void teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", top);
	cr_assert_eq(system(cmd), 0);
}

#define BOTH_PATHS(name)                                                              \
	static void name##_body(void);                                                \
	Test(xattr_at, name##_syscalls, .init = setup, .fini = teardown) { name##_body(); } \
	Test(xattr_at, name##_proc_paths, .init = setup, .fini = teardown) {          \
		xattr_at_use_proc_paths();                                            \
		name##_body();                                                        \
	}                                                                             \
	static void name##_body(void)

static const int nofollow = AT_SYMLINK_NOFOLLOW;

BOTH_PATHS(set_get_list_remove)
{
	char buf[64] = "";

	cr_assert_eq(xattr_set_at(dirfd_, "f", nofollow, "user.a", "one", 3, 0), 0,
		     "%s", strerror(errno));
	cr_assert_eq(xattr_set_at(dirfd_, "f", nofollow, "user.b", "", 0, 0), 0);
	cr_assert_eq(xattr_get_at(dirfd_, "f", nofollow, "user.a", NULL, 0), 3);
	cr_assert_eq(xattr_get_at(dirfd_, "f", nofollow, "user.a", buf, sizeof(buf)), 3);
	cr_assert_eq(memcmp(buf, "one", 3), 0);
	cr_assert_eq(xattr_get_at(dirfd_, "f", nofollow, "user.a", buf, 2), -1);
	cr_assert_eq(errno, ERANGE);
	ssize_t len = xattr_list_at(dirfd_, "f", nofollow, buf, sizeof(buf));
	cr_assert_eq(len, (ssize_t)sizeof("user.a") + (ssize_t)sizeof("user.b"), "list: %zd", len);
	cr_assert_eq(xattr_set_at(dirfd_, "f", nofollow, "user.a", "x", 1, XATTR_CREATE), -1);
	cr_assert_eq(errno, EEXIST);
	cr_assert_eq(xattr_remove_at(dirfd_, "f", nofollow, "user.a"), 0);
	cr_assert_eq(xattr_get_at(dirfd_, "f", nofollow, "user.a", buf, sizeof(buf)), -1);
	cr_assert_eq(errno, ENODATA);
	cr_assert_eq(xattr_remove_at(dirfd_, "f", nofollow, "user.a"), -1);
	cr_assert_eq(errno, ENODATA);
}

BOTH_PATHS(nofollow_stays_on_the_symlink)
{
	char buf[16] = "";

	cr_assert_eq(xattr_set_at(dirfd_, "f", nofollow, "user.t", "target", 6, 0), 0);
	cr_assert_eq(xattr_get_at(dirfd_, "link", 0, "user.t", buf, sizeof(buf)), 6);
	cr_assert_eq(memcmp(buf, "target", 6), 0);
	cr_assert_eq(xattr_get_at(dirfd_, "link", nofollow, "user.t", buf, sizeof(buf)), -1);
	cr_assert_eq(errno, ENODATA);
	cr_assert_eq(xattr_list_at(dirfd_, "link", nofollow, buf, sizeof(buf)), 0);
}

/* A node with its own fd is named by its /proc link, followed (node.h). */
BOTH_PATHS(proc_link_of_an_fd_is_followed)
{
	char name[64], buf[16] = "";
	int fd = openat(dirfd_, "f", O_PATH | O_CLOEXEC);

	cr_assert_geq(fd, 0);
	cr_assert_eq(xattr_set_at(dirfd_, "f", nofollow, "user.p", "proc", 4, 0), 0);
	snprintf(name, sizeof(name), "/proc/self/fd/%d", fd);
	cr_assert_eq(xattr_get_at(AT_FDCWD, name, 0, "user.p", buf, sizeof(buf)), 4);
	cr_assert_eq(memcmp(buf, "proc", 4), 0);
	close(fd);
}

BOTH_PATHS(missing_name_is_enoent)
{
	char buf[16];

	cr_assert_eq(xattr_get_at(dirfd_, "nope", nofollow, "user.x", buf, sizeof(buf)), -1);
	cr_assert_eq(errno, ENOENT);
	cr_assert_eq(xattr_list_at(dirfd_, "nope", nofollow, buf, sizeof(buf)), -1);
	cr_assert_eq(errno, ENOENT);
}

/* Extended attributes of (dirfd, name), as the *at() calls do for
 * everything else: getxattrat(2) and friends on Linux 6.13+, else the
 * object's /proc/self/fd/N/NAME path.  The path costs a walk through procfs
 * (4.5 us against 2.2 us here), and every directory lookup reads xattrs.
 *
 * flags: AT_SYMLINK_NOFOLLOW (act on a symlink itself) or 0 (follow, for
 * the /proc/self/fd/N names of node.h).  Return values and errno as for
 * lgetxattr(2) and friends. */
#ifndef STRATA_UNIONFS_XATTR_AT_H
#define STRATA_UNIONFS_XATTR_AT_H

#include <stddef.h>
#include <sys/types.h>

ssize_t xattr_get_at(int dirfd, const char *name, int flags, const char *xname, void *buf,
		     size_t size);
ssize_t xattr_list_at(int dirfd, const char *name, int flags, char *buf, size_t size);
int xattr_set_at(int dirfd, const char *name, int flags, const char *xname, const void *value,
		 size_t size, int xflags);
int xattr_remove_at(int dirfd, const char *name, int flags, const char *xname);

/* Uses the /proc paths from now on, as on a kernel without the calls (for
 * the tests of that path). */
void xattr_at_use_proc_paths(void);

#endif

/* Reading how a libfuse session loop ended; shared by both filesystems. */
#ifndef STRATA_FUSE_LOOP_H
#define STRATA_FUSE_LOOP_H

#include <errno.h>
#include <stdbool.h>

/* True when fuse_session_loop{,_mt}() returned because the mount went away
 * rather than because serving it failed.  Unmounting wakes idle readers of
 * /dev/fuse with ENODEV, but a reader that dequeued a request (typically an
 * asynchronous RELEASE of a just-closed file) while the connection was being
 * torn down gets ECONNABORTED, which libfuse 3.14 returns as an error. */
static inline bool fuse_loop_ended_by_unmount(int ret)
{
	return ret == 0 || ret == -ENODEV || ret == -ECONNABORTED;
}

#endif

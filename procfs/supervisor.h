/* The supervisor: owns the mount and the /dev/fuse descriptor, and keeps
 * one worker serving it.
 *
 *   mount -> read FUSE_INIT -> answer it (libfuse, for real) -> daemonize
 *   -> loop { fork+exec worker(fd, INIT bytes, generation); wait }
 *
 * A worker re-executes this binary (the file on disk, so an upgrade takes
 * effect at the next restart) and rebuilds its libfuse session by replaying
 * the saved INIT request with the reply dropped: the kernel sends INIT only
 * once per connection.  When a worker dies, the requests it had read but not
 * answered are handed back to the kernel's queue with FUSE_NOTIFY_RESEND
 * (Linux 6.9+); on older kernels a worker reads through a cloned
 * descriptor, whose close fails those requests instead of leaving the
 * readers hanging. */
#ifndef STRATA_PROCFS_SUPERVISOR_H
#define STRATA_PROCFS_SUPERVISOR_H

#include "procfs.h"

/* Sends FUSE_NOTIFY_RESEND on fd. Returns 0 or -errno. */
int pf_notify_resend(int fd);

#endif

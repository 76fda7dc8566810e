/* FUSE over io_uring (Linux 6.14+, with the fuse module parameter
 * enable_uring=Y): requests arrive in per-CPU rings instead of through
 * read(2) on /dev/fuse, and each reply is committed together with the fetch
 * of the next request in one io_uring_enter(2).  A request is served on the
 * CPU of the process that made it, by a thread bound to that CPU, so the
 * round trip has no cross-CPU wakeup: 14 us instead of 22 us here.
 *
 * libfuse 3.14 predates it.  The I/O layer of passthrough.c adds the INIT
 * flag and, once the INIT reply is out, starts the rings; each request taken
 * from a ring is rebuilt as the /dev/fuse message libfuse parses, and its
 * reply, caught by the same I/O layer, goes back into the ring entry.
 * FORGET and INTERRUPT still come through /dev/fuse, served by the usual
 * session loop; every other request waits in the kernel until all rings
 * are ready.
 *
 * One thread serves each ring, one request after another: a handler must
 * not wait for the kernel to finish another request of this mount (the one
 * that waits for page locks, preload_small_file(), runs only for a file's
 * only handle, so no READ of it can be pending), and one that would wait
 * for the disk hands its request to a small pool (uring_defer()), as does
 * every request that may take long (ops_may_block(): a copy-up of file
 * data, an fsync), before it is served. */
#ifndef STRATA_UNIONFS_URING_H
#define STRATA_UNIONFS_URING_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "ops.h"

/* From the init callback: makes one ring per CPU and asks the kernel for
 * io_uring, if it offers it and the mount allows it; replies are then never
 * spliced into /dev/fuse.  A ring that cannot be made leaves /dev/fuse. */
void uring_negotiate(struct fuse_conn_info *conn);

/* From the I/O layer, once the INIT reply has been written: when it asked
 * for io_uring, registers the rings' entries and serves them.  max_payload is
 * the largest request or reply body the kernel may send (max(max_write,
 * max_pages pages)).  The kernel holds every request until all rings are
 * registered, so if one cannot be, the daemon stops (SIGTERM). */
void uring_start(struct fuse_session *se, size_t max_payload);

/* From the I/O layer's writev: when iov is the reply to the ring request
 * this thread is serving, copies it into the ring entry, queues its commit
 * and returns true with *sent set; false for anything else (notifications,
 * replies to /dev/fuse requests), which goes to /dev/fuse. */
bool uring_send_reply(const struct iovec *iov, int count, ssize_t *sent);

/* For a handler that would wait for the disk: on a ring thread it would
 * hold up every request of its CPU.  When this thread serves a ring,
 * *buf (*cap bytes) is the request's ring entry, free for a reply built in
 * place, and true is returned. */
bool uring_reply_buffer(void **buf, size_t *cap);

/* Hands the request this ring thread serves to a pool thread: fn(arg) runs
 * there and replies to it as usual.  False when this thread serves no ring
 * or there is no pool (the caller then serves the request itself). */
bool uring_defer(void (*fn)(void *arg), void *arg);

/* Stops and frees the rings (after the session loop returned). */
void uring_stop(void);

#endif

/* Kernel FUSE passthrough (Linux 6.9+): the kernel reads, writes and maps an
 * open regular file straight from its backing file, so data never crosses
 * /dev/fuse.  libfuse 3.14 predates it, so the protocol bits are added here:
 * the INIT reply and the OPEN/CREATE replies are patched on their way to the
 * kernel through a custom I/O layer around the session's descriptor.
 *
 * The kernel keeps one backing file per FUSE inode: every open of an inode
 * that has a passthrough open must be passthrough to the same registered
 * backing file (anything else fails with EIO), and no passthrough open is
 * allowed while the inode has page-cache opens.  file.c keeps those rules
 * per node; this file only speaks the protocol.
 *
 * The same I/O layer hands every request to killpriv.c before libfuse
 * parses it, and adds its INIT flag. */
#ifndef STRATA_UNIONFS_PASSTHROUGH_H
#define STRATA_UNIONFS_PASSTHROUGH_H

#include <stdbool.h>
#include <stdint.h>

#include "ops.h"

/* Wraps the session's /dev/fuse descriptor (after fuse_session_mount) so
 * that the INIT reply can ask for what libfuse 3.14 cannot: passthrough
 * only when may_pass_through.  0 or -errno. */
int pt_install(struct fuse_session *se, bool may_pass_through);

/* From the init callback: add flag (FUSE_* INIT flags, flags2 as bits
 * 32-63) to the INIT reply, if the kernel offered it (pt_init_offered()).
 * pt_init_granted() says afterwards whether the reply carried it. */
bool pt_init_offered(uint64_t flag);
/* What the I/O layer notes of each request, on the thread that serves it,
 * for its reply (killpriv.h, dirahead.h); requests that do not come
 * through its read (io_uring rings) are noted here by whoever takes them. */
void pt_note_request(const void *buf, size_t len);
bool pt_init_add(uint64_t flag);
bool pt_init_granted(uint64_t flag);

/* From the init callback: ask the kernel for passthrough when it offers it.
 * pt_enabled() says afterwards whether it was asked. */
void pt_negotiate(struct fuse_conn_info *conn);
bool pt_enabled(void);

/* Registers fd's file (any open mode, O_PATH too) as a backing file: a
 * backing id > 0, or -errno.  -EPERM, -EOPNOTSUPP (and -ENOTTY) switch
 * passthrough off for the rest of the mount. */
int pt_backing_open(int fd);
void pt_backing_close(int backing_id);

/* The next OPEN or CREATE reply sent by this thread asks the kernel to pass
 * the file through to backing_id.  pt_reply_done() forgets it (call it after
 * the reply whether or not one was sent). */
void pt_reply_with(int backing_id);
void pt_reply_done(void);

#endif

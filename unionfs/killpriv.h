/* Clearing set-user-ID, set-group-ID and file capabilities on changes
 * (FUSE_HANDLE_KILLPRIV_V2), in the daemon instead of the kernel.
 *
 * Without it the kernel asks, before every write, for the file's
 * security.capability: a GETXATTR round trip per write(2), passthrough
 * writes included.  With it the kernel may mark a file that has none and is
 * not set-ID as having nothing to clear (S_NOSEC) after its first write,
 * and leaves the clearing to the daemon:
 *   - WRITE, OPEN with O_TRUNC and SETATTR of the size say, with a flag, that
 *     the caller lacks CAP_FSETID;
 *   - a write the kernel passes through, or makes through the page cache,
 *     first sends a SETATTR that changes nothing: the kernel found bits to
 *     clear and expects the daemon to clear them;
 *   - chown, and writes and truncation by the daemon itself, clear what
 *     the backing filesystem clears (the daemon runs them on the upper
 *     file; as root it keeps set-ID bits but drops capabilities).
 * The bits cleared are Linux's: set-user-ID, and set-group-ID when the file
 * is group-executable or the caller is not in its group. */
#ifndef STRATA_UNIONFS_KILLPRIV_H
#define STRATA_UNIONFS_KILLPRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

#include "ops.h"

/* From the I/O layer, with every request read from /dev/fuse: notes
 * whether it asks for the clearing (per thread, until the next one). */
void killpriv_note_request(const void *buf, size_t len);

/* From the init callback; killpriv_enabled() says afterwards whether the
 * kernel was told the daemon clears the bits. */
void killpriv_negotiate(void);
bool killpriv_enabled(void);

/* The request this thread is handling carries the kernel's flag. */
bool killpriv_requested(void);

/* st's mode once req's caller (who lacks CAP_FSETID) has changed it. */
mode_t killpriv_mode(fuse_req_t req, const struct stat *st);

/* Clears, on the regular file open at fd (node ino), what killpriv_mode()
 * says, and drops the kernel's copy of its attributes.  0 or -errno. */
int killpriv_fd(fuse_req_t req, fuse_ino_t ino, int fd);

#endif

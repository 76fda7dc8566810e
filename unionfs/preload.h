/* Handing lower-file data to the kernel's page cache before it asks
 * (FUSE_NOTIFY_STORE), where a READ round trip per 4 KiB would cost more
 * than the copy: the data of a small file with its first open (and of the
 * files after it in its directory, once a reader goes through one), and
 * the 256 KiB window around random reads that keep landing in it.
 *
 * Only lower copies in a writable union are stored (upper files and
 * read-only unions are passed through, passthrough.h).  A lower copy does
 * not change until its copy-up, and a store that a copy-up overtook drops
 * what it stored, so the page cache never keeps data older than the
 * file's: writes only come through a handle opened after the copy-up. */
#ifndef STRATA_UNIONFS_PRELOAD_H
#define STRATA_UNIONFS_PRELOAD_H

#include <stddef.h>
#include <sys/types.h>

#include "node.h"

/* With the first read-only open of n, open at fd and the only open handle
 * of n: stores the whole file when it is small.  Before the open reply, so
 * the read that follows finds it.  When the last file stored this way was
 * in the same directory, a background thread also stores the small lower
 * files listed after n there, so that a reader going through the
 * directory finds them stored too. */
void preload_small_file(struct node *n, int fd);

/* A READ of [off, off + size) through a handle whose previous READ ended at
 * *last_end (updated).  A READ that does not continue the last one is
 * random; the second random READ in a window gets the whole window stored,
 * by a background thread (fd is duplicated). */
void preload_note_read(struct node *n, int fd, off_t off, size_t size, off_t *last_end);

/* Frees n's window map (node.c, when n is freed). */
void preload_forget(struct node *n);

/* Stops the background thread, dropping queued work (before the node
 * table goes). */
void preload_stop(void);

#endif

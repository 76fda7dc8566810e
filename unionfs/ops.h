/* FUSE low-level request handlers, grouped by file as in fs/overlayfs:
 * inode.c (attributes, xattrs), dir.c (namespace changes), file.c (open
 * files), readdir.c (directory listings); ops.c holds the table. */
#ifndef STRATA_UNIONFS_OPS_H
#define STRATA_UNIONFS_OPS_H

#include <fcntl.h>
#include <stdbool.h>

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>

#include "node.h"

extern const struct fuse_lowlevel_ops ufs_ops;

/* How long the kernel may trust entries and attributes.  Every change goes
 * through this mount, and the kernel drops what each change makes stale
 * (the entries, the parent's attributes, the file's size), as kernel
 * overlayfs does: branches changed behind the mount's back are undefined
 * there too.  A day, so a warm tree walk is served from the dcache (with
 * 1 s, a 4 s walk revalidated every entry: 6.9x overlayfs). */
#define UFS_TIMEOUT 86400.0

/* A file with several names is several FUSE inodes (one per name), whose
 * cached attributes could disagree after a write through one of them: the
 * kernel must ask every time. */
static inline double attr_timeout(const struct stat *st)
{
	return (!S_ISDIR(st->st_mode) && st->st_nlink > 1) ? 0.0 : UFS_TIMEOUT;
}

/* Whether an open with these flags writes the file, so copies it up
 * first: with its data, unless O_TRUNC makes that moot. */
static inline bool open_wants_write(int flags)
{
	return (flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC);
}

static inline struct node *req_node(fuse_ino_t ino)
{
	return node_from_id(ino);
}

/* Whether the request (as read from /dev/fuse, len bytes) may keep its
 * thread for long: a copy-up of file data, a flush to the disk.  A thread
 * that serves the requests of a whole CPU in turn (uring.h) hands those to
 * threads that may wait.  A guess from the request alone: wrong only in
 * how long the request takes, never in what it does. */
bool ops_may_block(const void *request, size_t len);

/* Replies with an entry for n (which carries a fresh kernel reference). */
void reply_entry(fuse_req_t req, struct node *n, const struct stat *st);
/* What reply_entry() sends, for a READDIRPLUS entry. */
void entry_param(struct node *n, const struct stat *st, struct fuse_entry_param *e);

/* inode.c */
void ufs_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void ufs_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		 struct fuse_file_info *fi);
void ufs_readlink(fuse_req_t req, fuse_ino_t ino);
void ufs_statfs(fuse_req_t req, fuse_ino_t ino);
void ufs_access(fuse_req_t req, fuse_ino_t ino, int mask);
void ufs_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
		  size_t size, int flags);
void ufs_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size);
void ufs_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size);
void ufs_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name);

/* dir.c */
void ufs_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev);
void ufs_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode);
void ufs_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name);
void ufs_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname);
void ufs_unlink(fuse_req_t req, fuse_ino_t parent, const char *name);
void ufs_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name);
void ufs_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		const char *newname, unsigned int flags);
void ufs_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		struct fuse_file_info *fi);

/* file.c */
void ufs_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void ufs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi);
void ufs_write_buf(fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *buf, off_t off,
		   struct fuse_file_info *fi);
void ufs_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void ufs_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void ufs_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi);
void ufs_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
		   struct fuse_file_info *fi);
void ufs_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence, struct fuse_file_info *fi);
/* Opens n's backing file in branch b with flags; -errno. */
int open_backing(struct node *n, unsigned int b, int flags);
/* Attaches an fd open in branch to fi (allocating the handle) and chooses how
 * the kernel does its I/O: passed through to fd (keep_cache and direct_io
 * cleared, the reply armed with pt_reply_with()) or through the daemon (a
 * keep_cache the caller asked for is cleared when passthrough writes went
 * around the page cache).  -ETXTBSY for a writer while the kernel passes
 * n through to a lower copy (file_begin_change()).  The caller replies,
 * then calls pt_reply_done(). */
int file_attach(struct fuse_file_info *fi, struct node *n, int fd, unsigned int branch, int flags);
bool file_is_passthrough(const struct fuse_file_info *fi);
/* Frees what file_attach() made: closes the fd, drops the node. */
void file_detach(struct fuse_file_info *fi);
/* fstat() of an open handle: the object it has open, which its name may
 * no longer lead to (unlinked, renamed over). */
int file_fstat(struct fuse_file_info *fi, struct stat *st);
/* After a copy-up: points every handle of n still open on the lower copy
 * at the upper one (dirfd/name), so they see what is written from now on. */
void file_retarget_all(struct node *n, int dirfd, const char *name);
/* fstat() through any open handle of n; -ENOENT when none is open. */
int node_fstat_open(struct node *n, struct stat *st);
/* A new fd on n's upper object through one of its open handles, or
 * -ENOENT when no handle is on the upper copy. */
int node_dup_upper_fd(struct node *n);
/* For setattr on an open handle: its fd when writable, else -1. */
int file_upper_fd(struct fuse_file_info *fi);
/* Around an open for writing or a truncate of n, before anything is
 * changed: -ETXTBSY while handles opened to execute n's lower copy are
 * passed through to it, since they would go on reading the old data; as
 * Linux answers a write to a running executable.  Handles closed just
 * before, whose RELEASE is still on its way, are waited for (up to half a
 * second): file_lower_passed_through() says when that may happen. */
int file_begin_change(struct node *n);
bool file_lower_passed_through(struct node *n);
void file_end_change(struct node *n);

/* readdir.c */
void ufs_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void ufs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi);
void ufs_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		     struct fuse_file_info *fi);
void ufs_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void ufs_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi);

#endif

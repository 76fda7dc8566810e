/* Open files, as fs/overlayfs/file.c: a handle holds one backing fd; a
 * read-only handle opened before a copy-up switches to the upper copy, so it
 * sees data written after the copy-up.
 *
 * Where the kernel allows it (passthrough.h), a handle's reads, writes and
 * mmap go straight to the backing file.  Only a copy that keeps its identity
 * is passed through: the upper one, or any copy in a union nothing can be
 * written to.  A lower file opened in a writable union goes through the
 * daemon, because its copy-up must reach the handles already open, which a
 * kernel passthrough file could never be re-pointed at.
 *
 * Except to execute it: a container's first commands would otherwise fault
 * their binaries in through READs, while the lower file's pages are in the
 * host's page cache already.  Linux refuses to write a running executable
 * (ETXTBSY), so the kernel itself keeps the data of such a handle from
 * changing while it runs; other handles the kernel then passes through to
 * the same lower file, and the daemon refuses writes and truncates with
 * ETXTBSY until they are all closed (file_begin_change()). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "copyup.h"
#include "killpriv.h"
#include "log.h"
#include "ops.h"
#include "passthrough.h"
#include "preload.h"
#include "uring.h"

struct ufile {
	pthread_mutex_t lock; /* guards fd/branch while they are swapped */
	int fd;
	int flags;
	unsigned int branch;  /* branch the fd points into */
	bool passthrough;     /* the kernel does its I/O on the backing file */
	off_t last_end;       /* where the last READ ended (preload.h) */
	struct node *node;    /* holds a reference */
	struct ufile *next;   /* in node->open_files */
};

static struct ufile *ufile(struct fuse_file_info *fi)
{
	return (struct ufile *)(uintptr_t)fi->fh;
}

int open_backing(struct node *n, unsigned int b, int flags)
{
	struct node_loc loc;
	int fd, err = node_locate(n, b, &loc);

	if (err)
		return err;
	flags &= ~(O_CREAT | O_EXCL | O_NOCTTY);
	/* A node's own /proc/self/fd link is followed by design. */
	flags = loc.nofollow ? flags | O_NOFOLLOW : flags & ~O_NOFOLLOW;
	fd = openat(loc.dirfd, loc.name, flags | O_CLOEXEC);
	if (fd < 0)
		fd = -errno;
	node_loc_done(&loc);
	return fd;
}

/* FMODE_EXEC in an OPEN's flags: the kernel opens the file to execute it
 * (asm-generic/fcntl.h). */
#define OPEN_TO_EXECUTE 040

static bool may_pass_through(const struct ufile *f)
{
	return pt_enabled() && S_ISREG(f->node->type) &&
	       (f->branch == 0 || !ufs.writable ||
		((f->flags & OPEN_TO_EXECUTE) && f->node->changing == 0));
}

/* Chooses how the kernel does f's I/O, keeping the kernel's rule: while
 * the inode has passthrough opens, every new one shares their backing
 * file; while it has page-cache opens, none is passed through.  Returns
 * the backing id for the open reply, 0, or -ETXTBSY for a writer the rule
 * would pass through to a lower copy.  Caller holds n->lock. */
static int choose_io(struct ufile *f)
{
	struct node *n = f->node;
	int id = 0;

	if (n->pt_opens > 0) {
		/* Never a writer through to a lower copy (file_begin_change()
		 * keeps them apart; this is the last line). */
		if (n->backing_branch != f->branch && (f->flags & O_ACCMODE) != O_RDONLY)
			return -ETXTBSY;
		id = n->backing_id;
	} else if (n->cached_opens == 0 && may_pass_through(f)) {
		id = pt_backing_open(f->fd);
		if (id < 0 && id != -ELOOP)
			log_debug("no passthrough for '%s': %s", n->name, errno_name(-id));
		n->backing_id = id > 0 ? id : 0;
		n->backing_branch = (uint8_t)f->branch;
	}
	if (id > 0) {
		f->passthrough = true;
		n->pt_opens++;
		n->page_cache_stale = true;
		return id;
	}
	n->cached_opens++;
	return 0;
}

/* RELEASE is asynchronous: a handle closed just before a write-open may
 * not have reached the daemon yet.  How long a change waits for such
 * handles before it is refused. */
#define RELEASE_WAIT_MS 500

/* Signalled when a node's last handle passed through to a lower copy goes
 * (rare: the waiters are changes that found such handles). */
static pthread_mutex_t released_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t released = PTHREAD_COND_INITIALIZER;

bool file_lower_passed_through(struct node *n)
{
	bool busy;

	pthread_mutex_lock(&n->lock);
	busy = ufs.writable && n->pt_opens > 0 && n->backing_branch != 0;
	pthread_mutex_unlock(&n->lock);
	return busy;
}

/* Waits up to RELEASE_WAIT_MS for n's handles passed through to a lower
 * copy to be released. */
static void wait_for_release(struct node *n)
{
	struct timespec until;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_nsec += RELEASE_WAIT_MS * 1000000L;
	until.tv_sec += until.tv_nsec / 1000000000L;
	until.tv_nsec %= 1000000000L;
	/* Checked under released_lock, which file_detach() signals under
	 * once it has counted the handle out: no wake-up is lost. */
	pthread_mutex_lock(&released_lock);
	while (file_lower_passed_through(n) &&
	       pthread_cond_timedwait(&released, &released_lock, &until) == 0)
		;
	pthread_mutex_unlock(&released_lock);
}

int file_begin_change(struct node *n)
{
	int err = 0;

	if (file_lower_passed_through(n))
		wait_for_release(n);
	pthread_mutex_lock(&n->lock);
	if (ufs.writable && n->pt_opens > 0 && n->backing_branch != 0)
		err = -ETXTBSY;
	else
		n->changing++;
	pthread_mutex_unlock(&n->lock);
	return err;
}

void file_end_change(struct node *n)
{
	pthread_mutex_lock(&n->lock);
	n->changing--;
	pthread_mutex_unlock(&n->lock);
}

int file_attach(struct fuse_file_info *fi, struct node *n, int fd, unsigned int branch, int flags)
{
	struct ufile *f = calloc(1, sizeof(*f));
	bool stale;
	int id;

	if (!f)
		return -ENOMEM;
	pthread_mutex_init(&f->lock, NULL);
	f->fd = fd;
	f->flags = flags & ~(O_CREAT | O_EXCL | O_TRUNC);
	f->branch = branch;
	f->node = n;
	pthread_mutex_lock(&n->lock);
	id = choose_io(f);
	if (id < 0) {
		pthread_mutex_unlock(&n->lock);
		pthread_mutex_destroy(&f->lock);
		free(f);
		return id;
	}
	node_ref(n);
	f->next = n->open_files;
	n->open_files = f;
	stale = !id && n->page_cache_stale;
	if (stale)
		n->page_cache_stale = false;
	pthread_mutex_unlock(&n->lock);
	fi->fh = (uintptr_t)f;
	/* The kernel refuses page-cache flags on a passthrough open. */
	if (id) {
		fi->keep_cache = 0;
		fi->direct_io = 0;
		pt_reply_with(id);
	} else if (stale) {
		fi->keep_cache = 0;
	}
	return 0;
}

bool file_is_passthrough(const struct fuse_file_info *fi)
{
	return ufile((struct fuse_file_info *)fi)->passthrough;
}

/* The fd to use for I/O: re-targeted at the upper copy when the node was
 * copied up after this handle was opened. */
static int ufile_fd(struct ufile *f)
{
	unsigned int now = __atomic_load_n(&f->node->branch, __ATOMIC_ACQUIRE);
	int fd;

	if (now == f->branch)
		return f->fd;
	pthread_mutex_lock(&f->lock);
	if (f->branch != now) {
		fd = open_backing(f->node, now, f->flags);
		if (fd >= 0) {
			/* The old fd may be in use by a concurrent read: keep it
			 * valid by duplicating over it atomically. */
			dup3(fd, f->fd, O_CLOEXEC);
			close(fd);
			f->branch = now;
		}
	}
	fd = f->fd;
	pthread_mutex_unlock(&f->lock);
	return fd;
}

int file_fstat(struct fuse_file_info *fi, struct stat *st)
{
	return fstat(ufile_fd(ufile(fi)), st) < 0 ? -errno : 0;
}

void file_retarget_all(struct node *n, int dirfd, const char *name)
{
	pthread_mutex_lock(&n->lock);
	for (struct ufile *f = n->open_files; f; f = f->next) {
		int fd;

		pthread_mutex_lock(&f->lock);
		if (f->branch != 0) {
			fd = openat(dirfd, name, f->flags | O_NOFOLLOW | O_CLOEXEC);
			if (fd >= 0) {
				dup3(fd, f->fd, O_CLOEXEC);
				close(fd);
				f->branch = 0;
			}
		}
		pthread_mutex_unlock(&f->lock);
	}
	pthread_mutex_unlock(&n->lock);
}

int node_fstat_open(struct node *n, struct stat *st)
{
	int err = -ENOENT;

	pthread_mutex_lock(&n->lock);
	if (n->open_files)
		err = fstat(n->open_files->fd, st) < 0 ? -errno : 0;
	pthread_mutex_unlock(&n->lock);
	return err;
}

int node_dup_upper_fd(struct node *n)
{
	int fd = -ENOENT;

	pthread_mutex_lock(&n->lock);
	for (struct ufile *f = n->open_files; f && fd == -ENOENT; f = f->next) {
		pthread_mutex_lock(&f->lock);
		/* Only a handle already on the upper copy: one still on a
		 * lower file (its re-targeting failed) must not be changed. */
		if (f->branch == 0) {
			fd = fcntl(f->fd, F_DUPFD_CLOEXEC, 0);
			if (fd < 0)
				fd = -errno;
		}
		pthread_mutex_unlock(&f->lock);
	}
	pthread_mutex_unlock(&n->lock);
	return fd;
}

int file_upper_fd(struct fuse_file_info *fi)
{
	struct ufile *f = ufile(fi);

	if ((f->flags & O_ACCMODE) == O_RDONLY)
		return -1;
	return ufile_fd(f);
}

static bool only_open_handle(struct ufile *f)
{
	bool only;

	pthread_mutex_lock(&f->node->lock);
	only = f->node->open_files == f && !f->next;
	pthread_mutex_unlock(&f->node->lock);
	return only;
}

/* Before an open that writes: n copied up, and no lower copy passed
 * through until file_end_change(). */
static int begin_open_for_change(struct node *n, int flags)
{
	int err;

	if (!ufs.writable)
		return -EROFS;
	err = file_begin_change(n);
	if (err)
		return err;
	err = copy_up(n, (flags & O_TRUNC) ? COPY_NO_DATA : COPY_DATA);
	if (err)
		file_end_change(n);
	return err;
}

/* Opens n's backing file and attaches it to fi; 0 or -errno. */
static int open_handle(fuse_req_t req, fuse_ino_t ino, struct node *n, struct fuse_file_info *fi)
{
	/* The branch the fd is in, which a copy-up may leave behind any time. */
	unsigned int b = __atomic_load_n(&n->branch, __ATOMIC_ACQUIRE);
	int fd = open_backing(n, b, fi->flags), err = 0;

	if (fd < 0)
		return fd;
	/* O_TRUNC by a caller without CAP_FSETID (killpriv.h). */
	if (killpriv_requested() && (fi->flags & O_TRUNC))
		err = killpriv_fd(req, ino, fd);
	/* Every change goes through this mount: cached pages stay valid
	 * (file_attach() drops them when passthrough writes went around). */
	fi->keep_cache = 1;
	if (!err)
		err = file_attach(fi, n, fd, b, fi->flags);
	if (err)
		close(fd);
	return err;
}

void ufs_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct node *n = req_node(ino);
	bool change = open_wants_write(fi->flags);
	struct stat st;
	int fd, err = change ? begin_open_for_change(n, fi->flags) : 0;

	if (!err) {
		err = open_handle(req, ino, n, fi);
		if (change)
			file_end_change(n);
	}
	if (err) {
		fuse_reply_err(req, -err);
		return;
	}
	fd = ufile(fi)->fd;
	fi->noflush = (fi->flags & O_ACCMODE) == O_RDONLY || !ufs.flush_on_close;
	/* A hard-linked upper file whose names could not be made one node
	 * (node_make_shared failed) has a page cache per name: only uncached
	 * I/O keeps those names coherent.  Passthrough shares the upper
	 * file's own page cache, which is coherent already. */
	if (!file_is_passthrough(fi) && n->self_fd < 0 && n->branch == 0 && fstat(fd, &st) == 0 &&
	    S_ISREG(st.st_mode) && st.st_nlink > 1) {
		fi->direct_io = 1;
		fi->keep_cache = 0;
	}
	/* The only handle: no READ of another one can be waiting on a page
	 * the store needs (it would hold this request until answered). */
	if (!file_is_passthrough(fi) && fi->keep_cache && !open_wants_write(fi->flags) &&
	    !(fi->flags & O_DIRECT) && only_open_handle(ufile(fi)))
		preload_small_file(n, fd);
	/* Interrupted: the kernel will not release what it never got. */
	if (fuse_reply_open(req, fi) == -ENOENT)
		file_detach(fi);
	pt_reply_done();
}

struct pool_read {
	fuse_req_t req;
	int fd;       /* valid until the reply: the kernel holds the handle */
	void *buf;    /* the request's ring entry (uring_reply_buffer()) */
	size_t size;
	off_t off;
};

static void reply_read(fuse_req_t req, const void *buf, ssize_t n)
{
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
}

static void read_in_pool(void *arg)
{
	struct pool_read *r = arg;
	ssize_t n = pread(r->fd, r->buf, r->size, r->off);

	reply_read(r->req, r->buf, n < 0 ? -errno : n);
	free(r);
}

/* A READ that came through an io_uring ring (uring.h) is served from the
 * page cache of the file below, straight into the ring entry; only what
 * would wait for the disk goes to the pool, so that readahead's several
 * READs are read side by side and the ring goes on serving.  False when
 * the caller must serve it (no ring, or a filesystem without RWF_NOWAIT). */
static bool read_on_ring(fuse_req_t req, int fd, size_t size, off_t off)
{
	struct pool_read *r;
	struct stat st;
	void *buf;
	size_t cap;
	ssize_t n;

	if (!uring_reply_buffer(&buf, &cap) || size > cap)
		return false;
	n = preadv2(fd, &(struct iovec){ buf, size }, 1, off, RWF_NOWAIT);
	if (n < 0 && errno == EOPNOTSUPP)
		return false;
	if (n < 0 && errno != EAGAIN) {
		reply_read(req, NULL, -errno);
		return true;
	}
	/* Short: the end of the file, or of what is cached. */
	if (n == (ssize_t)size || (n >= 0 && fstat(fd, &st) == 0 && off + n >= st.st_size)) {
		reply_read(req, buf, n);
		return true;
	}
	r = malloc(sizeof(*r));
	if (!r)
		return false;
	*r = (struct pool_read){ .req = req, .fd = fd, .buf = buf, .size = size, .off = off };
	if (uring_defer(read_in_pool, r))
		return true;
	free(r);
	return false;
}

void ufs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	struct fuse_bufvec buf = FUSE_BUFVEC_INIT(size);
	struct ufile *f = ufile(fi);
	int fd = ufile_fd(f);

	(void)ino;
	/* Before the reply: once the kernel has it, the handle may be
	 * released (and freed) by another thread. */
	preload_note_read(f->node, fd, off, size, &f->last_end);
	if (read_on_ring(req, fd, size, off))
		return;
	buf.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	buf.buf[0].fd = fd;
	buf.buf[0].pos = off;
	fuse_reply_data(req, &buf, FUSE_BUF_SPLICE_MOVE);
}

void ufs_write_buf(fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *in, off_t off,
		   struct fuse_file_info *fi)
{
	struct fuse_bufvec out = FUSE_BUFVEC_INIT(fuse_buf_size(in));
	int fd = ufile_fd(ufile(fi));
	ssize_t res = 0;

	/* A write by a caller without CAP_FSETID (killpriv.h). */
	if (killpriv_requested())
		res = killpriv_fd(req, ino, fd);
	out.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	out.buf[0].fd = fd;
	out.buf[0].pos = off;
	if (res == 0)
		res = fuse_buf_copy(&out, in, 0);
	if (res < 0)
		fuse_reply_err(req, (int)-res);
	else
		fuse_reply_write(req, (size_t)res);
}

void ufs_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	int fd;

	(void)ino;
	/* close() of a dup reports delayed write errors (NFS-style) and
	 * releases POSIX locks of this owner, as a real close would. */
	fd = dup(ufile_fd(ufile(fi)));
	if (fd < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	fuse_reply_err(req, close(fd) < 0 ? errno : 0);
}

void file_detach(struct fuse_file_info *fi)
{
	struct ufile *f = ufile(fi), **pp;
	struct node *n = f->node;
	int unused_backing = 0;
	bool lower = false;

	pthread_mutex_lock(&n->lock);
	for (pp = &n->open_files; *pp; pp = &(*pp)->next) {
		if (*pp == f) {
			*pp = f->next;
			break;
		}
	}
	/* The kernel dropped the handle's I/O mode before it sent RELEASE. */
	if (!f->passthrough) {
		n->cached_opens--;
	} else if (--n->pt_opens == 0) {
		unused_backing = n->backing_id;
		n->backing_id = 0;
		lower = n->backing_branch != 0;
	}
	pthread_mutex_unlock(&n->lock);
	if (unused_backing)
		pt_backing_close(unused_backing);
	if (lower) {
		pthread_mutex_lock(&released_lock);
		pthread_cond_broadcast(&released);
		pthread_mutex_unlock(&released_lock);
	}
	close(f->fd);
	pthread_mutex_destroy(&f->lock);
	node_unref(f->node);
	free(f);
}

void ufs_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	file_detach(fi);
	fuse_reply_err(req, 0);
}

void ufs_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	int fd = ufile_fd(ufile(fi));

	(void)ino;
	fuse_reply_err(req, (datasync ? fdatasync(fd) : fsync(fd)) < 0 ? errno : 0);
}

void ufs_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
		   struct fuse_file_info *fi)
{
	(void)ino;
	if (fallocate(ufile_fd(ufile(fi)), mode, offset, length) < 0)
		fuse_reply_err(req, errno);
	else
		fuse_reply_err(req, 0);
}

void ufs_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence, struct fuse_file_info *fi)
{
	off_t res = lseek(ufile_fd(ufile(fi)), off, whence);

	(void)ino;
	if (res < 0)
		fuse_reply_err(req, errno);
	else
		fuse_reply_lseek(req, res);
}

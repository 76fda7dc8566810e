/* The FUSE passthrough protocol on top of libfuse 3.14, and the custom I/O
 * layer that carries it and killpriv.c's INIT flag (see passthrough.h). */
#include "passthrough.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <stddef.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

#include "dirahead.h"
#include "killpriv.h"
#include "log.h"
#include "uring.h"

/* Protocol 7.40, newer than Debian 12's <linux/fuse.h> (7.38). */
#define PT_FUSE_INIT_EXT (1ULL << 30)
#define PT_FUSE_PASSTHROUGH (1ULL << 37)
#define PT_FOPEN_PASSTHROUGH (1U << 7)

struct pt_backing_map {
	int32_t fd;
	uint32_t flags;
	uint64_t padding;
};

#define PT_IOC_BACKING_OPEN _IOW(FUSE_DEV_IOC_MAGIC, 1, struct pt_backing_map)
#define PT_IOC_BACKING_CLOSE _IOW(FUSE_DEV_IOC_MAGIC, 2, uint32_t)

/* 7.40 put max_stack_depth where 7.38 has unused[0]. */
#define PT_INIT_OUT_STACK_DEPTH offsetof(struct fuse_init_out, unused)
/* Backing files may live on a plain filesystem only (s_stack_depth 0), so a
 * kernel overlayfs can still be stacked on the union (depth 2 at most). */
#define PT_MAX_STACK_DEPTH 1

static struct {
	struct fuse_session *se;
	int dev_fd;             /* the session's /dev/fuse descriptor, -1: not installed */
	bool may_pass_through;  /* allowed by the caller of pt_install() */
	uint64_t offered;       /* INIT flags the kernel offered (flags | flags2 << 32) */
	uint64_t granted;       /* INIT flags added to the reply */
	bool enabled;           /* passthrough asked for in INIT and not refused since */
} pt = { .dev_fd = -1 };

/* Set by the init callback, in the thread that then sends the INIT reply. */
static __thread uint64_t init_reply_flags;
static __thread int open_reply_backing_id;

/* The first request is INIT: remember what the kernel offers. */
static void note_init_request(const void *buf, ssize_t len)
{
	const struct fuse_in_header *h = buf;
	const struct fuse_init_in *in = (const void *)(h + 1);

	if (len < (ssize_t)(sizeof(*h) + offsetof(struct fuse_init_in, unused)) ||
	    h->opcode != FUSE_INIT)
		return;
	pt.offered = in->flags;
	if (in->flags & PT_FUSE_INIT_EXT)
		pt.offered |= (uint64_t)in->flags2 << 32;
}

static ssize_t pt_read(int fd, void *buf, size_t len, void *userdata)
{
	ssize_t n = read(fd, buf, len);

	(void)userdata;
	if (n > 0 && !pt.offered)
		note_init_request(buf, n);
	if (n > 0)
		pt_note_request(buf, (size_t)n);
	return n;
}

void pt_note_request(const void *buf, size_t len)
{
	killpriv_note_request(buf, len);
	dirahead_note_request(buf, len);
}

static void patch_init_reply(struct iovec *iov, int count, uint64_t flags)
{
	struct fuse_init_out *out;

	if (count < 2 || iov[1].iov_len < offsetof(struct fuse_init_out, flags2))
		return;
	out = iov[1].iov_base;
	/* Flags past the first 32 travel in flags2, and only with INIT_EXT;
	 * passthrough also needs the stack depth after it. */
	if (!(out->flags & PT_FUSE_INIT_EXT) ||
	    iov[1].iov_len < PT_INIT_OUT_STACK_DEPTH + sizeof(uint32_t))
		flags &= 0xffffffffULL;
	out->flags |= (uint32_t)flags;
	out->flags2 |= (uint32_t)(flags >> 32);
	if (flags & PT_FUSE_PASSTHROUGH) {
		memcpy((char *)out + PT_INIT_OUT_STACK_DEPTH, &(uint32_t){ PT_MAX_STACK_DEPTH },
		       sizeof(uint32_t));
		pt.enabled = true;
	}
	__atomic_store_n(&pt.granted, flags, __ATOMIC_RELEASE);
}

/* fuse_reply_open() and fuse_reply_create() both end with fuse_open_out. */
static void patch_open_reply(struct iovec *iov, int count, int backing_id)
{
	struct fuse_open_out *o;

	if (count < 2 || iov[count - 1].iov_len < sizeof(*o))
		return;
	o = (void *)((char *)iov[count - 1].iov_base + iov[count - 1].iov_len - sizeof(*o));
	o->open_flags |= PT_FOPEN_PASSTHROUGH;
	/* backing_id in 7.40, padding in 7.38. */
	o->padding = (uint32_t)backing_id;
}

/* The largest request or reply body the kernel will exchange, from the
 * INIT reply. */
static size_t max_payload(const struct iovec *iov, int count)
{
	const struct fuse_init_out *out = iov[1].iov_base;
	size_t pages_bytes;

	if (count < 2 || iov[1].iov_len < offsetof(struct fuse_init_out, flags2))
		return 0;
	pages_bytes = (out->flags & FUSE_MAX_PAGES) ? (size_t)out->max_pages * (size_t)getpagesize() : 0;
	return out->max_write > pages_bytes ? out->max_write : pages_bytes;
}

static ssize_t pt_writev(int fd, struct iovec *iov, int count, void *userdata)
{
	const struct fuse_out_header *h = iov[0].iov_base;
	bool init_reply = false;
	ssize_t sent;

	(void)userdata;
	/* Notifications (unique 0) may go out between arming and the reply. */
	if (h->unique != 0) {
		init_reply = h->error == 0 && init_reply_flags;
		if (init_reply)
			patch_init_reply(iov, count, init_reply_flags);
		else if (h->error == 0 && open_reply_backing_id > 0)
			patch_open_reply(iov, count, open_reply_backing_id);
		init_reply_flags = 0;
		open_reply_backing_id = 0;
	}
	dirahead_note_reply();
	if (uring_send_reply(iov, count, &sent))
		return sent;
	sent = writev(fd, iov, count);
	/* The kernel takes ring registrations once it has the INIT reply. */
	if (init_reply && sent > 0)
		uring_start(pt.se, max_payload(iov, count));
	return sent;
}

static ssize_t pt_splice(int fdin, off_t *offin, int fdout, off_t *offout, size_t len,
			 unsigned int flags, void *userdata)
{
	(void)userdata;
	return splice(fdin, offin, fdout, offout, len, flags);
}

static const struct fuse_custom_io pt_io = {
	.writev = pt_writev,
	.read = pt_read,
	.splice_receive = pt_splice,
	.splice_send = pt_splice,
};

int pt_install(struct fuse_session *se, bool may_pass_through)
{
	int fd = fuse_session_fd(se);
	int err;

	if (fd < 0)
		return -EBADF;
	err = fuse_session_custom_io(se, &pt_io, fd);
	if (err)
		return err;
	pt.se = se;
	pt.dev_fd = fd;
	pt.may_pass_through = may_pass_through;
	return 0;
}

bool pt_init_offered(uint64_t flag)
{
	return pt.dev_fd >= 0 && (pt.offered & flag) == flag;
}

bool pt_init_add(uint64_t flag)
{
	if (!pt_init_offered(flag))
		return false;
	init_reply_flags |= flag;
	return true;
}

bool pt_init_granted(uint64_t flag)
{
	return (__atomic_load_n(&pt.granted, __ATOMIC_ACQUIRE) & flag) == flag;
}

void pt_negotiate(struct fuse_conn_info *conn)
{
	if (pt.may_pass_through && !(conn->want & FUSE_CAP_WRITEBACK_CACHE))
		pt_init_add(PT_FUSE_PASSTHROUGH);
}

bool pt_enabled(void)
{
	return __atomic_load_n(&pt.enabled, __ATOMIC_RELAXED);
}

int pt_backing_open(int fd)
{
	struct pt_backing_map map = { .fd = fd };
	int id = ioctl(pt.dev_fd, PT_IOC_BACKING_OPEN, &map);
	int err;

	if (id > 0)
		return id;
	err = id < 0 ? errno : EIO;
	if (err == EPERM || err == EOPNOTSUPP || err == ENOTTY || err == EINVAL) {
		/* The kernel refused passthrough itself, not this file. */
		if (__atomic_exchange_n(&pt.enabled, false, __ATOMIC_RELAXED))
			log_warn("passthrough refused by the kernel (%s): file I/O goes "
				 "through the daemon", errno_name(err));
	}
	return -err;
}

void pt_backing_close(int backing_id)
{
	uint32_t id = (uint32_t)backing_id;

	if (ioctl(pt.dev_fd, PT_IOC_BACKING_CLOSE, &id) < 0)
		log_warn("closing passthrough backing %d: %s", backing_id, errno_name(errno));
}

void pt_reply_with(int backing_id)
{
	open_reply_backing_id = backing_id;
}

void pt_reply_done(void)
{
	open_reply_backing_id = 0;
}

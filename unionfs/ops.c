/* The request table, the requests that manage the inode table itself, and
 * which requests may take long. */
#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <string.h>

#include "copyup.h"
#include "killpriv.h"
#include "log.h"
#include "lookup.h"
#include "ops.h"
#include "passthrough.h"
#include "uring.h"

static void ufs_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	/* Locks are kept by the kernel: every opener goes through this one
	 * mount, so local POSIX and flock locks are exact. */
	conn->want &= ~(FUSE_CAP_POSIX_LOCKS | FUSE_CAP_FLOCK_LOCKS);
	if (conn->capable & FUSE_CAP_PARALLEL_DIROPS)
		conn->want |= FUSE_CAP_PARALLEL_DIROPS;
	if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC)
		conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
	if (conn->capable & FUSE_CAP_SPLICE_WRITE)
		conn->want |= FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE;
	/* A symlink's target never changes in place (a new target is a new
	 * object): the kernel may keep it after the first READLINK. */
	if (conn->capable & FUSE_CAP_CACHE_SYMLINKS)
		conn->want |= FUSE_CAP_CACHE_SYMLINKS;
	/* The kernel checks permissions with the files' ACLs, not only their
	 * modes, as on any filesystem, and caches them per inode.  Only where
	 * it checks permissions at all (default_permissions: the ACL cap
	 * would turn it on). */
	if ((conn->capable & FUSE_CAP_POSIX_ACL) && ufs.cfg->default_permissions)
		conn->want |= FUSE_CAP_POSIX_ACL;
	/* With ACLs, a directory's default ACL replaces the umask (POSIX):
	 * only the daemon can tell, so the kernel leaves the umask to it. */
	if ((conn->want & FUSE_CAP_POSIX_ACL) && (conn->capable & FUSE_CAP_DONT_MASK))
		conn->want |= FUSE_CAP_DONT_MASK;
	ufs.dont_mask = conn->want & FUSE_CAP_DONT_MASK;
	/* Requests are read(), never spliced: the I/O layer must see each one
	 * (killpriv.h).  Writes that would gain from a splice are passed
	 * through anyway. */
	conn->want &= ~FUSE_CAP_SPLICE_READ;
	/* READDIRPLUS folds the LOOKUP of every listed name into the listing
	 * (ls -l, find with stat).  Not AUTO: with it the kernel asks for plus
	 * only in a listing's first reply, and programs read a whole directory
	 * before they stat its names (fts), so every name past the first 32 KiB
	 * cost a LOOKUP.  A listing's names need their stat here anyway, for
	 * the inode numbers. */
	if (conn->capable & FUSE_CAP_READDIRPLUS)
		conn->want |= FUSE_CAP_READDIRPLUS;
	conn->want &= ~FUSE_CAP_READDIRPLUS_AUTO;
	pt_negotiate(conn);
	killpriv_negotiate();
	uring_negotiate(conn);
}

static void ufs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct node *n;
	struct stat st;
	int err = lookup_child(req_node(parent), name, &n, &st);

	if (err == -ENOENT) {
		/* A negative entry: the kernel remembers the name is absent. */
		struct fuse_entry_param e = { .ino = 0, .entry_timeout = UFS_TIMEOUT };

		fuse_reply_entry(req, &e);
	} else if (err) {
		fuse_reply_err(req, -err);
	} else {
		reply_entry(req, n, &st);
	}
}

static void ufs_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	node_unref_many(req_node(ino), nlookup);
	fuse_reply_none(req);
}

static void ufs_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	for (size_t i = 0; i < count; i++)
		node_unref_many(req_node(forgets[i].ino), forgets[i].nlookup);
	fuse_reply_none(req);
}

/* The node a RENAME moves: the child of its old parent by the old name,
 * which follows the fixed argument struct. */
static bool rename_copies_data(const struct fuse_in_header *in, size_t argsize, size_t arglen)
{
	const char *name = (const char *)(in + 1) + argsize;
	struct node *n;
	bool copies;

	if (arglen <= argsize || !memchr(name, '\0', arglen - argsize))
		return false;
	n = node_find_child(req_node(in->nodeid), name);
	if (!n)
		return false;
	copies = copy_up_copies_data(n);
	node_unref(n);
	return copies;
}

bool ops_may_block(const void *request, size_t len)
{
	const struct fuse_in_header *in = request;
	const void *arg = in + 1;
	size_t arglen = len - sizeof(*in);

	switch (in->opcode) {
	case FUSE_FSYNC:
	case FUSE_FSYNCDIR:
	case FUSE_FALLOCATE:
		return true;
	case FUSE_FLUSH:
		return ufs.flush_on_close;
	case FUSE_OPEN: {
		const struct fuse_open_in *o = arg;
		struct node *n = req_node(in->nodeid);

		if (arglen < sizeof(*o) || !open_wants_write((int)o->flags))
			return false;
		/* O_TRUNC copies up no data. */
		return file_lower_passed_through(n) ||
		       (!(o->flags & O_TRUNC) && copy_up_copies_data(n));
	}
	case FUSE_SETATTR:
		return copy_up_copies_data(req_node(in->nodeid)) ||
		       file_lower_passed_through(req_node(in->nodeid));
	case FUSE_SETXATTR:
	case FUSE_REMOVEXATTR:
		return copy_up_copies_data(req_node(in->nodeid));
	case FUSE_LINK: {
		const struct fuse_link_in *l = arg;

		return arglen >= sizeof(*l) && copy_up_copies_data(req_node(l->oldnodeid));
	}
	case FUSE_RENAME:
		return rename_copies_data(in, sizeof(struct fuse_rename_in), arglen);
	case FUSE_RENAME2:
		return rename_copies_data(in, sizeof(struct fuse_rename2_in), arglen);
	default:
		return false;
	}
}

const struct fuse_lowlevel_ops ufs_ops = {
	.init = ufs_init,
	.lookup = ufs_lookup,
	.forget = ufs_forget,
	.forget_multi = ufs_forget_multi,
	.getattr = ufs_getattr,
	.setattr = ufs_setattr,
	.readlink = ufs_readlink,
	.mknod = ufs_mknod,
	.mkdir = ufs_mkdir,
	.unlink = ufs_unlink,
	.rmdir = ufs_rmdir,
	.symlink = ufs_symlink,
	.rename = ufs_rename,
	.link = ufs_link,
	.open = ufs_open,
	.read = ufs_read,
	.write_buf = ufs_write_buf,
	.flush = ufs_flush,
	.release = ufs_release,
	.fsync = ufs_fsync,
	.opendir = ufs_opendir,
	.readdir = ufs_readdir,
	.readdirplus = ufs_readdirplus,
	.releasedir = ufs_releasedir,
	.fsyncdir = ufs_fsyncdir,
	.statfs = ufs_statfs,
	.setxattr = ufs_setxattr,
	.getxattr = ufs_getxattr,
	.listxattr = ufs_listxattr,
	.removexattr = ufs_removexattr,
	.access = ufs_access,
	.create = ufs_create,
	.fallocate = ufs_fallocate,
	.lseek = ufs_lseek,
};

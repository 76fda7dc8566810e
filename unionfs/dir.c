/* Namespace changes, as fs/overlayfs/dir.c: create, link, remove and
 * rename, always in the upper branch, with whiteouts where lower branches
 * still hold a name. */
#include "dir.h"

#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "branch.h"
#include "copyup.h"
#include "log.h"
#include "lookup.h"
#include "ops.h"
#include "passthrough.h"
#include "whiteout.h"
#include "xattr_at.h"

int lower_has_name(struct node *parent, const char *name, bool *has)
{
	uint64_t saved = parent->dir_branches;
	int err;

	*has = false;
	if (!(saved & ~1ULL))
		return 0;
	/* Resolve as if the upper branch did not hold the name. */
	for (unsigned int b = 1; b < ufs.nbr && !*has; b++) {
		struct stat st;
		int dirfd;

		if (!(saved & (1ULL << b)))
			continue;
		dirfd = node_open_dir(parent, b, 0);
		if (dirfd == -ENOENT)
			continue;
		if (dirfd < 0)
			return dirfd;
		err = fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 ? errno : 0;
		if (!err) {
			*has = !(ufs.br[b].honour_wh && wh_is_overlay_whiteout(&st));
			close(dirfd);
			break;
		}
		if (err != ENOENT) {
			close(dirfd);
			return -err;
		}
		if (ufs.br[b].honour_wh && wh_aufs_exists(dirfd, name)) {
			close(dirfd);
			break;
		}
		close(dirfd);
	}
	return 0;
}

void entry_param(struct node *n, const struct stat *st, struct fuse_entry_param *e)
{
	*e = (struct fuse_entry_param){
		.ino = node_id(n),
		.attr = *st,
		.attr_timeout = attr_timeout(st),
		.entry_timeout = UFS_TIMEOUT,
	};
}

void reply_entry(fuse_req_t req, struct node *n, const struct stat *st)
{
	struct fuse_entry_param e;

	entry_param(n, st, &e);
	if (fuse_reply_entry(req, &e) == -ENOENT)
		node_unref(n); /* the request was interrupted: no kernel ref */
}

static int check_new_name(struct node *parent, const char *name)
{
	if (wh_is_meta_name(name))
		return -EPERM;
	if (!ufs.writable)
		return -EROFS;
	(void)parent;
	return 0;
}

#define XATTR_POSIX_ACL_DEFAULT "system.posix_acl_default"

/* A directory's default ACL as stored (4 bytes a header, 8 an entry; ext4
 * keeps at most 4 KiB of xattrs an inode). */
struct default_acl {
	ssize_t len;
	char value[4 + 8 * 1024];
};

/* What a new object is; built by make_object() in a directory. */
struct new_object {
	mode_t mode;
	dev_t rdev;
	const char *link_target; /* symlink */
	int link_dirfd;          /* hard link source */
	const char *link_name;
	int link_flags;
	int open_flags;          /* regular files from create: the fd is kept */
	int fd;                  /* out: open fd of a created regular file */
};

static int make_object(int dirfd, const char *name, struct new_object *o)
{
	switch (o->mode & S_IFMT) {
	case S_IFDIR:
		return mkdirat(dirfd, name, o->mode & 07777) < 0 ? -errno : 0;
	case S_IFLNK:
		return symlinkat(o->link_target, dirfd, name) < 0 ? -errno : 0;
	case 0: /* hard link */
		return linkat(o->link_dirfd, o->link_name, dirfd, name, o->link_flags) < 0 ? -errno : 0;
	case S_IFREG:
		if (o->open_flags >= 0) {
			o->fd = openat(dirfd, name,
				       (o->open_flags & ~O_TRUNC) | O_CREAT | O_EXCL | O_NOFOLLOW |
					       O_CLOEXEC,
				       o->mode & 07777);
			return o->fd < 0 ? -errno : 0;
		}
		/* fallthrough */
	default:
		return mknodat(dirfd, name, o->mode, o->rdev) < 0 ? -errno : 0;
	}
}

/* New objects belong to the caller, as on any filesystem, and a set-gid
 * directory passes on its group (and, to directories, the bit itself).
 * parentfd is the directory the object ends up in, which is not where it
 * is built when it replaces a whiteout. */
static void set_owner(fuse_req_t req, int dirfd, const char *name, int parentfd)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct stat parent, obj;
	gid_t gid = ctx->gid;
	mode_t setid;

	/* Built in place for a caller with the daemon's ids: the upper
	 * filesystem gave it those, and a set-gid parent's group and bit. */
	if (dirfd == parentfd && ctx->uid == ufs.uid && ctx->gid == ufs.gid)
		return;
	if (fstat(parentfd, &parent) < 0 || fstatat(dirfd, name, &obj, AT_SYMLINK_NOFOLLOW) < 0) {
		log_debug("stat of new '%s': %s", name, errno_name(errno));
		return;
	}
	setid = obj.st_mode & (S_ISUID | S_ISGID);
	if (parent.st_mode & S_ISGID) {
		gid = parent.st_gid;
		if (S_ISDIR(obj.st_mode))
			setid |= S_ISGID;
	}
	if (ufs.uid != 0)
		gid = obj.st_gid; /* cannot give it away: keep what we got */
	if ((obj.st_uid != ctx->uid && ufs.uid == 0) || obj.st_gid != gid) {
		if (fchownat(dirfd, name, ufs.uid == 0 ? ctx->uid : (uid_t)-1, gid,
			     AT_SYMLINK_NOFOLLOW) < 0)
			log_debug("chown of new '%s': %s", name, errno_name(errno));
	} else if (setid == (obj.st_mode & (S_ISUID | S_ISGID))) {
		return;
	}
	/* chown() clears set-id bits, even for root: put them back. */
	if (setid && !S_ISLNK(obj.st_mode) &&
	    fchmodat(dirfd, name, (obj.st_mode & 0777) | (obj.st_mode & S_ISVTX) | setid, 0) < 0)
		log_debug("mode of new '%s': %s", name, errno_name(errno));
}

/* A directory of the work dir that carries dacl as its default ACL, so
 * that an object built in it inherits as it would in the directory the
 * ACL came from.  Its fd, or -errno; *name is its name in the work dir. */
static int inheriting_build_dir(const struct default_acl *dacl, char *name, size_t len)
{
	int fd, err;

	work_tmpname(name, len);
	if (mkdirat(ufs.work_fd, name, 0700) < 0)
		return -errno;
	if (xattr_set_at(ufs.work_fd, name, AT_SYMLINK_NOFOLLOW, XATTR_POSIX_ACL_DEFAULT,
			 dacl->value, (size_t)dacl->len, 0) == 0 &&
	    (fd = openat(ufs.work_fd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) >= 0)
		return fd;
	err = -errno;
	unlinkat(ufs.work_fd, name, AT_REMOVEDIR);
	return err;
}

/* Creates name in the upper dir over whatever whiteout it holds: built in
 * the work dir (in a directory with the parent's default ACL, if it has
 * one), then exchanged with the whiteout so the name never shows the lower
 * object in between. */
static int create_over_whiteout(fuse_req_t req, int dirfd, const char *name,
				struct new_object *o, bool opaque, const struct default_acl *dacl)
{
	char tmp[64], tmpdir[64], wh[NAME_MAX + WH_PREFIX_LEN + 1];
	int builddir = ufs.work_fd;
	struct stat st;
	int err;

	if (dacl->len > 0 && (builddir = inheriting_build_dir(dacl, tmpdir, sizeof(tmpdir))) < 0)
		return builddir;
	work_tmpname(tmp, sizeof(tmp));
	err = make_object(builddir, tmp, o);
	if (err)
		goto out;
	if ((o->mode & S_IFMT) != 0) /* not for a hard link */
		set_owner(req, builddir, tmp, dirfd);
	if (opaque && (err = wh_set_opaque(builddir, tmp)))
		goto fail;
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && wh_is_overlay_whiteout(&st)) {
		if (renameat2(builddir, tmp, dirfd, name, RENAME_EXCHANGE) < 0) {
			err = -errno;
			goto fail;
		}
		unlinkat(builddir, tmp, 0);
		goto out;
	}
	if (renameat2(builddir, tmp, dirfd, name, RENAME_NOREPLACE) < 0) {
		err = -errno;
		goto fail;
	}
	snprintf(wh, sizeof(wh), WH_PREFIX "%s", name);
	if (unlinkat(dirfd, wh, 0) < 0 && errno != ENOENT && errno != ENAMETOOLONG)
		err = -errno;
	goto out;
fail:
	if (o->fd >= 0) {
		close(o->fd);
		o->fd = -1;
	}
	remove_tree_at(builddir, tmp);
out:
	if (builddir != ufs.work_fd) {
		close(builddir);
		unlinkat(ufs.work_fd, tmpdir, AT_REMOVEDIR);
	}
	return err;
}

/* With FUSE_DONT_MASK the mode arrives without the caller's umask: a
 * directory with a default ACL gets the full mode (the upper filesystem
 * applies the ACL, as POSIX has it), any other the umask. */
static int apply_umask(fuse_req_t req, int dirfd, struct new_object *o, struct default_acl *dacl)
{
	dacl->len = 0;
	if (!ufs.dont_mask || (o->mode & S_IFMT) == 0 || S_ISLNK(o->mode))
		return 0;
	dacl->len = xattr_get_at(dirfd, ".", 0, XATTR_POSIX_ACL_DEFAULT, dacl->value,
				 sizeof(dacl->value));
	if (dacl->len < 0) {
		if (errno != ENODATA && errno != ENOTSUP)
			return -errno;
		dacl->len = 0;
	}
	if (dacl->len == 0)
		o->mode &= ~(fuse_req_ctx(req)->umask & 0777);
	return 0;
}

/* The common path of mknod, mkdir, symlink, link and create. */
static int create_entry(fuse_req_t req, struct node *parent, const char *name,
			struct new_object *o, struct node **out, struct stat *st)
{
	struct resolved r;
	struct default_acl dacl;
	bool hidden_below = false, owned;
	int dirfd, err = check_new_name(parent, name);

	o->fd = -1;
	if (err)
		return err;
	err = resolve_child(parent, name, &r);
	if (err)
		return err;
	resolved_free(&r);
	if (r.found)
		return -EEXIST;
	err = copy_up(parent, COPY_DATA);
	if (err)
		return err;
	dirfd = node_dir_fd(parent, 0, &owned);
	if (dirfd < 0)
		return dirfd;
	err = apply_umask(req, dirfd, o, &dacl);
	if (!err && r.upper_whiteout) {
		/* A new directory must not show what the whiteout hid. */
		if (S_ISDIR(o->mode))
			err = lower_has_name(parent, name, &hidden_below);
		if (!err)
			err = create_over_whiteout(req, dirfd, name, o, hidden_below, &dacl);
	} else if (!err) {
		err = make_object(dirfd, name, o);
		if (!err && (o->mode & S_IFMT) != 0)
			set_owner(req, dirfd, name, dirfd);
	}
	node_dir_fd_done(dirfd, owned);
	if (!err)
		err = lookup_child(parent, name, out, st);
	if (err && o->fd >= 0) {
		close(o->fd);
		o->fd = -1;
	}
	return err;
}

static void reply_create(fuse_req_t req, fuse_ino_t parent, const char *name,
			 struct new_object *o)
{
	struct node *n;
	struct stat st;
	int err = create_entry(req, req_node(parent), name, o, &n, &st);

	if (err)
		fuse_reply_err(req, -err);
	else
		reply_entry(req, n, &st);
}

void ufs_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	struct new_object o = { .mode = mode, .rdev = rdev, .open_flags = -1 };

	reply_create(req, parent, name, &o);
}

void ufs_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	struct new_object o = { .mode = S_IFDIR | (mode & 07777), .open_flags = -1 };

	reply_create(req, parent, name, &o);
}

void ufs_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	struct new_object o = { .mode = S_IFLNK | 0777, .link_target = link, .open_flags = -1 };

	reply_create(req, parent, name, &o);
}

void ufs_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	struct node *src = req_node(ino), *n;
	struct new_object o = { .mode = 0, .open_flags = -1 };
	struct node_loc loc;
	struct stat st;
	int err = ufs.writable ? copy_up(src, COPY_DATA) : -EROFS;

	/* The new name must lead to this very node (see node_make_shared),
	 * so the kernel keeps one inode and one page cache for both. */
	if (!err && S_ISREG(src->type))
		node_make_shared(src);
	if (!err)
		err = node_locate(src, 0, &loc);
	if (!err) {
		o.link_dirfd = loc.dirfd;
		o.link_name = loc.name;
		o.link_flags = loc.is_self ? AT_SYMLINK_FOLLOW : 0;
		err = create_entry(req, req_node(newparent), newname, &o, &n, &st);
		node_loc_done(&loc);
	}
	if (err) {
		fuse_reply_err(req, -err);
		return;
	}
	if (n != src)
		fuse_lowlevel_notify_inval_inode(ufs.se, node_id(src), -1, 0);
	reply_entry(req, n, &st);
}

void ufs_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		struct fuse_file_info *fi)
{
	struct new_object o = { .mode = S_IFREG | (mode & 07777), .open_flags = fi->flags };
	struct node *n;
	struct stat st;
	int err = create_entry(req, req_node(parent), name, &o, &n, &st);

	/* Another creator was first.  Opening its file here would skip the
	 * permission checks the kernel leaves out for a file it believes it
	 * created: ESTALE makes the kernel look the name up again and open
	 * what it finds as any existing file. */
	if (err == -EEXIST && !(fi->flags & O_EXCL))
		err = -ESTALE;
	if (err) {
		fuse_reply_err(req, -err);
		return;
	}
	err = file_attach(fi, n, o.fd, 0, fi->flags);
	if (err) {
		close(o.fd);
		node_unref(n);
		fuse_reply_err(req, -err);
		return;
	}
	fi->noflush = !ufs.flush_on_close;
	{
		struct fuse_entry_param e = {
			.ino = node_id(n), .attr = st,
			.attr_timeout = attr_timeout(&st), .entry_timeout = UFS_TIMEOUT,
		};

		if (fuse_reply_create(req, &e, fi) == -ENOENT) {
			/* Interrupted: the kernel will neither forget nor release. */
			file_detach(fi);
			node_unref(n);
		}
		pt_reply_done();
	}
}

/* Forgets the name in the table: the next lookup starts from the branches. */
static void drop_name(struct node *parent, const char *name, const struct stat *st)
{
	struct node *n = node_find_child(parent, name);

	if (!n)
		return;
	node_set_gone(n, st);
	pthread_rwlock_wrlock(&ufs.tree_lock);
	node_unhash(n);
	pthread_rwlock_unlock(&ufs.tree_lock);
	node_unref(n);
}

/* Removes name (a non-directory, or a directory already found empty) from
 * the union: delete the upper object, whiteout when lower still has it. */
static int remove_entry(struct node *parent, const char *name, const struct resolved *r)
{
	bool below = false, owned;
	int dirfd, err;

	if (r->branch == 0) {
		err = lower_has_name(parent, name, &below);
		if (err)
			return err;
	} else {
		below = true;
		err = copy_up(parent, COPY_DATA);
		if (err)
			return err;
	}
	dirfd = node_dir_fd(parent, 0, &owned);
	if (dirfd < 0)
		return dirfd;
	if (below)
		err = wh_whiteout(dirfd, name);
	else if (S_ISDIR(r->st.st_mode))
		err = wh_clear_dir(dirfd, name) ?: (unlinkat(dirfd, name, AT_REMOVEDIR) < 0 ? -errno : 0);
	else
		err = unlinkat(dirfd, name, 0) < 0 ? -errno : 0;
	node_dir_fd_done(dirfd, owned);
	if (!err)
		drop_name(parent, name, &r->st);
	return err;
}

void ufs_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct resolved r;
	int err = check_new_name(req_node(parent), name);

	if (err == -EPERM)
		err = -ENOENT;
	if (!err)
		err = resolve_child(req_node(parent), name, &r);
	if (!err) {
		if (!r.found)
			err = -ENOENT;
		else if (S_ISDIR(r.st.st_mode))
			err = -EISDIR;
		else
			err = remove_entry(req_node(parent), name, &r);
		resolved_free(&r);
	}
	fuse_reply_err(req, -err);
}

/* Resolves a directory child into a node so its merged content can be
 * listed; returns the node with a temporary reference. */
static int child_node(struct node *parent, const char *name, struct node **out)
{
	struct stat st;
	int err = lookup_child(parent, name, out, &st);

	return err;
}

static int check_dir_empty(struct node *parent, const char *name)
{
	struct node *n;
	bool empty;
	int err = child_node(parent, name, &n);

	if (err)
		return err;
	err = merged_dir_empty(n, &empty);
	node_unref(n);
	if (!err && !empty)
		err = -ENOTEMPTY;
	return err;
}

void ufs_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct node *p = req_node(parent);
	struct resolved r;
	int err = check_new_name(p, name);

	if (err == -EPERM)
		err = -ENOENT;
	if (!err)
		err = resolve_child(p, name, &r);
	if (!err) {
		if (!r.found)
			err = -ENOENT;
		else if (!S_ISDIR(r.st.st_mode))
			err = -ENOTDIR;
		else
			err = check_dir_empty(p, name) ?: remove_entry(p, name, &r);
		resolved_free(&r);
	}
	fuse_reply_err(req, -err);
}

/* a is n or one of its ancestors. */
static bool is_ancestor(const struct node *a, const struct node *n)
{
	bool found = false;

	pthread_rwlock_rdlock(&ufs.tree_lock);
	for (; n && !found; n = n->parent)
		found = n == a;
	pthread_rwlock_unlock(&ufs.tree_lock);
	return found;
}

struct rename_side {
	struct node *parent;
	const char *name;
	struct resolved r;
	struct node *node;   /* NULL when the name does not exist */
	char *lower_path;    /* dirs with lower content: where it lives below */
	bool whiteout_after; /* lower branches still show the name */
};

static bool has_lower_content(const struct rename_side *s)
{
	return S_ISDIR(s->r.st.st_mode) && (s->r.branch > 0 || (s->r.dir_branches & ~1ULL));
}

static int rename_side_init(struct rename_side *s, struct node *parent, const char *name)
{
	struct stat st;
	int err;

	memset(s, 0, sizeof(*s));
	s->parent = parent;
	s->name = name;
	err = resolve_child(parent, name, &s->r);
	if (err || !s->r.found)
		return err;
	err = lookup_child(parent, name, &s->node, &st);
	if (err)
		return err;
	if (has_lower_content(s)) {
		pthread_rwlock_rdlock(&ufs.tree_lock);
		s->lower_path = node_path(s->node, 1);
		pthread_rwlock_unlock(&ufs.tree_lock);
		if (!s->lower_path)
			return -ENOMEM;
	}
	return 0;
}

static void rename_side_free(struct rename_side *s)
{
	resolved_free(&s->r);
	if (s->node)
		node_unref(s->node);
	free(s->lower_path);
}

/* POSIX rules, checked before anything changes. */
static int rename_check(struct rename_side *src, struct rename_side *dst, unsigned int flags)
{
	bool sdir = S_ISDIR(src->r.st.st_mode), ddir = S_ISDIR(dst->r.st.st_mode);

	if (!src->r.found)
		return -ENOENT;
	if ((flags & RENAME_NOREPLACE) && dst->r.found)
		return -EEXIST;
	if ((flags & RENAME_EXCHANGE) && !dst->r.found)
		return -ENOENT;
	if (sdir && is_ancestor(src->node, dst->parent))
		return -EINVAL;
	if ((flags & RENAME_EXCHANGE) && ddir && is_ancestor(dst->node, src->parent))
		return -EINVAL;
	if (!ufs.redirect_dir && (has_lower_content(src) ||
				  ((flags & RENAME_EXCHANGE) && has_lower_content(dst))))
		return -EXDEV;
	if (!dst->r.found || (flags & RENAME_EXCHANGE))
		return 0;
	if (sdir && !ddir)
		return -ENOTDIR;
	if (!sdir && ddir)
		return -EISDIR;
	if (ddir)
		return check_dir_empty(dst->parent, dst->name);
	return 0;
}

/* After the move, a directory at its new place: point it at its lower
 * content (redirect) or hide what lower branches have there (opaque). */
static int fix_moved_dir(int dirfd, struct node *newparent, const char *newname,
			 const struct rename_side *moved)
{
	char *abs;
	bool below;
	int err;

	if (!S_ISDIR(moved->r.st.st_mode))
		return 0;
	if (moved->lower_path) {
		if (asprintf(&abs, "/%s", moved->lower_path) < 0)
			return -ENOMEM;
		err = wh_set_redirect(dirfd, newname, abs);
		free(abs);
		return err;
	}
	err = lower_has_name(newparent, newname, &below);
	if (!err && below)
		err = wh_set_opaque(dirfd, newname);
	return err;
}

/* Makes room at the destination in the upper dir: markers that rename()
 * cannot replace (whiteouts inside a directory, a whiteout device where a
 * directory goes). */
static int prepare_target(int ndir, struct rename_side *src, struct rename_side *dst)
{
	char wh[NAME_MAX + WH_PREFIX_LEN + 1];
	struct stat st;

	if (dst->r.found && dst->r.branch == 0 && S_ISDIR(dst->r.st.st_mode))
		return wh_clear_dir(ndir, dst->name);
	if (fstatat(ndir, dst->name, &st, AT_SYMLINK_NOFOLLOW) == 0 && wh_is_overlay_whiteout(&st) &&
	    S_ISDIR(src->r.st.st_mode) && unlinkat(ndir, dst->name, 0) < 0)
		return -errno;
	snprintf(wh, sizeof(wh), WH_PREFIX "%s", dst->name);
	if (unlinkat(ndir, wh, 0) < 0 && errno != ENOENT && errno != ENAMETOOLONG)
		return -errno;
	return 0;
}

static int rename_in_upper(int odir, int ndir, struct rename_side *src, struct rename_side *dst,
			   unsigned int flags)
{
	int err;

	if (flags & RENAME_EXCHANGE) {
		if (renameat2(odir, src->name, ndir, dst->name, RENAME_EXCHANGE) < 0)
			return -errno;
		return fix_moved_dir(ndir, dst->parent, dst->name, src) ?:
		       fix_moved_dir(odir, src->parent, src->name, dst);
	}
	err = lower_has_name(src->parent, src->name, &src->whiteout_after);
	if (!err)
		err = prepare_target(ndir, src, dst);
	if (err)
		return err;
	/* NOREPLACE was checked on the union; below, a whiteout may sit at
	 * the destination, which the rename must replace. */
	if (renameat2(odir, src->name, ndir, dst->name,
		      dst->r.upper_whiteout ? 0 : (flags & RENAME_NOREPLACE)) < 0)
		return -errno;
	err = fix_moved_dir(ndir, dst->parent, dst->name, src);
	if (!err && src->whiteout_after)
		err = wh_whiteout(odir, src->name);
	return err;
}

static void rename_update_table(struct rename_side *src, struct rename_side *dst,
				unsigned int flags)
{
	struct node *drop[2] = { NULL, NULL };

	if (dst->node && !(flags & RENAME_EXCHANGE))
		node_set_gone(dst->node, &dst->r.st);
	pthread_rwlock_wrlock(&ufs.tree_lock);
	node_move(src->node, dst->parent, dst->name, &drop[0]);
	if (flags & RENAME_EXCHANGE)
		node_move(dst->node, src->parent, src->name, &drop[1]);
	pthread_rwlock_unlock(&ufs.tree_lock);
	if (src->lower_path)
		node_set_redirect(src->node, src->lower_path, 0);
	if ((flags & RENAME_EXCHANGE) && dst->lower_path)
		node_set_redirect(dst->node, dst->lower_path, 0);
	for (int i = 0; i < 2; i++)
		if (drop[i])
			node_unref(drop[i]);
}

static int do_rename(struct rename_side *src, struct rename_side *dst, unsigned int flags)
{
	int odir = -1, ndir = -1, err;

	err = rename_check(src, dst, flags);
	if (err)
		return err;
	err = copy_up(src->node, COPY_DATA) ?: copy_up(dst->parent, COPY_DATA);
	if (!err && (flags & RENAME_EXCHANGE))
		err = copy_up(dst->node, COPY_DATA);
	if (err)
		return err;
	odir = node_open_dir(src->parent, 0, 0);
	ndir = node_open_dir(dst->parent, 0, 0);
	if (odir < 0 || ndir < 0) {
		err = odir < 0 ? odir : ndir;
		goto out;
	}
	err = rename_in_upper(odir, ndir, src, dst, flags);
	if (!err)
		rename_update_table(src, dst, flags);
out:
	if (odir >= 0)
		close(odir);
	if (ndir >= 0)
		close(ndir);
	return err;
}

void ufs_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		const char *newname, unsigned int flags)
{
	struct rename_side src, dst;
	int err;

	if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE)) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	if (wh_is_meta_name(name) || wh_is_meta_name(newname)) {
		fuse_reply_err(req, wh_is_meta_name(name) ? ENOENT : EPERM);
		return;
	}
	if (!ufs.writable) {
		fuse_reply_err(req, EROFS);
		return;
	}
	err = rename_side_init(&src, req_node(parent), name);
	if (!err)
		err = rename_side_init(&dst, req_node(newparent), newname);
	else
		memset(&dst, 0, sizeof(dst));
	if (!err && src.node && (src.node == dst.node ||
				 (dst.r.found && src.r.branch == dst.r.branch &&
				  src.r.st.st_ino == dst.r.st.st_ino && !S_ISDIR(src.r.st.st_mode))))
		err = 0; /* two names of one file: POSIX says do nothing */
	else if (!err)
		err = do_rename(&src, &dst, flags);
	rename_side_free(&src);
	rename_side_free(&dst);
	fuse_reply_err(req, -err);
}

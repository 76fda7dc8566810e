/* Merged directory listings, as fs/overlayfs/readdir.c: every contributing
 * branch is read top-down into one list per open directory, each name once,
 * whiteouts and meta names dropped.  The list is a snapshot for the life of
 * the handle, so telldir/seekdir offsets (list positions) stay valid. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <uthash.h>

#include "dir.h"
#include "dirahead.h"
#include "listing.h"
#include "log.h"
#include "lookup.h"
#include "ops.h"
#include "whiteout.h"

/* Directory fds kept open by listings: a budget well under the open-file
 * limit, since a program may keep any number of directories open. */
#define LISTING_FDS_MAX 1024
static unsigned int listing_fds;

static bool listing_keep_fd(void)
{
	if (__atomic_add_fetch(&listing_fds, 1, __ATOMIC_RELAXED) <= LISTING_FDS_MAX)
		return true;
	__atomic_sub_fetch(&listing_fds, 1, __ATOMIC_RELAXED);
	return false;
}

void listing_close_fds(struct listing *l)
{
	for (unsigned int b = 0; b < ufs.nbr; b++) {
		if (l->fds[b] >= 0) {
			close(l->fds[b]);
			l->fds[b] = -1;
			__atomic_sub_fetch(&listing_fds, 1, __ATOMIC_RELAXED);
		}
	}
}

void listing_free(struct listing *l)
{
	struct listed *e, *tmp;

	listing_close_fds(l);
	HASH_ITER(hh, l->seen, e, tmp) {
		HASH_DEL(l->seen, e);
		free(e->name);
		free(e);
	}
	free(l->order);
	l->order = NULL;
	l->count = l->cap = 0;
}

static int listing_push(struct listing *l, struct listed *e)
{
	if (l->count == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		struct listed **o = realloc(l->order, cap * sizeof(*o));

		if (!o)
			return -ENOMEM;
		l->order = o;
		l->cap = cap;
	}
	l->order[l->count++] = e;
	return 0;
}

static int add_entry(struct listing *l, const char *name, unsigned int b, bool visible,
		     unsigned char type, uint64_t ino)
{
	struct listed *e;

	HASH_FIND_STR(l->seen, name, e);
	if (e) {
		/* A name and its whiteout in the same branch: the name wins. */
		if (visible && !e->visible && e->branch == b) {
			e->visible = true;
			e->type = type;
			e->ino = ino;
			return listing_push(l, e);
		}
		return 0;
	}
	e = calloc(1, sizeof(*e));
	if (!e || !(e->name = strdup(name))) {
		free(e);
		return -ENOMEM;
	}
	e->branch = b;
	e->visible = visible;
	e->type = type;
	e->ino = ino;
	HASH_ADD_KEYPTR(hh, l->seen, e->name, strlen(e->name), e);
	return visible ? listing_push(l, e) : 0;
}

static unsigned char type_of(int dirfd, const char *name, unsigned char d_type, struct stat *st,
			     bool *have_st)
{
	*have_st = false;
	if (d_type != DT_UNKNOWN && d_type != DT_CHR)
		return d_type;
	if (fstatat(dirfd, name, st, AT_SYMLINK_NOFOLLOW) < 0)
		return d_type;
	*have_st = true;
	return (unsigned char)IFTODT(st->st_mode);
}

/* Inode numbers wait for a plain READDIR (entry_ino): READDIRPLUS looks
 * every name up anyway, and a listing for rmdir needs none. */
static int list_entry(struct listing *l, int dirfd, unsigned int b, const struct dirent64 *de)
{
	const char *name = de->d_name;
	bool honour = ufs.br[b].honour_wh, have_st;
	struct listed *e;
	struct stat st;
	unsigned char type;

	if (name[0] == '.' && (!name[1] || (name[1] == '.' && !name[2])))
		return 0;
	if (wh_is_meta_name(name)) {
		const char *target = name + WH_PREFIX_LEN;

		if (!honour || !strncmp(target, WH_PREFIX, WH_PREFIX_LEN))
			return 0;
		return add_entry(l, target, b, false, DT_UNKNOWN, 0);
	}
	HASH_FIND_STR(l->seen, name, e);
	if (e && (e->visible || e->branch != b))
		return 0;
	type = type_of(dirfd, name, de->d_type, &st, &have_st);
	if (honour && have_st && wh_is_overlay_whiteout(&st))
		return add_entry(l, name, b, false, DT_UNKNOWN, 0);
	return add_entry(l, name, b, true, type, 0);
}

/* e's inode number, found the first time it is needed.  0 with errno set
 * when the name is gone from its branch (ENOENT) or cannot be read. */
static uint64_t entry_ino(struct node *dir, struct listed *e)
{
	struct stat st;
	bool owned;
	int dirfd;

	if (e->ino)
		return e->ino;
	dirfd = node_dir_fd(dir, e->branch, &owned);
	if (dirfd < 0) {
		errno = -dirfd;
		return 0;
	}
	if (fstatat(dirfd, e->name, &st, AT_SYMLINK_NOFOLLOW) == 0)
		e->ino = union_ino(e->branch, &st, backing_gen(dirfd, e->name));
	node_dir_fd_done(dirfd, owned);
	return e->ino;
}

/* What to do with an entry whose inode number could not be had: 0 to
 * leave it out (the name is gone since the listing was built), else the
 * errno that ends the listing there. */
static int entry_ino_error(void)
{
	return errno == ENOENT ? 0 : (errno ? errno : EIO);
}

static int list_branch(struct listing *l, struct node *dir, unsigned int b)
{
	char buf[65536];
	int fd = node_open_dir(dir, b, O_RDONLY | O_DIRECTORY);
	long n;
	int err = 0;

	if (fd == -ENOENT || fd == -ENOTDIR)
		return 0;
	if (fd < 0)
		return fd;
	while (!err && (n = syscall(SYS_getdents64, fd, buf, sizeof(buf))) > 0) {
		for (long off = 0; off < n && !err;) {
			const struct dirent64 *de = (const struct dirent64 *)(buf + off);

			err = list_entry(l, fd, b, de);
			off += de->d_reclen;
		}
	}
	if (!err && n < 0)
		err = -errno;
	if (!err && listing_keep_fd())
		l->fds[b] = fd;
	else
		close(fd);
	return err;
}

void listing_init(struct listing *l)
{
	memset(l, 0, sizeof(*l));
	for (unsigned int b = 0; b < UNION_MAX_BRANCHES; b++)
		l->fds[b] = -1;
}

int listing_build(struct node *dir, struct listing *l)
{
	uint64_t mask = __atomic_load_n(&dir->dir_branches, __ATOMIC_RELAXED);
	int err = 0;

	listing_init(l);
	for (unsigned int b = 0; b < ufs.nbr && !err; b++)
		if (mask & (1ULL << b))
			err = list_branch(l, dir, b);
	if (err)
		listing_free(l);
	return err;
}

int merged_dir_empty(struct node *n, bool *empty)
{
	struct listing l;
	int err = listing_build(n, &l);

	if (err)
		return err;
	*empty = l.count == 0;
	listing_free(&l);
	return 0;
}

struct udir {
	struct node *node;      /* holds a reference */
	bool built;
	struct listing list;
	/* When the listing was prepared ahead (dirahead.h): the resolution
	 * of each entry of list.order, else NULL. */
	struct resolved *ahead;
	uint64_t self_ino, parent_ino;
};

static void udir_forget_listing(struct udir *d)
{
	dirahead_free_entries(d->ahead, d->list.count);
	d->ahead = NULL;
	listing_free(&d->list);
	d->built = false;
}

void ufs_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct node *n = req_node(ino);
	struct udir *d = calloc(1, sizeof(*d));

	if (!d) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	d->node = n;
	node_ref(n);
	listing_init(&d->list);
	fi->fh = (uintptr_t)d;
	/* Every change to a directory passes through the kernel's own
	 * operations, which drop its cached listing: caching is exact. */
	fi->cache_readdir = 1;
	fi->keep_cache = 1;
	fuse_reply_open(req, fi);
}

/* The listing is built at the first readdir, not at opendir: when the
 * kernel serves the directory from its cache, no readdir comes at all. */
static int udir_build(struct udir *d)
{
	struct node *n = d->node;
	struct dirahead *a;
	int err;

	if (d->built)
		return 0;
	a = dirahead_take(n);
	if (a) {
		d->list = a->list;
		d->ahead = a->ent;
		free(a);
	} else {
		err = listing_build(n, &d->list);
		if (err)
			return err;
	}
	d->self_ino = n->ino;
	pthread_rwlock_rdlock(&ufs.tree_lock);
	d->parent_ino = n->parent ? n->parent->ino : n->ino;
	pthread_rwlock_unlock(&ufs.tree_lock);
	d->built = true;
	return 0;
}

/* The name looked up from its resolution prepared ahead (ahead), when that
 * still holds. */
static int lookup_ahead(struct udir *d, const char *name, const struct resolved *ahead,
			struct node **n, struct stat *st)
{
	int dirfd = d->list.fds[ahead->branch], err;
	bool owned = false;

	if (dirfd < 0)
		dirfd = node_dir_fd(d->node, ahead->branch, &owned);
	err = lookup_resolved(d->node, name, ahead, dirfd, n, st);
	node_dir_fd_done(dirfd, owned);
	return err;
}

/* One entry of a READDIRPLUS reply: the name looked up as LOOKUP would,
 * so the kernel gets a dentry and attributes with it.  A name that cannot
 * be looked up goes out without them; one gone since the listing was built
 * is left out (nothing written, *err 0), and one whose inode number cannot
 * be had stops the listing (*err set).  ahead: the name's resolution
 * prepared ahead (dirahead.h), or NULL. */
static size_t add_plus(fuse_req_t req, struct udir *d, char *p, size_t left, const char *name,
		       struct listed *listed, const struct resolved *ahead,
		       const struct stat *dirent_st, off_t next, struct node **looked, bool *skip,
		       int *err)
{
	struct fuse_entry_param e = { .attr = *dirent_st };
	struct node *n = NULL;
	struct stat st;
	size_t len;

	*looked = NULL;
	*skip = false;
	if (listed && ((ahead && ahead->found && lookup_ahead(d, name, ahead, &n, &st) == 0) ||
		       lookup_listed(d->node, name, listed->branch, d->list.fds, &n, &st) == 0)) {
		entry_param(n, &st, &e);
	} else if (listed && !(e.attr.st_ino = entry_ino(d->node, listed))) {
		*skip = true;
		*err = entry_ino_error();
		return 0;
	}
	len = fuse_add_direntry_plus(req, p, left, name, &e, next);
	if (len > left && n)
		node_unref(n); /* did not fit: the kernel never sees it */
	else
		*looked = n;
	return len;
}

/* A walk lists these next: prepare them (dirahead.h).  Before the reply,
 * while the references in looked are still ours. */
static void want_subdirs(struct node **looked, size_t nlooked)
{
	struct node **dirs = malloc(nlooked * sizeof(*dirs) + 1);
	size_t ndirs = 0;

	if (!dirs)
		return;
	for (size_t i = 0; i < nlooked; i++)
		if (S_ISDIR(__atomic_load_n(&looked[i]->type, __ATOMIC_RELAXED)))
			dirs[ndirs++] = looked[i];
	dirahead_want(dirs, ndirs);
	free(dirs);
}

/* Offsets: 1 = after ".", 2 = after "..", 2 + i = after list entry i. */
static void reply_listing(fuse_req_t req, struct udir *d, size_t size, off_t off, bool plus)
{
	struct node **looked = NULL;
	size_t left = size, nlooked = 0;
	char *buf, *p;
	int err;

	/* Reading from 0 again is a rewinddir(): POSIX wants the names as
	 * they are now, not the snapshot of the first pass. */
	if (off == 0 && d->built)
		udir_forget_listing(d);
	err = udir_build(d);
	if (err) {
		fuse_reply_err(req, -err);
		return;
	}
	buf = malloc(size);
	p = buf;
	/* At most one entry per 32 bytes (the smallest direntplus is larger). */
	if (buf && plus)
		looked = calloc(size / 32 + 1, sizeof(*looked));
	if (!buf || (plus && !looked)) {
		free(buf);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	for (size_t i = (size_t)off; i < d->list.count + 2; i++) {
		struct listed *e = i < 2 ? NULL : d->list.order[i - 2];
		struct stat st = { 0 };
		const char *name;
		size_t len;

		if (!e) {
			name = i == 0 ? "." : "..";
			st.st_ino = i == 0 ? d->self_ino : d->parent_ino;
			st.st_mode = S_IFDIR;
		} else {
			name = e->name;
			st.st_mode = (mode_t)DTTOIF(e->type);
			/* A name gone since the listing is left out. */
			if (!plus && !(st.st_ino = entry_ino(d->node, e)) &&
			    !(err = entry_ino_error()))
				continue;
			if (err)
				break;
		}
		if (plus) {
			bool skip;

			len = add_plus(req, d, p, left, name, e, d->ahead && e ? &d->ahead[i - 2] : NULL,
				       &st, (off_t)(i + 1), &looked[nlooked], &skip, &err);
			if (err)
				break;
			if (skip)
				continue;
		} else {
			len = fuse_add_direntry(req, p, left, name, &st, (off_t)(i + 1));
		}
		if (len > left)
			break;
		if (plus && looked[nlooked])
			nlooked++;
		p += len;
		left -= len;
	}
	if (plus)
		want_subdirs(looked, nlooked);
	/* The names are all out: no lookup in the directory needs its fds
	 * now (a later READDIR or rewind opens what it needs). */
	if (!err && left == size)
		listing_close_fds(&d->list);
	/* An empty reply would read as the end of the directory: an error
	 * with nothing before it is the answer, and one after some entries
	 * comes again with the next request, which starts there. */
	if (err && left == size)
		fuse_reply_err(req, err);
	/* A reply the kernel did not take (interrupted) gave it no lookups. */
	else if (fuse_reply_buf(req, left < size ? buf : NULL, size - left) == -ENOENT)
		for (size_t i = 0; i < nlooked; i++)
			node_unref(looked[i]);
	free(looked);
	free(buf);
}

void ufs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	(void)ino;
	reply_listing(req, (struct udir *)(uintptr_t)fi->fh, size, off, false);
}

void ufs_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	(void)ino;
	reply_listing(req, (struct udir *)(uintptr_t)fi->fh, size, off, true);
}

void ufs_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct udir *d = (struct udir *)(uintptr_t)fi->fh;

	(void)ino;
	udir_forget_listing(d);
	node_unref(d->node);
	free(d);
	fuse_reply_err(req, 0);
}

void ufs_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	struct node *n = req_node(ino);
	int fd, err = 0;

	(void)fi;
	if (n->branch != 0) {
		fuse_reply_err(req, 0); /* nothing of ours to sync below */
		return;
	}
	fd = node_open_dir(n, 0, O_RDONLY | O_DIRECTORY);
	if (fd < 0) {
		fuse_reply_err(req, -fd);
		return;
	}
	if ((datasync ? fdatasync(fd) : fsync(fd)) < 0)
		err = errno;
	close(fd);
	fuse_reply_err(req, err);
}

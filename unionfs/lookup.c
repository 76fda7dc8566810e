/* namei for the union: top-down lookup with whiteouts, opaque directories
 * and redirects, as fs/overlayfs/namei.c does it. */
#include "lookup.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "ops.h"
#include "whiteout.h"
#include "xino.h"

void resolved_free(struct resolved *r)
{
	free(r->redirect);
	r->redirect = NULL;
}

uint32_t backing_gen(int dirfd, const char *name)
{
	union {
		struct file_handle fh;
		unsigned char storage[sizeof(struct file_handle) + MAX_HANDLE_SZ];
	} h;
	const unsigned char *bytes = h.storage + sizeof(struct file_handle);
	uint32_t hash = 2166136261u;
	int mount_id;

	h.fh.handle_bytes = MAX_HANDLE_SZ;
	if (name_to_handle_at(dirfd, name, &h.fh, &mount_id, 0) < 0)
		return 0;
	for (unsigned int i = 0; i < h.fh.handle_bytes; i++)
		hash = (hash ^ bytes[i]) * 16777619u;
	return hash;
}

uint64_t union_ino(unsigned int b, const struct stat *st, uint32_t gen)
{
	struct xino_key key = { .branch_id = ufs.br[b].xino_id, .ino = st->st_ino, .gen = gen };

	return xino_get(ufs.xino, &key);
}

/* A redirect value as stored by overlayfs is either absolute from the layer
 * root ("/a/b") or a name relative to the parent; store it root-relative. */
static char *redirect_to_root_relative(struct node *parent, unsigned int b, const char *value)
{
	char *base, *out;

	if (value[0] == '/') {
		while (*value == '/')
			value++;
		return strdup(value);
	}
	pthread_rwlock_rdlock(&ufs.tree_lock);
	base = node_path(parent, b);
	pthread_rwlock_unlock(&ufs.tree_lock);
	if (!base)
		return NULL;
	if (strcmp(base, ".") == 0)
		out = strdup(value);
	else if (asprintf(&out, "%s/%s", base, value) < 0)
		out = NULL;
	free(base);
	return out;
}

/* One directory component of a redirect walk in branch b, as overlayfs
 * looks up each element of a redirect path (ovl_lookup_single): a whiteout
 * or a non-directory there hides the rest of the path in this branch and
 * in every branch below, and an opaque directory lets this branch
 * contribute but none below it.  Returns an O_PATH fd of the component, or
 * -ENOENT/-ENOTDIR when the path does not continue here. */
static int redirect_step(unsigned int b, int dirfd, const char *comp, bool *stop_below)
{
	const struct branch *br = &ufs.br[b];
	struct dir_markers m;
	struct stat st;
	int fd = openat2_beneath(dirfd, comp, O_PATH | O_NOFOLLOW);

	if (fd == -ENOENT && br->honour_wh && wh_aufs_exists(dirfd, comp))
		*stop_below = true;
	if (fd < 0)
		return fd;
	if (fstat(fd, &st) < 0) {
		int err = -errno;

		close(fd);
		return err;
	}
	if (!S_ISDIR(st.st_mode)) {
		close(fd);
		*stop_below = true;
		return br->honour_wh && wh_is_overlay_whiteout(&st) ? -ENOENT : -ENOTDIR;
	}
	if (br->honour_wh) {
		wh_read_dir_markers(dirfd, comp, &m);
		free(m.redirect);
		*stop_below |= m.opaque;
	}
	return fd;
}

/* Opens the directory of a root-relative redirect path in branch b, one
 * component at a time (see redirect_step); *leaf is its last component. */
static int open_redirect_holder(unsigned int b, const char *redirect, const char **leaf,
				bool *stop_below)
{
	const char *comp = redirect, *slash;
	int dirfd = fcntl(ufs.br[b].fd, F_DUPFD_CLOEXEC, 0);

	if (dirfd < 0)
		return -errno;
	while ((slash = strchr(comp, '/')) != NULL) {
		char part[NAME_MAX + 1];
		size_t len = (size_t)(slash - comp);
		int fd;

		if (len > NAME_MAX) {
			close(dirfd);
			return -ENAMETOOLONG;
		}
		memcpy(part, comp, len);
		part[len] = '\0';
		comp = slash + 1;
		if (len == 0)
			continue; /* "a//b" */
		fd = redirect_step(b, dirfd, part, stop_below);
		close(dirfd);
		if (fd < 0)
			return fd;
		dirfd = fd;
	}
	*leaf = comp;
	return dirfd;
}

/* Opens the directory that holds the name in branch b: the parent's own
 * directory, or the directory named by a redirect. *leaf is the name to
 * use inside it (points into name or redirect).  *stop_below is set when
 * the walk to a redirect's directory hides the branches below b. */
static int open_holder(struct node *parent, unsigned int b, const char *name,
		       const char *redirect, const int *dirfds, const char **leaf,
		       bool *stop_below, bool *owned)
{
	if (!redirect) {
		*leaf = name;
		if (dirfds && dirfds[b] >= 0) {
			*owned = false;
			return dirfds[b];
		}
		return node_dir_fd(parent, b, owned);
	}
	*owned = true;
	return open_redirect_holder(b, redirect, leaf, stop_below);
}

enum step { STEP_CONTINUE, STEP_STOP };

/* Examines the name in one branch; updates r.  dirfds: the parent's
 * directory in each branch, already open (-1: not), or NULL. */
static int resolve_in_branch(struct node *parent, unsigned int b, const char *name,
			     const int *dirfds, bool aufs_wh_matters, struct resolved *r,
			     enum step *next)
{
	const struct branch *br = &ufs.br[b];
	const char *leaf = NULL;
	struct stat st;
	bool stop_below = false, owned;
	int dirfd = open_holder(parent, b, name, r->redirect, dirfds, &leaf, &stop_below, &owned);

	*next = stop_below ? STEP_STOP : STEP_CONTINUE;
	if (dirfd == -ENOENT || dirfd == -ENOTDIR)
		return 0; /* the parent is not in this branch (any more) */
	if (dirfd < 0)
		return dirfd;
	if (fstatat(dirfd, leaf, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		int err = errno;

		if (err != ENOENT) {
			node_dir_fd_done(dirfd, owned);
			return -err;
		}
		if (br->honour_wh && aufs_wh_matters && wh_aufs_exists(dirfd, leaf)) {
			r->upper_whiteout |= b == 0;
			*next = STEP_STOP;
		}
		node_dir_fd_done(dirfd, owned);
		return 0;
	}
	if (br->honour_wh && wh_is_overlay_whiteout(&st)) {
		r->upper_whiteout |= b == 0;
		*next = STEP_STOP;
	} else if (!r->found || S_ISDIR(st.st_mode)) {
		if (!r->found) {
			r->found = true;
			r->branch = b;
			r->st = st;
			r->gen = backing_gen(dirfd, leaf);
		}
		if (S_ISDIR(r->st.st_mode)) {
			struct dir_markers m;

			r->dir_branches |= 1ULL << b;
			wh_read_dir_markers(dirfd, leaf, &m);
			if (m.redirect && !r->redirect) {
				r->redirect = redirect_to_root_relative(parent, b + 1, m.redirect);
				r->redirect_branch = b;
			}
			free(m.redirect);
			if (m.opaque && br->honour_wh) {
				r->opaque = true;
				*next = STEP_STOP;
			}
		} else {
			*next = STEP_STOP;
		}
	} else {
		/* A non-directory below a directory ends the merge. */
		*next = STEP_STOP;
	}
	node_dir_fd_done(dirfd, owned);
	return 0;
}

/* resolve_child() without branches 1 .. first-1 (see lookup_listed).
 * want_upper_whiteout: r->upper_whiteout must be set (a name to create);
 * otherwise an aufs whiteout is looked for only where it could hide a
 * branch still to be searched, which saves a failed stat in every
 * lookup of a missing name. */
static int resolve_child_from(struct node *parent, const char *name, unsigned int first,
			      const int *dirfds, bool want_upper_whiteout, struct resolved *r)
{
	uint64_t mask = __atomic_load_n(&parent->dir_branches, __ATOMIC_RELAXED);

	if (first > 1)
		mask &= ~(((1ULL << first) - 1) & ~1ULL);
	memset(r, 0, sizeof(*r));
	for (unsigned int b = 0; b < ufs.nbr; b++) {
		enum step next;
		int err;

		/* Below a redirect the parent's branches no longer matter. */
		if (!r->redirect && !(mask & (1ULL << b)))
			continue;
		bool more_below = r->redirect || (mask >> b >> 1);

		err = resolve_in_branch(parent, b, name, dirfds,
					more_below || (b == 0 && want_upper_whiteout), r, &next);
		if (err) {
			resolved_free(r);
			return err;
		}
		if (next == STEP_STOP)
			break;
	}
	return 0;
}

int resolve_child(struct node *parent, const char *name, struct resolved *r)
{
	return resolve_child_from(parent, name, 0, NULL, true, r);
}

int resolve_listed(struct node *parent, const char *name, unsigned int listed,
		   const int *dirfds, struct resolved *r)
{
	return resolve_child_from(parent, name, listed, dirfds, false, r);
}

int node_apply(struct node *n, const struct resolved *r)
{
	uint64_t ino = 0;
	bool same;

	pthread_mutex_lock(&n->lock);
	same = n->ino && n->branch == r->branch && n->backing_ino == r->st.st_ino &&
	       (n->type == (r->st.st_mode & S_IFMT));
	pthread_mutex_unlock(&n->lock);
	if (!same) {
		ino = r->union_ino ? r->union_ino : union_ino(r->branch, &r->st, r->gen);
		if (!ino)
			return -errno;
	}
	pthread_mutex_lock(&n->lock);
	if (ino)
		n->ino = ino;
	n->branch = (uint8_t)r->branch;
	n->type = r->st.st_mode & S_IFMT;
	n->backing_ino = r->st.st_ino;
	n->opaque = r->opaque;
	n->dir_branches = r->dir_branches;
	pthread_mutex_unlock(&n->lock);
	/* Path builders read redirects under the tree lock; only take it for
	 * writing when something changes, which is rare. */
	if (n->redirect || r->redirect) {
		bool changed;

		pthread_rwlock_rdlock(&ufs.tree_lock);
		changed = !n->redirect || !r->redirect || strcmp(n->redirect, r->redirect) ||
			  n->redirect_branch != r->redirect_branch;
		pthread_rwlock_unlock(&ufs.tree_lock);
		if (changed)
			node_set_redirect(n, r->redirect, r->redirect_branch);
	}
	return 0;
}

void node_fill_stat(const struct node *n, struct stat *st)
{
	st->st_ino = n->ino;
	/* Like overlayfs: the link count of a merged directory is unknown. */
	if (S_ISDIR(st->st_mode) && (n->dir_branches & (n->dir_branches - 1)))
		st->st_nlink = 1;
}

/* The node table part of a lookup, from the name's resolution r (which
 * it frees). */
static int lookup_apply(struct node *parent, const char *name, struct resolved *r,
			struct node **out, struct stat *st)
{
	struct node *n;
	bool created;
	int err;

	if (S_ISREG(r->st.st_mode) && r->branch == 0) {
		/* Every name of an upper hard link leads to one node, also
		 * once the other names are gone (st_nlink back to 1): the
		 * kernel may still hold that node, with its page cache. */
		n = node_find_linked(r->st.st_ino);
		if (n) {
			*st = r->st;
			node_fill_stat(n, st);
			*out = n;
			resolved_free(r);
			return 0;
		}
	}
	n = node_get_child(parent, name, &created);
	if (!n) {
		resolved_free(r);
		return -ENOMEM;
	}
	err = node_apply(n, r);
	if (!err && S_ISREG(r->st.st_mode) && r->branch == 0 && r->st.st_nlink > 1)
		node_make_shared(n); /* failing that, the name's node still works */
	if (!err) {
		*st = r->st;
		node_fill_stat(n, st);
		*out = n;
	} else {
		node_unref(n);
	}
	resolved_free(r);
	return err;
}

static int lookup_from(struct node *parent, const char *name, unsigned int first,
		       const int *dirfds, struct node **out, struct stat *st)
{
	struct resolved r;
	int err;

	if (wh_is_meta_name(name))
		return -ENOENT;
	err = resolve_child_from(parent, name, first, dirfds, false, &r);
	if (err)
		return err;
	if (!r.found) {
		resolved_free(&r);
		return -ENOENT;
	}
	return lookup_apply(parent, name, &r, out, st);
}

int lookup_child(struct node *parent, const char *name, struct node **out, struct stat *st)
{
	return lookup_from(parent, name, 0, NULL, out, st);
}

int lookup_listed(struct node *parent, const char *name, unsigned int listed,
		  const int *dirfds, struct node **out, struct stat *st)
{
	return lookup_from(parent, name, listed, dirfds, out, st);
}

int lookup_resolved(struct node *parent, const char *name, const struct resolved *r, int dirfd,
		    struct node **out, struct stat *st)
{
	struct resolved again = *r;
	struct stat now;

	if (!r->found || dirfd < 0 ||
	    fstatat(dirfd, name, &now, AT_SYMLINK_NOFOLLOW) < 0 ||
	    now.st_ino != r->st.st_ino || (now.st_mode & S_IFMT) != (r->st.st_mode & S_IFMT))
		return -ESTALE;
	again.st = now;
	again.redirect = r->redirect ? strdup(r->redirect) : NULL;
	if (r->redirect && !again.redirect)
		return -ENOMEM;
	return lookup_apply(parent, name, &again, out, st);
}

int node_getattr(struct node *n, struct stat *st)
{
	unsigned int b = n->branch;
	int self = __atomic_load_n(&n->self_fd, __ATOMIC_ACQUIRE);

	if (n == ufs.root) {
		if (fstat(ufs.br[b].fd, st) < 0)
			return -errno;
	} else if (self >= 0) {
		if (fstat(self, st) < 0)
			return -errno;
	} else if (!n->hashed) {
		/* The name is gone (unlinked, renamed over) and may even
		 * lead to another object now: only an open file, or the
		 * cached fd of a directory, still reaches this one (whose
		 * size after removal depends on the backing filesystem). */
		int err = S_ISDIR(n->type) ? node_fstat_cached_dir(n, st) : node_fstat_open(n, st);

		if (err == -ENOENT && n->has_gone_st) {
			pthread_mutex_lock(&n->lock);
			*st = n->gone_st;
			pthread_mutex_unlock(&n->lock);
			err = 0;
		}
		if (err)
			return err;
	} else {
		struct node_loc loc;
		int err = node_locate(n, b, &loc);

		if (err)
			return err;
		if (fstatat(loc.dirfd, loc.name, st, loc.nofollow) < 0)
			err = -errno;
		node_loc_done(&loc);
		if (err)
			return err;
	}
	node_fill_stat(n, st);
	return 0;
}

void root_init_branches(void)
{
	struct node *root = ufs.root;
	struct stat st;

	for (unsigned int b = 0; b < ufs.nbr; b++) {
		struct dir_markers m;

		root->dir_branches |= 1ULL << b;
		wh_read_dir_markers(ufs.br[b].fd, ".", &m);
		free(m.redirect);
		if (m.opaque && ufs.br[b].honour_wh && b + 1 < ufs.nbr) {
			root->opaque = true;
			break;
		}
	}
	root->branch = 0;
	if (fstat(ufs.br[0].fd, &st) == 0) {
		root->backing_ino = st.st_ino;
		root->ino = union_ino(0, &st, backing_gen(ufs.br[0].fd, "."));
	}
}

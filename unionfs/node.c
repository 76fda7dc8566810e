/* Inode table: nodes keyed by (parent, name), reference counted, and the
 * path resolution that turns a node into a backing object in a branch. */
#include "node.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "dirahead.h"
#include "log.h"
#include "preload.h"
#include "xino.h"

static struct node *node_alloc(struct node *parent, const char *name)
{
	struct node *n = calloc(1, sizeof(*n));

	if (!n)
		return NULL;
	n->name = strdup(name);
	if (!n->name) {
		free(n);
		return NULL;
	}
	n->parent = parent;
	n->self_fd = -1;
	pthread_mutex_init(&n->lock, NULL);
	pthread_mutex_init(&n->copy_lock, NULL);
	return n;
}

static void drop_dirfds(struct node *n);
static void unshare_node(struct node *n);

static void node_free(struct node *n)
{
	unshare_node(n);
	drop_dirfds(n);
	dirahead_free(n->ahead);
	preload_forget(n);
	pthread_mutex_destroy(&n->lock);
	pthread_mutex_destroy(&n->copy_lock);
	free(n->redirect);
	free(n->name);
	free(n);
}

int node_table_init(void)
{
	struct node *root = node_alloc(NULL, "");

	if (!root)
		return -ENOMEM;
	root->refs = 1; /* the kernel's implicit reference, never forgotten */
	root->type = S_IFDIR;
	root->hashed = true;
	ufs.root = root;
	return 0;
}

static void node_free_tree(struct node *n)
{
	struct node *c, *tmp;

	HASH_ITER(hh, n->children, c, tmp) {
		HASH_DEL(n->children, c);
		node_free_tree(c);
	}
	node_free(n);
}

void node_table_destroy(void)
{
	if (ufs.root)
		node_free_tree(ufs.root);
	ufs.root = NULL;
}

struct node *node_from_id(uint64_t id)
{
	return id == 1 ? ufs.root : (struct node *)(uintptr_t)id;
}

void node_ref(struct node *n)
{
	__atomic_add_fetch(&n->refs, 1, __ATOMIC_RELAXED);
}

struct node *node_find_child(struct node *parent, const char *name)
{
	struct node *n;

	pthread_mutex_lock(&parent->lock);
	HASH_FIND_STR(parent->children, name, n);
	if (n)
		node_ref(n);
	pthread_mutex_unlock(&parent->lock);
	return n;
}

struct node *node_get_child(struct node *parent, const char *name, bool *created)
{
	struct node *n;

	*created = false;
	pthread_mutex_lock(&parent->lock);
	HASH_FIND_STR(parent->children, name, n);
	if (n) {
		node_ref(n);
	} else {
		n = node_alloc(parent, name);
		if (n) {
			n->refs = 1;
			n->hashed = true;
			HASH_ADD_KEYPTR(hh, parent->children, n->name, strlen(n->name), n);
			node_ref(parent); /* the child's reference */
			*created = true;
		}
	}
	pthread_mutex_unlock(&parent->lock);
	if (!n)
		errno = ENOMEM;
	return n;
}

/* Drops count references; frees nodes whose count reaches zero and walks up
 * to their parents, which each lose the reference the child held. */
void node_unref_many(struct node *n, uint64_t count)
{
	while (n && n != ufs.root) {
		struct node *parent;
		bool dead;

		pthread_rwlock_rdlock(&ufs.tree_lock);
		parent = n->parent;
		pthread_mutex_lock(&parent->lock);
		/* Atomic: node_ref() and node_find_linked() add without
		 * this lock. */
		dead = __atomic_sub_fetch(&n->refs, count, __ATOMIC_ACQ_REL) == 0;
		if (dead && n->hashed) {
			HASH_DEL(parent->children, n);
			n->hashed = false;
		}
		pthread_mutex_unlock(&parent->lock);
		pthread_rwlock_unlock(&ufs.tree_lock);
		if (!dead)
			return;
		node_free(n);
		n = parent;
		count = 1;
	}
}

void node_unref(struct node *n)
{
	node_unref_many(n, 1);
}

void node_unhash(struct node *n)
{
	struct node *parent = n->parent;

	if (!parent)
		return;
	pthread_mutex_lock(&parent->lock);
	if (n->hashed) {
		HASH_DEL(parent->children, n);
		n->hashed = false;
	}
	pthread_mutex_unlock(&parent->lock);
}

int node_move(struct node *n, struct node *newparent, const char *newname,
	      struct node **drop)
{
	struct node *old_parent = n->parent, *victim;
	char *name = strdup(newname);

	if (!name)
		return -ENOMEM;
	pthread_mutex_lock(&newparent->lock);
	HASH_FIND_STR(newparent->children, newname, victim);
	if (victim && victim != n) {
		HASH_DEL(newparent->children, victim);
		victim->hashed = false;
	}
	pthread_mutex_unlock(&newparent->lock);

	node_unhash(n);
	free(n->name);
	n->name = name;
	n->parent = newparent;
	pthread_mutex_lock(&newparent->lock);
	HASH_ADD_KEYPTR(hh, newparent->children, n->name, strlen(n->name), n);
	n->hashed = true;
	pthread_mutex_unlock(&newparent->lock);
	*drop = NULL;
	if (old_parent != newparent) {
		node_ref(newparent);
		/* Dropping may free the old parent, which needs the tree lock
		 * the caller holds: the caller drops it after unlocking. */
		*drop = old_parent;
	}
	return 0;
}

/* Components of n's path in branch b, innermost first, stopping at the root
 * or at a directory whose content in b lives elsewhere (a redirect). */
char *node_path(const struct node *n, unsigned int b)
{
	const struct node *walk;
	const char *base = NULL;
	size_t len = 0, pos;
	char *path;

	for (walk = n; walk->parent; walk = walk->parent) {
		if (walk->redirect && b > walk->redirect_branch) {
			base = walk->redirect;
			break;
		}
		len += strlen(walk->name) + 1;
	}
	if (base)
		len += strlen(base) + 1;
	if (len == 0)
		return strdup(".");
	path = malloc(len);
	if (!path)
		return NULL;
	pos = len - 1;
	path[pos] = '\0';
	for (walk = n; walk->parent; walk = walk->parent) {
		size_t l;

		if (base && walk->redirect && b > walk->redirect_branch)
			break;
		l = strlen(walk->name);
		pos -= l;
		memcpy(path + pos, walk->name, l);
		if (pos > 0)
			path[--pos] = '/';
	}
	if (base)
		memcpy(path, base, strlen(base));
	return path;
}

int openat2_beneath(int dirfd, const char *path, int flags)
{
	struct open_how how = {
		.flags = (uint64_t)flags | O_CLOEXEC,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
	};
	long fd;

	do {
		fd = syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
	} while (fd < 0 && errno == EAGAIN);
	return fd < 0 ? -errno : (int)fd;
}

/* A path longer than PATH_MAX cannot go to the kernel in one piece: open its
 * leading directories a chunk at a time, each beneath the previous. */
int branch_open(unsigned int b, const char *path, int flags)
{
	size_t len = strlen(path);
	int dirfd = ufs.br[b].fd, fd;

	while (len >= PATH_MAX) {
		const char *cut = path + PATH_MAX - 1;
		char *prefix;

		while (cut > path && *cut != '/')
			cut--;
		if (cut == path) {
			fd = -ENAMETOOLONG;
			goto out;
		}
		prefix = strndup(path, (size_t)(cut - path));
		if (!prefix) {
			fd = -ENOMEM;
			goto out;
		}
		fd = openat2_beneath(dirfd, prefix, O_PATH | O_DIRECTORY);
		free(prefix);
		if (dirfd != ufs.br[b].fd)
			close(dirfd);
		if (fd < 0)
			return fd;
		dirfd = fd;
		path = cut + 1;
		len = strlen(path);
	}
	fd = openat2_beneath(dirfd, path, flags);
out:
	if (dirfd != ufs.br[b].fd)
		close(dirfd);
	return fd;
}

/* Cached directory fds: a budget well under the open-file limit, which
 * open files and transient fds share. */
#define DIRFD_CACHE_MAX 4096
static unsigned int dirfds_cached;

static int cached_dirfd(const struct node *n, unsigned int b)
{
	int *fds;

	if (n == ufs.root)
		return ufs.br[b].fd;
	fds = __atomic_load_n(&n->dirfds, __ATOMIC_ACQUIRE);
	return fds ? __atomic_load_n(&fds[b], __ATOMIC_ACQUIRE) : -1;
}

static bool cache_dirfd(struct node *n, unsigned int b, int fd)
{
	int *fds = __atomic_load_n(&n->dirfds, __ATOMIC_ACQUIRE), expected = -1;

	if (__atomic_add_fetch(&dirfds_cached, 1, __ATOMIC_RELAXED) > DIRFD_CACHE_MAX)
		goto refuse;
	if (!fds) {
		int *fresh = malloc(ufs.nbr * sizeof(*fresh)), *none = NULL;

		if (!fresh)
			goto refuse;
		for (unsigned int i = 0; i < ufs.nbr; i++)
			fresh[i] = -1;
		if (__atomic_compare_exchange_n(&n->dirfds, &none, fresh, false, __ATOMIC_ACQ_REL,
						__ATOMIC_ACQUIRE)) {
			fds = fresh;
		} else {
			free(fresh);
			fds = none;
		}
	}
	if (__atomic_compare_exchange_n(&fds[b], &expected, fd, false, __ATOMIC_ACQ_REL,
					__ATOMIC_ACQUIRE))
		return true;
refuse:
	__atomic_sub_fetch(&dirfds_cached, 1, __ATOMIC_RELAXED);
	return false;
}

static void drop_dirfds(struct node *n)
{
	if (!n->dirfds)
		return;
	for (unsigned int i = 0; i < ufs.nbr; i++) {
		if (n->dirfds[i] >= 0) {
			close(n->dirfds[i]);
			__atomic_sub_fetch(&dirfds_cached, 1, __ATOMIC_RELAXED);
		}
	}
	free(n->dirfds);
	n->dirfds = NULL;
}

int node_fstat_cached_dir(const struct node *n, struct stat *st)
{
	int fd = cached_dirfd(n, n->branch);

	if (fd < 0)
		return -ENOENT;
	return fstat(fd, st) < 0 ? -errno : 0;
}

/* One component below the parent's cached fd when there is one, else the
 * whole path from the branch root. */
static int open_dir_uncached(struct node *n, unsigned int b)
{
	const int flags = O_PATH | O_DIRECTORY;
	char *path;
	int fd, pfd;

	pthread_rwlock_rdlock(&ufs.tree_lock);
	if (n->parent && !(n->redirect && b > n->redirect_branch) &&
	    (pfd = cached_dirfd(n->parent, b)) >= 0) {
		/* The read lock keeps the parent (and its fd) alive. */
		fd = openat2_beneath(pfd, n->name, flags);
		pthread_rwlock_unlock(&ufs.tree_lock);
		return fd;
	}
	path = node_path(n, b);
	pthread_rwlock_unlock(&ufs.tree_lock);
	if (!path)
		return -ENOMEM;
	fd = branch_open(b, path, flags);
	free(path);
	return fd;
}

static int reopen_dir(int fd, int flags)
{
	int r;

	if (flags == (O_PATH | O_DIRECTORY))
		r = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	else
		r = openat(fd, ".", flags | O_CLOEXEC);
	return r < 0 ? -errno : r;
}

int node_open_dir(struct node *n, unsigned int b, int flags)
{
	int fd = cached_dirfd(n, b), r;

	if (!flags)
		flags = O_PATH | O_DIRECTORY;
	if (fd >= 0)
		return reopen_dir(fd, flags);
	fd = open_dir_uncached(n, b);
	if (fd < 0)
		return fd;
	if (cache_dirfd(n, b, fd))
		return reopen_dir(fd, flags);
	if (flags == (O_PATH | O_DIRECTORY))
		return fd;
	r = reopen_dir(fd, flags);
	close(fd);
	return r;
}

int node_dir_fd(struct node *n, unsigned int b, bool *owned)
{
	int fd = cached_dirfd(n, b);

	*owned = false;
	if (fd >= 0)
		return fd;
	fd = open_dir_uncached(n, b);
	if (fd < 0 || cache_dirfd(n, b, fd))
		return fd;
	/* The cache is full, or another thread cached its own fd first. */
	*owned = true;
	return fd;
}

int node_open_parent(struct node *n, unsigned int b, char **name)
{
	struct node *parent;
	int fd;

	if (!n->parent) {
		/* The root's backing object is the branch root itself, reached
		 * as "." in its own directory. */
		*name = strdup(".");
		if (!*name)
			return -ENOMEM;
		fd = fcntl(ufs.br[b].fd, F_DUPFD_CLOEXEC, 0);
		if (fd < 0) {
			free(*name);
			*name = NULL;
			return -errno;
		}
		return fd;
	}
	pthread_rwlock_rdlock(&ufs.tree_lock);
	parent = n->parent;
	node_ref(parent);
	*name = strdup(n->name);
	pthread_rwlock_unlock(&ufs.tree_lock);
	fd = *name ? node_open_dir(parent, b, 0) : -ENOMEM;
	node_unref(parent);
	if (fd < 0) {
		free(*name);
		*name = NULL;
	}
	return fd;
}

void node_set_redirect(struct node *n, const char *redirect, unsigned int branch)
{
	char *copy = redirect ? strdup(redirect) : NULL;

	pthread_rwlock_wrlock(&ufs.tree_lock);
	free(n->redirect);
	n->redirect = copy;
	n->redirect_branch = (uint8_t)branch;
	pthread_rwlock_unlock(&ufs.tree_lock);
}

void node_set_gone(struct node *n, const struct stat *st)
{
	pthread_mutex_lock(&n->lock);
	n->gone_st = *st;
	/* This name no longer counts as a link. */
	n->gone_st.st_nlink = S_ISDIR(st->st_mode) || st->st_nlink == 0 ? 0 : st->st_nlink - 1;
	if (S_ISDIR(st->st_mode))
		n->gone_st.st_size = 0; /* as rmdir leaves it */
	n->has_gone_st = true;
	pthread_mutex_unlock(&n->lock);
}

/* Hard-linked upper files, by inode number: rare, so one lock is enough. */
static struct node *linked_nodes;
static pthread_mutex_t linked_lock = PTHREAD_MUTEX_INITIALIZER;
/* Entries in linked_nodes, read without the lock: most unions have none. */
static unsigned int linked_count;

struct node *node_find_linked(ino_t ino)
{
	struct node *n;
	uint64_t refs;

	if (__atomic_load_n(&linked_count, __ATOMIC_ACQUIRE) == 0)
		return NULL;
	pthread_mutex_lock(&linked_lock);
	HASH_FIND(link_hh, linked_nodes, &ino, sizeof(ino), n);
	/* A node whose count already reached zero is being freed: take a
	 * reference only from a live one. */
	if (n) {
		refs = __atomic_load_n(&n->refs, __ATOMIC_ACQUIRE);
		do {
			if (refs == 0) {
				n = NULL;
				break;
			}
		} while (!__atomic_compare_exchange_n(&n->refs, &refs, refs + 1, false,
						      __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE));
	}
	pthread_mutex_unlock(&linked_lock);
	return n;
}

int node_make_shared(struct node *n)
{
	struct stat st;
	char *name;
	int dirfd, fd;

	if (__atomic_load_n(&n->self_fd, __ATOMIC_ACQUIRE) >= 0)
		return 0;
	dirfd = node_open_parent(n, 0, &name);
	if (dirfd < 0)
		return dirfd;
	fd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	close(dirfd);
	free(name);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return -EINVAL;
	}
	pthread_mutex_lock(&linked_lock);
	if (n->self_fd >= 0) {
		close(fd);
	} else {
		n->backing_ino = st.st_ino;
		__atomic_store_n(&n->self_fd, fd, __ATOMIC_RELEASE);
		HASH_ADD(link_hh, linked_nodes, backing_ino, sizeof(n->backing_ino), n);
		n->in_links = true;
		__atomic_add_fetch(&linked_count, 1, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&linked_lock);
	return 0;
}

static void unshare_node(struct node *n)
{
	if (n->self_fd < 0)
		return;
	pthread_mutex_lock(&linked_lock);
	if (n->in_links) {
		HASH_DELETE(link_hh, linked_nodes, n);
		__atomic_sub_fetch(&linked_count, 1, __ATOMIC_RELEASE);
	}
	n->in_links = false;
	pthread_mutex_unlock(&linked_lock);
	close(n->self_fd);
	n->self_fd = -1;
}

int node_locate(struct node *n, unsigned int b, struct node_loc *loc)
{
	int self = __atomic_load_n(&n->self_fd, __ATOMIC_ACQUIRE);

	memset(loc, 0, sizeof(*loc));
	if (self >= 0 && b == 0) {
		snprintf(loc->proc, sizeof(loc->proc), "/proc/self/fd/%d", self);
		loc->dirfd = AT_FDCWD;
		loc->name = loc->proc;
		loc->is_self = true;
		return 0;
	}
	loc->nofollow = AT_SYMLINK_NOFOLLOW;
	if (!n->parent) {
		/* The root's backing object is the branch root itself, reached
		 * as "." in its own directory (never closed while mounted). */
		loc->dirfd = ufs.br[b].fd;
		loc->name = ".";
		return 0;
	}
	/* A rename may move n away from its parent meanwhile: the parent's
	 * cached fd stays valid while we hold a reference to the parent. */
	pthread_rwlock_rdlock(&ufs.tree_lock);
	loc->pinned = n->parent;
	node_ref(loc->pinned);
	loc->owned_name = strdup(n->name);
	pthread_rwlock_unlock(&ufs.tree_lock);
	loc->dirfd = loc->owned_name ? node_dir_fd(loc->pinned, b, &loc->owns_dirfd) : -ENOMEM;
	if (loc->dirfd < 0) {
		int err = loc->dirfd;

		node_loc_done(loc);
		return err;
	}
	loc->name = loc->owned_name;
	return 0;
}

void node_loc_done(struct node_loc *loc)
{
	if (loc->owns_dirfd && loc->dirfd >= 0)
		close(loc->dirfd);
	loc->owns_dirfd = false;
	loc->dirfd = -1;
	if (loc->pinned)
		node_unref(loc->pinned);
	loc->pinned = NULL;
	free(loc->owned_name);
	loc->owned_name = NULL;
}


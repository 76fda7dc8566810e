/* Inode table: nodes keyed by (parent, name), reference counted, and the
 * path resolution that turns a node into a backing object in a branch. */
#include "node.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "log.h"
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
	pthread_mutex_init(&n->lock, NULL);
	return n;
}

static void node_free(struct node *n)
{
	pthread_mutex_destroy(&n->lock);
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
		n->refs -= count;
		dead = n->refs == 0;
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

static int openat2_beneath(int dirfd, const char *path, int flags, mode_t mode)
{
	struct open_how how = {
		.flags = (uint64_t)flags | O_CLOEXEC,
		.mode = (flags & (O_CREAT | O_TMPFILE)) ? mode : 0,
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
int branch_open(unsigned int b, const char *path, int flags, mode_t mode)
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
		fd = openat2_beneath(dirfd, prefix, O_PATH | O_DIRECTORY, 0);
		free(prefix);
		if (dirfd != ufs.br[b].fd)
			close(dirfd);
		if (fd < 0)
			return fd;
		dirfd = fd;
		path = cut + 1;
		len = strlen(path);
	}
	fd = openat2_beneath(dirfd, path, flags, mode);
out:
	if (dirfd != ufs.br[b].fd)
		close(dirfd);
	return fd;
}

int node_open_dir(struct node *n, unsigned int b, int flags)
{
	char *path;
	int fd;

	pthread_rwlock_rdlock(&ufs.tree_lock);
	path = node_path(n, b);
	pthread_rwlock_unlock(&ufs.tree_lock);
	if (!path)
		return -ENOMEM;
	fd = branch_open(b, path, flags ? flags : O_PATH | O_DIRECTORY, 0);
	free(path);
	return fd;
}

int node_open_parent(struct node *n, unsigned int b, char **name)
{
	char *path = NULL;
	int fd;

	pthread_rwlock_rdlock(&ufs.tree_lock);
	if (n->parent) {
		path = node_path(n->parent, b);
		*name = strdup(n->name);
	} else {
		/* The root has no parent: its backing object is the branch root
		 * itself, reached as "." in its own directory. */
		path = strdup(".");
		*name = strdup(".");
	}
	pthread_rwlock_unlock(&ufs.tree_lock);
	if (!path || !*name) {
		free(path);
		free(*name);
		*name = NULL;
		return -ENOMEM;
	}
	fd = branch_open(b, path, O_PATH | O_DIRECTORY, 0);
	free(path);
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

/* The merged view of overlay-format layers, as the union shows it:
 * whiteouts hide, opaque directories stop the merge, redirects are
 * followed; each name is emitted once, from its topmost layer. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "log.h"
#include "walker.h"

/* A directory of the merged view: for each layer, the path (root
 * relative) where it is looked up, and whether that layer's directory is
 * part of the merge. */
struct mdir {
	char **lpath;
	bool *contrib;
};

struct merge {
	struct walker w;
	int *roots; /* O_PATH fds of the layer roots, top first */
	size_t n;
};

static void mdir_free(struct mdir *d, size_t n)
{
	if (d->lpath)
		for (size_t i = 0; i < n; i++)
			free(d->lpath[i]);
	free(d->lpath);
	free(d->contrib);
	d->lpath = NULL;
	d->contrib = NULL;
}

static int mdir_alloc(struct mdir *d, size_t n)
{
	d->lpath = calloc(n, sizeof(*d->lpath));
	d->contrib = calloc(n, sizeof(*d->contrib));
	return d->lpath && d->contrib ? 0 : -ENOMEM;
}

static char *join(const char *dir, const char *name)
{
	char *out;

	if (!strcmp(dir, "."))
		return strdup(name);
	return asprintf(&out, "%s/%s", dir, name) < 0 ? NULL : out;
}

/* Opens the directory holding root-relative path in a layer (O_PATH) and
 * points *leaf at the last component. */
static int open_holder(int rootfd, const char *path, const char **leaf)
{
	const char *slash = strrchr(path, '/');
	char *dir;
	int fd;

	if (!slash) {
		*leaf = path;
		return openat(rootfd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	}
	*leaf = slash + 1;
	dir = strndup(path, (size_t)(slash - path));
	if (!dir) {
		errno = ENOMEM;
		return -1;
	}
	fd = img_open_beneath(rootfd, dir, O_PATH | O_DIRECTORY);
	free(dir);
	return fd;
}

static char *get_xattr(int dirfd, const char *name, const char *xname)
{
	char path[64 + NAME_MAX], buf[PATH_MAX];
	ssize_t len;

	if (at_path(path, sizeof(path), dirfd, name) < 0)
		return NULL;
	len = lgetxattr(path, xname, buf, sizeof(buf) - 1);
	if (len < 0)
		return NULL;
	buf[len] = '\0';
	return strdup(buf);
}

/* What a name of a merged directory resolves to. */
struct mlookup {
	bool found;
	size_t layer; /* topmost layer holding it */
	struct stat st;
	struct mdir child; /* when a directory */
	char *redirect;	   /* root relative, for the layers below redirect_at */
	size_t redirect_at;
};

/* overlayfs stores a redirect as absolute from the layer root or as a name
 * relative to the parent; make it root relative.  The parent's path is the
 * one in the layer just below the redirecting one. */
static char *redirect_path(const struct merge *m, const struct mdir *dir, size_t b,
			   const char *value)
{
	if (value[0] == '/') {
		while (*value == '/')
			value++;
		return strdup(value);
	}
	return join(b + 1 < m->n ? dir->lpath[b + 1] : ".", value);
}

enum step { STEP_NEXT, STEP_STOP };

/* A path that does not lead to a directory in a layer (missing, through a
 * non-directory or a symlink, or out of the layer) holds nothing there. */
static bool absent(int err)
{
	return err == ENOENT || err == ENOTDIR || err == ELOOP || err == EXDEV;
}

/* One layer of a lookup: overlayfs' rules (whiteouts end it, a non-dir
 * ends it, a directory merges with those below until an opaque one). */
static int lookup_in_layer(struct merge *m, const struct mdir *dir, size_t b, const char *path,
			   struct mlookup *r, enum step *next)
{
	const char *leaf;
	struct stat st;
	char *value;
	int hfd = open_holder(m->roots[b], path, &leaf);

	*next = STEP_NEXT;
	if (hfd < 0)
		return absent(errno) ? 0 : -errno;
	if (fstatat(hfd, leaf, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		int err = errno;

		close(hfd);
		return absent(err) ? 0 : -err;
	}
	if (S_ISCHR(st.st_mode) && st.st_rdev == 0) {
		*next = STEP_STOP; /* a whiteout */
	} else if (!r->found) {
		r->found = true;
		r->layer = b;
		r->st = st;
	} else if (!S_ISDIR(st.st_mode)) {
		*next = STEP_STOP; /* a non-directory below a directory */
	}
	if (*next == STEP_STOP || !S_ISDIR(r->st.st_mode)) {
		*next = STEP_STOP;
		close(hfd);
		return 0;
	}
	r->child.contrib[b] = true;
	value = get_xattr(hfd, leaf, XATTR_OVL_REDIRECT);
	if (value && !r->redirect) {
		r->redirect = redirect_path(m, dir, b, value);
		r->redirect_at = b;
	}
	free(value);
	value = get_xattr(hfd, leaf, XATTR_OVL_OPAQUE);
	if (value && !strcmp(value, "y"))
		*next = STEP_STOP;
	free(value);
	close(hfd);
	return 0;
}

static int merge_lookup(struct merge *m, const struct mdir *dir, const char *name,
			struct mlookup *r)
{
	int err = 0;

	memset(r, 0, sizeof(*r));
	if (mdir_alloc(&r->child, m->n) < 0)
		return -ENOMEM;
	for (size_t b = 0; b < m->n && !err; b++) {
		enum step next;
		char *path;

		/* Below a redirect the parent's layers no longer matter. */
		if (!r->redirect && !dir->contrib[b])
			continue;
		path = r->redirect ? strdup(r->redirect) : join(dir->lpath[b], name);
		if (!path)
			return -ENOMEM;
		err = lookup_in_layer(m, dir, b, path, r, &next);
		free(path);
		if (next == STEP_STOP)
			break;
	}
	/* Where the child's own children are looked up, in every layer. */
	for (size_t b = 0; b < m->n && !err; b++) {
		bool redirected = r->redirect && b > r->redirect_at;

		r->child.lpath[b] = redirected ? strdup(r->redirect) : join(dir->lpath[b], name);
		if (!r->child.lpath[b])
			err = -ENOMEM;
	}
	return err;
}

static void mlookup_free(struct mlookup *r, size_t n)
{
	mdir_free(&r->child, n);
	free(r->redirect);
}

static int merge_dir(struct merge *m, const struct mdir *dir);

static int merge_one(struct merge *m, const struct mdir *dir, const char *name)
{
	struct walker *w = &m->w;
	struct mlookup r;
	const char *leaf;
	size_t saved;
	int hfd = -1, fd = -1, err;

	if (path_push(w, name, &saved) < 0)
		return -1;
	err = merge_lookup(m, dir, name, &r);
	if (err < 0) {
		err = img_fail(w->eb, "%s: lookup: %s", w->path, errno_name(-err));
		goto out;
	}
	if (!r.found)
		goto out; /* whited out */
	hfd = open_holder(m->roots[r.layer], r.child.lpath[r.layer], &leaf);
	if (hfd < 0) {
		err = img_fail(w->eb, "%s: %s", w->path, errno_name(errno));
		goto out;
	}
	err = emit_object(w, hfd, leaf, &r.st, &fd);
	if (!err && S_ISDIR(r.st.st_mode))
		err = merge_dir(m, &r.child);
out:
	if (fd >= 0)
		close(fd);
	if (hfd >= 0)
		close(hfd);
	mlookup_free(&r, m->n);
	w->path[saved] = '\0';
	return err;
}

static int merge_dir(struct merge *m, const struct mdir *dir)
{
	char **names = NULL;
	size_t n = 0;
	int err = enter_dir(&m->w);

	for (size_t b = 0; b < m->n && !err; b++) {
		int fd;

		if (!dir->contrib[b])
			continue;
		fd = !strcmp(dir->lpath[b], ".") ?
			     openat(m->roots[b], ".", O_PATH | O_DIRECTORY | O_CLOEXEC) :
			     img_open_beneath(m->roots[b], dir->lpath[b], O_PATH | O_DIRECTORY);
		if (fd < 0)
			err = -errno;
		else
			err = add_names(fd, true, &names, &n);
		if (fd >= 0)
			close(fd);
		if (err)
			err = img_fail(m->w.eb, "%s (layer %zu): %s", m->w.path, b, errno_name(-err));
	}
	if (!err)
		sort_unique(names, &n);
	for (size_t i = 0; !err && i < n; i++)
		err = merge_one(m, dir, names[i]);
	tw_free_names(names, n);
	m->w.depth--;
	return err;
}

/* The root merges every layer down to the first opaque root. */
static int merge_root(struct merge *m, struct mdir *root)
{
	bool stop = false;
	struct stat st;
	int fd = -1, r;

	if (mdir_alloc(root, m->n) < 0)
		return img_fail(m->w.eb, "merge: ENOMEM");
	for (size_t b = 0; b < m->n; b++) {
		char *opaque;

		root->lpath[b] = strdup(".");
		if (!root->lpath[b])
			return img_fail(m->w.eb, "merge: ENOMEM");
		root->contrib[b] = !stop;
		opaque = get_xattr(m->roots[b], ".", XATTR_OVL_OPAQUE);
		stop = stop || (opaque && !strcmp(opaque, "y"));
		free(opaque);
	}
	if (fstat(m->roots[0], &st) < 0)
		return img_fail(m->w.eb, "layer 0: %s", errno_name(errno));
	r = emit_object(&m->w, m->roots[0], ".", &st, &fd);
	if (fd >= 0)
		close(fd);
	return r;
}

int tw_walk_layers(char *const *layers, size_t nlayers, tw_emit_fn emit, void *ctx,
		   struct img_err *eb)
{
	struct merge m = { .n = nlayers };
	struct mdir root = { 0 };
	int r;

	if (!nlayers)
		return img_fail(eb, "no layers");
	r = walker_init(&m.w, TW_PUBLIC, emit, ctx, eb);
	m.roots = calloc(nlayers, sizeof(*m.roots));
	if (!r && !m.roots)
		r = img_fail(eb, "merge: ENOMEM");
	for (size_t b = 0; m.roots && b < nlayers; b++)
		m.roots[b] = -1;
	for (size_t b = 0; !r && b < nlayers; b++) {
		m.roots[b] = open(layers[b], O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (m.roots[b] < 0)
			r = img_fail(eb, "%s: %s", layers[b], errno_name(errno));
	}
	if (!r)
		r = merge_root(&m, &root);
	if (!r)
		r = merge_dir(&m, &root);
	mdir_free(&root, nlayers);
	for (size_t b = 0; m.roots && b < nlayers; b++)
		if (m.roots[b] >= 0)
			close(m.roots[b]);
	free(m.roots);
	walker_fini(&m.w);
	return r;
}

/* The image store: manifests, content-addressed layers, and the locking
 * that keeps concurrent strata processes from tripping over each other.
 *
 *   $ROOT/lock                 flock: LOCK_EX while layers or manifests are
 *                              added or removed (quick renames only), LOCK_SH
 *                              while a private temp dir is being created
 *   $ROOT/tmp/XXXXXX/          a private temp dir, flock'ed by its owner for
 *                              its whole life: an unlocked one is debris of a
 *                              crash, removed by the next writer
 *   $ROOT/layers/<id>/diff/    layer content (overlay format)
 *   $ROOT/layers/<id>/layer.json
 *   $ROOT/images/<name>.json   the manifest
 *
 * Layers are built unlocked in a temp dir and renamed into place; the
 * manifest is written to a temp file, fsync'ed and renamed without
 * replacing (renameat2 RENAME_NOREPLACE), so of two writers of one name
 * exactly one wins.  A layer id is the sha256 of the layer's canonical tar
 * stream (tarball.c: sorted names, no atime/ctime, directory mtimes zeroed,
 * sorted xattrs), so equal content gets one directory. */
#include "image.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "layer.h"
#include "log.h"

#define MANIFEST_MAX (1 << 20)

bool name_is_valid(const char *name)
{
	size_t len;

	if (!name || !isalnum((unsigned char)name[0]))
		return false;
	for (len = 1; name[len]; len++)
		if (!isalnum((unsigned char)name[len]) && !strchr("_.-", name[len]))
			return false;
	return len <= 128;
}

static bool id_is_valid(const char *id)
{
	size_t len = strspn(id, "0123456789abcdef");

	return len == 64 && !id[len];
}

/* ---- the store ---- */

struct store {
	char root[PATH_MAX]; /* absolute */
	int lockfd;
};

struct tmpdir {
	char path[PATH_MAX];
	int fd; /* holds the flock that marks it in use */
};

static int path_fmt(char *buf, size_t len, struct img_err *eb, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int path_fmt(char *buf, size_t len, struct img_err *eb, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= len)
		return img_fail(eb, "%.64s...: ENAMETOOLONG", buf);
	return 0;
}

static int mkdir_p(char *path, mode_t mode, struct img_err *eb)
{
	struct stat st;

	if (stat(path, &st) == 0)
		return S_ISDIR(st.st_mode) ? 0 : img_fail(eb, "%s: ENOTDIR", path);
	for (char *p = strchr(path + 1, '/'); p; p = strchr(p + 1, '/')) {
		*p = '\0';
		if (mkdir(path, 0755) < 0 && errno != EEXIST) {
			int err = errno;

			*p = '/';
			return img_fail(eb, "%s: mkdir: %s", path, errno_name(err));
		}
		*p = '/';
	}
	if (mkdir(path, mode) < 0 && errno != EEXIST)
		return img_fail(eb, "%s: mkdir: %s", path, errno_name(errno));
	return 0;
}

/* create: make the layout and open the lock (for writers); otherwise
 * only resolve the root, which must exist. */
static int store_open(struct store *s, const char *root, bool create, struct img_err *eb)
{
	static const char *const subdirs[] = { "layers", "images", "tmp" };
	char path[PATH_MAX];

	s->lockfd = -1;
	if (!root || !*root)
		return img_fail(eb, "no storage root given");
	if (path_fmt(path, sizeof(path), eb, "%s", root) < 0)
		return -1;
	if (create && mkdir_p(path, 0711, eb) < 0)
		return -1;
	if (!realpath(root, s->root))
		return img_fail(eb, "%s: %s", root, errno_name(errno));
	for (size_t i = 0; create && i < sizeof(subdirs) / sizeof(subdirs[0]); i++) {
		if (path_fmt(path, sizeof(path), eb, "%s/%s", s->root, subdirs[i]) < 0)
			return -1;
		if (mkdir(path, 0700) < 0 && errno != EEXIST)
			return img_fail(eb, "%s: mkdir: %s", path, errno_name(errno));
	}
	if (!create)
		return 0;
	if (path_fmt(path, sizeof(path), eb, "%s/lock", s->root) < 0)
		return -1;
	s->lockfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (s->lockfd < 0)
		return img_fail(eb, "%s: %s", path, errno_name(errno));
	return 0;
}

static void store_close(struct store *s)
{
	if (s->lockfd >= 0)
		close(s->lockfd);
	s->lockfd = -1;
}

static int store_lock(struct store *s, int op, struct img_err *eb)
{
	while (flock(s->lockfd, op) < 0)
		if (errno != EINTR)
			return img_fail(eb, "%s/lock: flock: %s", s->root, errno_name(errno));
	return 0;
}

static void store_unlock(struct store *s)
{
	flock(s->lockfd, LOCK_UN);
}

/* Under the shared lock, so a sweeper (exclusive) never sees the dir
 * between mkdtemp and its flock. */
static int tmp_create(struct store *s, struct tmpdir *t, struct img_err *eb)
{
	int r = -1;

	t->fd = -1;
	if (path_fmt(t->path, sizeof(t->path), eb, "%s/tmp/XXXXXX", s->root) < 0 ||
	    store_lock(s, LOCK_SH, eb) < 0)
		return -1;
	if (!mkdtemp(t->path)) {
		img_fail(eb, "%s: mkdtemp: %s", t->path, errno_name(errno));
		goto out;
	}
	t->fd = open(t->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (t->fd < 0 || flock(t->fd, LOCK_EX | LOCK_NB) < 0) {
		img_fail(eb, "%s: %s", t->path, errno_name(errno));
		rmdir(t->path);
		goto out;
	}
	r = 0;
out:
	store_unlock(s);
	return r;
}

static void tmp_destroy(struct tmpdir *t)
{
	int err;

	if (t->fd < 0)
		return;
	err = img_remove_tree(t->path);
	if (err < 0)
		log_warn("%s: removing: %s", t->path, errno_name(-err));
	close(t->fd);
	t->fd = -1;
}

/* Removes temp dirs nobody holds (a crashed strata's); caller holds the
 * exclusive lock. */
static void tmp_sweep(struct store *s)
{
	char path[PATH_MAX], **names;
	size_t n;
	int dirfd, err;

	if (path_fmt(path, sizeof(path), &(struct img_err){ NULL, 0 }, "%s/tmp", s->root) < 0)
		return;
	dirfd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		return;
	err = tw_list_dir(dirfd, &names, &n);
	for (size_t i = 0; !err && i < n; i++) {
		int fd = openat(dirfd, names[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

		if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0) {
			err = img_remove_tree_at(dirfd, names[i]);
			if (err < 0)
				log_warn("%s/%s: removing: %s", path, names[i], errno_name(-err));
			err = 0;
		}
		if (fd >= 0)
			close(fd);
	}
	tw_free_names(names, n);
	close(dirfd);
}

/* Opens the store for writing and clears crash debris. */
static int store_open_rw(struct store *s, const char *root, struct img_err *eb)
{
	if (store_open(s, root, true, eb) < 0 || store_lock(s, LOCK_EX, eb) < 0) {
		store_close(s);
		return -1;
	}
	tmp_sweep(s);
	store_unlock(s);
	return 0;
}

static int fsync_dir(const char *path, struct img_err *eb)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int r = 0;

	if (fd < 0 || fsync(fd) < 0)
		r = img_fail(eb, "%s: fsync: %s", path, errno_name(errno));
	if (fd >= 0)
		close(fd);
	return r;
}

/* ---- manifests ---- */

static json_object *manifest_read(const char *root, const char *name, struct img_err *eb)
{
	enum json_tokener_error jerr;
	char path[PATH_MAX], *buf;
	json_object *m, *layers;
	struct stat st;
	ssize_t len;
	int fd;

	if (path_fmt(path, sizeof(path), eb, "%s/images/%s.json", root, name) < 0)
		return NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			img_fail(eb, "no such image '%s'", name);
		else
			img_fail(eb, "%s: %s", path, errno_name(errno));
		return NULL;
	}
	if (fstat(fd, &st) < 0 || st.st_size > MANIFEST_MAX || !(buf = malloc((size_t)st.st_size + 1))) {
		img_fail(eb, "%s: %s", path, st.st_size > MANIFEST_MAX ? "too large" : errno_name(errno));
		close(fd);
		return NULL;
	}
	len = read(fd, buf, (size_t)st.st_size);
	close(fd);
	if (len != st.st_size) {
		img_fail(eb, "%s: read: %s", path, len < 0 ? errno_name(errno) : "short read");
		free(buf);
		return NULL;
	}
	buf[len] = '\0';
	m = json_tokener_parse_verbose(buf, &jerr);
	free(buf);
	if (!m || !json_object_is_type(m, json_type_object) ||
	    !json_object_object_get_ex(m, "layers", &layers) ||
	    !json_object_is_type(layers, json_type_array)) {
		img_fail(eb, "%s: not a manifest (%s)", path,
			 m ? "no layers array" : json_tokener_error_desc(jerr));
		json_object_put(m);
		return NULL;
	}
	return m;
}

/* The layer ids of a manifest, validated (a manifest must not name a path
 * outside layers/). */
static int manifest_layers(json_object *m, const char *name, const char ***ids, size_t *n,
			   struct img_err *eb)
{
	json_object *layers;

	json_object_object_get_ex(m, "layers", &layers);
	*n = json_object_array_length(layers);
	*ids = calloc(*n + 1, sizeof(**ids));
	if (!*ids)
		return img_fail(eb, "image '%s': ENOMEM", name);
	for (size_t i = 0; i < *n; i++) {
		const char *id = json_object_get_string(json_object_array_get_idx(layers, i));

		if (!id || !id_is_valid(id)) {
			free(*ids);
			*ids = NULL;
			return img_fail(eb, "image '%s': layer %zu: invalid id", name, i);
		}
		(*ids)[i] = id;
	}
	return 0;
}

static json_object *strings_array(const char *const *v)
{
	json_object *a = json_object_new_array();

	for (size_t i = 0; a && v && v[i]; i++)
		if (json_object_array_add(a, json_object_new_string(v[i]))) {
			json_object_put(a);
			return NULL;
		}
	return a;
}

/* config is taken over (may be NULL: an empty config). */
static json_object *manifest_new(const char *name, const char *const *ids, json_object *config)
{
	json_object *m = json_object_new_object();
	char now[32];

	layer_time_now(now);
	if (!config)
		config = json_object_new_object();
	if (!m || !config || json_object_object_add(m, "name", json_object_new_string(name)) ||
	    json_object_object_add(m, "layers", strings_array(ids)) ||
	    json_object_object_add(m, "created", json_object_new_string(now)) ||
	    json_object_object_add(m, "config", config)) {
		json_object_put(m);
		return NULL;
	}
	return m;
}

static int write_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Atomically creates images/<name>.json: 0, -1, or 1 when it exists. */
static int manifest_write(struct store *s, const char *name, json_object *m, struct img_err *eb)
{
	const char *text = json_object_to_json_string_ext(m, JSON_C_TO_STRING_PRETTY |
								     JSON_C_TO_STRING_NOSLASHESCAPE);
	char tmp[PATH_MAX], path[PATH_MAX], dir[PATH_MAX];
	size_t len = strlen(text);
	int fd, r = 0;

	if (path_fmt(dir, sizeof(dir), eb, "%s/images", s->root) < 0 ||
	    path_fmt(path, sizeof(path), eb, "%s/%s.json", dir, name) < 0 ||
	    path_fmt(tmp, sizeof(tmp), eb, "%s/.%s.json.XXXXXX", dir, name) < 0)
		return -1;
	fd = mkstemp(tmp);
	if (fd < 0)
		return img_fail(eb, "%s: %s", tmp, errno_name(errno));
	if (write_all(fd, text, len) < 0 || write_all(fd, "\n", 1) < 0 || fchmod(fd, 0644) < 0 ||
	    fsync(fd) < 0)
		r = img_fail(eb, "%s: write: %s", tmp, errno_name(errno));
	if (close(fd) < 0 && !r)
		r = img_fail(eb, "%s: close: %s", tmp, errno_name(errno));
	if (!r && renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) < 0) {
		if (errno == EEXIST)
			r = 1;
		else
			r = img_fail(eb, "%s: rename: %s", path, errno_name(errno));
	}
	if (r)
		unlink(tmp);
	if (r == 1)
		img_fail(eb, "image '%s' already exists", name);
	return r ? r : fsync_dir(dir, eb);
}

static bool manifest_exists(const char *root, const char *name)
{
	char path[PATH_MAX];
	int n = snprintf(path, sizeof(path), "%s/images/%s.json", root, name);

	return n > 0 && (size_t)n < sizeof(path) && access(path, F_OK) == 0;
}

/* ---- publishing: new layer + manifest ---- */

struct publish {
	const char *name;
	struct tmpdir *tmp; /* holds the new layer as tmp/layer, or NULL */
	const char *new_id;
	const char *const *ids; /* every layer, top first (new_id included) */
	json_object *config;	/* taken over */
};

/* Installs the new layer unless equal content is there already; *mine
 * tells whether this call put it there. */
static int install_layer(struct store *s, struct publish *p, bool *mine, struct img_err *eb)
{
	char from[PATH_MAX], to[PATH_MAX], dir[PATH_MAX];

	*mine = false;
	if (path_fmt(from, sizeof(from), eb, "%s/layer", p->tmp->path) < 0 ||
	    path_fmt(dir, sizeof(dir), eb, "%s/layers", s->root) < 0 ||
	    path_fmt(to, sizeof(to), eb, "%s/%s", dir, p->new_id) < 0)
		return -1;
	if (rename(from, to) < 0) {
		if (errno == EEXIST || errno == ENOTEMPTY)
			return 0; /* shared: our copy goes with the temp dir */
		return img_fail(eb, "%s: rename: %s", to, errno_name(errno));
	}
	*mine = true;
	return fsync_dir(dir, eb);
}

static int check_layers(struct store *s, const char *const *ids, struct img_err *eb)
{
	for (size_t i = 0; ids[i]; i++) {
		char path[PATH_MAX];
		struct stat st;

		if (path_fmt(path, sizeof(path), eb, "%s/layers/%s/diff", s->root, ids[i]) < 0)
			return -1;
		if (stat(path, &st) < 0)
			return img_fail(eb, "layer %.12s: %s", ids[i], errno_name(errno));
		if (!S_ISDIR(st.st_mode))
			return img_fail(eb, "layer %.12s: ENOTDIR", ids[i]);
	}
	return 0;
}

/* 0, -1, or 1 when the name was taken meanwhile (nothing changed then). */
static int publish(struct store *s, struct publish *p, struct img_err *eb)
{
	json_object *m = manifest_new(p->name, p->ids, p->config);
	bool mine = false;
	int r;

	if (!m)
		return img_fail(eb, "manifest: ENOMEM");
	r = store_lock(s, LOCK_EX, eb);
	if (!r && p->tmp)
		r = install_layer(s, p, &mine, eb);
	if (!r)
		r = check_layers(s, p->ids, eb);
	if (!r)
		r = manifest_write(s, p->name, m, eb);
	if (r && mine) {
		/* Nobody can use it yet: back into the temp dir, removed with it. */
		struct img_err quiet = { NULL, 0 };
		char from[PATH_MAX], to[PATH_MAX];

		if (path_fmt(from, sizeof(from), &quiet, "%s/layers/%s", s->root, p->new_id) < 0 ||
		    path_fmt(to, sizeof(to), &quiet, "%s/layer", p->tmp->path) < 0 ||
		    rename(from, to) < 0)
			log_warn("%s: rename back: %s", from, errno_name(errno));
	}
	store_unlock(s);
	json_object_put(m);
	return r;
}

/* ---- building a new image from one new layer ---- */

typedef int (*fill_fn)(const char *layerdir, void *ctx, struct img_err *eb);

/* Builds a layer with fill, then publishes name = it + base_ids: 0, -1,
 * or 1 when the name exists (found before or after building). */
static int make_image(const char *root, const char *name, fill_fn fill, void *ctx,
		      const char *const *base_ids, size_t nbase, json_object *config,
		      struct img_err *eb)
{
	struct tmpdir t = { .fd = -1 };
	const char **ids = calloc(nbase + 2, sizeof(*ids));
	char layer[PATH_MAX], id[65];
	unsigned long long size;
	struct store s;
	int r = -1;

	if (!ids) {
		json_object_put(config);
		return img_fail(eb, "ENOMEM");
	}
	if (store_open_rw(&s, root, eb) < 0)
		goto out;
	if (manifest_exists(s.root, name)) {
		img_fail(eb, "image '%s' already exists", name);
		r = 1;
		goto close;
	}
	if (tmp_create(&s, &t, eb) < 0 ||
	    path_fmt(layer, sizeof(layer), eb, "%s/layer", t.path) < 0)
		goto close;
	if (mkdir(layer, 0700) < 0) {
		img_fail(eb, "%s: mkdir: %s", layer, errno_name(errno));
		goto close;
	}
	if (fill(layer, ctx, eb) < 0 || layer_seal(layer, id, &size, eb) < 0)
		goto close;
	ids[0] = id;
	if (nbase)
		memcpy(ids + 1, base_ids, nbase * sizeof(*ids));
	r = publish(&s, &(struct publish){ name, &t, id, ids, config }, eb);
	config = NULL;
close:
	tmp_destroy(&t);
	store_close(&s);
out:
	json_object_put(config);
	free(ids);
	return r;
}

struct fill_src {
	const char *src;
	bool is_dir;
	enum layer_source how;
};

static int fill_from_src(const char *layerdir, void *ctx, struct img_err *eb)
{
	struct fill_src *f = ctx;

	if (f->is_dir)
		return layer_from_dir(layerdir, f->src, f->how, eb);
	return layer_from_tar(layerdir, f->src, eb);
}

int image_import(const char *root, const char *src, const char *name, char *err, size_t errlen)
{
	struct img_err eb = { err, errlen };
	struct fill_src f = { .src = src, .how = LAYER_IMPORT };
	struct stat st;

	if (!name_is_valid(name))
		return img_fail(&eb, "import: invalid image name '%s'", name ? name : "");
	if (stat(src, &st) < 0)
		return img_fail(&eb, "import %s: %s", src, errno_name(errno));
	f.is_dir = S_ISDIR(st.st_mode);
	if (make_image(root, name, fill_from_src, &f, NULL, 0, NULL, &eb) != 0)
		return img_fail_prefix(&eb, "import %s", src);
	return 0;
}

int image_commit(const char *root, const char *upper, const char *base, const char *name,
		 char *err, size_t errlen)
{
	struct img_err eb = { err, errlen };
	struct fill_src f = { .src = upper, .is_dir = true, .how = LAYER_COMMIT };
	json_object *m, *config = NULL;
	const char **ids = NULL;
	char absroot[PATH_MAX];
	size_t n;
	int r = -1;

	if (!name_is_valid(name) || !name_is_valid(base))
		return img_fail(&eb, "commit: invalid image name '%s'",
				name_is_valid(name) ? base : name ? name : "");
	if (!realpath(root, absroot)) {
		if (errno == ENOENT)
			return img_fail(&eb, "commit %s: no such image '%s'", upper, base);
		return img_fail(&eb, "commit: %s: %s", root, errno_name(errno));
	}
	m = manifest_read(absroot, base, &eb);
	if (!m || manifest_layers(m, base, &ids, &n, &eb) < 0)
		goto out;
	/* The config object moves into the new manifest: share it. */
	if (json_object_object_get_ex(m, "config", &config))
		json_object_get(config);
	r = make_image(root, name, fill_from_src, &f, ids, n, config, &eb) ? -1 : 0;
out:
	free(ids);
	json_object_put(m);
	return r ? img_fail_prefix(&eb, "commit %s", upper) : 0;
}

/* ---- loading ---- */

static char **json_strings(json_object *o, bool *bad)
{
	size_t n;
	char **v;

	*bad = false;
	if (!o || json_object_is_type(o, json_type_null))
		return NULL;
	if (!json_object_is_type(o, json_type_array)) {
		*bad = true;
		return NULL;
	}
	n = json_object_array_length(o);
	v = calloc(n + 1, sizeof(*v));
	for (size_t i = 0; v && i < n; i++) {
		json_object *s = json_object_array_get_idx(o, i);

		if (!json_object_is_type(s, json_type_string) ||
		    !(v[i] = strdup(json_object_get_string(s)))) {
			for (size_t j = 0; j < i; j++)
				free(v[j]);
			free(v);
			v = NULL;
		}
	}
	*bad = !v;
	return v;
}

static unsigned long long layer_size(const char *root, const char *id)
{
	char path[PATH_MAX];
	json_object *o, *size;
	unsigned long long n = 0;

	if (path_fmt(path, sizeof(path), &(struct img_err){ NULL, 0 }, "%s/layers/%s/layer.json",
		     root, id) < 0)
		return 0;
	o = json_object_from_file(path);
	if (o && json_object_object_get_ex(o, "size", &size))
		n = json_object_get_uint64(size);
	json_object_put(o);
	return n;
}

static int load_config(json_object *m, struct image *img, struct img_err *eb)
{
	json_object *config, *o;
	bool bad = false, bad2 = false;

	if (!json_object_object_get_ex(m, "config", &config))
		return 0;
	if (json_object_object_get_ex(config, "cmd", &o))
		img->cmd = json_strings(o, &bad);
	if (json_object_object_get_ex(config, "env", &o))
		img->env = json_strings(o, &bad2);
	if (json_object_object_get_ex(config, "workdir", &o) && json_object_is_type(o, json_type_string))
		img->workdir = strdup(json_object_get_string(o));
	if (bad || bad2)
		return img_fail(eb, "image '%s': config: cmd and env must be arrays of strings",
				img->name);
	return 0;
}

int image_load(const char *root, const char *name, struct image *img, char *err, size_t errlen)
{
	struct img_err eb = { err, errlen };
	char absroot[PATH_MAX];
	const char **ids = NULL;
	json_object *m = NULL, *o;
	size_t n;
	int r = -1;

	memset(img, 0, sizeof(*img));
	if (!name_is_valid(name))
		return img_fail(&eb, "invalid image name '%s'", name ? name : "");
	if (!realpath(root, absroot)) {
		if (errno == ENOENT)
			return img_fail(&eb, "no such image '%s'", name);
		return img_fail(&eb, "%s: %s", root, errno_name(errno));
	}
	m = manifest_read(absroot, name, &eb);
	if (!m || manifest_layers(m, name, &ids, &n, &eb) < 0)
		goto out;
	img->name = strdup(name);
	img->layers = calloc(n + 1, sizeof(*img->layers));
	if (!img->name || !img->layers) {
		img_fail(&eb, "image '%s': ENOMEM", name);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		struct stat st;

		if (asprintf(&img->layers[i], "%s/layers/%s/diff", absroot, ids[i]) < 0) {
			img->layers[i] = NULL;
			img_fail(&eb, "image '%s': ENOMEM", name);
			goto out;
		}
		img->nlayers++;
		if (stat(img->layers[i], &st) < 0) {
			img_fail(&eb, "image '%s': layer %s: %s", name, img->layers[i],
				 errno_name(errno));
			goto out;
		}
		img->size += layer_size(absroot, ids[i]);
	}
	if (json_object_object_get_ex(m, "created", &o))
		img->created = strdup(json_object_get_string(o));
	r = load_config(m, img, &eb);
out:
	free(ids);
	json_object_put(m);
	if (r)
		image_free(img);
	return r;
}

static void free_strv(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

void image_free(struct image *img)
{
	for (size_t i = 0; i < img->nlayers; i++)
		free(img->layers[i]);
	free(img->layers);
	free(img->name);
	free_strv(img->cmd);
	free_strv(img->env);
	free(img->workdir);
	free(img->created);
	memset(img, 0, sizeof(*img));
}

bool image_exists(const char *root, const char *name)
{
	char absroot[PATH_MAX];

	return name_is_valid(name) && realpath(root, absroot) && manifest_exists(absroot, name);
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Image names in images/, sorted; 0 or -errno. */
static int list_names(const char *root, char ***out, size_t *count)
{
	char path[PATH_MAX], **names = NULL;
	size_t n = 0, keep = 0;
	int fd, err;

	*out = NULL;
	*count = 0;
	if (snprintf(path, sizeof(path), "%s/images", root) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	err = tw_list_dir(fd, &names, &n);
	close(fd);
	for (size_t i = 0; !err && i < n; i++) {
		size_t len = strlen(names[i]);

		if (len > 5 && !strcmp(names[i] + len - 5, ".json")) {
			names[i][len - 5] = '\0';
			if (name_is_valid(names[i])) {
				names[keep++] = names[i];
				continue;
			}
		}
		free(names[i]);
	}
	if (err) {
		tw_free_names(names, n);
		return err;
	}
	if (keep)
		qsort(names, keep, sizeof(*names), cmp_name);
	*out = names;
	*count = keep;
	return 0;
}

int image_list(const char *root, char ***names, char *err, size_t errlen)
{
	struct img_err eb = { err, errlen };
	char absroot[PATH_MAX], **v;
	size_t n;
	int r;

	*names = NULL;
	if (!realpath(root, absroot)) {
		if (errno != ENOENT)
			return img_fail(&eb, "%s: %s", root, errno_name(errno));
		v = NULL;
		n = 0;
	} else if ((r = list_names(absroot, &v, &n)) < 0) {
		return img_fail(&eb, "%s/images: %s", absroot, errno_name(-r));
	}
	*names = calloc(n + 1, sizeof(**names));
	if (!*names) {
		tw_free_names(v, n);
		return img_fail(&eb, "image list: ENOMEM");
	}
	if (n)
		memcpy(*names, v, n * sizeof(*v));
	free(v);
	return 0;
}

/* ---- removal ---- */

static int cmp_id(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The sorted ids every image but `except` uses.  Any unreadable manifest
 * fails it: its layers cannot be told apart from garbage. */
static int referenced_layers(const char *root, const char *except, char ***ids, size_t *n,
			     struct img_err *eb)
{
	char **names;
	size_t count;
	int r = list_names(root, &names, &count);

	*ids = NULL;
	*n = 0;
	if (r < 0)
		return img_fail(eb, "%s/images: %s", root, errno_name(-r));
	for (size_t i = 0; !r && i < count; i++) {
		json_object *m;
		const char **layers;
		size_t nl;

		if (!strcmp(names[i], except))
			continue;
		m = manifest_read(root, names[i], eb);
		r = m ? manifest_layers(m, names[i], &layers, &nl, eb) : -1;
		for (size_t j = 0; !r && j < nl; j++) {
			char **grown = reallocarray(*ids, *n + 1, sizeof(**ids));

			if (!grown || !(grown[*n] = strdup(layers[j]))) {
				if (grown)
					*ids = grown;
				r = img_fail(eb, "ENOMEM");
				break;
			}
			*ids = grown;
			(*n)++;
		}
		if (m && !r)
			free(layers);
		json_object_put(m);
	}
	tw_free_names(names, count);
	if (!r && *n)
		qsort(*ids, *n, sizeof(**ids), cmp_id);
	return r;
}

/* Moves every layer no image uses into the temp dir t (removed later,
 * outside the lock).  Caller holds the exclusive lock. */
static int collect_garbage(struct store *s, char **used, size_t nused, struct tmpdir *t,
			   struct img_err *eb)
{
	char dir[PATH_MAX], **names;
	size_t n;
	int fd, r;

	if (path_fmt(dir, sizeof(dir), eb, "%s/layers", s->root) < 0)
		return -1;
	fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : img_fail(eb, "%s: %s", dir, errno_name(errno));
	r = tw_list_dir(fd, &names, &n);
	if (r < 0)
		r = img_fail(eb, "%s: %s", dir, errno_name(-r));
	for (size_t i = 0; !r && i < n; i++) {
		const char *key = names[i];

		if (!id_is_valid(key) ||
		    (nused && bsearch(&key, used, nused, sizeof(*used), cmp_id)))
			continue;
		if (renameat(fd, key, t->fd, key) < 0)
			r = img_fail(eb, "%s/%s: rename: %s", dir, key, errno_name(errno));
	}
	tw_free_names(names, n);
	close(fd);
	return r ? r : fsync_dir(dir, eb);
}

int image_remove(const char *root, const char *name, char *err, size_t errlen)
{
	struct img_err eb = { err, errlen };
	struct tmpdir t = { .fd = -1 };
	char path[PATH_MAX], **used = NULL;
	size_t nused = 0;
	struct store s;
	int r;

	if (!name_is_valid(name))
		return img_fail(&eb, "image rm: invalid image name '%s'", name ? name : "");
	if (!image_exists(root, name))
		return img_fail(&eb, "image rm: no such image '%s'", name);
	if (store_open_rw(&s, root, &eb) < 0)
		return img_fail_prefix(&eb, "image rm %s", name);
	/* Before the exclusive lock: tmp_create takes the shared one. */
	r = tmp_create(&s, &t, &eb);
	if (!r)
		r = store_lock(&s, LOCK_EX, &eb);
	if (r)
		goto out;
	r = referenced_layers(s.root, name, &used, &nused, &eb);
	if (!r)
		r = path_fmt(path, sizeof(path), &eb, "%s/images/%s.json", s.root, name);
	if (!r && unlink(path) < 0)
		r = errno == ENOENT ? img_fail(&eb, "no such image '%s'", name) :
				      img_fail(&eb, "%s: %s", path, errno_name(errno));
	if (!r) {
		*strrchr(path, '/') = '\0';
		r = fsync_dir(path, &eb);
	}
	if (!r)
		r = collect_garbage(&s, used, nused, &t, &eb);
	store_unlock(&s);
out:
	tw_free_names(used, nused);
	tmp_destroy(&t);
	store_close(&s);
	return r ? img_fail_prefix(&eb, "image rm %s", name) : 0;
}

void image_names_free(char **names)
{
	free_strv(names);
}

/* ---- export ---- */

/* Where a tar goes: stdout, a device or pipe in place, or a regular file
 * through a temp name, so a failed export leaves nothing. */
struct dest {
	int fd;
	bool is_tmp;
	const char *path;
	char tmp[PATH_MAX];
};

static int dest_open(struct dest *d, const char *path, struct img_err *eb)
{
	struct stat st;

	d->fd = -1;
	d->is_tmp = false;
	d->path = path;
	if (!strcmp(path, "-")) {
		if (isatty(STDOUT_FILENO))
			return img_fail(eb, "refusing to write a tar to a terminal");
		d->fd = STDOUT_FILENO;
		return 0;
	}
	if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
		d->fd = open(path, O_WRONLY | O_NOCTTY | O_CLOEXEC);
		return d->fd < 0 ? img_fail(eb, "%s: %s", path, errno_name(errno)) : 0;
	}
	for (int i = 0; i < 100 && d->fd < 0; i++) {
		if (path_fmt(d->tmp, sizeof(d->tmp), eb, "%s.tmp-%d-%d", path, (int)getpid(), i) < 0)
			return -1;
		d->fd = open(d->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
		if (d->fd < 0 && errno != EEXIST)
			break;
	}
	if (d->fd < 0)
		return img_fail(eb, "%s: %s", path, errno_name(errno));
	d->is_tmp = true;
	return 0;
}

static int dest_close(struct dest *d, bool ok, struct img_err *eb)
{
	int r = ok ? 0 : -1;

	if (d->fd == STDOUT_FILENO)
		return r;
	if (!r && d->is_tmp && fsync(d->fd) < 0)
		r = img_fail(eb, "%s: fsync: %s", d->tmp, errno_name(errno));
	if (close(d->fd) < 0 && !r)
		r = img_fail(eb, "%s: close: %s", d->is_tmp ? d->tmp : d->path, errno_name(errno));
	if (d->is_tmp && !r && rename(d->tmp, d->path) < 0)
		r = img_fail(eb, "%s: rename: %s", d->path, errno_name(errno));
	if (d->is_tmp && r)
		unlink(d->tmp);
	return r;
}

/* What goes into a tar: one tree, or layers merged. */
struct tar_src {
	const char *dir;
	char *const *layers;
	size_t nlayers;
};

static int write_tar(const char *dest, const struct tar_src *src, struct img_err *eb)
{
	struct archive *a;
	struct dest d;
	int r;

	if (dest_open(&d, dest, eb) < 0)
		return -1;
	a = tw_tar_writer(d.fd, eb);
	r = a ? 0 : -1;
	if (!r && src->dir)
		r = tw_walk_dir(src->dir, TW_PUBLIC | TW_ONE_FS, tw_write_entry, a, eb);
	else if (!r)
		r = tw_walk_layers(src->layers, src->nlayers, tw_write_entry, a, eb);
	if (a) {
		char scratch[256];
		struct img_err quiet = { scratch, sizeof(scratch) };

		/* After a failure the first message is the one that counts. */
		if (tw_close(a, dest, r ? &quiet : eb) < 0)
			r = -1;
	}
	return dest_close(&d, r == 0, eb);
}

int image_export(const char *root, const char *name, const char *dest, char *err, size_t errlen)
{
	struct img_err eb = { err, errlen };
	struct image img;
	int r;

	if (image_load(root, name, &img, err, errlen) < 0)
		return img_fail_prefix(&eb, "export");
	r = write_tar(dest, &(struct tar_src){ .layers = img.layers, .nlayers = img.nlayers }, &eb);
	image_free(&img);
	return r ? img_fail_prefix(&eb, "export %s", name) : 0;
}

int image_export_dir(const char *dir, const char *dest, char *err, size_t errlen)
{
	struct img_err eb = { err, errlen };

	if (write_tar(dest, &(struct tar_src){ .dir = dir }, &eb) < 0)
		return img_fail_prefix(&eb, "export %s", dir);
	return 0;
}

/* ---- busybox ---- */

static int fill_busybox(const char *layerdir, void *ctx, struct img_err *eb)
{
	return layer_from_busybox(layerdir, ctx, eb);
}

int image_ensure_busybox(const char *root, char *err, size_t errlen)
{
	static const char *const cmd[] = { "sh", NULL };
	static const char *const env[] = {
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", NULL
	};
	struct img_err eb = { err, errlen };
	const char *bb = getenv("STRATA_BUSYBOX");
	json_object *config;
	int r;

	if (image_exists(root, "busybox"))
		return 0;
	if (!bb || !*bb)
		bb = "/bin/busybox";
	config = json_object_new_object();
	if (!config || json_object_object_add(config, "cmd", strings_array(cmd)) ||
	    json_object_object_add(config, "env", strings_array(env))) {
		json_object_put(config);
		return img_fail(&eb, "busybox image: ENOMEM");
	}
	r = make_image(root, "busybox", fill_busybox, (void *)bb, NULL, 0, config, &eb);
	/* Another strata built it meanwhile: just as good. */
	if (r == 1)
		return 0;
	return r ? img_fail_prefix(&eb, "busybox image") : 0;
}

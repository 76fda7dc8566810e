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
#include "store.h"

#define MANIFEST_MAX (1 << 20)

bool id_is_valid(const char *id)
{
	size_t len = strspn(id, "0123456789abcdef");

	return len == 64 && !id[len];
}

/* ---- the store ---- */

int path_fmt(char *buf, size_t len, struct img_err *eb, const char *fmt, ...)
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
int store_open(struct store *s, const char *root, bool create, struct img_err *eb)
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

void store_close(struct store *s)
{
	if (s->lockfd >= 0)
		close(s->lockfd);
	s->lockfd = -1;
}

int store_lock(struct store *s, int op, struct img_err *eb)
{
	while (flock(s->lockfd, op) < 0)
		if (errno != EINTR)
			return img_fail(eb, "%s/lock: flock: %s", s->root, errno_name(errno));
	return 0;
}

void store_unlock(struct store *s)
{
	flock(s->lockfd, LOCK_UN);
}

/* Under the shared lock, so a sweeper (exclusive) never sees the dir
 * between mkdtemp and its flock. */
int tmp_create(struct store *s, struct tmpdir *t, struct img_err *eb)
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

void tmp_destroy(struct tmpdir *t)
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
int store_open_rw(struct store *s, const char *root, struct img_err *eb)
{
	if (store_open(s, root, true, eb) < 0 || store_lock(s, LOCK_EX, eb) < 0) {
		store_close(s);
		return -1;
	}
	tmp_sweep(s);
	store_unlock(s);
	return 0;
}

int fsync_dir(const char *path, struct img_err *eb)
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

json_object *manifest_read(const char *root, const char *name, struct img_err *eb)
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
int manifest_layers(json_object *m, const char *name, const char ***ids, size_t *n,
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

json_object *strings_array(const char *const *v)
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
json_object *manifest_new(const char *name, const char *const *ids, json_object *config)
{
	json_object *m = json_object_new_object();
	char now[32];

	img_time_now(now);
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
int manifest_write(struct store *s, const char *name, json_object *m, struct img_err *eb)
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

bool manifest_exists(const char *root, const char *name)
{
	char path[PATH_MAX];
	int n = snprintf(path, sizeof(path), "%s/images/%s.json", root, name);

	return n > 0 && (size_t)n < sizeof(path) && access(path, F_OK) == 0;
}

int cmp_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Image names in images/, sorted; 0 or -errno. */
int list_names(const char *root, char ***out, size_t *count)
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

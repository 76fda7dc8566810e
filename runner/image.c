/* The image store's writers: new images (import, commit, the busybox
 * image) built in a private temp dir and published under the store's
 * lock.  The store's layout, locking and manifests are in store.c; loading
 * and listing in image_read.c, removal in image_remove.c, export in
 * image_export.c. */
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
#include "store.h"

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

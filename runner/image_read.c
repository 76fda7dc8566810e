/* Reading the image store: loading an image (layers, config), listing the
 * images, and exporting one (or a directory tree) as a tar. */
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

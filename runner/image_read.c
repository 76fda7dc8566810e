/* Reading the image store: names, loading an image (layers, config),
 * listing the images.  Exports are in image_export.c. */
#include "image.h"

#include <ctype.h>
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

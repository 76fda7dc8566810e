/* Removing an image, and the layers no other image uses. */
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

/* ---- removal ---- */

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
		qsort(*ids, *n, sizeof(**ids), cmp_name);
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
		    (nused && bsearch(&key, used, nused, sizeof(*used), cmp_name)))
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

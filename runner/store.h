/* Internal to the image store (image.c, image_read.c): the store's
 * directory and lock, private temp dirs, and manifests (store.c). */
#ifndef STRATA_RUNNER_STORE_H
#define STRATA_RUNNER_STORE_H

#include <json-c/json.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "tarball.h"

struct store {
	char root[PATH_MAX]; /* absolute */
	int lockfd;
};

struct tmpdir {
	char path[PATH_MAX];
	int fd; /* holds the flock that marks it in use */
};

/* snprintf that fails (ENAMETOOLONG in eb) instead of truncating. */
int path_fmt(char *buf, size_t len, struct img_err *eb, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* 64 lowercase hex digits: a layer id, safe as a path component. */
bool id_is_valid(const char *id);
/* strcmp for qsort/bsearch over an array of char *. */
int cmp_name(const void *a, const void *b);

/* create: make the layout and open the lock (for writers); otherwise
 * only resolve the root, which must exist. */
int store_open(struct store *s, const char *root, bool create, struct img_err *eb);
/* Opens the store for writing and clears crash debris. */
int store_open_rw(struct store *s, const char *root, struct img_err *eb);
void store_close(struct store *s);
int store_lock(struct store *s, int op, struct img_err *eb);
void store_unlock(struct store *s);
/* A private temp dir under tmp/, flock'ed while it lives. */
int tmp_create(struct store *s, struct tmpdir *t, struct img_err *eb);
void tmp_destroy(struct tmpdir *t);
int fsync_dir(const char *path, struct img_err *eb);

/* images/<name>.json, checked to hold a layers array. */
json_object *manifest_read(const char *root, const char *name, struct img_err *eb);
/* Its layer ids, validated; *ids (malloc'ed) points into m. */
int manifest_layers(json_object *m, const char *name, const char ***ids, size_t *n,
		    struct img_err *eb);
json_object *strings_array(const char *const *v);
/* config is taken over (may be NULL: an empty config). */
json_object *manifest_new(const char *name, const char *const *ids, json_object *config);
/* Atomically creates images/<name>.json: 0, -1, or 1 when it exists. */
int manifest_write(struct store *s, const char *name, json_object *m, struct img_err *eb);
bool manifest_exists(const char *root, const char *name);
/* Image names in images/, sorted; 0 or -errno. */
int list_names(const char *root, char ***out, size_t *count);

#endif

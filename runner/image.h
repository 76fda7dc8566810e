/* Images: content-addressed layer directories under $STRATA_ROOT, shared
 * between images, and manifests listing each image's layers.
 *
 *   $STRATA_ROOT/layers/<sha256>/diff/        a layer's content (read-only)
 *   $STRATA_ROOT/layers/<sha256>/layer.json   {"id":..,"size":..,"created":..}
 *   $STRATA_ROOT/images/<name>.json      {"name":..,"layers":[top..bottom ids],"created":..,
 *                                         "config":{"cmd":[..],"env":[..],"workdir":..}}
 *   $STRATA_ROOT/tmp/                    private build dirs; $STRATA_ROOT/lock
 * A layer's id is the sha256 of its canonical tar stream (libarchive pax,
 * sorted entries, no atime/ctime, directory mtimes zeroed, sorted xattrs;
 * see tarball.c), so equal content shares a directory.  Layers use the
 * overlay on-disk format for whiteouts (char 0:0 and
 * trusted.overlay.opaque), converted from OCI .wh. files at import; an
 * export is flattened, so it carries no whiteouts at all.
 *
 * Safe between concurrent processes (flock on $STRATA_ROOT/lock, atomic
 * renames), but not between threads: extraction changes the process's
 * working directory (libarchive's write_disk takes cwd-relative paths) and
 * umask for its duration, and restores them. */
#ifndef STRATA_RUNNER_IMAGE_H
#define STRATA_RUNNER_IMAGE_H

#include <stdbool.h>
#include <stddef.h>

struct image {
	char *name;
	char **layers;     /* absolute layer directories, top first */
	size_t nlayers;
	char **cmd;        /* default command, NULL-terminated (may be NULL) */
	char **env;        /* default environment, NULL-terminated (may be NULL) */
	char *workdir;     /* may be NULL */
	char *created;     /* "2024-01-31T12:00:00Z", may be NULL */
	unsigned long long size; /* bytes of file data in all layers */
};

/* All functions: 0 on success, -1 with a one-line message in err. */

/* Builds the embedded "busybox" image from the host's static busybox
 * (/bin/busybox from Debian busybox-static; $STRATA_BUSYBOX overrides the
 * path) if it does not exist yet.  Of concurrent first runs one builds it,
 * the others find it done. */
int image_ensure_busybox(const char *root, char *err, size_t errlen);

/* Imports a plain or gzip tar, or a directory, as image `name` (one layer).
 * Refuses absolute paths, "..", and links escaping the root, and a name
 * that exists already; leaves nothing behind on any error. */
int image_import(const char *root, const char *src, const char *name, char *err, size_t errlen);

/* Writes image `name` flattened (all layers merged, whiteouts applied) as a
 * tar to `dest` ("-" = stdout). */
int image_export(const char *root, const char *name, const char *dest, char *err, size_t errlen);

/* Exports a directory tree (e.g. a container's mounted root) as a tar;
 * mount points below it are listed but not entered. */
int image_export_dir(const char *dir, const char *dest, char *err, size_t errlen);

/* Makes a new image: `upper` (a container's upper dir, overlay-format
 * whiteouts) as a new top layer over the layers of image `base`, with
 * base's config.  strata-unionfs's meta dirs (.wh..wh.*) are skipped. */
int image_commit(const char *root, const char *upper, const char *base, const char *name,
		 char *err, size_t errlen);

/* Fills img (zeroed on error); every layer directory is checked to exist. */
int image_load(const char *root, const char *name, struct image *img, char *err, size_t errlen);
void image_free(struct image *img);

/* Whether image `name` exists (no message: "not found" is an answer). */
bool image_exists(const char *root, const char *name);

/* Removes image `name`; layers no other image uses are deleted too.  The
 * caller checks that no container uses it. */
int image_remove(const char *root, const char *name, char *err, size_t errlen);

/* Names of all images, sorted (malloc'ed, NULL-terminated; free with
 * image_names_free).  A root that does not exist yet has none. */
int image_list(const char *root, char ***names, char *err, size_t errlen);
void image_names_free(char **names);

/* Valid image/container name: [a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}. */
bool name_is_valid(const char *name);

#endif

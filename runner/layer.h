/* Internal to the image store: building one layer directory.
 *
 * A layer is built in a private directory DIR (under $STRATA_ROOT/tmp) as
 * DIR/diff, the content in overlay format, sealed (DIR/layer.json with its
 * id and size, everything synced), and then renamed by image.c to
 * $STRATA_ROOT/layers/<id>.  On error DIR holds debris the caller removes.
 *
 * Every writer extracts with libarchive's archive_write_disk, which only
 * takes paths relative to the working directory: while one runs, the
 * process's cwd is DIR/diff and its umask 022 (both restored afterwards),
 * so the store is not for use from several threads. */
#ifndef STRATA_RUNNER_LAYER_H
#define STRATA_RUNNER_LAYER_H

#include "tarball.h"

enum layer_source {
	/* An image from outside: OCI whiteouts (.wh.NAME, .wh..wh..opq)
	 * become overlay ones, the union's private xattrs are dropped. */
	LAYER_IMPORT,
	/* A container's upper dir: overlay markers are kept (user.overlay.*
	 * ones moved to trusted.overlay.*), aufs-format ones converted. */
	LAYER_COMMIT,
};

/* From a plain or compressed tar (a file, or a pipe such as /dev/stdin);
 * refuses absolute paths, "..", and hard links leaving the root, for a
 * file before anything is written. */
int layer_from_tar(const char *dir, const char *tar, struct img_err *eb);

/* From a directory tree (copied, never followed through symlinks). */
int layer_from_dir(const char *dir, const char *src, enum layer_source how, struct img_err *eb);

/* For layers made in code: entries are put one by one, as from a tar. */
struct layer_writer;
struct layer_writer *layer_writer_open(const char *dir, struct img_err *eb);
int layer_writer_put(struct layer_writer *lw, struct archive_entry *e, int datafd,
		     struct img_err *eb);
/* Finishes (ok) or abandons the layer, frees lw; -1 if finishing failed. */
int layer_writer_close(struct layer_writer *lw, bool ok, struct img_err *eb);

/* A minimal root filesystem around the static busybox at bb (refused
 * when it is dynamically linked): bin/busybox, a symlink per applet, /etc
 * basics, empty mount points. */
int layer_from_busybox(const char *dir, const char *bb, struct img_err *eb);

/* Computes the id (sha256 of the canonical tar of DIR/diff), writes
 * DIR/layer.json and syncs the filesystem. */
int layer_seal(const char *dir, char id[65], unsigned long long *size, struct img_err *eb);

#endif

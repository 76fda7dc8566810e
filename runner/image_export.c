/* Exporting: an image's layers merged, or a directory tree, as one tar
 * (to stdout, a device or pipe, or a regular file replaced atomically). */
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

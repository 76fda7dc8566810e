/* Where walked entries go: a tar file, or a sha256 of the tar stream
 * (a layer's id). */
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "log.h"
#include "tarball.h"

static int copy_data(struct archive *a, struct archive_entry *e, int fd, struct img_err *eb)
{
	static char buf[1 << 16]; /* the store is single-threaded (see image.h) */
	int64_t left = archive_entry_size(e);

	while (left > 0) {
		size_t want = left < (int64_t)sizeof(buf) ? (size_t)left : sizeof(buf);
		ssize_t n = read(fd, buf, want);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return img_fail(eb, "%s: read: %s", archive_entry_pathname(e),
					errno_name(errno));
		if (n == 0)
			break; /* it shrank while read: the writer pads the rest */
		if (archive_write_data(a, buf, (size_t)n) != n)
			return img_fail(eb, "%s: %s", archive_entry_pathname(e),
					archive_error_string(a));
		left -= n;
	}
	return 0;
}

int tw_write_entry(void *archive, struct archive_entry *e, int datafd, struct img_err *eb)
{
	struct archive *a = archive;

	if (archive_write_header(a, e) != ARCHIVE_OK)
		return img_fail(eb, "%s: %s", archive_entry_pathname(e), archive_error_string(a));
	if (datafd >= 0 && copy_data(a, e, datafd, eb) < 0)
		return -1;
	if (archive_write_finish_entry(a) != ARCHIVE_OK)
		return img_fail(eb, "%s: %s", archive_entry_pathname(e), archive_error_string(a));
	return 0;
}

struct archive *tw_tar_writer(int fd, struct img_err *eb)
{
	struct archive *a = archive_write_new();

	if (!a) {
		img_fail(eb, "libarchive: ENOMEM");
		return NULL;
	}
	if (archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
	    archive_write_open_fd(a, fd) != ARCHIVE_OK) {
		img_fail(eb, "tar writer: %s", archive_error_string(a));
		archive_write_free(a);
		return NULL;
	}
	return a;
}

int tw_close(struct archive *a, const char *what, struct img_err *eb)
{
	int r = 0;

	if (archive_write_close(a) != ARCHIVE_OK)
		r = img_fail(eb, "%s: %s", what, archive_error_string(a));
	archive_write_free(a);
	return r;
}

struct tw_digest {
	EVP_MD_CTX *md;
};

static la_ssize_t digest_write(struct archive *a, void *ctx, const void *buf, size_t len)
{
	struct tw_digest *dg = ctx;

	if (EVP_DigestUpdate(dg->md, buf, len) != 1) {
		archive_set_error(a, EIO, "sha256 update failed");
		return -1;
	}
	return (la_ssize_t)len;
}

static void digest_free(struct tw_digest *dg)
{
	if (dg)
		EVP_MD_CTX_free(dg->md);
	free(dg);
}

struct archive *tw_digest_writer(struct tw_digest **dgp, struct img_err *eb)
{
	struct tw_digest *dg = calloc(1, sizeof(*dg));
	struct archive *a = archive_write_new();

	if (!dg || !a || !(dg->md = EVP_MD_CTX_new())) {
		img_fail(eb, "sha256: ENOMEM");
		goto fail;
	}
	if (EVP_DigestInit_ex(dg->md, EVP_sha256(), NULL) != 1) {
		img_fail(eb, "sha256: EVP_DigestInit_ex failed");
		goto fail;
	}
	if (archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
	    archive_write_open(a, dg, NULL, digest_write, NULL) != ARCHIVE_OK) {
		img_fail(eb, "digest writer: %s", archive_error_string(a));
		goto fail;
	}
	*dgp = dg;
	return a;
fail:
	if (a)
		archive_write_free(a);
	digest_free(dg);
	return NULL;
}

void tw_digest_abort(struct archive *a, struct tw_digest *dg)
{
	archive_write_free(a);
	digest_free(dg);
}

int tw_digest_finish(struct archive *a, struct tw_digest *dg, char hex[65], struct img_err *eb)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;
	int r = tw_close(a, "digest", eb);

	if (!r && (EVP_DigestFinal_ex(dg->md, md, &len) != 1 || len != 32))
		r = img_fail(eb, "sha256: EVP_DigestFinal_ex failed");
	for (unsigned int i = 0; !r && i < len; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	digest_free(dg);
	return r;
}

/* strata-image: the image store's writers (import, export, commit, the
 * busybox image), which need libarchive and libcrypto.  strata runs it for
 * those commands (image_tool() in rootfs.c), so that strata itself, whose
 * start is on the path of every `strata run`, loads neither: with them and
 * the dozen libraries libarchive pulls in, starting took ~5 ms longer.
 *
 * Internal interface, one command per run:
 *   strata-image ROOT busybox
 *   strata-image ROOT import SRC NAME
 *   strata-image ROOT export NAME DEST
 *   strata-image ROOT export-dir DIR DEST
 *   strata-image ROOT commit UPPER BASE NAME
 * Exit 0, or 1 with the reason as one line on stderr (the caller prefixes
 * it); 2 on a usage error. */
#include <stdio.h>
#include <string.h>

#include "image.h"
#include "log.h"

#define ERRLEN 1024

static int usage(void)
{
	fprintf(stderr, "strata-image: internal helper of strata (see strata(1)); usage:\n"
			"  strata-image ROOT busybox | import SRC NAME | export NAME DEST |\n"
			"               export-dir DIR DEST | commit UPPER BASE NAME\n");
	return 2;
}

static int run(const char *root, const char *cmd, int nargs, char **a, char *err)
{
	if (!strcmp(cmd, "busybox") && nargs == 0)
		return image_ensure_busybox(root, err, ERRLEN);
	if (!strcmp(cmd, "import") && nargs == 2)
		return image_import(root, a[0], a[1], err, ERRLEN);
	if (!strcmp(cmd, "export") && nargs == 2)
		return image_export(root, a[0], a[1], err, ERRLEN);
	if (!strcmp(cmd, "export-dir") && nargs == 2)
		return image_export_dir(a[0], a[1], err, ERRLEN);
	if (!strcmp(cmd, "commit") && nargs == 3)
		return image_commit(root, a[0], a[1], a[2], err, ERRLEN);
	return -2;
}

int main(int argc, char **argv)
{
	char err[ERRLEN] = "";
	int r;

	log_init("strata-image", LOG_LVL_INFO);
	if (argc < 3)
		return usage();
	r = run(argv[1], argv[2], argc - 3, argv + 3, err);
	if (r == -2)
		return usage();
	if (r < 0) {
		fprintf(stderr, "%s\n", err[0] ? err : "failed");
		return 1;
	}
	return 0;
}

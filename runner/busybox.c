/* The embedded busybox image's one layer: a minimal root filesystem around
 * the host's static busybox, built entry by entry through a layer_writer
 * (layer.h), so the same binary always gives the same layer id. */
#include "layer.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"

/* A static binary has no program interpreter (PT_INTERP); static-pie
 * included. */
static int check_static(int fd, const char *bb, struct img_err *eb)
{
	unsigned char ident[EI_NIDENT];
	uint64_t phoff;
	uint16_t phnum, phentsize;

	if (pread(fd, ident, sizeof(ident), 0) != (ssize_t)sizeof(ident) ||
	    memcmp(ident, ELFMAG, SELFMAG))
		return img_fail(eb, "%s: not an ELF executable", bb);
	if (ident[EI_CLASS] == ELFCLASS64) {
		Elf64_Ehdr h;

		if (pread(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h))
			return img_fail(eb, "%s: truncated ELF header", bb);
		phoff = h.e_phoff, phnum = h.e_phnum, phentsize = h.e_phentsize;
	} else {
		Elf32_Ehdr h;

		if (pread(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h))
			return img_fail(eb, "%s: truncated ELF header", bb);
		phoff = h.e_phoff, phnum = h.e_phnum, phentsize = h.e_phentsize;
	}
	for (uint16_t i = 0; i < phnum; i++) {
		uint32_t type; /* p_type leads both Elf32_Phdr and Elf64_Phdr */

		if (pread(fd, &type, sizeof(type), (off_t)(phoff + (uint64_t)i * phentsize)) !=
		    (ssize_t)sizeof(type))
			return img_fail(eb, "%s: truncated ELF program headers", bb);
		if (type == PT_INTERP)
			return img_fail(eb, "%s is dynamically linked (Debian package busybox); "
					"install busybox-static", bb);
	}
	return 0;
}

/* Reads fd to its end into a malloc'ed string; 0 or -errno. */
static int read_all(int fd, char **out, size_t max)
{
	size_t len = 0, cap = 1 << 14;
	char *buf = malloc(cap);

	if (!buf)
		return -ENOMEM;
	for (;;) {
		ssize_t n;

		if (len + 1 == cap) {
			char *grown = cap < max ? realloc(buf, cap * 2) : NULL;

			if (!grown) {
				free(buf);
				return cap < max ? -ENOMEM : -EFBIG;
			}
			buf = grown;
			cap *= 2;
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int err = -errno;

			free(buf);
			return err;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	*out = buf;
	return 0;
}

/* Runs `bb --list-full` (one applet path a line); output into *out. */
static int run_list_full(const char *bb, char **out, struct img_err *eb)
{
	char *argv[] = { (char *)bb, "--list-full", NULL };
	posix_spawn_file_actions_t fa;
	int p[2], status, err;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) < 0)
		return img_fail(eb, "pipe: %s", errno_name(errno));
	err = posix_spawn_file_actions_init(&fa);
	if (!err) {
		err = posix_spawn_file_actions_adddup2(&fa, p[1], STDOUT_FILENO);
		if (!err)
			err = posix_spawn(&pid, bb, &fa, NULL, argv, environ);
		posix_spawn_file_actions_destroy(&fa);
	}
	close(p[1]);
	if (err) {
		close(p[0]);
		return img_fail(eb, "%s: spawn: %s", bb, errno_name(err));
	}
	err = read_all(p[0], out, 1 << 20);
	close(p[0]); /* a child still writing gets EPIPE */
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR) {
			if (!err)
				free(*out);
			return img_fail(eb, "%s: waitpid: %s", bb, errno_name(errno));
		}
	if (!err && (!WIFEXITED(status) || WEXITSTATUS(status))) {
		free(*out);
		return img_fail(eb, "%s --list-full: exit status %d", bb,
				WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
	}
	if (err)
		return img_fail(eb, "%s --list-full: read: %s", bb, errno_name(-err));
	return 0;
}

struct bbfs {
	struct layer_writer *lw;
	time_t mtime;		/* the binary's: the same busybox, the same layer id */
	char dirs[32][64];	/* directories written so far */
	size_t ndirs;
	struct img_err *eb;
};

static int bb_put(struct bbfs *b, const char *path, mode_t mode, const char *link, int fd,
		  int64_t size)
{
	struct archive_entry *e = archive_entry_new();
	char name[PATH_MAX];
	int r;

	if (!e)
		return img_fail(b->eb, "%s: ENOMEM", path);
	snprintf(name, sizeof(name), "./%s", path);
	archive_entry_copy_pathname(e, name);
	archive_entry_set_mode(e, mode);
	archive_entry_set_uid(e, 0);
	archive_entry_set_gid(e, 0);
	archive_entry_set_mtime(e, b->mtime, 0);
	archive_entry_set_size(e, size);
	if (link)
		archive_entry_copy_symlink(e, link);
	r = layer_writer_put(b->lw, e, fd, b->eb);
	archive_entry_free(e);
	return r;
}

/* Writes directory `path` once (its parents first). */
static int bb_dir(struct bbfs *b, const char *path, mode_t perm)
{
	const char *slash = strrchr(path, '/');

	for (size_t i = 0; i < b->ndirs; i++)
		if (!strcmp(b->dirs[i], path))
			return 0;
	if (b->ndirs == sizeof(b->dirs) / sizeof(b->dirs[0]) || strlen(path) >= sizeof(b->dirs[0]))
		return img_fail(b->eb, "busybox applet directory '%s': too many or too long", path);
	if (slash) {
		char parent[64];

		snprintf(parent, sizeof(parent), "%.*s", (int)(slash - path), path);
		if (bb_dir(b, parent, 0755) < 0)
			return -1;
	}
	strcpy(b->dirs[b->ndirs++], path);
	return bb_put(b, path, S_IFDIR | perm, NULL, -1, 0);
}

static int bb_file(struct bbfs *b, const char *path, const char *content)
{
	size_t len = strlen(content);
	int fd = memfd_create("strata-image-file", MFD_CLOEXEC), r;

	if (fd < 0)
		return img_fail(b->eb, "memfd_create: %s", errno_name(errno));
	if (write(fd, content, len) != (ssize_t)len || lseek(fd, 0, SEEK_SET) < 0) {
		r = img_fail(b->eb, "%s: memfd: %s", path, errno_name(errno ? errno : EIO));
		close(fd);
		return r;
	}
	r = bb_put(b, path, S_IFREG | 0644, NULL, fd, (int64_t)len);
	close(fd);
	return r;
}

/* An applet path as --list-full gives it: "bin/sh", "usr/bin/top". */
static bool applet_ok(const char *path)
{
	int depth = 0;

	if (!*path || path[0] == '/' || strlen(path) >= 64)
		return false;
	for (const char *p = path; *p; p++) {
		if (*p == '/' && (p[1] == '/' || p[1] == '.' || ++depth > 3))
			return false;
		if (*p <= ' ' || *p == 0x7f)
			return false;
	}
	return path[0] != '.';
}

/* "bin/sh" -> "busybox", "usr/bin/top" -> "../../bin/busybox", "linuxrc"
 * -> "bin/busybox": relative, so the links also resolve when the layer is
 * looked at from the host. */
static int bb_applet(struct bbfs *b, const char *path)
{
	const char *slash = strrchr(path, '/');
	char target[64] = "", parent[64];

	snprintf(parent, sizeof(parent), "%.*s", slash ? (int)(slash - path) : 0, path);
	if (!strcmp(parent, "bin")) {
		strcpy(target, "busybox");
	} else {
		for (const char *p = path; (p = strchr(p, '/')); p++)
			strcat(target, "../");
		strcat(target, "bin/busybox");
	}
	if (*parent && bb_dir(b, parent, 0755) < 0)
		return -1;
	return bb_put(b, path, S_IFLNK | 0777, target, -1, 0);
}

static int bb_tree(struct bbfs *b, int bbfd, const struct stat *st, char *applets)
{
	static const struct {
		const char *path;
		mode_t perm;
	} dirs[] = {
		{ "bin", 0755 }, { "dev", 0755 },   { "etc", 0755 },	{ "proc", 0555 },
		{ "root", 0700 }, { "sbin", 0755 }, { "sys", 0555 },	{ "tmp", 01777 },
		{ "usr", 0755 }, { "usr/bin", 0755 }, { "usr/sbin", 0755 }, { "var", 0755 },
	};
	static const struct {
		const char *path, *content;
	} files[] = {
		{ "etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"
				"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n" },
		{ "etc/group", "root:x:0:\nnobody:x:65534:\n" },
		/* Empty: the runner bind-mounts over them. */
		{ "etc/hostname", "" }, { "etc/hosts", "" }, { "etc/resolv.conf", "" },
	};
	char *save = NULL;
	int r = bb_put(b, "", S_IFDIR | 0755, NULL, -1, 0);

	for (size_t i = 0; !r && i < sizeof(dirs) / sizeof(dirs[0]); i++)
		r = bb_dir(b, dirs[i].path, dirs[i].perm);
	for (size_t i = 0; !r && i < sizeof(files) / sizeof(files[0]); i++)
		r = bb_file(b, files[i].path, files[i].content);
	if (!r)
		r = bb_put(b, "bin/busybox", S_IFREG | 0755, NULL, bbfd, st->st_size);
	for (char *line = strtok_r(applets, "\n", &save); !r && line;
	     line = strtok_r(NULL, "\n", &save)) {
		if (!strcmp(line, "bin/busybox"))
			continue; /* the binary itself */
		if (!applet_ok(line))
			return img_fail(b->eb, "busybox applet path '%s' refused", line);
		r = bb_applet(b, line);
	}
	return r;
}

int layer_from_busybox(const char *dir, const char *bb, struct img_err *eb)
{
	struct bbfs b = { .eb = eb };
	char *applets = NULL;
	struct stat st;
	int fd, r;

	fd = open(bb, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return img_fail(eb, "%s: ENOENT; install the Debian package busybox-static", bb);
		return img_fail(eb, "%s: %s", bb, errno_name(errno));
	}
	r = fstat(fd, &st) < 0 ? img_fail(eb, "%s: %s", bb, errno_name(errno)) : 0;
	if (!r && !S_ISREG(st.st_mode))
		r = img_fail(eb, "%s: not a regular file", bb);
	if (!r)
		r = check_static(fd, bb, eb);
	if (!r)
		r = run_list_full(bb, &applets, eb);
	if (!r) {
		b.mtime = st.st_mtime;
		b.lw = layer_writer_open(dir, eb);
		r = b.lw ? bb_tree(&b, fd, &st, applets) : -1;
		if (b.lw && layer_writer_close(b.lw, r == 0, eb) < 0)
			r = -1;
	}
	free(applets);
	close(fd);
	return r;
}

/* difftest: run one operation on one side and record every syscall's
 * return value and errno, and the data it returned; compare two records. */
#include "ops.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

static void rec(struct res *r, const char *label, long v)
{
	if (r->n == MAXREC)
		die("too many syscalls in one step");
	r->label[r->n] = label;
	r->rv[r->n] = v < 0 ? -1 : v;
	r->er[r->n] = v < 0 ? errno : 0;
	r->n++;
}

/* An fd: only success or failure is compared, not the number. */
static int rec_fd(struct res *r, const char *label, int fd)
{
	rec(r, label, fd < 0 ? -1 : 0);
	return fd;
}

static char *full(struct side *s, const char *p)
{
	return xasprintf("%s/%s", s->mnt, p);
}

/* ---- running one operation on one side ------------------------------- */

static void rec_val(struct res *r, const char *label, long v)
{
	if (r->n == MAXREC)
		die("too many syscalls in one step");
	r->label[r->n] = label;
	r->rv[r->n] = v;
	r->er[r->n] = 0;
	r->n++;
}

static void do_close(struct res *r, int fd)
{
	rec(r, "close", close(fd));
}

int cmp_strp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void exec_readdir(struct side *s, struct op *o, struct res *r)
{
	int fd = rec_fd(r, "open", openat(s->root, o->p1, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
	char **names = NULL;
	long *pos = NULL;
	size_t n = 0, cap = 0, i;
	struct dirent *de;
	DIR *d;

	if (fd < 0)
		return;
	d = fdopendir(fd);
	if (!d)
		die("fdopendir: %s", strerror(errno));
	for (;;) {
		long p = telldir(d);

		errno = 0;
		de = readdir(d);
		if (!de)
			break;
		if (n == cap) {
			cap = cap ? cap * 2 : 32;
			names = xrealloc(names, cap * sizeof(*names));
			pos = xrealloc(pos, cap * sizeof(*pos));
		}
		names[n] = xasprintf("%s %d", de->d_name, de->d_type);
		pos[n++] = p;
	}
	rec(r, "readdir", errno ? -1 : 0);
	if (o->kind == OP_SEEKDIR && n > 0) {
		/* seekdir to a telldir value resumes at the same name */
		size_t k = o->k % n;

		seekdir(d, pos[k]);
		for (i = k; i < n && i < k + 3; i++) {
			errno = 0;
			de = readdir(d);
			if (!de) {
				buf_printf(&r->out, "seekdir to entry %zu of %zu: readdir %s at %zu\n",
					   k, n, errname(errno), i);
				break;
			}
			if (strncmp(names[i], de->d_name, strlen(de->d_name)) != 0 ||
			    names[i][strlen(de->d_name)] != ' ') {
				buf_printf(&r->out, "seekdir to entry %zu of %zu gave \"%s\" at %zu, expected \"%s\"\n",
					   k, n, de->d_name, i, names[i]);
				break;
			}
		}
	}
	if (n)
		qsort(names, n, sizeof(*names), cmp_strp);
	for (i = 0; i < n; i++) {
		buf_printf(&r->out, "%s\n", names[i]);
		free(names[i]);
	}
	free(names);
	free(pos);
	rec(r, "closedir", closedir(d));
}

static void exec_xattr(struct side *s, struct op *o, struct res *r)
{
	char *f = full(s, o->p1);
	char *v = xmalloc(65536);
	ssize_t n;

	switch (o->kind) {
	case OP_SETXATTR:
		rec(r, "setxattr", o->k ? lsetxattr(f, o->xname, o->data, o->len, o->flags)
					: setxattr(f, o->xname, o->data, o->len, o->flags));
		break;
	case OP_GETXATTR:
		n = o->k ? lgetxattr(f, o->xname, o->len ? v : NULL, o->len)
			 : getxattr(f, o->xname, o->len ? v : NULL, o->len);
		rec(r, "getxattr", n);
		if (n > 0 && o->len)
			buf_add(&r->out, v, (size_t)n);
		break;
	case OP_RMXATTR:
		rec(r, "removexattr", o->k ? lremovexattr(f, o->xname) : removexattr(f, o->xname));
		break;
	case OP_LISTXATTR: {
		char *names[1024];
		size_t k = 0, i;
		ssize_t q = 0;

		if (!o->len) {
			/* The size query may overestimate (overlayfs counts
			 * its hidden names): only require it to be enough. */
			q = o->k ? llistxattr(f, NULL, 0) : listxattr(f, NULL, 0);
			rec(r, "listxattr(NULL)", q < 0 ? -1 : 0);
		}
		n = o->k ? llistxattr(f, v, 65536) : listxattr(f, v, 65536);
		rec(r, "listxattr", n < 0 ? -1 : 0);
		if (n < 0)
			break;
		if (!o->len && q >= 0)
			rec_val(r, "size_query_is_enough", q >= n);
		for (i = 0; i < (size_t)n && k < 1024; i += strlen(v + i) + 1)
			names[k++] = v + i;
		qsort(names, k, sizeof(*names), cmp_strp);
		for (i = 0; i < k; i++)
			buf_printf(&r->out, "%s\n", names[i]);
		break;
	}
	}
	free(v);
	free(f);
}

static void out_stat(struct res *r, const struct stat *st)
{
	buf_printf(&r->out, "mode %06o size %lld uid %u gid %u", st->st_mode,
		   (long long)st->st_size, st->st_uid, st->st_gid);
	if (!S_ISDIR(st->st_mode))
		buf_printf(&r->out, " nlink %lu", (unsigned long)st->st_nlink);
	buf_add(&r->out, "\n", 1);
}

void exec_op(struct side *s, struct op *o, struct res *r)
{
	const int of = O_CLOEXEC | O_NONBLOCK;
	unsigned char *v;
	struct stat st;
	ssize_t n;
	size_t i;
	int fd;

	switch (o->kind) {
	case OP_CREATE:
		fd = rec_fd(r, "open", openat(s->root, o->p1, O_WRONLY | O_CREAT | of | o->flags, o->mode));
		if (fd < 0)
			break;
		if (o->len)
			rec(r, "write", write(fd, o->data, o->len));
		do_close(r, fd);
		break;
	case OP_WRITE:
	case OP_APPEND:
	case OP_FALLOCATE:
		fd = rec_fd(r, "open", openat(s->root, o->p1,
			(o->kind == OP_APPEND ? O_WRONLY | O_APPEND :
			 o->kind == OP_FALLOCATE ? O_WRONLY : o->flags) | of));
		if (fd < 0)
			break;
		if (o->kind == OP_WRITE)
			rec(r, "pwrite", pwrite(fd, o->data, o->len, o->off));
		else if (o->kind == OP_APPEND)
			rec(r, "write", write(fd, o->data, o->len));
		else
			rec(r, "fallocate", fallocate(fd, o->flags, o->off, (off_t)o->len));
		do_close(r, fd);
		break;
	case OP_TRUNCATE:
		if (!o->flags) {
			char *f = full(s, o->p1);

			rec(r, "truncate", truncate(f, o->off));
			free(f);
			break;
		}
		fd = rec_fd(r, "open", openat(s->root, o->p1, O_WRONLY | of));
		if (fd < 0)
			break;
		rec(r, "ftruncate", ftruncate(fd, o->off));
		do_close(r, fd);
		break;
	case OP_OTRUNC:
		fd = rec_fd(r, "open", openat(s->root, o->p1, o->flags | O_TRUNC | of));
		if (fd >= 0)
			do_close(r, fd);
		break;
	case OP_READ:
		fd = rec_fd(r, "open", openat(s->root, o->p1, O_RDONLY | of));
		if (fd < 0)
			break;
		v = xmalloc(o->len);
		n = pread(fd, v, o->len, o->off);
		rec(r, "pread", n);
		if (n > 0)
			buf_add(&r->out, v, (size_t)n);
		free(v);
		do_close(r, fd);
		break;
	case OP_RENAME:
		rec(r, "renameat2", renameat2(s->root, o->p1, s->root, o->p2, (unsigned int)o->flags));
		break;
	case OP_UNLINK:
		rec(r, "unlink", unlinkat(s->root, o->p1, 0));
		break;
	case OP_MKDIR:
		rec(r, "mkdir", mkdirat(s->root, o->p1, o->mode));
		break;
	case OP_RMDIR:
		rec(r, "rmdir", unlinkat(s->root, o->p1, AT_REMOVEDIR));
		break;
	case OP_RMTREE:
		for (i = 0; i < o->nlist; i++) {
			bool dir = o->list[i][0] == 'd';

			rec(r, dir ? "rmdir" : "unlink",
			    unlinkat(s->root, o->list[i] + 1, dir ? AT_REMOVEDIR : 0));
		}
		break;
	case OP_LINK:
		rec(r, "link", linkat(s->root, o->p1, s->root, o->p2, 0));
		break;
	case OP_SYMLINK:
		rec(r, "symlink", symlinkat(o->target, s->root, o->p1));
		break;
	case OP_MKFIFO:
		rec(r, "mkfifo", mknodat(s->root, o->p1, S_IFIFO | 0644, 0));
		break;
	case OP_CHMOD:
		rec(r, "chmod", fchmodat(s->root, o->p1, o->mode, 0));
		break;
	case OP_CHOWN:
		rec(r, "chown", fchownat(s->root, o->p1, o->uid, o->gid, o->flags));
		break;
	case OP_SETXATTR:
	case OP_GETXATTR:
	case OP_RMXATTR:
	case OP_LISTXATTR:
		exec_xattr(s, o, r);
		break;
	case OP_READDIR:
	case OP_SEEKDIR:
		exec_readdir(s, o, r);
		break;
	case OP_STAT:
		rec(r, "stat", fstatat(s->root, o->p1, &st, 0));
		if (r->er[0] == 0)
			out_stat(r, &st);
		break;
	case OP_HOLD:
		if (s->held[o->slot] >= 0)
			do_close(r, s->held[o->slot]);
		s->held[o->slot] = rec_fd(r, "open", openat(s->root, o->p1, o->flags | of));
		break;
	case OP_HELD_READ:
		v = xmalloc(o->len);
		n = pread(s->held[o->slot], v, o->len, o->off);
		rec(r, "pread", n);
		if (n > 0)
			buf_add(&r->out, v, (size_t)n);
		free(v);
		rec(r, "fstat", fstat(s->held[o->slot], &st));
		if (r->er[r->n - 1] == 0)
			buf_printf(&r->out, "\nfstat: mode %06o size %lld\n", st.st_mode,
				   (long long)st.st_size);
		break;
	case OP_HELD_WRITE:
		rec(r, "pwrite", pwrite(s->held[o->slot], o->data, o->len, o->off));
		break;
	case OP_RELEASE:
		do_close(r, s->held[o->slot]);
		s->held[o->slot] = -1;
		break;
	}
}

/* ---- comparing results ----------------------------------------------- */

char *res_desc(struct res *r, bool with_out)
{
	struct buf b = { 0 };
	int i;

	for (i = 0; i < r->n; i++) {
		if (i > 8 && r->n > 12 && i < r->n - 3) {
			if (i == 9)
				buf_printf(&b, " ...");
			continue;
		}
		buf_printf(&b, "%s%s=%ld", i ? " " : "", r->label[i], r->rv[i]);
		if (r->er[i])
			buf_printf(&b, " %s", errname(r->er[i]));
	}
	if (with_out && r->out.len) {
		size_t k;

		buf_printf(&b, " data[%zu]=\"", r->out.len);
		for (k = 0; k < r->out.len && k < 120; k++) {
			unsigned char ch = (unsigned char)r->out.p[k];

			if (ch >= 0x20 && ch < 0x7f && ch != '"')
				buf_add(&b, &r->out.p[k], 1);
			else
				buf_printf(&b, "\\x%02x", ch);
		}
		buf_printf(&b, "%s\"", r->out.len > 120 ? "..." : "");
	}
	buf_str(&b);
	return b.p;
}

void compare_res(struct ctx *c, const char *path, struct res *a, struct res *b)
{
	int i;

	if (a->n != b->n)
		goto bad;
	for (i = 0; i < a->n; i++)
		if (a->rv[i] != b->rv[i] || a->er[i] != b->er[i] ||
		    strcmp(a->label[i], b->label[i]) != 0)
			goto bad;
	if (a->out.len != b->out.len || memcmp(buf_str(&a->out), buf_str(&b->out), a->out.len))
		goto bad_out;
	return;
bad:
	mismatch(c, path, res_desc(a, false), res_desc(b, false));
bad_out:
	for (i = 0; (size_t)i < a->out.len && (size_t)i < b->out.len &&
		    a->out.p[i] == b->out.p[i]; i++)
		;
	if (i > 40) {
		/* show where the outputs start to differ */
		struct res ta = *a, tb = *b;

		ta.out.p = a->out.p + i - 20;
		ta.out.len = a->out.len - (size_t)i + 20;
		tb.out.p = b->out.p + i - 20;
		tb.out.len = b->out.len - (size_t)i + 20;
		mismatch(c, path, xasprintf("%s (from offset %d)", res_desc(&ta, true), i - 20),
			 xasprintf("%s (from offset %d)", res_desc(&tb, true), i - 20));
	}
	mismatch(c, path, res_desc(a, true), res_desc(b, true));
}


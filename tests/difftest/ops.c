/* difftest: the random operations.
 *
 * Each step picks an operation and its arguments from the PRNG and from
 * side A's current tree, runs it on both sides through the same relative
 * path, compares every syscall's return value and errno (and any data it
 * returned), then compares the paths it touched and their parents. */
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

static const struct {
	const char *name;
	unsigned int weight, flags;
} optab[OP_NR] = {
	[OP_CREATE] = { "create", 10, GROWS },
	[OP_WRITE] = { "write", 12, 0 },
	[OP_APPEND] = { "append", 3, 0 },
	[OP_TRUNCATE] = { "truncate", 6, 0 },
	[OP_OTRUNC] = { "open_trunc", 4, 0 },
	[OP_READ] = { "read", 3, READONLY },
	[OP_RENAME] = { "rename", 14, 0 },
	[OP_UNLINK] = { "unlink", 7, SHRINKS },
	[OP_MKDIR] = { "mkdir", 6, GROWS },
	[OP_RMDIR] = { "rmdir", 5, SHRINKS },
	[OP_RMTREE] = { "rmtree", 1, SHRINKS },
	[OP_LINK] = { "link", 5, GROWS },
	[OP_SYMLINK] = { "symlink", 4, GROWS },
	[OP_MKFIFO] = { "mkfifo", 1, GROWS },
	[OP_CHMOD] = { "chmod", 5, 0 },
	[OP_CHOWN] = { "chown", 2, 0 },
	[OP_SETXATTR] = { "setxattr", 5, 0 },
	[OP_GETXATTR] = { "getxattr", 2, READONLY },
	[OP_RMXATTR] = { "removexattr", 2, 0 },
	[OP_LISTXATTR] = { "listxattr", 2, READONLY },
	[OP_READDIR] = { "readdir", 4, READONLY },
	[OP_SEEKDIR] = { "seekdir", 1, READONLY },
	[OP_STAT] = { "stat", 2, READONLY },
	[OP_HOLD] = { "hold", 2, 0 },
	[OP_HELD_READ] = { "held_read", 3, 0 },
	[OP_HELD_WRITE] = { "held_write", 1, 0 },
	[OP_RELEASE] = { "release", 1, 0 },
	[OP_FALLOCATE] = { "fallocate", 2, 0 },
};

int op_count(void)
{
	return OP_NR;
}

const char *op_name(int op)
{
	return optab[op].name;
}

int op_lookup(const char *name)
{
	int i;

	for (i = 0; i < OP_NR; i++)
		if (strcmp(optab[i].name, name) == 0)
			return i;
	return -1;
}

/* ---- picking arguments from A's tree --------------------------------- */

static const char *pick_existing(struct ctx *c, mode_t type, unsigned int pct,
				 bool root_ok)
{
	size_t i, n = 0, start;

	if (type && rng_pct(&c->rng, pct)) {
		for (i = 0; i < c->nents; i++)
			if (c->ents[i].type == type && (root_ok || i > 0))
				n++;
		if (n) {
			n = rng_below(&c->rng, n);
			for (i = 0; i < c->nents; i++)
				if (c->ents[i].type == type && (root_ok || i > 0) && n-- == 0)
					return c->ents[i].path;
		}
	}
	start = root_ok ? 0 : 1;	/* ents[0] is "." */
	if (c->nents <= start)
		return ".";
	return c->ents[start + rng_below(&c->rng, c->nents - start)].path;
}

static char *pick_new(struct ctx *c)
{
	const char *dir = pick_existing(c, S_IFDIR, 90, true);

	return path_join(dir, pick_name(&c->rng));
}

/* pct_new% a fresh name in some directory, else an existing path. */
static char *pick_path(struct ctx *c, unsigned int pct_new, mode_t type,
		       unsigned int pct_type)
{
	if (rng_pct(&c->rng, pct_new))
		return pick_new(c);
	return xstrdup(pick_existing(c, type, pct_type, false));
}

static off_t pick_off(struct ctx *c)
{
	switch (rng_below(&c->rng, 6)) {
	case 0: return 0;
	case 1: return (off_t)rng_below(&c->rng, 256);
	case 2: return (off_t)rng_below(&c->rng, 8192);
	case 3: return (off_t)rng_below(&c->rng, 100000);
	case 4: return (off_t)rng_below(&c->rng, 1 << 20);
	default: return (off_t)rng_below(&c->rng, 64) * 4096;
	}
}

static const char *pick_xname(struct ctx *c)
{
	static const char *const xn[] = { "user.a", "user.b", "user.c", "user.d" };

	return xn[rng_below(&c->rng, 4)];
}

static int held_slot(struct ctx *c, bool used)
{
	int i, cand[NHELD], n = 0;

	for (i = 0; i < NHELD; i++)
		if ((c->held_path[i] != NULL) == used)
			cand[n++] = i;
	return n ? cand[rng_below(&c->rng, (uint64_t)n)] : -1;
}

static int pick_kind(struct ctx *c)
{
	unsigned int w[OP_NR], total = 0, x;
	int i;

	for (i = 0; i < OP_NR; i++) {
		w[i] = (c->disabled & (1u << i)) ? 0 : optab[i].weight * 4;
		if (c->nents > 250 && (optab[i].flags & GROWS))
			w[i] /= 4;
		if (c->nents > 250 && (optab[i].flags & SHRINKS))
			w[i] *= 2;
		if (c->nents < 30 && (optab[i].flags & SHRINKS))
			w[i] /= 4;
		total += w[i];
	}
	if (!total)
		die("every operation is disabled");
	x = (unsigned int)rng_below(&c->rng, total);
	for (i = 0; i < OP_NR; i++) {
		if (x < w[i])
			return i;
		x -= w[i];
	}
	return OP_NR - 1;
}

static const char *rename_flags(int f)
{
	return f == RENAME_NOREPLACE ? ", NOREPLACE" : f == RENAME_EXCHANGE ? ", EXCHANGE" : "";
}

void op_make_data(struct op *o)
{
	struct rng sub;

	rng_seed(&sub, o->dseed);
	free(o->data);
	o->data = xmalloc(o->len);
	rng_fill(&sub, o->data, o->len);
}

/* The data written comes from its own seed, so a recorded operation
 * (--record/--replay) can be replayed without the generator's state. */
static void pick_data(struct ctx *c, struct op *o, size_t max)
{
	unsigned int k = (unsigned int)rng_below(&c->rng, 100);

	o->len = k < 10 ? 0 : k < 80 ? rng_below(&c->rng, 4096) :
		 k < 95 ? rng_below(&c->rng, 70000) : rng_below(&c->rng, max);
	o->dseed = rng_next(&c->rng);
	op_make_data(o);
}

static int cmp_ent_path(const void *key, const void *e)
{
	return strcmp(key, ((const struct entry *)e)->path);
}

/* Kernel overlayfs moves a directory by storing its old path, absolute from
 * the root, in a redirect xattr of at most redirect_max (256) bytes, and
 * answers EXDEV above that.  strata-unionfs has no such limit, so renames
 * of directories with such long paths are not generated. */
static bool redirect_too_long(struct ctx *c, const char *path)
{
	const struct entry *e = bsearch(path, c->ents, c->nents, sizeof(*c->ents),
					cmp_ent_path);

	return e && e->type == S_IFDIR && strlen(path) + 1 > 256;
}

static void gen_op(struct ctx *c, struct op *o)
{
	struct rng *r = &c->rng;
	size_t i;

	memset(o, 0, sizeof(*o));
	o->kind = pick_kind(c);
	o->umask = 022;
	switch (o->kind) {
	case OP_CREATE:
		o->p1 = pick_path(c, 65, S_IFREG, 70);
		o->flags = (rng_pct(r, 40) ? O_EXCL : 0) | (rng_pct(r, 20) ? O_TRUNC : 0);
		o->mode = pick_file_mode(r);
		o->umask = rng_pct(r, 70) ? 022 : rng_pct(r, 50) ? 0 : 077;
		pick_data(c, o, 200000);
		break;
	case OP_WRITE:
	case OP_APPEND:
		o->p1 = pick_path(c, 5, S_IFREG, 85);
		o->flags = rng_pct(r, 50) ? O_RDWR : O_WRONLY;
		o->off = pick_off(c);
		pick_data(c, o, 300000);
		break;
	case OP_TRUNCATE:
		o->p1 = pick_path(c, 5, S_IFREG, 85);
		o->off = rng_pct(r, 25) ? 0 : pick_off(c);
		o->flags = rng_pct(r, 50);	/* 1: ftruncate on an fd */
		break;
	case OP_OTRUNC:
		o->p1 = pick_path(c, 5, S_IFREG, 85);
		o->flags = rng_pct(r, 85) ? O_WRONLY : O_RDONLY;
		break;
	case OP_READ:
		o->p1 = pick_path(c, 5, S_IFREG, 85);
		o->off = rng_pct(r, 50) ? 0 : pick_off(c);
		o->len = rng_pct(r, 50) ? 65536 : rng_below(r, 4096);
		break;
	case OP_RENAME: {
		unsigned int k = (unsigned int)rng_below(r, 100);

		o->p1 = xstrdup(pick_existing(c, S_IFDIR, 35, false));
		if (k < 45)
			o->p2 = xstrdup(pick_existing(c, rng_pct(r, 50) ? (mode_t)0 : S_IFDIR, 50, false));
		else if (k < 92)
			o->p2 = pick_new(c);
		else
			o->p2 = path_join(o->p1, pick_name(r));	/* into itself */
		k = (unsigned int)rng_below(r, 100);
		o->flags = k < 70 ? 0 : k < 90 ? RENAME_NOREPLACE : RENAME_EXCHANGE;
		if ((o->flags == RENAME_NOREPLACE && (avoid & AVOID_NOREPLACE)) ||
		    (o->flags == RENAME_EXCHANGE && (avoid & AVOID_EXCHANGE)))
			o->flags = 0;
		if (redirect_too_long(c, o->p1) ||
		    (o->flags == RENAME_EXCHANGE && redirect_too_long(c, o->p2))) {
			/* overlayfs: EXDEV (no copy-up of a whole tree) */
			free(o->p1);
			free(o->p2);
			o->p2 = NULL;
			o->kind = OP_STAT;
			o->p1 = xstrdup(pick_existing(c, 0, 0, true));
		}
		break;
	}
	case OP_UNLINK:
		o->p1 = pick_path(c, 8, S_IFREG, 70);
		break;
	case OP_MKDIR:
		o->p1 = pick_path(c, 85, 0, 0);
		o->mode = pick_dir_mode(r);
		o->umask = rng_pct(r, 80) ? 022 : 0;
		break;
	case OP_RMDIR:
		o->p1 = pick_path(c, 8, S_IFDIR, 85);
		break;
	case OP_RMTREE:
		/* rm -r: children before parents (reverse path order) */
		o->p1 = xstrdup(pick_existing(c, S_IFDIR, 90, false));
		o->list = xmalloc(MAXREC * sizeof(*o->list));
		for (i = c->nents; i-- > 0 && o->nlist < MAXREC - 1;)
			if (path_is_under(c->ents[i].path, o->p1)) {
				o->list[o->nlist++] = xasprintf("%c%s",
					c->ents[i].type == S_IFDIR ? 'd' : '-', c->ents[i].path);
			}
		break;
	case OP_LINK:
		o->p1 = xstrdup(pick_existing(c, S_IFREG, 85, false));
		o->p2 = pick_path(c, 85, 0, 0);
		break;
	case OP_SYMLINK:
		o->p1 = pick_path(c, 85, 0, 0);
		o->target = pick_target(r);
		break;
	case OP_MKFIFO:
		o->p1 = pick_path(c, 85, 0, 0);
		break;
	case OP_CHMOD:
		o->p1 = xstrdup(pick_existing(c, 0, 0, true));
		o->mode = rng_pct(r, 50) ? pick_file_mode(r) : pick_dir_mode(r);
		break;
	case OP_CHOWN: {
		static const unsigned int ids[] = { 0, 1000, 65534, (unsigned int)-1 };

		o->p1 = xstrdup(pick_existing(c, 0, 0, true));
		o->uid = ids[rng_below(r, 4)];
		o->gid = ids[rng_below(r, 4)];
		o->flags = rng_pct(r, 50) ? AT_SYMLINK_NOFOLLOW : 0;
		break;
	}
	case OP_SETXATTR:
	case OP_GETXATTR:
	case OP_RMXATTR:
	case OP_LISTXATTR:
		o->p1 = xstrdup(pick_existing(c, 0, 0, true));
		snprintf(o->xname, sizeof(o->xname), "%s", pick_xname(c));
		o->k = rng_pct(r, 30);	/* 1: l*xattr, don't follow */
		if (o->kind == OP_SETXATTR) {
			o->flags = rng_pct(r, 60) ? 0 : rng_pct(r, 50) ? XATTR_CREATE : XATTR_REPLACE;
			o->len = rng_pct(r, 90) ? rng_below(r, 100) : rng_below(r, 3000);
			o->dseed = rng_next(r);
			op_make_data(o);
		} else {
			o->len = rng_pct(r, 10) ? 0 : 65536;	/* 0: size query */
		}
		break;
	case OP_READDIR:
	case OP_SEEKDIR:
		o->p1 = xstrdup(pick_existing(c, S_IFDIR, 80, true));
		o->k = (unsigned long)rng_next(r);
		break;
	case OP_STAT:
		o->p1 = pick_path(c, 10, 0, 0);
		break;
	case OP_HOLD:
		o->slot = held_slot(c, false);
		if (o->slot < 0)
			o->slot = (int)rng_below(r, NHELD);
		o->p1 = pick_path(c, 3, S_IFREG, 85);
		o->flags = rng_pct(r, 70) ? O_RDONLY : O_RDWR;
		break;
	case OP_HELD_READ:
	case OP_HELD_WRITE:
	case OP_RELEASE:
		o->slot = held_slot(c, true);
		if (o->slot < 0) {
			o->kind = OP_STAT;
			o->p1 = xstrdup(pick_existing(c, 0, 0, true));
			break;
		}
		o->off = rng_pct(r, 50) ? 0 : pick_off(c);
		if (o->kind == OP_HELD_WRITE)
			pick_data(c, o, 100000);
		else
			o->len = 65536;
		break;
	case OP_FALLOCATE: {
		static const int modes[] = {
			0, FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			FALLOC_FL_ZERO_RANGE,
		};

		o->p1 = pick_path(c, 3, S_IFREG, 90);
		o->flags = modes[rng_below(r, 4)];
		o->off = pick_off(c);
		o->len = 1 + rng_below(r, 100000);
		break;
	}
	default:
		die("bad op %d", o->kind);
	}
}

static char *describe_op(struct ctx *c, struct op *o)
{
	const char *held = o->slot >= 0 && o->slot < NHELD && c->held_path[o->slot] ?
			   c->held_path[o->slot] : "-";

	switch (o->kind) {
	case OP_CREATE:
		return xasprintf("create(%s, %s%s%04o, umask %03o, %zu bytes)", o->p1,
				 o->flags & O_EXCL ? "O_EXCL, " : "",
				 o->flags & O_TRUNC ? "O_TRUNC, " : "", o->mode, o->umask, o->len);
	case OP_WRITE:
		return xasprintf("write(%s, %s, off %lld, %zu bytes)", o->p1,
				 o->flags == O_RDWR ? "O_RDWR" : "O_WRONLY",
				 (long long)o->off, o->len);
	case OP_APPEND:
		return xasprintf("append(%s, %zu bytes)", o->p1, o->len);
	case OP_TRUNCATE:
		return xasprintf("%s(%s, %lld)", o->flags ? "ftruncate" : "truncate",
				 o->p1, (long long)o->off);
	case OP_OTRUNC:
		return xasprintf("open(%s, %s|O_TRUNC)", o->p1,
				 o->flags == O_RDONLY ? "O_RDONLY" : "O_WRONLY");
	case OP_READ:
		return xasprintf("read(%s, off %lld, %zu)", o->p1, (long long)o->off, o->len);
	case OP_RENAME:
		return xasprintf("rename(%s -> %s%s)", o->p1, o->p2, rename_flags(o->flags));
	case OP_UNLINK:
	case OP_RMDIR:
	case OP_MKFIFO:
	case OP_STAT:
	case OP_READDIR:
	case OP_SEEKDIR:
		return xasprintf("%s(%s)", optab[o->kind].name, o->p1);
	case OP_MKDIR:
		return xasprintf("mkdir(%s, %04o, umask %03o)", o->p1, o->mode, o->umask);
	case OP_RMTREE:
		return xasprintf("rmtree(%s, %zu entries)", o->p1, o->nlist);
	case OP_LINK:
		return xasprintf("link(%s -> %s)", o->p1, o->p2);
	case OP_SYMLINK:
		return xasprintf("symlink(%s -> \"%s\")", o->p1, o->target);
	case OP_CHMOD:
		return xasprintf("chmod(%s, %04o)", o->p1, o->mode);
	case OP_CHOWN:
		return xasprintf("%s(%s, %d, %d)", o->flags ? "lchown" : "chown",
				 o->p1, (int)o->uid, (int)o->gid);
	case OP_SETXATTR:
		return xasprintf("%ssetxattr(%s, %s, %zu bytes%s)", o->k ? "l" : "",
				 o->p1, o->xname, o->len,
				 o->flags == XATTR_CREATE ? ", CREATE" :
				 o->flags == XATTR_REPLACE ? ", REPLACE" : "");
	case OP_GETXATTR:
	case OP_RMXATTR:
	case OP_LISTXATTR:
		return xasprintf("%s%s(%s, %s)", o->k ? "l" : "", optab[o->kind].name,
				 o->p1, o->kind == OP_LISTXATTR ? "" : o->xname);
	case OP_HOLD:
		return xasprintf("hold[%d](%s, %s)", o->slot, o->p1,
				 o->flags == O_RDONLY ? "O_RDONLY" : "O_RDWR");
	case OP_HELD_READ:
	case OP_HELD_WRITE:
	case OP_RELEASE:
		return xasprintf("%s[%d](%s, off %lld, %zu)", optab[o->kind].name,
				 o->slot, held, (long long)o->off, o->len);
	case OP_FALLOCATE:
		return xasprintf("fallocate(%s, mode %#x, off %lld, len %zu)", o->p1,
				 o->flags, (long long)o->off, o->len);
	}
	die("bad op %d", o->kind);
}

void op_free(struct op *o)
{
	size_t i;

	free(o->p1);
	free(o->p2);
	free(o->target);
	free(o->data);
	for (i = 0; i < o->nlist; i++)
		free(o->list[i]);
	free(o->list);
}

/* ---- read-only operations leave the upper layer alone ---------------- */

static void upper_walk(int dfd, const char *rel, struct buf *b, int depth)
{
	struct dirent *de;
	char **names = NULL;
	size_t n = 0, i;
	int fd = openat(dfd, rel, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	DIR *d;

	if (fd < 0)
		die("open upper %s: %s", rel, strerror(errno));
	d = fdopendir(fd);
	if (!d)
		die("fdopendir: %s", strerror(errno));
	while ((errno = 0, de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		names = xrealloc(names, (n + 1) * sizeof(*names));
		names[n++] = path_join(rel, de->d_name);
	}
	if (errno)
		die("readdir upper %s: %s", rel, strerror(errno));
	if (closedir(d) < 0)
		die("closedir: %s", strerror(errno));
	if (n)
		qsort(names, n, sizeof(*names), cmp_strp);
	for (i = 0; i < n; i++) {
		struct stat st;

		if (fstatat(dfd, names[i], &st, AT_SYMLINK_NOFOLLOW) < 0)
			die("lstat upper %s: %s", names[i], strerror(errno));
		buf_printf(b, "%s %06o %lld\n", names[i], st.st_mode,
			   S_ISDIR(st.st_mode) ? 0LL : (long long)st.st_size);
		if (S_ISDIR(st.st_mode) && depth < 64)
			upper_walk(dfd, names[i], b, depth + 1);
		free(names[i]);
	}
	free(names);
}

static void upper_print(struct side *s, struct buf *b)
{
	char *u = xasprintf("%s/u", s->base);
	int fd = open(u, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		die("open %s: %s", u, strerror(errno));
	buf_reset(b);
	upper_walk(fd, ".", b, 0);
	if (close(fd) < 0)
		die("close: %s", strerror(errno));
	free(u);
}

static const char *first_diff_line(struct buf *x, struct buf *y)
{
	const char *p = buf_str(x), *q = buf_str(y), *line = p;

	while (*p && *p == *q) {
		if (*p == '\n')
			line = p + 1;
		p++;
		q++;
	}
	return xasprintf("%.*s", (int)strcspn(line, "\n"), line);
}

static void check_upper(struct ctx *c, const char *path, struct buf *pre)
{
	struct buf post[2] = { { 0 }, { 0 } };
	bool ok[2];
	char *d[2];
	int i;

	upper_print(&c->a, &post[0]);
	upper_print(&c->b, &post[1]);
	for (i = 0; i < 2; i++) {
		ok[i] = strcmp(buf_str(&pre[i]), buf_str(&post[i])) == 0;
		d[i] = ok[i] ? xstrdup("upper untouched") :
		       xasprintf("read-only op changed upper near \"%s\"",
				 first_diff_line(&post[i], &pre[i]));
	}
	if (!ok[0] || !ok[1])
		mismatch(c, path, d[0], d[1]);
	free(d[0]);
	free(d[1]);
	buf_free(&post[0]);
	buf_free(&post[1]);
}

/* ---- one step --------------------------------------------------------- */

static void touched(struct ctx *c, const char *p)
{
	char *parent;

	if (!p)
		return;
	compare_path(c, p, true);
	parent = path_parent(p);
	compare_path(c, parent, true);
	free(parent);
}

void run_step(struct ctx *c)
{
	struct res ra = { 0 }, rb = { 0 };
	struct buf pre[2] = { { 0 }, { 0 } };
	bool ro;
	mode_t old;
	struct op o;

	if (c->replay) {
		if (c->ireplay == c->nreplay)
			die("replay: no operations left");
		o = c->replay[c->ireplay];
		memset(&c->replay[c->ireplay++], 0, sizeof(o));
	} else {
		scan_tree(c);
		gen_op(c, &o);
	}
	if (c->record)
		op_write(c->record, &o);
	free(c->opdesc);
	c->opdesc = describe_op(c, &o);
	ro = optab[o.kind].flags & READONLY;
	if (c->verbose)
		printf("step %ld: %s\n", c->step, c->opdesc);
	if (ro) {
		upper_print(&c->a, &pre[0]);
		upper_print(&c->b, &pre[1]);
	}
	progress++;
	old = umask(o.umask);
	exec_op(&c->a, &o, &ra);
	progress++;
	exec_op(&c->b, &o, &rb);
	progress++;
	umask(old);
	if (c->verbose) {
		char *d = res_desc(&ra, true);

		printf("    -> %s\n", d);
		free(d);
	}
	compare_res(c, o.p1 ? o.p1 : c->held_path[o.slot], &ra, &rb);

	if (o.kind == OP_HOLD) {
		free(c->held_path[o.slot]);
		c->held_path[o.slot] = c->a.held[o.slot] >= 0 ? xstrdup(o.p1) : NULL;
	} else if (o.kind == OP_RELEASE) {
		free(c->held_path[o.slot]);
		c->held_path[o.slot] = NULL;
	}
	touched(c, o.p1);
	touched(c, o.p2);
	if (o.kind == OP_LINK && ra.rv[0] == 0)
		compare_same_inode(c, o.p1, o.p2);
	if (ro) {
		check_upper(c, o.p1, pre);
		buf_free(&pre[0]);
		buf_free(&pre[1]);
	}
	buf_free(&ra.out);
	buf_free(&rb.out);
	op_free(&o);
}

/* difftest: compare one path, one listing or the whole tree of both sides.
 *
 * Compared: lstat result and errno, file type, permission bits, owner,
 * size and link count of non-directories, file contents, symlink targets,
 * xattrs (names and values), directory listings with d_type.  Not compared
 * between the sides: st_ino and st_dev values, timestamps, st_blocks, the
 * size and link count of directories.  Checked within each side: d_type
 * equals lstat's type, d_ino equals st_ino, one st_dev for the whole mount,
 * and names share an inode exactly when they do on the other side. */
#include "difftest.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>
#include <unistd.h>

atomic_long progress;

struct info {
	int err;		/* lstat errno, 0 if it exists */
	struct stat st;
	struct buf data;	/* file content or symlink target */
	int data_err;		/* errno opening/reading data */
	struct buf xattrs;	/* "name=value\n" sorted */
	int xattr_err;
};

struct dent {
	char *name;
	unsigned char type;
	ino_t ino;
};

static const char *type_name(mode_t m)
{
	switch (m & S_IFMT) {
	case S_IFREG: return "file";
	case S_IFDIR: return "dir";
	case S_IFLNK: return "symlink";
	case S_IFIFO: return "fifo";
	case S_IFCHR: return "chardev";
	case S_IFBLK: return "blockdev";
	case S_IFSOCK: return "socket";
	default: return "?";
	}
}

static mode_t dtype_to_mode(unsigned char t)
{
	switch (t) {
	case DT_REG: return S_IFREG;
	case DT_DIR: return S_IFDIR;
	case DT_LNK: return S_IFLNK;
	case DT_FIFO: return S_IFIFO;
	case DT_CHR: return S_IFCHR;
	case DT_BLK: return S_IFBLK;
	case DT_SOCK: return S_IFSOCK;
	default: return 0;
	}
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void read_xattrs(int fd, struct info *in)
{
	char list[65536], val[65536];
	char *names[1024];
	ssize_t n, i, k = 0;

	n = flistxattr(fd, list, sizeof(list));
	if (n < 0) {
		in->xattr_err = errno;
		return;
	}
	for (i = 0; i < n && k < 1024; i += (ssize_t)strlen(list + i) + 1)
		names[k++] = list + i;
	qsort(names, (size_t)k, sizeof(names[0]), cmp_str);
	for (i = 0; i < k; i++) {
		ssize_t vl = fgetxattr(fd, names[i], val, sizeof(val));

		buf_printf(&in->xattrs, "%s", names[i]);
		if (vl < 0) {
			buf_printf(&in->xattrs, " <%s>\n", errname(errno));
			continue;
		}
		buf_add(&in->xattrs, "=\"", 2);
		buf_add(&in->xattrs, val, (size_t)vl);
		buf_add(&in->xattrs, "\"\n", 2);
	}
}

static void read_content(int fd, struct info *in)
{
	char chunk[65536];

	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));

		if (n < 0) {
			in->data_err = errno;
			return;
		}
		if (n == 0 || in->data.len >= MAX_FILE)
			return;
		buf_add(&in->data, chunk, (size_t)n);
	}
}

static void get_info(struct side *s, const char *path, struct info *in)
{
	int fd;

	memset(in, 0, sizeof(*in));
	progress++;
	if (fstatat(s->root, path, &in->st, AT_SYMLINK_NOFOLLOW) < 0) {
		in->err = errno;
		return;
	}
	if (S_ISLNK(in->st.st_mode)) {
		char t[PATH_MAX + 1];
		ssize_t n = readlinkat(s->root, path, t, sizeof(t));

		if (n < 0)
			in->data_err = errno;
		else
			buf_add(&in->data, t, (size_t)n);
		return;
	}
	if (!S_ISREG(in->st.st_mode) && !S_ISDIR(in->st.st_mode))
		return;
	fd = openat(s->root, path,
		    O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC |
		    (S_ISDIR(in->st.st_mode) ? O_DIRECTORY : 0));
	if (fd < 0) {
		in->data_err = errno;
		return;
	}
	if (S_ISREG(in->st.st_mode))
		read_content(fd, in);
	read_xattrs(fd, in);
	if (close(fd) < 0 && !in->data_err)
		in->data_err = errno;
}

static void free_info(struct info *in)
{
	buf_free(&in->data);
	buf_free(&in->xattrs);
}

static char *show_bytes(const char *p, size_t len)
{
	struct buf b = { 0 };
	size_t i;

	for (i = 0; i < len && i < 80; i++) {
		unsigned char ch = (unsigned char)p[i];

		if (ch >= 0x20 && ch < 0x7f && ch != '"' && ch != '\\')
			buf_add(&b, p + i, 1);
		else
			buf_printf(&b, "\\x%02x", ch);
	}
	if (len > 80)
		buf_printf(&b, "...(%zu bytes)", len);
	buf_str(&b);
	return b.p;
}

static void content_mismatch(struct ctx *c, const char *path, struct info *a,
			     struct info *b)
{
	size_t i, n = a->data.len < b->data.len ? a->data.len : b->data.len;
	char *da, *db;

	for (i = 0; i < n && a->data.p[i] == b->data.p[i]; i++)
		;
	if (i < n) {
		da = xasprintf("content of %zu bytes has 0x%02x at offset %zu",
			       a->data.len, (unsigned char)a->data.p[i], i);
		db = xasprintf("content of %zu bytes has 0x%02x at offset %zu",
			       b->data.len, (unsigned char)b->data.p[i], i);
	} else {
		da = xasprintf("content of %zu bytes", a->data.len);
		db = xasprintf("content of %zu bytes", b->data.len);
	}
	mismatch(c, path, da, db);
}

static void compare_info_(struct ctx *c, const char *path, struct info *a,
			  struct info *b)
{
	char va[160], vb[160];
	mode_t ta = a->st.st_mode & S_IFMT, tb = b->st.st_mode & S_IFMT;

	if (a->err || b->err) {
		if (a->err == b->err)
			return;
		snprintf(va, sizeof(va), "lstat %s", a->err ? errname(a->err) : type_name(ta));
		snprintf(vb, sizeof(vb), "lstat %s", b->err ? errname(b->err) : type_name(tb));
		mismatch(c, path, va, vb);
	}
	if (ta != tb)
		mismatchf(c, path, "type", type_name(ta), type_name(tb));
	if ((a->st.st_mode & 07777) != (b->st.st_mode & 07777)) {
		snprintf(va, sizeof(va), "mode %04o", a->st.st_mode & 07777);
		snprintf(vb, sizeof(vb), "mode %04o", b->st.st_mode & 07777);
		mismatch(c, path, va, vb);
	}
	if (a->st.st_uid != b->st.st_uid || a->st.st_gid != b->st.st_gid) {
		snprintf(va, sizeof(va), "owner %u:%u", a->st.st_uid, a->st.st_gid);
		snprintf(vb, sizeof(vb), "owner %u:%u", b->st.st_uid, b->st.st_gid);
		mismatch(c, path, va, vb);
	}
	if (ta != S_IFDIR && a->st.st_size != b->st.st_size) {
		snprintf(va, sizeof(va), "size %lld", (long long)a->st.st_size);
		snprintf(vb, sizeof(vb), "size %lld", (long long)b->st.st_size);
		mismatch(c, path, va, vb);
	}
	if (ta != S_IFDIR && a->st.st_nlink != b->st.st_nlink) {
		snprintf(va, sizeof(va), "nlink %lu", (unsigned long)a->st.st_nlink);
		snprintf(vb, sizeof(vb), "nlink %lu", (unsigned long)b->st.st_nlink);
		mismatch(c, path, va, vb);
	}
	if (a->data_err != b->data_err) {
		snprintf(va, sizeof(va), "open/read %s", errname(a->data_err));
		snprintf(vb, sizeof(vb), "open/read %s", errname(b->data_err));
		mismatch(c, path, va, vb);
	}
	if (ta == S_IFLNK && (a->data.len != b->data.len ||
			      memcmp(buf_str(&a->data), buf_str(&b->data), a->data.len))) {
		char *sa = show_bytes(a->data.p, a->data.len);
		char *sb = show_bytes(b->data.p, b->data.len);

		mismatch(c, path, xasprintf("target \"%s\"", sa),
			 xasprintf("target \"%s\"", sb));
	}
	if (ta == S_IFREG && (a->data.len != b->data.len ||
			      memcmp(buf_str(&a->data), buf_str(&b->data), a->data.len)))
		content_mismatch(c, path, a, b);
	if (a->xattr_err != b->xattr_err)
		mismatchf(c, path, "listxattr", errname(a->xattr_err),
			  errname(b->xattr_err));
	if (strcmp(buf_str(&a->xattrs), buf_str(&b->xattrs)) != 0) {
		char *sa = show_bytes(a->xattrs.p, a->xattrs.len);
		char *sb = show_bytes(b->xattrs.p, b->xattrs.len);

		mismatch(c, path, xasprintf("xattrs {%s}", sa),
			 xasprintf("xattrs {%s}", sb));
	}
}

/* A difference in state may be a stale cache of the FUSE side that heals
 * with time: mismatch() then compares again 2 s later and says which. */
static void compare_info(struct ctx *c, const char *path, struct info *a,
			 struct info *b)
{
	c->recheck = true;
	compare_info_(c, path, a, b);
	c->recheck = false;
}

static int cmp_dent(const void *x, const void *y)
{
	return strcmp(((const struct dent *)x)->name, ((const struct dent *)y)->name);
}

/* Sorted listing without "." and ".."; returns errno or 0. */
static int list_dir(struct side *s, const char *path, struct dent **out,
		    size_t *nout)
{
	struct dent *v = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	DIR *d;
	int fd;

	*out = NULL;
	*nout = 0;
	progress++;
	fd = openat(s->root, path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno;
	d = fdopendir(fd);
	if (!d) {
		int e = errno;

		if (close(fd) < 0)
			return errno;
		return e;
	}
	for (;;) {
		errno = 0;
		de = readdir(d);
		if (!de)
			break;
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 32;
			v = xrealloc(v, cap * sizeof(*v));
		}
		v[n].name = xstrdup(de->d_name);
		v[n].type = de->d_type;
		v[n].ino = de->d_ino;
		n++;
	}
	if (errno) {
		int e = errno;

		closedir(d);
		return e;
	}
	if (closedir(d) < 0)
		return errno;
	if (n)
		qsort(v, n, sizeof(*v), cmp_dent);
	*out = v;
	*nout = n;
	return 0;
}

static void free_dents(struct dent *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(v[i].name);
	free(v);
}

static void compare_listing(struct ctx *c, const char *path, struct dent *a,
			    size_t na, struct dent *b, size_t nb)
{
	size_t i = 0, j = 0;

	while (i < na || j < nb) {
		int d = i == na ? 1 : j == nb ? -1 : strcmp(a[i].name, b[j].name);

		if (d < 0)
			mismatch(c, path, xasprintf("lists \"%s\"", a[i].name),
				 xasprintf("does not list \"%s\"", a[i].name));
		if (d > 0)
			mismatch(c, path, xasprintf("does not list \"%s\"", b[j].name),
				 xasprintf("lists \"%s\"", b[j].name));
		if (a[i].type != b[j].type)
			mismatch(c, path, xasprintf("lists \"%s\" as d_type %d", a[i].name, a[i].type),
				 xasprintf("lists \"%s\" as d_type %d", b[j].name, b[j].type));
		i++;
		j++;
	}
}

/* Compare the two listings; returns them (caller frees) when wanted. */
static void listing(struct ctx *c, const char *path, struct dent **la,
		    size_t *na, struct dent **lb, size_t *nb)
{
	int ea = list_dir(&c->a, path, la, na);
	int eb = list_dir(&c->b, path, lb, nb);

	c->recheck = true;
	if (ea != eb)
		mismatchf(c, path, "readdir", errname(ea), errname(eb));
	compare_listing(c, path, *la, *na, *lb, *nb);
	c->recheck = false;
}

void compare_path(struct ctx *c, const char *path, bool with_listing)
{
	struct info a, b;

	get_info(&c->a, path, &a);
	get_info(&c->b, path, &b);
	compare_info(c, path, &a, &b);
	if (with_listing && !a.err && S_ISDIR(a.st.st_mode)) {
		struct dent *la, *lb;
		size_t na, nb;

		listing(c, path, &la, &na, &lb, &nb);
		free_dents(la, na);
		free_dents(lb, nb);
	}
	free_info(&a);
	free_info(&b);
}

/* ---- whole tree ------------------------------------------------------ */

struct pino {
	char *path;
	ino_t ino;
	const char *rep;	/* smallest path with the same inode */
};

struct walk {
	struct pino *pa, *pb;
	size_t n, cap;
	dev_t deva, devb;
};

/* Invariants of strata-unionfs that kernel overlayfs does not promise
 * (without xino it reports e.g. a hard-linked copied-up file's d_ino from
 * the upper and its st_ino from the lower): enforced on FUSE sides only, the
 * other side's values are shown for context. */
static void invariant(struct ctx *c, const char *path, bool oka, bool okb,
		      char *da, char *db)
{
	if ((!oka && c->a.fuse) || (!okb && c->b.fuse))
		mismatch(c, path, da, db);
	free(da);
	free(db);
}

static void check_dent(struct ctx *c, const char *path, struct dent *da,
		       struct info *ia, struct dent *db, struct info *ib)
{
	bool oka = dtype_to_mode(da->type) == (ia->st.st_mode & S_IFMT);
	bool okb = dtype_to_mode(db->type) == (ib->st.st_mode & S_IFMT);

	/* d_type is compared between the sides too; this is stricter */
	if (!oka || !okb)
		mismatch(c, path,
			 xasprintf("d_type %d, lstat %s", da->type, type_name(ia->st.st_mode)),
			 xasprintf("d_type %d, lstat %s", db->type, type_name(ib->st.st_mode)));
	invariant(c, path, da->ino == ia->st.st_ino, db->ino == ib->st.st_ino,
		  xasprintf("d_ino %lu, st_ino %lu", (unsigned long)da->ino,
			    (unsigned long)ia->st.st_ino),
		  xasprintf("d_ino %lu, st_ino %lu", (unsigned long)db->ino,
			    (unsigned long)ib->st.st_ino));
}

static void walk_add(struct walk *w, const char *path, ino_t ia, ino_t ib)
{
	if (w->n == w->cap) {
		w->cap = w->cap ? w->cap * 2 : 256;
		w->pa = xrealloc(w->pa, w->cap * sizeof(*w->pa));
		w->pb = xrealloc(w->pb, w->cap * sizeof(*w->pb));
	}
	w->pa[w->n] = (struct pino){ xstrdup(path), ia, NULL };
	w->pb[w->n] = (struct pino){ xstrdup(path), ib, NULL };
	w->n++;
}

static void walk_dev(struct ctx *c, struct walk *w, const char *path,
		     struct info *a, struct info *b)
{
	invariant(c, path, a->st.st_dev == w->deva, b->st.st_dev == w->devb,
		  xasprintf("st_dev %#lx, root's %#lx", (unsigned long)a->st.st_dev,
			    (unsigned long)w->deva),
		  xasprintf("st_dev %#lx, root's %#lx", (unsigned long)b->st.st_dev,
			    (unsigned long)w->devb));
}

static void walk_dir(struct ctx *c, struct walk *w, const char *path)
{
	struct dent *la, *lb;
	size_t na, nb, i;

	listing(c, path, &la, &na, &lb, &nb);
	for (i = 0; i < na; i++) {
		char *p = path_join(path, la[i].name);
		struct info a, b;

		get_info(&c->a, p, &a);
		get_info(&c->b, p, &b);
		compare_info(c, p, &a, &b);
		if (a.err)
			mismatch(c, p, xasprintf("listed but lstat %s", errname(a.err)),
				 xasprintf("listed but lstat %s", errname(b.err)));
		check_dent(c, p, &la[i], &a, &lb[i], &b);
		walk_dev(c, w, p, &a, &b);
		walk_add(w, p, a.st.st_ino, b.st.st_ino);
		if (S_ISDIR(a.st.st_mode))
			walk_dir(c, w, p);
		free_info(&a);
		free_info(&b);
		free(p);
	}
	free_dents(la, na);
	free_dents(lb, nb);
}

static int cmp_pino_ino(const void *x, const void *y)
{
	const struct pino *a = x, *b = y;

	if (a->ino != b->ino)
		return a->ino < b->ino ? -1 : 1;
	return strcmp(a->path, b->path);
}

static int cmp_pino_path(const void *x, const void *y)
{
	return strcmp(((const struct pino *)x)->path, ((const struct pino *)y)->path);
}

static void assign_reps(struct pino *v, size_t n)
{
	size_t i;

	qsort(v, n, sizeof(*v), cmp_pino_ino);
	for (i = 0; i < n; i++)
		v[i].rep = (i > 0 && v[i - 1].ino == v[i].ino) ? v[i - 1].rep : v[i].path;
	qsort(v, n, sizeof(*v), cmp_pino_path);
}

static const char *rep_desc(struct pino *p)
{
	if (p->rep == p->path)
		return xasprintf("st_ino %lu", (unsigned long)p->ino);
	return xasprintf("st_ino %lu shared with \"%s\"", (unsigned long)p->ino, p->rep);
}

void compare_tree(struct ctx *c)
{
	struct walk w = { 0 };
	struct info a, b;
	size_t i;

	get_info(&c->a, ".", &a);
	get_info(&c->b, ".", &b);
	compare_info(c, ".", &a, &b);
	w.deva = a.st.st_dev;
	w.devb = b.st.st_dev;
	walk_add(&w, ".", a.st.st_ino, b.st.st_ino);
	free_info(&a);
	free_info(&b);
	walk_dir(c, &w, ".");

	/* Names share an inode on one side exactly when they do on the other
	 * (hard links), and distinct objects never share a number. */
	assign_reps(w.pa, w.n);
	assign_reps(w.pb, w.n);
	for (i = 0; i < w.n; i++)
		if (strcmp(w.pa[i].rep, w.pb[i].rep) != 0)
			mismatch(c, w.pa[i].path, rep_desc(&w.pa[i]), rep_desc(&w.pb[i]));
	for (i = 0; i < w.n; i++) {
		free(w.pa[i].path);
		free(w.pb[i].path);
	}
	free(w.pa);
	free(w.pb);
}

void compare_same_inode(struct ctx *c, const char *p1, const char *p2)
{
	struct stat a1, a2, b1, b2;
	bool sa, sb;

	sa = fstatat(c->a.root, p1, &a1, AT_SYMLINK_NOFOLLOW) == 0 &&
	     fstatat(c->a.root, p2, &a2, AT_SYMLINK_NOFOLLOW) == 0 &&
	     a1.st_ino == a2.st_ino;
	sb = fstatat(c->b.root, p1, &b1, AT_SYMLINK_NOFOLLOW) == 0 &&
	     fstatat(c->b.root, p2, &b2, AT_SYMLINK_NOFOLLOW) == 0 &&
	     b1.st_ino == b2.st_ino;
	if (sa != sb)
		mismatch(c, p1, xasprintf("%s the inode of \"%s\"", sa ? "shares" : "does not share", p2),
			 xasprintf("%s the inode of \"%s\"", sb ? "shares" : "does not share", p2));
}

/* ---- tree scan (side A) ---------------------------------------------- */

static void scan_add(struct ctx *c, const char *path, mode_t type)
{
	if (c->nents == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 256;
		c->ents = xrealloc(c->ents, c->cap * sizeof(*c->ents));
	}
	c->ents[c->nents].path = xstrdup(path);
	c->ents[c->nents].type = type;
	c->nents++;
}

static void scan_dir(struct ctx *c, const char *path, int depth)
{
	struct dent *l;
	size_t n, i;
	int e = list_dir(&c->a, path, &l, &n);

	if (e)
		die("scan: readdir %s on %s: %s", path, c->a.name, strerror(e));
	for (i = 0; i < n; i++) {
		char *p = path_join(path, l[i].name);
		struct stat st;

		if (fstatat(c->a.root, p, &st, AT_SYMLINK_NOFOLLOW) < 0)
			die("scan: lstat %s on %s: %s", p, c->a.name, strerror(errno));
		scan_add(c, p, st.st_mode & S_IFMT);
		if (S_ISDIR(st.st_mode) && depth < 16)
			scan_dir(c, p, depth + 1);
		free(p);
	}
	free_dents(l, n);
}

static int cmp_entry(const void *x, const void *y)
{
	return strcmp(((const struct entry *)x)->path, ((const struct entry *)y)->path);
}

void scan_tree(struct ctx *c)
{
	size_t i;

	for (i = 0; i < c->nents; i++)
		free(c->ents[i].path);
	c->nents = 0;
	scan_add(c, ".", S_IFDIR);
	scan_dir(c, ".", 0);
	qsort(c->ents, c->nents, sizeof(*c->ents), cmp_entry);
}

/* ---- st_ino stability across remount --------------------------------- */

struct ino_map {
	char **paths;
	ino_t *ia, *ib;
	size_t n;
};

struct ino_map *ino_record(struct ctx *c)
{
	struct ino_map *m = xmalloc(sizeof(*m));
	size_t i;

	scan_tree(c);
	m->n = c->nents;
	m->paths = xmalloc(m->n * sizeof(*m->paths));
	m->ia = xmalloc(m->n * sizeof(*m->ia));
	m->ib = xmalloc(m->n * sizeof(*m->ib));
	for (i = 0; i < m->n; i++) {
		struct stat sa, sb;

		m->paths[i] = xstrdup(c->ents[i].path);
		if (fstatat(c->a.root, m->paths[i], &sa, AT_SYMLINK_NOFOLLOW) < 0)
			die("lstat %s on %s: %s", m->paths[i], c->a.name, strerror(errno));
		if (fstatat(c->b.root, m->paths[i], &sb, AT_SYMLINK_NOFOLLOW) < 0)
			mismatch(c, m->paths[i], "exists", xasprintf("lstat %s", errname(errno)));
		m->ia[i] = sa.st_ino;
		m->ib[i] = sb.st_ino;
	}
	return m;
}

void ino_check(struct ctx *c, struct ino_map *m)
{
	size_t i;

	for (i = 0; i < m->n; i++) {
		struct stat sa, sb;
		bool oka, okb;

		if (fstatat(c->a.root, m->paths[i], &sa, AT_SYMLINK_NOFOLLOW) < 0)
			die("lstat %s on %s: %s", m->paths[i], c->a.name, strerror(errno));
		if (fstatat(c->b.root, m->paths[i], &sb, AT_SYMLINK_NOFOLLOW) < 0)
			mismatch(c, m->paths[i], "exists", xasprintf("lstat %s", errname(errno)));
		oka = sa.st_ino == m->ia[i];
		okb = sb.st_ino == m->ib[i];
		invariant(c, m->paths[i], oka, okb,
			  xasprintf("st_ino %lu before remount, %lu after",
				    (unsigned long)m->ia[i], (unsigned long)sa.st_ino),
			  xasprintf("st_ino %lu before remount, %lu after",
				    (unsigned long)m->ib[i], (unsigned long)sb.st_ino));
	}
}

void ino_free(struct ino_map *m)
{
	size_t i;

	for (i = 0; i < m->n; i++)
		free(m->paths[i]);
	free(m->paths);
	free(m->ia);
	free(m->ib);
	free(m);
}

/* Command line and mount option parsing for strata-unionfs.
 *
 * argv is scanned once: flags are applied, -o lists are parsed as they
 * come (so a later option overrides an earlier one, as with mount(8)), and
 * positional arguments are collected.  Branch lists are only turned into
 * branches at the end, once we know which syntax was used.  No I/O here:
 * branch.c checks that the paths exist. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "opts.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"

struct strbuf {
	char *buf;
	size_t len, cap;
};

struct parser {
	struct union_config *cfg;
	char *err;
	size_t errlen;
	char *dirs;           /* last dirs=/br= value */
	const char *dirs_key; /* which of the two, for messages */
	char *lowerdir;
	char *upperdir;
	char *workdir;
	bool whiteout_set;
	struct strbuf fuse;   /* forwarded generic options */
	const char *positional[3];
	int npositional;
};

static int fail(struct parser *p, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int fail(struct parser *p, const char *fmt, ...)
{
	va_list ap;

	if (!p->err || !p->errlen)
		return -1;
	va_start(ap, fmt);
	vsnprintf(p->err, p->errlen, fmt, ap);
	va_end(ap);
	return -1;
}

static int oom(struct parser *p)
{
	return fail(p, "out of memory");
}

/* Replaces *slot with a copy of val, so repeated options keep the last. */
static int set_string(struct parser *p, char **slot, const char *val)
{
	char *copy = strdup(val);

	if (!copy)
		return oom(p);
	free(*slot);
	*slot = copy;
	return 0;
}

/* ---- forwarded generic options ---------------------------------------- */

static int strbuf_putc(struct strbuf *sb, char c)
{
	if (sb->len + 2 > sb->cap) {
		size_t cap = sb->cap ? sb->cap * 2 : 128;
		char *buf = realloc(sb->buf, cap);

		if (!buf)
			return -1;
		sb->buf = buf;
		sb->cap = cap;
	}
	sb->buf[sb->len++] = c;
	sb->buf[sb->len] = '\0';
	return 0;
}

/* libfuse splits -o on commas and honours backslash escapes, so a value
 * that held "\," on our command line must be escaped again for it. */
static int fuse_opt_append(struct parser *p, const char *opt)
{
	struct strbuf *sb = &p->fuse;

	if (sb->len && strbuf_putc(sb, ',') < 0)
		return oom(p);
	for (; *opt; opt++) {
		if ((*opt == ',' || *opt == '\\') && strbuf_putc(sb, '\\') < 0)
			return oom(p);
		if (strbuf_putc(sb, *opt) < 0)
			return oom(p);
	}
	return 0;
}

/* Options for the kernel or libfuse, passed on: exactly what libfuse 3
 * accepts for a fuse (not fuseblk) mount. */
static const char *const forward_flags[] = {
	"rw", "ro", "nosuid", "suid", "nodev", "dev", "noexec", "exec",
	"noatime", "atime", "sync", "async", "dirsync",
	"allow_other", "allow_root", "default_permissions", "auto_unmount", NULL,
};
static const char *const forward_prefixes[] = { "fsname=", "subtype=", "max_read=", NULL };
/* Accepted and ignored: meant for mount(8) and fstab, or atime and
 * SELinux policies libfuse refuses (a FUSE mount is relatime already),
 * or block-device options that do not apply. */
static const char *const drop_flags[] = {
	"defaults", "auto", "noauto", "nofail", "_netdev", "user", "nouser", "users",
	"owner", "relatime", "norelatime", "strictatime", "nostrictatime", "diratime",
	"nodiratime", "lazytime", "nolazytime", NULL,
};
static const char *const drop_prefixes[] = {
	"comment=", "x-", "user=", "blksize=", "context=", "fscontext=", "defcontext=",
	"rootcontext=", NULL,
};

static bool in_list(const char *item, const char *const *list, bool prefix)
{
	for (; *list; list++) {
		if (prefix ? !strncmp(item, *list, strlen(*list)) : !strcmp(item, *list))
			return true;
	}
	return false;
}

/* The few generic options the daemon itself must know about. */
static void note_generic(struct union_config *cfg, const char *item)
{
	if (!strcmp(item, "ro"))
		cfg->read_only = true;
	else if (!strcmp(item, "rw"))
		cfg->read_only = false;
	else if (!strcmp(item, "allow_other"))
		cfg->allow_other = true;
	else if (!strcmp(item, "default_permissions"))
		cfg->default_permissions = true;
}

/* 1 if item was a generic option, 0 if not, -1 on error. */
static int generic_option(struct parser *p, const char *item)
{
	if (in_list(item, drop_flags, false) || in_list(item, drop_prefixes, true))
		return 1;
	if (!in_list(item, forward_flags, false) && !in_list(item, forward_prefixes, true))
		return 0;
	note_generic(p->cfg, item);
	return fuse_opt_append(p, item) < 0 ? -1 : 1;
}

/* ---- our own options ---------------------------------------------------- */

/* dirs=, br=, lowerdir=, upperdir=, workdir=: kept as text until the
 * whole command line is read, because the syntax decides their meaning. */
static int set_dir_opt(struct parser *p, const char *key, const char *val)
{
	char **slot = !strcmp(key, "lowerdir") ? &p->lowerdir :
		      !strcmp(key, "upperdir") ? &p->upperdir :
		      !strcmp(key, "workdir") ? &p->workdir : &p->dirs;

	if (slot == &p->dirs)
		p->dirs_key = !strcmp(key, "br") ? "br" : "dirs";
	return set_string(p, slot, val);
}

static int set_whiteout(struct parser *p, const char *key, const char *val)
{
	if (!strcmp(val, "aufs"))
		p->cfg->whiteout = WH_FORMAT_AUFS;
	else if (!strcmp(val, "overlay"))
		p->cfg->whiteout = WH_FORMAT_OVERLAY;
	else
		return fail(p, "bad value '%s' for %s= (use aufs or overlay)", val, key);
	p->whiteout_set = true;
	return 0;
}

/* "auto" and "on" are the kernel's spellings of our default. */
static int set_xino(struct parser *p, const char *key, const char *val)
{
	struct union_config *cfg = p->cfg;

	if (!*val)
		return fail(p, "%s= needs a directory, 'off' or 'auto'", key);
	free(cfg->xino_path);
	cfg->xino_path = NULL;
	cfg->xino_off = !strcmp(val, "off");
	if (cfg->xino_off || !strcmp(val, "auto") || !strcmp(val, "on"))
		return 0;
	return set_string(p, &cfg->xino_path, val);
}

/* on or off, or the synonyms of each (NULL: none), into *out. */
static int set_on_off(struct parser *p, const char *key, const char *val, const char *on_alias,
		      const char *off_alias, bool *out)
{
	if (!strcmp(val, "on") || (on_alias && !strcmp(val, on_alias)))
		*out = true;
	else if (!strcmp(val, "off") || (off_alias && !strcmp(val, off_alias)))
		*out = false;
	else
		return fail(p, "bad value '%s' for %s= (use on or off)", val, key);
	return 0;
}

static int set_redirect_dir(struct parser *p, const char *key, const char *val)
{
	return set_on_off(p, key, val, "follow", "nofollow", &p->cfg->redirect_dir);
}

static int set_passthrough(struct parser *p, const char *key, const char *val)
{
	return set_on_off(p, key, val, NULL, NULL, &p->cfg->passthrough);
}

static int set_io_uring(struct parser *p, const char *key, const char *val)
{
	return set_on_off(p, key, val, NULL, NULL, &p->cfg->io_uring);
}

/* Options without a value.  "volatile" is kernel overlayfs's and is
 * accepted for the same reason as ignore_opt's. */
static int set_flag_opt(struct parser *p, const char *key, const char *val)
{
	(void)val;
	if (!strcmp(key, "noxino"))
		return set_xino(p, "xino", "off");
	if (!strcmp(key, "userxattr"))
		p->cfg->userxattr = true;
	return 0;
}

/* Kernel overlayfs options that make sense there but not for us; fstab
 * lines copied from an overlay mount must still work. */
static int ignore_opt(struct parser *p, const char *key, const char *val)
{
	(void)p;
	(void)key;
	(void)val;
	return 0;
}

struct our_opt {
	const char *key;
	bool takes_value;
	int (*set)(struct parser *p, const char *key, const char *val);
};

static const struct our_opt our_opts[] = {
	{ "dirs", true, set_dir_opt },
	{ "br", true, set_dir_opt },
	{ "lowerdir", true, set_dir_opt },
	{ "upperdir", true, set_dir_opt },
	{ "workdir", true, set_dir_opt },
	{ "whiteout", true, set_whiteout },
	{ "xino", true, set_xino },
	{ "noxino", false, set_flag_opt },
	{ "redirect_dir", true, set_redirect_dir },
	{ "userxattr", false, set_flag_opt },
	{ "passthrough", true, set_passthrough },
	{ "io_uring", true, set_io_uring },
	{ "index", true, ignore_opt },
	{ "metacopy", true, ignore_opt },
	{ "nfs_export", true, ignore_opt },
	{ "uuid", true, ignore_opt },
	{ "volatile", false, set_flag_opt },
};

static const struct our_opt *find_ours(const char *key, size_t keylen)
{
	size_t i;

	for (i = 0; i < sizeof(our_opts) / sizeof(our_opts[0]); i++) {
		const char *k = our_opts[i].key;

		if (strlen(k) == keylen && !strncmp(k, key, keylen))
			return &our_opts[i];
	}
	return NULL;
}

/* 1 if item was one of ours, 0 if not, -1 on error. */
static int our_option(struct parser *p, const char *item)
{
	const char *eq = strchr(item, '=');
	size_t keylen = eq ? (size_t)(eq - item) : strlen(item);
	const struct our_opt *o = find_ours(item, keylen);

	if (!o)
		return 0;
	if (o->takes_value && !eq)
		return fail(p, "option '%s' needs a value ('%s=...')", o->key, o->key);
	if (!o->takes_value && eq)
		return fail(p, "option '%s' takes no value", o->key);
	return o->set(p, o->key, eq ? eq + 1 : "") < 0 ? -1 : 1;
}

static int parse_item(struct parser *p, const char *item)
{
	int r;

	if (!*item) /* "a,,b" or a trailing comma: nothing to do */
		return 0;
	r = our_option(p, item);
	if (r)
		return r < 0 ? -1 : 0;
	r = generic_option(p, item);
	if (r)
		return r < 0 ? -1 : 0;
	return fail(p, "unknown option '%s'", item);
}

static int parse_option_list(struct parser *p, const char *list)
{
	char **items = split_escaped(list, ',', NULL);
	int ret = 0;
	char **it;

	if (!items)
		return oom(p);
	for (it = items; *it && !ret; it++)
		ret = parse_item(p, *it);
	strv_free(items);
	return ret;
}

/* ---- branches ------------------------------------------------------------ */

/* Length of path without trailing slashes, keeping "/" itself. */
static size_t trimmed_len(const char *path)
{
	size_t len = strlen(path);

	while (len > 1 && path[len - 1] == '/')
		len--;
	return len;
}

/* A cheap textual check; branch.c compares the canonical paths. */
static bool same_path(const char *a, const char *b)
{
	size_t la = trimmed_len(a);

	return la == trimmed_len(b) && !strncmp(a, b, la);
}

static int add_branch(struct parser *p, const char *key, const char *path,
		      enum branch_perm perm)
{
	struct union_config *cfg = p->cfg;
	size_t i;

	if (!*path)
		return fail(p, "empty branch path in %s=", key);
	if (cfg->nbranches >= UNION_MAX_BRANCHES)
		return fail(p, "too many branches (at most %d)", UNION_MAX_BRANCHES);
	for (i = 0; i < cfg->nbranches; i++) {
		if (same_path(cfg->branches[i].path, path))
			return fail(p, "branch '%s' given twice", path);
	}
	cfg->branches[cfg->nbranches].path = strdup(path);
	if (!cfg->branches[cfg->nbranches].path)
		return oom(p);
	cfg->branches[cfg->nbranches++].perm = perm;
	return 0;
}

static int parse_perm(const char *s, enum branch_perm *perm)
{
	/* aufs "rr" (real read-only) only promises more than "ro"; the same
	 * handling is correct for it. */
	if (!strcmp(s, "rw"))
		*perm = BR_RW;
	else if (!strcmp(s, "ro") || !strcmp(s, "rr"))
		*perm = BR_RO;
	else if (!strcmp(s, "ro+wh") || !strcmp(s, "rr+wh"))
		*perm = BR_RO_WH;
	else
		return -1;
	return 0;
}

/* One "PATH[=PERM]" entry.  The last '=' starts the perm, so a path that
 * contains '=' can still be given as "PATH=PERM". */
static int aufs_entry(struct parser *p, char *entry)
{
	char *eq = strrchr(entry, '=');
	bool first = p->cfg->nbranches == 0;
	enum branch_perm perm = first ? BR_RW : BR_RO;

	if (eq) {
		*eq = '\0';
		if (parse_perm(eq + 1, &perm) < 0)
			return fail(p, "bad permission '%s' for branch '%s' (use rw, ro, ro+wh, rr or rr+wh)",
				    eq + 1, entry);
	}
	if (perm == BR_RW && !first)
		return fail(p, "branch '%s' is rw, but only the first branch may be writable",
			    entry);
	return add_branch(p, p->dirs_key, entry, perm);
}

static int build_aufs(struct parser *p)
{
	size_t n, i;
	char **v = split_escaped(p->dirs, ':', &n);
	int ret = 0;

	if (!v)
		return oom(p);
	if (n == 1 && !*v[0])
		ret = fail(p, "empty branch list in %s=", p->dirs_key);
	for (i = 0; i < n && !ret; i++)
		ret = aufs_entry(p, v[i]);
	strv_free(v);
	p->cfg->syntax = SYNTAX_AUFS;
	return ret;
}

static int add_lowers(struct parser *p)
{
	size_t n, i;
	char **v = split_escaped(p->lowerdir, ':', &n);
	int ret = 0;

	if (!v)
		return oom(p);
	if (n == 1 && !*v[0])
		ret = fail(p, "empty branch list in lowerdir=");
	for (i = 0; i < n && !ret; i++)
		ret = add_branch(p, "lowerdir", v[i], BR_RO_WH);
	strv_free(v);
	return ret;
}

static int set_overlay_workdir(struct parser *p)
{
	struct union_config *cfg = p->cfg;
	size_t i;

	if (!*p->workdir)
		return fail(p, "empty path in workdir=");
	for (i = 0; i < cfg->nbranches; i++) {
		if (same_path(cfg->branches[i].path, p->workdir))
			return fail(p, "workdir '%s' is also a branch", p->workdir);
	}
	cfg->workdir = p->workdir;
	p->workdir = NULL;
	return 0;
}

static int build_overlay(struct parser *p)
{
	if (p->upperdir && !p->workdir)
		return fail(p, "upperdir= needs workdir=");
	if (p->workdir && !p->upperdir)
		return fail(p, "workdir= needs upperdir=");
	p->cfg->syntax = SYNTAX_OVERLAY;
	if (p->upperdir && add_branch(p, "upperdir", p->upperdir, BR_RW) < 0)
		return -1;
	if (add_lowers(p) < 0)
		return -1;
	return p->workdir ? set_overlay_workdir(p) : 0;
}

static int build_branches(struct parser *p)
{
	const char *other = p->lowerdir ? "lowerdir" :
			    p->upperdir ? "upperdir" :
			    p->workdir ? "workdir" : NULL;

	if (p->dirs && other)
		return fail(p, "cannot mix %s= (aufs syntax) with %s= (overlay syntax)",
			    p->dirs_key, other);
	if (p->dirs)
		return build_aufs(p);
	if (p->lowerdir)
		return build_overlay(p);
	if (other)
		return fail(p, "%s= needs lowerdir=", other);
	return fail(p, "no branches: give -o dirs=... or -o lowerdir=...");
}

/* ---- argv ---------------------------------------------------------------- */

static enum opts_result scan_help_version(int argc, char **argv)
{
	int i;

	for (i = 1; i < argc && strcmp(argv[i], "--"); i++) {
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
			return OPTS_HELP;
		if (!strcmp(argv[i], "-V") || !strcmp(argv[i], "--version"))
			return OPTS_VERSION;
	}
	return OPTS_OK;
}

static void add_positional(struct parser *p, const char *arg)
{
	/* One more slot than we accept, so the surplus can be named. */
	if (p->npositional < 3)
		p->positional[p->npositional++] = arg;
}

/* --wait-fd=N: a descriptor number, which must be open. */
static int parse_wait_fd(struct parser *p, const char *val)
{
	char *end;
	long fd;

	errno = 0;
	fd = strtol(val, &end, 10);
	if (errno || end == val || *end || fd < 0 || fd > INT_MAX)
		return fail(p, "bad descriptor '%s' for --wait-fd", val);
	p->cfg->wait_fd = (int)fd;
	return 0;
}

static int parse_flag(struct parser *p, const char *arg)
{
	if (!strncmp(arg, "--wait-fd=", 10)) {
		return parse_wait_fd(p, arg + 10);
	} else if (!strcmp(arg, "-f")) {
		p->cfg->foreground = true;
	} else if (!strcmp(arg, "-d")) {
		p->cfg->debug = true;
		p->cfg->foreground = true;
	} else if (!strcmp(arg, "-s")) {
		p->cfg->single_thread = true;
	} else {
		return fail(p, "unknown option '%s'", arg);
	}
	return 0;
}

/* Returns how many extra argv entries were consumed, or -1. */
static int parse_arg(struct parser *p, int argc, char **argv, int i)
{
	const char *arg = argv[i];

	if (strncmp(arg, "-o", 2))
		return parse_flag(p, arg);
	if (arg[2])
		return parse_option_list(p, arg + 2);
	if (i + 1 >= argc)
		return fail(p, "option '-o' needs an argument");
	return parse_option_list(p, argv[i + 1]) < 0 ? -1 : 1;
}

static int scan_argv(struct parser *p, int argc, char **argv)
{
	bool options_done = false;
	int i, r;

	for (i = 1; i < argc; i++) {
		const char *arg = argv[i];

		if (!options_done && !strcmp(arg, "--")) {
			options_done = true;
			continue;
		}
		if (options_done || arg[0] != '-') {
			add_positional(p, arg);
			continue;
		}
		r = parse_arg(p, argc, argv, i);
		if (r < 0)
			return -1;
		i += r;
	}
	return 0;
}

static int take_positional(struct parser *p)
{
	struct union_config *cfg = p->cfg;
	const char *mnt;

	if (p->npositional == 0)
		return fail(p, "missing mountpoint");
	if (p->npositional > 2)
		return fail(p, "too many arguments: '%s' (expected [SOURCE] MOUNTPOINT)",
			    p->positional[2]);
	mnt = p->positional[p->npositional - 1];
	if (!*mnt)
		return fail(p, "empty mountpoint");
	if (p->npositional == 2 && set_string(p, &cfg->source, p->positional[0]) < 0)
		return -1;
	return set_string(p, &cfg->mountpoint, mnt);
}

/* Settings that depend on the whole command line. */
static int finish(struct parser *p)
{
	struct union_config *cfg = p->cfg;

	if (!p->whiteout_set)
		cfg->whiteout = cfg->syntax == SYNTAX_AUFS ? WH_FORMAT_AUFS : WH_FORMAT_OVERLAY;
	/* allow_other without permission checks would let every user do
	 * anything the daemon may do. */
	if (cfg->allow_other && !cfg->default_permissions) {
		cfg->default_permissions = true;
		if (fuse_opt_append(p, "default_permissions") < 0)
			return -1;
	}
	if (!p->fuse.buf)
		return set_string(p, &cfg->fuse_opts, "");
	cfg->fuse_opts = p->fuse.buf;
	p->fuse.buf = NULL;
	return 0;
}

static void parser_free(struct parser *p)
{
	free(p->dirs);
	free(p->lowerdir);
	free(p->upperdir);
	free(p->workdir);
	free(p->fuse.buf);
}

enum opts_result union_opts_parse(int argc, char **argv, struct union_config *cfg,
				  char *err, size_t errlen)
{
	struct parser p = { .cfg = cfg, .err = err, .errlen = errlen };
	enum opts_result res;
	int ret;

	memset(cfg, 0, sizeof(*cfg));
	cfg->redirect_dir = true;
	cfg->passthrough = true;
	cfg->io_uring = true;
	cfg->wait_fd = -1;
	if (err && errlen)
		err[0] = '\0';
	res = scan_help_version(argc, argv);
	if (res != OPTS_OK)
		return res;
	ret = scan_argv(&p, argc, argv);
	if (!ret)
		ret = take_positional(&p);
	if (!ret)
		ret = build_branches(&p);
	if (!ret)
		ret = finish(&p);
	parser_free(&p);
	if (!ret)
		return OPTS_OK;
	/* The caller gets either a complete config or nothing to free. */
	union_config_free(cfg);
	return OPTS_ERROR;
}

void union_config_free(struct union_config *cfg)
{
	size_t i;

	for (i = 0; i < cfg->nbranches; i++)
		free(cfg->branches[i].path);
	free(cfg->workdir);
	free(cfg->mountpoint);
	free(cfg->source);
	free(cfg->xino_path);
	free(cfg->fuse_opts);
	memset(cfg, 0, sizeof(*cfg));
}

void union_opts_usage(const char *progname)
{
	printf("usage: %s [OPTIONS] MOUNTPOINT\n"
	       "       %s SOURCE MOUNTPOINT -o OPTIONS   (mount helper form)\n"
	       "Stacks directories (branches), the top one first; changes go to the\n"
	       "writable top branch, deletions leave whiteouts.\n"
	       "\nBranches (aufs syntax):\n"
	       "  -o dirs=/u=rw:/l1=ro+wh:/l2=ro  top first (br= is a synonym); without\n"
	       "        =PERM the first is rw, the others ro; only the first may be rw.\n"
	       "        rw: writable, ro: whiteouts not honoured, ro+wh: honoured\n"
	       "        (rr and rr+wh mean the same as ro and ro+wh)\n"
	       "Branches (overlayfs syntax):\n"
	       "  -o lowerdir=/l1:/l2   read-only layers, top first; \\: escapes a colon;\n"
	       "                        alone, a read-only union\n"
	       "  -o upperdir=/u        writable layer (needs workdir=)\n"
	       "  -o workdir=/w         work directory, same filesystem as upperdir\n"
	       "\nUnion options:\n"
	       "  -o whiteout=aufs|overlay  format written (default: aufs for dirs=,\n"
	       "                        overlay for lowerdir=); both are always read\n"
	       "  -o xino=PATH          directory for the persistent inode number table\n"
	       "  -o xino=off, noxino   inode numbers in memory only\n"
	       "  -o redirect_dir=on|off  rename merged directories (on) or EXDEV (off)\n"
	       "  -o userxattr          overlay xattrs in user.overlay.* (unprivileged)\n"
	       "  -o passthrough=on|off  kernel FUSE passthrough of file data (default on;\n"
	       "                        needs root and Linux 6.9)\n"
	       "  -o io_uring=on|off    FUSE over io_uring when the kernel offers it\n"
	       "                        (default on; Linux 6.14, fuse enable_uring=Y)\n"
	       "  index=, metacopy=, nfs_export=, uuid=, volatile: accepted, ignored\n"
	       "\nMount options (passed to the kernel): rw, ro, nosuid, nodev, noexec,\n"
	       "  noatime, relatime, sync, allow_other (implies default_permissions),\n"
	       "  default_permissions, auto_unmount, fsname=, subtype=, ...; fstab-only\n"
	       "  ones (defaults, noauto, nofail, _netdev, user, x-*) are ignored.\n"
	       "  \\, escapes a comma inside a value.\n"
	       "\nFlags:\n"
	       "  -f                    stay in the foreground\n"
	       "  -d                    debug output (implies -f)\n"
	       "  -s                    single-threaded\n"
	       "  -h, --help            this text\n"
	       "  -V, --version         print the version\n"
	       "\nExamples:\n"
	       "  %s -o dirs=/tmp/rw=rw:/srv/base=ro /mnt\n"
	       "  %s -o lowerdir=/l1:/l2,upperdir=/u,workdir=/w /mnt\n"
	       "  mount -t fuse.strata-unionfs none /mnt -o lowerdir=/l,upperdir=/u,workdir=/w\n"
	       "  fstab: none /mnt fuse.strata-unionfs lowerdir=/l,upperdir=/u,workdir=/w 0 0\n",
	       progname, progname, progname, progname);
}

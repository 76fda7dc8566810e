/* Unit tests for unionfs/opts.c: both branch syntaxes, the mount-helper
 * argv convention, generic mount options and every refusal. */
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "opts.h"

static struct union_config cfg;
static char err[256];

static void teardown(void)
{
}

TestSuite(argv, .fini = teardown);
TestSuite(aufs, .fini = teardown);
TestSuite(overlay, .fini = teardown);
TestSuite(ours, .fini = teardown);
TestSuite(generic, .fini = teardown);
TestSuite(errors, .fini = teardown);

static enum opts_result parse_v(const char **args)
{
	int argc = 0;

	/* Several parses per test: each starts from a freed config. */
	union_config_free(&cfg);
	while (args[argc])
		argc++;
	memset(err, 'X', sizeof(err) - 1);
	err[sizeof(err) - 1] = '\0';
	return union_opts_parse(argc, (char **)args, &cfg, err, sizeof(err));
}

#define PARSE(...) parse_v((const char *[]){ "strata-unionfs", __VA_ARGS__, NULL })

#define assert_ok(res)                                                            \
	cr_assert_eq((res), OPTS_OK, "expected OPTS_OK, got %d: %s", (int)(res), err)

/* The message must be one line and name the offending thing. */
#define assert_err(res, needle)                                                    \
	do {                                                                       \
		cr_assert_eq((res), OPTS_ERROR, "expected OPTS_ERROR, got %d", (int)(res)); \
		cr_assert_not_null(strstr(err, (needle)), "error \"%s\" lacks \"%s\"", \
				   err, (needle));                                  \
		cr_assert_null(strchr(err, '\n'), "error \"%s\" has a newline", err); \
	} while (0)

static void assert_branch(size_t i, const char *path, enum branch_perm perm)
{
	cr_assert_gt(cfg.nbranches, i, "only %zu branches", cfg.nbranches);
	cr_assert_str_eq(cfg.branches[i].path, path, "branch %zu", i);
	cr_assert_eq(cfg.branches[i].perm, perm, "branch %zu (%s) perm %d, want %d", i,
		     path, cfg.branches[i].perm, perm);
}

/* ---- argv forms ---- */

Test(argv, options_then_mountpoint)
{
	assert_ok(PARSE("-o", "dirs=/a", "/mnt"));
	cr_assert_str_eq(cfg.mountpoint, "/mnt");
	cr_assert_null(cfg.source);
	cr_assert_str_eq(err, "");
}

Test(argv, mount_helper_form)
{
	assert_ok(PARSE("none", "/mnt", "-o", "rw,lowerdir=/l,upperdir=/u,workdir=/w"));
	cr_assert_str_eq(cfg.source, "none");
	cr_assert_str_eq(cfg.mountpoint, "/mnt");
	cr_assert_eq(cfg.nbranches, 2);
	cr_assert_str_eq(cfg.fuse_opts, "rw");
}

Test(argv, o_anywhere_around_positionals)
{
	assert_ok(PARSE("-o", "lowerdir=/l", "src", "/mnt"));
	cr_assert_str_eq(cfg.source, "src");
	cr_assert_str_eq(cfg.mountpoint, "/mnt");
	assert_ok(PARSE("src", "-o", "lowerdir=/l", "/mnt"));
	cr_assert_str_eq(cfg.source, "src");
	cr_assert_str_eq(cfg.mountpoint, "/mnt");
}

Test(argv, attached_o)
{
	assert_ok(PARSE("-olowerdir=/l1:/l2,nosuid", "/mnt"));
	assert_branch(0, "/l1", BR_RO_WH);
	assert_branch(1, "/l2", BR_RO_WH);
	cr_assert_str_eq(cfg.fuse_opts, "nosuid");
}

Test(argv, repeated_o_lists_merge)
{
	assert_ok(PARSE("-o", "lowerdir=/l", "-o", "upperdir=/u", "-oworkdir=/w", "/mnt",
			"-o", "nodev"));
	cr_assert_eq(cfg.nbranches, 2);
	assert_branch(0, "/u", BR_RW);
	assert_branch(1, "/l", BR_RO_WH);
	cr_assert_str_eq(cfg.workdir, "/w");
	cr_assert_str_eq(cfg.fuse_opts, "nodev");
}

Test(argv, later_value_wins)
{
	assert_ok(PARSE("-o", "lowerdir=/a", "-o", "lowerdir=/b", "/mnt"));
	cr_assert_eq(cfg.nbranches, 1);
	assert_branch(0, "/b", BR_RO_WH);
}

Test(argv, flags_default_off)
{
	assert_ok(PARSE("-o", "lowerdir=/l", "/mnt"));
	cr_assert_not(cfg.foreground);
	cr_assert_not(cfg.debug);
	cr_assert_not(cfg.single_thread);
	cr_assert_not(cfg.read_only);
	cr_assert_not(cfg.allow_other);
	cr_assert_not(cfg.default_permissions);
	cr_assert_not(cfg.userxattr);
	cr_assert_not(cfg.xino_off);
	cr_assert_null(cfg.xino_path);
	cr_assert(cfg.redirect_dir);
	cr_assert(cfg.passthrough);
}

Test(argv, flags_f_and_s)
{
	assert_ok(PARSE("-f", "-o", "lowerdir=/l", "/mnt"));
	cr_assert(cfg.foreground);
	cr_assert_not(cfg.debug);
	assert_ok(PARSE("-s", "-o", "lowerdir=/l", "/mnt"));
	cr_assert(cfg.single_thread);
	cr_assert_not(cfg.foreground);
}

Test(argv, flag_d_implies_foreground)
{
	assert_ok(PARSE("-o", "lowerdir=/l", "/mnt", "-d"));
	cr_assert(cfg.debug);
	cr_assert(cfg.foreground);
}

Test(argv, help_and_version)
{
	cr_assert_eq(PARSE("-h"), OPTS_HELP);
	cr_assert_eq(PARSE("--help"), OPTS_HELP);
	/* Help wins over what would otherwise be an error. */
	cr_assert_eq(PARSE("-o", "bogus", "-h"), OPTS_HELP);
	cr_assert_eq(PARSE("-V"), OPTS_VERSION);
	cr_assert_eq(PARSE("/mnt", "--version"), OPTS_VERSION);
}

Test(argv, double_dash_ends_flags)
{
	assert_ok(PARSE("-o", "lowerdir=/l", "--", "-mnt"));
	cr_assert_str_eq(cfg.mountpoint, "-mnt");
	assert_err(PARSE("-o", "lowerdir=/l", "--", "-h", "/a", "/b"), "'/b'");
}

Test(argv, mountpoint_kept_as_given)
{
	assert_ok(PARSE("-o", "lowerdir=/l", "rel/mnt/"));
	cr_assert_str_eq(cfg.mountpoint, "rel/mnt/");
}

Test(argv, unknown_flags_named)
{
	assert_err(PARSE("-x", "-o", "lowerdir=/l", "/mnt"), "'-x'");
	assert_err(PARSE("-o", "lowerdir=/l", "--foreground", "/mnt"), "'--foreground'");
	assert_err(PARSE("-fd", "-o", "lowerdir=/l", "/mnt"), "'-fd'");
	assert_err(PARSE("-o", "lowerdir=/l", "-", "/mnt"), "'-'");
}

Test(argv, positional_errors)
{
	assert_err(PARSE("/mnt", "-o"), "'-o' needs an argument");
	assert_err(PARSE("-o", "lowerdir=/l"), "missing mountpoint");
	assert_err(PARSE("-o", "lowerdir=/l", ""), "mountpoint");
	assert_err(PARSE("src", "/mnt", "extra", "-o", "lowerdir=/l"), "'extra'");
	assert_err(PARSE("a", "b", "c", "d", "-o", "lowerdir=/l"), "'c'");
}

/* ---- aufs syntax ---- */

Test(aufs, explicit_perms)
{
	assert_ok(PARSE("-o", "dirs=/u=rw:/l1=ro+wh:/l2=ro", "/mnt"));
	cr_assert_eq(cfg.nbranches, 3);
	assert_branch(0, "/u", BR_RW);
	assert_branch(1, "/l1", BR_RO_WH);
	assert_branch(2, "/l2", BR_RO);
	cr_assert_eq(cfg.syntax, SYNTAX_AUFS);
	cr_assert_eq(cfg.whiteout, WH_FORMAT_AUFS);
	cr_assert_null(cfg.workdir);
	cr_assert_str_eq(cfg.fuse_opts, "");
}

Test(aufs, br_synonym)
{
	assert_ok(PARSE("-o", "br=/u=rw:/l=ro", "/mnt"));
	cr_assert_eq(cfg.nbranches, 2);
	assert_branch(0, "/u", BR_RW);
	assert_branch(1, "/l", BR_RO);
	cr_assert_eq(cfg.syntax, SYNTAX_AUFS);
}

Test(aufs, default_perms)
{
	assert_ok(PARSE("-o", "dirs=/a:/b:/c", "/mnt"));
	assert_branch(0, "/a", BR_RW);
	assert_branch(1, "/b", BR_RO);
	assert_branch(2, "/c", BR_RO);
	assert_ok(PARSE("-o", "dirs=/a=ro:/b", "/mnt"));
	assert_branch(0, "/a", BR_RO);
	assert_branch(1, "/b", BR_RO);
	assert_ok(PARSE("-o", "dirs=/only", "/mnt"));
	cr_assert_eq(cfg.nbranches, 1);
	assert_branch(0, "/only", BR_RW);
}

Test(aufs, rr_perms)
{
	assert_ok(PARSE("-o", "dirs=/a=rr:/b=rr+wh:/c=ro+wh", "/mnt"));
	assert_branch(0, "/a", BR_RO);
	assert_branch(1, "/b", BR_RO_WH);
	assert_branch(2, "/c", BR_RO_WH);
}

Test(aufs, rw_only_first)
{
	assert_err(PARSE("-o", "dirs=/a=rw:/b=rw", "/mnt"), "'/b'");
	assert_err(PARSE("-o", "dirs=/a=ro:/b=rw", "/mnt"), "'/b'");
}

Test(aufs, bad_perm)
{
	assert_err(PARSE("-o", "dirs=/a=", "/mnt"), "'/a'");
	assert_err(PARSE("-o", "dirs=/a=rx", "/mnt"), "'rx'");
	assert_err(PARSE("-o", "dirs=/a=rw:/b=RO", "/mnt"), "'RO'");
	assert_err(PARSE("-o", "dirs=/a=rw:/b=ro+wh+x", "/mnt"), "'ro+wh+x'");
}

Test(aufs, path_with_equals)
{
	assert_ok(PARSE("-o", "dirs=/a=b=rw:/c=d=ro", "/mnt"));
	assert_branch(0, "/a=b", BR_RW);
	assert_branch(1, "/c=d", BR_RO);
}

Test(aufs, escapes)
{
	assert_ok(PARSE("-o", "dirs=/a\\:b=rw:/c", "/mnt"));
	cr_assert_eq(cfg.nbranches, 2);
	assert_branch(0, "/a:b", BR_RW);
	assert_branch(1, "/c", BR_RO);
	assert_ok(PARSE("-o", "dirs=/a\\,b:/c,ro", "/mnt"));
	cr_assert_eq(cfg.nbranches, 2);
	assert_branch(0, "/a,b", BR_RW);
	cr_assert_str_eq(cfg.fuse_opts, "ro");
	cr_assert(cfg.read_only);
}

Test(aufs, empty_lists_and_paths)
{
	assert_err(PARSE("-o", "dirs=", "/mnt"), "empty branch list");
	assert_err(PARSE("-o", "br=", "/mnt"), "br=");
	assert_err(PARSE("-o", "dirs=/a::/b", "/mnt"), "empty branch path");
	assert_err(PARSE("-o", "dirs=/a:=ro", "/mnt"), "empty branch path");
	assert_err(PARSE("-o", "dirs=/a:", "/mnt"), "empty branch path");
	assert_err(PARSE("-o", "dirs", "/mnt"), "dirs");
}

Test(aufs, duplicates)
{
	assert_err(PARSE("-o", "dirs=/a:/a", "/mnt"), "'/a'");
	assert_err(PARSE("-o", "dirs=/x/y=rw:/z:/x/y//=ro", "/mnt"), "'/x/y//'");
	assert_err(PARSE("-o", "dirs=/:/l://", "/mnt"), "twice");
	assert_ok(PARSE("-o", "dirs=/a:/ab:/a/b:/", "/mnt"));
	cr_assert_eq(cfg.nbranches, 4);
}

Test(aufs, whiteout_override)
{
	assert_ok(PARSE("-o", "dirs=/a,whiteout=overlay", "/mnt"));
	cr_assert_eq(cfg.whiteout, WH_FORMAT_OVERLAY);
	cr_assert_eq(cfg.syntax, SYNTAX_AUFS);
}

static char *branch_list(int n, const char *prefix)
{
	size_t cap = (size_t)n * 16 + 32;
	char *s = malloc(cap);
	size_t len = 0;
	int i;

	cr_assert_not_null(s);
	len += (size_t)snprintf(s, cap, "%s", prefix);
	for (i = 0; i < n; i++)
		len += (size_t)snprintf(s + len, cap - len, "%s/b%d", i ? ":" : "", i);
	return s;
}

Test(aufs, max_branches)
{
	char *list = branch_list(UNION_MAX_BRANCHES, "dirs=");

	assert_ok(PARSE("-o", list, "/mnt"));
	cr_assert_eq(cfg.nbranches, UNION_MAX_BRANCHES);
	assert_branch(UNION_MAX_BRANCHES - 1, "/b63", BR_RO);
	free(list);
}

Test(aufs, too_many_branches)
{
	char *list = branch_list(UNION_MAX_BRANCHES + 1, "dirs=");

	assert_err(PARSE("-o", list, "/mnt"), "too many branches");
	cr_assert_eq(cfg.nbranches, 0);
	free(list);
}

/* ---- overlay syntax ---- */

Test(overlay, full)
{
	assert_ok(PARSE("-o", "lowerdir=/l1:/l2,upperdir=/u,workdir=/w", "/mnt"));
	cr_assert_eq(cfg.nbranches, 3);
	assert_branch(0, "/u", BR_RW);
	assert_branch(1, "/l1", BR_RO_WH);
	assert_branch(2, "/l2", BR_RO_WH);
	cr_assert_str_eq(cfg.workdir, "/w");
	cr_assert_eq(cfg.syntax, SYNTAX_OVERLAY);
	cr_assert_eq(cfg.whiteout, WH_FORMAT_OVERLAY);
}

Test(overlay, option_order_irrelevant)
{
	assert_ok(PARSE("-o", "workdir=/w,upperdir=/u,lowerdir=/l", "/mnt"));
	assert_branch(0, "/u", BR_RW);
	assert_branch(1, "/l", BR_RO_WH);
	cr_assert_str_eq(cfg.workdir, "/w");
}

Test(overlay, lowerdir_alone_is_read_only_union)
{
	assert_ok(PARSE("-o", "lowerdir=/l1:/l2:/l3", "/mnt"));
	cr_assert_eq(cfg.nbranches, 3);
	assert_branch(0, "/l1", BR_RO_WH);
	assert_branch(1, "/l2", BR_RO_WH);
	assert_branch(2, "/l3", BR_RO_WH);
	cr_assert_null(cfg.workdir);
	cr_assert_eq(cfg.syntax, SYNTAX_OVERLAY);
}

Test(overlay, escapes)
{
	assert_ok(PARSE("-o", "lowerdir=/l\\:1:/l2", "/mnt"));
	cr_assert_eq(cfg.nbranches, 2);
	assert_branch(0, "/l:1", BR_RO_WH);
	assert_branch(1, "/l2", BR_RO_WH);
	assert_ok(PARSE("-o", "lowerdir=/a\\,b:/c,upperdir=/u\\,v,workdir=/w\\,x", "/mnt"));
	assert_branch(0, "/u,v", BR_RW);
	assert_branch(1, "/a,b", BR_RO_WH);
	assert_branch(2, "/c", BR_RO_WH);
	cr_assert_str_eq(cfg.workdir, "/w,x");
	assert_ok(PARSE("-o", "lowerdir=/l,upperdir=/u:v,workdir=/w", "/mnt"));
	assert_branch(0, "/u:v", BR_RW);
}

Test(overlay, upper_and_work_pairing)
{
	assert_err(PARSE("-o", "lowerdir=/l,upperdir=/u", "/mnt"), "workdir");
	assert_err(PARSE("-o", "lowerdir=/l,workdir=/w", "/mnt"), "upperdir");
	assert_err(PARSE("-o", "upperdir=/u,workdir=/w", "/mnt"), "lowerdir");
}

Test(overlay, mixing_with_dirs)
{
	assert_err(PARSE("-o", "dirs=/a,lowerdir=/b", "/mnt"), "lowerdir");
	assert_err(PARSE("-o", "lowerdir=/b", "-o", "br=/a", "/mnt"), "br=");
	assert_err(PARSE("-o", "dirs=/a,upperdir=/u,workdir=/w", "/mnt"), "upperdir");
}

Test(overlay, empty_lists_and_paths)
{
	assert_err(PARSE("-o", "lowerdir=", "/mnt"), "empty branch list");
	assert_err(PARSE("-o", "lowerdir=/a:", "/mnt"), "empty branch path");
	assert_err(PARSE("-o", "lowerdir=/a::/b", "/mnt"), "empty branch path");
	assert_err(PARSE("-o", "lowerdir=/l,upperdir=,workdir=/w", "/mnt"), "upperdir");
	assert_err(PARSE("-o", "lowerdir=/l,upperdir=/u,workdir=", "/mnt"), "workdir");
}

Test(overlay, duplicates)
{
	assert_err(PARSE("-o", "lowerdir=/l:/m:/l/", "/mnt"), "'/l/'");
	assert_err(PARSE("-o", "lowerdir=/a,upperdir=/a/,workdir=/w", "/mnt"), "twice");
	assert_err(PARSE("-o", "lowerdir=/l,upperdir=/u,workdir=/u", "/mnt"), "'/u'");
}

Test(overlay, whiteout_override)
{
	assert_ok(PARSE("-o", "lowerdir=/l,upperdir=/u,workdir=/w,whiteout=aufs", "/mnt"));
	cr_assert_eq(cfg.whiteout, WH_FORMAT_AUFS);
	cr_assert_eq(cfg.syntax, SYNTAX_OVERLAY);
}

Test(overlay, max_branches_with_upper)
{
	char *list = branch_list(UNION_MAX_BRANCHES - 1, "lowerdir=");

	assert_ok(PARSE("-o", list, "-o", "upperdir=/u,workdir=/w", "/mnt"));
	cr_assert_eq(cfg.nbranches, UNION_MAX_BRANCHES);
	free(list);
}

Test(overlay, too_many_with_upper)
{
	char *list = branch_list(UNION_MAX_BRANCHES, "lowerdir=");

	assert_err(PARSE("-o", list, "-o", "upperdir=/u,workdir=/w", "/mnt"),
		   "too many branches");
	free(list);
}

/* ---- our options ---- */

Test(ours, whiteout)
{
	assert_ok(PARSE("-o", "lowerdir=/l,whiteout=overlay", "/mnt"));
	cr_assert_eq(cfg.whiteout, WH_FORMAT_OVERLAY);
	assert_ok(PARSE("-o", "dirs=/l,whiteout=aufs", "/mnt"));
	cr_assert_eq(cfg.whiteout, WH_FORMAT_AUFS);
	assert_err(PARSE("-o", "lowerdir=/l,whiteout=oci", "/mnt"), "'oci'");
	cr_assert_not_null(strstr(err, "whiteout"), "%s", err);
}

Test(ours, xino)
{
	assert_ok(PARSE("-o", "lowerdir=/l,xino=/var/lib/x", "/mnt"));
	cr_assert_str_eq(cfg.xino_path, "/var/lib/x");
	cr_assert_not(cfg.xino_off);
	assert_ok(PARSE("-o", "lowerdir=/l,xino=off", "/mnt"));
	cr_assert(cfg.xino_off);
	cr_assert_null(cfg.xino_path);
	assert_ok(PARSE("-o", "lowerdir=/l,noxino", "/mnt"));
	cr_assert(cfg.xino_off);
	cr_assert_null(cfg.xino_path);
	assert_ok(PARSE("-o", "lowerdir=/l,xino=auto", "/mnt"));
	cr_assert_not(cfg.xino_off);
	cr_assert_null(cfg.xino_path);
	assert_ok(PARSE("-o", "lowerdir=/l,xino=off,xino=on", "/mnt"));
	cr_assert_not(cfg.xino_off);
	cr_assert_null(cfg.xino_path);
	assert_ok(PARSE("-o", "lowerdir=/l,xino=/p,xino=off", "/mnt"));
	cr_assert(cfg.xino_off);
	cr_assert_null(cfg.xino_path);
	assert_ok(PARSE("-o", "lowerdir=/l,noxino,xino=/q", "/mnt"));
	cr_assert_not(cfg.xino_off);
	cr_assert_str_eq(cfg.xino_path, "/q");
	assert_err(PARSE("-o", "lowerdir=/l,xino=", "/mnt"), "xino");
	assert_err(PARSE("-o", "lowerdir=/l,noxino=1", "/mnt"), "noxino");
}

Test(ours, redirect_dir)
{
	assert_ok(PARSE("-o", "lowerdir=/l,redirect_dir=off", "/mnt"));
	cr_assert_not(cfg.redirect_dir);
	assert_ok(PARSE("-o", "lowerdir=/l,redirect_dir=nofollow", "/mnt"));
	cr_assert_not(cfg.redirect_dir);
	assert_ok(PARSE("-o", "lowerdir=/l,redirect_dir=off,redirect_dir=on", "/mnt"));
	cr_assert(cfg.redirect_dir);
	assert_ok(PARSE("-o", "lowerdir=/l,redirect_dir=off,redirect_dir=follow", "/mnt"));
	cr_assert(cfg.redirect_dir);
	assert_err(PARSE("-o", "lowerdir=/l,redirect_dir=maybe", "/mnt"), "'maybe'");
	cr_assert_not_null(strstr(err, "redirect_dir"), "%s", err);
}

Test(ours, passthrough)
{
	assert_ok(PARSE("-o", "lowerdir=/l,passthrough=off", "/mnt"));
	cr_assert_not(cfg.passthrough);
	assert_ok(PARSE("-o", "lowerdir=/l,passthrough=off,passthrough=on", "/mnt"));
	cr_assert(cfg.passthrough);
	cr_assert_str_eq(cfg.fuse_opts, "");
	assert_err(PARSE("-o", "lowerdir=/l,passthrough=yes", "/mnt"), "'yes'");
	cr_assert_not_null(strstr(err, "passthrough"), "%s", err);
	assert_err(PARSE("-o", "lowerdir=/l,passthrough", "/mnt"), "passthrough");
}

Test(argv, wait_fd)
{
	assert_ok(PARSE("-o", "lowerdir=/l", "/mnt"));
	cr_assert_eq(cfg.wait_fd, -1);
	assert_ok(PARSE("--wait-fd=4", "-o", "lowerdir=/l", "/dev/fd/3"));
	cr_assert_eq(cfg.wait_fd, 4);
	cr_assert_str_eq(cfg.mountpoint, "/dev/fd/3");
	assert_err(PARSE("--wait-fd=", "-o", "lowerdir=/l", "/mnt"), "--wait-fd");
	assert_err(PARSE("--wait-fd=x4", "-o", "lowerdir=/l", "/mnt"), "'x4'");
	assert_err(PARSE("--wait-fd=-1", "-o", "lowerdir=/l", "/mnt"), "--wait-fd");
	assert_err(PARSE("--wait-fd", "-o", "lowerdir=/l", "/mnt"), "--wait-fd");
}

Test(ours, userxattr)
{
	assert_ok(PARSE("-o", "lowerdir=/l,userxattr", "/mnt"));
	cr_assert(cfg.userxattr);
	assert_err(PARSE("-o", "lowerdir=/l,userxattr=on", "/mnt"), "userxattr");
}

Test(ours, kernel_overlay_options_ignored)
{
	assert_ok(PARSE("-o", "lowerdir=/l,upperdir=/u,workdir=/w,index=on,metacopy=off,"
			"nfs_export=off,uuid=null,volatile,xino=auto", "/mnt"));
	cr_assert_str_eq(cfg.fuse_opts, "");
	cr_assert_eq(cfg.nbranches, 2);
	cr_assert_not(cfg.xino_off);
	cr_assert(cfg.redirect_dir);
}

Test(ours, unknown_option_named)
{
	assert_err(PARSE("-o", "lowerdir=/l,foo", "/mnt"), "unknown option 'foo'");
	assert_err(PARSE("-o", "lowerdir=/l,foo=bar", "/mnt"), "'foo=bar'");
	assert_err(PARSE("-o", "lowerdirs=/l", "/mnt"), "'lowerdirs=/l'");
	assert_err(PARSE("-o", "lowerdir=/l,mand", "/mnt"), "'mand'");
}

/* ---- generic mount options ---- */

Test(generic, forwarded_in_order)
{
	assert_ok(PARSE("-o", "nosuid,lowerdir=/l,nodev,noatime,fsname=x,subtype=y", "/mnt"));
	cr_assert_str_eq(cfg.fuse_opts, "nosuid,nodev,noatime,fsname=x,subtype=y");
}

Test(generic, every_forwarded_option)
{
	static const char *const fwd[] = {
		"rw", "ro", "nosuid", "suid", "nodev", "dev", "noexec", "exec", "noatime",
		"atime", "sync", "async", "dirsync", "allow_root", "default_permissions",
		"auto_unmount", "fsname=a", "subtype=b", "max_read=131072",
	};
	size_t i;

	for (i = 0; i < sizeof(fwd) / sizeof(fwd[0]); i++) {
		char list[64];

		snprintf(list, sizeof(list), "lowerdir=/l,%s", fwd[i]);
		assert_ok(PARSE("-o", list, "/mnt"));
		cr_assert_str_eq(cfg.fuse_opts, fwd[i]);
		}
}

/* libfuse 3 refuses these; a mount must not fail for them. */
Test(generic, refused_by_libfuse_dropped)
{
	assert_ok(PARSE("-o", "relatime,norelatime,strictatime,nostrictatime,diratime,"
			"nodiratime,lazytime,nolazytime,blksize=4096,user=bob,context=x,"
			"fscontext=x,defcontext=x,rootcontext=x,nosuid,lowerdir=/l", "/mnt"));
	cr_assert_str_eq(cfg.fuse_opts, "nosuid");
}

Test(generic, fstab_only_dropped)
{
	assert_ok(PARSE("-o", "lowerdir=/l", "/mnt"));
	cr_assert_not_null(cfg.fuse_opts);
	cr_assert_str_eq(cfg.fuse_opts, "");
	assert_ok(PARSE("-o", "defaults,noauto,auto,nofail,_netdev,user,users,owner,nouser,"
			"x-systemd.automount,x-gvfs-show,comment=foo,lowerdir=/l", "/mnt"));
	cr_assert_str_eq(cfg.fuse_opts, "");
	assert_ok(PARSE("none", "/mnt", "-o", "defaults,nosuid,x-foo,ro,lowerdir=/l"));
	cr_assert_str_eq(cfg.fuse_opts, "nosuid,ro");
}

Test(generic, ro_sets_read_only)
{
	assert_ok(PARSE("-o", "ro,lowerdir=/l", "/mnt"));
	cr_assert(cfg.read_only);
	cr_assert_str_eq(cfg.fuse_opts, "ro");
	assert_ok(PARSE("-o", "ro,lowerdir=/l", "-o", "rw", "/mnt"));
	cr_assert_not(cfg.read_only);
	cr_assert_str_eq(cfg.fuse_opts, "ro,rw");
}

Test(generic, allow_other_and_default_permissions)
{
	assert_ok(PARSE("-o", "allow_other,lowerdir=/l", "/mnt"));
	cr_assert(cfg.allow_other);
	cr_assert(cfg.default_permissions);
	cr_assert_str_eq(cfg.fuse_opts, "allow_other,default_permissions");
	assert_ok(PARSE("-o", "default_permissions,lowerdir=/l,allow_other", "/mnt"));
	cr_assert(cfg.allow_other);
	cr_assert(cfg.default_permissions);
	cr_assert_str_eq(cfg.fuse_opts, "default_permissions,allow_other");
	assert_ok(PARSE("-o", "lowerdir=/l,default_permissions", "/mnt"));
	cr_assert(cfg.default_permissions);
	cr_assert_not(cfg.allow_other);
}

Test(generic, list_handling)
{
	/* On the command line: fsname=a\,b,subtype=c\\d */
	assert_ok(PARSE("-o", "lowerdir=/l,fsname=a\\,b,subtype=c\\\\d", "/mnt"));
	cr_assert_str_eq(cfg.fuse_opts, "fsname=a\\,b,subtype=c\\\\d");
	assert_ok(PARSE("-o", ",,ro,,lowerdir=/l,", "/mnt"));
	cr_assert_str_eq(cfg.fuse_opts, "ro");
	cr_assert_eq(cfg.nbranches, 1);
	assert_ok(PARSE("-o", "nodev", "src", "/mnt", "-o", "lowerdir=/l,nosuid", "-onoexec"));
	cr_assert_str_eq(cfg.fuse_opts, "nodev,nosuid,noexec");
}

/* ---- error handling ---- */

Test(errors, no_branches)
{
	assert_err(PARSE("-o", "ro", "/mnt"), "dirs=");
	assert_err(PARSE("/mnt"), "lowerdir=");
}

Test(errors, config_zeroed_on_error)
{
	assert_err(PARSE("-f", "src", "/mnt", "-o", "nosuid,dirs=/a:/b:/a"), "twice");
	cr_assert_eq(cfg.nbranches, 0);
	cr_assert_null(cfg.branches[0].path);
	cr_assert_null(cfg.mountpoint);
	cr_assert_null(cfg.source);
	cr_assert_null(cfg.fuse_opts);
	cr_assert_not(cfg.foreground);
}

Test(errors, error_buffer_sizes)
{
	const char *args[] = { "strata-unionfs", "-o", "lowerdir=/l,foo", "/mnt", NULL };
	char small[8];

	memset(small, 'X', sizeof(small));
	cr_assert_eq(union_opts_parse(4, (char **)args, &cfg, small, sizeof(small)),
		     OPTS_ERROR);
	cr_assert_eq(strlen(small), sizeof(small) - 1);
	cr_assert_str_eq(small, "unknown");
	/* No buffer at all is allowed too. */
	cr_assert_eq(union_opts_parse(4, (char **)args, &cfg, NULL, 0), OPTS_ERROR);
}

Test(errors, first_error_reported)
{
	assert_err(PARSE("-o", "foo,bar", "/mnt"), "'foo'");
	cr_assert_null(strstr(err, "bar"), "%s", err);
}

Test(errors, free_is_idempotent)
{
	assert_ok(PARSE("-o", "lowerdir=/l,upperdir=/u,workdir=/w,xino=/x", "src", "/mnt"));
	union_config_free(&cfg);
	cr_assert_eq(cfg.nbranches, 0);
	cr_assert_null(cfg.workdir);
	cr_assert_null(cfg.xino_path);
	union_config_free(&cfg);
}

Test(errors, real_mount_helper_line)
{
	/* What mount.fuse3 runs for an fstab line with options mount(8) adds. */
	assert_ok(PARSE("none", "/srv/merged", "-o",
			"rw,nosuid,nodev,relatime,lowerdir=/srv/l2:/srv/l1,"
			"upperdir=/srv/u,workdir=/srv/w,allow_other,x-systemd.requires=/srv"));
	cr_assert_str_eq(cfg.source, "none");
	cr_assert_str_eq(cfg.mountpoint, "/srv/merged");
	assert_branch(0, "/srv/u", BR_RW);
	assert_branch(1, "/srv/l2", BR_RO_WH);
	assert_branch(2, "/srv/l1", BR_RO_WH);
	cr_assert_str_eq(cfg.fuse_opts, "rw,nosuid,nodev,allow_other,default_permissions");
}

/* ---- usage ---- */

static void redirect_stdout(void)
{
	cr_redirect_stdout();
}

Test(usage, mentions_both_syntaxes_and_fstab, .init = redirect_stdout)
{
	static const char *const needles[] = {
		"usage: strata-unionfs", "SOURCE MOUNTPOINT", "dirs=", "br=", "ro+wh",
		"lowerdir=", "upperdir=", "workdir=", "whiteout=aufs|overlay", "xino=",
		"noxino", "redirect_dir=", "userxattr", "allow_other", "-f", "-d", "-s",
		"--help", "--version",
		"none /mnt fuse.strata-unionfs lowerdir=/l,upperdir=/u,workdir=/w 0 0",
	};
	FILE *out;
	char buf[8192];
	size_t n, i;

	union_opts_usage("strata-unionfs");
	fflush(stdout);
	out = cr_get_redirected_stdout();
	n = fread(buf, 1, sizeof(buf) - 1, out);
	buf[n] = '\0';
	cr_assert_gt(n, 500);
	for (i = 0; i < sizeof(needles) / sizeof(needles[0]); i++)
		cr_assert_not_null(strstr(buf, needles[i]), "usage lacks \"%s\"", needles[i]);
}

/* Command line and mount option parsing for strata-unionfs.
 *
 * Both option syntaxes end up in one struct union_config:
 *   aufs:     -o dirs=/u=rw:/l1=ro+wh:/l2=ro      (br= is a synonym)
 *   overlay:  -o lowerdir=/l1:/l2,upperdir=/u,workdir=/w
 * Branch 0 is always the top of the stack.  Parsing does no I/O: checking
 * that branches exist is branch.c's job, so this file is unit-testable. */
#ifndef STRATA_UNIONFS_OPTS_H
#define STRATA_UNIONFS_OPTS_H

#include <stdbool.h>
#include <stddef.h>

#define UNION_MAX_BRANCHES 64

enum branch_perm {
	BR_RO,    /* read-only; whiteouts inside it are not honoured (aufs "ro") */
	BR_RO_WH, /* read-only; whiteouts honoured (aufs "ro+wh", every overlay lowerdir) */
	BR_RW,    /* the writable top branch (aufs "rw", overlay upperdir) */
};

enum option_syntax { SYNTAX_NONE, SYNTAX_AUFS, SYNTAX_OVERLAY };
enum whiteout_format { WH_FORMAT_AUFS, WH_FORMAT_OVERLAY };

struct branch_spec {
	char *path; /* as given, unescaped; not yet canonicalised */
	enum branch_perm perm;
};

struct union_config {
	struct branch_spec branches[UNION_MAX_BRANCHES]; /* [0] = top */
	size_t nbranches;
	char *workdir;     /* overlay syntax only; NULL otherwise */
	char *mountpoint;
	char *source;      /* mount-helper SOURCE argument, used as fsname */
	enum option_syntax syntax;
	enum whiteout_format whiteout; /* format written; both are always read */
	char *xino_path;   /* -o xino=PATH; NULL = default location */
	bool xino_off;     /* -o xino=off (also noxino) */
	bool redirect_dir; /* -o redirect_dir=on|off, default on */
	bool userxattr;    /* -o userxattr: overlay xattrs in user.overlay.* */
	bool passthrough;  /* -o passthrough=on|off, default on: kernel FUSE passthrough */
	bool io_uring;     /* -o io_uring=on|off, default on: FUSE over io_uring if offered */
	bool foreground;   /* -f */
	bool debug;        /* -d (implies -f) */
	bool single_thread;/* -s */
	/* --wait-fd=N (for strata run): serve only once a byte can be read
	 * from fd N, so the daemon can start up before its connection is
	 * mounted; -1 when not given. */
	int wait_fd;
	bool read_only;    /* generic "ro" */
	bool allow_other;
	bool default_permissions;
	/* Generic mount options for the kernel/libfuse, comma separated, e.g.
	 * "nosuid,nodev,fsname=x,subtype=y"; never NULL after a successful parse. */
	char *fuse_opts;
};

enum opts_result {
	OPTS_OK,      /* mount with the config */
	OPTS_HELP,    /* -h/--help was given: print usage, exit 0 */
	OPTS_VERSION, /* -V/--version: print version, exit 0 */
	OPTS_ERROR,   /* err holds a one-line message */
};

/* Parses argv (argv[0] is the program name).  Accepts
 *   strata-unionfs [OPTIONS] MOUNTPOINT
 *   strata-unionfs SOURCE MOUNTPOINT [-o OPTS]   (mount.fuse3 convention)
 * with -o lists repeatable, anywhere on the line.  On OPTS_ERROR, err
 * (errlen bytes) names what is wrong, without a trailing newline. */
enum opts_result union_opts_parse(int argc, char **argv, struct union_config *cfg,
				  char *err, size_t errlen);

/* Frees every string in cfg and zeroes it. */
void union_config_free(struct union_config *cfg);

/* Usage text for --help, to stdout. */
void union_opts_usage(const char *progname);

#endif

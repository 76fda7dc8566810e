/* Shared harness for the strata-unionfs integration tests.
 *
 * Every Criterion test runs in its own worker process.  h_init() (the .init
 * hook every test uses) makes a fresh temp tree /tmp/strata-it.XXXXXX with
 *   u/ (upper, rw branch)   w/ (overlay workdir)   l0/ l1/ l2/ (lowers, top first)
 *   m/ (mountpoint)
 * and h_fini() unmounts everything mounted below that tree, kills the
 * daemons started for it, removes throwaway users and deletes the tree.  The
 * same sweep runs again in the Criterion runner process after every test
 * (also after a crash or a timeout, when the worker's fini never ran), driven
 * by a registry file the workers append to.
 *
 * Helpers that can fail call cr_assert, so a test reads as a list of
 * expectations; helpers named try_* return an error instead. */
#ifndef STRATA_IT_HARNESS_H
#define STRATA_IT_HARNESS_H

#include <criterion/criterion.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

enum ufmt { FMT_AUFS, FMT_OVL };

struct h_state {
	char root[128];
	char up[512];
	char wk[512];
	char lo[3][512];
	char mnt[512];
	const char *bin;   /* $STRATA_UNIONFS */
	enum ufmt fmt;     /* of the last h_mount */
	char opts[16384];  /* -o string of the last successful mount of H.mnt */
	pid_t daemon;      /* daemon serving H.mnt, 0 when not mounted */
};
extern struct h_state H;

/* Criterion hooks. */
void h_init(void);
void h_fini(void);

/* Default per-test timeout, seconds (set as Criterion's default timeout). */
#define H_TIMEOUT 150

#define HTEST(suite, name, ...) \
	Test(suite, name, .init = h_init, .fini = h_fini, ##__VA_ARGS__)

/* One body, two tests: name_aufs (dirs= syntax, .wh. files written) and
 * name_ovl (lowerdir= syntax, char 0:0 whiteouts and trusted.overlay.*). */
#define UTEST(suite, name, ...)                                                   \
	static void suite##__##name(enum ufmt fmt);                               \
	Test(suite, name##_aufs, .init = h_init, .fini = h_fini, ##__VA_ARGS__) { \
		suite##__##name(FMT_AUFS);                                        \
	}                                                                         \
	Test(suite, name##_ovl, .init = h_init, .fini = h_fini, ##__VA_ARGS__) {  \
		suite##__##name(FMT_OVL);                                         \
	}                                                                         \
	static void suite##__##name(enum ufmt fmt)

/* ---- paths ---- */
/* printf into one of 64 rotating PATH_MAX buffers (enough for a statement). */
char *pf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#define UP(rel) pf("%s/%s", H.up, (rel))
#define LO(i, rel) pf("%s/%s", H.lo[i], (rel))
#define MN(rel) pf("%s/%s", H.mnt, (rel))
#define RT(rel) pf("%s/%s", H.root, (rel))

/* ---- building branch content (directly on the backing fs) ---- */
void mk_parents(const char *path);                 /* mkdir -p dirname(path) */
void mk_dir(const char *path, mode_t mode);         /* mkdir -p path; chmod */
void mk_file(const char *path, const char *content, mode_t mode);
void mk_filen(const char *path, const void *buf, size_t len, mode_t mode);
/* Copies the file `from` (outside the branches) to path; returns its bytes
 * (malloc'ed), *len their count. */
char *mk_copy(const char *from, const char *path, mode_t mode, size_t *len);
void mk_symlink(const char *target, const char *path);
void mk_sparse(const char *path, off_t size, off_t data_at, const char *data);
void mk_wh(enum ufmt fmt, const char *dir, const char *name); /* whiteout */
void mk_opq(enum ufmt fmt, const char *dir);                   /* opaque dir */
void set_times(const char *path, time_t mtime_s, long mtime_ns);

/* ---- inspecting the backing fs ---- */
bool exists(const char *path);                 /* lstat succeeds */
bool is_whiteout(enum ufmt fmt, const char *dir, const char *name);
bool is_any_whiteout(const char *dir, const char *name); /* either format */
bool is_opaque(const char *dir);               /* any of the 3 markers */
int count_whiteouts(const char *dir);          /* both formats, non-recursive */
/* Names in dir (not . ..), sorted, newline separated, "" when empty;
 * skip_meta drops ".wh..wh.strata". */
char *ls(const char *dir, bool skip_meta);
int count_entries(const char *dir, bool skip_meta);
/* Recursive description of a tree: one line per object, sorted:
 * "rel type mode size uid gid [content-hash|->target|rdev]".  Names in
 * skip_meta mode drop ".wh..wh.strata" (aufs meta dir). */
char *tree(const char *dir, bool with_owner, bool skip_meta);

/* ---- file contents ---- */
char *slurp(const char *path);                 /* NULL + errno on failure */
void spew(const char *path, const char *content); /* O_WRONLY|O_CREAT|O_TRUNC 0644 */
int try_spew(const char *path, const char *content, int flags);
/* readlink into a malloc'ed NUL-terminated string, NULL on error */
char *rdlink(const char *path);

/* ---- mounting ---- */
/* Builds the option string for fmt with nlower lowers (l0..), plus extra. */
const char *union_opts(enum ufmt fmt, int nlower, const char *extra);
/* Runs `$STRATA_UNIONFS -o opts mnt`; on exit 0 asserts mnt is mounted and
 * records the daemon.  Returns the exit status (or -1 signal/timeout);
 * stderr text in err (may be NULL). */
int try_mount_at(const char *opts, const char *mnt, char *err, size_t errlen);
/* Asserting form on H.mnt; also sets H.fmt/H.opts. */
void h_mount(enum ufmt fmt, int nlower, const char *extra);
void h_mount_opts(const char *opts);
void h_umount(void);                 /* H.mnt; waits for the daemon to exit */
void h_remount(void);                /* umount + mount with the same options */
void h_umount_path(const char *mnt); /* any mount below H.root; asserts */
bool is_mounted(const char *path);
/* mountinfo fields of the top mount at path; returns false when not mounted */
bool mount_info(const char *path, char *fstype, size_t ftl, char *mntopts,
		size_t mol, char *superopts, size_t sol);
pid_t find_daemon(const char *mnt);  /* strata-unionfs process serving mnt */
bool pid_alive(pid_t pid);
bool wait_pid_gone(pid_t pid, int ms);
void mount_tmpfs(const char *path, const char *opts); /* registers for sweep */

/* ---- running programs ---- */
struct run_result {
	int status;        /* exit code; -1 killed by signal; -2 timeout */
	char out[8192];
	char err[8192];
};
/* Runs argv (argv[0] looked up in PATH) with stdin </dev/null, as uid/gid
 * when uid != (uid_t)-1; extra_env entries "NAME=value" are added. */
void run(struct run_result *r, char *const argv[], uid_t uid, gid_t gid,
	 char *const extra_env[]);
/* sh -c cmd (root) */
int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- running code as another user ---- */
/* Forks, drops to uid/gid (no supplementary groups), runs fn(arg).  fn
 * reports failures with UCHECK and returns 0 on success.  On failure the
 * messages it wrote are returned in msg. */
int as_user(uid_t uid, gid_t gid, int (*fn)(void *), void *arg, char *msg, size_t msglen);
extern int h_msgfd; /* inside an as_user child: where UCHECK writes */
#define UCHECK(cond, ...)                                                          \
	do {                                                                       \
		if (!(cond)) {                                                     \
			dprintf(h_msgfd, "%s:%d: %s: ", __FILE__, __LINE__, #cond); \
			dprintf(h_msgfd, __VA_ARGS__);                             \
			dprintf(h_msgfd, " (errno %s)\n", strerror(errno));        \
			return 1;                                                  \
		}                                                                  \
	} while (0)
/* Creates a throwaway user (removed by the sweep); returns uid/gid. */
void make_user(uid_t *uid, gid_t *gid);
/* Sets path's permission bits, restored by the sweep (machine-wide tweaks
 * such as making /dev/fuse usable by a throwaway user). */
void chmod_restored(const char *path, mode_t mode);
/* Registers a symlink the test made outside H.root, removed by the sweep. */
void reg_symlink(const char *path);
/* chown -R path to uid/gid (no following symlinks). */
void chown_tree(const char *path, uid_t uid, gid_t gid);

/* ---- misc ---- */
void rm_rf(const char *path); /* fd-based, any depth, does not cross mounts */
uint64_t hash_bytes(const void *p, size_t n);
/* Like cr_assert but for errno results: assert that expr == -1 with errno e. */
#define assert_errno(expr, e)                                                       \
	do {                                                                        \
		errno = 0;                                                          \
		long _r = (long)(expr);                                             \
		int _e = errno;                                                     \
		cr_assert(_r == -1 && _e == (e), "%s: expected -1/%s, got %ld/%s", #expr, \
			  strerrorname_np(e), _r, _e ? strerrorname_np(_e) : "0");  \
	} while (0)
#define assert_ok(expr)                                                             \
	do {                                                                        \
		errno = 0;                                                          \
		long _r = (long)(expr);                                             \
		cr_assert(_r != -1, "%s failed: %s", #expr, strerror(errno));       \
	} while (0)
#define assert_str(got, want)                                                       \
	do {                                                                        \
		const char *_g = (got), *_w = (want);                               \
		cr_assert(_g != NULL, "%s: NULL (%s)", #got, strerror(errno));      \
		cr_assert(strcmp(_g, _w) == 0, "%s: got \"%s\", want \"%s\"", #got, _g, _w); \
	} while (0)
#define assert_file(path, want) assert_str(slurp(path), (want))

/* ---- internal, shared by harness.c and harness_run.c ---- */
struct strv {
	char **v;
	size_t n, cap;
};
void strv_push(struct strv *s, char *str);
char *strv_join_sorted(struct strv *s); /* frees the elements */
void msleep(int ms);
char *read_fd_all(int fd, size_t *len);
void mkdir_p(const char *path, mode_t mode);

#endif

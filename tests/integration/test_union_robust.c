/* Semantic points 14 and 15: backing-filesystem errors reach the caller as
 * an errno and the mount stays up; symlinks inside a branch never make the
 * daemon touch anything outside the branch roots; fds stay bounded by
 * referenced inodes (state freed on FORGET); requests are served in parallel. */
#include "harness.h"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int count_fds(pid_t pid)
{
	DIR *d = opendir(pf("/proc/%d/fd", pid));
	if (!d)
		return -1;
	int n = 0;
	while (readdir(d))
		n++;
	closedir(d);
	return n - 2;
}

HTEST(robust, backing_error_reaches_caller_and_mount_stays_up)
{
	/* the lower branch is itself a FUSE mount whose daemon we kill: every
	 * access to it then fails with ENOTCONN */
	mk_file(LO(1, "seen"), "seen", 0644);
	mk_file(LO(1, "unseen"), "unseen", 0644);
	mk_file(LO(1, "dir/x"), "x", 0644);
	const char *inner = H.lo[0];
	char err[4096];
	cr_assert_eq(try_mount_at(pf("lowerdir=%s,xino=%s", H.lo[1], RT("ixino")), inner, err, sizeof err), 0, "%s", err);
	pid_t inner_pid = find_daemon(inner);
	cr_assert_gt(inner_pid, 0);
	mk_file(UP("upperfile"), "upper", 0644);
	h_mount(FMT_OVL, 1, NULL);
	assert_file(MN("seen"), "seen");
	cr_assert(kill(inner_pid, SIGKILL) == 0);
	cr_assert(wait_pid_gone(inner_pid, 5000));
	errno = 0;
	int fd = open(MN("unseen"), O_RDONLY);
	int e = errno;
	cr_assert(fd < 0 && e != 0, "open of a name on a dead branch: fd %d errno %d", fd, e);
	errno = 0;
	DIR *d = opendir(MN("dir"));
	if (d) {
		errno = 0;
		struct dirent *de;
		while ((de = readdir(d)))
			;
		cr_assert_neq(errno, 0, "listing a dir of a dead branch gave no error");
		closedir(d);
	}
	/* still up, still serving what does not need the broken branch */
	cr_assert(pid_alive(H.daemon), "daemon died after a backing error");
	cr_assert(is_mounted(H.mnt));
	assert_file(MN("upperfile"), "upper");
	spew(MN("upperfile"), "rewritten");
	assert_file(MN("upperfile"), "rewritten");
	cr_assert(pid_alive(H.daemon));
}

UTEST(robust, lower_symlink_to_root_is_not_merged)
{
	/* upper d is a dir, lower d a symlink to "/": nothing of the host shows */
	mk_file(UP("d/mine"), "m", 0644);
	mk_symlink("/", LO(0, "d"));
	mk_symlink("/etc", LO(0, "esc"));
	h_mount(fmt, 1, NULL);
	assert_str(ls(MN("d"), false), "mine");
	assert_errno(access(MN("d/etc"), F_OK), ENOENT);
	assert_errno(access(MN("d/proc"), F_OK), ENOENT);
	/* a plain symlink to outside is just a symlink; the VFS follows it */
	struct stat st, host;
	assert_ok(lstat(MN("esc"), &st));
	cr_assert(S_ISLNK(st.st_mode));
	assert_str(rdlink(MN("esc")), "/etc");
	assert_ok(stat(MN("esc/passwd"), &st));
	assert_ok(stat("/etc/passwd", &host));
	cr_assert(st.st_ino == host.st_ino && st.st_dev == host.st_dev);
}

UTEST(robust, lower_dir_swapped_for_symlink_to_root)
{
	mk_file(LO(0, "dir/x"), "x", 0644);
	h_mount(fmt, 1, NULL);
	int fd = open(MN("dir"), O_RDONLY | O_DIRECTORY);
	cr_assert(fd >= 0);
	assert_str(ls(MN("dir"), false), "x");
	/* behind the daemon's back: the dir becomes a symlink to / */
	cr_assert(rename(LO(0, "dir"), LO(0, "dir.old")) == 0);
	cr_assert(symlink("/", LO(0, "dir")) == 0);
	struct stat st;
	errno = 0;
	int r = fstatat(fd, "etc", &st, AT_SYMLINK_NOFOLLOW);
	cr_assert(r < 0, "the daemon followed a branch symlink: dir/etc found through the mount");
	cr_assert(openat(fd, "etc/passwd", O_RDONLY) < 0, "dir/etc/passwd opened through the mount");
	/* a fresh listing through the old handle shows no host names */
	int fd2 = openat(fd, ".", O_RDONLY | O_DIRECTORY);
	if (fd2 >= 0) {
		DIR *d = fdopendir(fd2);
		struct dirent *e;
		while (d && (e = readdir(d)))
			cr_assert(strcmp(e->d_name, "etc") && strcmp(e->d_name, "proc") &&
					  strcmp(e->d_name, "usr"),
				  "host name \"%s\" listed through the union", e->d_name);
		if (d)
			closedir(d);
	}
	close(fd);
	cr_assert(pid_alive(H.daemon));
}

UTEST(robust, writes_never_follow_symlinks_planted_in_upper)
{
	mk_file(LO(0, "a/b/f"), "F", 0644);
	mk_file(LO(0, "m/x"), "x", 0644);
	mk_dir(UP("m"), 0755);
	mkdir_p(RT("outside"), 0755);
	h_mount(fmt, 1, NULL);
	int fd = open(MN("a/b"), O_RDONLY | O_DIRECTORY);
	int mfd = open(MN("m"), O_RDONLY | O_DIRECTORY);
	cr_assert(fd >= 0 && mfd >= 0);
	/* plant symlinks where the daemon will create upper directories */
	cr_assert(symlink(RT("outside"), UP("a")) == 0);
	cr_assert(rename(UP("m"), RT("m.old")) == 0);
	cr_assert(symlink(RT("outside"), UP("m")) == 0);
	int w = openat(fd, "f", O_WRONLY | O_APPEND);
	if (w >= 0) {
		ssize_t n = write(w, "+", 1);
		(void)n;
		close(w);
	}
	int c = openat(mfd, "created", O_WRONLY | O_CREAT, 0644);
	if (c >= 0)
		close(c);
	unlinkat(mfd, "x", 0);
	assert_str(ls(RT("outside"), false), "");
	close(fd);
	close(mfd);
	cr_assert(pid_alive(H.daemon));
}

HTEST(robust, fds_bounded_and_freed_on_forget, .timeout = 120)
{
	mkdir_p(LO(0, "many"), 0755);
	for (int i = 0; i < 3000; i++)
		mk_file(LO(0, pf("many/f%04d", i)), "x", 0644);
	mk_file(UP("many/u"), "u", 0644);
	h_mount(FMT_OVL, 1, NULL);
	cr_assert_gt(H.daemon, 0, "daemon not found");
	int base = count_fds(H.daemon);
	cr_assert_geq(base, 0);
	struct stat st;
	for (int i = 0; i < 3000; i++)
		assert_ok(stat(MN(pf("many/f%04d", i)), &st));
	free(ls(MN("many"), false));
	int peak = count_fds(H.daemon);
	/* make the kernel forget the inodes */
	int dc = open("/proc/sys/vm/drop_caches", O_WRONLY);
	cr_assert(dc >= 0);
	cr_assert_eq(write(dc, "2", 1), 1);
	close(dc);
	struct timespec ts = {0, 300000000};
	nanosleep(&ts, NULL);
	int after = count_fds(H.daemon);
	cr_assert_leq(after, base + 64, "daemon fds: %d at start, %d after 3000 lookups, %d after the kernel forgot them",
		      base, peak, after);
	assert_file(MN("many/f2999"), "x");
}

struct reader {
	int id;
	int errors;
};

static void *reader_main(void *arg)
{
	struct reader *r = arg;
	char path[PATH_MAX], want[32], buf[64];
	for (int i = 0; i < 300; i++) {
		int k = (r->id * 37 + i) % 64;
		snprintf(path, sizeof path, "%s/f%02d", H.mnt, k);
		snprintf(want, sizeof want, "content %d", k);
		int fd = open(path, O_RDONLY);
		if (fd < 0) {
			r->errors++;
			continue;
		}
		ssize_t n = read(fd, buf, sizeof buf - 1);
		close(fd);
		if (n < 0 || (buf[n] = 0, strcmp(buf, want)))
			r->errors++;
		struct stat st;
		if (stat(path, &st) < 0)
			r->errors++;
	}
	return NULL;
}

HTEST(robust, parallel_readers)
{
	for (int k = 0; k < 64; k++)
		mk_file(pf("%s/f%02d", H.lo[k % 2], k), pf("content %d", k), 0644);
	h_mount(FMT_OVL, 2, NULL);
	pthread_t t[8];
	struct reader r[8];
	for (int i = 0; i < 8; i++) {
		r[i] = (struct reader){i, 0};
		cr_assert(pthread_create(&t[i], NULL, reader_main, &r[i]) == 0);
	}
	int errors = 0;
	for (int i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		errors += r[i].errors;
	}
	cr_assert_eq(errors, 0, "%d errors in parallel reads", errors);
}

struct appender {
	int id;
	int err;
};

static void *appender_main(void *arg)
{
	struct appender *a = arg;
	char line[32];
	snprintf(line, sizeof line, "line %d\n", a->id);
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/shared", H.mnt);
	int fd = open(path, O_WRONLY | O_APPEND);
	if (fd < 0 || write(fd, line, strlen(line)) != (ssize_t)strlen(line))
		a->err = errno ? errno : -1;
	if (fd >= 0)
		close(fd);
	return NULL;
}

UTEST(robust, concurrent_first_writes_copy_up_once)
{
	mk_file(LO(0, "shared"), "lower\n", 0644);
	h_mount(fmt, 1, NULL);
	pthread_t t[8];
	struct appender a[8];
	for (int i = 0; i < 8; i++) {
		a[i] = (struct appender){i, 0};
		cr_assert(pthread_create(&t[i], NULL, appender_main, &a[i]) == 0);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		cr_assert_eq(a[i].err, 0, "appender %d: %s", i, strerror(a[i].err));
	}
	char *c = slurp(MN("shared"));
	cr_assert(c);
	cr_assert(!strncmp(c, "lower\n", 6), "lower data lost: %s", c);
	for (int i = 0; i < 8; i++) {
		char *p = strstr(c, pf("line %d\n", i));
		cr_assert(p, "line %d lost by a racing copy-up: %s", i, c);
		cr_assert(!strstr(p + 1, pf("line %d\n", i)), "line %d twice", i);
	}
	cr_assert_eq(strlen(c), 6 + 8 * 7, "content: %s", c);
	assert_str(slurp(UP("shared")), c);
}

HTEST(robust, blocked_lock_waiter_does_not_stall_other_requests)
{
	mk_file(LO(0, "f"), "f", 0644);
	mk_file(LO(0, "g"), "g", 0644);
	h_mount(FMT_OVL, 1, NULL);
	int fd = open(MN("f"), O_RDWR);
	cr_assert(fd >= 0);
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
	assert_ok(fcntl(fd, F_SETLK, &fl));
	pid_t c = fork();
	cr_assert(c >= 0);
	if (c == 0) {
		int cfd = open(MN("f"), O_RDWR);
		struct flock l = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
		alarm(30);
		_exit(fcntl(cfd, F_SETLKW, &l) == 0 ? 0 : 1);
	}
	struct timespec ts = {0, 200000000};
	nanosleep(&ts, NULL);
	/* while the child waits for the lock, other requests are answered */
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < 50; i++) {
		assert_file(MN("g"), "g");
		spew(MN(pf("n%d", i)), "n");
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double dt = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	cr_assert_lt(dt, 10.0, "requests stalled for %.1f s behind a blocked lock", dt);
	fl.l_type = F_UNLCK;
	assert_ok(fcntl(fd, F_SETLK, &fl));
	int status;
	waitpid(c, &status, 0);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "lock waiter never got the lock");
	close(fd);
}

static int create_truncating(void *arg)
{
	int fd = open((const char *)arg, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	UCHECK(fd < 0 && errno == EACCES, "open(O_CREAT|O_TRUNC) of a 0600 file of root");
	return 0;
}

/* A CREATE that finds the name taken (another creator was first; here the
 * file appears behind the kernel's cached "no such name") must not open
 * the file on the caller's behalf: the kernel skips its permission checks
 * for a file it thinks it created.  The open is retried as an open of an
 * existing file, with those checks. */
HTEST(robust, create_that_finds_the_file_there_checks_permissions)
{
	uid_t uid;
	gid_t gid;
	char msg[512] = "";
	struct stat st;

	make_user(&uid, &gid);
	assert_ok(chmod(H.root, 0755));
	mk_dir(UP("d"), 0777);
	h_mount(FMT_OVL, 1, NULL);
	assert_ok(chmod(H.mnt, 0755));
	assert_errno(stat(MN("d/f"), &st), ENOENT);
	mk_file(UP("d/f"), "secret", 0600);
	cr_assert_eq(as_user(uid, gid, create_truncating, MN("d/f"), msg, sizeof msg), 0, "%s", msg);
	assert_file(UP("d/f"), "secret");
	/* Without O_EXCL, root's create opens what is there, as on any
	 * filesystem. */
	int fd = open(MN("d/f"), O_RDWR | O_CREAT, 0644);
	cr_assert(fd >= 0, "open(O_CREAT) of an existing file: %s", strerror(errno));
	close(fd);
	assert_file(MN("d/f"), "secret");
}

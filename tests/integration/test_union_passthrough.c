/* Kernel FUSE passthrough: which files the kernel reads and writes directly,
 * and the rules that keep every open of a file working while some of its
 * opens are passed through and others are not.
 *
 * A passed-through open is seen from outside: its reads come from the
 * backing file itself, so a change made behind the union's back shows at
 * once, where a page-cache open keeps serving what it read before.  The
 * same test with passthrough=off proves the probe can tell the two apart. */
#include "harness.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

/* Reads 4 bytes at 0 through fd, changes them in the backing file directly,
 * reads again through fd: true when the second read saw the change. */
static bool sees_backing_change(int fd, const char *backing)
{
	char got[5] = "";

	cr_assert_eq(pread(fd, got, 4, 0), 4, "first read: %s", strerror(errno));
	int b = open(backing, O_WRONLY);
	cr_assert(b >= 0, "%s: %s", backing, strerror(errno));
	cr_assert_eq(pwrite(b, "BBBB", 4, 0), 4);
	close(b);
	cr_assert_eq(pread(fd, got, 4, 0), 4, "second read: %s", strerror(errno));
	return !memcmp(got, "BBBB", 4);
}

UTEST(passthrough, upper_file_reads_come_from_the_backing_file)
{
	mk_file(UP("f"), "AAAA upper", 0644);
	h_mount(fmt, 1, NULL);
	int fd = open(MN("f"), O_RDONLY);
	cr_assert(fd >= 0);
	cr_assert(sees_backing_change(fd, UP("f")), "the open was not passed through");
	close(fd);
}

UTEST(passthrough, off_keeps_the_page_cache)
{
	mk_file(UP("f"), "AAAA upper", 0644);
	h_mount(fmt, 1, "passthrough=off");
	int fd = open(MN("f"), O_RDONLY);
	cr_assert(fd >= 0);
	cr_assert(!sees_backing_change(fd, UP("f")), "passthrough=off still passed through");
	close(fd);
}

/* Nothing can be copied up in a read-only union, so lower files pass. */
HTEST(passthrough, read_only_union_passes_lower_files_through)
{
	mk_file(LO(0, "f"), "AAAA lower", 0644);
	h_mount_opts(pf("lowerdir=%s", H.lo[0]));
	int fd = open(MN("f"), O_RDONLY);
	cr_assert(fd >= 0);
	cr_assert(sees_backing_change(fd, LO(0, "f")), "the lower file was not passed through");
	close(fd);
}

/* A lower file read in a writable union may be copied up under its open
 * descriptors, which must then read the copy (as on overlayfs): it is not
 * passed through to the lower file, and a writer's copy-up reaches it. */
UTEST(passthrough, lower_reader_follows_a_copy_up)
{
	mk_file(LO(0, "f"), "lower content", 0644);
	h_mount(fmt, 1, NULL);
	int ro = open(MN("f"), O_RDONLY);
	cr_assert(ro >= 0);
	char got[32] = "";
	cr_assert_eq(pread(ro, got, 5, 0), 5);
	int rw = open(MN("f"), O_RDWR);
	cr_assert(rw >= 0, "write open while a reader is open: %s", strerror(errno));
	cr_assert_eq(pwrite(rw, "UPPER", 5, 0), 5);
	close(rw);
	cr_assert_eq(pread(ro, got, 13, 0), 13);
	cr_assert(!memcmp(got, "UPPER content", 13), "reader saw \"%.13s\"", got);
	close(ro);
	assert_file(LO(0, "f"), "lower content");
	assert_file(UP("f"), "UPPER content");
}

/* Every order of read-only, read-write, append and truncating opens of a
 * lower file, some on its lower copy and some on the upper one, passed
 * through or not: none may fail (the kernel answers a broken io-mode rule
 * with EIO), and the data stays right. */
UTEST(passthrough, opens_of_every_mode_mix_without_errors)
{
	static const int modes[] = { O_RDONLY, O_RDWR, O_WRONLY | O_APPEND, O_RDWR | O_TRUNC };
	mk_file(LO(0, "f"), "0123456789", 0644);
	h_mount(fmt, 1, NULL);
	int fds[8];
	size_t n = 0, len = 10;
	for (size_t round = 0; round < 3; round++) {
		for (size_t i = 0; i < 4; i++) {
			int m = modes[(i + round) % 4];
			fds[n] = open(MN("f"), m);
			cr_assert(fds[n] >= 0, "round %zu open %zu (flags 0%o): %s", round, i, m,
				  strerror(errno));
			if (m & O_TRUNC)
				len = 0;
			if (m & O_APPEND) {
				cr_assert_eq(write(fds[n], "ab", 2), 2);
				len += 2;
			}
			n++;
			/* Close the oldest now and then, so the file goes
			 * back and forth between having opens and none. */
			if (n == 3 || i == 3) {
				while (n)
					cr_assert_eq(close(fds[--n]), 0);
			}
		}
		struct stat st;
		assert_ok(stat(MN("f"), &st));
		cr_assert_eq(st.st_size, (off_t)len, "round %zu: size %lld, want %zu", round,
			     (long long)st.st_size, len);
	}
	while (n)
		close(fds[--n]);
	assert_file(LO(0, "f"), "0123456789");
}

/* Passed-through writes change the size and times without asking the
 * daemon; stat through the union must see them at once. */
UTEST(passthrough, writes_show_in_stat_at_once)
{
	h_mount(fmt, 1, NULL);
	int fd = open(MN("new"), O_CREAT | O_WRONLY, 0644);
	cr_assert(fd >= 0);
	struct stat before, after;
	assert_ok(fstat(fd, &before));
	char buf[65536];
	memset(buf, 'x', sizeof buf);
	for (int i = 0; i < 16; i++)
		cr_assert_eq(write(fd, buf, sizeof buf), (ssize_t)sizeof buf);
	assert_ok(stat(MN("new"), &after));
	cr_assert_eq(after.st_size, 16 * (off_t)sizeof buf);
	cr_assert(after.st_blocks >= 16 * (blkcnt_t)sizeof buf / 512 || after.st_blocks == 0);
	close(fd);
	assert_ok(stat(UP("new"), &after));
	cr_assert_eq(after.st_size, 16 * (off_t)sizeof buf);
}

/* A shared writable mapping of a passed-through file maps the upper file. */
UTEST(passthrough, shared_mapping_writes_reach_the_upper_file)
{
	char data[8192];
	memset(data, 'a', sizeof data);
	mk_filen(UP("f"), data, sizeof data, 0644);
	h_mount(fmt, 1, NULL);
	int fd = open(MN("f"), O_RDWR);
	cr_assert(fd >= 0);
	char *m = mmap(NULL, sizeof data, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	cr_assert(m != MAP_FAILED, "mmap: %s", strerror(errno));
	memcpy(m + 4100, "MAPPED", 6);
	assert_ok(msync(m, sizeof data, MS_SYNC));
	munmap(m, sizeof data);
	close(fd);
	int u = open(UP("f"), O_RDONLY);
	cr_assert(u >= 0);
	char got[6];
	cr_assert_eq(pread(u, got, 6, 4100), 6);
	close(u);
	cr_assert(!memcmp(got, "MAPPED", 6));
}

/* ---- a lower file opened to execute it ---- */

/* Starts path with argv[1] "30" and waits until it runs path (not the
 * child before its exec). */
static pid_t start_running(const char *path)
{
	char exe[PATH_MAX], link[64];
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		execl(path, path, "30", (char *)NULL);
		_exit(127);
	}
	snprintf(link, sizeof(link), "/proc/%d/exe", (int)pid);
	for (int t = 0; t < 200; t++) {
		ssize_t n = readlink(link, exe, sizeof(exe) - 1);
		if (n > 0 && (exe[n] = '\0', strcmp(exe, path) == 0))
			return pid;
		msleep(10);
	}
	cr_assert_fail("%s did not start", path);
	return -1;
}

static void stop_running(pid_t pid)
{
	int status;
	kill(pid, SIGKILL);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFSIGNALED(status), "status %#x: the program did not run", status);
}

static uint64_t hash_file(const char *path)
{
	size_t len;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	cr_assert(fd >= 0, "%s: %s", path, strerror(errno));
	char *data = read_fd_all(fd, &len);
	close(fd);
	cr_assert(data);
	uint64_t h = hash_bytes(data, len);
	free(data);
	return h;
}

/* A lower program is passed through to its lower file while it runs
 * (docs/unionfs.md, "Executables"): as on any filesystem it cannot be
 * written meanwhile, and neither can it while a handle opened during the
 * run stays open, since that handle reads the lower file too.  Once they
 * are closed, a write copies it up as usual, and the lower file never
 * changes.  passthrough=off shows the same program through the page
 * cache, where only the run itself blocks writes. */
static void check_running_lower_program(enum ufmt fmt, bool passthrough)
{
	size_t len;
	char *data = mk_copy("/bin/sleep", LO(0, "bin/prog"), 0755, &len);
	uint64_t lower = hash_bytes(data, len);
	free(data);
	h_mount(fmt, 1, passthrough ? NULL : "passthrough=off");
	char *prog = MN("bin/prog");
	pid_t pid = start_running(prog);

	assert_errno(open(prog, O_WRONLY), ETXTBSY);
	int reader = open(prog, O_RDONLY);
	cr_assert(reader >= 0, "a read-only open while it runs: %s", strerror(errno));
	/* A metadata change copies it up under the running program. */
	assert_ok(chmod(prog, 0700));
	stop_running(pid);

	if (passthrough) {
		assert_errno(open(prog, O_WRONLY | O_APPEND), ETXTBSY);
		assert_errno(truncate(prog, 0), ETXTBSY);
		assert_errno(open(prog, O_RDONLY | O_TRUNC), ETXTBSY);
	}
	cr_assert_eq(hash_file(prog), lower, "the union shows other data");
	close(reader);
	int w = open(prog, O_WRONLY | O_APPEND);
	cr_assert(w >= 0, "a write once the handles are closed: %s", strerror(errno));
	cr_assert_eq(write(w, "tail", 4), 4);
	close(w);
	struct stat st, lst;
	assert_ok(stat(prog, &st));
	assert_ok(stat(LO(0, "bin/prog"), &lst));
	cr_assert_eq(st.st_size, lst.st_size + 4, "size %lld after the append",
		     (long long)st.st_size);
	cr_assert_eq(st.st_mode & 07777, 0700);
	cr_assert_eq(hash_file(LO(0, "bin/prog")), lower, "the lower file changed");
	cr_assert_eq(lst.st_mode & 07777, 0755, "the lower mode changed");
	/* It still runs, from the upper copy now. */
	stop_running(start_running(prog));
}

UTEST(passthrough, running_lower_program_is_written_only_once_closed)
{
	check_running_lower_program(fmt, true);
}

UTEST(passthrough, running_lower_program_through_the_page_cache)
{
	check_running_lower_program(fmt, false);
}

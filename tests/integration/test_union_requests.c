/* Round trips: what the kernel asks the daemon for a few common operations.
 * Each request to the daemon costs a context switch each way, tens of
 * microseconds on a VM, so the requests a mount no longer needs are a
 * property worth keeping.  The daemon runs in the foreground with -d, whose
 * log names every request ("opcode: WRITE"), and the tests count them.
 * Each test that asserts an absence also shows the request where it is
 * expected, so a log the count cannot read fails instead of passing. */
#include "harness.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static char logpath[PATH_MAX];

/* Mounts H.mnt with -d, stderr to the log; returns the daemon's pid. */
static pid_t mount_traced(const char *opts)
{
	snprintf(logpath, sizeof logpath, "%s/daemon.log", H.root);
	pid_t c = fork();
	cr_assert(c >= 0);
	if (c == 0) {
		int log = open(logpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		int nul = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (log < 0 || nul < 0 || dup2(nul, 0) < 0 || dup2(nul, 1) < 0 || dup2(log, 2) < 0)
			_exit(126);
		execl(H.bin, H.bin, "-d", "-o", opts, H.mnt, (char *)NULL);
		_exit(127);
	}
	for (int t = 0; t < 200 && !is_mounted(H.mnt); t++)
		msleep(50);
	cr_assert(is_mounted(H.mnt), "strata-unionfs -d did not mount");
	return c;
}

static void umount_traced(pid_t c)
{
	int status = 0;
	h_umount_path(H.mnt);
	for (int t = 0; t < 200 && waitpid(c, &status, WNOHANG) == 0; t++)
		msleep(50);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "daemon status %#x", status);
}

/* Requests of one kind in the log since the last log_mark(). */
static long mark;
static void log_mark(void)
{
	struct stat st;
	assert_ok(stat(logpath, &st));
	mark = st.st_size;
}
static int requests(const char *opcode)
{
	char needle[64], line[4096];
	int n = 0;
	FILE *f = fopen(logpath, "r");
	cr_assert(f, "%s: %s", logpath, strerror(errno));
	cr_assert_eq(fseek(f, mark, SEEK_SET), 0);
	snprintf(needle, sizeof needle, "opcode: %s ", opcode);
	while (fgets(line, sizeof line, f))
		n += strstr(line, needle) != NULL;
	fclose(f);
	return n;
}

static void write_file(const char *path, size_t bytes)
{
	static char buf[65536];
	memset(buf, 'w', sizeof buf);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	cr_assert(fd >= 0, "%s: %s", path, strerror(errno));
	for (size_t done = 0; done < bytes; done += sizeof buf)
		cr_assert_eq(write(fd, buf, sizeof buf), (ssize_t)sizeof buf);
	cr_assert_eq(close(fd), 0);
}

/* Closing a written file costs no FLUSH: the upper filesystem is local
 * (the tests' /tmp), where close does nothing a FLUSH could report. */
HTEST(requests, closing_a_written_file_sends_no_flush)
{
	pid_t d = mount_traced(union_opts(FMT_OVL, 1, NULL));
	log_mark();
	write_file(MN("new"), 65536);
	int fd = open(MN("new"), O_RDWR | O_APPEND);
	cr_assert(fd >= 0);
	cr_assert_eq(write(fd, "x", 1), 1);
	cr_assert_eq(close(fd), 0);
	cr_assert_geq(requests("CREATE"), 1, "the log shows no CREATE: cannot count");
	cr_assert_eq(requests("FLUSH"), 0);
	umount_traced(d);
}

/* With passthrough the data of an upper file never reaches the daemon;
 * with passthrough=off all of it does. */
HTEST(requests, writes_to_an_upper_file_are_passed_through)
{
	pid_t d = mount_traced(union_opts(FMT_OVL, 1, NULL));
	log_mark();
	write_file(MN("big"), 1 << 20);
	cr_assert_eq(requests("WRITE"), 0, "passthrough writes reached the daemon");
	char buf[4096];
	int fd = open(MN("big"), O_RDONLY);
	cr_assert(fd >= 0);
	cr_assert_eq(pread(fd, buf, sizeof buf, 12345), (ssize_t)sizeof buf);
	close(fd);
	cr_assert_eq(requests("READ"), 0, "passthrough reads reached the daemon");
	umount_traced(d);

	d = mount_traced(union_opts(FMT_OVL, 1, "passthrough=off"));
	log_mark();
	write_file(MN("big2"), 1 << 20);
	cr_assert_geq(requests("WRITE"), 1, "passthrough=off: no WRITE in the log");
	umount_traced(d);
}

/* READDIRPLUS hands the kernel every entry with the listing: ls -l of a
 * directory looks no name up on its own. */
HTEST(requests, ls_l_of_a_directory_looks_nothing_up)
{
	for (int i = 0; i < 50; i++)
		mk_file(LO(0, pf("d/f%02d", i)), "x", 0644);
	pid_t d = mount_traced(union_opts(FMT_OVL, 1, NULL));
	struct stat st;
	assert_ok(stat(MN("d"), &st));
	log_mark();
	cr_assert_eq(sh("ls -l %s >/dev/null", MN("d")), 0);
	cr_assert_geq(requests("READDIRPLUS"), 1, "the log shows no READDIRPLUS: cannot count");
	cr_assert_eq(requests("LOOKUP"), 0);
	umount_traced(d);
}

/* A small lower file reaches the page cache with its open: reading it
 * costs no READ.  A large one is read as the kernel asks. */
HTEST(requests, small_lower_file_is_read_without_read_requests)
{
	static char big[1 << 20];
	mk_file(LO(0, "small"), "small lower file\n", 0644);
	memset(big, 'b', sizeof big);
	mk_filen(LO(0, "big"), big, sizeof big, 0644);
	pid_t d = mount_traced(union_opts(FMT_OVL, 1, NULL));
	log_mark();
	assert_file(MN("small"), "small lower file\n");
	cr_assert_geq(requests("OPEN"), 1, "the log shows no OPEN: cannot count");
	cr_assert_eq(requests("READ"), 0);
	char *got = slurp(MN("big"));
	cr_assert(got && !memcmp(got, big, sizeof big), "big lower file read back wrong");
	free(got);
	cr_assert_geq(requests("READ"), 1, "a 1 MiB file was not read through READ");
	umount_traced(d);
}

/* Round trips: what the kernel asks the daemon for a few common operations.
 * Each request to the daemon costs a context switch each way, tens of
 * microseconds on a VM, so the requests a mount no longer needs are a
 * property worth keeping.  The daemon runs in the foreground with -d, whose
 * log names every request ("opcode: WRITE"), and the tests count them.
 * Each test that asserts an absence also shows the request where it is
 * expected, so a log the count cannot read fails instead of passing. */
#include "harness.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <dirent.h>
#include <sys/mount.h>
#include <sys/syscall.h>
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

/* Every reply of a listing carries attributes, not only its first one:
 * programs read a whole directory before they stat its names (fts, ls),
 * and names past the first reply would each cost a LOOKUP. */
HTEST(requests, stat_walk_of_a_large_directory_looks_nothing_up)
{
	for (int i = 0; i < 2000; i++)
		mk_file(LO(0, pf("d/a-rather-long-file-name-%04d", i)), "x", 0644);
	pid_t d = mount_traced(union_opts(FMT_OVL, 1, NULL));
	struct stat st;
	assert_ok(stat(MN("d"), &st));
	log_mark();
	cr_assert_eq(sh("find %s -printf '%%s\\n' | wc -l | grep -qx 2001", MN("d")), 0);
	int plus = requests("READDIRPLUS"), plain = requests("READDIR");
	cr_assert_geq(plus + plain, 3, "one reply listed 2000 names: cannot tell");
	cr_assert_eq(plain, 0, "%d of %d listing replies without attributes", plain, plus + plain);
	cr_assert_eq(requests("LOOKUP"), 0);
	umount_traced(d);
}

/* The daemon clears set-ID bits and capabilities itself (killpriv.h), so
 * the kernel stops asking for security.capability before every write once
 * a file has none. */
HTEST(requests, writes_ask_for_the_capability_xattr_once)
{
	pid_t d = mount_traced(union_opts(FMT_OVL, 1, NULL));
	log_mark();
	int fd = open(MN("f"), O_WRONLY | O_CREAT, 0644);
	cr_assert(fd >= 0);
	for (int i = 0; i < 50; i++)
		cr_assert_eq(pwrite(fd, "data", 4, i * 4096), 4);
	close(fd);
	cr_assert_geq(requests("CREATE"), 1, "the log shows no CREATE: cannot count");
	int asked = requests("GETXATTR");
	cr_assert_leq(asked, 1, "%d GETXATTRs for 50 writes", asked);
	umount_traced(d);
}

/* Symlink targets and ACLs stay in the kernel after the first ask: a
 * second ls -l of a directory sends neither READLINK nor the ACL GETXATTR
 * again (only ls's security.selinux, which FUSE never caches). */
HTEST(requests, second_ls_l_asks_no_readlink_and_no_acl)
{
	for (int i = 0; i < 20; i++) {
		mk_file(LO(0, pf("d/f%02d", i)), "x", 0644);
		mk_symlink("f00", LO(0, pf("d/l%02d", i)));
	}
	pid_t d = mount_traced(union_opts(FMT_OVL, 1, NULL));
	cr_assert_eq(sh("ls -l %s >/dev/null", MN("d")), 0);
	cr_assert_geq(requests("READLINK"), 20, "the first ls -l read no link: cannot count");
	log_mark();
	cr_assert_eq(sh("ls -l %s >/dev/null", MN("d")), 0);
	cr_assert_eq(requests("READLINK"), 0);
	int asked = requests("GETXATTR");
	cr_assert_leq(asked, 41, "%d GETXATTRs for 40 names and the directory", asked);
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

/* A lower program runs straight from its lower file (passthrough): its
 * pages are not faulted in through READs.  Read as a file afterwards, the
 * same bytes come through READs. */
HTEST(requests, running_a_lower_program_sends_no_read)
{
	size_t len;
	char *data = mk_copy("/usr/bin/perl", LO(0, "bin/perl"), 0755, &len);
	cr_assert(len > (1 << 20), "/usr/bin/perl is too small to tell");
	pid_t d = mount_traced(union_opts(FMT_OVL, 1, NULL));
	log_mark();
	pid_t c = fork();
	cr_assert(c >= 0);
	if (c == 0) {
		execl(MN("bin/perl"), "perl", "-e", "exit 7", (char *)NULL);
		_exit(127);
	}
	int status;
	cr_assert_eq(waitpid(c, &status, 0), c);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 7, "perl status %#x", status);
	cr_assert_geq(requests("OPEN"), 1, "the log shows no OPEN: cannot count");
	cr_assert_eq(requests("READ"), 0, "running it read the program through READs");
	char *got = slurp(MN("bin/perl"));
	cr_assert(got && !memcmp(got, data, len), "the program reads back wrong");
	cr_assert_geq(requests("READ"), 1, "reading the file sent no READ: cannot tell");
	free(got);
	free(data);
	umount_traced(d);
}

/* "preload: N small files stored at their open, M ahead" (preload.h),
 * logged with -d when the daemon stops. */
static void preload_counts(long *at_open, long *ahead)
{
	char *text = slurp(logpath);
	const char *line = text ? strstr(text, "preload: ") : NULL;
	cr_assert(line, "no preload line in the log");
	cr_assert_eq(sscanf(line, "preload: %ld small files stored at their open, %ld ahead",
			    at_open, ahead), 2, "preload line: %.80s", line);
	free(text);
}

/* A reader going through a directory's small lower files in listing order
 * (tar, grep -r) finds them stored ahead of it: only the first two are
 * stored at their open, no READ is sent, every byte is the file's, and a
 * file written through the union after it was stored reads back new. */
HTEST(requests, small_files_read_in_listing_order_are_stored_ahead)
{
	enum { FILES = 24 };
	for (int f = 0; f < FILES; f++)
		mk_file(LO(0, pf("d/f%02d", f)), pf("content of file %d\n", f), 0644);
	pid_t d = mount_traced(union_opts(FMT_OVL, 1, NULL));
	struct strv names = { 0 };
	DIR *dir = opendir(MN("d"));
	cr_assert(dir, "opendir: %s", strerror(errno));
	for (struct dirent *e; (e = readdir(dir));)
		if (e->d_name[0] != '.')
			strv_push(&names, strdup(e->d_name));
	closedir(dir);
	cr_assert_eq(names.n, (size_t)FILES);
	log_mark();
	for (size_t i = 0; i < names.n; i++) {
		int f = atoi(names.v[i] + 1);
		assert_file(MN(pf("d/%s", names.v[i])), pf("content of file %d\n", f));
		/* The idle CPU stores the rest after the second. */
		if (i == 1)
			msleep(300);
	}
	cr_assert_eq(requests("READ"), 0, "a file was read through READ");
	int w = open(MN(pf("d/%s", names.v[FILES - 1])), O_WRONLY | O_TRUNC);
	cr_assert(w >= 0, "open for writing: %s", strerror(errno));
	cr_assert_eq(write(w, "new\n", 4), 4);
	close(w);
	assert_file(MN(pf("d/%s", names.v[FILES - 1])), "new\n");
	for (size_t i = 0; i < names.n; i++)
		free(names.v[i]);
	free(names.v);
	umount_traced(d);
	long at_open, ahead;
	preload_counts(&at_open, &ahead);
	cr_assert_eq(at_open, 2, "stored at their open: %ld, ahead: %ld", at_open, ahead);
	cr_assert_eq(ahead, FILES - 2, "stored ahead: %ld", ahead);
}

/* Random reads of a large lower file: once two land in a 256 KiB window,
 * the whole window is stored in the page cache, so most reads are served
 * without a READ, and every byte read is still the file's. */
HTEST(requests, random_reads_of_a_lower_file_need_fewer_reads)
{
	enum { SIZE = 8 << 20, BLOCK = 4096, READS = 2000 };
	char *data = malloc(SIZE), got[BLOCK];
	for (size_t i = 0; i < SIZE; i++)
		data[i] = (char)(i * 2654435761u >> 24);
	mk_filen(LO(0, "big"), data, SIZE, 0644);
	pid_t d = mount_traced(union_opts(FMT_OVL, 1, NULL));
	log_mark();
	int fd = open(MN("big"), O_RDONLY);
	cr_assert(fd >= 0);
	srand(7);
	for (int i = 0; i < READS; i++) {
		off_t off = (off_t)(rand() % (SIZE / BLOCK)) * BLOCK;
		cr_assert_eq(pread(fd, got, BLOCK, off), BLOCK);
		cr_assert(!memcmp(got, data + off, BLOCK), "read %d at %lld differs", i, (long long)off);
		if (i % 100 == 99)
			msleep(1); /* give the stores a moment, as a slower reader would */
	}
	close(fd);
	int reads = requests("READ");
	cr_assert_gt(reads, 0, "no READ at all: cannot count");
	cr_assert_lt(reads, READS / 2, "%d READs for %d random reads", reads, READS);
	free(data);
	umount_traced(d);
}

/* A window stored from the lower copy never hides what is written after
 * a copy-up: the write and the stores are ordered by the copy-up. */
HTEST(requests, writes_after_random_reads_are_read_back)
{
	enum { SIZE = 4 << 20, BLOCK = 4096 };
	char *data = calloc(1, SIZE), got[BLOCK], mark[BLOCK];
	mk_filen(LO(0, "f"), data, SIZE, 0644);
	h_mount(FMT_OVL, 1, NULL);
	int ro = open(MN("f"), O_RDONLY);
	cr_assert(ro >= 0);
	memset(mark, 'W', sizeof mark);
	srand(3);
	for (int round = 0; round < 50; round++) {
		off_t off = (off_t)(rand() % (SIZE / BLOCK)) * BLOCK;
		cr_assert_eq(pread(ro, got, BLOCK, (off + 3 * BLOCK) % SIZE), BLOCK);
		cr_assert_eq(pread(ro, got, BLOCK, (off + 7 * BLOCK) % SIZE), BLOCK);
		int rw = open(MN("f"), O_RDWR);
		cr_assert(rw >= 0);
		cr_assert_eq(pwrite(rw, mark, BLOCK, off), BLOCK);
		close(rw);
		memcpy(data + off, mark, BLOCK);
		msleep(5); /* a store queued by the reads runs now, if ever */
		cr_assert_eq(pread(ro, got, BLOCK, off), BLOCK);
		cr_assert(!memcmp(got, mark, BLOCK), "round %d: the write at %lld is not read back",
			  round, (long long)off);
	}
	msleep(50);
	for (off_t off = 0; off < SIZE; off += BLOCK) {
		cr_assert_eq(pread(ro, got, BLOCK, off), BLOCK);
		cr_assert(!memcmp(got, data + off, BLOCK), "block at %lld differs", (long long)off);
	}
	close(ro);
	free(data);
}

/* FUSE over io_uring (uring.h): whether this run's mounts use it.  The
 * kernel offers it only with the fuse module's enable_uring=Y, and the
 * devfuse suite mounts with io_uring=off. */
static bool io_uring_expected(void)
{
	char *param = slurp("/sys/module/fuse/parameters/enable_uring");
	const char *opts = getenv("STRATA_TEST_UNION_OPTS");
	bool on = param && param[0] == 'Y' && !(opts && strstr(opts, "io_uring=off"));
	free(param);
	return on;
}

static bool log_has(const char *needle)
{
	char *text = slurp(logpath);
	bool found = text && strstr(text, needle);
	free(text);
	return found;
}

/* Whether the rings registered (they do right after INIT: the kernel holds
 * every request until they have). */
static bool rings_serving(void)
{
	struct stat st;
	assert_ok(stat(H.mnt, &st));
	for (int t = 0; t < 50 && !log_has("rings serving"); t++)
		msleep(20);
	return log_has("rings serving");
}

/* With io_uring, the requests of a process on CPU n are served by ring n:
 * a LOOKUP made from each CPU in turn reaches each ring.  Without it (or
 * with io_uring=off) no ring starts, and the same requests are served. */
HTEST(requests, io_uring_serves_the_requests_of_every_cpu)
{
	bool expected = io_uring_expected();
	pid_t d = mount_traced(union_opts(FMT_OVL, 1, NULL));
	cr_assert_eq(rings_serving(), expected, "io_uring expected: %d", expected);
	long ncpu = sysconf(_SC_NPROCESSORS_CONF);
	cpu_set_t was;
	assert_ok(sched_getaffinity(0, sizeof was, &was));
	for (long cpu = 0; cpu < ncpu; cpu++) {
		cpu_set_t one;
		CPU_ZERO(&one);
		CPU_SET((int)cpu, &one);
		if (sched_setaffinity(0, sizeof one, &one) < 0)
			continue; /* offline */
		struct stat st;
		cr_assert_eq(stat(MN(pf("absent-%ld", cpu)), &st), -1);
		cr_assert_eq(errno, ENOENT);
		char first[64];
		snprintf(first, sizeof first, "io_uring ring %ld: first request", cpu);
		cr_assert_eq(log_has(first), expected, "CPU %ld: '%s' in the log: %d, expected %d",
			     cpu, first, log_has(first), expected);
	}
	assert_ok(sched_setaffinity(0, sizeof was, &was));
	cr_assert_geq(requests("LOOKUP"), ncpu > 1 ? 1 : 0, "no LOOKUP in the log: cannot tell");
	umount_traced(d);
}

/* The largest requests and replies fit a ring entry: 1 MiB WRITEs and
 * READs (passthrough off, so the data goes through the daemon) carry every
 * byte, and READDIRPLUS replies list a large directory whole. */
HTEST(requests, largest_requests_and_replies_carry_every_byte)
{
	enum { SIZE = 5 << 20, CHUNK = 1 << 20 };
	char *data = malloc(SIZE), *got = aligned_alloc(4096, SIZE);
	cr_assert(data && got);
	for (size_t i = 0; i < SIZE; i++)
		data[i] = (char)(i * 2654435761u >> 21);
	mk_filen(LO(0, "lower"), data, SIZE, 0644);
	for (int i = 0; i < 1500; i++)
		mk_file(LO(0, pf("d/entry-with-a-long-name-%04d", i)), "x", 0644);
	pid_t d = mount_traced(union_opts(FMT_OVL, 1, "passthrough=off"));
	log_mark();
	int fd = open(MN("upper"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
	cr_assert(fd >= 0);
	for (size_t off = 0; off < SIZE; off += CHUNK)
		cr_assert_eq(pwrite(fd, data + off, CHUNK, (off_t)off), CHUNK);
	cr_assert_eq(close(fd), 0);
	cr_assert_geq(requests("WRITE"), 1, "no WRITE reached the daemon: cannot tell");
	char *written = slurp(UP("upper"));
	cr_assert(written && !memcmp(written, data, SIZE), "the upper file differs from what was written");
	free(written);
	fd = open(MN("lower"), O_RDONLY | O_DIRECT);
	if (fd < 0)
		fd = open(MN("lower"), O_RDONLY);
	cr_assert(fd >= 0);
	for (size_t off = 0; off < SIZE; off += CHUNK)
		cr_assert_eq(pread(fd, got + off, CHUNK, (off_t)off), CHUNK);
	close(fd);
	cr_assert(!memcmp(got, data, SIZE), "the lower file read back differs");
	cr_assert_eq(sh("ls -l %s | grep -c entry-with | grep -qx 1500", MN("d")), 0,
		     "the listing of 1500 names is incomplete");
	free(data);
	free(got);
	umount_traced(d);
}

/* A READ that would wait for the disk does not hold up its ring: it goes
 * to the pool, which starts a thread for it, and the data is the file's.
 * The lower file is dropped from the page cache first, so the kernel's
 * readahead sends READs that no page-cache read can answer. */
HTEST(requests, reads_from_the_disk_go_to_the_pool)
{
	enum { SIZE = 16 << 20 };
	char *data = malloc(SIZE);
	cr_assert(data);
	for (size_t i = 0; i < SIZE; i++)
		data[i] = (char)(i * 40503u >> 13);
	mk_filen(LO(0, "cold"), data, SIZE, 0644);
	int lower = open(LO(0, "cold"), O_RDONLY);
	cr_assert(lower >= 0);
	assert_ok(fdatasync(lower));
	assert_ok(posix_fadvise(lower, 0, 0, POSIX_FADV_DONTNEED));
	close(lower);
	bool expected = io_uring_expected();
	pid_t d = mount_traced(union_opts(FMT_OVL, 1, NULL));
	cr_assert_eq(rings_serving(), expected, "io_uring expected: %d", expected);
	char *got = slurp(MN("cold"));
	cr_assert(got && !memcmp(got, data, SIZE), "the file read back differs");
	cr_assert_eq(log_has("pool thread 1 started"), expected, "io_uring expected: %d", expected);
	free(got);
	free(data);
	umount_traced(d);
}

/* The first of the CPUs this process may run on. */
static cpu_set_t one_cpu(const cpu_set_t *allowed)
{
	cpu_set_t one;
	CPU_ZERO(&one);
	for (int c = 0; c < CPU_SETSIZE; c++) {
		if (CPU_ISSET(c, allowed)) {
			CPU_SET(c, &one);
			break;
		}
	}
	return one;
}

/* A copy-up that waits holds up no other request of its CPU.  The test
 * makes it wait for as long as it likes: it holds a write lease on the
 * lower file, so the daemon's open of it for the copy blocks until the
 * lease is given up, and the kernel tells the holder with SIGIO.  Meanwhile
 * a LOOKUP made from the same CPU must be answered.  Through io_uring one
 * thread takes every request of a CPU in turn, so this holds only because
 * a request that may take long is served by the pool; through /dev/fuse,
 * because another thread reads the LOOKUP. */
HTEST(requests, a_waiting_copy_up_holds_up_no_other_request)
{
	mk_file(LO(0, "big"), "lower data", 0644);
	mk_file(LO(0, "other"), "x", 0644);
	pid_t d = mount_traced(union_opts(FMT_OVL, 1, NULL));
	cr_assert_eq(rings_serving(), io_uring_expected());
	cpu_set_t was, one;
	assert_ok(sched_getaffinity(0, sizeof was, &was));
	one = one_cpu(&was);
	assert_ok(sched_setaffinity(0, sizeof one, &one));
	sigset_t sigio;
	sigemptyset(&sigio);
	sigaddset(&sigio, SIGIO);
	assert_ok(sigprocmask(SIG_BLOCK, &sigio, NULL));
	int lease = open(LO(0, "big"), O_RDONLY);
	cr_assert(lease >= 0);
	assert_ok(fcntl(lease, F_SETLEASE, F_WRLCK));

	pid_t writer = fork();
	cr_assert(writer >= 0);
	if (writer == 0) {
		int fd = open(MN("big"), O_WRONLY | O_APPEND);
		_exit(fd >= 0 && write(fd, "+", 1) == 1 && close(fd) == 0 ? 0 : 1);
	}
	bool copy_waits = sigtimedwait(&sigio, NULL, &(struct timespec){ 10, 0 }) == SIGIO;
	pid_t looker = fork();
	cr_assert(looker >= 0);
	if (looker == 0) {
		struct stat st;
		_exit(stat(MN("other"), &st) == 0 ? 0 : 1);
	}
	int looked = -1, wrote = -1;
	bool answered = false;
	for (int t = 0; t < 500 && !answered; t++) {
		answered = waitpid(looker, &looked, WNOHANG) == looker;
		if (!answered)
			msleep(10);
	}
	bool writer_waited = waitpid(writer, &wrote, WNOHANG) == 0;
	/* Let everything finish before asserting anything. */
	assert_ok(fcntl(lease, F_SETLEASE, F_UNLCK));
	close(lease);
	if (!answered)
		waitpid(looker, &looked, 0);
	if (writer_waited)
		waitpid(writer, &wrote, 0);
	assert_ok(sched_setaffinity(0, sizeof was, &was));
	assert_ok(sigprocmask(SIG_UNBLOCK, &sigio, NULL));

	cr_assert(copy_waits, "the copy-up did not open the lower file (no lease break in 10 s)");
	cr_assert(writer_waited, "the open for writing returned while its copy-up waited");
	cr_assert(answered, "a LOOKUP from the CPU of a waiting copy-up was not answered in 5 s");
	cr_assert(WIFEXITED(looked) && WEXITSTATUS(looked) == 0, "stat: status %#x", looked);
	cr_assert(WIFEXITED(wrote) && WEXITSTATUS(wrote) == 0, "append: status %#x", wrote);
	char *upper = slurp(UP("big"));
	cr_assert(upper && !strcmp(upper, "lower data+"), "upper copy: '%s'", upper ? upper : "(none)");
	free(upper);
	umount_traced(d);
}

/* "dirahead: N listings prepared, M used, S stale", which the daemon logs
 * with -d when it stops (dirahead.h). */
static void dirahead_counts(long *prepared, long *used, long *stale)
{
	char *text = slurp(logpath);
	const char *line = text ? strstr(text, "dirahead: ") : NULL;
	*prepared = *used = *stale = -1;
	cr_assert(line, "no dirahead line in the log");
	cr_assert_eq(sscanf(line, "dirahead: %ld listings prepared, %ld used, %ld stale", prepared,
			    used, stale), 3, "dirahead line: %.80s", line);
	free(text);
}

static bool listing_has(const char *dir, const char *name)
{
	return sh("ls -a %s | grep -qx '%s'", dir, name) == 0;
}

/* A walk's next listings are prepared ahead (dirahead.h) and used: list a
 * directory, give the idle CPU time to prepare its subdirectories, then
 * list them; the names and attributes are those of the lower layer. */
HTEST(requests, subdirectory_listings_are_prepared_ahead_and_used)
{
	for (int d = 0; d < 4; d++)
		for (int f = 0; f < 20; f++)
			mk_file(LO(0, pf("top/d%d/f%02d", d, f)), "x", 0640 + (f % 8));
	pid_t daemon = mount_traced(union_opts(FMT_OVL, 1, NULL));
	cr_assert_eq(sh("ls -l %s >/dev/null", MN("top")), 0);
	msleep(300);
	for (int d = 0; d < 4; d++) {
		char *dir = MN(pf("top/d%d", d));
		for (int f = 0; f < 20; f++) {
			struct stat st;
			assert_ok(lstat(pf("%s/f%02d", dir, f), &st));
			cr_assert_eq(st.st_mode & 07777, (mode_t)(0640 + (f % 8)), "%s/f%02d", dir, f);
		}
		cr_assert_eq(sh("ls %s | wc -l | grep -qx 20", dir), 0, "%s: not 20 names", dir);
	}
	umount_traced(daemon);
	long prepared, used, stale;
	dirahead_counts(&prepared, &used, &stale);
	cr_assert_geq(used, 1, "prepared %ld, used %ld, stale %ld", prepared, used, stale);
}

/* A listing prepared ahead is never used once the union has changed:
 * every kind of change made through the mount after the preparation shows
 * in the listing that follows.  Each kind gets a parent of its own, listed
 * just before the change, so its listing is prepared after every earlier
 * change, and the log shows that prepared listings were dropped as stale,
 * so the changes did meet them. */
HTEST(requests, listings_prepared_ahead_show_every_later_change)
{
	const char *kinds[] = { "create", "unlink", "rename", "mkdir", "rmdir", "symlink",
				"copy-up" };
	enum { KINDS = sizeof(kinds) / sizeof(kinds[0]) };
	for (int k = 0; k < KINDS; k++) {
		mk_file(LO(0, pf("p%d/d/old", k)), "x", 0644);
		mk_file(LO(0, pf("p%d/d/keep", k)), "x", 0644);
		mk_file(LO(0, pf("p%d/d/gone/x", k)), "x", 0644);
	}
	mk_file(LO(0, "elsewhere/moved"), "x", 0644);
	pid_t daemon = mount_traced(union_opts(FMT_OVL, 1, NULL));
	for (int k = 0; k < KINDS; k++) {
		char *dir = MN(pf("p%d/d", k));
		/* Prepares d's listing. */
		cr_assert_eq(sh("ls %s >/dev/null", MN(pf("p%d", k))), 0);
		msleep(200);
		switch (k) {
		case 0: mk_file(pf("%s/new", dir), "n", 0600); break;
		case 1: assert_ok(unlink(pf("%s/old", dir))); break;
		case 2: assert_ok(rename(MN("elsewhere/moved"), pf("%s/new", dir))); break;
		case 3: assert_ok(mkdir(pf("%s/new", dir), 0755)); break;
		case 4: assert_ok(unlink(pf("%s/gone/x", dir))); assert_ok(rmdir(pf("%s/gone", dir))); break;
		case 5: assert_ok(symlink("old", pf("%s/new", dir))); break;
		case 6: assert_ok(chmod(pf("%s/old", dir), 0600)); break;
		}
		bool ok = k == 1 ? !listing_has(dir, "old")
			: k == 4 ? !listing_has(dir, "gone")
			: k == 6 ? sh("ls -l %s | grep -q '^-rw------- .* old$'", dir) == 0
			: listing_has(dir, "new");
		cr_assert(ok, "%s in %s is not in its listing", kinds[k], dir);
		cr_assert(listing_has(dir, "keep"), "%s: keep is missing", dir);
	}
	umount_traced(daemon);
	long prepared, used, stale;
	dirahead_counts(&prepared, &used, &stale);
	cr_assert_geq(stale, KINDS, "prepared %ld, used %ld, stale %ld: the changes met no "
		      "prepared listing, so this test shows nothing", prepared, used, stale);
}

/* One READDIRPLUS reply may name thousands of subdirectories (the kernel
 * sizes it by the reader's getdents buffer, up to 1 MiB), more than the
 * read-ahead queue holds: the listing is whole and the daemon lives on. */
HTEST(requests, one_reply_naming_thousands_of_subdirectories)
{
	enum { DIRS = 3000 };
	for (int i = 0; i < DIRS; i++)
		mk_file(LO(0, pf("wide/subdirectory-%04d/f", i)), "x", 0644);
	pid_t daemon = mount_traced(union_opts(FMT_OVL, 1, NULL));
	size_t size = 1 << 20;
	char *buf = malloc(size);
	int fd = open(MN("wide"), O_RDONLY | O_DIRECTORY);
	cr_assert(buf && fd >= 0);
	long n, entries = 0, largest = 0;
	while ((n = syscall(SYS_getdents64, fd, buf, size)) > 0) {
		long here = 0;
		for (long off = 0; off < n; here++)
			off += ((struct dirent64 *)(buf + off))->d_reclen;
		entries += here;
		largest = here > largest ? here : largest;
	}
	cr_assert_eq(n, 0, "getdents64: %s", strerror(errno));
	close(fd);
	free(buf);
	cr_assert_eq(entries, DIRS + 2, "%ld entries", entries);
	struct stat st;
	assert_ok(stat(MN("wide/subdirectory-2999/f"), &st));
	umount_traced(daemon);
	cr_log_info("largest getdents64: %ld entries", largest);
}

/* Walks (READDIRPLUS, listings prepared ahead) and changes (copy-ups,
 * which go to the ring pool, creates, removes, renames) side by side for a
 * while: the daemon answers every request, and the tree it shows at the
 * end is the one kernel overlayfs shows over the same layers.  It caught a
 * pool thread that looked at a ring entry after replying, when the entry
 * already carried the ring's next request (the daemon then stopped): 4 of
 * 4 runs failed with io_uring before the fix. */
HTEST(requests, walks_and_changes_side_by_side_agree_with_overlayfs)
{
	enum { DIRS = 12, SUBS = 3, FILES = 8, OPS = 4000 };
	for (int d = 0; d < DIRS; d++)
		for (int s = 0; s < SUBS; s++)
			for (int f = 0; f < FILES; f++)
				mk_file(LO(0, pf("d%d/s%d/f%d", d, s, f)), "lower\n", 0644);
	pid_t daemon = mount_traced(union_opts(FMT_OVL, 1, NULL));
	char stop[512], ovl[512], opts[2048];
	/* pf()'s buffers rotate: these outlive many calls. */
	snprintf(stop, sizeof stop, "%s", RT("stop-walking"));
	snprintf(ovl, sizeof ovl, "%s", RT("ovl"));
	snprintf(opts, sizeof opts, "lowerdir=%s,upperdir=%s,workdir=%s", H.lo[0], H.up, H.wk);
	pid_t walkers[2];
	for (int w = 0; w < 2; w++) {
		walkers[w] = fork();
		cr_assert(walkers[w] >= 0);
		if (walkers[w] == 0) {
			char cmd[3 * PATH_MAX];
			snprintf(cmd, sizeof cmd, "while [ ! -e %s ]; do find %s; ls -lR %s; done "
				 ">/dev/null 2>&1", stop, H.mnt, H.mnt);
			execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
			_exit(127);
		}
	}
	srand(42);
	for (int i = 0; i < OPS; i++) {
		int d = rand() % DIRS, s = rand() % SUBS, f = rand() % (FILES + 4), t = rand() % DIRS;
		char *dir = MN(pf("d%d/s%d", d, s));
		int fd;
		/* Failures are expected (the name may be gone): only the end
		 * state is compared. */
		switch (rand() % 8) {
		case 0: (void)!try_spew(pf("%s/n%d", dir, f), "new\n", O_CREAT | O_WRONLY | O_TRUNC); break;
		case 1: (void)!unlink(pf("%s/f%d", dir, f)); break;
		case 2: (void)!rename(pf("%s/f%d", dir, f), MN(pf("d%d/s%d/m%d-%d", t, s, f, d))); break;
		case 3: (void)!mkdir(pf("%s/k%d", dir, f), 0755); break;
		case 4: (void)!rmdir(pf("%s/k%d", dir, f)); break;
		case 5: (void)!chmod(pf("%s/f%d", dir, f), 0600); break;
		case 6: (void)!symlink("f0", pf("%s/y%d", dir, f)); break;
		case 7:
			fd = open(pf("%s/f%d", dir, f), O_WRONLY | O_APPEND);
			if (fd >= 0) {
				(void)!write(fd, "more\n", 5);
				close(fd);
			}
			break;
		}
	}
	spew(stop, "");
	for (int w = 0; w < 2; w++)
		waitpid(walkers[w], NULL, 0);
	char *seen = tree(H.mnt, false, false);
	umount_traced(daemon);
	cr_assert(!log_has("no reply to opcode"), "a request was left without its reply");
	assert_ok(mkdir(ovl, 0755));
	if (mount("overlay", ovl, "overlay", 0, opts) < 0)
		cr_skip_test("kernel overlayfs: %s", strerror(errno));
	char *want = tree(ovl, false, false);
	assert_ok(umount(ovl));
	cr_assert_str_eq(seen, want, "the union after the run differs from overlayfs over its layers");
	free(seen);
	free(want);
}

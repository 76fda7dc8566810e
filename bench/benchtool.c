/* benchtool: the precise parts of bench/run.sh, without a fork per file.
 *
 *   benchtool read FILE                 read to EOF (1 MiB reads); prints "BYTES SUM"
 *   benchtool write FILE BYTES          create FILE with a fixed pattern, fsync;
 *                                       prints "BYTES SUM" (the same SUM read gives)
 *   benchtool smallfiles DIR N SIZE     create N files of SIZE bytes, stat each,
 *                                       delete each; prints N
 *   benchtool unlink DIR LIST           unlink every path of LIST (one per line,
 *                                       relative to DIR), then checks each is gone
 *   benchtool rename DIR LIST           rename every path P of LIST to P.renamed
 *                                       (same directory), then checks both names
 *   benchtool timeit [-q] [-t SECS] CMD ARG...
 *                                       fork+exec+wait CMD; prints "SECONDS STATUS"
 *                                       (-q: CMD's stdout and stderr to /dev/null;
 *                                       -t: SIGKILL it after SECS, status 137)
 *   benchtool procread [-n N] [-t SECS] FILE [EXPECT]
 *                                       N processes loop open+read+close of FILE
 *                                       (one read(2) into 64 KiB, as free/top do)
 *                                       for SECS; prints "OPS_PER_SECOND". Fails if
 *                                       a read errors or returns 0 bytes, or if the
 *                                       text lacks EXPECT (checked on each reader's
 *                                       first and last read).
 *
 * SUM is the sum of the file's little-endian 64-bit words (a zero-padded
 * tail word included) modulo 2^64: cheap enough not to hide the I/O being
 * measured, strong enough to catch wrong or misplaced data.
 * Exit status: 0 on success, 1 on a failed check or I/O error, 2 on usage. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BUF_SIZE (1 << 20)

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int fail(const char *what, const char *path)
{
	fprintf(stderr, "benchtool: %s %s: %s\n", what, path ? path : "", strerror(errno));
	return 1;
}

/* Adds LEN bytes at file offset OFF (a multiple of 8) to the word sum. */
static uint64_t sum_words(uint64_t sum, const unsigned char *p, size_t len)
{
	size_t i = 0;

	for (; i + 8 <= len; i += 8) {
		uint64_t w;

		memcpy(&w, p + i, 8);
		sum += w;
	}
	if (i < len) {
		uint64_t w = 0;

		memcpy(&w, p + i, len - i);
		sum += w;
	}
	return sum;
}

/* The write pattern: word k of the file is k * 0x9E3779B97F4A7C15. */
static void fill(unsigned char *buf, size_t len, uint64_t first_word)
{
	for (size_t i = 0; i + 8 <= len; i += 8) {
		uint64_t w = (first_word + i / 8) * 0x9E3779B97F4A7C15ULL;

		memcpy(buf + i, &w, 8);
	}
}

static unsigned char *big_buffer(void)
{
	void *p = NULL;

	if (posix_memalign(&p, 4096, BUF_SIZE) != 0)
		return NULL;
	return p;
}

static int cmd_read(const char *path)
{
	unsigned char *buf = big_buffer();
	uint64_t sum = 0, total = 0;
	size_t have = 0; /* bytes in buf not yet summed (keeps words aligned) */
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (!buf || fd < 0)
		return fail("open", path);
	for (;;) {
		ssize_t r = read(fd, buf + have, BUF_SIZE - have);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			return fail("read", path);
		}
		if (r == 0)
			break;
		total += (uint64_t)r;
		have += (size_t)r;
		size_t whole = have & ~(size_t)7;

		sum = sum_words(sum, buf, whole);
		memmove(buf, buf + whole, have - whole);
		have -= whole;
	}
	sum = sum_words(sum, buf, have);
	close(fd);
	printf("%llu %llu\n", (unsigned long long)total, (unsigned long long)sum);
	free(buf);
	return 0;
}

static int cmd_write(const char *path, const char *bytes_s)
{
	unsigned long long bytes = strtoull(bytes_s, NULL, 0);
	unsigned char *buf = big_buffer();
	uint64_t sum = 0, done = 0;
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	if (!buf || fd < 0)
		return fail("open", path);
	while (done < bytes) {
		size_t n = bytes - done < BUF_SIZE ? (size_t)(bytes - done) : BUF_SIZE;
		size_t off = 0;

		fill(buf, BUF_SIZE, done / 8);
		sum = sum_words(sum, buf, n);
		while (off < n) {
			ssize_t w = write(fd, buf + off, n - off);

			if (w < 0) {
				if (errno == EINTR)
					continue;
				return fail("write", path);
			}
			off += (size_t)w;
		}
		done += n;
	}
	if (fsync(fd) < 0)
		return fail("fsync", path);
	if (close(fd) < 0)
		return fail("close", path);
	printf("%llu %llu\n", (unsigned long long)done, (unsigned long long)sum);
	free(buf);
	return 0;
}

static int cmd_smallfiles(const char *dir, const char *n_s, const char *size_s)
{
	long n = atol(n_s), size = atol(size_s);
	char name[64], data[65536];
	struct stat st;
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (dfd < 0 || n < 0 || size < 0 || size > (long)sizeof(data))
		return fail("open", dir);
	memset(data, 'x', sizeof(data));
	for (long i = 0; i < n; i++) {
		int fd;

		snprintf(name, sizeof(name), "f%06ld", i);
		fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (fd < 0)
			return fail("create", name);
		if (write(fd, data, (size_t)size) != size)
			return fail("write", name);
		if (close(fd) < 0)
			return fail("close", name);
	}
	for (long i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "f%06ld", i);
		if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			return fail("stat", name);
		if (st.st_size != size || !S_ISREG(st.st_mode)) {
			fprintf(stderr, "benchtool: %s: size %lld, want %ld\n", name,
				(long long)st.st_size, size);
			return 1;
		}
	}
	for (long i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "f%06ld", i);
		if (unlinkat(dfd, name, 0) < 0)
			return fail("unlink", name);
	}
	for (long i = 0; i < n; i += n / 16 + 1) {
		snprintf(name, sizeof(name), "f%06ld", i);
		if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 || errno != ENOENT) {
			fprintf(stderr, "benchtool: %s still there after unlink\n", name);
			return 1;
		}
	}
	close(dfd);
	printf("%ld\n", n);
	return 0;
}

/* Reads LIST into an array of lines. */
static char **read_list(const char *list, long *count)
{
	FILE *f = fopen(list, "r");
	char **v = NULL, *line = NULL;
	size_t cap = 0, lcap = 0;
	ssize_t len;
	long n = 0;

	if (!f)
		return NULL;
	while ((len = getline(&line, &lcap, f)) > 0) {
		if (line[len - 1] == '\n')
			line[--len] = '\0';
		if (len == 0)
			continue;
		if ((size_t)n == cap) {
			cap = cap ? cap * 2 : 1024;
			v = realloc(v, cap * sizeof(*v));
			if (!v)
				return NULL;
		}
		v[n++] = strdup(line);
	}
	free(line);
	fclose(f);
	*count = n;
	return v ? v : calloc(1, sizeof(*v));
}

static int cmd_unlink(const char *dir, const char *list)
{
	long n = 0;
	char **v = read_list(list, &n);
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct stat st;

	if (!v)
		return fail("read", list);
	if (dfd < 0)
		return fail("open", dir);
	for (long i = 0; i < n; i++)
		if (unlinkat(dfd, v[i], 0) < 0)
			return fail("unlink", v[i]);
	for (long i = 0; i < n; i++)
		if (fstatat(dfd, v[i], &st, AT_SYMLINK_NOFOLLOW) == 0 || errno != ENOENT) {
			fprintf(stderr, "benchtool: %s still there after unlink\n", v[i]);
			return 1;
		}
	printf("%ld\n", n);
	return 0;
}

static int cmd_rename(const char *dir, const char *list)
{
	long n = 0;
	char **v = read_list(list, &n);
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	char to[4096];
	struct stat st;

	if (!v)
		return fail("read", list);
	if (dfd < 0)
		return fail("open", dir);
	for (long i = 0; i < n; i++) {
		snprintf(to, sizeof(to), "%s.renamed", v[i]);
		if (renameat(dfd, v[i], dfd, to) < 0)
			return fail("rename", v[i]);
	}
	for (long i = 0; i < n; i++) {
		snprintf(to, sizeof(to), "%s.renamed", v[i]);
		if (fstatat(dfd, to, &st, AT_SYMLINK_NOFOLLOW) < 0)
			return fail("stat", to);
		if (fstatat(dfd, v[i], &st, AT_SYMLINK_NOFOLLOW) == 0 || errno != ENOENT) {
			fprintf(stderr, "benchtool: %s still there after rename\n", v[i]);
			return 1;
		}
	}
	printf("%ld\n", n);
	return 0;
}

static pid_t timeit_child;

static void timeit_alarm(int sig)
{
	(void)sig;
	if (timeit_child > 0)
		kill(timeit_child, SIGKILL);
}

static int cmd_timeit(int argc, char **argv)
{
	int quiet = 0, status;
	unsigned limit = 0;
	double t0, t1;

	while (argc > 1 && argv[0][0] == '-') {
		if (strcmp(argv[0], "-q") == 0) {
			quiet = 1;
		} else if (strcmp(argv[0], "-t") == 0) {
			limit = (unsigned)atoi(argv[1]);
			argc--;
			argv++;
		} else {
			return 2;
		}
		argc--;
		argv++;
	}
	if (argc < 1)
		return 2;
	signal(SIGALRM, timeit_alarm);
	fflush(stdout);
	t0 = now();
	timeit_child = fork();
	if (timeit_child < 0)
		return fail("fork", argv[0]);
	if (timeit_child == 0) {
		if (quiet) {
			int null = open("/dev/null", O_WRONLY);

			dup2(null, 1);
			dup2(null, 2);
		}
		execvp(argv[0], argv);
		_exit(127);
	}
	alarm(limit);
	while (waitpid(timeit_child, &status, 0) < 0)
		if (errno != EINTR)
			return fail("waitpid", argv[0]);
	t1 = now();
	alarm(0);
	printf("%.9f %d\n", t1 - t0,
	       WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
	return 0;
}

/* One reader process: returns the number of open+read+close, -1 on error. */
static long proc_reader(const char *path, const char *expect, double until)
{
	static char buf[65536];
	long n = 0;
	int checks = 0;

	for (;;) {
		int last = now() >= until;

		for (int i = 0; i < (last ? 1 : 32); i++) {
			int fd = open(path, O_RDONLY | O_CLOEXEC);
			ssize_t r;

			if (fd < 0)
				return -1;
			r = read(fd, buf, sizeof(buf) - 1);
			close(fd);
			if (r <= 0) {
				if (r == 0)
					errno = ENODATA;
				return -1;
			}
			if (checks == 0 || last) {
				buf[r] = '\0';
				if (expect && !strstr(buf, expect)) {
					fprintf(stderr, "benchtool: %s lacks \"%s\":\n%s", path,
						expect, buf);
					errno = EBADMSG;
					return -1;
				}
				checks++;
			}
			n++;
		}
		if (last)
			return n - 1; /* the final check read is after the deadline */
	}
}

static int cmd_procread(int argc, char **argv)
{
	int readers = 1, c, bad = 0;
	double secs = 1, start, until, total = 0;
	long *counts;

	optind = 1;
	while ((c = getopt(argc, argv, "+n:t:")) != -1) {
		if (c == 'n')
			readers = atoi(optarg);
		else if (c == 't')
			secs = atof(optarg);
		else
			return 2;
	}
	if (optind >= argc || readers < 1 || secs <= 0)
		return 2;
	counts = mmap(NULL, sizeof(long) * (size_t)readers, PROT_READ | PROT_WRITE,
		      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (counts == MAP_FAILED)
		return fail("mmap", NULL);
	start = now();
	until = start + secs;
	for (int i = 0; i < readers; i++) {
		pid_t pid = fork();

		if (pid < 0)
			return fail("fork", NULL);
		if (pid == 0) {
			counts[i] = proc_reader(argv[optind], argv[optind + 1], until);
			if (counts[i] < 0)
				fprintf(stderr, "benchtool: %s: %s\n", argv[optind],
					strerror(errno));
			_exit(counts[i] < 0);
		}
	}
	while (wait(NULL) > 0)
		;
	for (int i = 0; i < readers; i++) {
		if (counts[i] < 0)
			bad = 1;
		total += (double)counts[i];
	}
	if (bad)
		return 1;
	printf("%.0f\n", total / (now() - start));
	return 0;
}

static int usage(void)
{
	fprintf(stderr, "usage: benchtool read FILE | write FILE BYTES | smallfiles DIR N SIZE |\n"
			"       unlink DIR LIST | rename DIR LIST | timeit [-q] CMD... |\n"
			"       procread [-n N] [-t SECS] FILE [EXPECT]\n");
	return 2;
}

int main(int argc, char **argv)
{
	int r = -1;

	signal(SIGPIPE, SIG_DFL);
	if (argc < 2)
		return usage();
	if (strcmp(argv[1], "read") == 0 && argc == 3)
		r = cmd_read(argv[2]);
	else if (strcmp(argv[1], "write") == 0 && argc == 4)
		r = cmd_write(argv[2], argv[3]);
	else if (strcmp(argv[1], "smallfiles") == 0 && argc == 5)
		r = cmd_smallfiles(argv[2], argv[3], argv[4]);
	else if (strcmp(argv[1], "unlink") == 0 && argc == 4)
		r = cmd_unlink(argv[2], argv[3]);
	else if (strcmp(argv[1], "rename") == 0 && argc == 4)
		r = cmd_rename(argv[2], argv[3]);
	else if (strcmp(argv[1], "timeit") == 0)
		r = cmd_timeit(argc - 2, argv + 2);
	else if (strcmp(argv[1], "procread") == 0)
		r = cmd_procread(argc - 1, argv + 1);
	if (r == 2 || r == -1)
		return usage();
	return r;
}

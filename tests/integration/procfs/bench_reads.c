/* bench_reads: open+read+close rate of one file, the way /proc readers use
 * it (free, top, JVMs re-open /proc/meminfo every time).
 *
 *   bench_reads [-n READERS] [-t SECONDS] [-e] FILE...
 *
 * Each reader is a process looping open(2), read(2) into a 64 KiB buffer,
 * close(2); -e reads until EOF (what cat and stdio do: one more read per
 * open).  Prints one line per FILE: "FILE READERS MODE OPS_PER_SECOND". */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One reader: loops until the deadline; returns the count, -1 on error. */
static long reader(const char *path, double until, int to_eof)
{
	static char buf[65536];
	long n = 0;

	while (now() < until) {
		for (int i = 0; i < 64; i++) {
			int fd = open(path, O_RDONLY | O_CLOEXEC);
			ssize_t r;

			if (fd < 0)
				return -1;
			do
				r = read(fd, buf, sizeof(buf));
			while (to_eof && r > 0);
			close(fd);
			if (r < 0)
				return -1;
			n++;
		}
	}
	return n;
}

static double bench(const char *path, int readers, double secs, int to_eof)
{
	long *counts = mmap(NULL, sizeof(long) * (size_t)readers, PROT_READ | PROT_WRITE,
			    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	double start, until, total = 0;

	if (counts == MAP_FAILED)
		return -1;
	start = now();
	until = start + secs;
	for (int i = 0; i < readers; i++) {
		pid_t pid = fork();

		if (pid == 0) {
			counts[i] = reader(path, until, to_eof);
			_exit(0);
		}
		if (pid < 0)
			return -1;
	}
	while (wait(NULL) > 0)
		;
	for (int i = 0; i < readers; i++) {
		if (counts[i] < 0)
			total = -1e18;
		total += (double)counts[i];
	}
	munmap(counts, sizeof(long) * (size_t)readers);
	return total < 0 ? -1 : total / (now() - start);
}

int main(int argc, char **argv)
{
	int readers = 1, to_eof = 0, c;
	double secs = 3;

	while ((c = getopt(argc, argv, "n:t:e")) != -1) {
		switch (c) {
		case 'n':
			readers = atoi(optarg);
			break;
		case 't':
			secs = atof(optarg);
			break;
		case 'e':
			to_eof = 1;
			break;
		default:
			fprintf(stderr, "usage: %s [-n READERS] [-t SECONDS] [-e] FILE...\n", argv[0]);
			return 2;
		}
	}
	if (optind >= argc || readers < 1 || secs <= 0) {
		fprintf(stderr, "usage: %s [-n READERS] [-t SECONDS] [-e] FILE...\n", argv[0]);
		return 2;
	}
	for (int i = optind; i < argc; i++) {
		double r = bench(argv[i], readers, secs, to_eof);

		if (r < 0) {
			fprintf(stderr, "%s: %s\n", argv[i], strerror(errno));
			return 1;
		}
		printf("%s %d %s %.0f\n", argv[i], readers, to_eof ? "eof" : "single", r);
		fflush(stdout);
	}
	return 0;
}

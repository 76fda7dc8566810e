/* strata-procfs as a filesystem and a daemon: the tree, read-only-ness,
 * snapshot reads with small buffers, the command line, clean shutdown, and
 * surviving kill -9 of the worker. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pf_harness.h"

static const char *const files[] = {
	"proc/meminfo", "proc/cpuinfo", "proc/stat", "proc/uptime", "proc/loadavg",
	"proc/diskstats", "proc/swaps", "sys/devices/system/cpu/online",
};
#define NFILES (sizeof(files) / sizeof(files[0]))

static char *mp(const char *rel)
{
	static char buf[8][512];
	static int i;

	i = (i + 1) % 8;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s", PF.mnt, rel);
	return buf[i];
}

PTEST(fs, tree_modes_and_listing)
{
	struct stat st;
	char out[4096];

	pf_mount(NULL);
	for (size_t i = 0; i < NFILES; i++) {
		cr_assert(stat(mp(files[i]), &st) == 0, "%s: %s", files[i], strerror(errno));
		cr_expect(S_ISREG(st.st_mode) && (st.st_mode & 07777) == 0444, "%s mode %o",
			  files[i], st.st_mode);
	}
	const char *dirs[] = { "", "proc", "sys", "sys/devices", "sys/devices/system",
			       "sys/devices/system/cpu" };
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		cr_assert(stat(mp(dirs[i]), &st) == 0);
		cr_expect(S_ISDIR(st.st_mode) && (st.st_mode & 07777) == 0555, "%s mode %o",
			  dirs[i], st.st_mode);
	}
	cr_assert(pf_sh(out, sizeof(out), "ls %s", mp("proc")) == 0);
	cr_expect_str_eq(out, "cpuinfo\ndiskstats\nloadavg\nmeminfo\nstat\nswaps\nuptime\n");
	cr_assert(pf_sh(out, sizeof(out), "ls %s", mp("sys/devices/system/cpu")) == 0);
	cr_expect_str_eq(out, "online\n");
	errno = 0;
	cr_expect(stat(mp("proc/nonexistent"), &st) < 0 && errno == ENOENT);
}

PTEST(fs, read_only)
{
	int fd;

	pf_mount(NULL);
	for (size_t i = 0; i < NFILES; i++) {
		errno = 0;
		fd = open(mp(files[i]), O_WRONLY);
		cr_expect(fd < 0 && (errno == EROFS || errno == EACCES), "%s: open for write: %s",
			  files[i], strerror(errno));
		if (fd >= 0)
			close(fd);
	}
	errno = 0;
	cr_expect(open(mp("proc/new"), O_CREAT | O_WRONLY, 0644) < 0 &&
		  (errno == EROFS || errno == EACCES));
	errno = 0;
	cr_expect(truncate(mp("proc/meminfo"), 0) < 0 && (errno == EROFS || errno == EACCES));
	errno = 0;
	cr_expect(mkdir(mp("proc/d"), 0755) < 0 && (errno == EROFS || errno == EACCES));
}

/* One pass over a descriptor is one snapshot: byte-at-a-time reads give a
 * complete text, and preads at any offset but 0 serve the snapshot taken by
 * the last read from offset 0 (which, as on /proc, renders afresh). */
PTEST(fs, snapshot_small_reads_and_pread)
{
	char big[65536], one[65536], pr[65536];

	pf_mount(NULL);
	for (size_t i = 0; i < NFILES; i++) {
		int fd = open(mp(files[i]), O_RDONLY);
		ssize_t n, len = 0, blen;

		cr_assert(fd >= 0, "%s: %s", files[i], strerror(errno));
		while ((n = read(fd, one + len, 1)) == 1)
			len++;
		cr_assert(n == 0, "%s: read: %s", files[i], strerror(errno));
		cr_expect(len > 0 && one[len - 1] == '\n', "%s: not a complete text", files[i]);
		blen = pread(fd, big, sizeof(big), 0);
		cr_assert(blen > 0 && big[blen - 1] == '\n', "%s: pread from 0 gave %zd bytes",
			  files[i], blen);
		for (ssize_t off = 7; off < blen; off += 7) {
			n = pread(fd, pr, 7, off);
			cr_assert(n == (blen - off < 7 ? blen - off : 7));
			cr_expect(memcmp(pr, big + off, (size_t)n) == 0, "%s at %zd", files[i], off);
		}
		cr_expect(pread(fd, pr, 10, blen) == 0, "%s: read past the end", files[i]);
		close(fd);
	}
}

static double uptime_at_offset_0(int fd)
{
	char buf[128];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);

	cr_assert(n > 0, "pread: %s", strerror(errno));
	buf[n] = '\0';
	return atof(buf);
}

/* top, free -s and vmstat keep their files open and rewind them for each
 * refresh: a read from offset 0 must show new values, not the open's. */
PTEST(fs, rewind_renders_afresh)
{
	struct timespec pause = { 0, 300 * 1000000L };
	double first, second;
	int fd;

	pf_mount(NULL);
	fd = open(mp("proc/uptime"), O_RDONLY);
	cr_assert(fd >= 0, "%s", strerror(errno));
	first = uptime_at_offset_0(fd);
	nanosleep(&pause, NULL);
	second = uptime_at_offset_0(fd);
	cr_expect(second >= first + 0.2, "uptime frozen across a rewind: %.2f then %.2f", first,
		  second);
	close(fd);
	/* What top does with /proc/stat between two refreshes. */
	char out[65536];
	cr_assert(pf_sh(out, sizeof(out),
			"python3 -c 'import os,sys,time; fd=os.open(sys.argv[1],os.O_RDONLY); "
			"a=os.read(fd,4096); time.sleep(0.3); os.lseek(fd,0,0); b=os.read(fd,4096); "
			"sys.exit(0 if a!=b else 1)' %s",
			mp("proc/stat")) == 0, "/proc/stat did not change across a rewind");
}

/* sendfile(2)/splice(2) read through the page cache, bounded by i_size:
 * busybox cat (what alpine and busybox images have) uses sendfile, and
 * must print every byte, also when a later text is longer than an
 * earlier one. */
PTEST(fs, sendfile_and_busybox_cat)
{
	char out[65536], *host = pf_slurp("/proc/cpuinfo");

	pf_mount(NULL);
	for (size_t i = 0; i < NFILES; i++) {
		char via_read[65536], via_sendfile[65536];
		int fd, mfd = memfd_create("sendfile", 0);
		ssize_t n, r;

		cr_assert(mfd >= 0);
		fd = open(mp(files[i]), O_RDONLY);
		cr_assert(fd >= 0, "%s: %s", files[i], strerror(errno));
		n = sendfile(mfd, fd, NULL, sizeof(via_sendfile));
		close(fd);
		cr_assert(n > 0, "%s: sendfile gave %zd (%s)", files[i], n, strerror(errno));
		cr_assert(pread(mfd, via_sendfile, (size_t)n, 0) == n);
		close(mfd);
		fd = open(mp(files[i]), O_RDONLY);
		r = read(fd, via_read, sizeof(via_read));
		close(fd);
		cr_expect(via_sendfile[n - 1] == '\n', "%s: sendfile text cut", files[i]);
		/* The same lines (values may move between the two opens). */
		size_t lines_s = 0, lines_r = 0;
		for (ssize_t k = 0; k < n; k++)
			lines_s += via_sendfile[k] == '\n';
		for (ssize_t k = 0; k < r; k++)
			lines_r += via_read[k] == '\n';
		cr_expect(lines_s == lines_r, "%s: %zu lines by sendfile, %zu by read", files[i],
			  lines_s, lines_r);
	}
	cr_assert(pf_sh(out, sizeof(out), "busybox cat %s", mp("proc/cpuinfo")) == 0);
	cr_expect_str_eq(out, host, "busybox cat of cpuinfo");
	/* uptime grows by a digit at 9.99 -> 10.00 etc.; every cat, whatever
	 * the previous one left in i_size, ends with a newline. */
	for (int k = 0; k < 50; k++) {
		cr_assert(pf_sh(out, sizeof(out), "busybox cat %s", mp("proc/uptime")) == 0);
		cr_assert(strlen(out) > 4 && out[strlen(out) - 1] == '\n' && strchr(out, ' '),
			  "busybox cat of uptime: '%s'", out);
	}
	free(host);
}

/* The tools people use: cat, dd bs=1, head -c, less, python's pread. */
PTEST(fs, tools_read_whole_files)
{
	char out[65536], *host = pf_slurp("/proc/cpuinfo");

	pf_mount(NULL);
	/* cpuinfo does not change between reads: every tool must see all of it. */
	cr_assert(pf_sh(out, sizeof(out), "cat %s", mp("proc/cpuinfo")) == 0);
	cr_expect_str_eq(out, host);
	cr_assert(pf_sh(out, sizeof(out), "dd if=%s bs=1 status=none", mp("proc/cpuinfo")) == 0);
	cr_expect_str_eq(out, host);
	cr_assert(pf_sh(out, sizeof(out), "less -FX %s", mp("proc/cpuinfo")) == 0);
	cr_expect_str_eq(out, host);
	cr_assert(pf_sh(out, sizeof(out), "head -c 9 %s", mp("proc/meminfo")) == 0);
	cr_expect_str_eq(out, "MemTotal:");
	cr_assert(pf_sh(out, sizeof(out),
			"python3 -c 'import os,sys; fd=os.open(sys.argv[1],os.O_RDONLY); "
			"a=os.pread(fd,65536,0); "
			"b=b\"\".join(os.pread(fd,5,o) for o in range(0,len(a),5)); "
			"sys.exit(0 if a==b and a.endswith(b\"\\n\") else 1)' %s",
			mp("proc/meminfo")) == 0, "%s", out);
	cr_assert(pf_sh(out, sizeof(out), "grep -c . %s", mp("proc/meminfo")) == 0);
	char cnt[64];
	cr_assert(pf_sh(cnt, sizeof(cnt), "grep -c . /proc/meminfo") == 0);
	cr_expect_str_eq(out, cnt, "meminfo line count differs from the host's");
	free(host);
}

PTEST(fs, sigterm_unmounts_and_removes_pidfile)
{
	pid_t w;

	pf_mount(NULL);
	w = pf_worker();
	cr_assert(w > 0);
	cr_assert(kill(PF.sup, SIGTERM) == 0);
	for (int i = 0; i < 200 && (pf_is_mounted(PF.mnt) || pf_pid_alive(PF.sup)); i++)
		pf_msleep(10);
	cr_expect(!pf_is_mounted(PF.mnt), "still mounted after SIGTERM");
	cr_expect(!pf_pid_alive(PF.sup), "supervisor still running");
	cr_expect(!pf_pid_alive(w), "worker still running");
	cr_expect(access(PF.pidfile, F_OK) < 0, "pidfile left behind");
}

PTEST(fs, external_umount_stops_the_daemon)
{
	char out[256];

	pf_mount(NULL);
	cr_assert(pf_sh(out, sizeof(out), "umount %s", PF.mnt) == 0, "%s", out);
	for (int i = 0; i < 200 && pf_pid_alive(PF.sup); i++)
		pf_msleep(10);
	cr_expect(!pf_pid_alive(PF.sup), "supervisor still running after umount");
}

PTEST(fs, busy_mountpoint_is_refused)
{
	char out[4096], args[600];

	pf_mount(NULL);
	snprintf(args, sizeof(args), "%s", PF.mnt);
	cr_expect(pf_start(args, out, sizeof(out)) == 1);
	cr_expect(strstr(out, "busy") != NULL, "message: %s", out);
	cr_expect(strchr(out, '\n') == strrchr(out, '\n'), "more than one line: %s", out);
	/* The first mount is untouched and still serves. */
	char *m = pf_slurp(mp("proc/meminfo"));
	cr_expect(m && strncmp(m, "MemTotal:", 9) == 0);
	free(m);
}

PTEST(fs, bad_arguments_and_missing_cgroups)
{
	char out[4096], args[700];

	cr_expect(pf_start("--no-such-option /tmp", out, sizeof(out)) == 1);
	cr_expect(strstr(out, "unknown option") != NULL, "%s", out);
	cr_expect(pf_start("--cache-ms many /tmp", out, sizeof(out)) == 1);
	cr_expect(strstr(out, "--cache-ms") != NULL, "%s", out);
	cr_expect(pf_start("--spin-us -5 /tmp", out, sizeof(out)) == 1);
	cr_expect(strstr(out, "--spin-us") != NULL, "%s", out);
	cr_expect(pf_start("/tmp/a /tmp/b", out, sizeof(out)) == 1);
	snprintf(args, sizeof(args), "--cgroup-root %s/none %s", PF.root, PF.mnt);
	pf_reg("umount %s", PF.mnt);
	cr_expect(pf_start(args, out, sizeof(out)) == 1);
	cr_expect(strstr(out, "cgroup") != NULL, "%s", out);
	cr_expect(strchr(out, '\n') == strrchr(out, '\n'), "more than one line: %s", out);
	cr_expect(!pf_is_mounted(PF.mnt), "left mounted after a failure");
	cr_expect(pf_start("--help", out, sizeof(out)) == 0);
	cr_expect(strstr(out, "MOUNTPOINT") != NULL);
	cr_expect(pf_start("-V", out, sizeof(out)) == 0);
	cr_expect(strncmp(out, "strata-procfs ", 14) == 0, "%s", out);
}

/* ---- kill -9 of the worker ---- */

struct loop_stats {
	double max_gap_after_kill; /* longest time without a good read, from the kill on */
	long ok_before, ok_after, errors;
	int first_errno;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Child: reads meminfo (a new open per read) until `until`; kill_at is
 * set by the parent when it kills the worker. */
static void read_loop(const char *path, volatile double *kill_at, double until,
		      struct loop_stats *s)
{
	char buf[65536];
	double last_ok = now_s();

	while (now_s() < until) {
		int fd = open(path, O_RDONLY);
		ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf)) : -1;
		int e = errno;
		double t = now_s(), k = *kill_at;

		if (fd >= 0)
			close(fd);
		if (n > 9 && strncmp(buf, "MemTotal:", 9) == 0) {
			if (k > 0) {
				double from = last_ok > k ? last_ok : k;

				if (t - from > s->max_gap_after_kill)
					s->max_gap_after_kill = t - from;
				s->ok_after++;
			} else {
				s->ok_before++;
			}
			last_ok = t;
		} else {
			if (!s->errors++)
				s->first_errno = e;
		}
	}
	if (*kill_at > 0 && last_ok < *kill_at)
		s->max_gap_after_kill = until - *kill_at; /* never resumed */
}

static bool kernel_has_resend(void)
{
	struct utsname u;
	int maj = 0, min = 0;

	uname(&u);
	sscanf(u.release, "%d.%d", &maj, &min);
	return maj > 6 || (maj == 6 && min >= 9);
}

static void crash_test(int kills)
{
	struct {
		volatile double kill_at;
		struct loop_stats s;
	} *sh = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	double until;
	pid_t reader, w, w2 = 0;

	cr_assert(sh != MAP_FAILED);
	pf_mount(NULL);
	w = pf_worker();
	cr_assert(w > 0);
	until = now_s() + 1.0 + 1.5 * kills;
	reader = fork();
	cr_assert(reader >= 0);
	if (reader == 0) {
		read_loop(mp("proc/meminfo"), &sh->kill_at, until, &sh->s);
		_exit(0);
	}
	pf_reg_proc("proc", reader);
	pf_msleep(500);
	for (int k = 0; k < kills; k++) {
		if (!sh->kill_at)
			sh->kill_at = now_s();
		cr_assert(kill(w, SIGKILL) == 0);
		pf_msleep(1200);
		w2 = pf_worker();
		cr_expect(w2 > 0 && w2 != w, "no new worker after kill -9 of %d", (int)w);
		w = w2;
	}
	waitpid(reader, NULL, 0);
	cr_expect(pf_pid_alive(PF.sup), "supervisor died");
	cr_expect(pf_is_mounted(PF.mnt));
	cr_expect(sh->s.ok_before > 0, "no reads before the kill (errors %ld, first %s)",
		  sh->s.errors, strerror(sh->s.first_errno));
	cr_expect(sh->s.ok_after > 0, "reads never resumed");
	cr_expect(sh->s.max_gap_after_kill < 1.0, "reads stopped for %.3f s",
		  sh->s.max_gap_after_kill);
	/* With FUSE_NOTIFY_RESEND (Linux 6.9+) not even the read in flight
	 * fails: the next worker answers it. */
	if (kernel_has_resend())
		cr_expect(sh->s.errors == 0, "%ld failed reads (first: %s)", sh->s.errors,
			  strerror(sh->s.first_errno));
	munmap(sh, 4096);
}

PTEST(restart, kill9_worker_reads_resume_within_a_second)
{
	crash_test(1);
}

PTEST(restart, repeated_kill9)
{
	crash_test(3);
}

/* A file opened before the crash keeps reading afterwards (its handle
 * belongs to the dead worker: the new one serves it from a fresh text). */
PTEST(restart, open_file_survives_worker_restart)
{
	char buf[65536];
	int fd;
	pid_t w;

	pf_mount(NULL);
	fd = open(mp("proc/cpuinfo"), O_RDONLY);
	cr_assert(fd >= 0);
	cr_assert(read(fd, buf, 10) == 10);
	w = pf_worker();
	cr_assert(kill(w, SIGKILL) == 0);
	pf_msleep(200);
	ssize_t n = pread(fd, buf, sizeof(buf), 0);
	cr_assert(n > 10, "pread after restart: %zd %s", n, strerror(errno));
	cr_expect(strncmp(buf, "processor", 9) == 0);
	close(fd);
}

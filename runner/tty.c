/* What goes between the runner, its container and the user's terminal:
 * the parent/child channel (typed messages that can carry an fd), ptys,
 * raw mode on the caller's terminal, the relay loop that runs while the
 * container does (output, stdin for -i -t, window size, signals), the ps
 * table, and the small file helpers the runner shares. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <json-c/json.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "cgroup.h"
#include "log.h"
#include "parse.h"
#include "state.h"

/* ---- the channel ------------------------------------------------------ */

int sync_send(int sock, int type, int code, int fd, const char *text)
{
	struct sync_msg m = { .type = type, .code = code };
	struct iovec iov = { .iov_base = &m, .iov_len = sizeof(m) };
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (text)
		snprintf(m.text, sizeof(m.text), "%s", text);
	if (fd >= 0) {
		struct cmsghdr *cm;

		memset(&u, 0, sizeof(u));
		msg.msg_control = u.buf;
		msg.msg_controllen = sizeof(u.buf);
		cm = CMSG_FIRSTHDR(&msg);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	}
	for (;;) {
		ssize_t n = sendmsg(sock, &msg, MSG_NOSIGNAL);

		if (n == (ssize_t)sizeof(m))
			return 0;
		if (n < 0 && errno == EINTR)
			continue;
		return -1;
	}
}

int sync_recv(int sock, struct sync_msg *m, int *fd, int timeout_ms)
{
	struct iovec iov = { .iov_base = m, .iov_len = sizeof(*m) };
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
			      .msg_controllen = sizeof(u.buf) };
	struct pollfd pfd = { .fd = sock, .events = POLLIN };
	struct cmsghdr *cm;
	ssize_t n;
	int r;

	if (fd)
		*fd = -1;
	do
		r = poll(&pfd, 1, timeout_ms);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return -1;
	if (r == 0)
		return -2;
	do
		n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n == 0)
		return 0;
	if (n != (ssize_t)sizeof(*m))
		return -1;
	m->text[sizeof(m->text) - 1] = '\0';
	for (cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
		int got;

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		memcpy(&got, CMSG_DATA(cm), sizeof(int));
		if (fd)
			*fd = got;
		else
			close(got);
	}
	return 1;
}

/* ---- ptys ------------------------------------------------------------- */

int pty_open(const char *ptmx, int *master, int *slave, char *slave_name, size_t len)
{
	int m = open(ptmx, O_RDWR | O_NOCTTY | O_CLOEXEC), s;

	if (m < 0)
		return -errno;
	if (unlockpt(m) < 0 || ptsname_r(m, slave_name, len) != 0) {
		int e = errno;

		close(m);
		return -e;
	}
	/* TIOCGPTPEER opens the slave that belongs to this master, whatever
	 * the path /dev/pts/N resolves to. */
	s = ioctl(m, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (s < 0) {
		int e = errno;

		close(m);
		return -e;
	}
	*master = m;
	*slave = s;
	return 0;
}

static struct termios saved_tio;
static int saved_fd = -1;

void tty_restore(void)
{
	if (saved_fd >= 0)
		tcsetattr(saved_fd, TCSADRAIN, &saved_tio);
	saved_fd = -1;
}

int tty_raw(int fd)
{
	struct termios t;

	if (!isatty(fd))
		return 0;
	if (tcgetattr(fd, &saved_tio) < 0)
		return -errno;
	t = saved_tio;
	cfmakeraw(&t);
	/* Keep output post-processing off too: the container's pty already
	 * turns \n into \r\n. */
	if (tcsetattr(fd, TCSADRAIN, &t) < 0)
		return -errno;
	saved_fd = fd;
	atexit(tty_restore);
	return 0;
}

static void copy_winsize(int master)
{
	struct winsize ws;

	for (int fd = 0; fd <= 2; fd++) {
		if (ioctl(fd, TIOCGWINSZ, &ws) == 0) {
			if (ioctl(master, TIOCSWINSZ, &ws) < 0)
				log_debug("TIOCSWINSZ: %s", errno_name(errno));
			return;
		}
	}
}

/* ---- the relay -------------------------------------------------------- */

static int write_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			struct pollfd p = { .fd = fd, .events = POLLOUT };

			poll(&p, 1, 1000);
			continue;
		}
		if (n <= 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Copies what the pty has; returns -1 once the slave side is closed. */
static int pump_output(int master, int out_fd)
{
	char buf[16384];
	ssize_t n = read(master, buf, sizeof(buf));

	if (n > 0) {
		if (out_fd >= 0 && write_all(out_fd, buf, (size_t)n) < 0)
			log_debug("output: %s", errno_name(errno));
		return 0;
	}
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return 0;
	return -1; /* EIO: every slave fd is closed */
}

static void drain(int master, int out_fd)
{
	int fl = fcntl(master, F_GETFL);

	if (fl >= 0)
		fcntl(master, F_SETFL, fl | O_NONBLOCK);
	for (int i = 0; i < 4096; i++) {
		char buf[16384];
		ssize_t n = read(master, buf, sizeof(buf));

		if (n <= 0)
			break;
		if (out_fd >= 0)
			write_all(out_fd, buf, (size_t)n);
	}
}

static int pidfd_signal(int pidfd, pid_t pid, int sig)
{
	if (pidfd >= 0 && syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0) == 0)
		return 0;
	return kill(pid, sig);
}

int relay_run(int pidfd, pid_t pid, int master, int in_fd, int out_fd)
{
	enum { P_PID, P_SIG, P_MASTER, P_IN, P_N };
	static const int fwd[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH };
	struct pollfd p[P_N];
	sigset_t set, old;
	int sfd;

	/* Without it nothing would ever end the loop below. */
	if (pidfd < 0)
		return -1;
	sigemptyset(&set);
	for (size_t i = 0; i < sizeof(fwd) / sizeof(fwd[0]); i++)
		sigaddset(&set, fwd[i]);
	if (sigprocmask(SIG_BLOCK, &set, &old) < 0)
		return -1;
	sfd = signalfd(-1, &set, SFD_CLOEXEC);
	if (sfd < 0) {
		sigprocmask(SIG_SETMASK, &old, NULL);
		return -1;
	}
	if (master >= 0)
		copy_winsize(master);
	p[P_PID] = (struct pollfd){ .fd = pidfd, .events = POLLIN };
	p[P_SIG] = (struct pollfd){ .fd = sfd, .events = POLLIN };
	p[P_MASTER] = (struct pollfd){ .fd = master, .events = POLLIN };
	p[P_IN] = (struct pollfd){ .fd = master >= 0 ? in_fd : -1, .events = POLLIN };
	for (;;) {
		int r = poll(p, P_N, -1);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			break;
		if (p[P_SIG].revents & POLLIN) {
			struct signalfd_siginfo si;

			if (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
				if ((int)si.ssi_signo == SIGWINCH) {
					if (master >= 0)
						copy_winsize(master);
				} else if (pidfd_signal(pidfd, pid, (int)si.ssi_signo) < 0) {
					log_debug("forwarding signal %u: %s", si.ssi_signo,
						  errno_name(errno));
				}
			}
		}
		if (p[P_MASTER].revents & (POLLIN | POLLHUP | POLLERR)) {
			if (pump_output(master, out_fd) < 0)
				p[P_MASTER].fd = -1;
		}
		if (p[P_IN].revents & (POLLIN | POLLHUP | POLLERR)) {
			char buf[4096];
			ssize_t n = read(in_fd, buf, sizeof(buf));

			if (n > 0) {
				write_all(master, buf, (size_t)n);
			} else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
				/* End of our input: the terminal's end-of-file. */
				write_all(master, "\x04", 1);
				p[P_IN].fd = -1;
			}
		}
		if (p[P_PID].revents & (POLLIN | POLLHUP | POLLERR))
			break;
	}
	if (master >= 0)
		drain(master, out_fd);
	close(sfd);
	/* The forwarded signals stay blocked: one arriving now must not kill
	 * the runner before it has recorded the exit and cleaned up. */
	return 0;
}

/* ---- small helpers ---------------------------------------------------- */

int strv_add(char ***v, const char *s)
{
	size_t n = 0;
	char **nv;

	while (*v && (*v)[n])
		n++;
	nv = realloc(*v, (n + 2) * sizeof(*nv));
	if (!nv)
		return -1;
	*v = nv;
	nv[n] = strdup(s);
	nv[n + 1] = NULL;
	return nv[n] ? 0 : -1;
}

int errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

int mkdir_p(const char *path, mode_t mode)
{
	char buf[PATH_MAX];
	size_t len = strlen(path);

	if (len >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, len + 1);
	for (char *p = buf + 1; ; p++) {
		if (*p == '/' || !*p) {
			char c = *p;

			*p = '\0';
			if (mkdir(buf, mode) < 0 && errno != EEXIST)
				return -errno;
			*p = c;
			if (!c)
				break;
		}
	}
	return 0;
}

int write_atomic(const char *path, const char *data)
{
	char tmp[PATH_MAX + 32];
	size_t len = strlen(data), off = 0;
	int fd, e = 0;

	snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	while (off < len) {
		ssize_t n = write(fd, data + off, len - off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			e = -errno;
			break;
		}
		off += (size_t)n;
	}
	if (close(fd) < 0 && !e)
		e = -errno;
	if (!e && rename(tmp, path) < 0)
		e = -errno;
	if (e)
		unlink(tmp);
	return e;
}

char *read_text(const char *path, size_t max)
{
	char *buf;

	return cg_read_alloc(AT_FDCWD, path, &buf, max) < 0 ? NULL : buf;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP)
		return rmdir(path) < 0 && errno != ENOENT ? -1 : 0;
	return unlink(path) < 0 && errno != ENOENT ? -1 : 0;
}

int remove_tree(const char *path)
{
	struct stat st;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	/* FTW_MOUNT: never descend into something mounted below path. */
	if (nftw(path, rm_entry, 32, FTW_DEPTH | FTW_PHYS | FTW_MOUNT) < 0)
		return errno ? -errno : -EIO;
	return 0;
}

/* ---- the ps table ----------------------------------------------------- */

static time_t parse_time(const char *s)
{
	struct tm tm = { 0 };

	if (!s || !*s || !strptime(s, "%Y-%m-%dT%H:%M:%S", &tm))
		return 0;
	return timegm(&tm);
}

/* docker's units.HumanDuration. */
static void human_duration(time_t secs, char *buf, size_t len)
{
	long s = (long)secs, m = s / 60, h = m / 60;

	if (s < 1)
		snprintf(buf, len, "Less than a second");
	else if (s == 1)
		snprintf(buf, len, "1 second");
	else if (s < 60)
		snprintf(buf, len, "%ld seconds", s);
	else if (m == 1)
		snprintf(buf, len, "About a minute");
	else if (m < 60)
		snprintf(buf, len, "%ld minutes", m);
	else if (h == 1)
		snprintf(buf, len, "About an hour");
	else if (h < 48)
		snprintf(buf, len, "%ld hours", h);
	else if (h < 24 * 7 * 2)
		snprintf(buf, len, "%ld days", h / 24);
	else if (h < 24 * 30 * 2)
		snprintf(buf, len, "%ld weeks", h / 24 / 7);
	else if (h < 24 * 365 * 2)
		snprintf(buf, len, "%ld months", h / 24 / 30);
	else
		snprintf(buf, len, "%ld years", h / 24 / 365);
}

static void status_text(const struct cstate *s, char *buf, size_t len)
{
	char d[64];
	time_t now = time(NULL);

	if (s->status == ST_RUNNING) {
		human_duration(now - parse_time(s->started), d, sizeof(d));
		snprintf(buf, len, "Up %s", d);
	} else if (s->status == ST_EXITED) {
		human_duration(now - parse_time(s->finished), d, sizeof(d));
		snprintf(buf, len, "Exited (%d) %s ago", s->exit_code, d);
	} else {
		snprintf(buf, len, "Created");
	}
}

void command_text(char **argv, char *buf, size_t len)
{
	char full[1024] = "";

	for (size_t i = 0; argv && argv[i]; i++)
		snprintf(full + strlen(full), sizeof(full) - strlen(full), "%s%s", i ? " " : "", argv[i]);
	if (strlen(full) > 20)
		snprintf(buf, len, "\"%.19s…\"", full);
	else
		snprintf(buf, len, "\"%s\"", full);
}

int ps_print(bool all, bool quiet, bool json)
{
	char **ids = container_list();

	if (!json && !quiet)
		printf("%-12s   %-15s   %-22s   %-24s   %-30s   %s\n", "CONTAINER ID", "IMAGE",
		       "COMMAND", "CREATED", "STATUS", "NAMES");
	for (size_t i = 0; ids[i]; i++) {
		struct container c;
		struct cstate s;
		char created[80], status[96], cmd[64];

		if (config_load(ids[i], &c) < 0)
			continue;
		if (state_refresh(ids[i], &s) < 0 || (!all && s.status != ST_RUNNING)) {
			container_free(&c);
			continue;
		}
		if (json) {
			json_object *o = container_json(&c, &s);

			printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
								       JSON_C_TO_STRING_NOSLASHESCAPE));
			json_object_put(o);
		} else if (quiet) {
			printf("%.12s\n", c.id);
		} else {
			human_duration(time(NULL) - parse_time(c.created), created, sizeof(created) - 5);
			strcat(created, " ago");
			status_text(&s, status, sizeof(status));
			command_text(c.argv, cmd, sizeof(cmd));
			printf("%.12s   %-15s   %-22s   %-24s   %-30s   %s\n", c.id, c.image ?: "", cmd,
			       created, status, c.name ?: "");
		}
		container_free(&c);
	}
	strv_free(ids);
	return 0;
}

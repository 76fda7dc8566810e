/* sysinfo(2) and sched_getaffinity(2) as the container sees them, answered
 * by its monitor through seccomp user notification.
 *
 * No file can help a program that asks the kernel directly: busybox free
 * and uptime call sysinfo(2), nproc and Go's runtime sched_getaffinity(2).
 * The container's filter (security.c) sends those two calls here; a thread
 * of the runner or the -d monitor (the process that waits for the container
 * and outlives it) answers from the container's cgroups, writes the result
 * into the caller with process_vm_writev and completes the call.
 *
 * Every filter carries its own listener fd: the command's (sent over the
 * setup channel) and one per `strata exec` (sent by that exec over the
 * socket $STRATA_RUN/<id>/notify, so the monitor keeps answering an exec's
 * background processes after the exec returns).  If the monitor dies, the
 * kernel fails those two calls with ENOSYS: the container never blocks on
 * a dead monitor. */
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <poll.h>
#include <pthread.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "state.h"

#define SOCK_NAME "notify"
#define MASK_MAX 1024 /* bytes of a cpu mask: 8192 CPUs */
/* Interrupts the thread's one blocking call (see notify_stop). */
#define WAKE_SIG (SIGRTMIN + 1)

enum kind { K_STOP, K_ACCEPT, K_CONN, K_FILTER };

/* ---- the socket an exec sends its listener over ---- */

static int sock_addr(int dirfd, struct sockaddr_un *a)
{
	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	/* Through the directory's fd: $STRATA_RUN may be too long for sun_path. */
	return snprintf(a->sun_path, sizeof(a->sun_path), "/proc/self/fd/%d/" SOCK_NAME, dirfd) <
			       (int)sizeof(a->sun_path) ? 0 : -ENAMETOOLONG;
}

static int open_state_dir(const char *id)
{
	char path[PATH_MAX];

	int fd;

	if (snprintf(path, sizeof(path), "%s/%s", run_dir(), id) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

int notify_listen(const char *id, char *err, size_t errlen)
{
	struct sockaddr_un a;
	int dirfd = open_state_dir(id), s = -1, e;

	if (dirfd < 0)
		return FAIL("%s/%s: %s", run_dir(), id, errno_name(-dirfd));
	e = sock_addr(dirfd, &a);
	if (e == 0 && (s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) < 0)
		e = -errno;
	if (e == 0 && (bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(s, 16) < 0))
		e = -errno;
	close(dirfd);
	if (e < 0) {
		if (s >= 0)
			close(s);
		return FAIL("the exec notification socket in %s/%s: %s", run_dir(), id,
			    errno_name(-e));
	}
	return s;
}

void notify_unlink(const char *id)
{
	int dirfd = open_state_dir(id);

	if (dirfd < 0)
		return;
	if (unlinkat(dirfd, SOCK_NAME, 0) < 0 && errno != ENOENT)
		log_debug("unlink %s/%s/" SOCK_NAME ": %s", run_dir(), id, errno_name(errno));
	close(dirfd);
}

int notify_connect(const char *id)
{
	struct sockaddr_un a;
	int dirfd = open_state_dir(id), s = -1;

	if (dirfd < 0)
		return -1;
	if (sock_addr(dirfd, &a) == 0 &&
	    (s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0)) >= 0 &&
	    connect(s, (struct sockaddr *)&a, sizeof(a)) < 0) {
		close(s);
		s = -1;
	}
	close(dirfd);
	return s;
}

/* ---- the monitor's thread ---- */

static int add_fd(struct notify *n, int fd, int kind)
{
	if (n->n == n->cap) {
		size_t cap = n->cap ? 2 * n->cap : 8;
		struct pollfd *p = realloc(n->pfd, cap * sizeof(*p));
		int *k = p ? realloc(n->kind, cap * sizeof(*k)) : NULL;

		if (p)
			n->pfd = p;
		if (!k)
			return -ENOMEM;
		n->kind = k;
		n->cap = cap;
	}
	n->pfd[n->n] = (struct pollfd){ .fd = fd, .events = POLLIN };
	n->kind[n->n++] = kind;
	return 0;
}

static void drop_fd(struct notify *n, size_t i)
{
	close(n->pfd[i].fd);
	n->pfd[i] = n->pfd[--n->n];
	n->kind[i] = n->kind[n->n];
}

static int write_caller(pid_t pid, uint64_t addr, const void *buf, size_t len)
{
	struct iovec local = { .iov_base = (void *)buf, .iov_len = len };
	struct iovec remote = { .iov_base = (void *)(uintptr_t)addr, .iov_len = len };
	ssize_t w = process_vm_writev(pid, &local, 1, &remote, 1, 0);

	return w == (ssize_t)len ? 0 : w < 0 ? -errno : -EFAULT;
}

static uint64_t min64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

/* The memory fields as strata-procfs's meminfo has them: total = the limit
 * (MemTotal), free = limit - usage (MemFree), shared = shmem, no buffers;
 * swap = the swap limit and the container's use of it. */
static void sysinfo_memory(const struct cg_memory *m, struct sysinfo *si)
{
	uint64_t unit = si->mem_unit ? si->mem_unit : 1, total, used;

	if (m->has_limit && m->limit != CG_UNLIMITED && m->limit / unit < si->totalram) {
		total = m->limit / unit;
		used = (m->has_usage ? m->usage : m->anon + m->file + m->slab) / unit;
		si->totalram = total;
		si->freeram = total > used ? total - used : 0;
		si->sharedram = min64(m->shmem / unit, total);
		si->bufferram = 0;
	}
	if (m->has_swap_limit && m->swap_limit != CG_UNLIMITED &&
	    m->swap_limit / unit < si->totalswap) {
		total = m->swap_limit / unit;
		used = m->has_swap_usage ? min64(m->swap_usage / unit, total) : 0;
		si->totalswap = total;
		si->freeswap = total - used;
	}
}

static int do_sysinfo(struct notify *n, const struct cg_proc *p, struct sysinfo *si)
{
	struct cg_memory m;
	pid_t *pids;
	long hz = sysconf(_SC_CLK_TCK);
	int count;

	if (sysinfo(si) < 0)
		return -errno;
	if (cg_read_memory(&n->host, p, &m) == 0)
		sysinfo_memory(&m, si);
	/* The container's uptime runs from its init's start, as /proc/uptime's. */
	if (hz > 0 && n->init_start) {
		long start = (long)(n->init_start / (unsigned long long)hz);

		si->uptime = si->uptime > start ? si->uptime - start : 0;
	}
	count = cg_container_pids(n->cg, &pids);
	if (count > 0) {
		si->procs = (unsigned short)(count > 0xffff ? 0xffff : count);
		free(pids);
	}
	return 0;
}

/* The caller's own mask cut to ceil(quota/period) CPUs, lowest ids first;
 * 1 when there is nothing to cut (the real call then runs), else the
 * byte count the syscall returns, or -errno. */
static int do_affinity(struct notify *n, const struct seccomp_notif *req, const struct cg_proc *p,
		       uint8_t *mask)
{
	size_t len = req->data.args[1] < MASK_MAX ? (size_t)req->data.args[1] : MASK_MAX;
	unsigned long long keep;
	long ret;
	unsigned int seen = 0;

	/* Another process's mask: its pid is in the container's namespace,
	 * which we do not translate. */
	if (req->data.args[0] != 0)
		return 1;
	if (cg_read_cpu(&n->host, p, &n->cpu) < 0 || !n->cpu.has_quota || n->cpu.quota_us < 0 ||
	    !n->cpu.period_us)
		return 1;
	keep = ((unsigned long long)n->cpu.quota_us + n->cpu.period_us - 1) / n->cpu.period_us;
	ret = syscall(SYS_sched_getaffinity, req->pid, len, mask);
	if (ret < 0)
		return -errno;
	for (long i = 0; i < ret * 8; i++) {
		if (!(mask[i / 8] & (1u << (i % 8))))
			continue;
		if (++seen > keep)
			mask[i / 8] &= (uint8_t)~(1u << (i % 8));
	}
	return seen <= keep ? 1 : (int)ret;
}

/* Answers one call; CONTINUE (the real syscall) whatever we cannot improve. */
static void answer(struct notify *n, int fd, const struct seccomp_notif *req,
		   struct seccomp_notif_resp *resp)
{
	struct cg_proc p = { 0 };
	struct sysinfo si;
	uint8_t mask[MASK_MAX];
	const void *out = NULL;
	size_t outlen = 0;
	int rc = 1;

	memset(resp, 0, sizeof(*resp));
	resp->id = req->id;
	/* The 32-bit ABIs lay the structures out differently. */
	if (req->data.arch == AUDIT_ARCH_X86_64 && cg_proc_read(&n->host, "/proc", req->pid, &p) == 0) {
		if (req->data.nr == __NR_sysinfo) {
			rc = do_sysinfo(n, &p, &si);
			out = &si;
			outlen = sizeof(si);
		} else if (req->data.nr == __NR_sched_getaffinity) {
			memset(mask, 0, sizeof(mask));
			rc = do_affinity(n, req, &p, mask);
			out = mask;
			outlen = rc > 1 ? (size_t)rc : 0;
			resp->val = rc > 1 ? rc : 0;
		}
	}
	cg_proc_free(&p);
	/* The caller may have died and its pid been reused since the
	 * notification: only while the id is valid is req->pid the caller. */
	if (ioctl(fd, SECCOMP_IOCTL_NOTIF_ID_VALID, &req->id) < 0)
		return;
	if (rc == 1)
		resp->flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
	else if (rc < 0)
		resp->error = rc;
	else if ((rc = write_caller(req->pid, req->data.args[req->data.nr == __NR_sysinfo ? 0 : 2],
				    out, outlen)) < 0) {
		resp->error = rc;
		resp->val = 0;
	}
	if (ioctl(fd, SECCOMP_IOCTL_NOTIF_SEND, resp) < 0)
		log_debug("seccomp notify respond: %s", errno_name(errno));
}

static void on_filter(struct notify *n, size_t i)
{
	int fd = n->pfd[i].fd;

	if (n->pfd[i].revents & POLLIN) {
		/* The kernel wants it zeroed. */
		memset(&n->req, 0, sizeof(n->req));
		if (ioctl(fd, SECCOMP_IOCTL_NOTIF_RECV, &n->req) == 0) {
			answer(n, fd, &n->req, &n->resp);
			return;
		}
		/* EINTR: notify_stop woke us; ENOENT: the caller died. */
		if (errno == EINTR || errno == ENOENT)
			return;
		log_warn("seccomp notifications: %s: no more answers", errno_name(errno));
		drop_fd(n, i); /* its callers get ENOSYS rather than a busy loop */
		return;
	}
	if (n->pfd[i].revents & (POLLHUP | POLLERR | POLLNVAL))
		drop_fd(n, i); /* every process under that filter is gone */
}

static void on_accept(struct notify *n, int s)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	int c = accept4(s, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

	if (c < 0)
		return;
	/* Only root may hand us a filter to answer. */
	if (getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || cred.uid != 0 ||
	    add_fd(n, c, K_CONN) < 0)
		close(c);
}

static void on_conn(struct notify *n, size_t i)
{
	struct sync_msg m;
	int fd = -1, r = sync_recv(n->pfd[i].fd, &m, &fd, 0);

	if (r == -2)
		return;
	drop_fd(n, i);
	if (r == 1 && m.type == SYNC_NOTIFY && fd >= 0 && add_fd(n, fd, K_FILTER) == 0)
		return;
	if (fd >= 0)
		close(fd);
}

static void wake(int sig)
{
	(void)sig;
}

static void *serve(void *arg)
{
	struct notify *n = arg;
	sigset_t wake_set;

	sigemptyset(&wake_set);
	sigaddset(&wake_set, WAKE_SIG);
	pthread_sigmask(SIG_UNBLOCK, &wake_set, NULL);
	while (!__atomic_load_n(&n->stopping, __ATOMIC_ACQUIRE)) {
		if (poll(n->pfd, n->n, -1) < 0) {
			if (errno == EINTR)
				continue;
			log_warn("seccomp notifications: poll: %s", errno_name(errno));
			break;
		}
		/* Backwards: drop_fd moves the last entry into the slot. */
		for (size_t i = n->n; i-- > 0;) {
			if (!n->pfd[i].revents)
				continue;
			if (n->kind[i] == K_STOP)
				return NULL;
			if (n->kind[i] == K_ACCEPT)
				on_accept(n, n->pfd[i].fd);
			else if (n->kind[i] == K_CONN)
				on_conn(n, i);
			else
				on_filter(n, i);
		}
	}
	return NULL;
}

void notify_init(struct notify *n)
{
	memset(n, 0, sizeof(*n));
	n->stop[0] = n->stop[1] = -1;
}

/* Takes fd into the poll set (closing it when that fails). */
static int own_fd(struct notify *n, int fd, int kind)
{
	if (fd < 0 || add_fd(n, fd, kind) == 0)
		return 0;
	close(fd);
	return ENOMEM;
}

int notify_start(struct notify *n, int filter, int sock, const struct cg_container *cg,
		 pid_t init)
{
	struct sigaction sa = { .sa_handler = wake }; /* no SA_RESTART: EINTR wakes */
	sigset_t all, old;
	int e = own_fd(n, filter, K_FILTER);

	e = own_fd(n, sock, K_ACCEPT) ?: e;
	n->cg = cg;
	n->init_start = proc_start_time(init);
	if (!e && pipe2(n->stop, O_CLOEXEC) < 0)
		e = errno;
	if (!e)
		e = own_fd(n, n->stop[0], K_STOP);
	if (!e && cg_host_detect(&n->host, NULL) < 0)
		e = ENOENT;
	if (!e && sigaction(WAKE_SIG, &sa, NULL) < 0)
		e = errno;
	if (!e) {
		/* Signals stay with the main thread (its signalfd relay). */
		sigfillset(&all);
		pthread_sigmask(SIG_SETMASK, &all, &old);
		e = pthread_create(&n->thread, NULL, serve, n);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
	}
	n->running = e == 0;
	/* On failure what we were given is closed: its callers get ENOSYS. */
	if (e)
		notify_stop(n);
	return -e;
}

void notify_stop(struct notify *n)
{
	if (n->running) {
		struct timespec t;

		__atomic_store_n(&n->stopping, true, __ATOMIC_RELEASE);
		if (write(n->stop[1], "x", 1) < 0)
			log_debug("notify stop: %s", errno_name(errno));
		/* A receive can block when its caller died after poll said
		 * ready: the signal interrupts it (until the thread is gone). */
		for (;;) {
			pthread_kill(n->thread, WAKE_SIG);
			clock_gettime(CLOCK_REALTIME, &t);
			t.tv_nsec += 100000000;
			if (t.tv_nsec >= 1000000000) {
				t.tv_sec++;
				t.tv_nsec -= 1000000000;
			}
			if (pthread_timedjoin_np(n->thread, NULL, &t) == 0)
				break;
		}
		n->running = false;
	}
	for (size_t i = 0; i < n->n; i++)
		close(n->pfd[i].fd);
	if (n->stop[1] >= 0)
		close(n->stop[1]);
	free(n->pfd);
	free(n->kind);
	cg_host_free(&n->host);
	notify_init(n);
}

/* ---- the filter's side (security.c): hands the listener over ---- */

int notify_pass(int sock, int listener)
{
	return sync_send(sock, SYNC_NOTIFY, 0, listener, NULL);
}

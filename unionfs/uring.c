/* FUSE over io_uring under libfuse 3.14 (see uring.h). */
#include "uring.h"

#include <errno.h>
#include <liburing.h>
#include <linux/fuse.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include "log.h"
#include "passthrough.h"
#include "ufs.h"

/* Protocol 7.42, newer than Debian 12's <linux/fuse.h> (7.38). */
#define UR_FUSE_OVER_IO_URING (1ULL << 41)
#define UR_CMD_REGISTER 1
#define UR_CMD_COMMIT_AND_FETCH 2
#define UR_HEADER_AREA 128

struct ur_ent_in_out {
	uint64_t flags;
	uint64_t commit_id; /* echoed in the commit */
	uint32_t payload_sz;
	uint32_t padding;
	uint64_t reserved;
};

/* The first buffer of an entry: the in (fetch) or out (commit) header, the
 * request's fixed argument struct, and the entry's bookkeeping. */
struct ur_req_header {
	char in_out[UR_HEADER_AREA];
	char op_in[UR_HEADER_AREA];
	struct ur_ent_in_out ent;
};

/* In the SQE's 80-byte command area. */
struct ur_cmd_req {
	uint64_t flags;
	uint64_t commit_id;
	uint16_t qid;
	uint8_t padding[6];
};

/* Entries per ring: one thread serves them in turn, so more only let the
 * kernel hand over the next request while this one is served, or while a
 * pool thread serves one (uring_defer()). */
#define DEPTH 4
/* Pool threads for requests that wait for the disk: readahead sends several
 * READs at once, which the disk serves best side by side. */
#define POOL_THREADS 4
/* The request is rebuilt in front of its payload, as /dev/fuse delivers
 * it: header and argument struct fit in this, page-aligned payload after. */
#define BLOCK_HEAD 4096
#define STOP_TAG ((uint64_t)-1)
#define WAKE_TAG ((uint64_t)-2)

struct ring_queue;

struct ring_ent {
	struct ring_queue *q;
	struct ur_req_header *hdr; /* the start of the entry's block */
	char *payload;             /* hdr + BLOCK_HEAD */
	struct iovec iov[2];
	uint64_t unique;           /* of the request being served */
	struct fuse_buf request;   /* as /dev/fuse delivers it */
	uint32_t last_cmd;
	bool deferred;             /* handed to the pool, which replies */
	bool replied;
};

struct ring_queue {
	unsigned int qid;
	struct io_uring ring;
	bool ring_ok;
	pthread_t thread;
	bool thread_ok;
	bool served;       /* has served a request (logged once, for -d) */
	/* Entries the pool replied to, for the ring thread to commit (only
	 * it touches the ring), which wake_fd wakes. */
	int wake_fd;
	pthread_mutex_t done_lock;
	struct ring_ent *done[DEPTH];
	unsigned int ndone;
	struct ring_ent ent[DEPTH];
};

struct pool_job {
	void (*fn)(void *arg);
	void *arg;
	struct ring_ent *ent; /* whose reply fn sends */
};

static struct {
	struct fuse_session *se;
	int stop_fd;            /* eventfd every ring polls, to stop */
	size_t payload_size;
	unsigned int nqueues;
	struct ring_queue *queues;
	unsigned int registered; /* rings whose entries are with the kernel */
	/* The pool: at most one job per ring entry, so jobs[] never fills. */
	pthread_mutex_t pool_lock;
	pthread_cond_t pool_cond;
	struct pool_job *jobs;
	unsigned int job_head, njobs, max_jobs;
	pthread_t pool[POOL_THREADS];
	unsigned int pool_threads, pool_idle;
	bool pool_stopping;
} U = { .stop_fd = -1, .pool_lock = PTHREAD_MUTEX_INITIALIZER,
	.pool_cond = PTHREAD_COND_INITIALIZER };

/* The entry whose request this ring thread is serving, and the one whose
 * request this pool thread is serving. */
static __thread struct ring_ent *serving, *pool_serving;

static int make_rings(int dev_fd);
static void free_rings(void);

void uring_negotiate(struct fuse_conn_info *conn)
{
	int err;

	if (!ufs.cfg->io_uring || !pt_init_offered(UR_FUSE_OVER_IO_URING))
		return;
	/* Once it is asked for, the kernel holds every request until each
	 * CPU's ring is ready: the rings are made now, while the daemon can
	 * still decline. */
	err = make_rings(fuse_session_fd(ufs.se));
	if (err) {
		log_warn("io_uring: %s; requests go through /dev/fuse", errno_name(-err));
		free_rings();
		return;
	}
	pt_init_add(UR_FUSE_OVER_IO_URING);
	/* A spliced reply would go to /dev/fuse, where the kernel does not
	 * look for the answer to a ring request. */
	conn->want &= ~(FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE);
}

/* After the INIT reply asked for the rings, a ring that cannot be set up
 * leaves every request of the mount waiting: the daemon stops instead
 * (SIGTERM: the session ends, unmounts and the waiting calls fail). */
static void rings_failed(unsigned int qid, const char *what, int err)
{
	log_error("io_uring ring %u: %s: %s; the kernel holds every request until all "
		  "rings are ready: stopping", qid, what, errno_name(err));
	kill(getpid(), SIGTERM);
}

static void prep_cmd(struct ring_queue *q, struct ring_ent *e, uint32_t cmd, uint64_t commit_id)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&q->ring);
	struct ur_cmd_req *req;

	/* One SQE per entry and one per poll: never short. */
	if (!sqe) {
		log_error("io_uring ring %u: no free SQE (a bug): entry lost", q->qid);
		return;
	}
	/* SQE128: the command area is a second SQE's worth. */
	memset(sqe, 0, sizeof(*sqe));
	memset(sqe + 1, 0, sizeof(*sqe));
	sqe->opcode = IORING_OP_URING_CMD;
	sqe->flags = IOSQE_FIXED_FILE;
	sqe->fd = 0;
	sqe->cmd_op = cmd;
	io_uring_sqe_set_data(sqe, e);
	if (cmd == UR_CMD_REGISTER) {
		sqe->addr = (uint64_t)(uintptr_t)e->iov;
		sqe->len = 2;
	}
	req = (struct ur_cmd_req *)sqe->cmd;
	req->qid = (uint16_t)q->qid;
	req->commit_id = commit_id;
	e->last_cmd = cmd;
}

/* Fills in e's reply header; the payload is in place. */
static void fill_reply(struct ring_ent *e, int error, size_t len)
{
	struct fuse_out_header *out = (void *)e->hdr->in_out;

	out->unique = e->unique;
	out->error = error;
	out->len = (uint32_t)(sizeof(*out) + len);
	e->hdr->ent.payload_sz = (uint32_t)len;
	__atomic_store_n(&e->replied, true, __ATOMIC_RELEASE);
}

/* On e's ring thread: queues the commit of e's reply (submitted with the
 * thread's next wait) and the fetch of its next request. */
static void queue_commit(struct ring_ent *e)
{
	prep_cmd(e->q, e, UR_CMD_COMMIT_AND_FETCH, e->hdr->ent.commit_id);
}

static void commit(struct ring_ent *e, int error, size_t len)
{
	fill_reply(e, error, len);
	queue_commit(e);
}

/* From a pool thread: hands e, replied to, back to its ring thread. */
static void hand_back(struct ring_ent *e)
{
	struct ring_queue *q = e->q;

	pthread_mutex_lock(&q->done_lock);
	q->done[q->ndone++] = e;
	pthread_mutex_unlock(&q->done_lock);
	if (eventfd_write(q->wake_fd, 1) < 0)
		log_error("io_uring ring %u: waking it: %s", q->qid, errno_name(errno));
}

bool uring_send_reply(const struct iovec *iov, int count, ssize_t *sent)
{
	const struct fuse_out_header *h = iov[0].iov_base;
	struct ring_ent *e = serving ? serving : pool_serving;
	int error = h->error;
	size_t len = 0;

	if (!e || __atomic_load_n(&e->replied, __ATOMIC_ACQUIRE) || h->unique != e->unique)
		return false;
	for (int i = 1; i < count; i++) {
		if (len + iov[i].iov_len > U.payload_size) {
			log_warn("io_uring: a %zu-byte reply does not fit the ring entry",
				 len + iov[i].iov_len);
			error = -EIO;
			len = 0;
			break;
		}
		/* The reply may point into the request it overwrites, or be
		 * built in place (uring_reply_buffer()). */
		if (iov[i].iov_base != e->payload + len)
			memmove(e->payload + len, iov[i].iov_base, iov[i].iov_len);
		len += iov[i].iov_len;
	}
	fill_reply(e, error, len);
	if (e == serving) {
		queue_commit(e);
	} else {
		hand_back(e);
		pool_serving = NULL; /* e is the ring thread's again */
	}
	*sent = error == h->error ? (ssize_t)(sizeof(*h) + len) : -1;
	if (*sent < 0)
		errno = EIO;
	return true;
}

bool uring_reply_buffer(void **buf, size_t *cap)
{
	if (!serving)
		return false;
	*buf = serving->payload;
	*cap = U.payload_size;
	return true;
}

static void *pool_thread(void *unused)
{
	(void)unused;
	pthread_mutex_lock(&U.pool_lock);
	for (;;) {
		struct pool_job job;

		U.pool_idle++;
		while (!U.njobs && !U.pool_stopping)
			pthread_cond_wait(&U.pool_cond, &U.pool_lock);
		U.pool_idle--;
		if (!U.njobs)
			break;
		job = U.jobs[U.job_head];
		U.job_head = (U.job_head + 1) % U.max_jobs;
		U.njobs--;
		pthread_mutex_unlock(&U.pool_lock);
		pool_serving = job.ent;
		job.fn(job.arg);
		pool_serving = NULL;
		pthread_mutex_lock(&U.pool_lock);
	}
	pthread_mutex_unlock(&U.pool_lock);
	return NULL;
}

bool uring_defer(void (*fn)(void *arg), void *arg)
{
	bool queued = false;

	if (!serving)
		return false;
	pthread_mutex_lock(&U.pool_lock);
	/* The pool grows only as far as jobs wait side by side: a thread
	 * takes a millisecond to start here. */
	if (!U.pool_stopping && U.pool_idle <= U.njobs && U.pool_threads < POOL_THREADS &&
	    pthread_create(&U.pool[U.pool_threads], NULL, pool_thread, NULL) == 0)
		log_debug("io_uring: pool thread %u started", ++U.pool_threads);
	if (U.pool_threads && !U.pool_stopping && U.njobs < U.max_jobs) {
		U.jobs[(U.job_head + U.njobs) % U.max_jobs] = (struct pool_job){ fn, arg, serving };
		U.njobs++;
		serving->deferred = true;
		queued = true;
		pthread_cond_signal(&U.pool_cond);
	}
	pthread_mutex_unlock(&U.pool_lock);
	return queued;
}

/* The ring thread, woken: commits what the pool replied to. */
static void commit_handed_back(struct ring_queue *q)
{
	struct ring_ent *done[DEPTH];
	unsigned int n;
	eventfd_t count;

	if (eventfd_read(q->wake_fd, &count) < 0 && errno != EAGAIN)
		log_warn("io_uring ring %u: %s", q->qid, errno_name(errno));
	pthread_mutex_lock(&q->done_lock);
	n = q->ndone;
	memcpy(done, q->done, n * sizeof(done[0]));
	q->ndone = 0;
	pthread_mutex_unlock(&q->done_lock);
	for (unsigned int i = 0; i < n; i++)
		queue_commit(done[i]);
}

static void arm_poll(struct ring_queue *q, int fd, uint64_t tag)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&q->ring);

	if (!sqe) {
		log_error("io_uring ring %u: no free SQE (a bug): poll lost", q->qid);
		return;
	}
	io_uring_prep_poll_add(sqe, fd, POLLIN);
	sqe->user_data = tag;
}

/* On a pool thread: a request that may take long (ops_may_block()). */
static void serve_in_pool(void *arg)
{
	struct ring_ent *e = arg;

	pt_note_request(e->request.mem, e->request.size); /* per thread */
	fuse_session_process_buf(U.se, &e->request);
	/* Once replied to, e may already carry the ring's next request:
	 * only pool_serving, cleared by the reply, tells. */
	if (pool_serving == e) {
		log_warn("io_uring: no reply to opcode %u",
			 ((struct fuse_in_header *)e->request.mem)->opcode);
		fill_reply(e, -ENOSYS, 0);
		hand_back(e);
		pool_serving = NULL;
	}
}

/* Rebuilds the request as /dev/fuse would deliver it (header, argument
 * struct, payload: in.len bytes) right in front of the payload, and hands it
 * to libfuse, whose reply comes back through uring_send_reply().  One that
 * may take long goes to the pool, so that this CPU's next requests do not
 * wait behind it, as they would not with /dev/fuse and a thread each. */
static void serve_request(struct ring_ent *e)
{
	const struct fuse_in_header *in = (const void *)e->hdr->in_out;
	size_t payload = e->hdr->ent.payload_sz, arg;
	char *start;

	e->unique = in->unique;
	e->deferred = false;
	__atomic_store_n(&e->replied, false, __ATOMIC_RELAXED);
	if (in->len < sizeof(*in) + payload || in->len - sizeof(*in) - payload > UR_HEADER_AREA) {
		log_warn("io_uring: malformed request (opcode %u, %u bytes, payload %zu)",
			 in->opcode, in->len, payload);
		commit(e, -EIO, 0);
		return;
	}
	arg = in->len - sizeof(*in) - payload;
	start = e->payload - arg - sizeof(*in);
	memcpy(start + sizeof(*in), e->hdr->op_in, arg);
	memcpy(start, in, sizeof(*in));
	e->request = (struct fuse_buf){ .mem = start, .size = in->len };
	pt_note_request(start, e->request.size);
	if (!e->q->served) {
		e->q->served = true;
		log_debug("io_uring ring %u: first request, opcode %u", e->q->qid, in->opcode);
	}
	serving = e;
	if (!ops_may_block(start, e->request.size) || !uring_defer(serve_in_pool, e))
		fuse_session_process_buf(U.se, &e->request);
	serving = NULL;
	if (!e->deferred && !e->replied) {
		/* Only FORGETs go unanswered, and they never come this way. */
		log_warn("io_uring: no reply to opcode %u", ((struct fuse_in_header *)start)->opcode);
		commit(e, -ENOSYS, 0);
	}
}

/* False when the ring must stop. */
static bool handle_cqe(struct ring_queue *q, struct io_uring_cqe *cqe)
{
	struct ring_ent *e = io_uring_cqe_get_data(cqe);

	if (cqe->user_data == STOP_TAG)
		return false;
	if (cqe->user_data == WAKE_TAG) {
		commit_handed_back(q);
		arm_poll(q, q->wake_fd, WAKE_TAG);
		return true;
	}
	if (cqe->res == -EINTR || cqe->res == -EAGAIN) {
		prep_cmd(q, e, e->last_cmd, e->hdr->ent.commit_id);
		return true;
	}
	if (cqe->res < 0) {
		/* ENOTCONN: unmounted. */
		if (cqe->res != -ENOTCONN && cqe->res != -ECANCELED)
			rings_failed(q->qid, e->last_cmd == UR_CMD_REGISTER ? "registering" : "committing",
				     -cqe->res);
		return false;
	}
	serve_request(e);
	return true;
}

static void bind_to_cpu(unsigned int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	/* Only where the requests of that CPU are served best; not needed. */
	if (sched_setaffinity(0, sizeof(set), &set) < 0)
		log_debug("io_uring ring %u: not bound to its CPU: %s", cpu, errno_name(errno));
}

/* Registers the entries and polls the stop and wake eventfds; 0 or -errno. */
static int register_entries(struct ring_queue *q)
{
	int ret;

	for (unsigned int i = 0; i < DEPTH; i++) {
		struct ring_ent *e = &q->ent[i];

		e->q = q;
		e->hdr = aligned_alloc(BLOCK_HEAD, BLOCK_HEAD + U.payload_size);
		if (!e->hdr)
			return -ENOMEM;
		e->payload = (char *)e->hdr + BLOCK_HEAD;
		e->iov[0] = (struct iovec){ e->hdr, sizeof(*e->hdr) };
		e->iov[1] = (struct iovec){ e->payload, U.payload_size };
		prep_cmd(q, e, UR_CMD_REGISTER, 0);
	}
	arm_poll(q, U.stop_fd, STOP_TAG);
	arm_poll(q, q->wake_fd, WAKE_TAG);
	ret = io_uring_submit(&q->ring);
	return ret < 0 ? ret : 0;
}

/* The ring of one CPU, without its entries; 0 or -errno. */
static int make_ring(struct ring_queue *q, int dev_fd)
{
	struct io_uring_params params = { .flags = IORING_SETUP_SQE128 };
	int ret;

	q->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (q->wake_fd < 0)
		return -errno;
	/* Room for every entry's commit and both polls. */
	ret = io_uring_queue_init_params(DEPTH + 2, &q->ring, &params);
	if (ret < 0)
		return ret;
	q->ring_ok = true;
	ret = io_uring_register_files(&q->ring, &dev_fd, 1);
	return ret < 0 ? ret : 0;
}

static int make_rings(int dev_fd)
{
	int nprocs = get_nprocs_conf();

	if (nprocs <= 0)
		return -ENODEV;
	U.stop_fd = eventfd(0, EFD_CLOEXEC);
	if (U.stop_fd < 0)
		return -errno;
	U.queues = calloc((size_t)nprocs, sizeof(*U.queues));
	U.max_jobs = (unsigned int)nprocs * DEPTH;
	U.jobs = calloc(U.max_jobs, sizeof(*U.jobs));
	if (!U.queues || !U.jobs)
		return -ENOMEM;
	U.nqueues = (unsigned int)nprocs;
	for (unsigned int i = 0; i < U.nqueues; i++) {
		U.queues[i].qid = i;
		U.queues[i].wake_fd = -1;
		pthread_mutex_init(&U.queues[i].done_lock, NULL);
	}
	for (unsigned int i = 0; i < U.nqueues; i++) {
		int ret = make_ring(&U.queues[i], dev_fd);

		if (ret < 0)
			return ret;
	}
	return 0;
}

static void serve_ring(struct ring_queue *q)
{
	for (;;) {
		struct io_uring_cqe *cqe;
		unsigned int head, seen = 0;
		bool go_on = true;
		int ret = io_uring_submit_and_wait(&q->ring, 1);

		if (ret < 0 && ret != -EINTR) {
			log_warn("io_uring ring %u: %s", q->qid, errno_name(-ret));
			return;
		}
		io_uring_for_each_cqe(&q->ring, head, cqe) {
			seen++;
			if (go_on)
				go_on = handle_cqe(q, cqe);
		}
		io_uring_cq_advance(&q->ring, seen);
		if (!go_on)
			return;
	}
}

/* Registers and serves ring q, after starting the thread of the next one:
 * starting a thread takes a millisecond here, which neither the thread
 * that sent the INIT reply nor the other rings wait for.  Joins the next
 * one's thread before returning, so uring_stop() joins the first. */
static void *ring_thread(void *arg)
{
	struct ring_queue *q = arg;
	struct ring_queue *next = q->qid + 1 < U.nqueues ? q + 1 : NULL;
	int ret;

	bind_to_cpu(q->qid);
	ret = register_entries(q);
	if (ret < 0) {
		rings_failed(q->qid, "registering", -ret);
		return NULL;
	}
	if (next) {
		ret = pthread_create(&next->thread, NULL, ring_thread, next);
		next->thread_ok = ret == 0;
		if (ret)
			rings_failed(next->qid, "starting its thread", ret);
	}
	if (__atomic_add_fetch(&U.registered, 1, __ATOMIC_RELEASE) == U.nqueues)
		log_debug("io_uring: %u rings serving", U.nqueues);
	serve_ring(q);
	if (next && next->thread_ok)
		pthread_join(next->thread, NULL);
	return NULL;
}

/* After the rings: the jobs still queued reply, to entries the kernel has
 * given up on, and free what they hold. */
static void pool_stop(void)
{
	pthread_mutex_lock(&U.pool_lock);
	U.pool_stopping = true;
	pthread_cond_broadcast(&U.pool_cond);
	pthread_mutex_unlock(&U.pool_lock);
	for (unsigned int i = 0; i < U.pool_threads; i++)
		pthread_join(U.pool[i], NULL);
	U.pool_threads = 0;
}

void uring_start(struct fuse_session *se, size_t max_payload)
{
	struct ring_queue *first = &U.queues[0];
	int ret;

	if (!U.nqueues || !pt_init_granted(UR_FUSE_OVER_IO_URING))
		return;
	U.se = se;
	U.payload_size = max_payload < FUSE_MIN_READ_BUFFER ? FUSE_MIN_READ_BUFFER : max_payload;
	ret = pthread_create(&first->thread, NULL, ring_thread, first);
	first->thread_ok = ret == 0;
	if (ret)
		rings_failed(0, "starting its thread", ret);
}

static void free_rings(void)
{
	for (unsigned int i = 0; i < U.nqueues; i++) {
		struct ring_queue *q = &U.queues[i];

		if (q->ring_ok)
			io_uring_queue_exit(&q->ring);
		if (q->wake_fd >= 0)
			close(q->wake_fd);
		for (unsigned int j = 0; j < DEPTH; j++)
			free(q->ent[j].hdr);
	}
	free(U.queues);
	U.queues = NULL;
	U.nqueues = 0;
	free(U.jobs);
	U.jobs = NULL;
	if (U.stop_fd >= 0)
		close(U.stop_fd);
	U.stop_fd = -1;
}

void uring_stop(void)
{
	if (U.stop_fd >= 0 && eventfd_write(U.stop_fd, 1) < 0)
		log_warn("io_uring: stopping the rings: %s", errno_name(errno));
	if (U.nqueues && U.queues[0].thread_ok)
		pthread_join(U.queues[0].thread, NULL);
	pool_stop();
	free_rings();
}

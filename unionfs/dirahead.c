/* Directory read-ahead (see dirahead.h). */
#include "dirahead.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "ops.h"
#include "ufs.h"

/* Subdirectories waiting: a stack, so that the first subdirectory of the
 * listing just read, where a depth-first walk goes next, is on top.  When
 * it is full the oldest wait is dropped. */
#define WANT_MAX 256
/* Prepared listings stay with their directory's node until taken, or until
 * this many newer ones were prepared, or the thread had nothing to do for
 * IDLE_DROP_S (a walk that never came: the listings hold fds). */
#define READY_MAX 64
#define IDLE_DROP_S 1
/* Larger directories are left to the READDIRPLUS itself: their listing
 * outlasts what the walk does meanwhile. */
#define ENTRIES_MAX 4096

static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_t thread;
	bool started, stopping;
	struct node *want[WANT_MAX]; /* [0] the oldest; each holds a reference */
	size_t nwant;
	struct node *ready[READY_MAX]; /* a ring of referenced nodes */
	size_t ready_next;
} A = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

/* For the -d log at the end: how useful it was. */
static uint64_t n_prepared, n_used, n_stale;

/* Bumped once a request that may change names is done, before its reply. */
static uint64_t generation;
static __thread bool request_changes_names;

static bool changes_names(const struct fuse_in_header *h, size_t len)
{
	switch (h->opcode) {
	case FUSE_MKNOD:
	case FUSE_MKDIR:
	case FUSE_UNLINK:
	case FUSE_RMDIR:
	case FUSE_SYMLINK:
	case FUSE_RENAME:
	case FUSE_RENAME2:
	case FUSE_LINK:
	case FUSE_CREATE:
	case FUSE_SETATTR:     /* may copy up */
	case FUSE_SETXATTR:    /* markers, copy-up */
	case FUSE_REMOVEXATTR:
		return true;
	case FUSE_OPEN: {
		const struct fuse_open_in *o = (const void *)(h + 1);

		/* For writing: a copy-up.  Unknown flags: say yes. */
		return len < sizeof(*h) + sizeof(*o) || open_wants_write((int)o->flags);
	}
	default:
		return false;
	}
}

void dirahead_note_request(const void *buf, size_t len)
{
	request_changes_names = len >= sizeof(struct fuse_in_header) && changes_names(buf, len);
}

void dirahead_note_reply(void)
{
	if (request_changes_names)
		__atomic_add_fetch(&generation, 1, __ATOMIC_SEQ_CST);
}

void dirahead_free_entries(struct resolved *ent, size_t count)
{
	if (!ent)
		return;
	for (size_t i = 0; i < count; i++)
		resolved_free(&ent[i]);
	free(ent);
}

void dirahead_free(struct dirahead *a)
{
	if (!a)
		return;
	dirahead_free_entries(a->ent, a->list.count);
	listing_free(&a->list);
	free(a);
}

/* Lists dir and resolves each name, as READDIRPLUS would.  NULL when it
 * could not, or should not (too large). */
static struct dirahead *prepare(struct node *dir)
{
	struct dirahead *a = calloc(1, sizeof(*a));

	if (!a)
		return NULL;
	a->gen = __atomic_load_n(&generation, __ATOMIC_SEQ_CST);
	if (listing_build(dir, &a->list) < 0) {
		free(a);
		return NULL;
	}
	if (a->list.count > ENTRIES_MAX ||
	    !(a->ent = calloc(a->list.count ? a->list.count : 1, sizeof(*a->ent)))) {
		dirahead_free(a);
		return NULL;
	}
	for (size_t i = 0; i < a->list.count; i++) {
		const struct listed *e = a->list.order[i];
		struct resolved *r = &a->ent[i];

		if (resolve_listed(dir, e->name, e->branch, a->list.fds, r) < 0 || !r->found) {
			resolved_free(r);
			r->found = false;
			continue;
		}
		r->union_ino = union_ino(r->branch, &r->st, r->gen);
		if (!r->union_ino)
			r->found = false;
	}
	return a;
}

/* Takes dir's prepared listing away from it (NULL if none). */
static struct dirahead *detach(struct node *dir)
{
	struct dirahead *a;

	pthread_mutex_lock(&dir->lock);
	a = dir->ahead;
	dir->ahead = NULL;
	pthread_mutex_unlock(&dir->lock);
	return a;
}

/* Hands a to dir; the ring of ready nodes keeps dir (and so a) until it
 * comes round again. */
static void attach(struct node *dir, struct dirahead *a)
{
	struct node *old;

	pthread_mutex_lock(&dir->lock);
	if (dir->ahead) {
		pthread_mutex_unlock(&dir->lock);
		dirahead_free(a);
		node_unref(dir);
		return;
	}
	dir->ahead = a;
	pthread_mutex_unlock(&dir->lock);
	__atomic_add_fetch(&n_prepared, 1, __ATOMIC_RELAXED);
	pthread_mutex_lock(&A.lock);
	old = A.ready[A.ready_next];
	A.ready[A.ready_next] = dir;
	A.ready_next = (A.ready_next + 1) % READY_MAX;
	pthread_mutex_unlock(&A.lock);
	if (old) {
		dirahead_free(detach(old));
		node_unref(old);
	}
}

/* Drops what was prepared and not taken. */
static void drop_ready(void)
{
	struct node *ready[READY_MAX];

	pthread_mutex_lock(&A.lock);
	memcpy(ready, A.ready, sizeof(ready));
	memset(A.ready, 0, sizeof(A.ready));
	pthread_mutex_unlock(&A.lock);
	for (size_t i = 0; i < READY_MAX; i++) {
		if (!ready[i])
			continue;
		dirahead_free(detach(ready[i]));
		node_unref(ready[i]);
	}
}

static bool wants_preparing(struct node *dir)
{
	bool wants;

	pthread_mutex_lock(&dir->lock);
	wants = S_ISDIR(dir->type) && !dir->ahead;
	pthread_mutex_unlock(&dir->lock);
	return wants;
}

static void set_policy(pthread_t thread, int policy)
{
	struct sched_param none = { 0 };
	int err = pthread_setschedparam(thread, policy, &none);

	if (err)
		log_debug("dirahead: scheduling policy %d: %s", policy, errno_name(err));
}

static void become_idle(void)
{
	/* ioprio_set(IOPRIO_WHO_PROCESS, this thread, IOPRIO_CLASS_IDLE) */
	const int who_process = 1, class_idle = 3, class_shift = 13;

	set_policy(pthread_self(), SCHED_IDLE);
	if (syscall(SYS_ioprio_set, who_process, 0, class_idle << class_shift) < 0)
		log_debug("dirahead: idle I/O class refused: %s", errno_name(errno));
}

static void *ahead_thread(void *unused)
{
	(void)unused;
	become_idle();
	pthread_mutex_lock(&A.lock);
	for (;;) {
		struct node *dir;
		struct dirahead *a;

		while (!A.nwant && !A.stopping) {
			struct timespec until;

			/* Idle with nothing kept: no timer. */
			if (!A.ready[(A.ready_next + READY_MAX - 1) % READY_MAX]) {
				pthread_cond_wait(&A.cond, &A.lock);
				continue;
			}
			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_sec += IDLE_DROP_S;
			if (pthread_cond_timedwait(&A.cond, &A.lock, &until) == ETIMEDOUT) {
				pthread_mutex_unlock(&A.lock);
				drop_ready();
				pthread_mutex_lock(&A.lock);
			}
		}
		if (A.stopping)
			break;
		dir = A.want[--A.nwant];
		pthread_mutex_unlock(&A.lock);
		a = wants_preparing(dir) ? prepare(dir) : NULL;
		if (a)
			attach(dir, a); /* passes the reference on */
		else
			node_unref(dir);
		pthread_mutex_lock(&A.lock);
	}
	pthread_mutex_unlock(&A.lock);
	return NULL;
}

void dirahead_want(struct node *const *dirs, size_t count)
{
	struct node *dropped[WANT_MAX];
	size_t ndropped = 0;

	/* Only WANT_MAX fit, and the first are wanted first. */
	if (count > WANT_MAX)
		count = WANT_MAX;
	if (!count)
		return;
	pthread_mutex_lock(&A.lock);
	if (A.stopping) {
		pthread_mutex_unlock(&A.lock);
		return;
	}
	if (!A.started) {
		A.started = pthread_create(&A.thread, NULL, ahead_thread, NULL) == 0;
		if (!A.started) {
			pthread_mutex_unlock(&A.lock);
			return;
		}
	}
	/* Last first, so that the first is on top. */
	for (size_t i = count; i-- > 0;) {
		if (A.nwant == WANT_MAX) {
			dropped[ndropped++] = A.want[0];
			memmove(A.want, A.want + 1, (WANT_MAX - 1) * sizeof(A.want[0]));
			A.nwant--;
		}
		node_ref(dirs[i]);
		A.want[A.nwant++] = dirs[i];
	}
	pthread_cond_signal(&A.cond);
	pthread_mutex_unlock(&A.lock);
	for (size_t i = 0; i < ndropped; i++)
		node_unref(dropped[i]);
}

struct dirahead *dirahead_take(struct node *dir)
{
	struct dirahead *a = detach(dir);

	if (a && a->gen != __atomic_load_n(&generation, __ATOMIC_SEQ_CST)) {
		dirahead_free(a);
		a = NULL;
		__atomic_add_fetch(&n_stale, 1, __ATOMIC_RELAXED);
	} else if (a) {
		__atomic_add_fetch(&n_used, 1, __ATOMIC_RELAXED);
	}
	return a;
}

void dirahead_stop(void)
{
	pthread_mutex_lock(&A.lock);
	A.stopping = true;
	pthread_cond_signal(&A.cond);
	pthread_mutex_unlock(&A.lock);
	if (A.started) {
		pthread_join(A.thread, NULL);
		log_debug("dirahead: %llu listings prepared, %llu used, %llu stale",
			  (unsigned long long)n_prepared, (unsigned long long)n_used,
			  (unsigned long long)n_stale);
	}
	while (A.nwant)
		node_unref(A.want[--A.nwant]);
	drop_ready();
}

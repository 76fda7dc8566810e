/* Page-cache preloading of lower files (see preload.h). */
#include "preload.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "ops.h"

/* The kernel's readahead asks for 128 KiB at a time: a file this small
 * costs one READ round trip (~25 us here), which one store replaces. */
#define SMALL_FILE_MAX (256 * 1024)
/* Random reads: what is stored once a window had two of them. */
#define WINDOW (256 * 1024)
/* Files beyond 256 GiB get no window map (1 MiB of it). */
#define MAX_WINDOWS (1U << 20)
/* Windows waiting to be stored; beyond, a window is left to READ. */
#define QUEUE_MAX 64
/* Small files of a directory stored ahead of a reader, per job. */
#define AHEAD_FILES 32

enum { WIN_MISSED = 1, WIN_QUEUED = 2 };

struct preload_map {
	size_t nwin;
	uint8_t state[];
};

struct job {
	struct node *node; /* referenced */
	int fd;            /* a duplicate, closed with the job; -1: an ahead job */
	uint64_t window;
};

static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct job jobs[QUEUE_MAX];
	unsigned int head, count;
	bool started, stopping;
	pthread_t thread;
	/* The directory of the last small file stored at its open.  Only
	 * compared, never followed: a reused address costs one ahead job. */
	const struct node *last_miss_dir;
	uint64_t n_at_open, n_ahead; /* small files stored, for -d */
} Q = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

/* Stores [off, off + len) of n's lower copy, read from fd, unless a copy-up
 * got there first.  Returns the bytes stored (0 at EOF), or -errno.
 *
 * No lock is held across the store: it waits for the locks of pages whose
 * READ is pending, and a READ needs a free worker, which copy-ups waiting
 * for such a lock could all be.  Instead a copy-up that finished while the
 * data was on its way (the only way a write can have reached these pages
 * first: writes come through handles opened after it) gets the range
 * dropped again, so older data never stays in the page cache. */
static ssize_t store_range(struct node *n, int fd, off_t off, size_t len)
{
	struct fuse_bufvec buf = FUSE_BUFVEC_INIT(0);
	void *data;
	ssize_t got;
	int err;

	if (__atomic_load_n(&n->branch, __ATOMIC_ACQUIRE) == 0)
		return -ESTALE; /* copied up: the kernel gets the upper copy's data */
	data = malloc(len);
	if (!data)
		return -ENOMEM;
	got = pread(fd, data, len, off);
	if (got < 0)
		got = -errno;
	if (got > 0) {
		buf.buf[0].mem = data;
		buf.buf[0].size = (size_t)got;
		err = fuse_lowlevel_notify_store(ufs.se, node_id(n), off, &buf, 0);
		if (err)
			got = err;
		else if (__atomic_load_n(&n->branch, __ATOMIC_ACQUIRE) == 0) {
			fuse_lowlevel_notify_inval_inode(ufs.se, node_id(n), off, got);
			got = -ESTALE;
		}
	}
	free(data);
	return got;
}

/* Stores n's whole data when it is small and not stored yet; true when it
 * stored it now. */
static bool store_small_file(struct node *n, int fd)
{
	struct stat st;

	if (__atomic_load_n(&n->preloaded, __ATOMIC_RELAXED) || fstat(fd, &st) < 0 ||
	    !S_ISREG(st.st_mode) || st.st_size == 0 || st.st_size > SMALL_FILE_MAX)
		return false;
	if (store_range(n, fd, 0, (size_t)st.st_size) != st.st_size)
		return false;
	__atomic_store_n(&n->preloaded, true, __ATOMIC_RELAXED);
	return true;
}

/* Up to AHEAD_FILES lower files listed after `from` in its directory's
 * table (which keeps the listing's order), referenced. */
static size_t files_after(struct node *from, struct node **out)
{
	struct node *dir;
	size_t count = 0;

	/* The tree lock keeps `from` in its directory (a rename takes it,
	 * then the directories' locks). */
	pthread_rwlock_rdlock(&ufs.tree_lock);
	dir = from->parent;
	pthread_mutex_lock(&dir->lock);
	/* Gone from the table (unlinked, renamed): its neighbours are not
	 * known any more. */
	if (from->hashed) {
		for (struct node *c = from->hh.next; c && count < AHEAD_FILES; c = c->hh.next) {
			if (S_ISREG(c->type) && __atomic_load_n(&c->branch, __ATOMIC_ACQUIRE) != 0 &&
			    !__atomic_load_n(&c->preloaded, __ATOMIC_RELAXED)) {
				node_ref(c);
				out[count++] = c;
			}
		}
	}
	pthread_mutex_unlock(&dir->lock);
	pthread_rwlock_unlock(&ufs.tree_lock);
	return count;
}

/* Stores the small lower files that follow `from` in its directory, for
 * the reader that opened it to find in the page cache. */
static void store_ahead(struct node *from)
{
	struct node *next[AHEAD_FILES];
	size_t count = files_after(from, next);

	for (size_t i = 0; i < count; i++) {
		unsigned int b = __atomic_load_n(&next[i]->branch, __ATOMIC_ACQUIRE);
		int fd = b != 0 ? open_backing(next[i], b, O_RDONLY | O_NOATIME) : -1;

		if (fd == -EPERM)
			fd = open_backing(next[i], b, O_RDONLY);
		if (fd >= 0) {
			if (store_small_file(next[i], fd))
				__atomic_add_fetch(&Q.n_ahead, 1, __ATOMIC_RELAXED);
			close(fd);
		}
		node_unref(next[i]);
	}
}

static void *preload_thread(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&Q.lock);
	for (;;) {
		struct job j;
		ssize_t r;

		while (!Q.count && !Q.stopping)
			pthread_cond_wait(&Q.cond, &Q.lock);
		if (Q.stopping)
			break;
		j = Q.jobs[Q.head];
		Q.head = (Q.head + 1) % QUEUE_MAX;
		Q.count--;
		pthread_mutex_unlock(&Q.lock);
		if (j.fd < 0) {
			store_ahead(j.node);
		} else {
			r = store_range(j.node, j.fd, (off_t)(j.window * WINDOW), WINDOW);
			if (r < 0 && r != -ESTALE && r != -ENOENT)
				log_debug("preloading '%s': %s", j.node->name,
					  errno_name((int)-r));
			close(j.fd);
		}
		node_unref(j.node);
		pthread_mutex_lock(&Q.lock);
	}
	pthread_mutex_unlock(&Q.lock);
	return NULL;
}

/* Queues a window store of fd (duplicated), or with fd -1 the small files
 * after n; false when the queue is full or stopping. */
static bool enqueue(struct node *n, int fd, uint64_t window)
{
	struct job j = { .node = n, .window = window, .fd = -1 };
	bool queued = false;

	if (fd >= 0 && (j.fd = fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0)
		return false;
	node_ref(n);
	pthread_mutex_lock(&Q.lock);
	if (!Q.started && !Q.stopping)
		Q.started = pthread_create(&Q.thread, NULL, preload_thread, NULL) == 0;
	if (Q.started && !Q.stopping && Q.count < QUEUE_MAX) {
		Q.jobs[(Q.head + Q.count) % QUEUE_MAX] = j;
		Q.count++;
		queued = true;
		pthread_cond_signal(&Q.cond);
	}
	pthread_mutex_unlock(&Q.lock);
	if (!queued) {
		if (j.fd >= 0)
			close(j.fd);
		node_unref(n);
	}
	return queued;
}

void preload_small_file(struct node *n, int fd)
{
	const struct node *dir = __atomic_load_n(&n->parent, __ATOMIC_RELAXED);
	bool again;

	if (!store_small_file(n, fd))
		return;
	/* A second small file of one directory read in a row: a reader
	 * going through the directory (tar, grep -r, cp -r, imports). */
	pthread_mutex_lock(&Q.lock);
	again = dir && Q.last_miss_dir == dir;
	Q.last_miss_dir = dir;
	Q.n_at_open++;
	pthread_mutex_unlock(&Q.lock);
	if (again)
		enqueue(n, -1, 0);
}

/* n's window map, made at its first random read; NULL when it has none.
 * Caller holds n->lock. */
static struct preload_map *window_map(struct node *n, int fd)
{
	struct stat st;
	size_t nwin;

	if (n->preload_map)
		return n->preload_map;
	if (fstat(fd, &st) < 0 || st.st_size <= WINDOW)
		return NULL;
	nwin = ((size_t)st.st_size + WINDOW - 1) / WINDOW;
	if (nwin > MAX_WINDOWS)
		return NULL;
	n->preload_map = calloc(1, sizeof(struct preload_map) + nwin);
	if (n->preload_map)
		n->preload_map->nwin = nwin;
	return n->preload_map;
}

void preload_note_read(struct node *n, int fd, off_t off, size_t size, off_t *last_end)
{
	/* READs of one handle may run on several threads: a heuristic, so
	 * only the exchange itself is atomic. */
	off_t prev_end = __atomic_exchange_n(last_end, off + (off_t)size, __ATOMIC_RELAXED);
	bool random = off != prev_end && off != 0, queue = false;
	struct preload_map *map;
	uint64_t w = (uint64_t)off / WINDOW;

	if (!random || __atomic_load_n(&n->branch, __ATOMIC_ACQUIRE) == 0)
		return;
	pthread_mutex_lock(&n->lock);
	map = window_map(n, fd);
	if (map && w < map->nwin && !(map->state[w] & WIN_QUEUED)) {
		queue = map->state[w] & WIN_MISSED;
		map->state[w] |= queue ? WIN_QUEUED : WIN_MISSED;
	}
	pthread_mutex_unlock(&n->lock);
	if (queue)
		enqueue(n, fd, w);
}

void preload_forget(struct node *n)
{
	free(n->preload_map);
	n->preload_map = NULL;
}

void preload_stop(void)
{
	pthread_mutex_lock(&Q.lock);
	Q.stopping = true;
	pthread_cond_broadcast(&Q.cond);
	pthread_mutex_unlock(&Q.lock);
	if (Q.started)
		pthread_join(Q.thread, NULL);
	Q.started = false;
	log_debug("preload: %llu small files stored at their open, %llu ahead",
		  (unsigned long long)Q.n_at_open, (unsigned long long)Q.n_ahead);
	for (; Q.count; Q.count--, Q.head = (Q.head + 1) % QUEUE_MAX) {
		if (Q.jobs[Q.head].fd >= 0)
			close(Q.jobs[Q.head].fd);
		node_unref(Q.jobs[Q.head].node);
	}
}

/* The FUSE requests: a fixed read-only tree in the lxcfs layout.
 *
 * Round trips are what a FUSE file costs, so an open+read+close is one OPEN
 * (which renders the reader's text), one READ per read(2) (served from that
 * snapshot by offset) and an asynchronous RELEASE: entries and attributes are
 * cached by the kernel for a day (the tree never changes), FLUSH is switched
 * off per file (noflush) and files are direct_io, so each open sees its own
 * reader's content and a read past the end returns 0 whatever st_size says.
 * A read from offset 0 on a handle that was read before (top and free keep
 * their files open and rewind them) renders afresh, as lxcfs does.
 *
 * sendfile(2) and splice(2) (busybox cat) bypass direct_io and read through
 * the page cache up to i_size, which /proc's st_size of 0 would make empty:
 * each open therefore makes sure the kernel's i_size covers the opener's
 * snapshot (a FUSE_NOTIFY_STORE of its last byte grows it), and the short
 * READ that ends such a read trims it back to the text's length.
 *
 * File handles index a table of snapshots and carry the worker generation:
 * after a worker restart, a handle made by its predecessor is recognised and
 * the read is served from a fresh rendering instead of a dangling pointer. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "procfs.h"
#include "reader.h"

#define PF_TIMEOUT 86400.0

enum { INO_ROOT = FUSE_ROOT_ID, INO_PROC, INO_SYS, INO_DEVICES, INO_SYSTEM, INO_CPU, INO_FILE0 };

struct pf_node {
	fuse_ino_t ino, parent;
	const char *name;
	int file; /* enum pf_file, or -1 for a directory */
};

/* The whole tree.  Files are INO_FILE0 + their pf_file number. */
static const struct pf_node nodes[] = {
	{ INO_ROOT, INO_ROOT, "", -1 },
	{ INO_PROC, INO_ROOT, "proc", -1 },
	{ INO_SYS, INO_ROOT, "sys", -1 },
	{ INO_DEVICES, INO_SYS, "devices", -1 },
	{ INO_SYSTEM, INO_DEVICES, "system", -1 },
	{ INO_CPU, INO_SYSTEM, "cpu", -1 },
	{ INO_FILE0 + PF_MEMINFO, INO_PROC, "meminfo", PF_MEMINFO },
	{ INO_FILE0 + PF_CPUINFO, INO_PROC, "cpuinfo", PF_CPUINFO },
	{ INO_FILE0 + PF_STAT, INO_PROC, "stat", PF_STAT },
	{ INO_FILE0 + PF_UPTIME, INO_PROC, "uptime", PF_UPTIME },
	{ INO_FILE0 + PF_LOADAVG, INO_PROC, "loadavg", PF_LOADAVG },
	{ INO_FILE0 + PF_DISKSTATS, INO_PROC, "diskstats", PF_DISKSTATS },
	{ INO_FILE0 + PF_SWAPS, INO_PROC, "swaps", PF_SWAPS },
	{ INO_FILE0 + PF_CPU_ONLINE, INO_CPU, "online", PF_CPU_ONLINE },
};
#define NNODES (sizeof(nodes) / sizeof(nodes[0]))

static time_t mount_time;

static const struct pf_node *node_of(fuse_ino_t ino)
{
	for (size_t i = 0; i < NNODES; i++)
		if (nodes[i].ino == ino)
			return &nodes[i];
	return NULL;
}

static uint64_t kernel_size[PF_NFILES];

static void node_stat(const struct pf_node *n, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = n->ino;
	if (n->file < 0) {
		st->st_mode = S_IFDIR | 0555;
		st->st_nlink = 2;
	} else {
		/* The size the kernel already has (see grow_size()): an
		 * attribute reply must not undo it.  read(2) ignores it
		 * (direct_io) and goes to EOF, as on /proc. */
		st->st_size = (off_t)__atomic_load_n(&kernel_size[n->file], __ATOMIC_RELAXED);
		st->st_mode = S_IFREG | 0444;
		st->st_nlink = 1;
	}
	st->st_blksize = 4096;
	st->st_atime = st->st_mtime = st->st_ctime = mount_time;
}

/* ---- the snapshot table ----
 * Chunks are allocated on demand and never moved or freed while the worker
 * lives, so a READ finds its slot without taking the lock. */
#define SLOT_CHUNK 1024U
#define SLOT_CHUNKS 4096U
#define FH_GEN_SHIFT 48

struct slot {
	struct pf_text *text;
	uint32_t next_free;
	bool served; /* a READ was answered: the next one at offset 0 refreshes */
};

static struct {
	pthread_mutex_t lock;
	struct slot *chunk[SLOT_CHUNKS];
	uint32_t nslots, free_head;
	uint64_t gen;
} T = { .lock = PTHREAD_MUTEX_INITIALIZER, .free_head = UINT32_MAX, .gen = 1 };

void pf_fs_set_generation(unsigned int gen)
{
	T.gen = (gen & 0xffff) ? (gen & 0xffff) : 1;
}

static struct slot *slot_at(uint32_t i)
{
	struct slot *c;

	if (i / SLOT_CHUNK >= SLOT_CHUNKS)
		return NULL;
	c = __atomic_load_n(&T.chunk[i / SLOT_CHUNK], __ATOMIC_ACQUIRE);
	return c ? &c[i % SLOT_CHUNK] : NULL;
}

static int slot_alloc(struct pf_text *t, uint64_t *fh)
{
	struct slot *s = NULL, *c;
	uint32_t i;

	pthread_mutex_lock(&T.lock);
	if (T.free_head != UINT32_MAX) {
		i = T.free_head;
		s = slot_at(i);
		T.free_head = s->next_free;
	} else if (T.nslots < SLOT_CHUNK * SLOT_CHUNKS) {
		i = T.nslots;
		if (!T.chunk[i / SLOT_CHUNK]) {
			c = calloc(SLOT_CHUNK, sizeof(*c));
			if (c)
				__atomic_store_n(&T.chunk[i / SLOT_CHUNK], c, __ATOMIC_RELEASE);
		}
		s = slot_at(i);
		if (s)
			T.nslots++;
	}
	if (s) {
		s->text = t;
		s->served = false;
	}
	pthread_mutex_unlock(&T.lock);
	if (!s)
		return -ENFILE;
	*fh = (T.gen << FH_GEN_SHIFT) | i;
	return 0;
}

/* A reference to the snapshot behind fh for a READ at off, or NULL when fh
 * came from another worker.  *stale: the reader rewound, the caller should
 * render afresh (slot_replace). */
static struct pf_text *slot_take(uint64_t fh, off_t off, bool *stale)
{
	struct pf_text *t = NULL;
	struct slot *s;

	*stale = false;
	if (fh >> FH_GEN_SHIFT != T.gen)
		return NULL;
	pthread_mutex_lock(&T.lock);
	s = slot_at((uint32_t)fh);
	if (s && s->text) {
		t = s->text;
		pf_text_get(t);
		*stale = s->served && off == 0;
		s->served = true;
	}
	pthread_mutex_unlock(&T.lock);
	return t;
}

/* Puts a fresh rendering (one reference given) behind fh, if fh is ours. */
static void slot_replace(uint64_t fh, struct pf_text *t)
{
	struct pf_text *old = t;
	struct slot *s;

	if (fh >> FH_GEN_SHIFT == T.gen) {
		pthread_mutex_lock(&T.lock);
		s = slot_at((uint32_t)fh);
		if (s && s->text) {
			old = s->text;
			s->text = t;
		}
		pthread_mutex_unlock(&T.lock);
	}
	pf_text_put(old);
}

static void slot_free(uint64_t fh)
{
	struct slot *s;
	struct pf_text *t;

	if (fh >> FH_GEN_SHIFT != T.gen)
		return;
	pthread_mutex_lock(&T.lock);
	s = slot_at((uint32_t)fh);
	t = s ? s->text : NULL;
	if (t) {
		s->text = NULL;
		s->next_free = T.free_head;
		T.free_head = (uint32_t)fh;
	}
	pthread_mutex_unlock(&T.lock);
	pf_text_put(t);
}

/* ---- i_size for the page-cache readers (see the top of the file) ----
 * kernel_size[f] is the kernel's i_size of file f as far as we know:
 * attribute replies hand it back unchanged, grow_size() raises it before
 * an open is answered, and the short READ that ends a page-cache read
 * lowers it. */
#define PAGE_BYTES 4096
static struct fuse_session *session;

/* A READ the page cache sent: page-aligned and reaching the page that
 * holds i_size.  (A read(2) of exactly that size looks the same: the cost
 * of mistaking it is one store at the next open.) */
static bool page_cache_read(enum pf_file f, size_t size, off_t off)
{
	uint64_t k = __atomic_load_n(&kernel_size[f], __ATOMIC_RELAXED);

	return off >= 0 && off % PAGE_BYTES == 0 && size % PAGE_BYTES == 0 &&
	       (uint64_t)off + size == (k + PAGE_BYTES - 1) / PAGE_BYTES * PAGE_BYTES;
}

static void size_trim(enum pf_file f, uint64_t end)
{
	uint64_t cur = __atomic_load_n(&kernel_size[f], __ATOMIC_RELAXED);

	while (end < cur &&
	       !__atomic_compare_exchange_n(&kernel_size[f], &cur, end, false, __ATOMIC_RELAXED,
					    __ATOMIC_RELAXED))
		;
}

/* The kernel extends i_size only for a store of at least one byte: store
 * the text's last byte.  The open that follows drops the page again
 * (no keep_cache), so the page cache never serves it. */
static void grow_size(enum pf_file f, const struct pf_text *t)
{
	struct fuse_bufvec last = FUSE_BUFVEC_INIT(1);
	int err;

	if (!session || !t->len || __atomic_load_n(&kernel_size[f], __ATOMIC_RELAXED) >= t->len)
		return;
	last.buf[0].mem = t->data + t->len - 1;
	err = fuse_lowlevel_notify_store(session, INO_FILE0 + f, (off_t)t->len - 1, &last, 0);
	/* ENOENT: no inode cached, the next LOOKUP reply sets the size. */
	if (err && err != -ENOENT)
		log_debug("growing i_size of %s: %s", pf_file_path[f], errno_name(-err));
	if (!err)
		__atomic_store_n(&kernel_size[f], t->len, __ATOMIC_RELAXED);
}

/* ---- requests ---- */

static void pf_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	if (conn->capable & FUSE_CAP_PARALLEL_DIROPS)
		conn->want |= FUSE_CAP_PARALLEL_DIROPS;
	/* Nothing to gain and per-reader content to lose. */
	conn->want &= ~(FUSE_CAP_READDIRPLUS | FUSE_CAP_POSIX_LOCKS | FUSE_CAP_FLOCK_LOCKS |
			FUSE_CAP_WRITEBACK_CACHE | FUSE_CAP_SPLICE_READ | FUSE_CAP_SPLICE_WRITE |
			FUSE_CAP_SPLICE_MOVE);
}

static void pf_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e = { .attr_timeout = PF_TIMEOUT, .entry_timeout = PF_TIMEOUT };

	for (size_t i = 1; i < NNODES; i++) {
		if (nodes[i].parent == parent && strcmp(nodes[i].name, name) == 0) {
			e.ino = nodes[i].ino;
			node_stat(&nodes[i], &e.attr);
			fuse_reply_entry(req, &e);
			return;
		}
	}
	if (!node_of(parent)) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	/* Negative entry: the name stays absent, the kernel may remember. */
	fuse_reply_entry(req, &e);
}

static void pf_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	/* Static nodes: nothing is counted. */
	(void)ino;
	(void)nlookup;
	fuse_reply_none(req);
}

static void pf_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	(void)count;
	(void)forgets;
	fuse_reply_none(req);
}

static void pf_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	const struct pf_node *n = node_of(ino);
	struct stat st;

	(void)fi;
	if (!n) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	node_stat(n, &st);
	fuse_reply_attr(req, &st, PF_TIMEOUT);
}

static void pf_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		       struct fuse_file_info *fi)
{
	(void)ino;
	(void)attr;
	(void)to_set;
	(void)fi;
	fuse_reply_err(req, EROFS);
}

static void reply_slice(fuse_req_t req, enum pf_file f, const struct pf_text *t, size_t size,
			off_t off)
{
	size_t n = off < 0 || (size_t)off >= t->len ? 0 : t->len - (size_t)off;

	if (n > size)
		n = size;
	/* The kernel trims i_size to where a short page-cache read ended. */
	if (n < size && page_cache_read(f, size, off))
		size_trim(f, (uint64_t)off + n);
	fuse_reply_buf(req, n ? t->data + off : NULL, n);
}

static void open_finish(fuse_req_t req, enum pf_file f, struct fuse_file_info *fi, int err,
			struct pf_text *t)
{
	if (!err)
		grow_size(f, t);
	if (!err) {
		err = slot_alloc(t, &fi->fh);
		if (err)
			pf_text_put(t);
	}
	if (err) {
		fuse_reply_err(req, -err);
		return;
	}
	fi->direct_io = 1;
	fi->keep_cache = 0;
	fi->noflush = 1;
	/* A reply the kernel did not take (the opener was interrupted) never
	 * gets a RELEASE: free the snapshot now. */
	if (fuse_reply_open(req, fi) != 0)
		slot_free(fi->fh);
}

/* ---- helpers ----
 * The request loop answers from the caches only; a request that needs file
 * I/O (a new reader, a text older than the TTL, a handle from a previous
 * worker) goes to a helper thread, so a slow cgroup or /proc read never
 * holds up the others.  One loop thread keeps the common case on one CPU
 * next to the reader: measured, that beats a pool of loop threads (which
 * the kernel wakes in turn) by a third on open+read+close. */
enum job_kind { JOB_OPEN, JOB_READ };

struct job {
	struct job *next;
	enum job_kind kind;
	fuse_req_t req;
	pid_t pid;
	enum pf_file file;
	struct fuse_file_info fi; /* JOB_READ: fi.fh is the handle to refresh */
	size_t size;
	off_t off;
};

static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct job *head, **tail;
	bool stop;
	unsigned int n;
	pthread_t th[PF_MAX_HELPERS];
} Q = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

static void run_job(struct job *j)
{
	struct pf_text *t = NULL;
	int err = reader_snapshot(j->pid, j->file, true, &t);

	if (j->kind == JOB_OPEN) {
		open_finish(j->req, j->file, &j->fi, err, t);
	} else if (err) {
		fuse_reply_err(j->req, -err);
	} else {
		reply_slice(j->req, j->file, t, j->size, j->off);
		pf_text_get(t);
		slot_replace(j->fi.fh, t);
		pf_text_put(t);
	}
}

static void *helper(void *arg)
{
	struct job *j;

	(void)arg;
	for (;;) {
		pthread_mutex_lock(&Q.lock);
		while (!Q.head && !Q.stop)
			pthread_cond_wait(&Q.cond, &Q.lock);
		j = Q.head;
		if (j) {
			Q.head = j->next;
			if (!Q.head)
				Q.tail = &Q.head;
		}
		pthread_mutex_unlock(&Q.lock);
		if (!j)
			return NULL;
		run_job(j);
		free(j);
	}
}

/* Queues a copy of tmpl; runs it here when that is impossible. */
static void defer(const struct job *tmpl)
{
	struct job *j = Q.n ? malloc(sizeof(*j)) : NULL;

	if (!j) {
		run_job((struct job *)tmpl);
		return;
	}
	*j = *tmpl;
	j->next = NULL;
	pthread_mutex_lock(&Q.lock);
	*Q.tail = j;
	Q.tail = &j->next;
	pthread_cond_signal(&Q.cond);
	pthread_mutex_unlock(&Q.lock);
}

int pf_fs_start(unsigned int helpers)
{
	Q.tail = &Q.head;
	for (; Q.n < helpers && Q.n < PF_MAX_HELPERS; Q.n++) {
		int err = pthread_create(&Q.th[Q.n], NULL, helper, NULL);

		if (err)
			return Q.n ? 0 : -err;
	}
	return 0;
}

void pf_fs_stop(void)
{
	pthread_mutex_lock(&Q.lock);
	Q.stop = true;
	pthread_cond_broadcast(&Q.cond);
	pthread_mutex_unlock(&Q.lock);
	for (unsigned int i = 0; i < Q.n; i++)
		pthread_join(Q.th[i], NULL);
	Q.n = 0;
}

static void pf_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	const struct pf_node *n = node_of(ino);
	struct pf_text *t = NULL;
	pid_t pid = fuse_req_ctx(req)->pid;
	int err;

	if (!n || n->file < 0) {
		fuse_reply_err(req, n ? EISDIR : ENOENT);
		return;
	}
	if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)) {
		fuse_reply_err(req, EACCES);
		return;
	}
	err = reader_snapshot(pid, (enum pf_file)n->file, Q.n == 0, &t);
	if (err == -EWOULDBLOCK) {
		struct job j = { .kind = JOB_OPEN, .req = req, .pid = pid,
				 .file = (enum pf_file)n->file, .fi = *fi };

		defer(&j);
		return;
	}
	open_finish(req, (enum pf_file)n->file, fi, err, t);
}

static void pf_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	const struct pf_node *n = node_of(ino);
	bool stale;
	struct pf_text *t = slot_take(fi->fh, off, &stale);
	pid_t pid = fuse_req_ctx(req)->pid;
	int err;

	if (!n || n->file < 0) {
		pf_text_put(t);
		fuse_reply_err(req, EBADF);
		return;
	}
	if (t && stale) {
		pf_text_put(t);
		t = NULL;
		err = reader_snapshot(pid, (enum pf_file)n->file, Q.n == 0, &t);
		if (err && err != -EWOULDBLOCK) {
			fuse_reply_err(req, -err);
			return;
		}
		if (t) {
			pf_text_get(t);
			slot_replace(fi->fh, t);
		}
	}
	if (t) {
		reply_slice(req, (enum pf_file)n->file, t, size, off);
		pf_text_put(t);
		return;
	}
	/* Rewound and the text needs I/O, or opened by a previous worker
	 * (whose handle slot_replace() ignores): a fresh rendering. */
	struct job j = { .kind = JOB_READ, .req = req, .pid = pid, .file = (enum pf_file)n->file,
			 .fi.fh = fi->fh, .size = size, .off = off };

	defer(&j);
}

static void pf_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	slot_free(fi->fh);
	fuse_reply_err(req, 0);
}

static void pf_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	const struct pf_node *n = node_of(ino);

	if (!n || n->file >= 0) {
		fuse_reply_err(req, n ? ENOTDIR : ENOENT);
		return;
	}
	/* Listings are computed from the static table: no state to keep,
	 * nothing a restarted worker could miss. */
	fi->fh = 0;
	fi->cache_readdir = 1;
	fi->keep_cache = 1;
	fuse_reply_open(req, fi);
}

static void pf_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	const struct pf_node *n = node_of(ino);
	char *buf = malloc(size ? size : 1);
	size_t used = 0, len;
	off_t idx = 0;
	struct stat st;

	(void)fi;
	if (!buf || !n) {
		free(buf);
		fuse_reply_err(req, buf ? ENOENT : ENOMEM);
		return;
	}
	memset(&st, 0, sizeof(st));
	for (size_t i = 0; i < NNODES + 2; i++) {
		const char *name;

		if (i == 0) {
			name = ".";
			st.st_ino = n->ino;
			st.st_mode = S_IFDIR;
		} else if (i == 1) {
			name = "..";
			st.st_ino = n->parent;
			st.st_mode = S_IFDIR;
		} else if (i >= 3 && nodes[i - 2].parent == ino) {
			name = nodes[i - 2].name;
			st.st_ino = nodes[i - 2].ino;
			st.st_mode = nodes[i - 2].file < 0 ? S_IFDIR : S_IFREG;
		} else {
			continue;
		}
		if (idx++ < off)
			continue;
		len = fuse_add_direntry(req, buf + used, size - used, name, &st, idx);
		if (len > size - used)
			break;
		used += len;
	}
	fuse_reply_buf(req, buf, used);
	free(buf);
}

static void pf_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	fuse_reply_err(req, 0);
}

static void pf_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs sv = { .f_bsize = 4096, .f_frsize = 4096, .f_namemax = 255,
			      .f_files = NNODES, .f_flag = ST_RDONLY };

	(void)ino;
	fuse_reply_statfs(req, &sv);
}

const struct fuse_lowlevel_ops pf_ops = {
	.init = pf_init,
	.lookup = pf_lookup,
	.forget = pf_forget,
	.forget_multi = pf_forget_multi,
	.getattr = pf_getattr,
	.setattr = pf_setattr,
	.open = pf_open,
	.read = pf_read,
	.release = pf_release,
	.opendir = pf_opendir,
	.readdir = pf_readdir,
	.releasedir = pf_releasedir,
	.statfs = pf_statfs,
};

struct fuse_session *pf_session_new(const struct pf_config *cfg)
{
	/* ro: the kernel refuses writes (EROFS) without asking us.
	 * default_permissions: 0444/0555 checked by the kernel.
	 * allow_other (as root): containers run as other users. */
	const char *opts = geteuid() == 0
		? "ro,default_permissions,allow_other,fsname=strata-procfs,subtype=strata-procfs"
		: "ro,default_permissions,fsname=strata-procfs,subtype=strata-procfs";
	char *argv[] = { "strata-procfs", "-o", (char *)opts, cfg->debug ? "-d" : NULL, NULL };
	struct fuse_args args = FUSE_ARGS_INIT(cfg->debug ? 4 : 3, argv);
	struct fuse_session *se;

	mount_time = time(NULL);
	se = fuse_session_new(&args, &pf_ops, sizeof(pf_ops), NULL);
	fuse_opt_free_args(&args);
	session = se;
	return se;
}

uint64_t pf_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

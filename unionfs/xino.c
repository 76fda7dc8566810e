/* xino: persistent (branch, backing inode, generation) -> st_ino table.
 *
 * Layout of the table directory (all integers little-endian; the format is
 * described for users in docs/unionfs.md):
 *
 *   header         32 bytes: "STRXINO\0", u32 version (1), u32 zero,
 *                  u64 next (no number >= next was ever handed out),
 *                  8 zero bytes.
 *   br-XXXXXXXX    one sparse file per branch, XXXXXXXX = branch id in hex:
 *                  8 KiB header ("STRXBR\0\0", u32 version, u32 path length,
 *                  the canonical branch path), then a 16-byte record per
 *                  backing inode at 8192 + ino * 16:
 *                  u64 union_ino, u32 gen, u32 flags (bit 0: valid).
 *
 * An all-zero record (a hole) means "not seen yet", so a lookup is a single
 * pread.  Backing inode numbers >= 2^36 would need absurd file offsets; they
 * are kept in memory only and get new numbers after a remount.
 *
 * Records are not fsync'ed: a power loss may forget the last mappings (those
 * objects get new numbers), but numbers are reserved in the header, fsync'ed,
 * before they are handed out, so no number is ever given out twice. */
#include "xino.h"
#include "log.h"

#include <dirent.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uthash.h>

#define XINO_VERSION	1
#define HDR_NAME	"header"
#define HDR_TMP_NAME	"header.tmp"
#define HDR_SIZE	32
#define HDR_NEXT_OFF	16
#define BR_HDR_SIZE	8192
#define BR_PATH_OFF	16
#define BR_PATH_MAX	(BR_HDR_SIZE - BR_PATH_OFF)
#define REC_SIZE	16
#define REC_VALID	1u
#define FILE_INO_LIMIT	(1ULL << 36)	/* 1 TiB of sparse records at most */
#define FIRST_INO	2		/* 0 is "none", 1 is the FUSE root */
#define BATCH		4096		/* numbers reserved per header write */
#define NSTRIPES	64
#define MAX_PROBES	256

static const char hdr_magic[8] = "STRXINO";
static const char br_magic[8] = "STRXBR";

/* Keys that live in memory: in-memory tables and huge inode numbers. */
struct mem_rec {
	struct {
		uint64_t ino;
		uint32_t branch_id;
		uint32_t pad;		/* zeroed: uthash hashes the bytes */
	} key;
	uint64_t union_ino;
	uint32_t gen;
	UT_hash_handle hh;
};

struct stripe {
	pthread_mutex_t lock;
	struct mem_rec *mem;
} __attribute__((aligned(64)));	/* no false sharing between stripes */

/* Which records of a branch file may hold something: a bit per backing
 * inode number, set for the records in the file's data extents when it is
 * opened and for each record written since.  A clear bit is a hole, known
 * empty without a pread: a fresh mount looks up every name for the first
 * time, and the pread was a tenth of a tree walk's daemon time.  Chunks
 * come on first use and stay until the table closes, so readers take no
 * lock. */
#define MAP_CHUNK_INOS	(1U << 19)	/* 64 KiB of bits */
#define MAP_CHUNKS	(FILE_INO_LIMIT / MAP_CHUNK_INOS)
#define MAP_WORDS	(MAP_CHUNK_INOS / 64)

struct written_map {
	_Atomic(uint64_t *) chunk[MAP_CHUNKS];
};

struct branch {
	struct branch *next;
	uint32_t id;
	int fd;				/* -1: in-memory table */
	char *path;
	struct written_map *map;	/* NULL: every record is read */
	atomic_bool map_ok;		/* false once a bit could not be set */
};

struct xino {
	int dfd;			/* -1: in-memory table */
	int hfd;
	_Atomic uint64_t next;		/* next number to hand out */
	_Atomic uint64_t limit;		/* numbers below this are reserved on disk */
	pthread_mutex_t reserve_lock;
	pthread_mutex_t branch_lock;	/* serialises xino_add_branch only */
	struct branch *_Atomic branches; /* append-only, read without locks */
	struct stripe stripes[NSTRIPES];
};

static int pread_full(int fd, void *buf, size_t len, off_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, (char *)buf + done, len - done, off + done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		done += n;
	}
	/* Past EOF is a hole: reads as "unknown". */
	memset((char *)buf + done, 0, len - done);
	return 0;
}

static int pwrite_full(int fd, const void *buf, size_t len, off_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pwrite(fd, (const char *)buf + done, len - done, off + done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		done += n;
	}
	return 0;
}

static void put32(unsigned char *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, 4);
}

static void put64(unsigned char *p, uint64_t v)
{
	v = htole64(v);
	memcpy(p, &v, 8);
}

static uint32_t get32(const unsigned char *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return le32toh(v);
}

static uint64_t get64(const unsigned char *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return le64toh(v);
}

/* close() for error paths: the caller reports the first error, not close's. */
static void close_keep_errno(int fd)
{
	int err = errno;

	close(fd);
	errno = err;
}

static uint32_t fnv1a(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 16777619u;
	}
	return h;
}

static struct stripe *stripe_of(struct xino *x, const struct xino_key *k)
{
	uint64_t h = (k->ino ^ ((uint64_t)k->branch_id << 32)) * 0x9e3779b97f4a7c15ULL;

	return &x->stripes[h >> 58];
}

static struct branch *find_branch(struct xino *x, uint32_t id)
{
	struct branch *b = atomic_load_explicit(&x->branches, memory_order_acquire);

	for (; b; b = b->next)
		if (b->id == id)
			return b;
	return NULL;
}

/* The header says which numbers may already be in use; it must be on disk
 * before any number it covers is handed out, or a power loss could reuse
 * numbers that records written later did reach the disk with. */
static int write_next(struct xino *x, uint64_t next)
{
	unsigned char buf[8];

	put64(buf, next);
	if (pwrite_full(x->hfd, buf, sizeof(buf), HDR_NEXT_OFF) < 0 ||
	    fdatasync(x->hfd) < 0)
		return -1;
	return 0;
}

/* Makes sure numbers up to and including v are reserved on disk. */
static int reserve(struct xino *x, uint64_t v)
{
	int ret = 0;

	pthread_mutex_lock(&x->reserve_lock);
	if (atomic_load(&x->limit) <= v) {
		ret = write_next(x, v + BATCH);
		if (ret == 0)
			atomic_store(&x->limit, v + BATCH);
	}
	pthread_mutex_unlock(&x->reserve_lock);
	return ret;
}

static uint64_t alloc_ino(struct xino *x)
{
	uint64_t v = atomic_fetch_add(&x->next, 1);

	if (v < FIRST_INO) {		/* wrapped around 2^64 */
		errno = EOVERFLOW;
		return 0;
	}
	if (v >= atomic_load(&x->limit) && reserve(x, v) < 0)
		return 0;		/* v is skipped, never reused */
	return v;
}

/* xino_set may hand us a number the allocator has not reached yet; keep the
 * allocator away from it. */
static int claim_ino(struct xino *x, uint64_t ino)
{
	uint64_t cur = atomic_load(&x->next);

	while (cur <= ino)
		if (atomic_compare_exchange_weak(&x->next, &cur, ino + 1))
			break;
	if (ino >= atomic_load(&x->limit) && reserve(x, ino) < 0)
		return -1;
	return 0;
}

static struct mem_rec *mem_find(struct stripe *s, const struct xino_key *k, bool create)
{
	struct mem_rec probe, *r;

	memset(&probe.key, 0, sizeof(probe.key));
	probe.key.ino = k->ino;
	probe.key.branch_id = k->branch_id;
	HASH_FIND(hh, s->mem, &probe.key, sizeof(probe.key), r);
	if (r || !create)
		return r;
	r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->key = probe.key;
	HASH_ADD(hh, s->mem, key, sizeof(r->key), r);
	return r;
}

static bool map_test(struct written_map *m, uint64_t ino)
{
	uint64_t *c = atomic_load_explicit(&m->chunk[ino / MAP_CHUNK_INOS], memory_order_acquire);
	uint64_t bit = ino % MAP_CHUNK_INOS;

	return c && (atomic_load_explicit((_Atomic uint64_t *)&c[bit / 64], memory_order_relaxed) &
		     (1ULL << (bit % 64)));
}

static uint64_t *map_chunk(struct written_map *m, uint64_t ino)
{
	_Atomic(uint64_t *) *slot = &m->chunk[ino / MAP_CHUNK_INOS];
	uint64_t *c = atomic_load_explicit(slot, memory_order_acquire), *none = NULL;

	if (c)
		return c;
	c = calloc(MAP_WORDS, sizeof(uint64_t));
	if (c && !atomic_compare_exchange_strong(slot, &none, c)) {
		free(c);
		c = none;
	}
	return c;
}

/* Sets the bits of [first, end); -1 when memory ran out. */
static int map_set_range(struct written_map *m, uint64_t first, uint64_t end)
{
	for (uint64_t ino = first; ino < end;) {
		uint64_t *c = map_chunk(m, ino), bit = ino % MAP_CHUNK_INOS;

		if (!c)
			return -1;
		if (bit % 64 == 0 && end - ino >= 64) {
			atomic_store_explicit((_Atomic uint64_t *)&c[bit / 64], ~0ULL,
					      memory_order_relaxed);
			ino += 64;
		} else {
			atomic_fetch_or_explicit((_Atomic uint64_t *)&c[bit / 64],
						 1ULL << (bit % 64), memory_order_relaxed);
			ino++;
		}
	}
	return 0;
}

static void map_free(struct written_map *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < MAP_CHUNKS; i++)
		free(atomic_load(&m->chunk[i]));
	free(m);
}

/* The map of branch file fd: its data extents marked.  NULL when the
 * filesystem cannot tell data from holes, or memory runs out (every record
 * is then read). */
static struct written_map *map_load(int fd)
{
	struct written_map *m = calloc(1, sizeof(*m));
	off_t data = BR_HDR_SIZE, hole;

	if (!m)
		return NULL;
	while ((data = lseek(fd, data, SEEK_DATA)) >= 0) {
		hole = lseek(fd, data, SEEK_HOLE);
		if (hole < 0)
			goto fail;
		if (hole > BR_HDR_SIZE &&
		    map_set_range(m, (uint64_t)(data < BR_HDR_SIZE ? 0 : data - BR_HDR_SIZE) / REC_SIZE,
				  ((uint64_t)(hole - BR_HDR_SIZE) + REC_SIZE - 1) / REC_SIZE) < 0)
			goto fail;
		data = hole;
	}
	if (errno == ENXIO)	/* no data past this point */
		return m;
fail:
	map_free(m);
	return NULL;
}

static bool on_disk(const struct branch *b, const struct xino_key *k)
{
	return b->fd >= 0 && k->ino < FILE_INO_LIMIT;
}

static off_t rec_off(uint64_t ino)
{
	return BR_HDR_SIZE + (off_t)ino * REC_SIZE;
}

/* Called with the key's stripe locked.  Returns 0 for "unknown". */
static int rec_read(struct stripe *s, const struct branch *b,
		    const struct xino_key *k, uint64_t *ino, uint32_t *gen)
{
	unsigned char buf[REC_SIZE];
	struct mem_rec *r;

	*ino = 0;
	if (!on_disk(b, k)) {
		r = mem_find(s, k, false);
		if (r) {
			*ino = r->union_ino;
			*gen = r->gen;
		}
		return 0;
	}
	if (atomic_load(&b->map_ok) && !map_test(b->map, k->ino))
		return 0;
	if (pread_full(b->fd, buf, sizeof(buf), rec_off(k->ino)) < 0)
		return -1;
	if (get32(buf + 12) & REC_VALID) {
		*ino = get64(buf);
		*gen = get32(buf + 8);
	}
	return 0;
}

/* Called with the key's stripe locked. */
static int rec_write(struct stripe *s, const struct branch *b,
		     const struct xino_key *k, uint64_t ino)
{
	unsigned char buf[REC_SIZE];
	struct mem_rec *r;

	if (!on_disk(b, k)) {
		r = mem_find(s, k, true);
		if (!r)
			return -1;
		r->union_ino = ino;
		r->gen = k->gen;
		return 0;
	}
	put64(buf, ino);
	put32(buf + 8, k->gen);
	put32(buf + 12, REC_VALID);
	if (pwrite_full(b->fd, buf, sizeof(buf), rec_off(k->ino)) < 0)
		return -1;
	/* A record the map does not show would be read as a hole. */
	if (atomic_load(&b->map_ok) && map_set_range(b->map, k->ino, k->ino + 1) < 0)
		atomic_store(&b->map_ok, false);
	return 0;
}

uint64_t xino_get(struct xino *x, const struct xino_key *key)
{
	struct branch *b = key ? find_branch(x, key->branch_id) : NULL;
	struct stripe *s;
	uint64_t ino = 0;
	uint32_t gen = 0;

	if (!b) {
		errno = EINVAL;
		return 0;
	}
	s = stripe_of(x, key);
	/* One lock over read-check-allocate-write: two threads looking up the
	 * same new key must not both allocate. */
	pthread_mutex_lock(&s->lock);
	if (rec_read(s, b, key, &ino, &gen) < 0) {
		ino = 0;
	} else if (ino == 0 || gen != key->gen) {
		ino = alloc_ino(x);
		if (ino && rec_write(s, b, key, ino) < 0)
			ino = 0;
	}
	pthread_mutex_unlock(&s->lock);
	return ino;
}

int xino_set(struct xino *x, const struct xino_key *key, uint64_t ino)
{
	struct branch *b = key ? find_branch(x, key->branch_id) : NULL;
	struct stripe *s;
	int ret;

	if (!b || ino == 0)
		return -EINVAL;
	if (claim_ino(x, ino) < 0)
		return -errno;
	s = stripe_of(x, key);
	pthread_mutex_lock(&s->lock);
	ret = rec_write(s, b, key, ino) < 0 ? -errno : 0;
	pthread_mutex_unlock(&s->lock);
	return ret;
}

/* Returns 1 if the file belongs to `path`, 0 if to another path (an id
 * collision), -1 with errno on error or corruption. */
static int br_check(int fd, const char *path, const char *name)
{
	size_t len = strlen(path);
	unsigned char *hdr = calloc(1, BR_HDR_SIZE);
	int ret = -1;

	if (!hdr)
		return -1;
	if (pread_full(fd, hdr, BR_HDR_SIZE, 0) < 0)
		goto out;
	if (hdr[0] == 0) {
		/* New file, or a crash before its header was synced.  Records
		 * only follow a synced header, so there is nothing to keep. */
		memcpy(hdr, br_magic, 8);
		put32(hdr + 8, XINO_VERSION);
		put32(hdr + 12, len);
		memcpy(hdr + BR_PATH_OFF, path, len);
		if (ftruncate(fd, 0) == 0 &&
		    pwrite_full(fd, hdr, BR_HDR_SIZE, 0) == 0 && fdatasync(fd) == 0)
			ret = 1;
		goto out;
	}
	if (memcmp(hdr, br_magic, 8) || get32(hdr + 8) != XINO_VERSION ||
	    get32(hdr + 12) > BR_PATH_MAX) {
		log_error("xino: %s: not a version %d branch file; remove the xino directory",
			  name, XINO_VERSION);
		errno = EUCLEAN;
		goto out;
	}
	ret = get32(hdr + 12) == len && memcmp(hdr + BR_PATH_OFF, path, len) == 0;
out:
	free(hdr);
	return ret;
}

/* Finds the file for `path`, starting at its hash and probing past files of
 * other paths, so ids stay the same whatever order branches are added in. */
static int br_open(struct xino *x, const char *path, uint32_t *id)
{
	char name[16];
	int fd, ret;

	for (int i = 0; i < MAX_PROBES; i++, (*id)++) {
		if (find_branch(x, *id))
			continue;	/* taken by another path this mount */
		snprintf(name, sizeof(name), "br-%08x", *id);
		fd = openat(x->dfd, name, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd < 0)
			return -1;
		ret = br_check(fd, path, name);
		if (ret == 1)
			return fd;
		close_keep_errno(fd);
		if (ret < 0)
			return -1;
	}
	errno = ENOSPC;
	return -1;
}

int xino_add_branch(struct xino *x, const char *canonical_path, uint32_t *branch_id)
{
	struct branch *b;
	uint32_t id;
	int ret = 0;

	if (!canonical_path)
		return -EINVAL;
	if (strlen(canonical_path) > BR_PATH_MAX)
		return -ENAMETOOLONG;
	pthread_mutex_lock(&x->branch_lock);
	for (b = x->branches; b; b = b->next)
		if (strcmp(b->path, canonical_path) == 0)
			goto found;
	b = calloc(1, sizeof(*b));
	if (!b || !(b->path = strdup(canonical_path))) {
		ret = -ENOMEM;
		goto fail;
	}
	id = fnv1a(canonical_path);
	if (x->dfd < 0) {
		while (find_branch(x, id))
			id++;
		b->fd = -1;
	} else {
		b->fd = br_open(x, canonical_path, &id);
		if (b->fd < 0) {
			ret = -errno;
			goto fail;
		}
		b->map = map_load(b->fd);
		atomic_init(&b->map_ok, b->map != NULL);
	}
	b->id = id;
	b->next = x->branches;
	atomic_store_explicit(&x->branches, b, memory_order_release);
found:
	*branch_id = b->id;
	pthread_mutex_unlock(&x->branch_lock);
	return 0;
fail:
	pthread_mutex_unlock(&x->branch_lock);
	if (b)
		free(b->path);
	free(b);
	return ret;
}

/* Writes a complete header under a temporary name and renames it into
 * place, so a header that exists is never half-written. */
static int hdr_create(int dfd)
{
	unsigned char hdr[HDR_SIZE] = { 0 };
	int fd;

	memcpy(hdr, hdr_magic, 8);
	put32(hdr + 8, XINO_VERSION);
	put64(hdr + HDR_NEXT_OFF, FIRST_INO);
	fd = openat(dfd, HDR_TMP_NAME, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
		    0600);
	if (fd < 0)
		return -1;
	if (pwrite_full(fd, hdr, sizeof(hdr), 0) < 0 || fdatasync(fd) < 0) {
		close_keep_errno(fd);
		return -1;
	}
	if (close(fd) < 0 || renameat(dfd, HDR_TMP_NAME, dfd, HDR_NAME) < 0 || fsync(dfd) < 0)
		return -1;
	return 0;
}

/* Without a header nothing says which numbers the records use, so a new
 * header (which restarts numbering) must not meet old records. */
static int drop_branch_files(int dfd)
{
	int fd = dup(dfd), ret = 0, err;
	struct dirent *de;
	DIR *d;

	if (fd < 0)
		return -1;
	d = fdopendir(fd);
	if (!d) {
		close_keep_errno(fd);
		return -1;
	}
	while (ret == 0) {
		errno = 0;
		de = readdir(d);
		if (!de) {
			ret = errno ? -1 : 0;
			break;
		}
		if (strncmp(de->d_name, "br-", 3) == 0 && unlinkat(dfd, de->d_name, 0) < 0)
			ret = -1;
	}
	err = errno;
	closedir(d);
	errno = err;
	return ret;
}

static int hdr_load(struct xino *x)
{
	unsigned char hdr[HDR_SIZE];
	uint64_t next;

	x->hfd = openat(x->dfd, HDR_NAME, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (x->hfd < 0 && errno == ENOENT) {
		if (drop_branch_files(x->dfd) < 0 || hdr_create(x->dfd) < 0)
			return -1;
		x->hfd = openat(x->dfd, HDR_NAME, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	}
	if (x->hfd < 0 || pread_full(x->hfd, hdr, sizeof(hdr), 0) < 0)
		return -1;
	next = get64(hdr + HDR_NEXT_OFF);
	if (memcmp(hdr, hdr_magic, 8) || get32(hdr + 8) != XINO_VERSION || next < FIRST_INO) {
		log_error("xino: bad or unsupported header; remove the xino directory");
		errno = EUCLEAN;
		return -1;
	}
	atomic_init(&x->next, next);
	atomic_init(&x->limit, next);	/* nothing reserved by this mount yet */
	return 0;
}

static int dir_open(struct xino *x, const char *dir)
{
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -1;
	x->dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (x->dfd < 0)
		return -1;
	/* Two mounts sharing one table would overwrite each other's records. */
	if (flock(x->dfd, LOCK_EX | LOCK_NB) < 0) {
		if (errno == EWOULDBLOCK)
			errno = EBUSY;
		return -1;
	}
	return hdr_load(x);
}

struct xino *xino_open(const char *dir)
{
	struct xino *x;
	int err;

	/* Stripes are cache-line aligned; calloc does not promise that. */
	err = posix_memalign((void **)&x, _Alignof(struct xino), sizeof(*x));
	if (err) {
		errno = err;
		return NULL;
	}
	memset(x, 0, sizeof(*x));
	x->dfd = -1;
	x->hfd = -1;
	pthread_mutex_init(&x->reserve_lock, NULL);
	pthread_mutex_init(&x->branch_lock, NULL);
	for (int i = 0; i < NSTRIPES; i++)
		pthread_mutex_init(&x->stripes[i].lock, NULL);
	if (!dir) {
		atomic_init(&x->next, FIRST_INO);
		atomic_init(&x->limit, UINT64_MAX);
		return x;
	}
	if (dir_open(x, dir) < 0) {
		err = errno;
		xino_close(x);
		errno = err;
		return NULL;
	}
	return x;
}

void xino_close(struct xino *x)
{
	struct branch *b, *bn;
	struct mem_rec *r, *rn;

	if (!x)
		return;
	for (b = x->branches; b; b = bn) {
		bn = b->next;
		/* A clean unmount keeps every mapping, even across a power loss. */
		if (b->fd >= 0 && fdatasync(b->fd) < 0)
			log_warn("xino: branch %s: %s", b->path, errno_name(errno));
		if (b->fd >= 0)
			close(b->fd);
		map_free(b->map);
		free(b->path);
		free(b);
	}
	/* Give back the unused part of the reservation. */
	if (x->hfd >= 0 && atomic_load(&x->limit) != atomic_load(&x->next) &&
	    write_next(x, atomic_load(&x->next)) < 0)
		log_warn("xino: header: %s", errno_name(errno));
	if (x->hfd >= 0)
		close(x->hfd);
	if (x->dfd >= 0)
		close(x->dfd);	/* drops the flock */
	for (int i = 0; i < NSTRIPES; i++) {
		HASH_ITER(hh, x->stripes[i].mem, r, rn) {
			HASH_DEL(x->stripes[i].mem, r);
			free(r);
		}
		pthread_mutex_destroy(&x->stripes[i].lock);
	}
	pthread_mutex_destroy(&x->reserve_lock);
	pthread_mutex_destroy(&x->branch_lock);
	free(x);
}

/* difftest: operations shared by ops.c (generation, steps) and exec.c
 * (running one operation on one side, comparing the results). */
#ifndef STRATA_DIFFTEST_OPS_H
#define STRATA_DIFFTEST_OPS_H

#include "difftest.h"

#include <stdio.h>

enum {
	OP_CREATE, OP_WRITE, OP_APPEND, OP_TRUNCATE, OP_OTRUNC, OP_READ,
	OP_RENAME, OP_UNLINK, OP_MKDIR, OP_RMDIR, OP_RMTREE, OP_LINK,
	OP_SYMLINK, OP_MKFIFO, OP_CHMOD, OP_CHOWN, OP_SETXATTR, OP_GETXATTR,
	OP_RMXATTR, OP_LISTXATTR, OP_READDIR, OP_SEEKDIR, OP_STAT, OP_HOLD,
	OP_HELD_READ, OP_HELD_WRITE, OP_RELEASE, OP_FALLOCATE, OP_NR
};

enum { GROWS = 1, SHRINKS = 2, READONLY = 4 };

struct op {
	int kind;
	char *p1, *p2, *target;
	int flags;
	mode_t mode, umask;
	uid_t uid;
	gid_t gid;
	off_t off;
	size_t len;
	unsigned char *data;	/* len bytes from dseed */
	uint64_t dseed;
	char xname[32];
	int slot;
	unsigned long k;
	char **list;
	size_t nlist;
};

#define MAXREC 256

struct res {
	int n;
	const char *label[MAXREC];
	long rv[MAXREC];
	int er[MAXREC];
	struct buf out;
};

void exec_op(struct side *s, struct op *o, struct res *r);
void op_make_data(struct op *o);
void op_free(struct op *o);
/* record.c: one operation per line, for --record, --replay, --minimize */
void op_write(FILE *f, const struct op *o);
bool op_read(FILE *f, struct op *o);	/* false at EOF; dies on junk */
char *res_desc(struct res *r, bool with_out);
void compare_res(struct ctx *c, const char *path, struct res *a, struct res *b);
int cmp_strp(const void *a, const void *b);

#endif

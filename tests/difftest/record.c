/* difftest: operations as text, one per line (--record, --replay), and
 * --minimize: shrink a failing sequence to the operations the failure
 * needs, by delta debugging over replays in child processes.
 *
 * Line format, space separated; strings are "-" for none, else every byte
 * outside '!'..'~' and '%' is written %XX:
 *   NAME P1 P2 TARGET FLAGS MODE UMASK UID GID OFF LEN DSEED XNAME SLOT K
 *   NLIST LIST... */
#include "ops.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void put_str(FILE *f, const char *s)
{
	if (!s) {
		fputs(" -", f);
		return;
	}
	fputc(' ', f);
	if (strcmp(s, "-") == 0) {
		fputs("%2d", f);
		return;
	}
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch > ' ' && ch <= '~' && ch != '%')
			fputc(ch, f);
		else
			fprintf(f, "%%%02x", ch);
	}
}

void op_write(FILE *f, const struct op *o)
{
	size_t i;

	fputs(op_name(o->kind), f);
	put_str(f, o->p1);
	put_str(f, o->p2);
	put_str(f, o->target);
	fprintf(f, " %d %o %o %u %u %lld %zu %llu", o->flags, o->mode, o->umask,
		o->uid, o->gid, (long long)o->off, o->len,
		(unsigned long long)o->dseed);
	put_str(f, o->xname[0] ? o->xname : NULL);
	fprintf(f, " %d %lu %zu", o->slot, o->k, o->nlist);
	for (i = 0; i < o->nlist; i++)
		put_str(f, o->list[i]);
	fputc('\n', f);
	if (fflush(f) == EOF)
		die("writing the record: %s", strerror(errno));
}

static char *get_str(char **cur)
{
	char *t = strsep(cur, " "), *out, *p;

	if (!t || !*t)
		die("replay: truncated line");
	if (strcmp(t, "-") == 0)
		return NULL;
	out = p = xmalloc(strlen(t) + 1);
	while (*t) {
		unsigned int v;

		if (*t == '%' && sscanf(t + 1, "%2x", &v) == 1) {
			*p++ = (char)v;
			t += 3;
		} else {
			*p++ = *t++;
		}
	}
	*p = '\0';
	return out;
}

static long long get_num(char **cur, int base)
{
	char *t = strsep(cur, " "), *end;
	long long v;

	if (!t || !*t)
		die("replay: truncated line");
	errno = 0;
	v = strtoll(t, &end, base);
	if (errno || *end)
		die("replay: bad number %s", t);
	return v;
}

static unsigned long long get_unum(char **cur)
{
	char *t = strsep(cur, " "), *end;
	unsigned long long v;

	if (!t || !*t)
		die("replay: truncated line");
	errno = 0;
	v = strtoull(t, &end, 10);
	if (errno || *end)
		die("replay: bad number %s", t);
	return v;
}

bool op_read(FILE *f, struct op *o)
{
	char *line = NULL, *cur, *name, *x;
	size_t cap = 0, i;
	ssize_t n;

	memset(o, 0, sizeof(*o));
	n = getline(&line, &cap, f);
	if (n < 0) {
		free(line);
		return false;
	}
	if (n > 0 && line[n - 1] == '\n')
		line[n - 1] = '\0';
	cur = line;
	name = strsep(&cur, " ");
	o->kind = op_lookup(name);
	if (o->kind < 0)
		die("replay: unknown operation %s", name);
	o->p1 = get_str(&cur);
	o->p2 = get_str(&cur);
	o->target = get_str(&cur);
	o->flags = (int)get_num(&cur, 10);
	o->mode = (mode_t)get_num(&cur, 8);
	o->umask = (mode_t)get_num(&cur, 8);
	o->uid = (uid_t)get_num(&cur, 10);
	o->gid = (gid_t)get_num(&cur, 10);
	o->off = (off_t)get_num(&cur, 10);
	o->len = (size_t)get_num(&cur, 10);
	o->dseed = (uint64_t)get_unum(&cur);
	x = get_str(&cur);
	if (x)
		snprintf(o->xname, sizeof(o->xname), "%s", x);
	free(x);
	o->slot = (int)get_num(&cur, 10);
	o->k = (unsigned long)get_unum(&cur);
	o->nlist = (size_t)get_num(&cur, 10);
	if (o->nlist > MAXREC)
		die("replay: list too long");
	o->list = xmalloc((o->nlist + 1) * sizeof(*o->list));
	for (i = 0; i < o->nlist; i++)
		o->list[i] = get_str(&cur);
	if ((o->kind == OP_CREATE || o->kind == OP_WRITE || o->kind == OP_APPEND ||
	     o->kind == OP_HELD_WRITE || o->kind == OP_SETXATTR))
		op_make_data(o);
	free(line);
	return true;
}

struct op *load_ops(const char *path, size_t *n)
{
	FILE *f = fopen(path, "r");
	struct op *ops = NULL;

	if (!f)
		die("%s: %s", path, strerror(errno));
	*n = 0;
	for (;;) {
		ops = xrealloc(ops, (*n + 1) * sizeof(*ops));
		if (!op_read(f, &ops[*n]))
			break;
		(*n)++;
	}
	if (fclose(f) == EOF)
		die("%s: %s", path, strerror(errno));
	return ops;
}

/* ---- --minimize ------------------------------------------------------- */

struct outcome {
	bool mismatch;
	long step;		/* -1: in a later phase ("final") */
	char op[64];		/* operation name */
	char line[65536];	/* the MISMATCH line */
};

/* Run ourselves with ARGS; collect the first MISMATCH line. */
static void run_child(char **args, struct outcome *out, bool show)
{
	int fds[2], status;
	char buf[65536];
	FILE *f;
	pid_t pid;

	memset(out, 0, sizeof(*out));
	if (pipe(fds) < 0)
		die("pipe: %s", strerror(errno));
	fflush(stdout);
	pid = fork();
	if (pid < 0)
		die("fork: %s", strerror(errno));
	if (pid == 0) {
		if (dup2(fds[1], 1) < 0 || close(fds[0]) < 0 || close(fds[1]) < 0)
			_exit(127);
		execv("/proc/self/exe", args);
		_exit(127);
	}
	if (close(fds[1]) < 0)
		die("close: %s", strerror(errno));
	f = fdopen(fds[0], "r");
	if (!f)
		die("fdopen: %s", strerror(errno));
	while (fgets(buf, sizeof(buf), f)) {
		char *p;

		if (show)
			fputs(buf, stdout);
		if (out->mismatch || strncmp(buf, "difftest: MISMATCH ", 19) != 0)
			continue;
		out->mismatch = true;
		snprintf(out->line, sizeof(out->line), "%s", buf);
		p = strstr(buf, " step=");
		out->step = p && p[6] >= '0' && p[6] <= '9' ? strtol(p + 6, NULL, 10) : -1;
		p = strstr(buf, " op=");
		if (p)
			snprintf(out->op, sizeof(out->op), "%.*s", (int)strcspn(p + 4, "([ "),
				 p + 4);
	}
	if (fclose(f) == EOF)
		die("reading child output: %s", strerror(errno));
	if (waitpid(pid, &status, 0) < 0)
		die("waitpid: %s", strerror(errno));
	if (WIFEXITED(status) && WEXITSTATUS(status) == 2)
		die("a replay child failed (internal error)");
}

static void save(const char *path, struct op *ops, const size_t *idx, size_t n)
{
	FILE *f = fopen(path, "w");
	size_t i;

	if (!f)
		die("%s: %s", path, strerror(errno));
	for (i = 0; i < n; i++)
		op_write(f, &ops[idx[i]]);
	if (fclose(f) == EOF)
		die("%s: %s", path, strerror(errno));
}

/* Does replaying ops[idx[0..n-1]] fail the same way, at its last one? */
static bool reproduces(char **args, const char *file, struct op *ops,
		       const size_t *idx, size_t n, const struct outcome *want)
{
	struct outcome got;

	save(file, ops, idx, n);
	run_child(args, &got, false);
	if (!got.mismatch)
		return false;
	if (want->step < 0 || strncmp(want->op, "whole-tree", 10) == 0)
		return got.step < 0 || got.step == (long)n - 1;
	return got.step == (long)n - 1 && strcmp(got.op, want->op) == 0;
}

void minimize(char **base, int nbase)
{
	char *rec = xasprintf("/tmp/difftest-%d.ops", (int)getpid());
	char *trial = xasprintf("/tmp/difftest-%d.trial", (int)getpid());
	char **args = xmalloc((size_t)(nbase + 8) * sizeof(*args));
	struct outcome first;
	struct op *ops;
	size_t nops, n, chunks = 2, *idx, *tmp, i, j, tries = 0;
	int a;

	for (a = 0; a < nbase; a++)
		args[a] = base[a];
	args[a++] = "--run-only";
	args[a++] = "--record";
	args[a++] = rec;
	args[a] = NULL;
	printf("difftest: minimize: looking for the first mismatch\n");
	run_child(args, &first, false);
	if (!first.mismatch) {
		printf("difftest: minimize: no mismatch, nothing to minimize\n");
		exit(0);
	}
	printf("difftest: minimize: target %s", first.line);
	ops = load_ops(rec, &nops);
	if (unlink(rec) < 0)
		die("%s: %s", rec, strerror(errno));
	n = first.step >= 0 && (size_t)first.step < nops ? (size_t)first.step + 1 : nops;

	/* the replays: same layers, recorded operations, whole-tree compare
	 * only at the end */
	for (a = 0; a < nbase; a++)
		args[a] = base[a];
	args[a++] = "--run-only";
	args[a++] = "--full-every";
	args[a++] = "100000000";
	args[a++] = "--replay";
	args[a++] = trial;
	args[a] = NULL;
	idx = xmalloc(n * sizeof(*idx));
	tmp = xmalloc(n * sizeof(*tmp));
	for (i = 0; i < n; i++)
		idx[i] = i;
	if (!reproduces(args, trial, ops, idx, n, &first)) {
		printf("difftest: minimize: the replay does not fail the same way (flaky?)\n");
		exit(1);
	}
	/* ddmin over all but the failing operation, which always stays */
	while (n > 1) {
		size_t m = n - 1, size = (m + chunks - 1) / chunks;
		bool reduced = false;

		for (i = 0; i < m && !reduced; i += size) {
			size_t k = 0;

			for (j = 0; j < n; j++)
				if (j < i || j >= i + size || j == n - 1)
					tmp[k++] = idx[j];
			tries++;
			if (reproduces(args, trial, ops, tmp, k, &first)) {
				memcpy(idx, tmp, k * sizeof(*idx));
				n = k;
				chunks = chunks > 2 ? chunks - 1 : 2;
				reduced = true;
				printf("difftest: minimize: %zu operations (%zu tries)\n", n, tries);
			}
		}
		if (reduced)
			continue;
		if (size == 1)
			break;
		chunks = chunks * 2 < m ? chunks * 2 : m;
	}
	save(trial, ops, idx, n);
	args[a++] = "--verbose";
	args[a] = NULL;
	printf("difftest: minimize: %zu operations left; replay with --replay %s:\n",
	       n, trial);
	run_child(args, &first, true);
	for (i = 0; i < nops; i++)
		op_free(&ops[i]);
	free(ops);
	exit(first.mismatch ? 1 : 0);
}

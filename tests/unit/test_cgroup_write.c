/* Unit tests for common/cgroup_write.c.
 *
 * The "fake" suites build v1, v2 and hybrid trees of plain files in a
 * temporary directory (cgroup_write treats a tree that is not cgroupfs as a
 * stand-in: new directories get their parent's files, empty) and check what
 * lands in which file.  The "host" suite runs as root on the real cgroup
 * tree: limits read back from the kernel, attach, an OOM kill, nested
 * cgroups, and that nothing is left behind.  Ids are pid-based, and every
 * test's .fini destroys what it made even when an assertion failed. */
#include "cgroup_write.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <glob.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define MiB (1024ULL * 1024)

static char tmp[64];
static char id[64];
static struct cg_host h;
static struct cg_container c, c2;
static char err[512];
static pid_t child = -1;

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* Criterion forks each test: the pid makes the id unique. */
static void new_id(void)
{
	snprintf(id, sizeof(id), "test-%d", (int)getpid());
	err[0] = '\0';
}

static void setup(void)
{
	new_id();
	strcpy(tmp, "/tmp/test_cgroup_write-XXXXXX");
	cr_assert_not_null(mkdtemp(tmp));
}

static void teardown(void)
{
	if (child > 0) {
		kill(child, SIGKILL);
		waitpid(child, NULL, 0);
		child = -1;
	}
	cg_container_destroy(&c);
	cg_container_free(&c);
	cg_container_destroy(&c2);
	cg_container_free(&c2);
	cg_host_free(&h);
	if (tmp[0])
		nftw(tmp, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* tmp/rel, with printf formatting, in rotating buffers. */
__attribute__((format(printf, 1, 2))) static const char *at(const char *fmt, ...)
{
	static char buf[8][PATH_MAX];
	static int next;
	char *b = buf[next++ % 8], rel[PATH_MAX - 128];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(rel, sizeof(rel), fmt, ap);
	va_end(ap);
	snprintf(b, PATH_MAX, "%s%s%s", tmp, *rel ? "/" : "", rel);
	return b;
}

static void put(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	cr_assert_not_null(f, "%s", path);
	fputs(text, f);
	cr_assert_eq(fclose(f), 0);
}

/* A file's contents, trailing newline dropped; "<missing>" if absent. */
static const char *slurp(const char *path)
{
	static char buf[4][4096];
	static int next;
	char *b = buf[next++ % 4];
	FILE *f = fopen(path, "r");
	size_t n;

	if (!f)
		return "<missing>";
	n = fread(b, 1, 4095, f);
	fclose(f);
	b[n] = '\0';
	while (n > 0 && b[n - 1] == '\n')
		b[--n] = '\0';
	return b;
}

static bool exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

static void mkd(const char *path)
{
	cr_assert(mkdir(path, 0755) == 0 || errno == EEXIST, "mkdir %s: %s", path, strerror(errno));
}

/* A hierarchy's root directory with files given as "name=content" pairs. */
static void hier(const char *path, const char *const *files)
{
	char dir[PATH_MAX], file[PATH_MAX + 128];

	snprintf(dir, sizeof(dir), "%s", path); /* at()'s buffers rotate */
	mkd(dir);
	for (; *files; files++) {
		const char *eq = strchr(*files, '=');

		snprintf(file, sizeof(file), "%s/%.*s", dir, (int)(eq - *files), *files);
		put(file, eq + 1);
	}
}

static void fake_v1(bool memsw, bool with_cpuset)
{
	static const char *const mem[] = { "cgroup.procs=", "tasks=", "memory.limit_in_bytes=9223372036854771712\n",
					   "memory.oom_control=oom_kill_disable 0\nunder_oom 0\noom_kill 0\n",
					   NULL };
	static const char *const cpu[] = { "cgroup.procs=", "tasks=", "cpu.cfs_period_us=100000\n",
					   "cpu.cfs_quota_us=-1\n", "cpu.shares=1024\n",
					   "cpuacct.usage=0\n", NULL };
	static const char *const cpuset[] = { "cgroup.procs=", "tasks=", "cpuset.cpus=0-3\n",
					      "cpuset.mems=0\n", NULL };
	static const char *const pids[] = { "cgroup.procs=", "tasks=", "pids.max=max\n", NULL };

	hier(at("memory"), mem);
	if (memsw)
		put(at("memory/memory.memsw.limit_in_bytes"), "9223372036854771712\n");
	hier(at("cpu,cpuacct"), cpu);
	if (with_cpuset)
		hier(at("cpuset"), cpuset);
	hier(at("pids"), pids);
}

/* A cgroup2 root at rel ("" for pure v2) offering ctrls. */
static void fake_v2(const char *rel, const char *ctrls, const char *subtree, bool swap)
{
	static const char *const files[] = {
		"cgroup.procs=",   "cgroup.kill=",   "cgroup.subtree_control=",
		"memory.max=max\n", "memory.events=low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n",
		"cpu.max=max 100000\n", "cpu.weight=100\n", "cpuset.cpus=", "pids.max=max\n",
		NULL,
	};
	const char *dir = at("%s", rel);

	hier(dir, files);
	put(at("%s%scgroup.controllers", rel, *rel ? "/" : ""), ctrls);
	put(at("%s%scgroup.subtree_control", rel, *rel ? "/" : ""), subtree);
	if (swap)
		put(at("%s%smemory.swap.max", rel, *rel ? "/" : ""), "max\n");
}

static void detect(void)
{
	cr_assert_eq(cg_host_detect(&h, tmp), 0);
}

static struct cg_limits no_limits(void)
{
	struct cg_limits l = { .cpu_quota_us = -1 };

	return l;
}

static struct cg_limits all_limits(void)
{
	struct cg_limits l = {
		.memory = 64 * MiB, .cpu_quota_us = 50000, .cpu_shares = 512, .pids_max = 64,
	};

	strcpy(l.cpuset_cpus, "1-2");
	return l;
}

static void create_ok(const struct cg_limits *l)
{
	int rc = cg_container_create(&h, id, l, &c, err, sizeof(err));

	cr_assert_eq(rc, 0, "create: %d %s", rc, err);
}

/* No <hier>/strata/<id> anywhere below tmp. */
static void assert_gone(void)
{
	static const char *const hiers[] = { "memory", "cpu,cpuacct", "cpuset", "pids", "unified", "" };

	for (size_t i = 0; i < sizeof(hiers) / sizeof(hiers[0]); i++)
		cr_assert(!exists(at("%s%sstrata/%s", hiers[i], *hiers[i] ? "/" : "", id)),
			  "%s/strata/%s left behind", hiers[i], id);
}

TestSuite(fake, .init = setup, .fini = teardown);

Test(fake, v1_writes_every_limit)
{
	struct cg_limits l = all_limits();

	fake_v1(true, true);
	detect();
	create_ok(&l);
	cr_assert_str_eq(c.dir[CG_MEMORY], at("memory/strata/%s", id));
	cr_assert_str_eq(c.dir[CG_CPU], at("cpu,cpuacct/strata/%s", id));
	cr_assert_str_eq(c.dir[CG_CPUACCT], c.dir[CG_CPU]);
	cr_assert_str_eq(c.dir[CG_CPUSET], at("cpuset/strata/%s", id));
	cr_assert_str_eq(c.dir[CG_PIDS], at("pids/strata/%s", id));
	cr_assert_null(c.dir[CG_IO]);
	cr_assert_null(c.v2_dir);
	cr_assert(c.has_swap);
	cr_assert_str_eq(slurp(at("memory/strata/%s/memory.limit_in_bytes", id)), "67108864");
	/* docker: unset --memory-swap means as much swap as memory */
	cr_assert_str_eq(slurp(at("memory/strata/%s/memory.memsw.limit_in_bytes", id)), "134217728");
	cr_assert_str_eq(slurp(at("cpu,cpuacct/strata/%s/cpu.cfs_period_us", id)), "100000");
	cr_assert_str_eq(slurp(at("cpu,cpuacct/strata/%s/cpu.cfs_quota_us", id)), "50000");
	cr_assert_str_eq(slurp(at("cpu,cpuacct/strata/%s/cpu.shares", id)), "512");
	/* strata/ copies the root's cpus and mems; the container its mems */
	cr_assert_str_eq(slurp(at("cpuset/strata/cpuset.cpus")), "0-3");
	cr_assert_str_eq(slurp(at("cpuset/strata/cpuset.mems")), "0");
	cr_assert_str_eq(slurp(at("cpuset/strata/%s/cpuset.cpus", id)), "1-2");
	cr_assert_str_eq(slurp(at("cpuset/strata/%s/cpuset.mems", id)), "0");
	cr_assert_str_eq(slurp(at("pids/strata/%s/pids.max", id)), "64");

	cr_assert_eq(cg_container_destroy(&c), 0);
	assert_gone();
	cr_assert(exists(at("memory/strata")), "strata/ itself is shared and stays");
	cr_assert_null(c.dir[CG_MEMORY], "destroy frees c");
	cr_assert_eq(cg_container_destroy(&c), 0, "a second destroy is a no-op");
}

Test(fake, v1_minimal_makes_pids_and_cpuacct_only)
{
	struct cg_limits l = no_limits();

	fake_v1(true, true);
	detect();
	create_ok(&l);
	cr_assert_null(c.dir[CG_MEMORY]);
	cr_assert_null(c.dir[CG_CPUSET]);
	cr_assert_str_eq(c.dir[CG_PIDS], at("pids/strata/%s", id));
	cr_assert_str_eq(c.dir[CG_CPUACCT], at("cpu,cpuacct/strata/%s", id));
	/* co-mounted with cpuacct: the process is in that cpu cgroup too */
	cr_assert_str_eq(c.dir[CG_CPU], c.dir[CG_CPUACCT]);
	cr_assert(!exists(at("memory/strata/%s", id)));
	cr_assert(!exists(at("cpuset/strata/%s", id)));
	cr_assert_str_eq(slurp(at("pids/strata/%s/pids.max", id)), "", "no pids limit asked");
	cr_assert_str_eq(slurp(at("cpu,cpuacct/strata/%s/cpu.cfs_quota_us", id)), "");
}

Test(fake, v1_swap_variants)
{
	struct cg_limits l = no_limits();

	fake_v1(true, true);
	detect();
	l.memory = 32 * MiB;
	l.memory_swap = CG_UNLIMITED;
	create_ok(&l);
	cr_assert_str_eq(slurp(at("memory/strata/%s/memory.memsw.limit_in_bytes", id)), "-1");
	cr_assert_eq(cg_container_destroy(&c), 0);

	l.memory_swap = 48 * MiB;
	create_ok(&l);
	cr_assert_str_eq(slurp(at("memory/strata/%s/memory.memsw.limit_in_bytes", id)), "50331648");
	cr_assert_str_eq(slurp(at("memory/strata/%s/memory.limit_in_bytes", id)), "33554432");
}

Test(fake, v1_without_swap_accounting)
{
	struct cg_limits l = no_limits();

	fake_v1(false, true);
	detect();
	l.memory = 32 * MiB;
	l.memory_swap = 64 * MiB;
	create_ok(&l);
	cr_assert_not(c.has_swap);
	cr_assert_str_eq(slurp(at("memory/strata/%s/memory.limit_in_bytes", id)), "33554432");
	cr_assert(!exists(at("memory/strata/%s/memory.memsw.limit_in_bytes", id)));
}

Test(fake, v1_keeps_an_existing_strata_cpuset)
{
	struct cg_limits l = no_limits();

	fake_v1(true, true);
	mkd(at("cpuset/strata"));
	put(at("cpuset/strata/cpuset.cpus"), "2-3\n");
	put(at("cpuset/strata/cpuset.mems"), "0\n");
	detect();
	create_ok(&l);
	cr_assert_eq(cg_container_destroy(&c), 0);
	strcpy(l.cpuset_cpus, "3");
	create_ok(&l);
	cr_assert_str_eq(slurp(at("cpuset/strata/cpuset.cpus")), "2-3");
	cr_assert_str_eq(slurp(at("cpuset/strata/%s/cpuset.cpus", id)), "3");
}

Test(fake, v2_enables_controllers_and_writes_limits)
{
	struct cg_limits l = all_limits();

	fake_v2("", "cpuset cpu io memory hugetlb pids rdma misc\n", "", true);
	detect();
	create_ok(&l);
	cr_assert_str_eq(c.v2_dir, at("strata/%s", id));
	for (int i = 0; i < CG_NCTRL; i++)
		cr_assert_str_eq(c.dir[i], c.v2_dir, "controller %d", i);
	cr_assert_str_eq(slurp(at("cgroup.subtree_control")), "+cpuset +cpu +io +memory +pids");
	cr_assert_str_eq(slurp(at("strata/cgroup.subtree_control")),
			 "+cpuset +cpu +io +memory +pids");
	cr_assert_str_eq(slurp(at("strata/%s/cgroup.subtree_control", id)), "",
			 "the container's own cgroup enables nothing");
	cr_assert(c.has_swap);
	cr_assert_str_eq(slurp(at("strata/%s/memory.max", id)), "67108864");
	cr_assert_str_eq(slurp(at("strata/%s/memory.swap.max", id)), "67108864");
	cr_assert_str_eq(slurp(at("strata/%s/cpu.max", id)), "50000 100000");
	/* 1 + (512 - 2) * 9999 / 262142 */
	cr_assert_str_eq(slurp(at("strata/%s/cpu.weight", id)), "20");
	cr_assert_str_eq(slurp(at("strata/%s/cpuset.cpus", id)), "1-2");
	cr_assert_str_eq(slurp(at("strata/%s/pids.max", id)), "64");
	cr_assert_eq(cg_container_destroy(&c), 0);
	assert_gone();
}

Test(fake, v2_swap_and_weight_edges)
{
	struct cg_limits l = no_limits();

	fake_v2("", "cpu memory pids\n", "", true);
	detect();
	l.memory = 10 * MiB;
	l.memory_swap = CG_UNLIMITED;
	l.cpu_shares = 262144 * 4; /* clamped like v1 */
	l.cpu_quota_us = 150000;
	l.cpu_period_us = 50000;
	create_ok(&l);
	cr_assert_str_eq(slurp(at("strata/%s/memory.swap.max", id)), "max");
	cr_assert_str_eq(slurp(at("strata/%s/cpu.weight", id)), "10000");
	cr_assert_str_eq(slurp(at("strata/%s/cpu.max", id)), "150000 50000");
	cr_assert_null(c.dir[CG_CPUSET]);
	cr_assert_eq(cg_container_destroy(&c), 0);

	l.memory_swap = 10 * MiB; /* memory+swap == memory: no swap */
	l.cpu_shares = 2;
	create_ok(&l);
	cr_assert_str_eq(slurp(at("strata/%s/memory.swap.max", id)), "0");
	cr_assert_str_eq(slurp(at("strata/%s/cpu.weight", id)), "1");
}

Test(fake, v2_no_swap_file)
{
	struct cg_limits l = no_limits();

	fake_v2("", "memory pids\n", "", false);
	detect();
	l.memory = 10 * MiB;
	create_ok(&l);
	cr_assert_not(c.has_swap);
	cr_assert_str_eq(slurp(at("strata/%s/memory.max", id)), "10485760");
}

Test(fake, v2_leaves_enabled_controllers_alone)
{
	struct cg_limits l = no_limits();

	fake_v2("", "cpuset cpu io memory pids\n", "cpuset cpu io memory pids\n", true);
	detect();
	create_ok(&l);
	cr_assert_str_eq(slurp(at("cgroup.subtree_control")), "cpuset cpu io memory pids");
	cr_assert_str_eq(slurp(at("strata/cgroup.subtree_control")),
			 "+cpuset +cpu +io +memory +pids");
}

Test(fake, v2_missing_controller_fails_cleanly)
{
	struct cg_limits l = no_limits();

	fake_v2("", "cpu memory pids\n", "", true);
	detect();
	strcpy(l.cpuset_cpus, "0");
	cr_assert_eq(cg_container_create(&h, id, &l, &c, err, sizeof(err)), -ENODEV);
	cr_assert(strstr(err, "cpuset") && strstr(err, "ENODEV"), "%s", err);
	cr_assert_null(c.v2_dir);
	assert_gone();
}

Test(fake, hybrid_adds_an_empty_unified_cgroup)
{
	struct cg_limits l = all_limits();
	const char *dirs[] = { "memory", "cpu,cpuacct", "cpuset", "pids", "unified" };

	fake_v1(true, true);
	fake_v2("unified", "", "", false);
	detect();
	cr_assert_eq(h.layout, CG_LAYOUT_HYBRID);
	create_ok(&l);
	cr_assert_str_eq(c.v2_dir, at("unified/strata/%s", id));
	cr_assert_str_eq(c.dir[CG_MEMORY], at("memory/strata/%s", id));
	cr_assert_str_eq(slurp(at("unified/cgroup.subtree_control")), "", "nothing to enable");
	cr_assert_str_eq(slurp(at("memory/strata/%s/memory.limit_in_bytes", id)), "67108864");

	cr_assert_eq(cg_container_attach(&c, 4242, false, err, sizeof(err)), 0, "%s", err);
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++)
		cr_assert_str_eq(slurp(at("%s/strata/%s/cgroup.procs", dirs[i], id)), "4242",
				 "%s", dirs[i]);
	/* A process cloned into the cgroup2 directory joins only the others. */
	cr_assert_eq(cg_container_attach(&c, 4343, true, err, sizeof(err)), 0, "%s", err);
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++)
		cr_assert_str_eq(slurp(at("%s/strata/%s/cgroup.procs", dirs[i], id)),
				 strcmp(dirs[i], "unified") ? "4343" : "4242", "%s", dirs[i]);
	cr_assert_eq(cg_container_destroy(&c), 0);
	assert_gone();
}

Test(fake, hybrid_with_memory_on_cgroup2)
{
	static const char *const cpu[] = { "cgroup.procs=", "cpu.cfs_period_us=", "cpu.cfs_quota_us=",
					   "cpu.shares=", NULL };
	static const char *const pids[] = { "cgroup.procs=", "pids.max=", NULL };
	struct cg_limits l = no_limits();

	hier(at("cpu,cpuacct"), cpu);
	hier(at("pids"), pids);
	fake_v2("unified", "memory\n", "", true);
	detect();
	cr_assert(h.is_v2[CG_MEMORY]);
	l.memory = 20 * MiB;
	l.cpu_quota_us = 25000;
	create_ok(&l);
	cr_assert_str_eq(c.dir[CG_MEMORY], c.v2_dir);
	cr_assert_str_eq(c.v2_dir, at("unified/strata/%s", id));
	cr_assert_str_eq(slurp(at("unified/cgroup.subtree_control")), "+memory");
	cr_assert_str_eq(slurp(at("unified/strata/%s/memory.max", id)), "20971520");
	cr_assert_str_eq(slurp(at("unified/strata/%s/memory.swap.max", id)), "20971520");
	cr_assert_str_eq(slurp(at("cpu,cpuacct/strata/%s/cpu.cfs_quota_us", id)), "25000");
	cr_assert_eq(cg_container_destroy(&c), 0);
	assert_gone();
}

Test(fake, bad_input_makes_nothing)
{
	static const char *const ids[] = { "", "../x", "a/b", ".hidden", "..", "sp ace" };
	struct cg_limits l;

	fake_v1(true, true);
	detect();
	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		l = no_limits();
		cr_assert_eq(cg_container_create(&h, ids[i], &l, &c, err, sizeof(err)), -EINVAL,
			     "id \"%s\"", ids[i]);
	}
	l = no_limits();
	l.memory_swap = 64 * MiB; /* without --memory */
	cr_assert_eq(cg_container_create(&h, id, &l, &c, err, sizeof(err)), -EINVAL);
	l.memory = 128 * MiB; /* memory+swap below memory */
	cr_assert_eq(cg_container_create(&h, id, &l, &c, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "below"), "%s", err);
	l = no_limits();
	l.cpu_quota_us = 500;
	cr_assert_eq(cg_container_create(&h, id, &l, &c, err, sizeof(err)), -EINVAL);
	l.cpu_quota_us = -2;
	cr_assert_eq(cg_container_create(&h, id, &l, &c, err, sizeof(err)), -EINVAL);
	l = no_limits();
	l.cpu_quota_us = 50000;
	l.cpu_period_us = 5000000;
	cr_assert_eq(cg_container_create(&h, id, &l, &c, err, sizeof(err)), -EINVAL);
	l = no_limits();
	strcpy(l.cpuset_cpus, "0-x");
	cr_assert_eq(cg_container_create(&h, id, &l, &c, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "0-x"), "%s", err);
	cr_assert(!exists(at("pids/strata")), "refused before any mkdir");
	cr_assert_null(c.dir[CG_PIDS]);
}

Test(fake, failure_midway_removes_everything)
{
	struct cg_limits l = all_limits();

	fake_v1(true, true);
	cr_assert_eq(unlink(at("cpu,cpuacct/cpu.cfs_quota_us")), 0);
	detect();
	cr_assert_eq(cg_container_create(&h, id, &l, &c, err, sizeof(err)), -ENOENT);
	cr_assert(strstr(err, "cpu.cfs_quota_us") && strstr(err, "ENOENT") && strstr(err, "50000"),
		  "%s", err);
	cr_assert_null(c.dir[CG_MEMORY]);
	cr_assert(exists(at("memory/strata")));
	assert_gone();
}

Test(fake, existing_id_is_not_adopted)
{
	struct cg_limits l = no_limits();

	fake_v1(true, true);
	mkd(at("pids/strata"));
	mkd(at("pids/strata/%s", id));
	detect();
	cr_assert_eq(cg_container_create(&h, id, &l, &c, err, sizeof(err)), -EEXIST);
	cr_assert(strstr(err, "EEXIST"), "%s", err);
	cr_assert(exists(at("pids/strata/%s", id)), "someone else's cgroup stays");
	cr_assert(!exists(at("cpu,cpuacct/strata/%s", id)));
}

Test(fake, missing_v1_controller)
{
	struct cg_limits l = no_limits();

	fake_v1(true, false);
	detect();
	strcpy(l.cpuset_cpus, "0");
	cr_assert_eq(cg_container_create(&h, id, &l, &c, err, sizeof(err)), -ENODEV);
	assert_gone();
}

Test(fake, pids_and_oom)
{
	struct cg_limits l = no_limits();
	pid_t *pids;
	bool killed = true;

	fake_v1(true, true);
	detect();
	cr_assert_eq(cg_container_oom_killed(&c, &killed), 0, "no cgroup: nothing killed");
	cr_assert_not(killed);
	l.memory = 64 * MiB;
	create_ok(&l);
	put(at("pids/strata/%s/cgroup.procs", id), "10\n20\n");
	cr_assert_eq(cg_container_pids(&c, &pids), 2);
	cr_assert(pids[0] == 10 && pids[1] == 20);
	free(pids);

	put(at("memory/strata/%s/memory.oom_control", id), "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n");
	cr_assert_eq(cg_container_oom_killed(&c, &killed), 0);
	cr_assert_not(killed);
	put(at("memory/strata/%s/memory.oom_control", id), "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n");
	cr_assert_eq(cg_container_oom_killed(&c, &killed), 0);
	cr_assert(killed);
	put(at("memory/strata/%s/memory.oom_control", id), "oom_kill_disable 0\nunder_oom 0\n");
	cr_assert_eq(cg_container_oom_killed(&c, &killed), -ENODATA, "a kernel before 4.13");
	/* a stand-in tree's pids are not real: destroy must not kill 10 and 20 */
	cr_assert_eq(cg_container_destroy(&c), 0);
	assert_gone();
}

Test(fake, v2_oom_from_memory_events)
{
	struct cg_limits l = no_limits();
	bool killed = false;

	fake_v2("", "memory pids\n", "", true);
	detect();
	l.memory = 64 * MiB;
	create_ok(&l);
	put(at("strata/%s/memory.events", id), "low 0\nhigh 0\nmax 9\noom 1\noom_kill 1\n");
	cr_assert_eq(cg_container_oom_killed(&c, &killed), 0);
	cr_assert(killed);
}

Test(fake, find_rebuilds_the_container)
{
	struct cg_limits l = all_limits();

	fake_v1(true, true);
	fake_v2("unified", "", "", false);
	detect();
	create_ok(&l);
	cr_assert_eq(cg_container_find(&h, id, &c2), 0);
	for (int i = 0; i < CG_NCTRL; i++) {
		if (c.dir[i])
			cr_assert_str_eq(c2.dir[i], c.dir[i], "controller %d", i);
		else
			cr_assert_null(c2.dir[i], "controller %d", i);
	}
	cr_assert_str_eq(c2.v2_dir, c.v2_dir);
	cr_assert_eq(cg_container_destroy(&c2), 0);
	assert_gone();
	cr_assert_eq(cg_container_find(&h, id, &c2), -ENOENT);
	cr_assert_eq(cg_container_find(&h, "../..", &c2), -EINVAL);
}

Test(fake, find_on_v2)
{
	struct cg_limits l = no_limits();

	fake_v2("", "cpu memory pids\n", "", true);
	detect();
	create_ok(&l);
	cr_assert_eq(cg_container_find(&h, id, &c2), 0);
	cr_assert_str_eq(c2.v2_dir, c.v2_dir);
	cr_assert_str_eq(c2.dir[CG_MEMORY], c.v2_dir);
	cr_assert_str_eq(c2.dir[CG_PIDS], c.v2_dir);
	cr_assert_null(c2.dir[CG_CPUSET]);
}

Test(fake, destroy_removes_nested_cgroups)
{
	struct cg_limits l = no_limits();

	fake_v1(true, true);
	detect();
	create_ok(&l);
	mkd(at("pids/strata/%s/sub", id));
	mkd(at("pids/strata/%s/sub/deeper", id));
	put(at("pids/strata/%s/sub/deeper/cgroup.procs", id), "");
	cr_assert_eq(cg_container_destroy(&c), 0);
	assert_gone();
}

Test(fake, destroy_refuses_foreign_paths)
{
	fake_v1(true, true);
	mkd(at("pids/other"));
	mkd(at("pids/other/x"));
	c.dir[CG_PIDS] = strdup(at("pids/other/x"));
	cr_assert_eq(cg_container_destroy(&c), -EINVAL);
	cr_assert(exists(at("pids/other/x")));
	free(c.dir[CG_PIDS]);
	c.dir[CG_PIDS] = strdup(at("pids/strata/../../x"));
	cr_assert_eq(cg_container_destroy(&c), -EINVAL);
	free(c.dir[CG_PIDS]);
	mkd(at("strata"));
	mkd(at("strata/x"));
	c.dir[CG_PIDS] = strdup(at("pids/../strata/x"));
	cr_assert_eq(cg_container_destroy(&c), -EINVAL, "no climbing out of the mount either");
	cr_assert(exists(at("strata/x")));
	cg_container_free(&c);
}

/* ---- the real host (root only) ---- */

/* The v1 devices hierarchy: always a directory, and the device policy goes
 * there (a stand-in file keeps only the last devices.allow line). */
Test(fake, v1_devices_policy)
{
	static const char *const dev[] = { "cgroup.procs=", "tasks=", "devices.allow=",
					   "devices.deny=", "devices.list=a *:* rwm\n", NULL };
	struct cg_limits l = no_limits();

	fake_v1(false, false);
	hier(at("devices"), dev);
	detect();
	cr_assert_str_eq(h.v1_devices, at("devices"));
	create_ok(&l);
	cr_assert_str_eq(c.dev_dir, at("devices/strata/%s", id));
	cr_assert_eq(cg_container_devices(&c, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(slurp(at("devices/strata/%s/devices.deny", id)), "a");
	cr_assert_str_eq(slurp(at("devices/strata/%s/devices.allow", id)), "c 136:* rwm");
	cr_assert_eq(cg_container_find(&h, id, &c2), 0);
	cr_assert_str_eq(c2.dev_dir, c.dev_dir);
	cg_container_free(&c2);
	cr_assert_eq(cg_container_destroy(&c), 0);
	cr_assert(!exists(at("devices/strata/%s", id)), "devices cgroup left behind");
}

/* Nothing could enforce the policy: refused, so the runner does not run. */
Test(fake, v1_without_devices_refuses_the_policy)
{
	struct cg_limits l = no_limits();

	fake_v1(false, false);
	detect();
	create_ok(&l);
	cr_assert_null(c.dev_dir);
	cr_assert_eq(cg_container_devices(&c, err, sizeof(err)), -ENODEV);
	cr_assert(strstr(err, "device policy"), "%s", err);
}

static void host_setup(void)
{
	new_id();
	tmp[0] = '\0'; /* no temporary tree */
	if (geteuid() != 0)
		cr_skip_test("needs root");
	if (cg_host_detect(&h, NULL) < 0)
		cr_skip_test("no cgroup filesystem");
}

/* One of the container's kernel files, newline dropped. */
static const char *kread(const char *dir, const char *name)
{
	static char buf[4][256];
	static int next;
	char path[PATH_MAX], *b = buf[next++ % 4];
	int n;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	n = cg_read_file(AT_FDCWD, path, b, sizeof(buf[0]));
	cr_assert_geq(n, 0, "%s: %s", path, strerror(-n));
	while (n > 0 && b[n - 1] == '\n')
		b[--n] = '\0';
	return b;
}

/* A child that waits for a byte on a pipe, then runs fn (if any). */
static pid_t spawn(int *go, void (*fn)(void))
{
	int fds[2];
	pid_t pid;
	char ch;

	cr_assert_eq(pipe(fds), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		close(fds[1]);
		if (read(fds[0], &ch, 1) != 1)
			_exit(2);
		if (fn)
			fn();
		for (;;)
			pause();
	}
	close(fds[0]);
	*go = fds[1];
	return pid;
}

static void release(int go)
{
	cr_assert_eq(write(go, "x", 1), 1);
	close(go);
}

static void assert_host_gone(void)
{
	char pattern[PATH_MAX];
	glob_t g;
	int rc;

	snprintf(pattern, sizeof(pattern), "/sys/fs/cgroup/*/strata/%s", id);
	rc = glob(pattern, 0, NULL, &g);
	if (rc == 0)
		cr_log_error("left behind: %s", g.gl_pathv[0]);
	globfree(&g);
	cr_assert_eq(rc, GLOB_NOMATCH);
	snprintf(pattern, sizeof(pattern), "/sys/fs/cgroup/strata/%s", id);
	cr_assert(!exists(pattern));
}

TestSuite(host, .init = host_setup, .fini = teardown, .timeout = 60);

Test(host, limits_attach_destroy)
{
	struct cg_limits l = all_limits();
	struct cg_proc p;
	pid_t *pids;
	int go, n, status;
	bool found = false;
	char want[128];

	strcpy(l.cpuset_cpus, "0");
	l.cpu_period_us = 100000;
	create_ok(&l);
	if (h.is_v2[CG_MEMORY])
		cr_assert_str_eq(kread(c.dir[CG_MEMORY], "memory.max"), "67108864");
	else
		cr_assert_str_eq(kread(c.dir[CG_MEMORY], "memory.limit_in_bytes"), "67108864");
	if (h.is_v2[CG_CPU]) {
		cr_assert_str_eq(kread(c.dir[CG_CPU], "cpu.max"), "50000 100000");
	} else {
		cr_assert_str_eq(kread(c.dir[CG_CPU], "cpu.cfs_quota_us"), "50000");
		cr_assert_str_eq(kread(c.dir[CG_CPU], "cpu.cfs_period_us"), "100000");
		cr_assert_str_eq(kread(c.dir[CG_CPU], "cpu.shares"), "512");
	}
	cr_assert_str_eq(kread(c.dir[CG_CPUSET], "cpuset.cpus"), "0");
	cr_assert_str_eq(kread(c.dir[CG_PIDS], "pids.max"), "64");

	child = spawn(&go, NULL);
	cr_assert_eq(cg_container_attach(&c, child, false, err, sizeof(err)), 0, "attach: %s", err);
	release(go);
	cr_assert_eq(cg_proc_read(&h, "/proc", child, &p), 0);
	snprintf(want, sizeof(want), "/strata/%s", id);
	for (int i = 0; i < CG_NCTRL; i++) {
		if (c.dir[i])
			cr_assert_str_eq(p.path[i], want, "controller %d", i);
	}
	if (c.v2_dir)
		cr_assert_str_eq(p.v2_path, want);
	cg_proc_free(&p);
	n = cg_container_pids(&c, &pids);
	cr_assert_geq(n, 1);
	for (int i = 0; i < n; i++)
		found |= pids[i] == child;
	free(pids);
	cr_assert(found, "the attached child is listed");

	cr_assert_eq(cg_container_destroy(&c), 0);
	cr_assert_eq(waitpid(child, &status, 0), child);
	child = -1;
	cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	assert_host_gone();
}

static void eat_200m(void)
{
	size_t len = 200 * MiB;
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		_exit(3);
	for (size_t i = 0; i < len; i += 4096)
		p[i] = 1;
	_exit(0); /* survived: the limit did not hold */
}

Test(host, oom_kill_is_reported)
{
	struct cg_limits l = no_limits();
	int go, status;
	bool killed = true;

	l.memory = 64 * MiB;
	create_ok(&l);
	cr_assert_eq(cg_container_oom_killed(&c, &killed), 0);
	cr_assert_not(killed);
	child = spawn(&go, eat_200m);
	cr_assert_eq(cg_container_attach(&c, child, false, err, sizeof(err)), 0, "attach: %s", err);
	release(go);
	cr_assert_eq(waitpid(child, &status, 0), child);
	child = -1;
	cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "status %#x", status);
	cr_assert_eq(cg_container_oom_killed(&c, &killed), 0);
	cr_assert(killed);
	cr_assert_eq(cg_container_destroy(&c), 0);
	assert_host_gone();
}

/* A process that moved itself into a sub-cgroup (as a container may
 * through its cgroup namespace) is still killed, and the sub-cgroup gone. */
Test(host, nested_cgroup_is_cleaned_up)
{
	struct cg_limits l = no_limits();
	const char *pd;
	char sub[PATH_MAX], pid[32];
	int go, status, fd;

	create_ok(&l);
	pd = c.dir[CG_PIDS] ? c.dir[CG_PIDS] : c.v2_dir;
	cr_assert_not_null(pd);
	child = spawn(&go, NULL);
	cr_assert_eq(cg_container_attach(&c, child, false, err, sizeof(err)), 0, "attach: %s", err);
	snprintf(sub, sizeof(sub), "%s/inner", pd);
	cr_assert_eq(mkdir(sub, 0755), 0);
	strcat(sub, "/cgroup.procs");
	fd = open(sub, O_WRONLY);
	cr_assert_geq(fd, 0);
	snprintf(pid, sizeof(pid), "%d", (int)child);
	cr_assert_eq(write(fd, pid, strlen(pid)), (ssize_t)strlen(pid));
	close(fd);
	release(go);
	cr_assert_eq(cg_container_destroy(&c), 0);
	cr_assert_eq(waitpid(child, &status, 0), child);
	child = -1;
	cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	assert_host_gone();
}

Test(host, two_containers_side_by_side)
{
	struct cg_limits l = no_limits();
	char id2[80];

	l.memory = 32 * MiB;
	create_ok(&l);
	snprintf(id2, sizeof(id2), "%s-b", id);
	cr_assert_eq(cg_container_create(&h, id2, &l, &c2, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(cg_container_destroy(&c), 0);
	cr_assert_not_null(c2.dir[CG_MEMORY]);
	cr_assert(exists(c2.dir[CG_MEMORY]), "the other container is untouched");
	cr_assert_eq(cg_container_destroy(&c2), 0);
	assert_host_gone();
}

/* The kernel refuses a CPU the host lacks: a clear error, nothing left. */
Test(host, kernel_refusal_leaves_nothing)
{
	struct cg_limits l = no_limits();

	l.memory = 32 * MiB;
	l.pids_max = 10;
	strcpy(l.cpuset_cpus, "1023");
	cr_assert_lt(cg_container_create(&h, id, &l, &c, err, sizeof(err)), 0);
	cr_assert(strstr(err, "cpuset.cpus") && strstr(err, "1023"), "%s", err);
	cr_assert_null(c.dir[CG_MEMORY]);
	assert_host_gone();
}

/* Unit tests for common/cgroup.c and common/cgroup_read.c.
 *
 * Every cgroup tree is built at test time in a temporary directory (no
 * fixture files): v1 with separate cpu and cpuacct mounts (as on the
 * development host) and co-mounted "cpu,cpuacct", pure v2, and hybrid.
 * The host suite checks the real machine, deriving what to expect from
 * /proc/self/mountinfo and the cgroup files rather than hard-coding it. */
#include "cgroup.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define UNL_V1 "9223372036854771712\n" /* v1 "no limit": LONG_MAX page-rounded */
#define MiB (1024ULL * 1024)

static char tmp[64];
static struct cg_host h;
static struct cg_proc p;

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void setup(void)
{
	strcpy(tmp, "/tmp/test_cgroup-XXXXXX");
	cr_assert_not_null(mkdtemp(tmp));
}

static void teardown(void)
{
	cg_proc_free(&p);
	cg_host_free(&h);
	nftw(tmp, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* tmp/rel, in one of a few rotating buffers so several can be live. */
static const char *at(const char *rel)
{
	static char buf[8][PATH_MAX];
	static int next;
	char *b = buf[next++ % 8];

	snprintf(b, PATH_MAX, "%s%s%s", tmp, *rel ? "/" : "", rel);
	return b;
}

/* mkdir -p tmp/rel */
static void mkdirs(const char *rel)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", tmp, rel);
	for (char *s = path + strlen(tmp) + 1; (s = strchr(s, '/')); s++) {
		*s = '\0';
		cr_assert(mkdir(path, 0755) == 0 || errno == EEXIST, "mkdir %s: %m", path);
		*s = '/';
	}
	cr_assert(mkdir(path, 0755) == 0 || errno == EEXIST, "mkdir %s: %m", path);
}

/* Writes text to tmp/rel, creating its directories. */
static void put(const char *rel, const char *text)
{
	char dir[PATH_MAX], *slash;
	FILE *f;

	snprintf(dir, sizeof(dir), "%s", rel);
	slash = strrchr(dir, '/');
	if (slash) {
		*slash = '\0';
		mkdirs(dir);
	}
	f = fopen(at(rel), "w");
	cr_assert_not_null(f, "create %s: %m", at(rel));
	cr_assert_eq(fputs(text, f) >= 0 && fclose(f) == 0, true, "write %s", rel);
}

static void build_v1(bool comount)
{
	static const char *const dirs[] = { "memory", "cpuset", "blkio", "pids", "systemd",
					    "devices", NULL };

	for (const char *const *d = dirs; *d; d++)
		mkdirs(*d);
	if (!comount) {
		mkdirs("cpu");
		mkdirs("cpuacct");
		return;
	}
	/* As systemd lays it out: the real directory plus two symlinks. */
	mkdirs("cpu,cpuacct");
	cr_assert_eq(symlink("cpu,cpuacct", at("cpu")), 0);
	cr_assert_eq(symlink("cpu,cpuacct", at("cpuacct")), 0);
}

static void build_v2(void)
{
	put("cgroup.controllers", "cpuset cpu io memory hugetlb pids rdma misc\n");
}

static void build_hybrid(const char *unified_controllers)
{
	build_v1(false);
	put("unified/cgroup.controllers", unified_controllers);
}

static void detect(void)
{
	int rc = cg_host_detect(&h, tmp);

	cr_assert_eq(rc, 0, "cg_host_detect: %d", rc);
}

static void proc(const char *text)
{
	int rc = cg_proc_parse(&h, text, &p);

	cr_assert_eq(rc, 0, "cg_proc_parse: %d", rc);
}

static void expect_mount(enum cg_ctrl c, const char *rel, bool v2)
{
	cr_assert_not_null(h.mount[c], "controller %d has no mount", c);
	cr_assert_str_eq(h.mount[c], at(rel), "controller %d", c);
	cr_assert_eq(h.is_v2[c], v2, "controller %d is_v2", c);
}

/* ---- layout detection on fake trees ---- */

TestSuite(layout, .init = setup, .fini = teardown);

Test(layout, v1_separate_cpu_and_cpuacct)
{
	build_v1(false);
	detect();
	cr_assert_eq(h.layout, CG_LAYOUT_V1);
	expect_mount(CG_MEMORY, "memory", false);
	expect_mount(CG_CPU, "cpu", false);
	expect_mount(CG_CPUACCT, "cpuacct", false);
	expect_mount(CG_CPUSET, "cpuset", false);
	expect_mount(CG_IO, "blkio", false);
	expect_mount(CG_PIDS, "pids", false);
	cr_assert_null(h.v2_mount);
	cr_assert_str_eq(h.v1_name_systemd, at("systemd"));
}

Test(layout, v1_comounted_cpu_cpuacct_prefers_the_real_directory)
{
	build_v1(true);
	detect();
	cr_assert_eq(h.layout, CG_LAYOUT_V1);
	expect_mount(CG_CPU, "cpu,cpuacct", false);
	expect_mount(CG_CPUACCT, "cpu,cpuacct", false);
}

Test(layout, pure_v2)
{
	build_v2();
	mkdirs("user.slice"); /* a cgroup, not a v1 hierarchy */
	detect();
	cr_assert_eq(h.layout, CG_LAYOUT_V2);
	cr_assert_str_eq(h.v2_mount, tmp);
	for (int c = 0; c < CG_NCTRL; c++) {
		cr_assert_str_eq(h.mount[c], tmp, "controller %d", c);
		cr_assert(h.is_v2[c], "controller %d not v2", c);
	}
	cr_assert_null(h.v1_name_systemd);
}

Test(layout, hybrid_unified_without_controllers)
{
	build_hybrid("");
	detect();
	cr_assert_eq(h.layout, CG_LAYOUT_HYBRID);
	cr_assert_str_eq(h.v2_mount, at("unified"));
	expect_mount(CG_MEMORY, "memory", false);
	expect_mount(CG_CPU, "cpu", false);
	expect_mount(CG_CPUACCT, "cpuacct", false);
}

Test(layout, hybrid_unified_takes_controllers_no_v1_hierarchy_holds)
{
	build_hybrid("hugetlb memory io\n");
	cr_assert_eq(rmdir(at("memory")), 0);
	detect();
	cr_assert_eq(h.layout, CG_LAYOUT_HYBRID);
	expect_mount(CG_MEMORY, "unified", true);
	expect_mount(CG_IO, "blkio", false); /* blkio holds it on v1 */
	expect_mount(CG_CPU, "cpu", false);
}

Test(layout, empty_tree_is_no_cgroup_filesystem)
{
	put("README", "not a cgroup\n");
	cr_assert_eq(cg_host_detect(&h, tmp), -ENOENT);
	cr_assert_eq(h.layout, CG_LAYOUT_NONE);
	cr_assert_eq(cg_host_detect(&h, at("absent")), -ENOENT);
}

/* ---- layout detection from mountinfo text ---- */

static void detect_mountinfo(const char *fmt)
{
	char text[4096];
	int rc;

	/* Every %1$s is the temporary directory. */
	snprintf(text, sizeof(text), fmt, tmp);
	rc = cg_host_parse_mountinfo(&h, text);
	cr_assert_eq(rc, 0, "cg_host_parse_mountinfo: %d", rc);
}

Test(mountinfo, host_like_hybrid, .init = setup, .fini = teardown)
{
	put("unified/cgroup.controllers", "hugetlb\n");
	detect_mountinfo(
		"25 1 8:1 / / rw - ext4 /dev/vda rw\n"
		"31 23 0:28 / %1$s rw,relatime - tmpfs tmpfs rw,mode=755\n"
		"32 31 0:29 / %1$s/cpu rw,relatime shared:7 - cgroup cgroup rw,cpu\n"
		"33 31 0:30 / %1$s/cpuacct rw,relatime - cgroup cgroup rw,cpuacct\n"
		"35 31 0:32 / %1$s/memory rw,relatime - cgroup cgroup rw,memory\n"
		"38 31 0:35 / %1$s/blkio rw,relatime - cgroup cgroup rw,blkio\n"
		"40 31 0:37 / %1$s/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd\n"
		"41 31 0:38 / %1$s/unified rw,relatime shared:9 master:2 - cgroup2 cgroup2 rw\n");
	cr_assert_eq(h.layout, CG_LAYOUT_HYBRID);
	cr_assert_str_eq(h.v2_mount, at("unified"));
	expect_mount(CG_CPU, "cpu", false);
	expect_mount(CG_CPUACCT, "cpuacct", false);
	expect_mount(CG_MEMORY, "memory", false);
	expect_mount(CG_IO, "blkio", false);
	cr_assert_null(h.mount[CG_PIDS]); /* neither v1 nor in cgroup.controllers */
	cr_assert_null(h.mount[CG_CPUSET]);
	cr_assert_str_eq(h.v1_name_systemd, at("systemd"));
}

Test(mountinfo, comounted_and_escaped_mount_point, .init = setup, .fini = teardown)
{
	detect_mountinfo("30 20 0:29 / %1$s/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n"
			 "31 20 0:30 / %1$s/my\\040pids rw - cgroup cgroup rw,pids\n");
	cr_assert_eq(h.layout, CG_LAYOUT_V1);
	expect_mount(CG_CPU, "cpu,cpuacct", false);
	expect_mount(CG_CPUACCT, "cpu,cpuacct", false);
	expect_mount(CG_PIDS, "my pids", false);
	cr_assert_null(h.mount[CG_CPUSET]); /* "cpu" must not match "cpuset" */
}

Test(mountinfo, pure_v2, .init = setup, .fini = teardown)
{
	build_v2();
	detect_mountinfo("30 20 0:26 / %1$s rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n");
	cr_assert_eq(h.layout, CG_LAYOUT_V2);
	expect_mount(CG_CPUACCT, "", true);
	expect_mount(CG_IO, "", true);
	expect_mount(CG_PIDS, "", true);
}

Test(mountinfo, no_cgroup_mount, .init = setup, .fini = teardown)
{
	cr_assert_eq(cg_host_parse_mountinfo(&h, "25 1 8:1 / / rw - ext4 /dev/vda rw\n"), -ENOENT);
	cr_assert_eq(h.layout, CG_LAYOUT_NONE);
}

Test(mountinfo, whole_hierarchy_beats_bind_mount_of_a_subgroup, .init = setup, .fini = teardown)
{
	detect_mountinfo("30 20 0:29 /sub %1$s/a rw - cgroup cgroup rw,memory\n"
			 "31 20 0:29 / %1$s/b rw - cgroup cgroup rw,memory\n");
	expect_mount(CG_MEMORY, "b", false);
	cr_assert_null(h.mount_root[CG_MEMORY]);
}

Test(mountinfo, subgroup_mount_root_is_stripped, .init = setup, .fini = teardown)
{
	char buf[16];
	int fd;

	put("mem/x/marker", "x\n");
	mkdirs("mem/d");
	detect_mountinfo("30 20 0:29 /docker/abc %1$s/mem rw - cgroup cgroup rw,memory\n");
	cr_assert_str_eq(h.mount_root[CG_MEMORY], "/docker/abc");
	proc("4:memory:/docker/abc/x\n");
	fd = cg_open_dir(&h, &p, CG_MEMORY);
	cr_assert_geq(fd, 0, "cg_open_dir: %d", fd);
	cr_assert_eq(cg_read_file(fd, "marker", buf, sizeof(buf)), 2);
	close(fd);
	fd = cg_open_ancestor(&h, &p, CG_MEMORY, 1);
	cr_assert_geq(fd, 0, "the mount's top: %d", fd);
	close(fd);
	cr_assert_eq(cg_open_ancestor(&h, &p, CG_MEMORY, 2), -ENOENT);
	cg_proc_free(&p);
	proc("4:memory:/docker/abcd\n"); /* a sibling sharing a prefix */
	cr_assert_eq(cg_open_dir(&h, &p, CG_MEMORY), -ENOENT);
}

/* ---- /proc/PID/cgroup ---- */

TestSuite(proc, .init = setup, .fini = teardown);

Test(proc, host_like_hybrid_lines)
{
	build_hybrid("hugetlb\n");
	detect();
	proc("9:name=systemd:/\n8:pids:/p\n7:blkio:/\n4:memory:/process_api/8a74\n"
	     "3:cpuset:/\n2:cpuacct:/acct\n1:cpu:/c\n0::/u\n");
	cr_assert_str_eq(p.path[CG_MEMORY], "/process_api/8a74");
	cr_assert_str_eq(p.path[CG_CPU], "/c");
	cr_assert_str_eq(p.path[CG_CPUACCT], "/acct");
	cr_assert_str_eq(p.path[CG_PIDS], "/p");
	cr_assert_str_eq(p.path[CG_IO], "/");
	cr_assert_str_eq(p.v2_path, "/u");
	cr_assert_not(cg_proc_is_root(&p));
}

Test(proc, pure_v2_every_controller_takes_the_unified_path)
{
	build_v2();
	detect();
	proc("0::/user.slice/app.scope\n");
	for (int c = 0; c < CG_NCTRL; c++)
		cr_assert_str_eq(p.path[c], "/user.slice/app.scope", "controller %d", c);
}

Test(proc, comounted_line_and_v2_controller_in_hybrid)
{
	build_v1(true);
	cr_assert_eq(rmdir(at("memory")), 0);
	put("unified/cgroup.controllers", "memory\n");
	detect();
	/* A stale v1 memory line must not win over the unified path. */
	proc("5:cpu,cpuacct:/a\n4:memory:/old\n0::/new\n");
	cr_assert_str_eq(p.path[CG_CPU], "/a");
	cr_assert_str_eq(p.path[CG_CPUACCT], "/a");
	cr_assert_str_eq(p.path[CG_MEMORY], "/new");
	cr_assert_null(p.path[CG_PIDS]); /* no pids line */
}

Test(proc, odd_lines)
{
	build_v2();
	detect();
	proc("garbage\n\n7:blkio\n0::/a:b/c (deleted)\n");
	cr_assert_str_eq(p.v2_path, "/a:b/c");
	cg_proc_free(&p);
	cr_assert_eq(cg_proc_parse(&h, "nothing here\n", &p), -EINVAL);
	cr_assert_eq(cg_proc_parse(&h, "", &p), -EINVAL);
}

Test(proc, root_cgroup)
{
	build_v1(false);
	detect();
	proc("5:cpu:/\n4:memory:/\n3:pids:/\n");
	cr_assert(cg_proc_is_root(&p));
	cg_proc_free(&p);
	proc("5:cpu:/\n4:memory:/m\n");
	cr_assert_not(cg_proc_is_root(&p));
	cg_proc_free(&p);
	proc("5:cpu:/c\n4:memory:/\n");
	cr_assert_not(cg_proc_is_root(&p));
	cg_proc_free(&p);
	cg_host_free(&h);
	build_v2();
	detect();
	proc("0::/\n");
	cr_assert(cg_proc_is_root(&p));
	cg_proc_free(&p);
	proc("0::/user.slice\n");
	cr_assert_not(cg_proc_is_root(&p));
}

Test(proc, read_from_a_proc_root)
{
	build_v2();
	detect();
	put("proc/42/cgroup", "0::/system.slice/x.service\n");
	cr_assert_eq(cg_proc_read(&h, at("proc"), 42, &p), 0);
	cr_assert_str_eq(p.path[CG_MEMORY], "/system.slice/x.service");
	cg_proc_free(&p);
	cr_assert_eq(cg_proc_read(&h, at("proc"), 43, &p), -ENOENT);
}

Test(proc, paths_leaving_the_hierarchy_are_refused)
{
	build_v2();
	mkdirs("a/b");
	detect();
	proc("0::/../a\n");
	cr_assert_eq(cg_open_dir(&h, &p, CG_MEMORY), -EINVAL);
	cg_proc_free(&p);
	proc("0::/a/./b\n");
	cr_assert_eq(cg_open_dir(&h, &p, CG_MEMORY), -EINVAL);
	cg_proc_free(&p);
	proc("0::/a//b\n");
	int fd = cg_open_ancestor(&h, &p, CG_V2_HIERARCHY, 2);

	cr_assert_geq(fd, 0, "the top: %d", fd);
	close(fd);
	cr_assert_eq(cg_open_ancestor(&h, &p, CG_MEMORY, 3), -ENOENT);
}

/* ---- memory ---- */

TestSuite(memory, .init = setup, .fini = teardown);

static void read_mem(struct cg_memory *m)
{
	int rc = cg_read_memory(&h, &p, m);

	cr_assert_eq(rc, 0, "cg_read_memory: %d", rc);
}

static void v1_mem_setup(void)
{
	build_v1(false);
	put("memory/memory.limit_in_bytes", UNL_V1);
	detect();
	proc("4:memory:/c\n");
}

Test(memory, v1_limit_with_swap)
{
	struct cg_memory m;

	v1_mem_setup();
	put("memory/memory.memsw.limit_in_bytes", UNL_V1);
	put("memory/c/memory.limit_in_bytes", "268435456\n");
	put("memory/c/memory.memsw.limit_in_bytes", "536870912\n");
	put("memory/c/memory.usage_in_bytes", "1000\n");
	put("memory/c/memory.memsw.usage_in_bytes", "1500\n");
	put("memory/c/memory.stat", "cache 1\nhierarchical_memory_limit 268435456\n"
				    "hierarchical_memsw_limit 536870912\n");
	read_mem(&m);
	cr_assert(m.has_limit && m.has_swap_limit && m.has_usage && m.has_swap_usage);
	cr_assert_eq(m.limit, 256 * MiB);
	cr_assert_eq(m.swap_limit, 256 * MiB);
	cr_assert_eq(m.usage, 1000);
	cr_assert_eq(m.swap_usage, 500);
}

Test(memory, v1_limit_without_swap_accounting)
{
	struct cg_memory m;

	v1_mem_setup();
	put("memory/c/memory.limit_in_bytes", "268435456\n");
	put("memory/c/memory.stat", "hierarchical_memory_limit 268435456\n");
	read_mem(&m);
	cr_assert(m.has_limit);
	cr_assert_eq(m.limit, 256 * MiB);
	cr_assert_not(m.has_swap_limit);
	cr_assert_eq(m.swap_limit, CG_UNLIMITED);
	cr_assert_not(m.has_usage || m.has_swap_usage);
}

Test(memory, v1_unlimited)
{
	struct cg_memory m;

	v1_mem_setup();
	put("memory/memory.memsw.limit_in_bytes", UNL_V1);
	put("memory/c/memory.limit_in_bytes", UNL_V1);
	put("memory/c/memory.memsw.limit_in_bytes", UNL_V1);
	put("memory/c/memory.stat", "hierarchical_memory_limit 9223372036854771712\n"
				    "hierarchical_memsw_limit 9223372036854771712\n");
	read_mem(&m);
	cr_assert(m.has_limit && m.has_swap_limit);
	cr_assert_eq(m.limit, CG_UNLIMITED);
	cr_assert_eq(m.swap_limit, CG_UNLIMITED);
}

Test(memory, v1_ancestor_limits)
{
	struct cg_memory m;

	build_v1(false);
	put("memory/memory.limit_in_bytes", UNL_V1);
	put("memory/a/memory.limit_in_bytes", "1073741824\n");
	put("memory/a/b/memory.limit_in_bytes", UNL_V1);
	detect();
	proc("4:memory:/a/b\n");
	read_mem(&m);
	cr_assert_eq(m.limit, 1024 * MiB, "a parent's limit counts");
	/* An ancestor above our view shows only in hierarchical_memory_limit. */
	put("memory/a/b/memory.stat", "total_cache 5\nhierarchical_memory_limit 536870912\n");
	read_mem(&m);
	cr_assert_eq(m.limit, 512 * MiB);
}

Test(memory, v1_stat_and_oom)
{
	struct cg_memory m;

	v1_mem_setup();
	put("memory/c/memory.stat",
	    "total_cache 999\ntotal_rss 999\ncache 100\nrss_huge 77\nrss 200\nshmem 3\n"
	    "mapped_file 4\ndirty 5\nwriteback 6\nswap 7\nswapcached 8\ninactive_anon 9\n"
	    "active_anon 10\ninactive_file 11\nactive_file 12\nunevictable 13\n");
	put("memory/c/memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n");
	read_mem(&m);
	cr_assert(m.has_stat);
	cr_assert_eq(m.file, 100);
	cr_assert_eq(m.anon, 200);
	cr_assert_eq(m.shmem, 3);
	cr_assert_eq(m.mapped_file, 4);
	cr_assert_eq(m.dirty, 5);
	cr_assert_eq(m.writeback, 6);
	cr_assert_eq(m.swapcached, 8);
	cr_assert_eq(m.inactive_anon, 9);
	cr_assert_eq(m.active_anon, 10);
	cr_assert_eq(m.inactive_file, 11);
	cr_assert_eq(m.active_file, 12);
	cr_assert_eq(m.unevictable, 13);
	cr_assert(m.has_swap_usage, "memory.stat swap stands in for memsw");
	cr_assert_eq(m.swap_usage, 7);
	cr_assert(m.oom_killed);
	cr_assert_eq(m.oom_kill_count, 2);
}

Test(memory, v2_limits_and_usage)
{
	struct cg_memory m;

	build_v2();
	put("c/memory.max", "268435456\n");
	put("c/memory.swap.max", "max\n");
	put("c/memory.current", "4096\n");
	put("c/memory.swap.current", "8192\n");
	detect();
	proc("0::/c\n");
	read_mem(&m);
	cr_assert(m.has_limit && m.has_swap_limit && m.has_usage && m.has_swap_usage);
	cr_assert_eq(m.limit, 256 * MiB);
	cr_assert_eq(m.swap_limit, CG_UNLIMITED);
	cr_assert_eq(m.usage, 4096);
	cr_assert_eq(m.swap_usage, 8192);
}

Test(memory, v2_ancestor_limits)
{
	struct cg_memory m;

	build_v2();
	put("a/memory.max", "1073741824\n");
	put("a/memory.swap.max", "0\n");
	put("a/b/memory.max", "max\n");
	put("a/b/memory.swap.max", "max\n");
	detect();
	proc("0::/a/b\n");
	read_mem(&m);
	cr_assert_eq(m.limit, 1024 * MiB);
	cr_assert_eq(m.swap_limit, 0, "a parent without swap forbids it");
}

Test(memory, v2_stat_and_events)
{
	struct cg_memory m;

	build_v2();
	put("c/memory.stat",
	    "anon 1\nfile 2\nkernel_stack 3\npagetables 4\nshmem 5\nfile_mapped 6\n"
	    "file_dirty 7\nfile_writeback 8\nswapcached 9\ninactive_anon 10\nactive_anon 11\n"
	    "inactive_file 12\nactive_file 13\nunevictable 14\nslab_reclaimable 15\n"
	    "slab_unreclaimable 16\nslab 31\n");
	put("c/memory.events", "low 0\nhigh 0\nmax 4\noom 1\noom_kill 3\n");
	detect();
	proc("0::/c\n");
	read_mem(&m);
	cr_assert(m.has_stat);
	cr_assert_eq(m.anon, 1);
	cr_assert_eq(m.file, 2);
	cr_assert_eq(m.kernel_stack, 3);
	cr_assert_eq(m.pagetables, 4);
	cr_assert_eq(m.shmem, 5);
	cr_assert_eq(m.mapped_file, 6);
	cr_assert_eq(m.dirty, 7);
	cr_assert_eq(m.writeback, 8);
	cr_assert_eq(m.swapcached, 9);
	cr_assert_eq(m.inactive_anon + m.active_anon + m.inactive_file + m.active_file, 46);
	cr_assert_eq(m.unevictable, 14);
	cr_assert_eq(m.slab_reclaimable, 15);
	cr_assert_eq(m.slab_unreclaimable, 16);
	cr_assert_eq(m.slab, 31);
	cr_assert(m.oom_killed);
	cr_assert_eq(m.oom_kill_count, 3);
	cr_assert_not(m.has_limit, "no memory.max anywhere");
}

Test(memory, missing_files_clear_flags_only)
{
	struct cg_memory m;

	build_v1(false);
	mkdirs("memory/c");
	detect();
	proc("4:memory:/c\n");
	read_mem(&m);
	cr_assert_not(m.has_limit || m.has_swap_limit || m.has_usage || m.has_swap_usage ||
		      m.has_stat || m.oom_killed);
	cr_assert_eq(m.limit, CG_UNLIMITED);
	cg_proc_free(&p);
	proc("3:pids:/c\n"); /* memory unknown */
	cr_assert_eq(cg_read_memory(&h, &p, &m), -ENOENT);
	cr_assert_not(m.has_limit);
}

/* ---- cpu ---- */

TestSuite(cpu, .init = setup, .fini = teardown);

static void read_cpu(struct cg_cpu *c)
{
	int rc = cg_read_cpu(&h, &p, c);

	cr_assert_eq(rc, 0, "cg_read_cpu: %d", rc);
}

/* v1, separate cpu and cpuacct: quota (-1 for none) on 100 ms, cpuset 0-3. */
static void v1_cpu_setup(const char *quota)
{
	build_v1(false);
	put("cpu/cpu.cfs_quota_us", "-1\n");
	put("cpu/cpu.cfs_period_us", "100000\n");
	put("cpu/c/cpu.cfs_quota_us", quota);
	put("cpu/c/cpu.cfs_period_us", "100000\n");
	put("cpuset/cpuset.effective_cpus", "0-7\n");
	put("cpuset/c/cpuset.effective_cpus", "0-3\n");
	detect();
	proc("3:cpuset:/c\n2:cpuacct:/c\n1:cpu:/c\n");
}

Test(cpu, v1_quota_half)
{
	struct cg_cpu c;

	v1_cpu_setup("50000\n");
	read_cpu(&c);
	cr_assert(c.has_quota && c.has_cpuset);
	cr_assert_eq(c.quota_us, 50000);
	cr_assert_eq(c.period_us, 100000);
	cr_assert_eq(c.cpuset_count, 4);
	cr_assert_eq(cg_cpu_visible(&c, 8), 1);
}

Test(cpu, v1_quota_one_and_a_half)
{
	struct cg_cpu c;

	v1_cpu_setup("150000\n");
	read_cpu(&c);
	cr_assert_eq(c.quota_us, 150000);
	cr_assert_eq(cg_cpu_visible(&c, 8), 2);
}

Test(cpu, v1_unlimited)
{
	struct cg_cpu c;

	v1_cpu_setup("-1\n");
	read_cpu(&c);
	cr_assert(c.has_quota);
	cr_assert_eq(c.quota_us, -1);
	cr_assert_eq(cg_cpu_visible(&c, 8), 4);
}

Test(cpu, v1_tightest_ancestor_quota_wins_by_ratio)
{
	struct cg_cpu c;

	build_v1(false);
	put("cpu/a/cpu.cfs_quota_us", "100000\n"); /* 2 CPUs on a 50 ms period */
	put("cpu/a/cpu.cfs_period_us", "50000\n");
	put("cpu/a/b/cpu.cfs_quota_us", "300000\n"); /* 3 CPUs */
	put("cpu/a/b/cpu.cfs_period_us", "100000\n");
	detect();
	proc("1:cpu:/a/b\n");
	read_cpu(&c);
	cr_assert_eq(c.quota_us, 100000);
	cr_assert_eq(c.period_us, 50000);
	cr_assert_eq(cg_cpu_visible(&c, 8), 2);
	put("cpu/a/b/cpu.cfs_quota_us", "50000\n"); /* now the child is tighter */
	read_cpu(&c);
	cr_assert_eq(c.quota_us, 50000);
	cr_assert_eq(c.period_us, 100000);
}

/* The accounting files, wherever cpuacct lives. */
static void put_cpuacct(const char *dir)
{
	char rel[64];

	snprintf(rel, sizeof(rel), "%s/c/cpuacct.usage", dir);
	put(rel, "5000\n");
	snprintf(rel, sizeof(rel), "%s/c/cpuacct.usage_percpu", dir);
	put(rel, "1000 2000 0 2000 \n");
	snprintf(rel, sizeof(rel), "%s/c/cpuacct.stat", dir);
	put(rel, "user 150\nsystem 50\n");
}

static void check_accounting(const struct cg_cpu *c)
{
	uint64_t tick = 1000000000 / (uint64_t)sysconf(_SC_CLK_TCK);

	cr_assert(c->has_usage && c->has_percpu && c->has_userSys);
	cr_assert_eq(c->usage_ns, 5000);
	cr_assert_eq(c->percpu_ns[0], 1000);
	cr_assert_eq(c->percpu_ns[1], 2000);
	cr_assert_eq(c->percpu_ns[2], 0);
	cr_assert_eq(c->percpu_ns[3], 2000);
	cr_assert_eq(c->user_ns, 150 * tick);
	cr_assert_eq(c->system_ns, 50 * tick);
}

Test(cpu, v1_separate_accounting_and_throttling)
{
	struct cg_cpu c;

	v1_cpu_setup("50000\n");
	put_cpuacct("cpuacct");
	put("cpu/c/cpu.shares", "512\n");
	put("cpu/c/cpu.stat", "nr_periods 10\nnr_throttled 3\nthrottled_time 123456\n");
	read_cpu(&c);
	check_accounting(&c);
	cr_assert(c.has_shares && c.has_throttled);
	cr_assert_eq(c.shares, 512);
	cr_assert_eq(c.nr_periods, 10);
	cr_assert_eq(c.nr_throttled, 3);
	cr_assert_eq(c.throttled_ns, 123456);
}

Test(cpu, v1_comounted)
{
	struct cg_cpu c;

	build_v1(true);
	put("cpu,cpuacct/c/cpu.cfs_quota_us", "150000\n");
	put("cpu,cpuacct/c/cpu.cfs_period_us", "100000\n");
	put_cpuacct("cpu,cpuacct");
	put("cpuset/c/cpuset.cpus", "1,3\n");
	detect();
	proc("4:cpu,cpuacct:/c\n3:cpuset:/c\n");
	read_cpu(&c);
	check_accounting(&c);
	cr_assert_eq(c.quota_us, 150000);
	cr_assert_eq(c.cpuset_count, 2);
	cr_assert_eq(cg_cpu_visible(&c, 8), 2);
}

Test(cpu, v2_cpu_max_forms)
{
	static const struct {
		const char *max;
		int64_t quota;
		uint64_t period;
		unsigned int visible;
	} cases[] = {
		{ "max 100000\n", -1, 100000, 4 },
		{ "50000 100000\n", 50000, 100000, 1 },
		{ "150000 100000\n", 150000, 100000, 2 },
		{ "max\n", -1, 100000, 4 },
		{ "maxi 5\n", -1, 100000, 4 }, /* garbage: no quota known */
	};
	struct cg_cpu c;

	build_v2();
	put("c/cpuset.cpus.effective", "0-3\n");
	detect();
	proc("0::/c\n");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		put("c/cpu.max", cases[i].max);
		read_cpu(&c);
		cr_assert_eq(c.has_quota, i < 4, "%s", cases[i].max);
		cr_assert_eq(c.quota_us, cases[i].quota, "%s", cases[i].max);
		cr_assert_eq(c.period_us, cases[i].period, "%s", cases[i].max);
		cr_assert_eq(cg_cpu_visible(&c, 8), cases[i].visible, "%s", cases[i].max);
	}
}

Test(cpu, v2_weight_stat_and_parent_quota)
{
	struct cg_cpu c;

	build_v2();
	put("a/cpu.max", "100000 100000\n");
	put("a/c/cpu.max", "max 100000\n");
	put("a/c/cpu.weight", "100\n");
	put("a/c/cpu.stat", "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n"
			    "nr_periods 4\nnr_throttled 1\nthrottled_usec 250\n");
	detect();
	proc("0::/a/c\n");
	read_cpu(&c);
	cr_assert_eq(c.quota_us, 100000, "the parent's quota counts");
	cr_assert_eq(cg_cpu_visible(&c, 8), 1);
	cr_assert(c.has_shares);
	cr_assert_eq(c.shares, 2 + 99 * 262142 / 9999); /* runc's mapping, inverted */
	cr_assert(c.has_usage && c.has_userSys && c.has_throttled);
	cr_assert_not(c.has_percpu);
	cr_assert_eq(c.usage_ns, 1500000);
	cr_assert_eq(c.user_ns, 1000000);
	cr_assert_eq(c.system_ns, 500000);
	cr_assert_eq(c.throttled_ns, 250000);
	cr_assert_eq(c.nr_periods, 4);
	cr_assert_eq(c.nr_throttled, 1);
	put("a/c/cpu.weight", "10000\n");
	read_cpu(&c);
	cr_assert_eq(c.shares, 262144);
	put("a/c/cpu.weight", "10001\n"); /* out of range: no guess */
	read_cpu(&c);
	cr_assert_not(c.has_shares);
}

Test(cpu, v2_without_controllers_still_has_usage)
{
	struct cg_cpu c;

	put("cgroup.controllers", "\n"); /* a container nobody delegated to */
	put("c/cpu.stat", "usage_usec 7\nuser_usec 4\nsystem_usec 3\n");
	detect();
	cr_assert_eq(h.layout, CG_LAYOUT_V2);
	cr_assert_null(h.mount[CG_CPU]);
	proc("0::/c\n");
	read_cpu(&c);
	cr_assert(c.has_usage && c.has_userSys);
	cr_assert_eq(c.usage_ns, 7000);
	cr_assert_not(c.has_quota || c.has_throttled);
}

Test(cpu, cpusets)
{
	static const struct {
		const char *list;
		unsigned int count, visible, first, last;
	} cases[] = { { "0\n", 1, 1, 0, 0 }, { "0-1\n", 2, 2, 0, 1 }, { "1,3\n", 2, 2, 1, 3 } };
	struct cg_cpu c;

	build_v2();
	detect();
	proc("0::/c\n");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		put("c/cpuset.cpus.effective", cases[i].list);
		read_cpu(&c);
		cr_assert(c.has_cpuset, "%s", cases[i].list);
		cr_assert_eq(c.cpuset_count, cases[i].count, "%s", cases[i].list);
		cr_assert_eq(cg_cpu_visible(&c, 8), cases[i].visible, "%s", cases[i].list);
		cr_assert(c.cpuset[0] & 1ULL << cases[i].first, "%s", cases[i].list);
		cr_assert(c.cpuset[0] & 1ULL << cases[i].last, "%s", cases[i].list);
		cr_assert_eq(__builtin_popcountll(c.cpuset[0]), (int)cases[i].count);
	}
}

Test(cpu, cpuset_walks_up_past_empty_and_missing)
{
	struct cg_cpu c;

	build_v1(false);
	put("cpuset/a/cpuset.cpus", "0-1\n");
	put("cpuset/a/b/cpuset.cpus", "\n"); /* made without clone_children */
	put("cpuset/a/b/cpuset.effective_cpus", "\n");
	detect();
	proc("3:cpuset:/a/b\n");
	read_cpu(&c);
	cr_assert(c.has_cpuset);
	cr_assert_eq(c.cpuset_count, 2);
	cg_host_free(&h);
	cg_proc_free(&p);
	build_v2();
	put("cpuset.cpus.effective", "0-5\n");
	mkdirs("x/y"); /* cpuset not enabled below the root */
	detect();
	proc("0::/x/y\n");
	read_cpu(&c);
	cr_assert(c.has_cpuset);
	cr_assert_eq(c.cpuset_count, 6);
}

Test(cpu, missing_files_clear_flags_only)
{
	struct cg_cpu c;

	build_v1(false);
	mkdirs("cpu/c");
	mkdirs("cpuacct/c");
	detect();
	proc("2:cpuacct:/c\n1:cpu:/c\n");
	read_cpu(&c);
	cr_assert_not(c.has_quota || c.has_cpuset || c.has_usage || c.has_percpu ||
		      c.has_userSys || c.has_throttled || c.has_shares);
	cr_assert_eq(c.quota_us, -1);
	cr_assert_eq(cg_cpu_visible(&c, 8), 8);
	cg_proc_free(&p);
	proc("3:pids:/c\n");
	cr_assert_eq(cg_read_cpu(&h, &p, &c), -ENOENT);
}

Test(cpu, visible_count)
{
	struct cg_cpu c = { .has_quota = true, .has_cpuset = true, .cpuset_count = 4,
			    .quota_us = 150000, .period_us = 100000 };

	cr_assert_eq(cg_cpu_visible(&c, 8), 2);
	c.quota_us = 400000;
	c.cpuset_count = 2;
	cr_assert_eq(cg_cpu_visible(&c, 8), 2, "the cpuset is the tighter");
	c.has_cpuset = false;
	c.quota_us = 250000;
	cr_assert_eq(cg_cpu_visible(&c, 8), 3);
	c.quota_us = 1000; /* 1% of a CPU still shows one */
	cr_assert_eq(cg_cpu_visible(&c, 8), 1);
	c.has_quota = false;
	cr_assert_eq(cg_cpu_visible(&c, 8), 8);
}

/* ---- cpu lists ---- */

Test(cpulist, parse)
{
	uint64_t bits[CG_MAX_CPUS / 64];

	cr_assert_eq(cg_cpulist_parse("0-3,5,7-8\n", bits, CG_MAX_CPUS), 7);
	cr_assert_eq(bits[0], 0x1afULL);
	cr_assert_eq(cg_cpulist_parse("1023", bits, CG_MAX_CPUS), 1);
	cr_assert_eq(bits[15], 1ULL << 63);
	cr_assert_eq(cg_cpulist_parse("1,1,0-1", bits, CG_MAX_CPUS), 2);
	cr_assert_eq(cg_cpulist_parse("\n", bits, CG_MAX_CPUS), 0);
	cr_assert_eq(bits[0], 0);
}

Test(cpulist, parse_rejects_garbage)
{
	static const char *const bad[] = { "3-1", "a", "1,,2", "1,", "-1", "1-", "0-2 x",
					   "1024", "4294967296", "0 1" };
	uint64_t bits[CG_MAX_CPUS / 64];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(cg_cpulist_parse(bad[i], bits, CG_MAX_CPUS), -EINVAL, "\"%s\"",
			     bad[i]);
}

Test(cpulist, format)
{
	static const char *const lists[] = { "0-3,5,7-8", "0", "1,3", "0-1023", "63-64", "" };
	uint64_t bits[CG_MAX_CPUS / 64];
	char buf[64];

	for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
		cr_assert_geq(cg_cpulist_parse(lists[i], bits, CG_MAX_CPUS), 0);
		cr_assert_eq(cg_cpulist_format(bits, CG_MAX_CPUS, buf, sizeof(buf)),
			     (int)strlen(lists[i]));
		cr_assert_str_eq(buf, lists[i]);
	}
	cg_cpulist_parse("0-3,5", bits, CG_MAX_CPUS);
	cr_assert_eq(cg_cpulist_format(bits, CG_MAX_CPUS, buf, 6), 5, "just fits");
	cr_assert_eq(cg_cpulist_format(bits, CG_MAX_CPUS, buf, 5), -ENOSPC);
	cr_assert_eq(cg_cpulist_format(bits, CG_MAX_CPUS, buf, 2), -ENOSPC);
}

/* ---- io ---- */

TestSuite(io, .init = setup, .fini = teardown);

static int read_io(struct cg_io_dev *d, int max)
{
	return cg_read_io(&h, &p, d, max);
}

Test(io, v1_throttle_files)
{
	struct cg_io_dev d[4];

	build_v1(false);
	put("blkio/c/blkio.throttle.io_service_bytes",
	    "8:0 Read 4096\n8:0 Write 8192\n8:0 Sync 0\n8:0 Async 12288\n8:0 Discard 512\n"
	    "8:0 Total 12288\n8:16 Read 1\n8:16 Write 2\n8:16 Total 3\nTotal 12291\n");
	put("blkio/c/blkio.throttle.io_serviced",
	    "8:0 Read 1\n8:0 Write 2\n8:0 Discard 1\n8:0 Total 3\nTotal 3\n");
	put("blkio/c/blkio.io_service_bytes_recursive", "8:0 Read 99\n");
	detect();
	proc("7:blkio:/c\n");
	cr_assert_eq(read_io(d, 4), 2);
	cr_assert_eq(d[0].major, 8);
	cr_assert_eq(d[0].minor, 0);
	cr_assert_eq(d[0].rbytes, 4096);
	cr_assert_eq(d[0].wbytes, 8192);
	cr_assert_eq(d[0].dbytes, 512);
	cr_assert_eq(d[0].rios, 1);
	cr_assert_eq(d[0].wios, 2);
	cr_assert_eq(d[0].dios, 1);
	cr_assert_eq(d[1].minor, 16);
	cr_assert_eq(d[1].wbytes, 2);
	cr_assert_eq(d[1].rios, 0);
	cr_assert_eq(read_io(d, 1), 1, "no more devices than room");
}

Test(io, v1_recursive_fallback)
{
	struct cg_io_dev d[4];

	build_v1(false);
	put("blkio/c/blkio.throttle.io_service_bytes", "Total 0\n");
	detect();
	proc("7:blkio:/c\n");
	cr_assert_eq(read_io(d, 4), 0, "no devices yet is no error");
	put("blkio/c/blkio.io_service_bytes_recursive", "253:1 Read 10\n253:1 Write 20\n");
	put("blkio/c/blkio.io_serviced_recursive", "253:1 Read 1\n253:1 Write 2\n");
	cr_assert_eq(read_io(d, 4), 1);
	cr_assert_eq(d[0].major, 253);
	cr_assert_eq(d[0].rbytes + d[0].wbytes, 30);
	cr_assert_eq(d[0].rios + d[0].wios, 3);
}

Test(io, v2_io_stat)
{
	struct cg_io_dev d[4];

	build_v2();
	put("c/io.stat", "8:0 rbytes=100 wbytes=200 rios=1 wios=2 dbytes=0 dios=0\n"
			 "259:0 rios=7 rbytes=70 wbytes=0 wios=0 dbytes=5 dios=1 cost.usage=3\n");
	detect();
	proc("0::/c\n");
	cr_assert_eq(read_io(d, 4), 2);
	cr_assert_eq(d[0].rbytes, 100);
	cr_assert_eq(d[0].wbytes, 200);
	cr_assert_eq(d[0].wios, 2);
	cr_assert_eq(d[1].major, 259);
	cr_assert_eq(d[1].rios, 7);
	cr_assert_eq(d[1].rbytes, 70);
	cr_assert_eq(d[1].dbytes, 5);
	cr_assert_eq(d[1].dios, 1);
}

Test(io, missing_files)
{
	struct cg_io_dev d[4];

	build_v2();
	mkdirs("c");
	detect();
	proc("0::/c\n");
	cr_assert_eq(read_io(d, 4), -ENOENT);
	put("c/io.stat", "");
	cr_assert_eq(read_io(d, 4), 0);
}

/* ---- tasks ---- */

TestSuite(tasks, .init = setup, .fini = teardown);

static void expect_tasks(int want_n, const pid_t *want)
{
	pid_t *t = NULL;
	int n = cg_read_tasks(&h, &p, &t);

	cr_assert_eq(n, want_n, "cg_read_tasks: %d", n);
	for (int i = 0; i < n; i++)
		cr_assert_eq(t[i], want[i], "task %d", i);
	free(t);
}

Test(tasks, v1_pids_then_cpu)
{
	build_v1(false);
	put("pids/c/tasks", "1\n42\n43\n");
	put("cpu/d/tasks", "7\n");
	detect();
	proc("8:pids:/c\n1:cpu:/d\n");
	expect_tasks(3, (pid_t[]){ 1, 42, 43 });
	cg_proc_free(&p);
	proc("1:cpu:/d\n"); /* pids unknown */
	expect_tasks(1, (pid_t[]){ 7 });
}

Test(tasks, v2_threads)
{
	build_v2();
	put("c/cgroup.threads", "10\n11\n");
	put("c/cgroup.procs", "10\n");
	detect();
	proc("0::/c\n");
	expect_tasks(2, (pid_t[]){ 10, 11 });
	cg_proc_free(&p);
	proc("0::/gone\n");
	expect_tasks(-ENOENT, NULL);
}

/* ---- small files ---- */

TestSuite(files, .init = setup, .fini = teardown);

Test(files, read_file_bounds)
{
	char buf[8], big[10000];
	int dfd = open(tmp, O_PATH | O_DIRECTORY);
	char *out;

	put("f", "12345\n");
	cr_assert_eq(cg_read_file(dfd, "f", buf, 7), 6);
	cr_assert_str_eq(buf, "12345\n");
	cr_assert_eq(cg_read_file(dfd, "f", buf, 6), -EFBIG);
	cr_assert_eq(cg_read_file(dfd, "absent", buf, 8), -ENOENT);
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	put("big", big);
	cr_assert_eq(cg_read_alloc(dfd, "big", &out, 1 << 20), (int)sizeof(big) - 1);
	cr_assert_eq(strlen(out), sizeof(big) - 1);
	free(out);
	cr_assert_eq(cg_read_alloc(dfd, "big", &out, 5000), -EFBIG);
	cr_assert_null(out);
	close(dfd);
}

Test(files, read_u64)
{
	static const struct {
		const char *text;
		int rc;
		uint64_t val;
	} cases[] = {
		{ "12\n", 0, 12 }, { "max\n", 0, CG_UNLIMITED }, { "0", 0, 0 },
		{ "12x\n", -EINVAL, 0 }, { "-1\n", -EINVAL, 0 }, { "\n", -EINVAL, 0 },
		{ "maxi\n", -EINVAL, 0 }, { "99999999999999999999\n", -ERANGE, 0 },
	};
	int dfd = open(tmp, O_PATH | O_DIRECTORY);

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t v = 777;

		put("n", cases[i].text);
		cr_assert_eq(cg_read_u64(dfd, "n", &v), cases[i].rc, "\"%s\"", cases[i].text);
		if (cases[i].rc == 0)
			cr_assert_eq(v, cases[i].val, "\"%s\"", cases[i].text);
	}
	close(dfd);
}

/* ---- the real host ---- */

struct host_mounts {
	bool v1;
	char v2[PATH_MAX], memory[PATH_MAX];
};

/* What /proc/self/mountinfo says, read independently of cgroup.c. */
static void host_mounts(struct host_mounts *m)
{
	char line[4096];
	FILE *f = fopen("/proc/self/mountinfo", "r");

	memset(m, 0, sizeof(*m));
	cr_assert_not_null(f);
	while (fgets(line, sizeof(line), f)) {
		char mnt[PATH_MAX], fstype[64], super[1024], *dash = strstr(line, " - ");

		if (!dash || sscanf(line, "%*s %*s %*s %*s %4095s", mnt) != 1 ||
		    sscanf(dash + 3, "%63s %*s %1023s", fstype, super) != 2)
			continue;
		if (strcmp(fstype, "cgroup2") == 0 && !m->v2[0])
			strcpy(m->v2, mnt);
		if (strcmp(fstype, "cgroup") != 0)
			continue;
		m->v1 = true;
		for (char *save, *t = strtok_r(super, ",", &save); t;
		     t = strtok_r(NULL, ",", &save)) {
			if (strcmp(t, "memory") == 0 && !m->memory[0])
				strcpy(m->memory, mnt);
		}
	}
	fclose(f);
}

Test(host, layout_agrees_with_mountinfo, .fini = teardown)
{
	struct host_mounts m;
	enum cg_layout want;
	int rc;

	host_mounts(&m);
	want = m.v1 ? (m.v2[0] ? CG_LAYOUT_HYBRID : CG_LAYOUT_V1)
		    : (m.v2[0] ? CG_LAYOUT_V2 : CG_LAYOUT_NONE);
	rc = cg_host_detect(&h, NULL);
	cr_assert_eq(rc, want == CG_LAYOUT_NONE ? -ENOENT : 0, "cg_host_detect: %d", rc);
	cr_assert_eq(h.layout, want, "layout %d, mountinfo says %d", h.layout, want);
	if (m.v2[0])
		cr_assert_str_eq(h.v2_mount, m.v2);
	if (m.memory[0]) {
		cr_assert_str_eq(h.mount[CG_MEMORY], m.memory);
		cr_assert_not(h.is_v2[CG_MEMORY]);
	}
}

static uint64_t norm(uint64_t v)
{
	return v >= 1ULL << 62 ? CG_UNLIMITED : v;
}

/* Reads one number from mount/dir/name with stdio; false if absent. */
static bool host_number(const char *mount, const char *dir, const char *name, uint64_t *v)
{
	char path[PATH_MAX], word[32];
	unsigned long long x;
	FILE *f;
	bool ok;

	if (snprintf(path, sizeof(path), "%s%s/%s", mount, dir, name) >= (int)sizeof(path))
		return false;
	f = fopen(path, "r");
	if (!f)
		return false;
	ok = fscanf(f, "%31s", word) == 1;
	fclose(f);
	if (ok && strcmp(word, "max") == 0)
		*v = CG_UNLIMITED;
	else if (ok && sscanf(word, "%llu", &x) == 1)
		*v = norm(x);
	else
		return false;
	return true;
}

/* Our memory cgroup path, straight from /proc/self/cgroup. */
static void host_memory_path(bool v2, char *out, size_t len)
{
	char line[4096];
	FILE *f = fopen("/proc/self/cgroup", "r");

	cr_assert_not_null(f);
	out[0] = '\0';
	while (fgets(line, sizeof(line), f)) {
		char *c = strchr(line, ':'), *path = c ? strchr(c + 1, ':') : NULL;

		if (!path)
			continue;
		*path++ = '\0';
		path[strcspn(path, "\n")] = '\0';
		if (v2 ? strcmp(c + 1, "") == 0
		       : strstr(c + 1, "memory") && strcspn(c + 1, ",") >= 6)
			snprintf(out, len, "%s", path);
	}
	fclose(f);
}

Test(host, memory_limit_of_our_cgroup, .fini = teardown)
{
	char path[PATH_MAX], dir[PATH_MAX];
	uint64_t want = CG_UNLIMITED, v;
	struct cg_memory m;
	bool v2;

	if (cg_host_detect(&h, NULL) < 0 || !h.mount[CG_MEMORY])
		cr_skip_test("no memory controller on this machine");
	v2 = h.is_v2[CG_MEMORY];
	host_memory_path(v2, path, sizeof(path));
	cr_assert_eq(cg_proc_read(&h, "/proc", getpid(), &p), 0);
	cr_assert_str_eq(p.path[CG_MEMORY], path);
	cr_assert_eq(cg_read_memory(&h, &p, &m), 0);
	cr_assert(m.has_usage && m.usage > 0, "a running test uses memory");
	/* Tightest limit from here to the top, each level read with stdio. */
	snprintf(dir, sizeof(dir), "%s", strcmp(path, "/") ? path : "");
	for (;;) {
		const char *name = v2 ? "memory.max" : "memory.limit_in_bytes";

		if (host_number(h.mount[CG_MEMORY], dir, name, &v) && v < want)
			want = v;
		if (!dir[0])
			break;
		*strrchr(dir, '/') = '\0';
	}
	if (!v2) {
		char stat[PATH_MAX], key[64];
		unsigned long long x;
		FILE *f;

		cr_assert_lt(snprintf(stat, sizeof(stat), "%s%s/memory.stat", h.mount[CG_MEMORY],
				      path), (int)sizeof(stat));
		f = fopen(stat, "r");
		cr_assert_not_null(f);
		while (fscanf(f, "%63s %llu", key, &x) == 2) {
			if (strcmp(key, "hierarchical_memory_limit") == 0 && norm(x) < want)
				want = norm(x);
		}
		fclose(f);
	}
	cr_assert(m.has_limit || (v2 && !strcmp(path, "/")), "no limit read");
	cr_assert_eq(m.limit, want, "limit %llu, the files say %llu", (unsigned long long)m.limit,
		     (unsigned long long)want);
}

/* A child of our own memory cgroup with a 256 MiB limit, read through the
 * real kernel files (memory.stat's hierarchical_memory_limit included).
 * Needs the right to create cgroups; skipped otherwise. */
Test(host, limit_of_a_child_cgroup, .fini = teardown)
{
	char child[PATH_MAX], file[PATH_MAX + 32];
	struct cg_memory m;
	bool v2, set;
	FILE *f;
	int rc = -1;

	if (cg_host_detect(&h, NULL) < 0 || !h.mount[CG_MEMORY] ||
	    cg_proc_read(&h, "/proc", getpid(), &p) < 0 || h.mount_root[CG_MEMORY])
		cr_skip_test("no usable memory controller");
	v2 = h.is_v2[CG_MEMORY];
	snprintf(child, sizeof(child), "%s/strata-test-%d",
		 strcmp(p.path[CG_MEMORY], "/") ? p.path[CG_MEMORY] : "", (int)getpid());
	snprintf(file, sizeof(file), "%s%s", h.mount[CG_MEMORY], child);
	if (mkdir(file, 0755) < 0)
		cr_skip_test("cannot create %s: %s", file, strerror(errno));
	snprintf(file, sizeof(file), "%s%s/%s", h.mount[CG_MEMORY], child,
		 v2 ? "memory.max" : "memory.limit_in_bytes");
	f = fopen(file, "w");
	set = f && fputs("268435456\n", f) >= 0;
	if (f && fclose(f) != 0)
		set = false;
	free(p.path[CG_MEMORY]);
	p.path[CG_MEMORY] = strdup(child);
	if (set)
		rc = cg_read_memory(&h, &p, &m);
	snprintf(file, sizeof(file), "%s%s", h.mount[CG_MEMORY], child);
	cr_assert_eq(rmdir(file), 0, "rmdir %s: %m", file);
	if (!set)
		cr_skip_test("cannot set a limit in %s", file);
	cr_assert_eq(rc, 0, "cg_read_memory: %d", rc);
	cr_assert(m.has_limit);
	cr_assert_eq(m.limit, 256 * MiB, "limit %llu (a smaller one above us?)",
		     (unsigned long long)m.limit);
}

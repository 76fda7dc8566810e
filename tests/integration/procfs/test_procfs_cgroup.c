/* strata-procfs on real cgroups (v1, hybrid or pure v2: the harness makes
 * them with common/cgroup_write.h; meson's procfs-cgroup-v2 runs this in
 * the tests/vm pure-v2 VM): a process in a cgroup with memory 256 MiB, CPU
 * quota 50% and cpuset "0", with the files bound over /proc and /sys in a
 * private mount namespace, runs the usual tools;
 * a process in the root cgroups (the v2 root on a pure v2 host) sees the
 * host's files. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pf_harness.h"

static char cg[64];
static char out[65536];

static void setup(const char *extra)
{
	pf_mount(extra);
	pf_cg_create(cg, sizeof(cg));
}

PTEST(cgroup, free_shows_the_memory_limit)
{
	unsigned long long total = 0;
	char *line;

	setup(NULL);
	cr_assert(pf_run_in(cg, false, out, sizeof(out), "free -b") == 0, "%s", out);
	line = strstr(out, "Mem:");
	cr_assert(line, "%s", out);
	cr_assert(sscanf(line, "Mem: %llu", &total) == 1);
	cr_expect(total == PF_CG_MEM, "free total %llu, want %llu\n%s", total, PF_CG_MEM, out);
}

PTEST(cgroup, meminfo_keeps_every_host_line)
{
	char host_keys[16384], keys[16384];

	setup(NULL);
	cr_assert(pf_sh(host_keys, sizeof(host_keys), "cut -d: -f1 /proc/meminfo") == 0);
	cr_assert(pf_run_in(cg, false, keys, sizeof(keys), "cut -d: -f1 /proc/meminfo") == 0);
	cr_expect_str_eq(keys, host_keys, "meminfo lines differ from the host's");
	cr_assert(pf_run_in(cg, false, out, sizeof(out), "grep MemTotal /proc/meminfo") == 0);
	cr_expect(strstr(out, " 262144 kB") != NULL, "%s", out);
}

PTEST(cgroup, nproc_cpuinfo_and_online_show_one_cpu)
{
	setup(NULL);
	cr_assert(pf_run_in(cg, false, out, sizeof(out), "nproc") == 0, "%s", out);
	cr_expect_str_eq(out, "1\n");
	cr_assert(pf_run_in(cg, false, out, sizeof(out), "grep -c ^processor /proc/cpuinfo") == 0,
		  "%s", out);
	cr_expect_str_eq(out, "1\n");
	cr_assert(pf_run_in(cg, false, out, sizeof(out), "cat /sys/devices/system/cpu/online") == 0);
	cr_expect_str_eq(out, "0\n");
	cr_assert(pf_run_in(cg, false, out, sizeof(out), "grep -c ^cpu /proc/stat") == 0);
	cr_expect_str_eq(out, "2\n", "want the cpu line and cpu0 only");
}

PTEST(cgroup, procps_top_header)
{
	setup(NULL);
	cr_assert(pf_run_in(cg, false, out, sizeof(out), "top -bn1 -1 -w 512 | head -5") == 0,
		  "%s", out);
	cr_expect(strstr(out, "MiB Mem :    256.0 total") != NULL, "%s", out);
	cr_expect(strstr(out, "%Cpu0 ") != NULL, "%s", out);
	cr_expect(strstr(out, "%Cpu1 ") == NULL, "a second CPU shown:\n%s", out);
}

PTEST(cgroup, uptime_counts_from_the_pid_namespace_init)
{
	setup(NULL);
	cr_assert(pf_run_in(cg, true, out, sizeof(out), "cat /proc/uptime; uptime") == 0, "%s",
		  out);
	double up = -1;
	cr_assert(sscanf(out, "%lf", &up) == 1, "%s", out);
	cr_expect(up >= 0 && up < 5, "container uptime %f s\n%s", up, out);
	cr_expect(strstr(out, "up 0 min") != NULL, "%s", out);
}

PTEST(cgroup, busybox_top_header)
{
	unsigned long long used = 0, fre = 0;
	char *mem;

	setup(NULL);
	cr_assert(pf_run_in(cg, false, out, sizeof(out), "busybox top -bn1 | head -3") == 0, "%s",
		  out);
	mem = strstr(out, "Mem:");
	cr_assert(mem, "%s", out);
	cr_assert(sscanf(mem, "Mem: %lluK used, %lluK free", &used, &fre) == 2, "%s", out);
	cr_expect(used + fre == PF_CG_MEM / 1024, "busybox total %llu K\n%s", used + fre, out);
	cr_expect(strstr(out, "CPU:") != NULL, "%s", out);
}

PTEST(cgroup, loadavg_is_seeded_at_the_first_read)
{
	pid_t spinner;
	double l1 = -1;

	setup("--loadavg");
	spinner = fork();
	cr_assert(spinner >= 0);
	if (spinner == 0) {
		if (pf_cg_join(cg, 0) < 0)
			_exit(1);
		for (;;)
			;
	}
	pf_reg_proc("proc", spinner);
	pf_msleep(300);
	cr_assert(pf_run_in(cg, false, out, sizeof(out), "cat /proc/loadavg") == 0, "%s", out);
	cr_assert(sscanf(out, "%lf", &l1) == 1, "%s", out);
	/* The spinner (R) and the reader itself (D while it waits for us). */
	cr_expect(l1 >= 0.9 && l1 <= 3.5, "first load average %.2f\n%s", l1, out);
	kill(spinner, SIGKILL);
	waitpid(spinner, NULL, 0);
}

PTEST(cgroup, root_cgroup_sees_the_host_files)
{
	char *host = pf_slurp("/proc/cpuinfo"), *online = pf_slurp("/sys/devices/system/cpu/online");
	char mt[256], host_mt[256];

	setup(NULL);
	cr_assert(pf_run_in(NULL, false, out, sizeof(out), "cat /proc/cpuinfo") == 0, "%s", out);
	cr_expect_str_eq(out, host, "cpuinfo differs from the host's");
	cr_assert(pf_run_in(NULL, false, out, sizeof(out), "cat /sys/devices/system/cpu/online") == 0);
	cr_expect_str_eq(out, online);
	cr_assert(pf_run_in(NULL, false, mt, sizeof(mt), "grep MemTotal /proc/meminfo") == 0);
	cr_assert(pf_sh(host_mt, sizeof(host_mt), "grep MemTotal /proc/meminfo") == 0);
	cr_expect_str_eq(mt, host_mt);
	char keys[16384], host_keys[16384];
	cr_assert(pf_run_in(NULL, false, keys, sizeof(keys), "cut -d: -f1 /proc/meminfo") == 0);
	cr_assert(pf_sh(host_keys, sizeof(host_keys), "cut -d: -f1 /proc/meminfo") == 0);
	cr_expect_str_eq(keys, host_keys);
	free(host);
	free(online);
}

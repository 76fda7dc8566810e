/* Cgroup limits applied, the OOM kill reported, and cgroups removed; run on
 * this host (hybrid) and on pure cgroup v2 in the tests/vm/ VM. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rn_harness.h"

static char out[1 << 16];

RTEST(cgroup, oom_kill_is_137_and_reported)
{
	char id[65], v[64];
	int r = rn_strata(out, sizeof(out),
			  "run --name oom -m 64m busybox sh -c 'dd if=/dev/zero of=/dev/null bs=200M count=1'");

	cr_expect_eq(r, 137, "exit %d:\n%s", r, out);
	rn_id("oom", id);
	cr_expect(rn_inspect("oom", "State.OOMKilled", v, sizeof(v)) && !strcmp(v, "true"),
		  "OOMKilled = '%s'", v);
	cr_expect(rn_inspect("oom", "State.ExitCode", v, sizeof(v)) && !strcmp(v, "137"), "%s", v);
	cr_assert_eq(rn_strata(out, sizeof(out), "rm oom"), 0, "%s", out);
	rn_assert_gone(id, 0);
	/* The same command directly as the container's command. */
	r = rn_strata(out, sizeof(out), "run --rm -m 64m busybox dd if=/dev/zero of=/dev/null bs=200M count=1");
	cr_expect_eq(r, 137, "exit %d:\n%s", r, out);
	/* Within the limit nothing is killed. */
	r = rn_strata(out, sizeof(out), "run --name ok -m 64m busybox dd if=/dev/zero of=/dev/null bs=16M count=1");
	cr_expect_eq(r, 0, "exit %d:\n%s", r, out);
	cr_expect(rn_inspect("ok", "State.OOMKilled", v, sizeof(v)) && !strcmp(v, "false"), "%s", v);
}

/* The limits as the container sees them: /proc/meminfo (strata-procfs),
 * the cpuset (nproc), a pids limit refusing forks. */
RTEST(cgroup, limits_applied)
{
	int r = rn_strata(out, sizeof(out),
			  "run --rm -m 128m --cpuset-cpus 0 --pids-limit 8 busybox sh -c '"
			  "head -1 /proc/meminfo; nproc; "
			  "sh -c \"for i in 1 2 3 4 5 6 7 8 9 10; do sleep 5 & done; echo all-forked\" 2>/dev/null; "
			  "echo rc=$?'");
	char *t = strstr(out, "MemTotal:");

	cr_assert_eq(r, 0, "exit %d:\n%s", r, out);
	cr_expect(t && strtoul(t + 9, NULL, 10) == 131072, "MemTotal not 128 MiB:\n%s", out);
	cr_expect(strstr(out, "\n1\n"), "nproc not 1:\n%s", out);
	cr_expect(!strstr(out, "all-forked") && strstr(out, "rc=2"),
		  "the pids limit let 10 forks through:\n%s", out);
}

RTEST(cgroup, cpu_quota)
{
	char v[64];
	int r = rn_strata(out, sizeof(out), "run -d --name q --cpus 0.5 --cpu-shares 512 busybox sleep 600");

	cr_assert_eq(r, 0, "%s", out);
	cr_expect(rn_inspect("q", "HostConfig.CpuQuota", v, sizeof(v)) && !strcmp(v, "50000"), "%s", v);
	cr_expect(rn_inspect("q", "HostConfig.NanoCpus", v, sizeof(v)) && !strcmp(v, "500000000"), "%s", v);
	/* The kernel's view, through the cgroup the container is in. */
	r = rn_strata(out, sizeof(out),
		      "exec q sh -c 'cat /proc/self/cgroup' ");
	cr_expect_eq(r, 0, "%s", out);
	r = rn_sh(out, sizeof(out),
		  "id=$(readlink %s/names/q); "
		  "if [ -f /sys/fs/cgroup/cpu/strata/$id/cpu.cfs_quota_us ]; then cat /sys/fs/cgroup/cpu/strata/$id/cpu.cfs_quota_us; "
		  "else cut -d' ' -f1 /sys/fs/cgroup/strata/$id/cpu.max; fi", rn_run());
	cr_expect(r == 0 && !strcmp(out, "50000\n"), "quota: %s", out);
	cr_assert_eq(rn_strata(out, sizeof(out), "rm -f q"), 0, "%s", out);
}

RTEST(cgroup, cleanup_after_exit)
{
	char id[65];
	int r = rn_strata(out, sizeof(out), "run --name cl -m 32m --cpus 1 --pids-limit 10 busybox true");

	cr_assert_eq(r, 0, "%s", out);
	rn_id("cl", id);
	r = rn_sh(out, sizeof(out), "find /sys/fs/cgroup -maxdepth 4 -name %s", id);
	cr_expect(!out[0], "cgroups of an exited container still there:\n%s", out);
	cr_assert_eq(rn_strata(out, sizeof(out), "rm cl"), 0, "%s", out);
	rn_assert_gone(id, 0);
}

/* Docker's default device policy (the devices cgroup on v1, a
 * BPF_CGROUP_DEVICE program on v2): any node may be made (CAP_MKNOD stays),
 * but only null, zero, full, random, urandom, tty, console, ptmx and the
 * ptys may be opened, whatever their name. */
#define DENIED_DEVS \
	"for d in \"c 1 11\" \"c 10 237\" \"c 1 2\" \"b 7 0\"; do " \
	"  n=/dev/x$(echo $d | tr -d \" \"); mknod $n $d 2>/dev/null; " \
	"  if [ -e $n ] && (: <$n) 2>/dev/null; then echo opened-$d; fi; done; "

RTEST(cgroup, device_policy)
{
	int r = rn_strata(out, sizeof(out),
			  "run --rm -t busybox sh -c '" DENIED_DEVS
			  "mknod /dev/n2 c 1 3 && echo x >/dev/n2 && echo null-by-other-name; "
			  "for f in null zero full random urandom tty ptmx; do "
			  "  (: <>/dev/$f) 2>/dev/null && echo ok-$f; done; echo done'");

	cr_assert_eq(r, 0, "exit %d:\n%s", r, out);
	cr_expect(!strstr(out, "opened-"), "a disallowed device opened:\n%s", out);
	cr_expect(strstr(out, "null-by-other-name"), "mknod'ed 1:3 refused:\n%s", out);
	cr_expect(strstr(out, "ok-null") && strstr(out, "ok-zero") && strstr(out, "ok-full") &&
		  strstr(out, "ok-random") && strstr(out, "ok-urandom") && strstr(out, "ok-tty") &&
		  strstr(out, "ok-ptmx") && strstr(out, "done"),
		  "an allowed device refused:\n%s", out);
	/* `strata exec` joins the same restriction. */
	r = rn_strata(out, sizeof(out), "run -d --name dv busybox sleep 600");
	cr_assert_eq(r, 0, "%s", out);
	r = rn_strata(out, sizeof(out), "exec dv sh -c '" DENIED_DEVS "echo done'");
	cr_expect(r == 0 && strstr(out, "done") && !strstr(out, "opened-"),
		  "exec: a disallowed device opened (exit %d):\n%s", r, out);
	cr_assert_eq(rn_strata(out, sizeof(out), "rm -f dv"), 0, "%s", out);
}

/* busybox free's "Mem:" total (kB, from sysinfo(2)); 0 when missing. */
static unsigned long free_total(const char *text)
{
	const char *m = strstr(text, "Mem:");

	return m ? strtoul(m + 4, NULL, 10) : 0;
}

/* sysinfo(2) and sched_getaffinity(2) answered by the monitor (seccomp
 * user notification): busybox free and uptime, nproc under --cpus. */
RTEST(cgroup, sysinfo_and_affinity)
{
	char *host = rn_slurp("/proc/meminfo"), *t;
	unsigned long host_total = host && (t = strstr(host, "MemTotal:")) ? strtoul(t + 9, NULL, 10) : 0;
	int r;

	free(host);
	r = rn_strata(out, sizeof(out), "run --rm -m 64m busybox sh -c 'free; uptime'");
	cr_assert_eq(r, 0, "exit %d:\n%s", r, out);
	cr_expect_eq(free_total(out), 65536, "free total not 64 MiB:\n%s", out);
	cr_expect(strstr(out, "up 0 min") || strstr(out, "up 1 min"), "uptime not the container's:\n%s", out);
	r = rn_strata(out, sizeof(out), "run --rm --cpus 1 busybox nproc");
	cr_expect(r == 0 && !strcmp(out, "1\n"), "nproc under --cpus 1 (exit %d): %s", r, out);
	r = rn_strata(out, sizeof(out), "run --rm busybox free");
	cr_expect(r == 0 && free_total(out) == host_total, "free without limits (host %lu):\n%s",
		  host_total, out);
	/* exec'd processes are answered too, even once `strata exec` is gone. */
	r = rn_strata(out, sizeof(out), "run -d --name si -m 32m busybox sleep 600");
	cr_assert_eq(r, 0, "%s", out);
	r = rn_strata(out, sizeof(out), "exec si free");
	cr_expect(r == 0 && free_total(out) == 32768, "exec free (exit %d):\n%s", r, out);
	r = rn_strata(out, sizeof(out), "exec si sh -c '(sleep 1; free >/tmp/f) >/dev/null 2>&1 &'");
	cr_expect_eq(r, 0, "%s", out);
	rn_msleep(2500);
	r = rn_strata(out, sizeof(out), "exec si cat /tmp/f");
	cr_expect(r == 0 && free_total(out) == 32768, "orphan of exec: free (exit %d):\n%s", r, out);
	cr_assert_eq(rn_strata(out, sizeof(out), "rm -f si"), 0, "%s", out);
}

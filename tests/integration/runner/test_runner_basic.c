/* strata run: isolation (hostname, pid 1, process list), /proc truth
 * (the README's command), exec, exit statuses, and bad input. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rn_harness.h"

static char out[1 << 16];

RTEST(basic, hostname_and_pid1)
{
	int r = rn_strata(out, sizeof(out),
			  "run --rm --hostname box1 busybox sh -c 'hostname; echo pid=$$; cat /proc/1/comm; cat /etc/hostname'");

	cr_assert_eq(r, 0, "exit %d: %s", r, out);
	cr_expect(strstr(out, "box1\npid=2\nstrata-init\nbox1\n"), "unexpected output:\n%s", out);
}

RTEST(basic, default_hostname_is_short_id)
{
	char id[65];
	int r = rn_strata(out, sizeof(out), "run --name hn busybox hostname");

	cr_assert_eq(r, 0, "exit %d: %s", r, out);
	rn_id("hn", id);
	cr_assert(id[0], "no id for 'hn'");
	cr_expect(!strncmp(out, id, 12) && out[12] == '\n', "hostname '%s' is not the short id %.12s",
		  out, id);
}

/* Only the container's processes: its init, the shell, ps itself. */
RTEST(basic, ps_shows_only_the_container)
{
	int r = rn_strata(out, sizeof(out), "run --rm busybox sh -c 'ps -o pid,comm; true'");
	int lines = -1; /* the header */

	cr_assert_eq(r, 0, "exit %d: %s", r, out);
	for (char *p = out; (p = strchr(p, '\n')); p++)
		lines++;
	cr_expect_eq(lines, 3, "expected init, sh and ps only:\n%s", out);
	cr_expect(strstr(out, "1 strata-init"), "%s", out);
}

/* The README's main command: the memory limit in top's header and in
 * /proc/meminfo, one CPU for nproc and in cpuinfo. */
RTEST(basic, readme_command_shows_limits)
{
	int r = rn_strata(out, sizeof(out),
			  "run --rm -m 256m --cpuset-cpus 0 busybox sh -c 'top -bn1 | head -4; nproc; "
			  "head -1 /proc/meminfo; grep -c ^processor /proc/cpuinfo; head -c 200 /proc/uptime'");
	unsigned long used, free_kb;
	char *mem = strstr(out, "Mem: "), *total;

	cr_assert_eq(r, 0, "exit %d: %s", r, out);
	cr_assert(mem && sscanf(mem, "Mem: %luK used, %luK free", &used, &free_kb) == 2,
		  "no top header:\n%s", out);
	cr_expect_eq(used + free_kb, 262144, "top shows %lu KiB total, not 256 MiB:\n%s",
		     used + free_kb, out);
	cr_expect(strstr(out, "\n1\n"), "nproc/cpuinfo is not 1:\n%s", out);
	total = strstr(out, "MemTotal:");
	cr_expect(total && strtoul(total + 9, NULL, 10) == 262144, "MemTotal is not 256 MiB:\n%s",
		  out);
}

RTEST(basic, exec_sees_the_same_pids)
{
	char id[65], a[4096];
	int r = rn_strata(out, sizeof(out), "run -d --name ex busybox sleep 600");

	cr_assert_eq(r, 0, "run -d: %d %s", r, out);
	r = rn_strata(a, sizeof(a), "exec ex ps -o pid,comm");
	cr_assert_eq(r, 0, "exec: %d %s", r, a);
	cr_expect(strstr(a, "1 strata-init") && strstr(a, "2 sleep") && strstr(a, "3 ps"),
		  "exec's ps does not show the container's processes:\n%s", a);
	r = rn_strata(a, sizeof(a), "exec -e X=42 -w /tmp ex sh -c 'echo $X; pwd; hostname; exit 7'");
	rn_id("ex", id);
	cr_expect_eq(r, 7, "exec's exit status: %d", r);
	cr_expect(!strncmp(a, "42\n/tmp\n", 8) && !strncmp(a + 8, id, 12),
		  "exec's env, workdir or hostname (%.12s): %s", id, a);
	r = rn_strata(a, sizeof(a), "exec ex nosuchcommand");
	cr_expect_eq(r, 127, "exec of a missing command: %d %s", r, a);
	cr_expect(strstr(a, "executable file not found"), "%s", a);
	r = rn_strata(a, sizeof(a), "rm -f ex");
	cr_assert_eq(r, 0, "rm -f: %s", a);
	rn_assert_gone(id, 0);
}

RTEST(basic, exit_statuses)
{
	cr_expect_eq(rn_strata(out, sizeof(out), "run --rm busybox sh -c 'exit 3'"), 3);
	cr_expect_eq(rn_strata(out, sizeof(out), "run --rm busybox sh -c 'kill -TERM $$'"), 143,
		     "%s", out);
	cr_expect_eq(rn_strata(out, sizeof(out), "run --rm busybox nosuchcommand"), 127);
	cr_expect(strstr(out, "exec: \"nosuchcommand\": executable file not found in $PATH"), "%s",
		  out);
	cr_expect_eq(rn_strata(out, sizeof(out), "run --rm busybox /etc/passwd"), 126);
}

/* Every refusal: a clear one-line error, a non-zero status, and no
 * container, state, cgroup or name left. */
static void refused(const char *args, const char *expect)
{
	char ls[4096];
	int r = rn_strata(out, sizeof(out), "run %s", args);

	cr_expect(r != 0, "'strata run %s' succeeded", args);
	cr_expect(strstr(out, expect), "'strata run %s': expected '%s' in:\n%s", args, expect, out);
	cr_expect(strchr(out, '\n') == out + strlen(out) - 1, "not one line:\n%s", out);
	rn_sh(ls, sizeof(ls), "ls -A '%s'/containers; ls '%s' | grep -v '^names$'; ls '%s/names'",
	      rn_root(), rn_run(), rn_run());
	cr_expect(!ls[0], "'strata run %s' left something behind:\n%s", args, ls);
	snprintf(ls, sizeof(ls), "upperdir=%s/containers/", rn_root());
	for (int i = 0; i < 50 && rn_procs_naming(ls) > 0; i++)
		rn_msleep(20);
	cr_expect_eq(rn_procs_naming(ls), 0, "'strata run %s' left a strata-unionfs daemon", args);
}

RTEST(basic, bad_input_leaves_nothing)
{
	refused("--rm nosuchimage true", "unable to find image 'nosuchimage'");
	refused("--rm -m abc busybox true", "invalid value 'abc' for --memory");
	refused("--rm --cpus -1 busybox true", "invalid value '-1' for --cpus");
	refused("--rm --cpus 0 busybox true", "--cpus");
	refused("--rm -v /nonexistent/src:/data busybox true", "volume source /nonexistent/src: ENOENT");
	refused("--rm -v relative/x:/data busybox true", "invalid volume name");
	refused("--rm --cpuset-cpus 1023 busybox true", "--cpuset-cpus");
	refused("--rm --bogus busybox true", "unknown option '--bogus'");
	refused("--rm --name 'bad name' busybox true", "invalid container name");
	/* Refusals that come from inside the container's setup, after the
	 * cgroups, the union and its daemon exist. */
	refused("--rm -w /etc/passwd/x busybox true", "working directory /etc/passwd/x: ENOTDIR");
	refused("-v /etc/hostname:/bin busybox true", "bind /etc/hostname on /bin: ENOTDIR");
}

RTEST(basic, name_in_use)
{
	char id[65];
	int r = rn_strata(out, sizeof(out), "run -d --name taken busybox sleep 600");

	cr_assert_eq(r, 0, "%s", out);
	rn_id("taken", id);
	r = rn_strata(out, sizeof(out), "run --rm --name taken busybox true");
	cr_expect(r != 0, "a second 'taken' was started");
	cr_expect(strstr(out, "the container name \"taken\" is already in use"), "%s", out);
	r = rn_strata(out, sizeof(out), "ps -a -q | wc -l");
	cr_expect_eq(atoi(out), 1, "containers after the refusal: %s", out);
	rn_strata(out, sizeof(out), "rm -f taken");
	rn_assert_gone(id, 0);
}

/* Eight runs racing for one name: exactly one wins, the others leave
 * nothing behind. */
RTEST(basic, concurrent_names_one_winner)
{
	char n[64];
	int r = rn_sh(out, sizeof(out),
		      "for i in 1 2 3 4 5 6 7 8; do '%s' run -d --name race busybox sleep 600 >/dev/null 2>&1 & done; wait",
		      getenv("STRATA_BIN") ? getenv("STRATA_BIN") : "strata");

	cr_assert_eq(r, 0, "%s", out);
	rn_strata(n, sizeof(n), "ps -a -q | wc -l");
	cr_expect_eq(atoi(n), 1, "%s containers exist, expected 1", n);
	rn_sh(n, sizeof(n), "ls -A '%s'/containers | wc -l", rn_root());
	cr_expect_eq(atoi(n), 1, "%s container dirs exist, expected 1", n);
}

/* -t: a pty from the container's own devpts, /dev/console on it, TERM;
 * -i -t: our terminal's input and window size reach it (script(1) gives
 * the test a terminal). */
RTEST(basic, tty_and_interactive)
{
	const char *bin = getenv("STRATA_BIN") ? getenv("STRATA_BIN") : "strata";
	int r = rn_strata(out, sizeof(out),
			  "run --rm -t busybox sh -c 'tty; [ -c /dev/console ] && echo console; echo $TERM'");

	cr_expect_eq(r, 0, "%s", out);
	cr_expect(strstr(out, "/dev/pts/0\r\nconsole\r\nxterm\r\n"), "-t output:\n%s", out);
	r = rn_sh(out, sizeof(out),
		  "printf 'stty size; echo in-$((6*7)); exit 5\\n' | "
		  "script -qec \"stty rows 33 cols 101; '%s' run --rm -it busybox sh\" /dev/null; echo rc=$?",
		  bin);
	cr_expect(strstr(out, "33 101") && strstr(out, "in-42"), "-it output:\n%s", out);
	cr_expect(strstr(out, "rc=5"), "-it exit status:\n%s", out);
	r = rn_sh(out, sizeof(out), "printf 'a\\nb\\nc\\n' | '%s' run --rm -i busybox wc -l", bin);
	cr_expect(r == 0 && !strcmp(out, "3\n"), "-i: %s", out);
}

/* Docker's default restrictions, as the container sees them. */
RTEST(basic, hardening)
{
	int r = rn_strata(out, sizeof(out),
			  "run --rm busybox sh -c '"
			  "grep -E \"^(CapEff|CapBnd|CapInh|NoNewPrivs|Seccomp):\" /proc/self/status; "
			  "unshare -n true 2>/dev/null || echo unshare-denied; "
			  "mount -t tmpfs t /mnt 2>/dev/null || echo mount-denied; "
			  "echo 1 > /proc/sys/vm/drop_caches 2>/dev/null || echo procsys-ro; "
			  "readlink /proc/1/exe >/dev/null 2>&1 || echo init-exe-hidden; "
			  "grep CapEff /proc/1/status; ls /proc/1/fd 2>/dev/null | wc -l; "
			  "[ -s /proc/timer_list ] || echo timer_list-masked; "
			  "ls /sys/firmware | wc -l; [ $(ulimit -n) = $(ulimit -Hn) ] && echo nofile-max'");

	cr_assert_eq(r, 0, "%s", out);
	cr_expect(strstr(out, "CapInh:\t0000000000000000\n"), "%s", out);
	cr_expect(strstr(out, "CapBnd:\t00000000a80425fb\n") && strstr(out, "CapEff:\t00000000a80425fb\n"),
		  "not docker's default capabilities:\n%s", out);
	cr_expect(strstr(out, "NoNewPrivs:\t1\n") && strstr(out, "Seccomp:\t2\n"), "%s", out);
	cr_expect(strstr(out, "unshare-denied") && strstr(out, "mount-denied") &&
		  strstr(out, "procsys-ro") && strstr(out, "init-exe-hidden") &&
		  strstr(out, "timer_list-masked"), "%s", out);
	/* pid 1 keeps no capability and only its three /dev/null fds. */
	cr_expect(strstr(out, "CapEff:\t0000000000000000\n3\n"), "pid 1:\n%s", out);
	cr_expect(strstr(out, "\n0\nnofile-max\n"), "/sys/firmware not masked, or NOFILE:\n%s", out);
}

/* An fd the caller of `strata exec` or `strata run` holds beyond 0-2 never
 * reaches the command: a host directory fd would lead out of the root. */
RTEST(basic, caller_fds_stay_outside)
{
	char a[4096];
	int r = rn_strata(out, sizeof(out), "run -d --name fdx busybox sleep 600");

	cr_assert_eq(r, 0, "run -d: %d %s", r, out);
	r = rn_strata(a, sizeof(a), "exec fdx sh -c 'ls /proc/self/fd/7/ >/dev/null 2>&1 && echo LEAKED; true' 7</");
	cr_expect(r == 0 && !strstr(a, "LEAKED"), "exec: a host fd reached the command (%d):\n%s", r, a);
	r = rn_strata(a, sizeof(a), "run --rm busybox sh -c 'ls /proc/self/fd/7/ >/dev/null 2>&1 && echo LEAKED; true' 7</");
	cr_expect(r == 0 && !strstr(a, "LEAKED"), "run: a host fd reached the command (%d):\n%s", r, a);
	rn_strata(a, sizeof(a), "rm -f fdx");
}

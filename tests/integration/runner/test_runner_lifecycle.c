/* Lifecycle: -d, ps, logs, stop, rm, rm -f, --rm, SIGKILL from outside;
 * after each end nothing is left (state, dirs, cgroups, daemons, mounts). */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rn_harness.h"

static char out[1 << 16];

static pid_t init_pid(const char *ref)
{
	char v[64];

	return rn_inspect(ref, "State.Pid", v, sizeof(v)) ? (pid_t)atoi(v) : 0;
}

RTEST(lifecycle, detach_ps_logs_stop_rm)
{
	char id[65], v[64];
	pid_t pid;
	int r = rn_strata(out, sizeof(out),
			  "run -d --name d1 busybox sh -c 'echo hello; echo err >&2; trap \"echo bye; exit 0\" TERM; "
			  "while :; do sleep 0.1; done'");

	cr_assert_eq(r, 0, "%s", out);
	rn_id("d1", id);
	cr_expect(!strncmp(out, id, 64), "run -d printed '%s', not the id", out);
	pid = init_pid("d1");
	cr_assert(pid > 0 && rn_pid_alive(pid), "no running init");
	r = rn_strata(out, sizeof(out), "ps");
	cr_expect(strstr(out, "CONTAINER ID") && strstr(out, "d1") && strstr(out, "Up "), "%s", out);
	r = rn_strata(out, sizeof(out), "ps --format json");
	cr_expect(strstr(out, "\"Name\":\"d1\"") || strstr(out, "\"Name\": \"d1\""), "%s", out);
	rn_msleep(300);
	r = rn_strata(out, sizeof(out), "logs d1");
	cr_expect(r == 0 && strstr(out, "hello\n") && strstr(out, "err\n"), "logs: %s", out);
	r = rn_strata(out, sizeof(out), "rm d1");
	cr_expect(r != 0 && strstr(out, "is running"), "rm of a running container: %d %s", r, out);
	r = rn_strata(out, sizeof(out), "stop -t 10 d1");
	cr_assert_eq(r, 0, "stop: %s", out);
	cr_expect(!rn_pid_alive(pid), "init alive after stop");
	cr_expect(rn_inspect("d1", "State.Status", v, sizeof(v)) && !strcmp(v, "exited"), "%s", v);
	cr_expect(rn_inspect("d1", "State.ExitCode", v, sizeof(v)) && !strcmp(v, "0"),
		  "the TERM trap's exit 0 was not recorded: %s", v);
	r = rn_strata(out, sizeof(out), "logs d1");
	cr_expect(strstr(out, "bye\n"), "%s", out);
	r = rn_strata(out, sizeof(out), "ps -a");
	cr_expect(strstr(out, "Exited (0)"), "%s", out);
	r = rn_strata(out, sizeof(out), "rm d1");
	cr_assert_eq(r, 0, "rm: %s", out);
	rn_assert_gone(id, pid);
	r = rn_strata(out, sizeof(out), "inspect d1");
	cr_expect(r != 0, "inspect after rm: %s", out);
}

RTEST(lifecycle, stop_escalates_to_sigkill)
{
	char id[65], v[64];
	pid_t pid;
	int r = rn_strata(out, sizeof(out), "run -d --name k1 busybox sh -c 'trap \"\" TERM; while :; do sleep 0.1; done'");

	cr_assert_eq(r, 0, "%s", out);
	rn_id("k1", id);
	pid = init_pid("k1");
	rn_msleep(200);
	r = rn_strata(out, sizeof(out), "stop -t 1 k1");
	cr_assert_eq(r, 0, "%s", out);
	cr_expect(rn_inspect("k1", "State.ExitCode", v, sizeof(v)) && !strcmp(v, "137"), "exit %s", v);
	cr_assert_eq(rn_strata(out, sizeof(out), "rm k1"), 0, "%s", out);
	rn_assert_gone(id, pid);
}

RTEST(lifecycle, rm_force_kills)
{
	char id[65];
	pid_t pid;
	int r = rn_strata(out, sizeof(out), "run -d --name f1 -m 64m --cpus 0.5 --pids-limit 50 busybox sleep 600");

	cr_assert_eq(r, 0, "%s", out);
	rn_id("f1", id);
	pid = init_pid("f1");
	r = rn_strata(out, sizeof(out), "rm -f f1");
	cr_assert_eq(r, 0, "%s", out);
	rn_assert_gone(id, pid);
}

/* The init killed from outside: its monitor records 137, rm -f cleans. */
RTEST(lifecycle, sigkill_from_outside_then_rm_f)
{
	char id[65], v[64];
	pid_t pid;
	int r = rn_strata(out, sizeof(out), "run -d --name s1 -m 64m busybox sh -c 'sleep 600 & wait'");

	cr_assert_eq(r, 0, "%s", out);
	rn_id("s1", id);
	pid = init_pid("s1");
	cr_assert(pid > 0);
	cr_assert_eq(kill(pid, SIGKILL), 0);
	for (int i = 0; i < 100; i++) {
		if (rn_inspect("s1", "State.Status", v, sizeof(v)) && !strcmp(v, "exited"))
			break;
		rn_msleep(50);
	}
	cr_expect(!strcmp(v, "exited"), "status after SIGKILL: %s", v);
	cr_expect(rn_inspect("s1", "State.ExitCode", v, sizeof(v)) && !strcmp(v, "137"), "%s", v);
	r = rn_strata(out, sizeof(out), "rm -f s1");
	cr_assert_eq(r, 0, "%s", out);
	rn_assert_gone(id, pid);
}

/* A foreground --rm container removes itself; so does a -d --rm one. */
RTEST(lifecycle, auto_remove)
{
	char id[65], ls[4096];
	int r = rn_strata(out, sizeof(out), "run --rm --name r1 -m 64m busybox sh -c 'cat /etc/hostname'");

	cr_assert_eq(r, 0, "%s", out);
	id[0] = '\0';
	rn_sh(ls, sizeof(ls), "ls -A '%s'/containers; ls '%s' | grep -v '^names$'; ls -A '%s/names'",
	      rn_root(), rn_run(), rn_run());
	cr_expect(!ls[0], "--rm left:\n%s", ls);
	r = rn_strata(out, sizeof(out), "run -d --rm --name r2 busybox sleep 1");
	cr_assert_eq(r, 0, "%s", out);
	snprintf(id, sizeof(id), "%.64s", out);
	for (int i = 0; i < 100; i++) {
		rn_sh(ls, sizeof(ls), "ls '%s' | grep -v '^names$'", rn_run());
		if (!ls[0])
			break;
		rn_msleep(50);
	}
	rn_assert_gone(id, 0);
}

/* stop of a foreground container: the runner itself records and exits
 * with the command's status. */
RTEST(lifecycle, stop_foreground)
{
	char id[65] = "", buf[256];
	FILE *f;
	int r;

	snprintf(buf, sizeof(buf), "'%s' run --name fg busybox sleep 600 2>&1; echo rc=$?",
		 getenv("STRATA_BIN") ? getenv("STRATA_BIN") : "strata");
	f = popen(buf, "r");
	cr_assert(f);
	for (int i = 0; i < 100 && !id[0]; i++) {
		rn_msleep(50);
		rn_id("fg", id);
	}
	rn_msleep(300);
	r = rn_strata(out, sizeof(out), "stop -t 5 fg");
	cr_expect_eq(r, 0, "%s", out);
	cr_expect(fgets(buf, sizeof(buf), f) && !strcmp(buf, "rc=143\n"), "runner printed '%s'", buf);
	pclose(f);
	cr_assert_eq(rn_strata(out, sizeof(out), "rm fg"), 0, "%s", out);
	rn_assert_gone(id, 0);
}

/* The foreground runner SIGKILLed: its container dies with it
 * (PR_SET_PDEATHSIG), shows as exited, and rm removes everything. */
RTEST(lifecycle, runner_killed)
{
	char id[65] = "", v[64] = "";
	pid_t runner, pid = 0;

	runner = fork();
	cr_assert(runner >= 0);
	if (runner == 0) {
		int null = open("/dev/null", O_RDWR);

		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
		execl(getenv("STRATA_BIN") ? getenv("STRATA_BIN") : "strata", "strata", "run", "--name",
		      "orphan", "-m", "64m", "busybox", "sleep", "600", (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 200 && pid <= 0; i++) {
		rn_msleep(25);
		pid = rn_inspect("orphan", "State.Status", v, sizeof(v)) && !strcmp(v, "running")
			      ? init_pid("orphan") : 0;
	}
	cr_assert(pid > 0, "the container did not start");
	rn_id("orphan", id);
	kill(runner, SIGKILL);
	waitpid(runner, NULL, 0);
	for (int i = 0; i < 100 && rn_pid_alive(pid); i++)
		rn_msleep(20);
	cr_expect(!rn_pid_alive(pid), "the container outlived its runner");
	cr_expect(rn_inspect("orphan", "State.Status", v, sizeof(v)) && !strcmp(v, "exited"), "%s", v);
	cr_assert_eq(rn_strata(out, sizeof(out), "rm orphan"), 0, "%s", out);
	rn_assert_gone(id, pid);
}

/* `run -d` returns at once for a caller reading a pipe to its end: neither
 * the monitor nor a daemon it starts (strata-procfs too, started afresh
 * here) keeps an fd the caller gave the runner. */
RTEST(lifecycle, detach_keeps_no_caller_fd)
{
	int r;

	rn_sh(out, sizeof(out), "umount %s/procfs", rn_root());
	r = rn_sh(out, sizeof(out),
		  "timeout 30 sh -c '\"$STRATA_BIN\" run -d --name pipe busybox sleep 600 3>&1 | cat >/dev/null'");
	cr_expect_eq(r, 0, "run -d held its caller's pipe open (%d): %s", r, out);
	rn_strata(out, sizeof(out), "rm -f pipe");
	r = rn_sh(out, sizeof(out),
		  "timeout 30 sh -c '\"$STRATA_BIN\" run --rm busybox true 3>&1 | cat >/dev/null'");
	cr_expect_eq(r, 0, "a daemon held the caller's pipe open (%d): %s", r, out);
}

/* A damaged config.json (wrong types where arrays and strings belong) is
 * read as missing fields: ps, inspect and rm -f report, never crash. */
RTEST(lifecycle, corrupt_config)
{
	char id[65];
	int r = rn_strata(out, sizeof(out), "run -d --name bad busybox sleep 600");

	cr_assert_eq(r, 0, "%s", out);
	rn_id("bad", id);
	r = rn_sh(out, sizeof(out),
		  "python3 -c 'import json,sys; f=sys.argv[1]; c=json.load(open(f)); "
		  "c.update(volumes=5, argv=[None, 7], env={\"a\": 1}, limits=[1]); "
		  "json.dump(c, open(f, \"w\"))' %s/%s/config.json",
		  rn_run(), id);
	cr_assert_eq(r, 0, "editing config.json: %s", out);
	r = rn_strata(out, sizeof(out), "ps -a");
	cr_expect(r == 0 && strstr(out, "bad"), "ps -a (exit %d):\n%s", r, out);
	r = rn_strata(out, sizeof(out), "inspect bad");
	cr_expect(r >= 0 && r < 128, "inspect crashed (exit %d):\n%s", r, out);
	r = rn_strata(out, sizeof(out), "rm -f bad");
	cr_expect_eq(r, 0, "rm -f (exit %d):\n%s", r, out);
	rn_assert_gone(id, 0);
}

/* A `created` container whose runner died during setup is shown exited,
 * not Created forever (its state names the runner, which is gone). */
RTEST(lifecycle, created_with_dead_runner)
{
	char id[65], v[64];
	pid_t dead = fork();
	int r;

	cr_assert(dead >= 0);
	if (dead == 0)
		_exit(0);
	waitpid(dead, NULL, 0);
	r = rn_strata(out, sizeof(out), "run --name half2 busybox true");
	cr_assert_eq(r, 0, "%s", out);
	rn_id("half2", id);
	/* What a runner killed before its child ran leaves: a created state
	 * naming it as the monitor. */
	r = rn_sh(out, sizeof(out), "f=%s/%s/state.json; python3 -c 'import json,sys; f=sys.argv[1]; "
		  "s=json.load(open(f)); s.update(status=\"created\", monitor=%d, monitor_start=1); "
		  "json.dump(s, open(f, \"w\"))' $f", rn_run(), id, (int)dead);
	cr_assert_eq(r, 0, "%s", out);
	cr_expect(rn_inspect("half2", "State.Status", v, sizeof(v)) && !strcmp(v, "exited"),
		  "status %s", v);
	r = rn_strata(out, sizeof(out), "ps -a");
	cr_expect(r == 0 && strstr(out, "half2") && !strstr(out, "Created"), "ps -a:\n%s", out);
	cr_assert_eq(rn_strata(out, sizeof(out), "rm half2"), 0, "%s", out);
}

#!/usr/bin/env bash
# Installs the dependencies, builds Strata with -Werror and runs every test.
#
#   tests/run-all.sh [MESON-TEST-ARGS...]     e.g. tests/run-all.sh --suite unit
#
# The last line printed is always "N passed, N failed", counted per test case:
# each Criterion test case (from its TAP output) is one, every other meson test
# (e.g. the differential test) is one, scripts/demo-union.sh and
# scripts/main-job.sh (the README's first command) are one each; a build
# failure is one failure, and so is every strata FUSE mount still present after
# the run (which is then lazily unmounted).  Skipped cases are not counted.
# Exits non-zero when anything failed.
#
# Environment:
#   BUILD_DIR         build directory (default: build, in the source tree)
#   STRATA_SKIP_DEPS  1 = do not run scripts/install-deps.sh
#   STRATA_SKIP_DEMO  1 = do not run scripts/demo-union.sh and scripts/main-job.sh
#                     as smoke tests
#                     (it runs, as one more test, only when no arguments are given)
#   STRATA_PRIVATE_MNTNS  1 = run in a private mount namespace (unshare -m), so
#                     that on a shared machine this run can neither see nor
#                     unmount anybody else's strata mounts
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 1
if [[ ${STRATA_PRIVATE_MNTNS:-0} == 1 && -z ${STRATA_IN_MNTNS:-} ]]; then
	exec env STRATA_IN_MNTNS=1 unshare --mount --propagation private -- "$ROOT/tests/run-all.sh" "$@"
fi
BUILD_DIR=${BUILD_DIR:-build}
PYTHON=python3
[[ -x /usr/bin/python3 ]] && PYTHON=/usr/bin/python3 # meson's own interpreter

log() { printf 'run-all: %s\n' "$*" >&2; }

# --- leftover FUSE mounts -------------------------------------------------
# Prints "ID<TAB>MOUNTPOINT<TAB>MAJOR:MINOR" for every strata FUSE mount
# visible in this mount namespace, innermost (most recent) first.  Matches the
# fstype fuse.strata* (what strata-unionfs, mount -t fuse.strata-unionfs and
# subtype= give) and plain fuse mounts whose source (fsname) starts "strata".
strata_mounts() {
	[[ -r /proc/self/mountinfo ]] || return 0
	awk '{
		sep = 0
		for (i = 7; i <= NF; i++) if ($i == "-") { sep = i; break }
		if (!sep) next
		fstype = $(sep + 1); src = $(sep + 2)
		if (fstype ~ /^fuse(blk)?\.strata/ || (fstype ~ /^fuse(blk)?$/ && src ~ /^strata/))
			print $1 "\t" $5 "\t" $3
	}' /proc/self/mountinfo | tac
}

# Mounts that existed before this run (someone else's, e.g. a developer's
# own union on a shared machine) are never touched; they are only reported.
# Each is remembered as "ID:MAJOR:MINOR" (IDs alone can be reused).
preexisting=" $(strata_mounts | awk -F '\t' '{ print $1 ":" $3 }' | tr '\n' ' ') "

# Unmounts every strata FUSE mount made since this script started; prints
# how many there were.
unmount_leftovers() {
	local n=0 id mp dev minor path
	while IFS=$'\t' read -r id mp dev; do
		[[ -n $id && $preexisting != *" $id:$dev "* ]] || continue
		# mountinfo escapes space, tab, newline and backslash as \ooo.
		path=$(printf '%b' "${mp//\\/\\0}")
		log "leftover FUSE mount: $path (unmounting it)"
		n=$((n + 1))
		# Abort the connection first so a hung daemon cannot block us.
		minor=${dev#*:}
		if [[ -w /sys/fs/fuse/connections/$minor/abort ]]; then
			echo 1 >"/sys/fs/fuse/connections/$minor/abort" 2>/dev/null || true
		fi
		umount -l -- "$path" 2>/dev/null ||
			fusermount3 -u -z -- "$path" 2>/dev/null ||
			log "could not unmount $path"
	done < <(strata_mounts)
	echo "$n"
}

finish_build_failure() {
	log "$1"
	unmount_leftovers >/dev/null
	echo "0 passed, 1 failed"
	exit 1
}

# --- dependencies and build ------------------------------------------------
scripts/install-deps.sh || finish_build_failure "installing the dependencies failed"

if [[ -n ${preexisting// /} ]]; then
	log "strata FUSE mounts that existed before this run (left alone, not counted):"
	strata_mounts | cut -f2 | sed 's/^/    /' >&2
fi

setup_opts=(-Dwerror=true -Dtests=enabled)
if [[ -f $BUILD_DIR/meson-private/coredata.dat ]]; then
	if ! meson setup --reconfigure "$BUILD_DIR" "${setup_opts[@]}"; then
		log "reconfigure failed; wiping $BUILD_DIR"
		meson setup --wipe "$BUILD_DIR" "${setup_opts[@]}" ||
			finish_build_failure "meson setup failed"
	fi
else
	meson setup "$BUILD_DIR" "${setup_opts[@]}" || finish_build_failure "meson setup failed"
fi
ninja -C "$BUILD_DIR" || finish_build_failure "build failed"

# --- tests -----------------------------------------------------------------
# FUSE over io_uring is a fuse module parameter, off by default: on for the
# run (as it was afterwards), so that every union suite runs through the
# rings and, as the suite 'devfuse', again through /dev/fuse.
uring_param=/sys/module/fuse/parameters/enable_uring uring_was=
if [[ -w $uring_param ]]; then
	uring_was=$(cat "$uring_param")
	echo Y >"$uring_param" || uring_was=
else
	log "the kernel has no FUSE io_uring: the union suites run through /dev/fuse only"
fi
intro=$(mktemp)
trap 'rm -f "$intro"; [[ -n $uring_was ]] && echo "$uring_was" >"$uring_param"' EXIT
meson introspect --tests "$BUILD_DIR" >"$intro" || echo '[]' >"$intro"

testlog=$BUILD_DIR/meson-logs/testlog.json
rm -f "$testlog"
meson test -C "$BUILD_DIR" --print-errorlogs --no-rebuild "$@" </dev/null
meson_rc=$?

# Smoke tests on full runs, one test each: scripts/demo-union.sh, and the
# README's first command, scripts/main-job.sh, whose container must show its
# 256 MiB in /proc/meminfo and one CPU in nproc.  The main job runs on a
# temporary $STRATA_ROOT/$STRATA_RUN, whose strata-procfs is unmounted after.
smoke_passed=0 smoke_failed=0
smoke() { # NAME LOG COMMAND...
	local name=$1 slog=$2
	shift 2
	if "$@" </dev/null >"$slog" 2>&1; then
		smoke_passed=$((smoke_passed + 1))
		log "$name: ok"
	else
		smoke_failed=$((smoke_failed + 1))
		log "$name: FAILED; its output ($slog):"
		sed 's/^/    /' "$slog" >&2
	fi
}
main_job_shows_limits() {
	local dir rc=1
	dir=$(mktemp -d /tmp/strata-main-job.XXXXXX) || return 1
	STRATA_SKIP_DEPS=1 BUILD_DIR=$BUILD_DIR STRATA_ROOT=$dir/root STRATA_RUN=$dir/run \
		timeout --kill-after=10 300 scripts/main-job.sh >"$dir/out" 2>&1 &&
		grep -Eq '^MemTotal: +262144 kB$' "$dir/out" && grep -qx 1 "$dir/out" && rc=0
	cat "$dir/out"
	umount "$dir/root/procfs" 2>/dev/null
	rm -rf "$dir"
	return $rc
}
if (($# == 0)) && [[ ${STRATA_SKIP_DEMO:-0} != 1 ]]; then
	smoke demo-union "$BUILD_DIR/meson-logs/demo-union.txt" \
		env STRATA_SKIP_DEPS=1 BUILD_DIR="$BUILD_DIR" timeout --kill-after=10 120 scripts/demo-union.sh
	smoke main-job "$BUILD_DIR/meson-logs/main-job.txt" main_job_shows_limits
fi

leftover=$(unmount_leftovers)

# Per-test-case aggregation.  Prints a per-test table and the failed cases on
# stderr and "PASSED FAILED" on stdout.
counts=$("$PYTHON" - "$intro" "$testlog" "$leftover" "$#" <<'PY'
import json, re, sys

intro_path, log_path, leftover, nargs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
err = sys.stderr

try:
    with open(intro_path) as f:
        intro = json.load(f)
except (OSError, ValueError):
    intro = []
proto_by_cmd = {tuple(t.get('cmd') or []): t.get('protocol', 'exitcode') for t in intro}
proto_by_name = {t['name']: t.get('protocol', 'exitcode') for t in intro}

runs = []
try:
    with open(log_path) as f:
        for line in f:
            line = line.strip()
            if line:
                runs.append(json.loads(line))
except OSError:
    print(f'run-all: no {log_path}: meson test did not run', file=err)
except ValueError as e:
    print(f'run-all: cannot parse {log_path}: {e}', file=err)

def protocol(run):
    cmd = tuple(run.get('command') or [])
    for i in range(len(cmd)):            # allow a wrapper (--wrapper, --gdb) in front
        if cmd[i:] in proto_by_cmd:
            return proto_by_cmd[cmd[i:]]
    return proto_by_name.get(run.get('name', '').split(' / ')[-1], 'exitcode')

# Same grammar as meson's TAPParser: test lines start in column 0, YAML blocks
# (indented, between --- and ...) follow a test line.
RE_TEST = re.compile(r'(not )?ok\b\s*(?:[0-9]+\s*)?([^#]*)(?:#\s*(\S+)\s*(.*))?$')
RE_PLAN = re.compile(r'1\.\.([0-9]+)')

passed = failed = skipped = 0
failures = []
print('run-all: per-test results', file=err)
for run in runs:
    name = run.get('name', '?')
    result = run.get('result', '?')
    if protocol(run) in ('tap', 'TAP'):
        p = f = s = seen = 0
        plan = None
        bailed = False
        for line in (run.get('stdout') or '').splitlines():
            if line.startswith('Bail out!'):
                bailed = True
                continue
            m = RE_PLAN.match(line)
            if m and plan is None:
                plan = int(m.group(1))
                continue
            m = RE_TEST.match(line)
            if not m:
                continue
            seen += 1
            ok = m.group(1) is None
            directive = (m.group(3) or '').upper()
            case = m.group(2).strip().lstrip('-').strip()
            if directive.startswith('SKIP') and ok:
                s += 1
            elif directive == 'TODO':
                s += 1                   # expected failure / unexpected pass: not counted either way
            elif ok:
                p += 1
            else:
                f += 1
                failures.append(f'{name}: {case}')
        extra = 0
        if plan is not None and seen < plan:
            extra = plan - seen          # crashed or timed out before reporting these
            failures.append(f'{name}: {extra} test case(s) never reported ({result})')
        elif bailed or (result not in ('OK', 'SKIP', 'EXPECTEDFAIL') and f == 0):
            extra = 1
            failures.append(f'{name}: {result.lower()} (exit status {run.get("returncode")})')
        f += extra
        print(f'  {name}: {p} ok, {f} not ok, {s} skipped  [{result}]', file=err)
    else:
        p = f = s = 0
        if result in ('OK', 'EXPECTEDFAIL'):
            p = 1
        elif result == 'SKIP':
            s = 1
        else:
            f = 1
            failures.append(f'{name}: {result.lower()} (exit status {run.get("returncode")})')
        print(f'  {name}: {"ok" if p else "skipped" if s else "NOT OK"}  [{result}]', file=err)
    passed += p
    failed += f
    skipped += s

# Tests meson knows about but did not run (interrupted), when all were asked for.
if nargs == 0 and runs and len(runs) < len(intro):
    missing = len(intro) - len(runs)
    failures.append(f'{missing} test(s) never ran')
    failed += missing
if not runs:
    failures.append('no test ran')
    failed += 1
if leftover:
    failures.append(f'{leftover} strata FUSE mount(s) left behind after the tests')
    failed += leftover

if skipped:
    print(f'run-all: {skipped} test case(s) skipped (not counted)', file=err)
if failures:
    print('run-all: failed:', file=err)
    for x in failures:
        print(f'  {x}', file=err)
print(passed, failed)
PY
) || counts="0 1"

read -r passed failed <<<"$counts"
passed=$((passed + smoke_passed))
failed=$((failed + smoke_failed))
if ((meson_rc != 0 && failed == 0)); then
	log "meson test exited $meson_rc but no failing test was found; counting one failure"
	failed=1
fi
echo "$passed passed, $failed failed"
((failed == 0))

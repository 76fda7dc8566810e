#!/bin/sh
# Open+read+close rate of meminfo: the host's /proc, strata-procfs and
# lxcfs (if installed: apt-get install lxcfs), measured in one run, as root.
#
#   tests/integration/procfs/bench.sh [BUILD_DIR] [SECONDS] [ROUNDS]
#
# Each configuration runs ROUNDS times, interleaved (a machine shared with
# other work drifts), and the best round is reported, for 1 and 8 reader
# processes, single read(2) per open and read-until-EOF (what cat does).
# The reader runs in the root cgroup (exact host text) and in a v1 cgroup
# with a 256 MiB limit (the rendered text), if v1 memory cgroups exist.
set -eu
BUILD=${1:-build}
SECS=${2:-2}
ROUNDS=${3:-3}
PROCFS=${STRATA_PROCFS:-$BUILD/strata-procfs}
BENCH=${BENCH_READS:-$BUILD/tests/integration/procfs/bench_reads}
TMP=$(mktemp -d /tmp/strata-pf-bench.XXXXXX)
CG=/sys/fs/cgroup/memory/strata-pf-bench-$$
LXPID=

cleanup() {
	[ -f "$TMP/pid" ] && kill "$(cat "$TMP/pid")" 2>/dev/null || true
	[ -n "$LXPID" ] && kill "$LXPID" 2>/dev/null || true
	sleep 0.5
	for m in "$TMP/pf" "$TMP/lx"; do
		mountpoint -q "$m" 2>/dev/null && umount -l "$m" || true
	done
	[ -d "$CG" ] && { cat "$CG/cgroup.procs" 2>/dev/null | while read -r p; do
		echo "$p" >/sys/fs/cgroup/memory/cgroup.procs; done; rmdir "$CG"; } || true
	rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

mkdir -p "$TMP/pf" "$TMP/lx"
"$PROCFS" --pidfile "$TMP/pid" "$TMP/pf"
targets="/proc/meminfo $TMP/pf/proc/meminfo"
if command -v lxcfs >/dev/null 2>&1; then
	lxcfs -f "$TMP/lx" >"$TMP/lxcfs.log" 2>&1 &
	LXPID=$!
	for _ in $(seq 50); do mountpoint -q "$TMP/lx" && break; sleep 0.1; done
	mountpoint -q "$TMP/lx" && targets="$targets $TMP/lx/proc/meminfo"
fi

# run CGROUP_DIR_OR_EMPTY ARGS...: bench_reads, optionally inside a cgroup.
run() {
	cg=$1
	shift
	if [ -n "$cg" ]; then
		sh -c 'echo $$ > "$0/cgroup.procs" && exec "$@"' "$cg" "$BENCH" "$@"
	else
		sh -c 'for h in /sys/fs/cgroup/*/; do
			echo $$ > "$h/cgroup.procs" 2>/dev/null || true; done
			exec "$0" "$@"' "$BENCH" "$@"
	fi
}

where="root"
if [ -d /sys/fs/cgroup/memory ] && mkdir "$CG" 2>/dev/null; then
	echo 268435456 >"$CG/memory.limit_in_bytes"
	where="root limited"
fi

echo "# meminfo open+read+close per second (best of $ROUNDS x ${SECS}s)"
printf '%-8s %-8s %-6s %12s %12s %12s\n' cgroup readers mode host strata-procfs lxcfs
for w in $where; do
	cg=
	[ "$w" = limited ] && cg=$CG
	for n in 1 8; do
		for mode in single eof; do
			flag=
			[ "$mode" = eof ] && flag=-e
			best_h=0 best_s=0 best_l=0
			for _ in $(seq "$ROUNDS"); do
				for t in $targets; do
					r=$(run "$cg" -n "$n" -t "$SECS" $flag "$t" | awk '{print $4}')
					case $t in
					/proc/meminfo) [ "$r" -gt "$best_h" ] && best_h=$r ;;
					$TMP/pf/*) [ "$r" -gt "$best_s" ] && best_s=$r ;;
					*) [ "$r" -gt "$best_l" ] && best_l=$r ;;
					esac
				done
			done
			printf '%-8s %-8s %-6s %12s %12s %12s\n' "$w" "$n" "$mode" "$best_h" "$best_s" "$best_l"
		done
	done
done

#!/usr/bin/env bash
# bench/procfs.sh: /proc virtualizers, open+read+close per second of each
# file from a process inside a memory-limited cgroup, 1 and 8 readers,
# systems interleaved and rotated per repetition. Run by bench/run.sh.
GROUP=procfs
. "$(dirname "$0")/lib.sh"

TOOL=$BENCH_TOOL
D=$BENCH_WORK/procfs
mkdir -p "$D/pf" "$D/lx"
FILES=(meminfo cpuinfo stat uptime loadavg)
READERS=(1 8)
case $BENCH_MODE in
smoke) SECS=0.1 ;;
quick) SECS=0.25 ;;
full) SECS=0.5 ;;
esac
LIMIT_KB=262144

# The limited cgroup: a 256 MiB memory limit, v1 where the memory
# controller is a v1 hierarchy (this hybrid host), else v2.
CG=
if [[ -f /sys/fs/cgroup/memory/memory.limit_in_bytes ]]; then
	CG=/sys/fs/cgroup/memory/strata-bench-$$
	mkdir "$CG" && echo $((LIMIT_KB * 1024)) >"$CG/memory.limit_in_bytes" || exit 1
	CGV=v1
elif [[ -f /sys/fs/cgroup/cgroup.controllers ]]; then
	grep -qw memory /sys/fs/cgroup/cgroup.subtree_control ||
		echo +memory >/sys/fs/cgroup/cgroup.subtree_control || exit 1
	CG=/sys/fs/cgroup/strata-bench-$$
	mkdir "$CG" && echo $((LIMIT_KB * 1024)) >"$CG/memory.max" || exit 1
	CGV=v2
else
	log "no memory cgroup"
	exit 1
fi
push_cleanup "rmdir '$CG'"
log "readers in $CG ($CGV, memory limit $((LIMIT_KB / 1024)) MiB)"

# "${IN_CG[@]}" CMD...: CMD inside the limited cgroup.
IN_CG=(sh -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$CG")

SYSTEMS=(host)
ROOT_OF_host=/proc

# start_system NAME MOUNTPOINT CMD...: starts CMD, a FUSE daemon that
# stays in the foreground (its output in $D/NAME.log), and adds NAME to
# SYSTEMS once MOUNTPOINT is mounted.
start_system() {
	local name=$1 mnt=$2 pid
	shift 2
	"$@" >>"$D/$name.log" 2>&1 &
	pid=$!
	push_cleanup "umount_path '$mnt'; stop_pid $pid"
	if wait_fuse_mount "$mnt" "$pid"; then
		SYSTEMS+=("$name")
	else
		log "$name did not mount: $(tail -n 2 "$D/$name.log")"
		record mount "$name" 1 0 ops/s FAIL "no mount"
	fi
}

ROOT_OF_strata_procfs=$D/pf/proc
if [[ -x $BENCH_BUILD/strata-procfs ]]; then
	start_system strata-procfs "$D/pf" "$BENCH_BUILD/strata-procfs" -f --loadavg "$D/pf"
fi
# The FUSE floor: strata-procfs's texts for the cgroup, served from memory
# by a server that does nothing else (bench/fusefloor.c).
ROOT_OF_fuse_floor=$D/ff/proc
if [[ " ${SYSTEMS[*]} " == *" strata-procfs "* ]]; then
	mkdir -p "$D/floor-src" "$D/ff"
	for f in "${FILES[@]}"; do
		"${IN_CG[@]}" cat "$ROOT_OF_strata_procfs/$f" >"$D/floor-src/$f" || exit 1
	done
	start_system fuse-floor "$D/ff" "$BENCH_FLOOR" "$D/floor-src" "$D/ff"
fi
ROOT_OF_lxcfs=$D/lx/proc
if command -v lxcfs >/dev/null; then
	start_system lxcfs "$D/lx" lxcfs -f -l -p "$D/lxcfs.pid" "$D/lx"
fi
{
	echo "host: /proc"
	echo "strata-procfs: strata-procfs -f --loadavg MOUNTPOINT (default --cache-ms 100)"
	echo "fuse-floor: bench/fusefloor.c serving strata-procfs's texts for the cgroup from memory (direct_io, no FLUSH, strata-procfs's request loop; nothing else): what any FUSE /proc virtualizer can reach here"
	echo "lxcfs: lxcfs -f -l -p PIDFILE MOUNTPOINT (-l: per-cgroup loadavg, like strata-procfs --loadavg)"
	echo "reader cgroup: $CGV, memory limit $((LIMIT_KB / 1024)) MiB"
} >"$BENCH_OUT/procfs-options.txt"

root_of() { local v=ROOT_OF_${1//-/_}; echo "${!v}"; }

# Correctness, from inside the cgroup: the virtualizers show the limit,
# the host shows its RAM; every file reads non-empty with its keyword.
declare -A KEYWORD=([meminfo]=MemTotal: [cpuinfo]=processor [stat]="cpu " [uptime]=. [loadavg]=/)
host_kb=$(awk '/^MemTotal:/ { print $2 }' /proc/meminfo)
for sys in "${SYSTEMS[@]}"; do
	want=$LIMIT_KB
	[[ $sys == host ]] && want=$host_kb
	RC=0
	got=$("${IN_CG[@]}" awk '/^MemTotal:/ { print $2 }' "$(root_of "$sys")/meminfo" 2>"$ERRF") || RC=$?
	expect "MemTotal kB seen in the cgroup" "$got" "$want"
	record memtotal "$sys" 0 "${got:-0}" kB "$ST" "$DETAIL"
done

for ((REP = 1; REP <= BENCH_REPS; REP++)); do
	for f in "${FILES[@]}"; do
		for n in "${READERS[@]}"; do
			for ((k = 0; k < ${#SYSTEMS[@]}; k++)); do
				sys=${SYSTEMS[$(nth_system "$REP" "$k" "${#SYSTEMS[@]}")]}
				timed "${IN_CG[@]}" "$TOOL" procread -n "$n" -t "$SECS" "$(root_of "$sys")/$f" "${KEYWORD[$f]}"
				val=$(cat "$OUTF")
				expect "reads" "${val:+read}" read
				record "$f x$n" "$sys" "$REP" "${val:-0}" ops/s "$ST" "$DETAIL"
			done
		done
	done
done
log "done, $FAILS failed checks"
exit $((FAILS > 0))

# bench/lib.sh: shared by the group scripts (sourced, never run).
#
# The environment comes from bench/run.sh:
#   BENCH_MODE  smoke|quick|full     BENCH_OUT   results directory
#   BENCH_WORK  scratch directory    BENCH_TOOL  the compiled benchtool
#   BENCH_BUILD the meson build dir  BENCH_REPS  repetitions (runner: runs)
#
# Results go to $BENCH_OUT/raw.tsv, one line per measurement:
#   group  workload  system  rep  value  unit  status
# unit "s" (lower is better), "ops/s" (higher is better), "KiB"/"fds"
# (resources); status "ok" or "FAIL". Checks are logged to checks.log.

set -u -o pipefail

: "${BENCH_MODE:?run bench/run.sh}" "${BENCH_OUT:?}" "${BENCH_WORK:?}" "${BENCH_TOOL:?}"
: "${BENCH_BUILD:=build}" "${BENCH_REPS:=1}" "${BENCH_TIMEOUT:=600}"
GROUP=${GROUP:?}
RAW=$BENCH_OUT/raw.tsv
CHECKS=$BENCH_OUT/checks.log

log() { printf '[%s %s] %s\n' "$(date +%T)" "$GROUP" "$*" >&2; }

# The index of the system that runs K-th (0-based) in repetition REP
# (1-based) among N: rotated by REP, and backwards in even repetitions, so
# that no system always runs first or always follows the same one (with
# rotation alone, B would follow A every time): A B C D, B A D C, C D A B...
nth_system() {
	local rep=$1 k=$2 n=$3
	if ((rep % 2 == 0)); then
		echo $((((rep - 1 - k) % n + n) % n))
	else
		echo $(((k + rep - 1) % n))
	fi
}

# Cleanup stack: every mount and daemon is registered as soon as it
# exists, and undone (newest first) on any exit of the group script.
CLEANUP=()
push_cleanup() { CLEANUP+=("$1"); }
pop_cleanup() { unset 'CLEANUP[${#CLEANUP[@]}-1]'; }
run_cleanup() {
	local i
	for ((i = ${#CLEANUP[@]} - 1; i >= 0; i--)); do
		eval "${CLEANUP[i]}" >/dev/null 2>&1 || true
	done
	CLEANUP=()
}
on_exit() {
	local rc=$?
	trap - EXIT INT TERM
	run_cleanup
	exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# umount_path DIR: unmount (lazily if busy), never hangs.
umount_path() {
	local m=$1
	mountpoint -q "$m" 2>/dev/null || return 0
	timeout -k 2 20 umount "$m" 2>/dev/null || timeout -k 2 10 umount -l "$m" 2>/dev/null || true
}

# stop_pid PID: wait up to 10 s for a daemon to exit after its unmount,
# then TERM, then KILL.
stop_pid() {
	local pid=$1 i
	[[ -n $pid ]] || return 0
	for ((i = 0; i < 200; i++)); do
		kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return 0; }
		sleep 0.05
	done
	kill -TERM "$pid" 2>/dev/null
	sleep 0.5
	kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	return 0
}

# wait_fuse_mount DIR PID: until DIR is a FUSE mount; fails if PID dies
# or after 15 s.
wait_fuse_mount() {
	local m=$1 pid=$2 i fst
	for ((i = 0; i < 1500; i++)); do
		fst=$(findmnt -n -o FSTYPE -M "$m" 2>/dev/null) || fst=
		[[ $fst == fuse* ]] && return 0
		kill -0 "$pid" 2>/dev/null || return 1
		sleep 0.01
	done
	return 1
}

drop_caches() {
	sync
	echo 3 >/proc/sys/vm/drop_caches
}

# timed CMD...: runs CMD under timeout with stdout in $OUTF, stderr in
# $ERRF; sets EL (seconds) and RC.
OUTF=$BENCH_WORK/$GROUP.out
ERRF=$BENCH_WORK/$GROUP.err
timed() {
	local t0 t1
	t0=$EPOCHREALTIME
	timeout -k 5 "$BENCH_TIMEOUT" "$@" >"$OUTF" 2>"$ERRF"
	RC=$?
	t1=$EPOCHREALTIME
	EL=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.6f", b - a }')
}

FAILS=0
# record WORKLOAD SYSTEM REP VALUE UNIT OK_OR_FAIL [DETAIL]
record() {
	local wl=$1 sys=$2 rep=$3 val=$4 unit=$5 st=$6 detail=${7:-}
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$GROUP" "$wl" "$sys" "$rep" "$val" "$unit" "$st" >>"$RAW"
	printf '%s %s %s %s rep%s %s\n' "$st" "$GROUP" "$wl" "$sys" "$rep" "$detail" >>"$CHECKS"
	if [[ $st != ok ]]; then
		FAILS=$((FAILS + 1))
		log "CHECK FAILED: $wl on $sys (rep $rep): $detail"
	fi
}

# expect WHAT GOT WANT: sets ST to "ok" if GOT equals WANT and RC is 0,
# else "FAIL"; DETAIL says what was compared.
expect() {
	local what=$1 got=$2 want=$3
	if [[ $RC -ne 0 ]]; then
		DETAIL="$what: exit $RC: $(head -c 300 "$ERRF" | tr '\n' ' ')"
		ST=FAIL
	elif [[ $got != "$want" ]]; then
		DETAIL="$what: got '$got', want '$want'"
		ST=FAIL
	else
		DETAIL="$what: $got"
		ST=ok
	fi
}


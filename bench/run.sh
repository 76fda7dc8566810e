#!/usr/bin/env bash
# bench/run.sh: Strata against the tools people would use instead, measured
# in one run on one machine. See docs/bench.md.
#
#   bench/run.sh [--smoke|--quick|--full] [--out DIR] [--only GROUPS]
#                [--reps N] [--keep-layers] [--build DIR]
#
#   --smoke        every group at toy scale, 1 repetition (< 60 s); checks
#                  that the result files exist and every correctness check
#                  passed; exit status 0 only then (for CI, no timing limits)
#   --quick        reduced scale (~3 minutes)
#   --full         the documented scale (~15 minutes), the default
#   --out DIR      results directory (default: bench/results/MODE-DATE)
#   --only GROUPS  comma-separated subset of union,procfs,runner
#   --reps N       repetitions per measurement (default by mode)
#   --keep-layers  keep the union layers in /tmp/strata-bench.layers-MODE
#                  and reuse them next time (they take a while to build)
#   --build DIR    the meson build directory (default: build)
#
# Run as root. Exit status: 0 when every correctness check passed, 1 when
# one failed (the tables mark it), 2 on a usage or setup error.
set -u -o pipefail

BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
MODE=full OUT= ONLY=union,procfs,runner REPS= KEEP_LAYERS=0 BUILD=$ROOT/build

usage() { sed -n '2,/^# Run as root/p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
while (($#)); do
	case $1 in
	--smoke) MODE=smoke ;;
	--quick) MODE=quick ;;
	--full) MODE=full ;;
	--out) OUT=${2:?}; shift ;;
	--only) ONLY=${2:?}; shift ;;
	--reps) REPS=${2:?}; shift ;;
	--keep-layers) KEEP_LAYERS=1 ;;
	--build) BUILD=$(cd "${2:?}" && pwd); shift ;;
	-h | --help) usage ;;
	*) echo "bench/run.sh: unknown argument $1" >&2; usage ;;
	esac
	shift
done
[[ $(id -u) == 0 ]] || { echo "bench/run.sh: run as root" >&2; exit 2; }

case $MODE in
smoke) DEF_REPS=1 RUNNER_RUNS=5 ;;
quick) DEF_REPS=2 RUNNER_RUNS=20 ;;
full) DEF_REPS=3 RUNNER_RUNS=100 ;;
esac
REPS=${REPS:-$DEF_REPS}
[[ -n $OUT ]] || OUT=$BENCH_DIR/results/$MODE-$(date +%Y%m%d-%H%M%S)
mkdir -p "$OUT" || exit 2
OUT=$(cd "$OUT" && pwd)
rm -f "$OUT/raw.tsv" "$OUT/checks.log"
WORK=$(mktemp -d /tmp/strata-bench.XXXXXX) || exit 2

CHILD= URING_WAS=
URING_PARAM=/sys/module/fuse/parameters/enable_uring
finish() {
	local rc=$?
	trap - EXIT INT TERM
	if [[ -n $CHILD ]] && kill -0 "$CHILD" 2>/dev/null; then
		kill -TERM "$CHILD" 2>/dev/null
		wait "$CHILD" 2>/dev/null
	fi
	# Belt and braces: nothing of ours may stay mounted.
	findmnt -rn -o TARGET | grep -F "$WORK/" | sort -r | while read -r m; do
		umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
	done
	rm -rf "$WORK"
	[[ -n $URING_WAS ]] && echo "$URING_WAS" >"$URING_PARAM" 2>/dev/null
	exit "$rc"
}
trap finish EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

log() { printf '[%s run] %s\n' "$(date +%T)" "$*" >&2; }
START=$EPOCHSECONDS

# Dependencies (the Debian packages of scripts/install-deps.sh), unless
# the caller already has them or asked to skip.
if [[ ${STRATA_SKIP_DEPS:-0} != 1 ]]; then
	for c in fuse-overlayfs unionfs crun bwrap fio gnuplot lxcfs; do
		command -v "$c" >/dev/null || { "$ROOT/scripts/install-deps.sh" || exit 2; break; }
	done
fi
if [[ ! -x $BUILD/strata-unionfs || ! -x $BUILD/strata-procfs || ! -x $BUILD/strata || ! -x $BUILD/strata-image ]]; then
	log "building Strata in $BUILD"
	{ [[ -d $BUILD ]] || meson setup "$BUILD" "$ROOT"; } && ninja -C "$BUILD" >/dev/null || exit 2
fi

# The helpers: compiled here (no build system needed), with the project's
# warning flags.
TOOL=$WORK/benchtool
cc -std=gnu11 -O2 -Wall -Wextra -Werror -o "$TOOL" "$BENCH_DIR/benchtool.c" || exit 2
FLOOR=$WORK/fusefloor
# shellcheck disable=SC2046 # pkg-config's words are separate flags
cc -std=gnu11 -O2 -Wall -Wextra -Werror -o "$FLOOR" "$BENCH_DIR/fusefloor.c" \
	$(pkg-config --cflags --libs fuse3) || exit 2

export BENCH_MODE=$MODE BENCH_OUT=$OUT BENCH_WORK=$WORK BENCH_TOOL=$TOOL BENCH_FLOOR=$FLOOR
export BENCH_BUILD=$BUILD BENCH_REPS=$REPS BENCH_RUNNER_RUNS=$RUNNER_RUNS
export BENCH_TIMEOUT=$([[ $MODE == smoke ]] && echo 60 || echo 600)
if ((KEEP_LAYERS)); then export BENCH_LAYERS=/tmp/strata-bench.layers-$MODE; fi

# FUSE over io_uring is off by default in the kernel (a module parameter):
# on for the run, for the daemons that can use it (strata-unionfs; the
# anchors cannot), and back as it was afterwards.
if [[ -w $URING_PARAM ]]; then
	URING_WAS=$(cat "$URING_PARAM")
	echo Y >"$URING_PARAM" || URING_WAS=
fi

"$BENCH_DIR/machine.sh" >"$OUT/machine.txt" 2>&1

status=0
IFS=, read -ra groups <<<"$ONLY"
for g in "${groups[@]}"; do
	case $g in
	union | procfs) cmd=("$BENCH_DIR/$g.sh") ;;
	# crun 1.8 refuses a hybrid layout with a cgroup2 at
	# /sys/fs/cgroup/unified: every runner is measured in a private mount
	# namespace without it (see docs/bench.md).
	runner) cmd=(unshare -m --propagation private "$BENCH_DIR/runner.sh") ;;
	*) echo "bench/run.sh: unknown group $g" >&2; exit 2 ;;
	esac
	log "group $g ($MODE, $REPS reps)"
	"${cmd[@]}" &
	CHILD=$!
	wait "$CHILD"
	rc=$?
	CHILD=
	if ((rc != 0)); then
		log "group $g: exit $rc"
		status=1
	fi
done

"$BENCH_DIR/report.sh" "$OUT" "${groups[@]}" || status=1
if [[ $MODE == smoke ]]; then
	for g in "${groups[@]}"; do
		for f in "$OUT/$g.md" "$OUT/$g.svg"; do
			[[ -s $f ]] || { log "smoke: $f missing"; status=1; }
		done
	done
	[[ -s $OUT/summary.txt ]] || { log "smoke: summary.txt missing"; status=1; }
fi
if grep -q '^FAIL' "$OUT/checks.log" 2>/dev/null; then
	log "correctness checks failed:"
	grep '^FAIL' "$OUT/checks.log" | head -20 >&2
	status=1
fi
log "results in $OUT ($((EPOCHSECONDS - START)) s)"
cat "$OUT/summary.txt" 2>/dev/null
exit $status

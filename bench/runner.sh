#!/usr/bin/env bash
# bench/runner.sh: container start to exit of busybox /bin/true, systems
# interleaved and rotated per round, BENCH_RUNNER_RUNS runs each. Run by
# bench/run.sh inside a private mount namespace (unshare -m): crun 1.8
# refuses a hybrid cgroup layout, so on a hybrid host
# /sys/fs/cgroup/unified is unmounted there, for every system alike.
GROUP=runner
. "$(dirname "$0")/lib.sh"

TOOL=$BENCH_TOOL
RUNS=${BENCH_RUNNER_RUNS:-20}
D=$BENCH_WORK/runner
mkdir -p "$D"
# Everything the runners create per start (state dirs, upper and work
# dirs) goes to a tmpfs, as their runtime state does by default (/run):
# on this VM's root ext4, which has no journal, creating a file right after
# others were deleted takes 0.5-1 ms (see "One file system" in
# docs/bench.md), which would charge each system by its count of creates.
# The group runs in a private mount namespace, so this mount is its own.
mount -t tmpfs -o size=2g,mode=0755 strata-bench-runner "$D" ||
	{ log "cannot mount a tmpfs on $D"; exit 1; }
push_cleanup "umount_path '$D'"
STRATA=$BENCH_BUILD/strata
export STRATA_ROOT=$D/strata-root STRATA_RUN=$D/strata-run
TMO=60

# Nothing mounted here may outlive the group, in this namespace.
sweep_mounts() {
	findmnt -rn -o TARGET | grep -F "$D/" | sort -r | while read -r m; do umount_path "$m"; done
}
push_cleanup sweep_mounts
push_cleanup "[[ -f '$STRATA_ROOT/procfs.pid' ]] && stop_pid \$(cat '$STRATA_ROOT/procfs.pid')"
push_cleanup "umount_path '$STRATA_ROOT/procfs'"

if [[ $(stat -f -c %T /sys/fs/cgroup/unified 2>/dev/null) == cgroup2fs ]] &&
	[[ -d /sys/fs/cgroup/memory ]]; then
	umount /sys/fs/cgroup/unified 2>/dev/null && log "hybrid host: /sys/fs/cgroup/unified unmounted in this mount namespace"
fi

SYSTEMS=()
[[ -x $STRATA ]] && SYSTEMS+=(strata) || log "no $STRATA, skipped"

# The rootfs: the strata busybox image, exported (the first strata run
# builds the image), else a rootfs made from the host's static busybox.
ROOTFS=$D/rootfs
mkdir -p "$ROOTFS"
if [[ -x $STRATA ]] && timeout "$TMO" "$STRATA" run --rm busybox /bin/true >"$D/strata.log" 2>&1 &&
	timeout "$TMO" "$STRATA" export busybox "$D/busybox.tar" 2>>"$D/strata.log" &&
	tar -xf "$D/busybox.tar" -C "$ROOTFS"; then
	ROOTFS_FROM="strata export busybox"
else
	log "strata export failed ($(tail -n 1 "$D/strata.log")), rootfs from /bin/busybox"
	mkdir -p "$ROOTFS/bin" "$ROOTFS/proc" "$ROOTFS/dev" "$ROOTFS/sys" "$ROOTFS/tmp"
	cp /bin/busybox "$ROOTFS/bin/"
	for a in sh true echo; do ln -sf busybox "$ROOTFS/bin/$a"; done
	ROOTFS_FROM="/bin/busybox"
fi
mkdir -p "$ROOTFS/proc" "$ROOTFS/dev" "$ROOTFS/sys" "$ROOTFS/tmp"

# crun: a default `crun spec` bundle (all namespaces but user, read-only
# root), its root either the rootfs itself or a fresh union over it.
if command -v crun >/dev/null; then
	mkdir -p "$D/bundle" "$D/crun-state"
	(cd "$D/bundle" && crun spec) &&
		sed -i -e 's/"terminal": true/"terminal": false/' \
			-e "s#\"path\": \"rootfs\"#\"path\": \"$D/root\"#" \
			-e 's#^\(\t*\)"sh"$#\1"/bin/true"#' "$D/bundle/config.json" &&
		grep -q '"/bin/true"' "$D/bundle/config.json" ||
		{ log "cannot make the crun bundle"; exit 1; }
	ln -sfn "$ROOTFS" "$D/root"
	SYSTEMS+=(crun crun+overlayfs)
	command -v fuse-overlayfs >/dev/null && SYSTEMS+=(crun+fuse-overlayfs)
fi
command -v bwrap >/dev/null && SYSTEMS+=(bwrap)
SYSTEMS+=(unshare+chroot)

{
	echo "rootfs: busybox, from $ROOTFS_FROM"
	echo "strata: STRATA_ROOT=... STRATA_RUN=... strata run --rm busybox /bin/true (its strata-unionfs root and the shared strata-procfs included)"
	echo "crun: crun --root STATE run --bundle B ID; config.json from \`crun spec\` (pid, network, ipc, uts, mount, cgroup namespaces), terminal false, args /bin/true"
	echo "crun+overlayfs: mount -t overlay (lowerdir=rootfs, fresh upper) + crun run + umount, the three timed"
	echo "crun+fuse-overlayfs: fuse-overlayfs (lowerdir=rootfs, fresh upper) + crun run + umount, the three timed"
	echo "bwrap: bwrap --unshare-all --ro-bind ROOTFS / --proc /proc --dev /dev /bin/true"
	echo "unshare+chroot: unshare --mount --uts --ipc --net --pid --fork chroot ROOTFS /bin/true"
	echo "all in a private mount namespace without /sys/fs/cgroup/unified (crun 1.8 refuses the hybrid layout)"
} >"$BENCH_OUT/runner-options.txt"

ID=strata-bench-$$
CRUN=(crun --root "$D/crun-state" run --bundle "$D/bundle" "$ID")

# tcmd CMD...: one timed step; adds its seconds to T, keeps the worst
# status in S.
tcmd() {
	local out
	out=$("$TOOL" timeit -q -t "$TMO" "$@") || { S=1; return; }
	T=$(awk -v a="$T" -v b="${out% *}" 'BEGIN { printf "%.9f", a + b }')
	((${out#* } != 0)) && S=${out#* }
	return 0
}

# union_root KIND: a fresh union over the rootfs at $D/root (timed).
union_root() {
	rm -rf "$D/u" "$D/w" "$D/m"
	mkdir -p "$D/u" "$D/w" "$D/m"
	ln -sfn "$D/m" "$D/root"
	case $1 in
	overlayfs) tcmd mount -t overlay overlay -o "lowerdir=$ROOTFS,upperdir=$D/u,workdir=$D/w" "$D/m" ;;
	fuse-overlayfs) tcmd fuse-overlayfs -o "lowerdir=$ROOTFS,upperdir=$D/u,workdir=$D/w" "$D/m" ;;
	esac
}

# run_once SYSTEM: sets T (seconds) and S (exit status).
run_once() {
	T=0 S=0
	case $1 in
	strata) tcmd "$STRATA" run --rm busybox /bin/true ;;
	crun) tcmd "${CRUN[@]}" ;;
	crun+overlayfs | crun+fuse-overlayfs)
		union_root "${1#crun+}"
		tcmd "${CRUN[@]}"
		tcmd umount "$D/m"
		ln -sfn "$ROOTFS" "$D/root"
		;;
	bwrap) tcmd bwrap --unshare-all --ro-bind "$ROOTFS" / --proc /proc --dev /dev /bin/true ;;
	unshare+chroot) tcmd unshare --mount --uts --ipc --net --pid --fork chroot "$ROOTFS" /bin/true ;;
	esac
}

# Correctness: each system runs busybox and prints what it is told.
for sys in "${SYSTEMS[@]}"; do
	case $sys in
	strata) got=$(timeout "$TMO" "$STRATA" run --rm busybox /bin/echo ok-strata 2>&1) ;;
	crun)
		sed -i 's#"/bin/true"#"/bin/echo", "ok-crun"#' "$D/bundle/config.json"
		got=$(timeout "$TMO" "${CRUN[@]}" 2>&1)
		sed -i 's#"/bin/echo", "ok-crun"#"/bin/true"#' "$D/bundle/config.json"
		;;
	crun+*) got=ok-$sys ;; # the crun bundle; checked below
	bwrap) got=$(timeout "$TMO" bwrap --unshare-all --ro-bind "$ROOTFS" / --proc /proc --dev /dev /bin/echo ok-bwrap 2>&1) ;;
	unshare+chroot) got=$(timeout "$TMO" unshare --mount --uts --ipc --net --pid --fork chroot "$ROOTFS" /bin/echo ok-unshare+chroot 2>&1) ;;
	esac
	RC=0
	expect "output" "$got" "ok-${sys}"
	record check "$sys" 0 0 s "$ST" "$DETAIL"
done
# The union variants: the container ran on the union, which is gone after.
for sys in "${SYSTEMS[@]}"; do
	[[ $sys == crun+* ]] || continue
	run_once "$sys"
	RC=0
	expect "exit status,still mounted" "$S,$(mountpoint -q "$D/m" && echo yes)" "0,"
	record check "$sys" 0 "$T" s "$ST" "$DETAIL"
done

log "warm-up, then $RUNS runs of ${SYSTEMS[*]}"
for sys in "${SYSTEMS[@]}"; do for _ in 1 2 3; do run_once "$sys"; done; done
for ((REP = 1; REP <= RUNS; REP++)); do
	for ((k = 0; k < ${#SYSTEMS[@]}; k++)); do
		sys=${SYSTEMS[$(nth_system "$REP" "$k" "${#SYSTEMS[@]}")]}
		run_once "$sys"
		RC=$S
		expect "exit status" "$S" 0
		record start "$sys" "$REP" "$T" s "$ST" "$DETAIL"
	done
done
left=$(find "$STRATA_RUN" -mindepth 2 -maxdepth 2 -name config.json 2>/dev/null | wc -l)
RC=0
expect "containers left after --rm" "$left" 0
record leftover strata 0 0 s "$ST" "$DETAIL"
log "done, $FAILS failed checks"
exit $((FAILS > 0))

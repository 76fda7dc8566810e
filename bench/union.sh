#!/usr/bin/env bash
# bench/union.sh: union filesystems, one fresh mount per measurement,
# systems interleaved, rotated and reversed every other repetition
# (nth_system in lib.sh) so that none always runs first or always follows
# the same one. Run by bench/run.sh.
GROUP=union
. "$(dirname "$0")/lib.sh"

TOOL=$BENCH_TOOL
ALL_SYSTEMS=(native overlayfs fuse-overlayfs unionfs-fuse strata-unionfs strata-devfuse)
SYSTEMS=()
for s in ${BENCH_UNION_SYSTEMS:-${ALL_SYSTEMS[*]}}; do
	case $s in
	overlayfs) grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null ;;
	fuse-overlayfs) command -v fuse-overlayfs >/dev/null || { log "no fuse-overlayfs, skipped"; continue; } ;;
	unionfs-fuse) command -v unionfs >/dev/null || { log "no unionfs (unionfs-fuse), skipped"; continue; } ;;
	strata-unionfs) [[ -x $BENCH_BUILD/strata-unionfs ]] || { log "no $BENCH_BUILD/strata-unionfs, skipped"; continue; } ;;
	# The same without FUSE over io_uring: what the transport is worth.
	strata-devfuse)
		[[ -x $BENCH_BUILD/strata-unionfs ]] || continue
		[[ $(cat /sys/module/fuse/parameters/enable_uring 2>/dev/null) == Y ]] || { log "no FUSE io_uring: strata-devfuse skipped"; continue; }
		;;
	esac
	SYSTEMS+=("$s")
done

# Scale: the tree (files), the large and small files, and the counts of
# the metadata workloads.
case $BENCH_MODE in
smoke)
	TREE_TARGET=500 LARGE=$((8 << 20)) SMALL=$((2 << 20))
	SMALLF=200 UNTAR_N=200 UNLINK_N=100 RENAME_N=20 FIO_N=2048 IMG_SIZE=1G
	SOURCES=(/usr/include/linux)
	;;
quick)
	TREE_TARGET=10000 LARGE=$((256 << 20)) SMALL=$((16 << 20))
	SMALLF=2000 UNTAR_N=2000 UNLINK_N=1000 RENAME_N=200 FIO_N=16384 IMG_SIZE=6G
	SOURCES=(/usr/include /usr/share/perl5 /usr/share/perl)
	;;
full)
	TREE_TARGET=50000 LARGE=$((1 << 30)) SMALL=$((64 << 20))
	SMALLF=10000 UNTAR_N=10000 UNLINK_N=5000 RENAME_N=1000 FIO_N=65536 IMG_SIZE=16G
	SOURCES=(/usr/include /usr/share/perl5 /usr/share/perl /usr/lib/x86_64-linux-gnu/perl
		/usr/lib/python3 /usr/share/man /usr/share/doc /usr/share/locale)
	;;
esac

# Everything the unions touch (layers, uppers, the native tree) lives on a
# dedicated ext4 (default mkfs.ext4, with a journal) on a direct-I/O loop
# device: the same file system for every system, and none of the host
# root's history (this VM's root ext4 has no journal, and its inode
# allocator slows down for a minute after many deletions). The layers and
# the image are reused across runs with BENCH_LAYERS (--keep-layers) when
# the stamp matches these parameters. BENCH_NO_LOOP=1: use BENCH_WORK.
LAYOUT_VERSION=4
STAMP="v$LAYOUT_VERSION $TREE_TARGET $LARGE $SMALL $UNTAR_N $UNLINK_N $RENAME_N ${SOURCES[*]}"
if [[ ${BENCH_NO_LOOP:-0} == 1 ]]; then
	FS=${BENCH_LAYERS:-$BENCH_WORK/fs}
	mkdir -p "$FS"
	FS_DESC="the scratch directory's file system ($(findmnt -n -o FSTYPE -T "$FS"))"
else
	IMG=${BENCH_LAYERS:+$BENCH_LAYERS.img}
	IMG=${IMG:-$BENCH_WORK/union.img}
	FS=$BENCH_WORK/fs
	mkdir -p "$FS"
	if [[ ! -f $IMG || ! -f $IMG.stamp || $(cat "$IMG.stamp") != "$STAMP" ]]; then
		rm -f "$IMG" "$IMG.stamp"
		truncate -s "$IMG_SIZE" "$IMG" && mkfs.ext4 -q -F "$IMG" || { log "mkfs.ext4 failed"; exit 1; }
	fi
	LOOPDEV=$(losetup --direct-io=on -f --show "$IMG") || { log "losetup failed"; exit 1; }
	push_cleanup "losetup -d $LOOPDEV"
	mount "$LOOPDEV" "$FS" || { log "cannot mount $IMG"; exit 1; }
	push_cleanup "umount_path '$FS'"
	FS_DESC="ext4 (mkfs.ext4 defaults, $IMG_SIZE image) on a direct-I/O loop device over the scratch directory"
fi
L=$FS/layers
L1=$L/l1 L2=$L/l2 NATIVE=$L/native
D=$FS/union
U=$D/upper W=$D/work MP=$BENCH_WORK/merged
mkdir -p "$D" "$MP"

count_entries() { find "$@" 2>/dev/null | wc -l; }

# walk_sum FILE: "ENTRIES BYTES_OF_REGULAR_FILES" of `find -printf '%y %s\n'`.
walk_sum() { awk '$1 == "f" { s += $2 } { n++ } END { printf "%d %d\n", n, s }' "$1"; }

build_layers() {
	local n=0 na=0 nb=0 i=0 src c half ovl
	log "building layers in $L (tree of >= $TREE_TARGET entries, $((LARGE >> 20)) MiB + $((SMALL >> 20)) MiB files)"
	rm -rf "$L"
	mkdir -p "$L1/tree/a" "$L1/tree/b" "$L1/big" "$L2/tree"
	# Copies of system trees, their top-level entries balanced over tree/a
	# and tree/b (the two halves of the parallel walk); /usr/include again
	# until the target.
	local srcs=("${SOURCES[@]}") e dst
	while ((n < TREE_TARGET)); do
		if ((i < ${#srcs[@]})); then src=${srcs[i]}; else src=${SOURCES[0]}; fi
		i=$((i + 1))
		((i > 100)) && { log "cannot reach $TREE_TARGET entries"; return 1; }
		[[ -d $src ]] || continue
		for e in "$src"/*; do
			[[ -e $e || -L $e ]] || continue
			c=$(count_entries "$e")
			if ((na <= nb)); then half=a na=$((na + c)); else half=b nb=$((nb + c)); fi
			dst=$L1/tree/$half/$(printf %02d "$i")-$(basename "$src")
			mkdir -p "$dst"
			cp -a "$e" "$dst/"
			n=$((n + c))
		done
	done
	echo l1 >"$L1/tree/MARKER"
	echo l2 >"$L2/tree/MARKER"
	"$TOOL" write "$L1/big/large" "$LARGE" >"$L/large.sum"
	"$TOOL" write "$L1/big/small" "$SMALL" >"$L/small.sum"
	# The second lower overrides every 10th file with a longer version.
	(cd "$L1" && find tree -type f ! -name MARKER | sort | awk 'NR % 10 == 1') >"$L/override.list"
	while read -r f; do
		mkdir -p "$L2/$(dirname "$f")"
		{ cat "$L1/$f"; echo "# overridden by l2"; } >"$L2/$f"
	done <"$L/override.list"
	# The native tree is the merged view, copied out of a read-only
	# kernel overlay of the two lowers.
	ovl=$L/ovl-ro
	mkdir -p "$ovl"
	mount -t overlay overlay -o "lowerdir=$L2:$L1" "$ovl" || return 1
	push_cleanup "umount_path '$ovl'"
	cp -a "$ovl" "$NATIVE"
	umount_path "$ovl"
	pop_cleanup
	rmdir "$ovl"
	# Workload inputs, relative to the union root.
	(cd "$NATIVE" && find tree -type f ! -name MARKER | sort) >"$L/files.list"
	awk 'NR % 3 == 0' "$L/files.list" | head -n "$UNLINK_N" >"$L/unlink.list"
	awk 'NR % 3 == 1' "$L/files.list" | head -n "$RENAME_N" >"$L/rename.list"
	awk -v n="$UNTAR_N" 'NR % 2 == 0 && c < n { print; c++ }' "$L/files.list" >"$L/untar.list"
	tar -C "$NATIVE" -cf "$L/untar.tar" -T "$L/untar.list"
	# Expected results, from the native tree.
	{
		find "$NATIVE" -printf '%y %s\n' >"$L/w" && echo "EXP_WALK='$(walk_sum "$L/w")'"
		find "$NATIVE/tree/a" -printf '%y %s\n' >"$L/w" && echo "EXP_WALK_A='$(walk_sum "$L/w")'"
		find "$NATIVE/tree/b" -printf '%y %s\n' >"$L/w" && echo "EXP_WALK_B='$(walk_sum "$L/w")'"
		echo "EXP_LS=$(ls -lR "$NATIVE" | wc -l)"
		echo "EXP_TAR=$(tar --hard-dereference -C "$NATIVE" -cf - tree | wc -c)"
		echo "EXP_LARGE='$(cat "$L/large.sum")'"
		echo "EXP_SMALL='$(cat "$L/small.sum")'"
		echo "EXP_UNTAR=$(wc -l <"$L/untar.list")"
		echo "EXP_UNLINK=$(wc -l <"$L/unlink.list")"
		echo "EXP_RENAME=$(wc -l <"$L/rename.list")"
		echo "EXP_MODE=$(stat -c %a "$NATIVE/big/small")"
		echo "TREE_FILES=$n"
	} >"$L/expect.env"
	rm -f "$L/w"
	echo "$STAMP" >"$L/stamp"
	[[ -n ${IMG:-} ]] && echo "$STAMP" >"$IMG.stamp"
	return 0
}

if [[ -f $L/stamp && $(cat "$L/stamp") == "$STAMP" && -f $L/expect.env ]]; then
	log "reusing layers in $L"
else
	build_layers || { log "layer build failed"; exit 1; }
fi
. "$L/expect.env"
log "tree: $EXP_WALK (entries, bytes); systems: ${SYSTEMS[*]}"
{
	echo "tree_entries ${EXP_WALK% *}"
	echo "tree_bytes ${EXP_WALK#* }"
	echo "large_bytes $LARGE"
	echo "small_bytes $SMALL"
	echo "override_files $(wc -l <"$L/override.list")"
	echo "smallfiles $SMALLF"
	echo "untar_files $EXP_UNTAR"
	echo "unlink_files $EXP_UNLINK"
	echo "rename_files $EXP_RENAME"
} >"$BENCH_OUT/union-scale.txt"

# Per-system mount options, recorded in the results.
OPT_OVERLAYFS="lowerdir=$L2:$L1,upperdir=$U,workdir=$W"
OPT_FUSE_OVERLAYFS="lowerdir=$L2:$L1,upperdir=$U,workdir=$W,noacl"
OPT_UNIONFS="cow,hide_meta_files,max_files=$(ulimit -Hn),kernel_cache,big_writes"
OPT_STRATA="lowerdir=$L2:$L1,upperdir=$U,workdir=$W"
OPT_STRATA_DEVFUSE="$OPT_STRATA,io_uring=off"
{
	echo "file system under every system: $FS_DESC"
	echo "native: the merged tree copied to a plain directory"
	echo "overlayfs: mount -t overlay overlay -o $OPT_OVERLAYFS (module parameters: $(cd /sys/module/overlay/parameters 2>/dev/null && for p in *; do printf '%s=%s ' "$p" "$(cat "$p")"; done))"
	echo "fuse-overlayfs: fuse-overlayfs -f -o $OPT_FUSE_OVERLAYFS"
	echo "unionfs-fuse: unionfs -f -o $OPT_UNIONFS $U=RW:$L2=RO:$L1=RO"
	echo "strata-unionfs: strata-unionfs -f -o $OPT_STRATA (fuse enable_uring=$(cat /sys/module/fuse/parameters/enable_uring 2>/dev/null))"
	echo "strata-devfuse: strata-unionfs -f -o $OPT_STRATA_DEVFUSE"
} | sed -e "s#$L/#LAYERS/#g" -e "s#$D/#SCRATCH/#g" -e "s#$BENCH_WORK/#TMP/#g" >"$BENCH_OUT/union-options.txt"

M= DPID=
# mount_sys SYSTEM: a fresh union over empty upper and work dirs; sets M
# (the root to measure) and DPID (the daemon, if any).
mount_sys() {
	local sys=$1
	DPID=
	sync
	if [[ $sys == native ]]; then
		M=$NATIVE
		return 0
	fi
	rm -rf "$U" "$W"
	mkdir -p "$U" "$W"
	M=$MP
	case $sys in
	overlayfs)
		mount -t overlay overlay -o "$OPT_OVERLAYFS" "$MP" || return 1
		push_cleanup "umount_path '$MP'"
		return 0
		;;
	fuse-overlayfs) fuse-overlayfs -f -o "$OPT_FUSE_OVERLAYFS" "$MP" 2>>"$D/$sys.log" & ;;
	unionfs-fuse) unionfs -f -o "$OPT_UNIONFS" "$U=RW:$L2=RO:$L1=RO" "$MP" 2>>"$D/$sys.log" & ;;
	strata-unionfs) "$BENCH_BUILD/strata-unionfs" -f -o "$OPT_STRATA" "$MP" 2>>"$D/$sys.log" & ;;
	strata-devfuse) "$BENCH_BUILD/strata-unionfs" -f -o "$OPT_STRATA_DEVFUSE" "$MP" 2>>"$D/$sys.log" & ;;
	*) return 1 ;;
	esac
	DPID=$!
	push_cleanup "umount_path '$MP'; stop_pid $DPID"
	wait_fuse_mount "$MP" "$DPID"
}

umount_sys() {
	local sys=$1
	[[ $sys == native ]] && return 0
	umount_path "$MP"
	stop_pid "$DPID"
	pop_cleanup
	DPID=
	rm -rf "$U" "$W"
}

# upper_of PATH_IN_UNION: where a written file must land.
upper_of() { if [[ $SYS == native ]]; then echo "$NATIVE/$1"; else echo "$U/$1"; fi; }

# Sessions: each one a fresh mount. s_NAME measures, r_NAME (optional)
# restores the native tree afterwards. WLS_NAME lists what it records.
WLS_ls=ls_lR
s_ls() {
	timed ls -lR "$M"
	expect "ls -lR lines" "$(wc -l <"$OUTF")" "$EXP_LS"
	record ls_lR "$SYS" "$REP" "$EL" s "$ST" "$DETAIL"
}

WLS_tar=tar_c
s_tar() {
	timed bash -c 'tar --hard-dereference -C "$1" -cf - tree | wc -c' _ "$M"
	expect "tar bytes" "$(cat "$OUTF")" "$EXP_TAR"
	record tar_c "$SYS" "$REP" "$EL" s "$ST" "$DETAIL"
}

WLS_walkfresh=walk_fresh
s_walkfresh() {
	timed find "$M" -printf '%y %s\n'
	expect "entries bytes" "$(walk_sum "$OUTF")" "$EXP_WALK"
	record walk_fresh "$SYS" "$REP" "$EL" s "$ST" "$DETAIL"
}

WLS_par2=walk_par2
s_par2() {
	timed bash -c 'find "$1/tree/a" -printf "%y %s\n" >"$2.a" & p=$!
		find "$1/tree/b" -printf "%y %s\n" >"$2.b"; r=$?; wait $p && exit $r' _ "$M" "$OUTF"
	expect "halves" "$(walk_sum "$OUTF.a") / $(walk_sum "$OUTF.b")" "$EXP_WALK_A / $EXP_WALK_B"
	record walk_par2 "$SYS" "$REP" "$EL" s "$ST" "$DETAIL"
}

# fio_field N: field N of fio's terse (v3) output.
fio_field() { cut -d';' -f"$1" "$OUTF" | head -1; }

# fio: 4 KiB psync I/O, the page cache left alone (--invalidate=0).
# Reads: FIO_N random blocks of the large lower file (in the host page
# cache; a fresh mount, so every block is a first read through the union).
# Writes: random rewrite of a new small file in the upper, then fsync.
WLS_fioread=fio_randread
s_fioread() {
	timed fio --name=randread --filename="$M/big/large" --readonly --rw=randread --bs=4k \
		--ioengine=psync --size="$LARGE" --number_ios="$FIO_N" --invalidate=0 \
		--output-format=terse --terse-version=3
	expect "fio KiB,error" "$(fio_field 6),$(fio_field 5)" "$((FIO_N * 4)),0"
	record fio_randread "$SYS" "$REP" "$(fio_field 8)" ops/s "$ST" "$DETAIL"
}

WLS_fiowrite=fio_randwrite
s_fiowrite() {
	timed fio --name=randwrite --filename="$M/scratch-fio" --rw=randwrite --bs=4k \
		--ioengine=psync --size="$SMALL" --end_fsync=1 --invalidate=0 \
		--output-format=terse --terse-version=3
	expect "fio KiB,error,size" "$(fio_field 47),$(fio_field 5),$(stat -c %s "$(upper_of scratch-fio)")" \
		"$((SMALL >> 10)),0,$SMALL"
	record fio_randwrite "$SYS" "$REP" "$(fio_field 49)" ops/s "$ST" "$DETAIL"
}
r_fiowrite() { rm -f "$NATIVE/scratch-fio"; }

WLS_write=seqwrite
s_write() {
	local back
	timed "$TOOL" write "$M/scratch-large" "$LARGE"
	back=$("$TOOL" read "$(upper_of scratch-large)")
	expect "written, read back from the upper" "$(cat "$OUTF"), $back" "$EXP_LARGE, $EXP_LARGE"
	record seqwrite "$SYS" "$REP" "$EL" s "$ST" "$DETAIL"
}
r_write() { rm -f "$NATIVE/scratch-large"; }

WLS_append=copyup_append
s_append() {
	timed bash -c 'printf x >>"$1"' _ "$M/big/large"
	expect "size,last byte,in upper" \
		"$(stat -c %s "$M/big/large"),$(tail -c1 "$M/big/large"),$(stat -c %s "$(upper_of big/large)")" \
		"$((LARGE + 1)),x,$((LARGE + 1))"
	record copyup_append "$SYS" "$REP" "$EL" s "$ST" "$DETAIL"
}
r_append() { truncate -s "$LARGE" "$NATIVE/big/large"; }

WLS_chmod=copyup_chmod
s_chmod() {
	timed chmod 600 "$M/big/small"
	expect "mode,in upper" "$(stat -c %a "$M/big/small"),$(stat -c %a "$(upper_of big/small)")" "600,600"
	record copyup_chmod "$SYS" "$REP" "$EL" s "$ST" "$DETAIL"
}
r_chmod() { chmod "$EXP_MODE" "$NATIVE/big/small"; }

WLS_small=smallfiles
s_small() {
	mkdir "$M/scratch-small"
	timed "$TOOL" smallfiles "$M/scratch-small" "$SMALLF" 100
	expect "files,left" "$(cat "$OUTF"),$(ls -A "$M/scratch-small" | wc -l)" "$SMALLF,0"
	record smallfiles "$SYS" "$REP" "$EL" s "$ST" "$DETAIL"
}
r_small() { rm -rf "$NATIVE/scratch-small"; }

WLS_untar=untar
s_untar() {
	mkdir "$M/scratch-untar"
	timed tar -xf "$L/untar.tar" -C "$M/scratch-untar"
	expect "files" "$(find "$M/scratch-untar" -type f | wc -l)" "$EXP_UNTAR"
	record untar "$SYS" "$REP" "$EL" s "$ST" "$DETAIL"
}
r_untar() { rm -rf "$NATIVE/scratch-untar"; }

# The native tree keeps hard links of the files it is about to lose.
native_stash() {
	[[ $SYS == native ]] || return 0
	rm -rf "$L/stash"
	mkdir -p "$L/stash"
	(cd "$NATIVE" && xargs -d '\n' cp -l --parents -t "$L/stash" <"$1")
}
native_unstash() {
	(cd "$L/stash" && find . -type f -printf '%P\n' | xargs -d '\n' cp -fl --parents -t "$NATIVE")
	rm -rf "$L/stash"
}

WLS_unlink=unlink_lower
s_unlink() {
	native_stash "$L/unlink.list"
	timed "$TOOL" unlink "$M" "$L/unlink.list"
	expect "unlinked" "$(cat "$OUTF")" "$EXP_UNLINK"
	record unlink_lower "$SYS" "$REP" "$EL" s "$ST" "$DETAIL"
}
r_unlink() { native_unstash; }

WLS_rename=rename_lower
s_rename() {
	native_stash "$L/rename.list"
	timed "$TOOL" rename "$M" "$L/rename.list"
	expect "renamed" "$(cat "$OUTF")" "$EXP_RENAME"
	record rename_lower "$SYS" "$REP" "$EL" s "$ST" "$DETAIL"
}
r_rename() {
	(cd "$NATIVE" && sed 's/$/.renamed/' "$L/rename.list" | xargs -d '\n' rm -f)
	native_unstash
}

# daemon_res WHEN: the daemon's RSS and open fds.
daemon_res() {
	local rss fds
	[[ -n $DPID ]] || return 0
	rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$DPID/status" 2>/dev/null)
	fds=$(ls "/proc/$DPID/fd" 2>/dev/null | wc -l)
	if [[ -n $rss ]]; then
		record "rss_$1" "$SYS" "$REP" "$rss" KiB ok "VmRSS"
		record "fds_$1" "$SYS" "$REP" "$fds" fds ok "open fds"
	else
		record "rss_$1" "$SYS" "$REP" 0 KiB FAIL "daemon $DPID gone"
	fi
}

WLS_walk="walk_cold walk_warm"
s_walk() {
	drop_caches
	timed find "$M" -printf '%y %s\n'
	expect "entries bytes" "$(walk_sum "$OUTF")" "$EXP_WALK"
	record walk_cold "$SYS" "$REP" "$EL" s "$ST" "$DETAIL"
	timed find "$M" -printf '%y %s\n'
	expect "entries bytes" "$(walk_sum "$OUTF")" "$EXP_WALK"
	record walk_warm "$SYS" "$REP" "$EL" s "$ST" "$DETAIL"
	daemon_res after_walk
	drop_caches
	sleep 1
	daemon_res after_drop
}

WLS_seqread="seqread_cold seqread_cached"
s_seqread() {
	drop_caches
	timed "$TOOL" read "$M/big/large"
	expect "bytes sum" "$(cat "$OUTF")" "$EXP_LARGE"
	record seqread_cold "$SYS" "$REP" "$EL" s "$ST" "$DETAIL"
	timed "$TOOL" read "$M/big/large"
	expect "bytes sum" "$(cat "$OUTF")" "$EXP_LARGE"
	record seqread_cached "$SYS" "$REP" "$EL" s "$ST" "$DETAIL"
}

# prewarm SESSION SYSTEM: before each warm measurement, read what it will
# read through the layers (or the native tree) directly, so it is in the
# page cache whatever happened before: this VM runs a DAMON scheme that
# pages out file pages idle for a minute (see docs/bench.md).
prewarm() {
	local srcs=("$L1" "$L2") r
	[[ $2 == native ]] && srcs=("$NATIVE")
	case $1 in
	ls | walkfresh | par2 | unlink | rename)
		find "${srcs[@]}" -printf '%s\n' >/dev/null
		;;
	tar)
		find "${srcs[@]}" -printf '%s\n' >/dev/null
		for r in "${srcs[@]}"; do tar -C "$r" -cf - tree | cat >/dev/null; done
		;;
	fioread | append) cat "${srcs[0]}/big/large" >/dev/null ;;
	chmod) cat "${srcs[0]}/big/small" >/dev/null ;;
	untar) cat "$L/untar.tar" >/dev/null ;;
	esac
	return 0
}

# Warm sessions first, the two that drop caches last.
SESSIONS=(ls tar walkfresh par2 fioread fiowrite write append chmod small untar unlink rename walk seqread)
[[ -n ${BENCH_UNION_SESSIONS:-} ]] && read -ra SESSIONS <<<"$BENCH_UNION_SESSIONS"

for sess in "${SESSIONS[@]}"; do
	wls_var=WLS_$sess
	log "session $sess (${!wls_var}): ${SYSTEMS[*]} x $BENCH_REPS"
	for ((REP = 1; REP <= BENCH_REPS; REP++)); do
		for ((k = 0; k < ${#SYSTEMS[@]}; k++)); do
			SYS=${SYSTEMS[$(nth_system "$REP" "$k" "${#SYSTEMS[@]}")]}
			prewarm "$sess" "$SYS"
			if ! mount_sys "$SYS" || [[ $(cat "$M/tree/MARKER" 2>/dev/null) != l2 ]]; then
				for wl in ${!wls_var}; do
					record "$wl" "$SYS" "$REP" 0 s FAIL "mount failed or wrong layer order: $(tail -n 3 "$D/$SYS.log" 2>/dev/null | tr '\n' ' ')"
				done
			else
				"s_$sess"
			fi
			umount_sys "$SYS"
			if [[ $SYS == native ]] && declare -F "r_$sess" >/dev/null; then "r_$sess"; fi
		done
	done
done

# The native tree must be back to what it was.
find "$NATIVE" -printf '%y %s\n' >"$OUTF"
RC=0
expect "native tree restored" "$(walk_sum "$OUTF")" "$EXP_WALK"
[[ $ST == ok ]] || { log "$DETAIL"; rm -f "$L/stamp"; }
log "done, $FAILS failed checks"
exit $((FAILS > 0))

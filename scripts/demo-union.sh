#!/usr/bin/env bash
# shellcheck disable=SC2012  # ls -l is only for show
# Installs the dependencies, builds strata-unionfs and demonstrates a union
# mount: two read-only layers under a writable upper, mounted with the
# overlayfs syntax; a lower file is modified (copy-up) and another is deleted
# (whiteout), and the script shows what landed in the upper layer.
#
# Everything lives in a temporary directory that is unmounted and removed on
# exit, also when a step fails.  Exits non-zero if the union did not behave.
#
# Environment: BUILD_DIR (default build), STRATA_SKIP_DEPS=1 to skip apt.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
BUILD_DIR=${BUILD_DIR:-build}

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
[[ -t 1 ]] || step() { printf '\n== %s\n' "$*"; }
die() {
	printf 'demo: FAILED: %s\n' "$*" >&2
	exit 1
}

# --- install and build -----------------------------------------------------
step "Installing dependencies"
scripts/install-deps.sh

step "Building strata-unionfs"
if [[ ! -f $BUILD_DIR/meson-private/coredata.dat ]]; then
	meson setup "$BUILD_DIR"
fi
ninja -C "$BUILD_DIR" strata-unionfs
BIN=$(cd "$BUILD_DIR" && pwd)/strata-unionfs
[[ -x $BIN ]] || die "$BIN was not built"

# --- temp layers, with cleanup even on failure ---------------------------
demo=$(mktemp -d "${TMPDIR:-/tmp}/strata-demo.XXXXXX")
lower1=$demo/lower1 lower2=$demo/lower2 upper=$demo/upper work=$demo/work mnt=$demo/mnt

cleanup() {
	local rc=$?
	trap - EXIT
	if mountpoint -q "$mnt" 2>/dev/null; then
		umount "$mnt" 2>/dev/null || fusermount3 -u "$mnt" 2>/dev/null ||
			umount -l "$mnt" 2>/dev/null || fusermount3 -u -z "$mnt" 2>/dev/null ||
			echo "demo: could not unmount $mnt" >&2
	fi
	# --one-file-system: never descend into a mount that is still there.
	rm -rf --one-file-system "$demo" 2>/dev/null || echo "demo: left $demo behind" >&2
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir -p "$lower1" "$lower2/etc" "$upper" "$work" "$mnt"
echo "motd from the bottom layer (hidden)" >"$lower2/motd.txt"
echo "verbose = no" >"$lower2/etc/app.conf"
echo "an old log file" >"$lower2/old.log"
echo "motd from the top lower layer" >"$lower1/motd.txt"
echo "notes from lower1" >"$lower1/notes.txt"

# One line per entry: type, mode, size and name; whiteouts and opaque
# markers are named for what they are.
show_tree() {
	local dir=$1 p rel
	while IFS= read -r p; do
		rel=${p#"$dir"/}
		if [[ -c $p && $(stat -c '%t:%T' "$p") == 0:0 ]]; then
			printf '  %-10s %s\n' "c 0:0" "$rel   <- whiteout (overlay format)"
		elif [[ ${p##*/} == .wh.* ]]; then
			printf '  %-10s %s\n' "$(stat -c '%A' "$p")" "$rel   <- whiteout (aufs format)"
		else
			printf '  %-10s %s\n' "$(stat -c '%A' "$p")" "$rel$([[ -f $p ]] && printf '  (%s bytes)' "$(stat -c %s "$p")")"
		fi
	done < <(find "$dir" -mindepth 1 | LC_ALL=C sort)
	[[ -n $(find "$dir" -mindepth 1 -print -quit) ]] || echo "  (empty)"
}

step "The layers (top to bottom)"
echo "upper  ($upper):"
show_tree "$upper"
echo "lower1 ($lower1):"
show_tree "$lower1"
echo "lower2 ($lower2):"
show_tree "$lower2"

# --- mount -------------------------------------------------------------------
step "Mounting"
opts="lowerdir=$lower1:$lower2,upperdir=$upper,workdir=$work"
echo "+ strata-unionfs -o $opts $mnt"
"$BIN" -o "$opts" "$mnt" || die "strata-unionfs could not mount"
# The program returns once the mount is live; poll briefly all the same.
for _ in $(seq 50); do
	mountpoint -q "$mnt" && break
	sleep 0.1
done
mountpoint -q "$mnt" || die "$mnt is not a mount point"
grep " $mnt " /proc/self/mounts | sed 's/^/  /' || true

step "Merged listing: ls -l $mnt"
ls -l "$mnt" | sed 's/^/  /'
echo "+ cat $mnt/motd.txt"
sed 's/^/  /' "$mnt/motd.txt"
[[ $(cat "$mnt/motd.txt") == "motd from the top lower layer" ]] ||
	die "motd.txt should come from the topmost layer that has it"
[[ -z $(find "$upper" -mindepth 1 -print -quit) ]] || die "reading copied something up"

# --- copy-up and whiteout -----------------------------------------------------
step "Modifying a lower file (copy-up): echo 'verbose = yes' >> $mnt/etc/app.conf"
echo "verbose = yes" >>"$mnt/etc/app.conf"
sed 's/^/  /' "$mnt/etc/app.conf"

step "Deleting a lower file (whiteout): rm $mnt/old.log"
rm "$mnt/old.log"
[[ ! -e $mnt/old.log ]] || die "old.log is still visible after rm"

step "Merged listing after the changes: ls -l $mnt"
ls -l "$mnt" | sed 's/^/  /'

step "What landed in the upper layer"
show_tree "$upper"

step "The lower layers are untouched"
show_tree "$lower2"

# --- check -----------------------------------------------------------------------
[[ -f $upper/etc/app.conf ]] || die "etc/app.conf was not copied up"
[[ $(cat "$upper/etc/app.conf") == $'verbose = no\nverbose = yes' ]] ||
	die "the copied-up etc/app.conf has the wrong content"
[[ $(cat "$lower2/etc/app.conf") == "verbose = no" ]] || die "the lower etc/app.conf was modified"
[[ -c $upper/old.log && $(stat -c '%t:%T' "$upper/old.log") == 0:0 ]] ||
	die "no overlay-format whiteout (char device 0:0) for old.log in the upper layer"
[[ -f $lower2/old.log ]] || die "the lower old.log was removed"
[[ ! -e $upper/motd.txt && ! -e $upper/notes.txt ]] || die "an untouched file was copied up"

# --- unmount -----------------------------------------------------------------
step "Unmounting: umount $mnt"
umount "$mnt" || fusermount3 -u "$mnt" || die "could not unmount $mnt"
! mountpoint -q "$mnt" || die "$mnt is still mounted"

printf '\ndemo: OK: the copy-up and the whiteout landed in the upper layer; the lower layers are unchanged.\n'

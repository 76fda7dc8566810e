#!/usr/bin/env bash
# Builds the test VM's initramfs for a kernel from fetch-kernel.sh and prints
# its path.
#
#   tests/vm/mkinitramfs.sh KERNEL-DIR
#
# The initramfs holds a static busybox (/bin/busybox if it is static, else the
# busybox-static package fetched with apt-get download), tests/vm/init.sh
# as /init, and the kernel modules the init needs before the host's files are
# reachable: 9p and its virtio transport, virtio_pci, plus fuse and overlay
# (all are modules, =m, in Debian's kernel), with what they depend on, in load
# order, and virtio_blk and ext4 for the scratch disk that becomes /tmp.
# It is an uncompressed newc cpio (smaller ones decompress slower than
# they load under TCG), cached in the kernel directory under a name derived
# from everything that goes into it, so it is rebuilt only when one changes.
#
# Environment:
#   STRATA_VM_CACHE    where busybox-static is unpacked (default /var/cache/strata-vm)
#   STRATA_VM_BUSYBOX  a static busybox to use instead
#   STRATA_VM_MODULES  extra modules to load at boot (space-separated names)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

die() {
	printf 'mkinitramfs: %s\n' "$*" >&2
	exit 1
}

(($# == 1)) || die "usage: mkinitramfs.sh KERNEL-DIR (from fetch-kernel.sh)"
kdir=$1
[[ -f $kdir/release && -d $kdir/modroot ]] || die "$kdir is not a kernel directory from fetch-kernel.sh"
release=$(<"$kdir/release")
CACHE=${STRATA_VM_CACHE:-/var/cache/strata-vm}

# A static busybox.  Debian's busybox and busybox-static packages conflict,
# and the tests want the dynamic `busybox` installed on the host, so unless
# /bin/busybox happens to be static, busybox-static is fetched with
# `apt-get download` and unpacked (not installed) into the cache.
is_static() {
	[[ -x $1 ]] || return 1
	if command -v readelf >/dev/null 2>&1; then
		readelf -hW "$1" >/dev/null 2>&1 && ! readelf -lW "$1" 2>/dev/null | grep -q 'program interpreter'
	else
		[[ $1 == /bin/busybox && $(dpkg-query -W -f='${db:Status-Status}' busybox-static 2>/dev/null) == installed ]]
	fi
}
fetch_busybox() {
	local dir=$CACHE/busybox-static tmp deb lockfd
	if [[ -x $dir/bin/busybox ]]; then
		printf '%s\n' "$dir/bin/busybox"
		return 0
	fi
	mkdir -p "$CACHE" || die "cannot create $CACHE (run as root or set STRATA_VM_CACHE)"
	exec {lockfd}>"$CACHE/.busybox.lock"
	flock "$lockfd"
	if [[ ! -x $dir/bin/busybox ]]; then
		tmp=$(mktemp -d "$CACHE/.busybox.XXXXXX")
		printf 'mkinitramfs: downloading busybox-static\n' >&2
		local apt_opts=(-q)
		[[ $(id -u) -eq 0 ]] && apt_opts+=(-o APT::Sandbox::User=root)
		if ! (cd "$tmp" && apt-get "${apt_opts[@]}" download busybox-static >&2 </dev/null); then
			rm -rf "$tmp"
			die "apt-get download busybox-static failed (run apt-get update?)"
		fi
		deb=$(find "$tmp" -maxdepth 1 -name '*.deb' -print -quit)
		dpkg-deb -x "$deb" "$tmp/root" || { rm -rf "$tmp"; die "dpkg-deb -x $deb failed"; }
		local bb
		for bb in "$tmp/root/bin/busybox" "$tmp/root/usr/bin/busybox"; do
			[[ -x $bb ]] && break
		done
		[[ -x $bb ]] || { rm -rf "$tmp"; die "busybox-static has no bin/busybox"; }
		mkdir -p "$tmp/out/bin"
		mv "$bb" "$tmp/out/bin/busybox"
		rm -rf "$dir"
		mv "$tmp/out" "$dir"
		rm -rf "$tmp"
	fi
	exec {lockfd}>&-
	printf '%s\n' "$dir/bin/busybox"
}
if [[ -n ${STRATA_VM_BUSYBOX:-} ]]; then
	BUSYBOX=$STRATA_VM_BUSYBOX
	is_static "$BUSYBOX" || die "STRATA_VM_BUSYBOX=$BUSYBOX is not a static executable"
elif is_static /bin/busybox; then
	BUSYBOX=/bin/busybox
else
	BUSYBOX=$(fetch_busybox)
	is_static "$BUSYBOX" || die "$BUSYBOX from busybox-static is not a static executable"
fi
command -v modprobe >/dev/null 2>&1 || die "modprobe not found (apt-get install kmod)"

# Module load order, from the modules.dep that fetch-kernel.sh made.  The
# ext4 chain for the scratch disk needs none of the others, so the init loads
# it in the background (load-bg) while it loads the rest (load): ~0.4 s less.
read -r -a extra <<<"${STRATA_VM_MODULES:-}"
declare -A seen=()
# deps_of MODULE: prints its .ko files (and its dependencies'), in load order.
deps_of() {
	local deps kind path _
	deps=$(modprobe -d "$kdir/modroot" -S "$release" --show-depends "$1" 2>/dev/null) ||
		die "module $1 not found for kernel $release"
	while read -r kind path _; do
		[[ $kind == insmod ]] && printf '%s\n' "$path" # "builtin NAME": nothing to load
	done <<<"$deps"
}
kos=()
for m in virtio_pci 9pnet_virtio 9p fuse overlay virtio_blk "${extra[@]}"; do
	while read -r path; do
		[[ -z $path || -n ${seen[$path]:-} ]] && continue
		seen[$path]=1
		kos+=("$path")
	done < <(deps_of "$m")
done
bg_kos=()
mapfile -t ext4_kos < <(deps_of ext4)
for path in "${ext4_kos[@]}"; do
	if [[ -n ${seen[$path]:-} ]]; then
		# It shares a module with the foreground list: load it there, after it.
		bg_kos=()
		for p in "${ext4_kos[@]}"; do
			[[ -n ${seen[$p]:-} ]] || kos+=("$p")
		done
		break
	fi
	bg_kos+=("$path")
done

# Cache key: this script, the init, busybox, the kernel and the module list.
key=$( {
	cat "${BASH_SOURCE[0]}" "$HERE/init.sh" "$BUSYBOX"
	printf '%s\n' "$release" "${kos[@]}" -- "${bg_kos[@]}"
} | sha256sum | cut -c1-16)
out=$kdir/initramfs-$key.cpio
if [[ -s $out ]]; then
	printf '%s\n' "$out"
	exit 0
fi

stage=$(mktemp -d "$kdir/.initramfs.XXXXXX")
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage"/{bin,dev,proc,sys,lib/modules}
cp "$BUSYBOX" "$stage/bin/busybox"
ln -s busybox "$stage/bin/sh"
cp "$HERE/init.sh" "$stage/init"
chmod 0755 "$stage/init" "$stage/bin/busybox"
# The kernel opens /dev/console for init before /init mounts devtmpfs.
if [[ $(id -u) -eq 0 ]]; then
	mknod -m 0600 "$stage/dev/console" c 5 1
fi
# /lib/modules/load and load-bg: one module a line, in load order; CPU-specific
# ones (arch/, e.g. crc32c-intel) are marked optional: the CPU may lack the
# feature.
list_kos() {
	local ko
	for ko in "$@"; do
		cp "$ko" "$stage/lib/modules/"
		if [[ $ko == */kernel/arch/* ]]; then
			printf '%s optional\n' "$(basename "$ko")"
		else
			basename "$ko"
		fi
	done
}
list_kos "${kos[@]}" >"$stage/lib/modules/load"
list_kos "${bg_kos[@]}" >"$stage/lib/modules/load-bg"

(cd "$stage" && find . -mindepth 1 | LC_ALL=C sort |
	"$BUSYBOX" cpio -o -H newc -R 0:0 >"$stage.cpio" 2>/dev/null) || die "cpio failed"
mv "$stage.cpio" "$out"
# Other initramfs images of this kernel are stale (those of the last hour are
# left alone: another checkout's run may be about to boot one).
find "$kdir" -maxdepth 1 -name 'initramfs-*.cpio' ! -name "initramfs-$key.cpio" -mmin +60 -delete
printf '%s\n' "$out"

#!/usr/bin/env bash
# Fetches a Debian 12 kernel for the test VM and prints the directory it is in.
#
#   tests/vm/fetch-kernel.sh            prints e.g. /var/cache/strata-vm/kernel/6.1.0-56-amd64
#
# The kernel package is fetched with `apt-get download` and unpacked with
# `dpkg-deb -x` (never installed).  The directory printed holds:
#   vmlinuz   the kernel as packaged (bzImage)
#   vmlinux   the same kernel decompressed (ELF, boots through PVH: ~2 s faster
#             under TCG because the guest does not decompress itself); absent
#             when xz is not installed
#   config    the kernel's build configuration
#   release   the kernel release (uname -r in the guest)
#   modroot/  a module root: modroot/lib/modules/RELEASE/... with modules.dep,
#             usable as `modprobe -d modroot -S RELEASE`
#
# Idempotent: once a kernel is in the cache it is reused without asking apt.
# Environment:
#   STRATA_VM_CACHE       cache directory (default /var/cache/strata-vm)
#   STRATA_VM_KERNEL_PKG  the package to use, e.g. linux-image-6.1.0-56-amd64-unsigned
#                         (default: what linux-image-amd64 depends on now, its
#                         -unsigned variant when apt knows one)
#   STRATA_VM_REFRESH=1   ask apt again for the current kernel even if one is cached
set -euo pipefail

CACHE=${STRATA_VM_CACHE:-/var/cache/strata-vm}
KDIRS=$CACHE/kernel

die() {
	printf 'fetch-kernel: %s\n' "$*" >&2
	exit 1
}
log() { printf 'fetch-kernel: %s\n' "$*" >&2; }

for tool in apt-get apt-cache dpkg-deb depmod flock; do
	command -v "$tool" >/dev/null 2>&1 || die "$tool not found (this needs a Debian system with kmod and util-linux)"
done

mkdir -p "$KDIRS" 2>/dev/null || die "cannot create $KDIRS (run as root or set STRATA_VM_CACHE)"

# A kernel directory is complete once its .complete marker exists.
complete() { [[ -f $1/.complete && -f $1/vmlinuz && -f $1/release ]]; }

# Fast path: a cached kernel, nothing asked for.
if [[ -z ${STRATA_VM_KERNEL_PKG:-} && ${STRATA_VM_REFRESH:-0} != 1 ]] && complete "$KDIRS/current"; then
	(cd "$KDIRS/current" && pwd -P)
	exit 0
fi

exec {lockfd}>"$CACHE/.fetch.lock"
flock "$lockfd"

# The package to fetch.
resolve_pkg() {
	local meta
	# linux-image-amd64 is the metapackage that always depends on the current
	# kernel ABI, e.g. linux-image-6.1.0-56-amd64.
	meta=$(apt-cache depends linux-image-amd64 2>/dev/null |
		awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9].*-amd64$/ { print $2; exit }')
	[[ -n $meta ]] || return 1
	if [[ -n $(apt-cache show "$meta-unsigned" 2>/dev/null | head -n 1) ]]; then
		printf '%s\n' "$meta-unsigned"
	else
		printf '%s\n' "$meta"
	fi
}

pkg=${STRATA_VM_KERNEL_PKG:-}
if [[ -z $pkg ]]; then
	if ! pkg=$(resolve_pkg); then
		log "apt knows no linux-image-amd64; running apt-get update"
		apt-get -q -o DPkg::Lock::Timeout=300 update >&2 </dev/null || die "apt-get update failed"
		pkg=$(resolve_pkg) || die "apt-cache finds no linux-image-amd64 (is this Debian 12 amd64?)"
	fi
fi
[[ $pkg =~ ^linux-image-([0-9][^[:space:]]*-amd64)(-unsigned)?$ ]] ||
	die "not a Debian amd64 kernel package name: $pkg"
release=${BASH_REMATCH[1]}
kdir=$KDIRS/$release

if ! complete "$kdir"; then
	tmp=$(mktemp -d "$KDIRS/.tmp-$release.XXXXXX")
	trap 'rm -rf "$tmp"' EXIT
	log "downloading $pkg"
	apt_opts=(-q)
	# As root apt would drop to _apt, which cannot write into our cache.
	[[ $(id -u) -eq 0 ]] && apt_opts+=(-o APT::Sandbox::User=root)
	(cd "$tmp" && apt-get "${apt_opts[@]}" download "$pkg" >&2 </dev/null) ||
		die "apt-get download $pkg failed (run apt-get update?)"
	deb=$(find "$tmp" -maxdepth 1 -name '*.deb' -print -quit)
	[[ -n $deb ]] || die "apt-get download $pkg left no .deb"
	log "unpacking $(basename "$deb")"
	dpkg-deb -x "$deb" "$tmp/root" || die "dpkg-deb -x $deb failed"
	rm -f "$deb"

	mkdir -p "$tmp/out/modroot/lib/modules"
	[[ -f $tmp/root/boot/vmlinuz-$release ]] || die "$pkg has no /boot/vmlinuz-$release"
	mv "$tmp/root/boot/vmlinuz-$release" "$tmp/out/vmlinuz"
	mv "$tmp/root/boot/config-$release" "$tmp/out/config"
	moddir=
	for d in "$tmp/root/lib/modules/$release" "$tmp/root/usr/lib/modules/$release"; do
		[[ -d $d ]] && moddir=$d
	done
	[[ -n $moddir ]] || die "$pkg has no modules directory for $release"
	mv "$moddir" "$tmp/out/modroot/lib/modules/$release"
	rm -rf "$tmp/root"
	depmod -b "$tmp/out/modroot" "$release" || die "depmod failed for $release"

	# Decompress the bzImage payload (offset and length from the setup header,
	# see Documentation/x86/boot.rst) to an ELF vmlinux that QEMU boots via PVH.
	if command -v xz >/dev/null 2>&1 && grep -q '^CONFIG_PVH=y' "$tmp/out/config"; then
		hdr() { od -An -t u"$2" -j "$1" -N "$2" "$tmp/out/vmlinuz" | tr -d ' '; }
		setup_sects=$(hdr $((0x1f1)) 1)
		((setup_sects == 0)) && setup_sects=4
		payload_offset=$(hdr $((0x248)) 4)
		payload_length=$(hdr $((0x24c)) 4)
		start=$(((setup_sects + 1) * 512 + payload_offset))
		tail -c +$((start + 1)) "$tmp/out/vmlinuz" | head -c "$payload_length" |
			xz -dc --single-stream >"$tmp/out/vmlinux" 2>/dev/null || true
		if [[ $(head -c 4 "$tmp/out/vmlinux" | od -An -t x1 | tr -d ' ') != 7f454c46 ]]; then
			log "could not decompress vmlinuz (not xz?); the VM will boot the bzImage"
			rm -f "$tmp/out/vmlinux"
		fi
	else
		log "xz not installed or no PVH: the VM will boot the bzImage (slower under TCG)"
	fi

	printf '%s\n' "$release" >"$tmp/out/release"
	printf '%s\n' "$pkg" >"$tmp/out/package"
	touch "$tmp/out/.complete"
	rm -rf "$kdir"
	mv "$tmp/out" "$kdir"
	rm -rf "$tmp"
	trap - EXIT
	log "kernel $release ready in $kdir"
fi

# Point "current" at it (atomically: rename a fresh symlink over the old one).
ln -sfn "$release" "$KDIRS/.current.$$"
mv -T "$KDIRS/.current.$$" "$KDIRS/current"
printf '%s\n' "$kdir"

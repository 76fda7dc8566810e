#!/usr/bin/env bash
# Runs a command in a throwaway QEMU VM with a pure cgroup v2 hierarchy and
# exits with the command's exit status.
#
#   tests/vm/run-in-vm.sh [OPTIONS] [--] CMD [ARGS...]
#
# The guest runs Debian 12's kernel (fetch-kernel.sh) booted with
# cgroup_no_v1=all, a busybox initramfs (mkinitramfs.sh, init.sh), and this
# machine's own files: the host's / is shared read-only over 9p and topped
# with a tmpfs overlay, so CMD sees the same paths, binaries and libraries as
# here, can write anywhere, and changes nothing on the host (except in -w
# directories).  CMD runs as root in the host's current directory, in the root
# cgroup, with +memory +cpu +cpuset +io +pids enabled for child cgroups, FUSE
# and overlay loaded, and `modprobe` working for the guest kernel.  Its
# stdout and stderr are the VM's serial console, streamed to this script's
# stdout; stdin is /dev/null unless this script's stdin is a terminal.
#
# Options:
#   -e VAR[=VALUE]  set VAR in the guest (to VALUE, or to its value here)
#   -w DIR          share DIR read-write: the guest's writes there reach the host
#   -C DIR          run CMD in DIR (default: the current directory)
#   -k PATH         keep the host's PATH visible although it is under /tmp
#                   (see "/tmp" below; done by itself for the usual paths)
#   -t SECONDS      kill the VM after this long (default 120, or $STRATA_VM_TIMEOUT)
#   -h              this help
# The guest gets PATH, LANG, LC_*, TERM, CI and every STRATA_* variable except
# the STRATA_VM_* ones below, and STRATA_IN_VM=1.
#
# /tmp in the guest is a fresh, empty ext4 scratch disk (4 GiB sparse, deleted
# afterwards): ext4 like the host's, because an overlay refuses whiteout
# devices and trusted.overlay.* xattrs and 6.1's tmpfs has no user.* xattrs.
# Host paths under /tmp stay visible when they are the current directory, the
# command, an argument, a -e or STRATA_* value, this checkout, or given by -k
# (each by its first component, e.g. all of /tmp/ci for /tmp/ci/build/x).
#
# Environment:
#   STRATA_VM_CACHE    kernel/initramfs cache (default /var/cache/strata-vm)
#   STRATA_VM_ACCEL    auto (default), kvm or tcg.  auto uses KVM only after
#                      a probe boot under KVM succeeded (cached per host kernel)
#   STRATA_VM_MEM      guest memory in MiB (default 1024)
#   STRATA_VM_CPUS     guest CPUs (default 2)
#   STRATA_VM_TIMEOUT  default for -t
#   STRATA_VM_SCRATCH_MB  size of the /tmp scratch disk (default 4096; 0: a tmpfs)
#   STRATA_VM_VERBOSE  1: kernel messages and boot timings on the console
#   STRATA_VM_APPEND   more kernel command line arguments
#   STRATA_VM_CPU      QEMU -cpu model (default: max under TCG, host under KVM)
#
# Exit status: CMD's (0-255); 124 when the VM was killed at the timeout;
# 125 when the VM could not be started or stopped without reporting a status.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${STRATA_VM_CACHE:-/var/cache/strata-vm}
export STRATA_VM_CACHE=$CACHE

die() {
	printf 'run-in-vm: %s\n' "$*" >&2
	exit 125
}
usage() {
	sed -n '/^#   tests/,/^# 125 when/p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

envs=()
rws=()
keeps=()
workdir=$PWD
timeout_s=${STRATA_VM_TIMEOUT:-120}
while getopts ':e:w:C:k:t:h' opt; do
	case $opt in
	e)
		if [[ $OPTARG == *=* ]]; then
			envs+=("$OPTARG")
		elif [[ -v $OPTARG ]]; then
			envs+=("$OPTARG=${!OPTARG}")
		fi
		[[ ${OPTARG%%=*} =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || die "-e: not a variable name: ${OPTARG%%=*}"
		;;
	w)
		[[ -d $OPTARG ]] || die "-w: not a directory: $OPTARG"
		rws+=("$(cd "$OPTARG" && pwd -P)")
		;;
	C) workdir=$OPTARG ;;
	k) keeps+=("$OPTARG") ;;
	t)
		[[ $OPTARG =~ ^[1-9][0-9]*$ ]] || die "-t: not a number of seconds: $OPTARG"
		timeout_s=$OPTARG
		;;
	h)
		usage
		exit 0
		;;
	:) die "-$OPTARG needs an argument (see -h)" ;;
	*) die "unknown option -$OPTARG (see -h)" ;;
	esac
done
shift $((OPTIND - 1))
(($# > 0)) || die "no command given (usage: run-in-vm.sh [OPTIONS] [--] CMD [ARGS...], see -h)"
[[ $timeout_s =~ ^[1-9][0-9]*$ ]] || die "STRATA_VM_TIMEOUT is not a number of seconds: $timeout_s"
[[ -d $workdir ]] || die "-C: not a directory: $workdir"
workdir=$(cd "$workdir" && pwd)
scratch_mb=${STRATA_VM_SCRATCH_MB:-4096}
[[ $scratch_mb =~ ^[0-9]+$ ]] || die "STRATA_VM_SCRATCH_MB must be a number of MiB"
mem=${STRATA_VM_MEM:-1024}
cpus=${STRATA_VM_CPUS:-2}
[[ $mem =~ ^[0-9]+$ && $cpus =~ ^[0-9]+$ ]] || die "STRATA_VM_MEM and STRATA_VM_CPUS must be numbers"

QEMU=qemu-system-x86_64
command -v "$QEMU" >/dev/null 2>&1 || die "$QEMU not found (apt-get install qemu-system-x86)"
command -v timeout >/dev/null 2>&1 || die "timeout not found (coreutils)"

kdir=$("$HERE/fetch-kernel.sh") || die "could not fetch the guest kernel"
initrd=$("$HERE/mkinitramfs.sh" "$kdir") || die "could not build the initramfs"
release=$(<"$kdir/release")
kernel=$kdir/vmlinuz
[[ -f $kdir/vmlinux ]] && kernel=$kdir/vmlinux

work=$(mktemp -d "${TMPDIR:-/tmp}/strata-vm.XXXXXX")
ctl=$work/ctl
mkdir "$ctl"
qemu_pid=
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
	[[ -n $qemu_pid ]] && kill "$qemu_pid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Starts QEMU with the accelerator and extra kernel arguments given; waits for
# it at most $2 seconds; returns QEMU's exit status (124 on timeout).
# shellcheck disable=SC2054 # the commas are QEMU's
qemu_common=(
	-nodefaults -no-user-config -display none -no-reboot
	-machine pc -m "$mem" -smp "$cpus"
	-kernel "$kernel" -initrd "$initrd"
	-serial stdio
	-device isa-debug-exit,iobase=0xf4,iosize=0x04
)
# pci=noacpi (PCI IRQs from the BIOS table: no ACPI AML per device) and
# cryptomgr.notests (no crypto self-tests) each save ~0.4 s of boot under TCG.
cmdline="console=ttyS0 cgroup_no_v1=all systemd.unified_cgroup_hierarchy=1 panic=-1 mitigations=off"
cmdline+=" pci=noacpi cryptomgr.notests"
if [[ ${STRATA_VM_VERBOSE:-0} == 1 ]]; then
	cmdline+=" strata.verbose=1"
else
	cmdline+=" quiet loglevel=1"
fi
[[ -n ${STRATA_VM_APPEND:-} ]] && cmdline+=" $STRATA_VM_APPEND"
run_qemu() {
	local accel=$1 limit=$2 extra=$3
	shift 3
	local cpu=${STRATA_VM_CPU:-max}
	[[ $accel == kvm ]] && cpu=host
	local rc=0
	# --foreground: QEMU keeps the terminal when there is one.
	timeout --foreground -k 5 "$limit" "$QEMU" "${qemu_common[@]}" -accel "$accel" -cpu "$cpu" \
		-append "$cmdline $extra" "$@" &
	qemu_pid=$!
	wait "$qemu_pid" || rc=$?
	qemu_pid=
	return "$rc"
}

# KVM only when it demonstrably boots this kernel: nested setups may expose a
# /dev/kvm that crashes QEMU or hangs the guest.  The verdict is cached.
pick_accel() {
	local want=${STRATA_VM_ACCEL:-auto}
	case $want in
	tcg | kvm)
		echo "$want"
		return
		;;
	auto) ;;
	*) die "STRATA_VM_ACCEL must be auto, kvm or tcg, not $want" ;;
	esac
	if ! [[ -r /dev/kvm && -w /dev/kvm ]]; then
		echo tcg
		return
	fi
	local key verdict file rc=0
	key=$({ uname -r; "$QEMU" --version | head -n 1; echo "$release"; } | sha256sum | cut -c1-16)
	file=$CACHE/kvm-probe-$key
	if [[ -f $file ]]; then
		verdict=$(<"$file")
	else
		run_qemu kvm 20 strata.probe=1 </dev/null >/dev/null 2>&1 || rc=$?
		# The probe's init writes 42 to isa-debug-exit: QEMU exits (42 << 1) | 1.
		if ((rc == 85)); then verdict=kvm; else verdict=tcg; fi
		printf '%s\n' "$verdict" >"$file.$$" && mv "$file.$$" "$file"
		[[ $verdict == tcg ]] && printf 'run-in-vm: /dev/kvm does not boot the guest here (probe exit %d); using TCG\n' "$rc" >&2
	fi
	echo "$verdict"
}
accel=$(pick_accel)

# The command, as a bash script the guest's init runs with `env -i`.
{
	echo '#!/bin/bash'
	printf 'export STRATA_IN_VM=1 HOME=/root\n'
	printf 'export %q\n' "PATH=${PATH:-/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin}"
	while IFS= read -r name; do
		case $name in
		STRATA_VM_* | STRATA_IN_VM) ;;
		LANG | LC_* | CI | STRATA_*) printf 'export %q\n' "$name=${!name}" ;;
		TERM) [[ -t 0 ]] && printf 'export %q\n' "$name=${!name}" ;;
		esac
	done < <(compgen -e)
	if ((${#envs[@]} > 0)); then
		for e in "${envs[@]}"; do printf 'export %q\n' "$e"; done
	fi
	printf 'cd %q || exit 125\n' "$workdir"
	printf 'exec'
	printf ' %q' "$@"
	printf '\n'
} >"$ctl/cmd"
{
	printf 'STRATA_VM_RELEASE=%s\n' "$release"
	printf 'STRATA_VM_MODDIR=%s\n' "$(cd "$kdir/modroot/lib/modules/$release" && pwd -P)"
	if [[ -t 0 ]]; then echo STRATA_VM_TTY=1; else echo STRATA_VM_TTY=0; fi
	if ((scratch_mb > 0)); then echo STRATA_VM_SCRATCH=1; else echo STRATA_VM_SCRATCH=0; fi
} >"$ctl/config"

# The guest's /tmp is a fresh filesystem: host paths under /tmp that the
# command names (its directory, its path, arguments, -e values, this
# checkout, -k) are kept visible there, by their first component under /tmp.
keep_if_tmp() {
	local p=$1 top
	[[ $p == /tmp/?* && -e $p && $p != *$'\n'* ]] || return 0
	top=${p#/tmp/}
	top=/tmp/${top%%/*}
	[[ $top == "$work" ]] && return 0
	[[ $'\n'$keep_list == *$'\n'$top$'\n'* ]] || keep_list+=$top$'\n'
}
keep_list=
keep_if_tmp "$workdir"
keep_if_tmp "$(cd "$HERE/../.." && pwd)"
for a in "$@"; do
	[[ $a == /* ]] || a=$workdir/$a
	keep_if_tmp "$a"
done
for e in "${envs[@]}" "${keeps[@]}"; do keep_if_tmp "${e#*=}"; done
while IFS= read -r name; do
	[[ $name == STRATA_* && $name != STRATA_VM_* ]] && keep_if_tmp "${!name}"
done < <(compgen -e)
[[ -n $keep_list ]] && printf '%s' "$keep_list" >"$ctl/keep"

# The scratch disk for /tmp: a sparse ext4 image, deleted afterwards.
drive=()
if ((scratch_mb > 0)); then
	command -v mkfs.ext4 >/dev/null 2>&1 || die "mkfs.ext4 not found (apt-get install e2fsprogs)"
	truncate -s "${scratch_mb}M" "$work/scratch.img" || die "cannot create $work/scratch.img"
	mkfs.ext4 -q -F -O ^has_journal -m 0 -L strata-vm-tmp "$work/scratch.img" ||
		die "mkfs.ext4 on $work/scratch.img failed"
	drive=(-drive "file=$work/scratch.img,format=raw,if=virtio,cache=unsafe,discard=unmap")
fi
for ((i = 0; i < ${#rws[@]}; i++)); do
	[[ ${rws[i]} != *$'\n'* ]] || die "-w: a path with a newline cannot be shared: ${rws[i]}"
	printf 'rw%d %s\n' "$i" "${rws[i]}" >>"$ctl/rw"
done

shares=(
	# multidevs=remap: / spans several host filesystems; keeps inode numbers unique.
	-virtfs "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap"
	-virtfs "local,path=$ctl,mount_tag=ctl,security_model=none"
)
for ((i = 0; i < ${#rws[@]}; i++)); do
	p=${rws[i]//,/,,} # QEMU option syntax: a comma is written twice
	shares+=(-virtfs "local,path=$p,mount_tag=rw$i,security_model=none,multidevs=remap")
done

rc=0
if [[ -t 0 ]]; then
	run_qemu "$accel" "$timeout_s" "" "${shares[@]}" "${drive[@]}" || rc=$?
else
	run_qemu "$accel" "$timeout_s" "" "${shares[@]}" "${drive[@]}" </dev/null || rc=$?
fi

if [[ -f $ctl/status ]]; then
	status=$(<"$ctl/status")
	[[ $status =~ ^[0-9]+$ ]] || die "the guest reported a bad status: $status"
	exit "$status"
fi
if ((rc == 124 || rc == 137)); then
	printf 'run-in-vm: timed out after %ss; killed the VM\n' "$timeout_s" >&2
	exit 124
fi
if ((rc % 2 == 1 && rc > 1)); then
	# The guest stopped through isa-debug-exit without a status file.
	status=$(((rc - 1) / 2))
	((status == 125)) && die "the guest's init failed (see its message above)"
	exit "$status"
fi
die "the VM stopped without reporting a status (qemu exit $rc; kernel panic?)"

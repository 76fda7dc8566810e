#!/bin/sh
# shellcheck shell=dash
# /init of the Strata test VM's initramfs (run by busybox sh as PID 1).
#
# Loads the modules listed in /lib/modules/load, mounts the host's / read-only
# over 9p (tag hostroot) under a throwaway tmpfs overlay as the new root, with
# the scratch disk (/dev/vda, ext4) on /tmp,
# mounts a pure cgroup v2 hierarchy with +memory +cpu +cpuset +io +pids
# enabled, runs /ctl/cmd (written by tests/vm/run-in-vm.sh into the 9p share
# tagged ctl) chrooted in that root, writes its exit status to /ctl/status and
# stops the VM through QEMU's isa-debug-exit device (port 0xf4), which makes
# QEMU exit with (value << 1) | 1.
#
# Kernel command line: strata.verbose=1 (timings and kernel messages),
# strata.probe=1 (stop at once with value 42: used to check that KVM works).

PATH=/bin
export PATH
/bin/busybox mkdir -p /dev /proc /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
/bin/busybox --install -s /bin
mount -t proc proc /proc

say() { echo "strata-vm: $*"; }

# Stops the VM with exit value $1 (0..127); QEMU exits with ($1 << 1) | 1.
exit_vm() {
	v=$1
	[ "$v" -gt 127 ] && v=127
	# shellcheck disable=SC2059 # the format is the byte to write
	printf "\\$(printf %03o "$v")" | dd of=/dev/port bs=1 seek=244 count=1 2>/dev/null
	say "isa-debug-exit did not stop the VM (no -device isa-debug-exit,iobase=0xf4?); powering off"
	poweroff -f
}
fail() {
	say "init: $*"
	exit_vm 125
}

verbose=0
read -r cmdline </proc/cmdline
for w in $cmdline; do
	case $w in
	strata.verbose=1) verbose=1 ;;
	strata.probe=1) exit_vm 42 ;;
	esac
done
stamp() {
	[ "$verbose" = 1 ] && say "$(cut -d' ' -f1 /proc/uptime)s $*"
	return 0
}
# Keep kernel messages (e.g. the OOM killer's) out of the test output.
[ "$verbose" = 1 ] || echo 1 >/proc/sys/kernel/printk
stamp "init started"

mount -t sysfs sysfs /sys || fail "cannot mount sysfs"

# load_list FILE: insmods the modules FILE lists, in order.
load_list() {
	while read -r ko optional; do
		[ -n "$ko" ] || continue
		if [ -n "$optional" ]; then
			insmod "/lib/modules/$ko" 2>/dev/null
		else
			insmod "/lib/modules/$ko" || fail "insmod $ko failed"
		fi
		stamp "  $ko"
	done <"$1"
}
bg_pid=
if [ -s /lib/modules/load-bg ]; then
	load_list /lib/modules/load-bg &
	bg_pid=$!
fi
load_list /lib/modules/load
stamp "modules loaded"

ninep='trans=virtio,version=9p2000.L,msize=512000'
mkdir -p /host /ctl /rw /newroot
mount -t 9p -o "$ninep,cache=loose,ro" hostroot /host || fail "cannot mount the host root (9p tag hostroot)"
mount -t 9p -o "$ninep" ctl /ctl || fail "cannot mount the control share (9p tag ctl)"
[ -r /ctl/config ] || fail "no /ctl/config"
# Sets STRATA_VM_RELEASE, STRATA_VM_MODDIR, STRATA_VM_TTY, STRATA_VM_SCRATCH.
# shellcheck source=/dev/null
. /ctl/config

# The root: the host's / read-only, with a tmpfs overlay taking every write.
mount -t tmpfs -o mode=0755 tmpfs /rw || fail "cannot mount tmpfs"
mkdir -p /rw/upper /rw/work
mount -t overlay -o lowerdir=/host,upperdir=/rw/upper,workdir=/rw/work overlay /newroot ||
	fail "cannot mount the overlay root"
R=/newroot
mount -t proc proc "$R/proc" || fail "cannot mount $R/proc"
mount -t sysfs sysfs "$R/sys" || fail "cannot mount $R/sys"
mount -t devtmpfs devtmpfs "$R/dev" || fail "cannot mount $R/dev"
mkdir -p "$R/dev/pts" "$R/dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,gid=5 devpts "$R/dev/pts"
mount -t tmpfs -o mode=1777 tmpfs "$R/dev/shm"
mount -t tmpfs -o mode=0755 tmpfs "$R/run"

# /tmp: the scratch disk (ext4 like the host's /tmp: user and trusted xattrs,
# whiteout devices; an overlay allows neither), or a tmpfs without one.  The
# host paths under /tmp that the command needs (/ctl/keep: its directory...)
# stay visible, moved on top of it.
k=0
if [ -r /ctl/keep ]; then
	while read -r path; do
		[ -n "$path" ] || continue
		mkdir -p /keep
		if [ -d "$R$path" ]; then mkdir "/keep/$k"; else touch "/keep/$k"; fi
		mount --bind "$R$path" "/keep/$k" || fail "cannot keep $path visible"
		k=$((k + 1))
	done </ctl/keep
fi
if [ "${STRATA_VM_SCRATCH:-0}" = 1 ]; then
	[ -z "$bg_pid" ] || wait "$bg_pid" || fail "loading the ext4 modules failed"
	stamp "ext4 loaded"
	for _ in 1 2 3 4 5 6 7 8 9 10; do
		[ -b /dev/vda ] && break
		sleep 0.1
	done
	mount -t ext4 -o noatime /dev/vda "$R/tmp" || fail "cannot mount the scratch disk /dev/vda on /tmp"
else
	mount -t tmpfs tmpfs "$R/tmp" || fail "cannot mount a tmpfs on /tmp"
fi
chmod 1777 "$R/tmp"
rmdir "$R/tmp/lost+found" 2>/dev/null
k=0
if [ -r /ctl/keep ]; then
	while read -r path; do
		[ -n "$path" ] || continue
		if [ -d "/keep/$k" ]; then
			mkdir -p "$R$path"
		else
			mkdir -p "$R${path%/*}"
			touch "$R$path"
		fi
		mount --move "/keep/$k" "$R$path" || fail "cannot keep $path visible"
		k=$((k + 1))
	done </ctl/keep
fi
mkdir -p "$R/run/lock" "$R/run/strata-vm"
mount -t fusectl fusectl "$R/sys/fs/fuse/connections" 2>/dev/null

# Pure cgroup v2 (the kernel runs with cgroup_no_v1=all), mounted the way
# systemd does it, with the controllers the tests use enabled for children.
mount -t cgroup2 -o nosuid,nodev,noexec,nsdelegate,memory_recursiveprot cgroup2 "$R/sys/fs/cgroup" ||
	fail "cannot mount cgroup2"
echo "+memory +cpu +cpuset +io +pids" >"$R/sys/fs/cgroup/cgroup.subtree_control" ||
	fail "cannot enable +memory +cpu +cpuset +io +pids in cgroup.subtree_control"

# The guest kernel's full module tree, so `modprobe` works in the root.
if [ -n "${STRATA_VM_MODDIR:-}" ] && [ -d "/host$STRATA_VM_MODDIR" ]; then
	mkdir -p "$R/lib/modules/$STRATA_VM_RELEASE"
	mount --bind "/host$STRATA_VM_MODDIR" "$R/lib/modules/$STRATA_VM_RELEASE"
fi

# Read-write shares: lines "TAG PATH" (the path may contain spaces).
if [ -r /ctl/rw ]; then
	while read -r tag path; do
		[ -n "$tag" ] || continue
		mkdir -p "$R$path"
		mount -t 9p -o "$ninep,cache=mmap" "$tag" "$R$path" || fail "cannot mount $path read-write (9p tag $tag)"
	done </ctl/rw
fi
mount --bind /ctl "$R/run/strata-vm"
hostname strata-vm
ip link set lo up
stamp "root ready"

if [ "${STRATA_VM_TTY:-0}" = 1 ]; then
	# Interactive: the console is the command's controlling terminal.
	setsid -c chroot "$R" /usr/bin/env -i /bin/bash /run/strata-vm/cmd <>/dev/ttyS0 >&0 2>&1
	status=$?
else
	# Plain "\n" line ends, as the command wrote them (the host is no terminal).
	stty -onlcr </dev/console
	chroot "$R" /usr/bin/env -i /bin/bash /run/strata-vm/cmd </dev/null
	status=$?
fi
stamp "command exited with status $status"
echo "$status" >/ctl/status
sync
exit_vm "$status"

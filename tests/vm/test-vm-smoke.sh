#!/usr/bin/env bash
# Smoke test of the cgroup v2 test VM (TAP).
#
#   tests/vm/test-vm-smoke.sh
#
# On the host it boots the VM through tests/vm/run-in-vm.sh and runs itself
# inside; inside (STRATA_IN_VM=1) it checks that the VM is what the cgroup v2
# tests need: a pure cgroup2 hierarchy with memory, cpu, cpuset, io and pids,
# limits that are enforced (a process over memory.max is OOM-killed, cpu.max
# throttles, pids.max refuses a fork), FUSE, modprobe, a writable throwaway
# root, and an init that reaps orphaned daemons.  With STRATA_UNIONFS set to
# the strata-unionfs binary it also mounts a real FUSE union.
#
# Without qemu-system-x86_64 it skips (exit 0, "1..0 # SKIP"), except under
# CI=true, where that is a failure.
set -euo pipefail

if [[ ${STRATA_IN_VM:-0} != 1 ]]; then
	here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
	if ! command -v qemu-system-x86_64 >/dev/null 2>&1; then
		if [[ ${CI:-} == true ]]; then
			echo "1..1"
			echo "not ok 1 - qemu-system-x86_64 is installed (apt-get install qemu-system-x86)"
			exit 1
		fi
		echo "1..0 # SKIP qemu-system-x86_64 not installed (apt-get install qemu-system-x86)"
		exit 0
	fi
	exec "$here/run-in-vm.sh" -t "${STRATA_VM_TIMEOUT:-240}" -- bash "$here/$(basename "${BASH_SOURCE[0]}")"
fi

# ---- inside the VM ----------------------------------------------------------
set +e
n=0
failed=0
ok() {
	n=$((n + 1))
	echo "ok $n - $1"
}
not_ok() {
	n=$((n + 1))
	failed=$((failed + 1))
	echo "not ok $n - $1"
	shift
	local line
	for line in "$@"; do echo "# $line"; done
}
skip() {
	n=$((n + 1))
	echo "ok $n - $1 # SKIP $2"
}
# check DESCRIPTION FUNCTION: ok when FUNCTION (run in a subshell) succeeds;
# what it printed becomes TAP comments when it fails.
check() {
	local desc=$1 out lines
	if out=$("$2" 2>&1); then
		ok "$desc"
	else
		mapfile -t lines <<<"$out"
		not_ok "$desc" "${lines[@]}"
	fi
}
# field FILE KEY: the value of "KEY VALUE" in a flat-keyed cgroup file.
field() { awk -v k="$2" '$1 == k { print $2 }' "$1"; }
# expect FILE VALUE: FILE's content is VALUE.
expect() {
	local v
	v=$(cat "$1") || return 1
	[[ $v == "$2" ]] || {
		echo "$1: '$v', expected '$2'"
		return 1
	}
}
# in_cgroup CGROUP CMD...: runs CMD moved into CGROUP (by a shell that joins
# it first and then execs CMD).
in_cgroup() {
	local cg=$1
	shift
	sh -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$cg" "$@"
}

CG=/sys/fs/cgroup
cg=$CG/strata-smoke
pcg=$CG/strata-smoke-pids

t_v2_only() {
	local t
	t=$(stat -f -c %T $CG)
	[[ $t == cgroup2fs ]] || {
		echo "$CG is $t"
		return 1
	}
	! awk '$3 == "cgroup"' /proc/mounts | grep . || return 1
	grep -qw cgroup_no_v1=all /proc/cmdline || {
		echo "no cgroup_no_v1=all on the kernel command line"
		return 1
	}
}
t_controllers() {
	local c
	for c in memory cpu cpuset io pids; do
		grep -qw "$c" $CG/cgroup.controllers || {
			echo "$c not in cgroup.controllers: $(cat $CG/cgroup.controllers)"
			return 1
		}
		grep -qw "$c" $CG/cgroup.subtree_control || {
			echo "$c not in cgroup.subtree_control: $(cat $CG/cgroup.subtree_control)"
			return 1
		}
	done
}
t_memory_max() { echo 64M >"$cg/memory.max" && expect "$cg/memory.max" 67108864; }
t_cpu_max() { echo "50000 100000" >"$cg/cpu.max" && expect "$cg/cpu.max" "50000 100000"; }
t_cpuset() {
	expect /sys/devices/system/cpu/online 0-1 || return 1
	echo 1 >"$cg/cpuset.cpus" && expect "$cg/cpuset.cpus.effective" 1 || return 1
	echo 0-1 >"$cg/cpuset.cpus"
}
t_io_pids_files() {
	local f
	for f in io.max io.stat pids.max pids.current; do
		[[ -e $cg/$f ]] || {
			echo "no $cg/$f"
			return 1
		}
	done
}
t_move() {
	local got
	got=$(in_cgroup "$cg" cat /proc/self/cgroup) || return 1
	[[ $got == 0::/strata-smoke ]] || {
		echo "/proc/self/cgroup: $got"
		return 1
	}
}
t_fuse() {
	[[ -c /dev/fuse ]] || {
		echo "no /dev/fuse"
		return 1
	}
	grep -qw fuse /proc/filesystems || {
		echo "fuse is not in /proc/filesystems"
		return 1
	}
}
t_overlay() { grep -qw overlay /proc/filesystems; }
t_modprobe() { modprobe loop && grep -q '^loop ' /proc/modules; }
t_writable_root() {
	echo x >/etc/strata-vm-smoke && expect /etc/strata-vm-smoke x && rm /etc/strata-vm-smoke
}
t_unionfs() {
	set -e
	local d
	d=$(mktemp -d)
	mkdir "$d/l" "$d/u" "$d/w" "$d/m"
	echo lower >"$d/l/f"
	"$STRATA_UNIONFS" -o "lowerdir=$d/l,upperdir=$d/u,workdir=$d/w" "$d/m"
	# shellcheck disable=SC2064 # $d is fixed now
	trap "umount '$d/m' 2>/dev/null" EXIT
	grep -q " $d/m fuse" /proc/mounts
	expect "$d/m/f" lower
	echo upper >"$d/m/f"
	expect "$d/u/f" upper
	expect "$d/l/f" lower
	umount "$d/m"
	trap - EXIT
}

echo "TAP version 13"
echo "1..16"
check "/sys/fs/cgroup is cgroup2 and no v1 hierarchy is mounted" t_v2_only
check "cgroup.controllers and subtree_control have memory cpu cpuset io pids" t_controllers
mkdir "$cg" "$pcg" 2>/dev/null
check "a child cgroup takes memory.max=64M" t_memory_max
check "a child cgroup takes cpu.max=\"50000 100000\"" t_cpu_max
check "cpuset: 2 CPUs online, a child restricted to CPU 1" t_cpuset
check "io and pids interface files exist in the child" t_io_pids_files
check "a shell moved into the child sees itself there" t_move

# A process allocating 100 MiB (dd's buffer) under memory.max=64M, no swap.
# (In a subshell, so that bash's "Killed" report goes to /dev/null too.)
echo 0 >"$cg/memory.swap.max" 2>/dev/null
(in_cgroup "$cg" dd if=/dev/zero of=/dev/null bs=100M count=1) 2>/dev/null
st=$?
kills=$(field "$cg/memory.events" oom_kill)
if ((st == 137 && ${kills:-0} >= 1)); then
	ok "a process allocating 100M over memory.max=64M is OOM-killed (oom_kill $kills)"
else
	not_ok "a process allocating 100M over memory.max=64M is OOM-killed" \
		"exit status $st, memory.events oom_kill ${kills:-?}"
fi

# A busy loop for ~0.6 s under cpu.max 50000/100000 gets throttled.
in_cgroup "$cg" timeout 0.6 sh -c 'while :; do :; done'
thr=$(field "$cg/cpu.stat" nr_throttled)
if ((${thr:-0} >= 1)); then
	ok "cpu.max throttles a busy loop (nr_throttled $thr)"
else
	not_ok "cpu.max throttles a busy loop" "cpu.stat: $(tr '\n' ' ' <"$cg/cpu.stat")"
fi

echo 1 >"$pcg/pids.max"
out=$(in_cgroup "$pcg" sh -c '/bin/true && echo forked' 2>&1)
pmax=$(field "$pcg/pids.events" max)
if [[ $out != *forked* ]] && ((${pmax:-0} >= 1)); then
	ok "pids.max=1 refuses a fork (pids.events max $pmax)"
else
	not_ok "pids.max=1 refuses a fork" "output: $out" "pids.events max ${pmax:-?}"
fi

check "/dev/fuse exists and fuse is registered" t_fuse
check "overlay is registered" t_overlay
check "modprobe loads a module from the guest kernel's tree (loop)" t_modprobe
check "the root is writable (a throwaway overlay)" t_writable_root

# Daemons (like FUSE servers) are reparented to init when they detach; once
# killed, they must not linger as zombies that tests would wait on.
pid=$(setsid sh -c 'sleep 300 >/dev/null 2>&1 & echo $!')
kill "$pid"
gone=0
for _ in $(seq 50); do
	if [[ ! -e /proc/$pid ]]; then
		gone=1
		break
	fi
	sleep 0.1
done
if ((gone)); then
	ok "an orphaned daemon is reaped once killed"
else
	not_ok "an orphaned daemon is reaped once killed" "pid $pid: $(cat "/proc/$pid/stat" 2>&1)"
fi

if [[ -n ${STRATA_UNIONFS:-} && -x ${STRATA_UNIONFS:-} ]]; then
	check "a FUSE union (strata-unionfs) mounts, copies up and unmounts" t_unionfs
else
	skip "a FUSE union (strata-unionfs) mounts, copies up and unmounts" "STRATA_UNIONFS not set"
fi

rmdir "$cg" "$pcg" 2>/dev/null
((failed == 0))

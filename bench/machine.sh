#!/usr/bin/env bash
# bench/machine.sh: the machine and the versions measured (for docs/bench.md).
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ver() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo "not installed"; }
echo "date: $(date -u +%Y-%m-%dT%H:%MZ)"
echo "cpu: $(nproc) x $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
echo "memory: $(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
echo "kernel: $(uname -r)"
echo "os: $(. /etc/os-release && echo "$PRETTY_NAME")"
echo "scratch fs: $(findmnt -n -o FSTYPE,OPTIONS -T /tmp)"
echo "cgroups: $(findmnt -rn -t cgroup,cgroup2 -o FSTYPE | sort | uniq -c | xargs)"
echo "fuse io_uring (enable_uring): $(cat /sys/module/fuse/parameters/enable_uring 2>/dev/null || echo "not built")"
echo "strata: $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)"
for p in fuse-overlayfs unionfs-fuse lxcfs crun bubblewrap util-linux fuse3 fio gnuplot-nox; do
	echo "$p: $(ver "$p")"
done

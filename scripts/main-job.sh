#!/usr/bin/env bash
# The main job: installs the dependencies, builds Strata and runs a
# container on the embedded busybox image with a 256 MiB memory limit and
# one CPU, whose top, /proc/meminfo and nproc show those limits (through
# strata-procfs) on a strata-unionfs root.
#
# Environment: BUILD_DIR (default build), STRATA_SKIP_DEPS=1 to skip apt,
# STRATA_ROOT / STRATA_RUN as for strata(1).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
BUILD_DIR=${BUILD_DIR:-build}

scripts/install-deps.sh
if [[ -f $BUILD_DIR/meson-private/coredata.dat ]]; then
	meson setup --reconfigure "$BUILD_DIR" >/dev/null
else
	meson setup "$BUILD_DIR" >/dev/null
fi
ninja -C "$BUILD_DIR" strata strata-image strata-unionfs strata-procfs >/dev/null

set -x
"$BUILD_DIR/strata" run --rm -m 256m --cpuset-cpus 0 busybox \
	sh -c 'top -bn1 | head -4; nproc; cat /proc/uptime; grep -E "^(MemTotal|MemFree)" /proc/meminfo'

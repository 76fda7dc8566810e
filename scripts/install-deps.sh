#!/usr/bin/env bash
# Installs everything Strata needs to build and test on Debian 12 (bookworm).
#
# Idempotent: when every package is already installed it does not touch apt
# at all, so it is cheap to call from every script.  Run as root (or with
# sudo available).  Set STRATA_SKIP_DEPS=1 to skip it entirely.
set -euo pipefail

# One line each on why:
packages=(
	build-essential   # gcc, libc headers, make
	meson             # build system
	ninja-build       # meson's backend
	pkg-config        # finds fuse3 and criterion
	libfuse3-dev      # the FUSE low-level API strata-unionfs is written against
	liburing-dev      # FUSE over io_uring: strata-unionfs's request rings
	fuse3             # fusermount3 and mount.fuse3 (unprivileged mounts, mount -t fuse.*)
	libcriterion-dev  # unit and integration test framework
	uthash-dev        # header-only hash tables
	attr              # getfattr/setfattr, used by tests
	kmod              # modprobe, to load the fuse and overlay modules
	util-linux        # mountpoint, unshare
	mount             # mount and umount (a separate package on Debian 12)
	passwd            # useradd/userdel for the unprivileged-mount tests
	procps            # ps/pgrep, and free/top/uptime, whose output the procfs tests check
	less              # the procfs tests page a virtual file with it
	libarchive-dev    # tar import/export of images (never a home-made tar parser)
	libjson-c-dev     # image manifests and container state
	libssl-dev        # libcrypto's sha256: content-addressed layers
	libseccomp-dev    # the runner's default seccomp filter
	libcap-dev        # the runner drops capabilities to Docker's default set
	busybox-static    # the embedded busybox image is built from /bin/busybox
	qemu-system-x86   # the pure cgroup v2 test VM (tests/vm)
	e2fsprogs         # mkfs.ext4 for the VM's /tmp scratch disk
	xz-utils          # decompresses the VM's kernel
	python3           # tests/run-all.sh reads meson's JSON test log (meson needs it anyway)
	fuse-overlayfs    # bench/: the FUSE overlay strata-unionfs is measured against
	unionfs-fuse      # bench/: the other FUSE union strata-unionfs is measured against
	lxcfs             # bench/: the /proc virtualizer strata-procfs is measured against
	crun              # bench/: the OCI runtime strata run is measured against
	bubblewrap        # bench/: bwrap, the lightest namespace sandbox, as a runner baseline
	fio               # bench/: random 4 KiB reads and writes through the unions
	gnuplot-nox       # bench/: the result charts (SVG)
)

if [[ ${STRATA_SKIP_DEPS:-0} == 1 ]]; then
	echo "install-deps: skipped (STRATA_SKIP_DEPS=1)" >&2
	exit 0
fi

SUDO=()
if [[ $(id -u) -ne 0 ]]; then
	if command -v sudo >/dev/null 2>&1; then
		SUDO=(sudo)
	else
		echo "install-deps: must run as root (or with sudo installed)" >&2
		exit 1
	fi
fi

missing=()
for p in "${packages[@]}"; do
	status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
	[[ $status == installed ]] || missing+=("$p")
done

if ((${#missing[@]} == 0)); then
	echo "install-deps: all ${#packages[@]} packages already installed" >&2
else
	echo "install-deps: installing ${missing[*]}" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt_opts=(-o DPkg::Lock::Timeout=300 -o Dpkg::Use-Pty=0)
	ok=0
	for attempt in 1 2 3; do
		if "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" -q update &&
			"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" -q install -y \
				--no-install-recommends "${missing[@]}" </dev/null; then
			ok=1
			break
		fi
		echo "install-deps: apt-get failed (attempt $attempt), retrying" >&2
		sleep $((attempt * 5))
	done
	if ((ok == 0)); then
		echo "install-deps: could not install: ${missing[*]}" >&2
		exit 1
	fi
fi

# The FUSE module is built into most kernels or already loaded; in a
# container modprobe may simply fail.  Best effort either way.
# overlay is only needed by the differential test against kernel overlayfs.
for mod in fuse overlay; do
	if ! grep -qw "$mod" /proc/filesystems 2>/dev/null; then
		"${SUDO[@]}" modprobe "$mod" 2>/dev/null || true
	fi
done
if [[ ! -e /dev/fuse ]]; then
	echo "install-deps: warning: /dev/fuse does not exist; FUSE mounts will fail" >&2
fi
exit 0

#!/usr/bin/env bash
# Prepares this machine (Debian 12, root, no systemd) for drover's tests and demo:
# Debian packages, a running dockerd and zfs-fuse daemon, and the npm dependencies.
# Idempotent; takes about a second when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(nftables docker.io zfs-fuse openssh-server openssh-client mmdebstrap gpg mount busybox-static iproute2 openssl ca-certificates haproxy wrk redis-tools curl tar cgroupfs-mount gcc libc6-dev libssl-dev make etcd-server etcd-client prometheus chromium clang libclang-rt-14-dev criu postgresql tmux)
LOG_DIR=/var/log/drover
export PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH"

say() { printf 'host-setup: %s\n' "$*"; }
die() { printf 'host-setup: FAILED: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root (it installs packages and starts daemons)"

# Polls "$@" for up to $1 seconds; true when it succeeded.
wait_for() {
  local seconds=$1; shift
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.5
  done
}

# 1. Debian packages: apt only when something is missing.
installed=" $(dpkg-query -W -f='${db:Status-Abbrev}${Package} ' "${PACKAGES[@]}" 2>/dev/null | sed 's/ii  */=/g' || true) "
missing=()
for pkg in "${PACKAGES[@]}"; do
  [[ "$installed" == *"=$pkg "* ]] || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

node_version=$(node --version 2>/dev/null) || die "node (>= 20.15) is not installed"
IFS=. read -r node_major node_minor _ <<<"${node_version#v}"
[ "$node_major" -gt 20 ] || { [ "$node_major" -eq 20 ] && [ "$node_minor" -ge 15 ]; } \
  || die "node $node_version is too old; drover needs >= 20.15 (zlib.crc32)"

mkdir -p "$LOG_DIR" /var/cache/drover/images /run/docker/plugins

# 2. cgroups, which dockerd needs (Debian's cgroupfs-mount does it when there is no systemd).
if [ -z "$(ls -A /sys/fs/cgroup 2>/dev/null)" ]; then
  say "mounting cgroups"
  cgroupfs-mount
fi

# 3. The host dockerd (it also builds the local images).
if ! docker_version=$(docker info --format '{{.ServerVersion}}' 2>/dev/null); then
  say "starting dockerd (log: $LOG_DIR/dockerd.log)"
  setsid dockerd >>"$LOG_DIR/dockerd.log" 2>&1 </dev/null &
  wait_for 60 docker info || die "dockerd does not answer (docker info); see $LOG_DIR/dockerd.log"
  docker_version=$(docker info --format '{{.ServerVersion}}')
fi

# 4. The zfs-fuse daemon (Debian's init script runs: zfs-fuse --pidfile /var/run/zfs-fuse.pid).
# A zfs-fuse that stopped answering (seen after hours of pool churn: every umount it is asked
# for hangs) is restarted: its FUSE mounts are lazily detached and the daemon started again,
# which re-imports the pools from its cache.
zpool_rc=0
timeout 20 zpool list >/dev/null 2>&1 || zpool_rc=$?
if [ "$zpool_rc" -eq 124 ]; then
  say "zfs-fuse does not answer: restarting it"
  pkill -9 -x zfs-fuse 2>/dev/null || true
  pkill -9 -f '^(zpool|zfs) ' 2>/dev/null || true
  sleep 1
  awk '$3 == "fuse" && $2 != "/sys/fs/fuse/connections" { print $2 }' /proc/mounts | while read -r m; do
    umount -l "$m" 2>/dev/null || true
  done
fi
if ! timeout 20 zpool list >/dev/null 2>&1; then
  [ -e /dev/fuse ] || modprobe fuse 2>/dev/null || true
  [ -e /dev/fuse ] || die "/dev/fuse is missing: zfs-fuse cannot run here"
  say "starting zfs-fuse (log: $LOG_DIR/zfs-fuse.log)"
  rm -f /var/run/zfs-fuse.pid
  setsid zfs-fuse --no-daemon --pidfile /var/run/zfs-fuse.pid >>"$LOG_DIR/zfs-fuse.log" 2>&1 </dev/null &
  wait_for 30 zpool list || die "zfs-fuse does not answer (zpool list); see $LOG_DIR/zfs-fuse.log"
fi

# 5. The rest of what the harness runs.
for tool in /usr/sbin/sshd /usr/bin/ssh-keygen /usr/bin/mmdebstrap /bin/busybox /usr/bin/openssl; do
  [ -x "$tool" ] || die "$tool is missing"
done

# 6. npm dependencies, when absent or older than the lockfile.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing npm dependencies (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
fi

# 7. The tls transport's native data pump (native/README.md); make rebuilds it only when
#    its source changed.
make -s -C native >/dev/null || die "building native/drover-pump failed (make -C native)"

# 8. Each program as one plain-JavaScript file (scripts/bundle.mjs, docs/DESIGN.md §42): through
#    tsx a start costs ~1.5–3 s of CPU, bundled a third of it; sshd starts drover-receive for
#    every transfer connection.
node scripts/bundle.mjs >/dev/null || die "bundling drover's programs failed (node scripts/bundle.mjs)"

say "ok (dockerd $docker_version, zfs-fuse, sshd, node $node_version, native pump, program bundles)"

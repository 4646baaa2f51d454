#!/usr/bin/env bash
# Prepares this machine (Debian 12, root, no systemd) for drover's tests and demo:
# Debian packages, a running dockerd and zfs-fuse daemon, and the npm dependencies.
# Idempotent; takes about a second when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(docker.io zfs-fuse openssh-server openssh-client mmdebstrap busybox-static iproute2 openssl haproxy wrk redis-tools curl tar cgroupfs-mount)
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
missing=()
for pkg in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  [ "$status" = "install ok installed" ] || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

command -v node >/dev/null || die "node (>= 20.10) is not installed"
node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=10)?0:1)' \
  || die "node $(node --version) is too old; drover needs >= 20.10"

mkdir -p "$LOG_DIR" /var/cache/drover/images /run/docker/plugins

# 2. cgroups, which dockerd needs (Debian's cgroupfs-mount does it when there is no systemd).
if [ -z "$(ls -A /sys/fs/cgroup 2>/dev/null)" ]; then
  say "mounting cgroups"
  cgroupfs-mount
fi

# 3. The host dockerd (it also builds the local images).
if ! docker info >/dev/null 2>&1; then
  say "starting dockerd (log: $LOG_DIR/dockerd.log)"
  setsid dockerd >>"$LOG_DIR/dockerd.log" 2>&1 </dev/null &
  wait_for 60 docker info || die "dockerd does not answer; see $LOG_DIR/dockerd.log"
fi

# 4. The zfs-fuse daemon (Debian's init script runs: zfs-fuse --pidfile /var/run/zfs-fuse.pid).
if ! zpool list >/dev/null 2>&1; then
  [ -e /dev/fuse ] || modprobe fuse 2>/dev/null || true
  [ -e /dev/fuse ] || die "/dev/fuse is missing: zfs-fuse cannot run here"
  say "starting zfs-fuse (log: $LOG_DIR/zfs-fuse.log)"
  rm -f /var/run/zfs-fuse.pid
  setsid zfs-fuse --no-daemon --pidfile /var/run/zfs-fuse.pid >>"$LOG_DIR/zfs-fuse.log" 2>&1 </dev/null &
  wait_for 30 zpool list || die "zfs-fuse does not answer (zpool list); see $LOG_DIR/zfs-fuse.log"
fi

# 5. Verify with real calls, loudly.
docker info --format '{{.ServerVersion}}' >/dev/null 2>&1 || die "docker info fails"
zpool list >/dev/null || die "zpool list fails"
[ -x /usr/sbin/sshd ] || die "/usr/sbin/sshd is missing"
command -v mmdebstrap >/dev/null || die "mmdebstrap is missing"
[ -x /bin/busybox ] || die "/bin/busybox is missing"

# 6. npm dependencies, when absent or older than the lockfile.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing npm dependencies (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
fi

say "ok (dockerd $(docker info --format '{{.ServerVersion}}'), zfs-fuse, sshd, node $(node --version))"

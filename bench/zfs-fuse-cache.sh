#!/usr/bin/env bash
# Does zfs-fuse keep a received replica's blocks for the moved application's first read?
# (bench/RESULTS.md "Move under load", 2026-12-07 session 7; docs/DESIGN.md §36)
#
#   unshare -m --propagation private bash bench/zfs-fuse-cache.sh ARC_MIB [SIZE_MIB]
#
# Runs a second zfs-fuse with an ARC of ARC_MIB (--max-arc-size, over Debian's zfsrc and
# its 100 MiB) inside the private mount namespace it must be started in: its own socket,
# lock, pool cache and kstats under tmpfs, two pools on files of its own. It never sees the
# machine's daemon or pools, and it stops that daemon (its own child) on exit. Steps:
# SIZE_MIB of random bytes written on one pool, sent whole into the other (a move's
# replica), which is then mounted and read: once cold, then after a remount (the kernel's
# page cache of that mount gone, the ARC as the first read left it), then with 4 readers.
# Prints each read's time and the ARC's data hits/misses around it (/zfs-kstat).
set -euo pipefail
ARC=${1:?usage: unshare -m --propagation private bash $0 ARC_MIB [SIZE_MIB]}
SIZE=${2:-256}
[[ "$ARC" =~ ^[0-9]+$ && "$SIZE" =~ ^[0-9]+$ ]] || { echo "ARC_MIB and SIZE_MIB are numbers of MiB" >&2; exit 2; }
[ "$(readlink /proc/self/ns/mnt)" != "$(readlink /proc/1/ns/mnt)" ] || { echo "run it under unshare -m --propagation private" >&2; exit 2; }
W=$(mktemp -d /tmp/zfs-fuse-cache.XXXXXX)
zfsrc=$(cat /etc/zfs/zfsrc 2>/dev/null || true)
mount --make-rprivate /
for d in /run/zfs /run/lock/zfs /var/lib/zfs /etc/zfs /zfs-kstat; do mkdir -p "$d"; mount -t tmpfs none "$d"; done
printf '%s\n' "$zfsrc" >/etc/zfs/zfsrc   # Debian's file as shipped (max-arc-size = 100): -m wins over it
truncate -s $((SIZE * 3 + 512))M "$W/src.img" "$W/dst.img"
zfs-fuse --no-daemon -m "$ARC" >"$W/daemon.log" 2>&1 &
DPID=$!
cleanup() { zfs umount -a 2>/dev/null || true; zpool export zfcsrc 2>/dev/null || true; zpool export zfcdst 2>/dev/null || true; kill "$DPID" 2>/dev/null || true; wait "$DPID" 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT
for _ in $(seq 60); do zpool list >/dev/null 2>&1 && break; sleep 0.5; done
K=/zfs-kstat/zfs/arcstats
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
st() { echo "    ARC $(( $(cat $K/size) >> 20 )) MiB; data hits $(cat $K/demand_data_hits), misses $(cat $K/demand_data_misses); ghost hits $(( $(cat $K/mru_ghost_hits) + $(cat $K/mfu_ghost_hits) ))"; }
zpool create -m "$W/src" zfcsrc "$W/src.img" 2>/dev/null
zpool create -m "$W/dst" zfcdst "$W/dst.img" 2>/dev/null
zfs create zfcsrc/d
echo "zfs-fuse ARC limit $(( $(cat $K/c_max 2>/dev/null || echo 0) >> 20 )) MiB, $SIZE MiB"
dd if=/dev/urandom of="$W/src/d/data" bs=1M count="$SIZE" status=none; sync
zfs snapshot zfcsrc/d@s1
t=$(date +%s%N); zfs send zfcsrc/d@s1 | zfs receive -u zfcdst/d; echo "  receive: $(ms "$t") ms"; st
zfs mount zfcdst/d
t=$(date +%s%N); cat "$W/dst/d/data" >/dev/null; echo "  read, cold: $(ms "$t") ms"; st
zfs umount zfcdst/d; zfs mount zfcdst/d
t=$(date +%s%N); cat "$W/dst/d/data" >/dev/null; echo "  read after a remount: $(ms "$t") ms"; st
zfs umount zfcdst/d; zfs mount zfcdst/d
t=$(date +%s%N)
readers=()
for k in 0 1 2 3; do dd if="$W/dst/d/data" of=/dev/null bs=1M skip=$((k * SIZE / 4)) count=$((SIZE / 4)) status=none & readers+=($!); done
wait "${readers[@]}"
echo "  read after a remount, 4 readers: $(ms "$t") ms"; st

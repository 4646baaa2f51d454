#!/usr/bin/env bash
# drover's main job on one machine: prepares it (scripts/host-setup.sh, scripts/images.sh),
# brings up the 3-node local cluster "demo" (nodes 127.0.0.11-13, each with its own
# dockerd, zfs-fuse pool and sshd) and prints its nodes. The cluster stays up; take it down
# with: node bin/drover.js cluster down
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/host-setup.sh
scripts/images.sh busybox,redis
node bin/drover.js cluster up --name demo --nodes 3 --images busybox,redis

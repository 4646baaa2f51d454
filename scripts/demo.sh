#!/usr/bin/env bash
# drover's main job on one machine: prepares it (scripts/host-setup.sh, scripts/images.sh),
# brings up a fresh 3-node local cluster "demo" (nodes 127.0.0.11-13, each with its own
# dockerd, zfs-fuse pool and sshd, and drover's control service, agents, proxies and volume
# plugins), deploys examples/redis on node 1, loads data, and moves Redis to node 2 while a
# client writes through node 1's proxy; then prints the cutover pause, failed requests,
# acknowledged writes lost (must be 0) and bytes moved. Exits non-zero if the move failed or
# a write was lost. The cluster stays up; take it down with: node bin/drover.js cluster down
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n$ drover %s\n' "$*"; node bin/drover.js "$@"; }

scripts/host-setup.sh
scripts/images.sh busybox,redis

# A fresh cluster every run: after an earlier demo, Redis would already be on node 2.
if [ -e /var/lib/drover/clusters/demo ]; then step cluster down; fi
step cluster up --nodes 3 --images busybox,redis
step deploy examples/redis/topology.yml examples/redis/docker-compose.yml
step demo redis n2 --load-mib 32

cat <<'EOT'

The cluster is still up. Look around:
  node bin/drover.js status                    applications, nodes, migrations
  node bin/drover.js cluster status            drover's processes on each node
  redis-cli -h 127.0.0.11 dbsize               Redis through node 1's proxy (any node's address works)
  redis-cli -h 127.0.0.13 get demo:write:1
  node bin/drover.js move redis n1             move it back (incremental: node 1 kept its copy)
  docker -H unix:///run/drover/demo/n2/docker.sock ps       "docker on node 2"
  less /var/lib/drover/clusters/demo/services/n1-agent.log  what node 1's agent did
Take it all down with: node bin/drover.js cluster down
EOT

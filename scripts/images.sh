#!/usr/bin/env bash
# Builds the local images offline, once: drover/busybox (busybox-static) and drover/redis
# (a Debian rootfs from mmdebstrap using this machine's apt sources; a few minutes the first
# time) and drover/postgres (the same, with postgresql: `scripts/images.sh postgres`). Cached as docker-save archives in /var/cache/drover/images; rebuilt only when missing.
# Usage: scripts/images.sh [busybox,redis]
set -euo pipefail
cd "$(dirname "$0")/.."
exec node bin/drover.js cluster images --images "${1:-busybox,redis}"

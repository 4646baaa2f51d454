#!/usr/bin/env bash
# The test command: prepares the machine (scripts/host-setup.sh, scripts/images.sh), checks
# types, then runs the vitest tiers unit, integration and e2e (or the ones named), and ends
# with one line "N passed, N failed". Exits non-zero when anything failed.
# Usage: scripts/test.sh [unit|integration|e2e ...]
set -euo pipefail
cd "$(dirname "$0")/.."

tiers=("$@")
[ "${#tiers[@]}" -gt 0 ] || tiers=(unit integration e2e)
for tier in "${tiers[@]}"; do
  case "$tier" in unit|integration|e2e) ;; *) echo "test.sh: unknown tier '$tier' (unit, integration, e2e)" >&2; exit 2 ;; esac
done

scripts/host-setup.sh
scripts/images.sh busybox,redis

reports=$(mktemp -d)
trap 'rm -rf "$reports"' EXIT
failed_steps=()

# Test and benchmark clusters (t<s>, m<s>) a dead run left behind are removed first, so one
# crashed run cannot fail the next: their subnet lease is unlocked and its pid is gone.
names=$( (ls /var/lib/drover/clusters 2>/dev/null; zpool list -H -o name 2>/dev/null | sed -n 's/^drover-\(.*\)-n1$/\1/p') | sort -u)
for name in $names; do
  [[ "$name" =~ ^[tm]([0-9]+)$ ]] || continue
  lease="/run/drover/test-leases/${BASH_REMATCH[1]}"
  owner=$(cat "$lease" 2>/dev/null || true)
  if [ -n "$owner" ] && kill -0 "$owner" 2>/dev/null; then continue; fi
  if [ -e "$lease" ] && ! flock -n "$lease" true; then continue; fi
  echo "== removing the stale cluster $name"
  timeout 300 node bin/drover.js cluster down --name "$name" || true
done
# A plugin socket nobody answers on stalls every dockerd volume call for 15 s.
for sock in /run/docker/plugins/drover-*.sock; do
  [ -S "$sock" ] || continue
  if ! curl -s -o /dev/null -m 2 --unix-socket "$sock" -X POST http://plugin/Plugin.Activate; then
    echo "== removing the dead plugin socket $sock"
    rm -f "$sock"
  fi
done
if [ "${CI:-}" = true ]; then
  for pool in $(zpool list -H -o name 2>/dev/null | grep -E '^drover-zt-' || true); do
    # Datasets first: zpool destroy -f over mounted zfs-fuse datasets leaves unmounts hanging.
    timeout 60 zfs destroy -r "$pool/drover" 2>/dev/null || true
    timeout 60 zpool destroy "$pool" || true
  done
fi

echo "== typecheck"
npx tsc --noEmit -p . || failed_steps+=(typecheck)

for tier in "${tiers[@]}"; do
  echo "== $tier"
  npx vitest run --project "$tier" --passWithNoTests \
    --reporter=default --reporter=json --outputFile.json="$reports/$tier.json" \
    || failed_steps+=("$tier")
done

# What the tests left behind: test-cluster pools and plugin sockets nobody answers on (a dead
# one stalls dockerd 15 s per call). Other people's test runs may share a dev machine, so
# this fails the run only under CI.
leftovers=$(
  zpool list -H -o name 2>/dev/null | grep -E '^drover-t[0-9]+-n[1-9]$' | sed 's/^/pool /' || true
  # Isolated test clusters (docs/DESIGN.md §20): their namespaces, the root end of their bridge, their plugin sockets.
  ip netns list 2>/dev/null | awk '{print $1}' | grep -E '^drover-t[0-9]+-(n[1-9]|hub)$' | sed 's/^/netns /' || true
  ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | sed 's/@.*//' | grep -E '^dvb-t[0-9]+$' | sed 's/^/link /' || true
  for sock in /run/docker/plugins/*.sock /run/docker/plugins/*/*.sock /run/drover/t*/n*/plugins/*.sock; do
    [ -e "$sock" ] || continue
    curl -s -o /dev/null -m 2 --unix-socket "$sock" -X POST http://plugin/Plugin.Activate || echo "dead plugin socket $sock"
  done
)
if [ -n "$leftovers" ]; then
  echo "== left behind by the tests:"
  echo "$leftovers"
  [ "${CI:-}" != true ] || failed_steps+=(leftovers)
fi

# One summary line over the tiers' JSON reports (a tier that crashed has none: it counts as a failure).
summary=$(REPORTS="$reports" node -e '
  const fs = require("node:fs");
  let passed = 0, failed = 0, skipped = 0;
  for (const tier of process.argv.slice(1)) {
    const file = `${process.env.REPORTS}/${tier}.json`;
    if (!fs.existsSync(file)) { failed += 1; continue; }
    const r = JSON.parse(fs.readFileSync(file, "utf8"));
    passed += r.numPassedTests; failed += r.numFailedTests; skipped += r.numPendingTests + r.numTodoTests;
    // A file that failed to load has no tests but fails the run.
    failed += r.testResults.filter((f) => f.status === "failed" && f.assertionResults.length === 0).length;
  }
  if (skipped) console.log(`(${skipped} skipped)`);
  console.log(`${passed} passed, ${failed} failed`);
' "${tiers[@]}")
echo
if [ "${#failed_steps[@]}" -gt 0 ]; then
  echo "failed: ${failed_steps[*]}"
  echo "$summary"
  exit 1
fi
echo "$summary"

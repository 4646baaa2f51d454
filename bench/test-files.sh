#!/usr/bin/env bash
# Wall time of a run of test files, this tree against another checkout, interleaved
# (bench/RESULTS.md "Test tiers"; docs/DESIGN.md §14).
#
#   bash bench/test-files.sh BASE_DIR ROUNDS PROJECT FILE...
#
# BASE_DIR is a checkout of the baseline with node_modules, native/ built and bundles made.
# Each round runs `npx vitest run --project PROJECT FILE...` once in the baseline and once
# here, alternating which goes first, and prints each run's seconds (the whole command: the
# tier's global set-up and teardown included, so a cluster still going down is counted) and
# whether it passed; then the means and their ratio (this tree / baseline).
set -euo pipefail
BASE=${1:?usage: bash $0 BASE_DIR ROUNDS PROJECT FILE...}
ROUNDS=${2:?rounds}
PROJECT=${3:?project}
shift 3
[ "$#" -gt 0 ] || { echo "name at least one test file" >&2; exit 2; }
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || { echo "ROUNDS is a positive number" >&2; exit 2; }
HERE=$(cd "$(dirname "$0")/.." && pwd)
BASE=$(cd "$BASE" && pwd)
declare -A total=([base]=0 [this]=0)
run() {
  local label=$1 dir=$2 start end code=0
  shift 2
  start=$(date +%s.%N)
  (cd "$dir" && npx vitest run --project "$PROJECT" "$@" >"/tmp/test-files-$label-$round.log" 2>&1) || code=$?
  end=$(date +%s.%N)
  local secs
  secs=$(echo "$end - $start" | bc)
  total[$label]=$(echo "${total[$label]} + $secs" | bc)
  printf '%s  %-4s %7.1f s  %s  load %s\n' "$(date -u +%H:%M:%S)" "$label" "$secs" "$([ "$code" = 0 ] && echo passed || echo "FAILED (/tmp/test-files-$label-$round.log)")" "$(cut -d' ' -f1 /proc/loadavg)"
}
for round in $(seq "$ROUNDS"); do
  if [ $((round % 2)) = 1 ]; then run base "$BASE" "$@"; run this "$HERE" "$@"; else run this "$HERE" "$@"; run base "$BASE" "$@"; fi
done
printf 'mean: base %.1f s, this %.1f s, ratio %.3f\n' "$(echo "${total[base]} / $ROUNDS" | bc -l)" "$(echo "${total[this]} / $ROUNDS" | bc -l)" "$(echo "${total[this]} / ${total[base]}" | bc -l)"

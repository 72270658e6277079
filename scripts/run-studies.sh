#!/usr/bin/env bash
# Runs the paper's studies one after another (`make studies`) with the release build, each into
# the workspace ($SPIO_WORKSPACE or ./spio-runs) and its report into reports/<study>/, and
# records each study's wall time in reports/timings.csv (only when all of them run). Studies that share a model reuse it:
# the first one to need it pays for its training.
# Usage: scripts/run-studies.sh [STUDY...]   (default: all, in the order below)
set -euo pipefail
cd "$(dirname "$0")/.."
studies=("$@")
timings=reports/timings.csv
[ ${#studies[@]} -gt 0 ] && timings=$(mktemp) || studies=(ablation-unet exp1-simulated exp1-colin27 exp2-breast exp3-air noise-sweep phantom-table interpretability)
mkdir -p reports
printf 'study,seconds,finished_utc\r\n' > "$timings.partial"
now() { date +%s.%N; }
seconds() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
total_start=$(now)
for s in "${studies[@]}"; do
  start=$(now)
  echo "== $s"
  .build/release/spio run "experiments/$s.yaml"
  printf '%s,%s,%s\r\n' "$s" "$(seconds "$start" "$(now)")" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >> "$timings.partial"
done
printf 'total,%s,%s\r\n' "$(seconds "$total_start" "$(now)")" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >> "$timings.partial"
mv "$timings.partial" "$timings"
echo "wall times: $timings"
cat "$timings"

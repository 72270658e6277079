#!/usr/bin/env bash
# Runs the paper's studies one after another (`make studies`) with the release build, each into
# the workspace ($SPIO_WORKSPACE or ./spio-runs) and its report into reports/<study>/, and
# records each study's wall time in reports/timings.csv. Studies that share a model reuse it:
# the first one to need it pays for its training.
# Usage: scripts/run-studies.sh [STUDY...]   (default: all, in the order below)
set -euo pipefail
cd "$(dirname "$0")/.."
studies=("$@")
[ ${#studies[@]} -gt 0 ] || studies=(ablation-unet exp1-simulated exp2-breast exp3-air noise-sweep phantom-table interpretability)
timings=reports/timings.csv
mkdir -p reports
printf 'study,seconds,finished_utc\r\n' > "$timings.partial"
total_start=$(date +%s)
for s in "${studies[@]}"; do
  start=$(date +%s)
  echo "== $s"
  .build/release/spio run "experiments/$s.yaml"
  end=$(date +%s)
  printf '%s,%d,%s\r\n' "$s" $((end - start)) "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >> "$timings.partial"
done
printf 'total,%d,%s\r\n' $(( $(date +%s) - total_start )) "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >> "$timings.partial"
mv "$timings.partial" "$timings"
echo "wall times: $timings"
cat "$timings"

#!/usr/bin/env bash
# One-image inference of the `paper` preset (DeepSPIO, 256 x 256, 20.4 M parameters) beside PyTorch
# and Keras, in one run: writes bench/inference.md. ROUNDS rounds (default 5) of separate processes,
# interleaved (ours portable, ours native, PyTorch, Keras), so a slow spell of a shared host hits
# every framework alike. Each process times 21 forward passes of one image in evaluation mode after
# 3 warm-up passes and reports their median (it also takes one training step of batch 1 first, the
# same code path as bench/peers/run.sh; that step's rate is not reported here).
# Usage: bash bench/peers/inference.sh   (ROUNDS=3 bash bench/peers/inference.sh for fewer)
source "$(dirname "$0")/prelude.sh"
out=bench/inference.md
rounds=${ROUNDS:-5}
for round in $(seq 1 "$rounds"); do
  for mode in portable native; do
    echo "round $round/$rounds: DeepSPIO-Lab ($mode)" >&2
    "$SPIO" bench train --preset paper --batch 1 --steps 1 --repeats 1 --kernel "$mode" --json 2>/dev/null \
      | python3 -c "import json,sys; r=json.load(sys.stdin); r['mode']='$mode'; print(json.dumps(r))" >> "$tmp"
  done
  for fw in torch keras; do
    echo "round $round/$rounds: $fw" >&2
    python3 bench/peers/bench_peer.py --framework "$fw" --preset paper --batch 1 --steps 1 --repeats 1 --json \
      2>/dev/null | tail -1 >> "$tmp"
  done
done
python3 - "$tmp" "$out" "$rounds" <<'PY'
import sys, statistics
sys.path.insert(0, "bench/peers")
from benchtable import describe, framework_name as name, load_rows
rows, rounds = load_rows(sys.argv[1]), int(sys.argv[3])
groups = {}
for r in rows:
    groups.setdefault(name(r), []).append(r)
ms = lambda rs: statistics.median(r["inferenceMilliseconds"] for r in rs)
lines = ["## One-image inference: DeepSPIO `paper` preset (256 x 256), 2 threads", "",
         f"{describe()} Each figure is the median over {rounds} processes run interleaved with the other frameworks' (each "
         "process: the median of 21 timed forward passes of one image in evaluation mode after 3 warm-up passes). "
         "Written by bench/peers/inference.sh.", "",
         "| framework | parameters | inference ms (median) | per process | ms / fastest peer's | peak RSS MiB |",
         "|---|---|---|---|---|---|"]
peers = [k for k in groups if not k.startswith("DeepSPIO")]
fastest = min(ms(groups[k]) for k in peers) if peers else float("nan")
for k in sorted(groups, key=lambda k: (not k.startswith("DeepSPIO"), k)):
    rs = groups[k]
    per = ", ".join(f"{r['inferenceMilliseconds']:.1f}" for r in rs)
    peak = statistics.median(r["peakResidentMiB"] for r in rs)
    lines.append(f"| {k} | {rs[0]['parameters']:,} | {ms(rs):.1f} | {per} | {ms(rs) / fastest:.2f} | {peak:.0f} |")
open(sys.argv[2], "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY

#!/usr/bin/env bash
# Training throughput of DeepSPIO-Lab beside PyTorch and Keras, in one run: writes bench/train.md.
# Every figure is the median over ROUNDS separate processes (default 3), run interleaved (ours in
# portable mode, ours in native mode, PyTorch, Keras, then the next round), so a slow spell of a
# shared host hits every framework alike. Each process reports the median of its own timed runs.
# Usage: bash bench/peers/run.sh   (ROUNDS=5 bash bench/peers/run.sh for more processes)
source "$(dirname "$0")/prelude.sh"
out=bench/train.md
rounds=${ROUNDS:-3}
for round in $(seq 1 "$rounds"); do
  for arch in deepspio unet; do
    for mode in portable native; do
      echo "round $round/$rounds: $arch, DeepSPIO-Lab ($mode)" >&2
      "$SPIO" bench train --preset small --set "model.architecture=$arch" --kernel "$mode" --json 2>/dev/null \
        | python3 -c "import json,sys; r=json.load(sys.stdin); r['mode']='$mode'; print(json.dumps(r))" >> "$tmp"
    done
    for fw in torch keras; do
      echo "round $round/$rounds: $arch, $fw" >&2
      python3 bench/peers/bench_peer.py --framework "$fw" --arch "$arch" --preset small --json 2>/dev/null | tail -1 >> "$tmp"
    done
  done
done
python3 - "$tmp" "$out" "$rounds" <<'PY'
import sys, statistics
sys.path.insert(0, "bench/peers")
from benchtable import describe, framework_name as name, load_rows
rows, rounds = load_rows(sys.argv[1]), int(sys.argv[3])
def key(r):
    return (r["architecture"], name(r))
groups = {}
for r in rows:
    groups.setdefault(key(r), []).append(r)
med = lambda rs, f: statistics.median(r[f] for r in rs)
lines = ["## spio bench train: `small`, batch 32, 2 threads, random data", "",
         f"{describe()} Each figure is the median over {rounds} processes run "
         "interleaved with the other frameworks' (each process: the median of 5 timed runs of 5 steps after 2 "
         "warm-up steps); the per-process training rates are listed beside it. `portable` and `native` are "
         "spio's OpenBLAS kernel modes (docs/kernels.md); on a CPU without AVX-512 both load the AVX2 kernels.", "",
         "| architecture | framework | parameters | training samples/s | per process | ours (portable) / this | inference ms (1 image) | peak RSS MiB |",
         "|---|---|---|---|---|---|---|---|"]
for arch in ("deepspio", "unet"):
    keys = [k for k in groups if k[0] == arch]
    ours = next(groups[k] for k in keys if k[1].startswith("DeepSPIO-Lab, portable"))
    base = med(ours, "trainSamplesPerSecond")
    for k in sorted(keys, key=lambda k: (not k[1].startswith("DeepSPIO"), k[1])):
        rs = groups[k]
        rate = med(rs, "trainSamplesPerSecond")
        per = ", ".join(f"{r['trainSamplesPerSecond']:.1f}" for r in rs)
        lines.append(f"| {arch} | {k[1]} | {rs[0]['parameters']:,} | {rate:.1f} | {per} | {base / rate:.2f} | "
                     f"{med(rs, 'inferenceMilliseconds'):.2f} | {med(rs, 'peakResidentMiB'):.0f} |")
lines += ["", "The sgemm ceiling: a training step can be no faster than its convolutions' im2col FLOPs at the sgemm "
          "rate measured in the same process (Winograd layers do fewer multiplications, so ours can pass it; "
          "BatchNorm, activations, loss and Adam come on top).", ""]
for arch in ("deepspio", "unet"):
    ours = next(v for k, v in groups.items() if k[0] == arch and k[1].startswith("DeepSPIO-Lab, portable"))
    gflop = ours[0]["convolutionGFLOPPerSample"]
    ceiling = med(ours, "sgemmGFLOPS") / gflop
    fastest = max(med(v, "trainSamplesPerSecond") for k, v in groups.items() if k[0] == arch)
    lines.append(f"- {arch}: {gflop:.3f} GFLOP per sample at {med(ours, 'sgemmGFLOPS'):.1f} GFLOP/s: {ceiling:.1f} samples/s. "
                 f"Ours (portable) runs at {100 * med(ours, 'trainSamplesPerSecond') / ceiling:.0f} % of it; the fastest "
                 f"framework at {100 * fastest / ceiling:.0f} %.")
open(sys.argv[2], "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY

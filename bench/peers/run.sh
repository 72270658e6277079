#!/usr/bin/env bash
# Training throughput of DeepSPIO-Lab beside PyTorch and Keras, in one run: writes bench/train.md.
# Workloads: `small` (64 x 64, the engine's reference size), and the studies' own: `tiny` DeepSPIO
# and U-Net at 128 x 128 (configs/deepspio-cpu.yaml) and the scaling study's wider DeepSPIO
# (baseFilters 8, bottleneckFilters 128: about 4 times tiny's FLOPs). Batch 32, 2 threads.
# Every figure is the median over ROUNDS separate processes (default 3), run interleaved (ours in
# portable mode, ours in native mode, PyTorch, Keras, then the next workload and round), so a slow
# spell of a shared host hits every framework alike. Each process reports the median of its own
# timed runs. Run it on a quiet machine: PyTorch's OpenMP threads collapse beside other work.
# Usage: bash bench/peers/run.sh   (ROUNDS=5 for more processes; WORKLOADS="tiny128" for a subset)
source "$(dirname "$0")/prelude.sh"
out=bench/train.md
rounds=${ROUNDS:-3}
# name | preset | architecture | model overrides (KEY=VALUE, space separated)
all_workloads=(
  "small|small|deepspio|"
  "small|small|unet|"
  "tiny128|tiny|deepspio|inputSize=128"
  "tiny128|tiny|unet|inputSize=128"
  "wide128|tiny|deepspio|inputSize=128 baseFilters=8 bottleneckFilters=128"
)
selected=${WORKLOADS:-small tiny128 wide128}
for round in $(seq 1 "$rounds"); do
  for entry in "${all_workloads[@]}"; do
    IFS='|' read -r name preset arch sets <<<"$entry"
    [[ " $selected " == *" $name "* ]] || continue
    ours=() peer=()
    for kv in $sets; do ours+=(--set "model.$kv"); peer+=(--set "$kv"); done
    tag="r['workload']='$name'"
    for mode in portable native; do
      echo "round $round/$rounds: $name $arch, DeepSPIO-Lab ($mode)" >&2
      "$SPIO" bench train --preset "$preset" --set "model.architecture=$arch" "${ours[@]}" --kernel "$mode" --json 2>/dev/null \
        | python3 -c "import json,sys; r=json.load(sys.stdin); r['mode']='$mode'; $tag; print(json.dumps(r))" >> "$tmp"
    done
    for fw in torch keras; do
      echo "round $round/$rounds: $name $arch, $fw" >&2
      python3 bench/peers/bench_peer.py --framework "$fw" --arch "$arch" --preset "$preset" "${peer[@]}" --json 2>/dev/null | tail -1 \
        | python3 -c "import json,sys; r=json.load(sys.stdin); $tag; print(json.dumps(r))" >> "$tmp"
    done
  done
done
python3 - "$tmp" "$out" "$rounds" <<'PY'
import sys, statistics
sys.path.insert(0, "bench/peers")
from benchtable import describe, framework_name as name, load_rows
rows, rounds = load_rows(sys.argv[1]), int(sys.argv[3])
titles = {"small": "`small` (64 x 64)", "tiny128": "`tiny` at 128 x 128 (the studies' model)",
          "wide128": "`tiny` at 128 x 128, widths doubled (baseFilters 8, bottleneckFilters 128; the scaling study's wider series)"}
groups = {}
for r in rows:
    groups.setdefault((r["workload"], r["architecture"], name(r)), []).append(r)
med = lambda rs, f: statistics.median(r[f] for r in rs)
lines = ["## spio bench train: batch 32, 2 threads, random data", "",
         f"{describe()} Each figure is the median over {rounds} processes run "
         "interleaved with the other frameworks' (each process: the median of 5 timed runs of 5 steps after 2 "
         "warm-up steps); the per-process training rates are listed beside it. `portable` and `native` are "
         "spio's OpenBLAS kernel modes (docs/kernels.md); on a CPU without AVX-512 both load the AVX2 kernels. "
         "Nothing else ran on the cores. Written by bench/peers/run.sh.", ""]
ceilings = []
for workload in [w for w in titles if any(k[0] == w for k in groups)]:
    lines += [f"### {titles[workload]}", "",
              "| architecture | framework | parameters | training samples/s | per process | ours (portable) / this | inference ms (1 image) | peak RSS MiB |",
              "|---|---|---|---|---|---|---|---|"]
    for arch in ("deepspio", "unet"):
        keys = [k for k in groups if k[:2] == (workload, arch)]
        if not keys:
            continue
        ours = next(groups[k] for k in keys if k[2].startswith("DeepSPIO-Lab, portable"))
        base = med(ours, "trainSamplesPerSecond")
        for k in sorted(keys, key=lambda k: (not k[2].startswith("DeepSPIO"), k[2])):
            rs = groups[k]
            rate = med(rs, "trainSamplesPerSecond")
            per = ", ".join(f"{r['trainSamplesPerSecond']:.1f}" for r in rs)
            lines.append(f"| {arch} | {k[2]} | {rs[0]['parameters']:,} | {rate:.1f} | {per} | {base / rate:.2f} | "
                         f"{med(rs, 'inferenceMilliseconds'):.2f} | {med(rs, 'peakResidentMiB'):.0f} |")
        gflop = ours[0]["convolutionGFLOPPerSample"]
        ceiling = med(ours, "sgemmGFLOPS") / gflop
        fastest = max(med(groups[k], "trainSamplesPerSecond") for k in keys)
        ceilings.append(f"- {workload} {arch}: {gflop:.3f} GFLOP per sample at {med(ours, 'sgemmGFLOPS'):.1f} GFLOP/s: "
                        f"{ceiling:.1f} samples/s. Ours (portable) runs at {100 * base / ceiling:.0f} % of it; the fastest "
                        f"framework at {100 * fastest / ceiling:.0f} %.")
    lines.append("")
lines += ["The sgemm ceiling: a training step can be no faster than its convolutions' im2col FLOPs at the sgemm "
          "rate measured in the same process (Winograd layers do fewer multiplications, so ours can pass it; "
          "BatchNorm, activations, loss and Adam come on top).", ""] + ceilings
open(sys.argv[2], "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY

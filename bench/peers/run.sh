#!/usr/bin/env bash
# Training throughput of DeepSPIO-Lab beside PyTorch and Keras, in one run: writes bench/train.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
swift build -c release --product spio >/dev/null
SPIO=.build/release/spio
out=bench/train.md
tmp=$(mktemp)
for arch in deepspio unet; do
  "$SPIO" bench train --preset small --set "model.architecture=$arch" --json 2>/dev/null >> "$tmp"
  for fw in torch keras; do
    python3 bench/peers/bench_peer.py --framework "$fw" --arch "$arch" --preset small --json 2>/dev/null | tail -1 >> "$tmp"
  done
done
python3 - "$tmp" "$out" <<'PY'
import json, sys, platform, os, subprocess
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
# spio chooses its OpenBLAS kernels itself (docs/kernels.md) and reports them in its JSON.
blas = "; ".join(sorted({r["kernel"] for r in rows if "kernel" in r})) or "not reported"
lines = ["## spio bench train: `small`, batch 32, 2 threads, random data", "",
         f"Machine: {cpu}, {os.cpu_count()} cores. DeepSPIO-Lab kernels: {blas}. Medians of 5 timed runs of 5 steps after 2 warm-up steps.", "",
         "| architecture | framework | parameters | training samples/s | ours / this | inference ms (1 image) | peak RSS MiB |",
         "|---|---|---|---|---|---|---|"]
for arch in ("deepspio", "unet"):
    group = [r for r in rows if r["architecture"] == arch]
    ours = next(r for r in group if r["framework"].startswith("DeepSPIO-Lab"))
    for r in group:
        ratio = ours["trainSamplesPerSecond"] / r["trainSamplesPerSecond"]
        lines.append(f"| {arch} | {r['framework']} | {r['parameters']:,} | {r['trainSamplesPerSecond']:.1f} | {ratio:.2f} | {r['inferenceMilliseconds']:.2f} | {r['peakResidentMiB']:.0f} |")
lines += ["", "The sgemm ceiling: a training step can be no faster than its convolutions' FLOPs at the sgemm rate measured in the same run "
          "(`spio bench train` lowers every convolution to OpenBLAS sgemm; BatchNorm, activations, loss and Adam come on top).", ""]
for arch in ("deepspio", "unet"):
    group = [r for r in rows if r["architecture"] == arch]
    ours = next(r for r in group if r["framework"].startswith("DeepSPIO-Lab"))
    ceiling = ours["sgemmGFLOPS"] / ours["convolutionGFLOPPerSample"]
    fastest = max(r["trainSamplesPerSecond"] for r in group)
    lines.append(f"- {arch}: {ours['convolutionGFLOPPerSample']:.3f} GFLOP per sample at {ours['sgemmGFLOPS']:.1f} GFLOP/s: at most {ceiling:.1f} samples/s. "
                 f"Ours runs at {100 * ours['trainSamplesPerSecond'] / ceiling:.0f} % of it; the fastest framework's rate is {100 * fastest / ceiling:.0f} % of it.")
open(sys.argv[2], "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
rm -f "$tmp"

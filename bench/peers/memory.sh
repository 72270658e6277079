#!/usr/bin/env bash
# Peak memory of one training process at the paper's size (`paper` preset, 256 x 256, batch 8,
# 2 threads): ours (portable kernels) against PyTorch, with where ours goes (the bench's breakdown
# of the tensors the layers hold, the storage pool's free blocks, scratch, retained im2col).
# Peak RSS does not depend on other work on the machine, unlike the rates (not reported here).
# Usage: bash bench/peers/memory.sh   (writes bench/memory.md)
source "$(dirname "$0")/prelude.sh"
out=bench/memory.md
"$SPIO" bench train --preset paper --batch 8 --steps 2 --repeats 1 --json 2>/dev/null >> "$tmp"
python3 bench/peers/bench_peer.py --framework torch --arch deepspio --preset paper --batch 8 --steps 2 --repeats 1 --json 2>/dev/null | tail -1 >> "$tmp"
python3 - "$tmp" "$out" <<'PY'
import sys
sys.path.insert(0, "bench/peers")
from benchtable import describe, framework_name as name, load_rows
ours, torch = load_rows(sys.argv[1])
lines = ["## Peak memory: `paper` preset training (256 x 256, batch 8, 2 threads)", "",
         f"{describe()} One process each, two training steps after two warm-up steps; peak RSS (the "
         "process's high-water mark, libraries included). Written by bench/peers/memory.sh.", "",
         "| framework | parameters | peak RSS MiB | ours / this |", "|---|---|---|---|",
         f"| DeepSPIO-Lab, {ours['kernel']} | {ours['parameters']:,} | {ours['peakResidentMiB']:.0f} | 1.00 |",
         f"| {torch['framework']} | {torch['parameters']:,} | {torch['peakResidentMiB']:.0f} | "
         f"{ours['peakResidentMiB'] / torch['peakResidentMiB']:.2f} |", "",
         "Where ours goes after the steps (MiB): " + ", ".join(
             f"{k} {v:.0f}" for k, v in sorted(ours["tensorMiBByRole"].items(), key=lambda kv: -kv[1]) if v >= 1)
         + f"; workspace scratch {ours['scratchMiB']:.0f}, of which retained im2col {ours['retainedMiB']:.0f}. "
         "`output` are the activations backward needs; a layer's `inputGrad` is handed back to the storage pool "
         "once the layer before has consumed it (`backwardChain`), so the pool's free blocks, not one gradient per "
         "layer, are what a step keeps between passes."]
open(sys.argv[2], "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY

#!/usr/bin/env bash
# The torch backend's paper-scale figures (bench/gpu.md): training samples/s, peak memory and the
# first losses of the `paper` preset (256 x 256, batch 32, the paper's loss, Adam at 1e-5), on
# real simulated images when DATA names a dataset folder or shards, else on random data.
#
#   bash bench/gpu/run.sh [DATA] [OUT.md]          (DEVICE=cuda|cpu, STEPS=60, BATCH=32, THREADS=0)
#
# On a GPU machine with only Python and PyTorch: simulate the data here first
# (spio simulate experiments/paper-scale.yaml --count 64 --previews 0 --out bench/gpu/data, 50 MB)
# and take bench/gpu/ along.
set -euo pipefail
cd "$(dirname "$0")/../.."
data=${1:-}
out=${2:-bench/gpu/results.md}
export PYTHONPATH="$PWD/python${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
args=(--preset paper --device "${DEVICE:-auto}" --steps "${STEPS:-60}" --batch "${BATCH:-32}" --threads "${THREADS:-0}" --out "$out")
[ -n "$data" ] && args+=(--data "$data")
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.is_available() and torch.cuda.get_device_name(0))"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -m spio_torch.bench "${args[@]}"

#!/usr/bin/env bash
# What the suite's optional tests need, installed as .ci/run does: NumPy and safetensors (our NPY
# and checkpoint files checked by their reference readers), PyTorch's CPU build (the torch
# backend's agreement tests), MLflow's client (the export read back) and a real one-node Slurm on
# localhost (the cluster executor). Without them those tests skip; `make test` says which.
# Usage: scripts/test-deps.sh [VENV]   (with VENV: the PyPI packages go into that virtual
# environment, made if missing, instead of the current python3's site)
set -euo pipefail
cd "$(dirname "$0")/.."
python=python3
if [ $# -gt 0 ]; then
  [ -x "$1/bin/python3" ] || python3 -m venv --system-site-packages "$1"
  python="$1/bin/python3"
fi
"$python" -c "import safetensors, numpy" 2>/dev/null || "$python" -m pip install -q safetensors numpy \
  || echo "warning: could not install safetensors/numpy; their checks will be skipped"
# The CPU wheel, from the machine's wheel folder when it has one, else PyPI's default build.
"$python" -c "import torch" 2>/dev/null || "$python" -m pip install -q "torch==2.13.0+cpu" \
  || "$python" -m pip install -q torch
"$python" -c "import mlflow" 2>/dev/null || "$python" -m pip install -q mlflow-skinny
bash scripts/slurm-local.sh start

"""DeepSPIO-Lab's PyTorch training backend (`training.backend: torch`, docs/gpu.md).

The runner (Sources/SPIOTraining/TorchBackend.swift) starts `python3 -m spio_torch train JOB.json`
(or `torchrun ... -m spio_torch train JOB.json` for several GPUs) on the same dataset folders as
the Swift engine, with the same input scaling, targets, batch order, loss, Adam and checkpoint
format, and reads the JSON lines it prints on standard output.

models     DeepSPIO, its ablations and the U-Net (the engine's parameter names; bench/peers uses it)
data       dataset folders and shards (NPY, memory-mapped), input scaling, db4 targets, batch order
checkpoint the engine's epoch folders: model.safetensors, its optimizer file, state.json
train      the training loop and its event stream
"""

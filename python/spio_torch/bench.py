"""Throughput, peak memory and losses of the torch backend's training step at a given preset, on a
dataset folder (or shards) or on random data: the figures of bench/gpu.md.

python3 -m spio_torch.bench --preset paper --data DIR --steps 60 --device cuda [--batch 32] [--out FILE.md]

The step is the backend's own (python/spio_torch/train.py): the engine's input scaling, db4
targets, the paper's loss and Adam at 1e-5. Times are per step after `--warmup` steps, with the
device synchronised; samples/s is the median over steps."""
import argparse
import json
import platform
import resource
import time

import numpy as np
import torch

from .data import DB4, Dataset, batches
from .models import EncoderDecoderNet, config, normalised_l1, parameter_count
from .train import describe, versions


def main(argv=None):
    a = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    a.add_argument("--preset", default="paper")
    a.add_argument("--data", help="dataset folder or shards (default: random inputs and targets)")
    a.add_argument("--steps", type=int, default=30)
    a.add_argument("--warmup", type=int, default=3)
    a.add_argument("--batch", type=int, default=32)
    a.add_argument("--device", default="auto")
    a.add_argument("--threads", type=int, default=0, help="CPU threads (0: PyTorch's default)")
    a.add_argument("--out", help="append a Markdown row and the losses here")
    args = a.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))
    c = config(args.preset)
    torch.manual_seed(1)
    net = EncoderDecoderNet(c).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=1e-5, eps=1e-8, weight_decay=2e-6)
    size = c["inputSize"]
    db4 = DB4(size, device)
    data = Dataset(args.data) if args.data else None
    order = batches(len(data.keep), args.batch, 1, 1) if data else None
    times, losses = [], []
    for step in range(args.warmup + args.steps):
        if data:
            idx = order[step % len(order)]
            x, m = data.samples(idx)
            x, m = torch.from_numpy(x).to(device), torch.from_numpy(m).to(device)
        else:
            x = torch.rand(args.batch, 2, size, size, device=device)
            m = torch.rand(args.batch, size, size, device=device)
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = normalised_l1(net(x), db4.forward(m))
        loss.backward()
        opt.step()
        value = loss.detach().item()  # synchronises
        if step >= args.warmup:
            times.append(time.perf_counter() - t0)
        losses.append(value)
    rate = sorted(x.shape[0] / t for t in times)[len(times) // 2]
    memory = (torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda"
              else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    row = dict(preset=args.preset, device=describe(device, 1), batch=args.batch, steps=args.steps,
               samplesPerSecond=rate, memoryMiB=memory, memoryKind="peak allocated (CUDA)" if device.type == "cuda"
               else "peak RSS", parameters=parameter_count(net), data=args.data or "random",
               host=platform.node(), versions=versions(), losses=losses)
    print(json.dumps(row))
    if args.out:
        with open(args.out, "a") as f:
            f.write(f"| {row['device']} | {args.preset} | {args.batch} | {rate:.1f} | {memory:.0f} ({row['memoryKind']}) "
                    f"| {row['data']} | {', '.join('%.3f' % v for v in losses[:10])} ... |\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

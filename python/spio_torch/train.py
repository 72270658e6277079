"""The torch backend's training loop: Sources/SPIOTraining/Trainer.swift step for step (same batches,
loss, learning-rate schedule, Adam with coupled L2, validation NMAE, epoch checkpoints and resume),
reporting to the runner as JSON lines on standard output:

  {"event": "log", "text": ...}
  {"event": "progress", "epoch", "epochs", "batch", "batches", "step", "loss", "samplesPerSecond"}
  {"event": "epoch", "history": [EpochRecord, ...]}     after each checkpoint (and once after a resume)
  {"event": "done", "model", "parameters", "device", "versions"}
  {"event": "interrupted" | "nonFinite", "epoch", "step", "what", "lastGoodCheckpoint"}

Exit status 0 done, 3 interrupted (SIGINT or SIGTERM, between batches), 4 not finite.
Several processes (torchrun, DDP): each takes its share of every batch, rank 0 validates, writes
and reports; BatchNorm statistics are synchronised across GPUs (SyncBatchNorm)."""
import json
import math
import os
import platform
import signal
import sys
import threading
import time
from queue import Queue

import numpy as np
import torch

from . import checkpoint
from .data import DB4, Dataset, Subset, batches, split
from .models import EncoderDecoderNet, normalised_l1, parameter_count

stop_requested = False


def _request_stop(signum, frame):
    global stop_requested
    stop_requested = True


class Stream:
    def __init__(self, active):
        self.active = active

    def __call__(self, event, **fields):
        if self.active:
            sys.stdout.write(checkpoint.dumps(dict(event=event, **fields)) + "\n")
            sys.stdout.flush()


def resolve_device(name, local_rank):
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise SystemExit("training.device is cuda, but PyTorch sees no CUDA device "
                             f"(torch {torch.__version__}, built for CUDA {torch.version.cuda})")
        name = f"cuda:{local_rank}"
    return torch.device(name)


def describe(device, world):
    what = str(device)
    if device.type == "cuda":
        what += f" ({torch.cuda.get_device_name(device)})"
    return what + (f" x {world} processes" if world > 1 else "")


def versions():
    v = {"torch": torch.__version__, "numpy": np.__version__, "python": platform.python_version()}
    if torch.cuda.is_available():
        v["cuda"] = str(torch.version.cuda)
        v["cudnn"] = str(torch.backends.cudnn.version())
    return v


def prefetch(data, plan, depth=2):
    """The batches of `plan`, read and scaled by a background thread up to `depth` ahead, so a GPU
    does not wait for the disk (NumPy releases the GIL while it copies and sorts)."""
    queue = Queue(maxsize=depth)

    def work():
        try:
            for idx in plan:
                queue.put(data.samples(idx))
        except Exception as e:  # handed to the training loop, which raises it
            queue.put(e)

    threading.Thread(target=work, daemon=True).start()
    for _ in plan:
        item = queue.get()
        if isinstance(item, Exception):
            raise item
        yield item


def validation_nmae(net, val, db4, batch_size, device):
    """Mean and sample SD over validation images of ||C^ - C||_1 / ||C||_1 (Evaluation.nmae)."""
    net.eval()
    values = []
    with torch.no_grad():
        for a in range(0, len(val), batch_size):
            x, c = val.samples(list(range(a, min(len(val), a + batch_size))))
            y = net(torch.from_numpy(x).to(device))
            maps = db4.inverse(y) if db4 is not None else y[:, 0]
            truth = torch.from_numpy(c).to(device).to(torch.float64)
            diff = (maps.to(torch.float64) - truth).abs().sum((1, 2))
            norm = truth.abs().sum((1, 2))
            values += [float(d / n) for d, n in zip(diff.cpu(), norm.cpu()) if n > 0]
    net.train()
    if not values:
        return math.nan, math.nan
    mean = sum(values) / len(values)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0
    return mean, sd


def run(job):
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    emit = Stream(rank == 0)
    signal.signal(signal.SIGINT, _request_stop)
    signal.signal(signal.SIGTERM, _request_stop)
    torch.set_num_threads(max(1, int(job.get("threads", 1))))
    device = resolve_device(job.get("device", "auto"), local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
    if world > 1:
        import torch.distributed as dist
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    t, m = job["training"], job["model"]

    data = Dataset(job["dataset"])
    if job.get("validation"):
        val_data = Dataset(job["validation"])
        train, val = Subset(data, 0, len(data.keep)), Subset(val_data, 0, len(val_data.keep))
        dropped = [(data, "training"), (val_data, "validation")]
    else:
        train, val = split(data, t.get("validationFraction", 0.1))
        dropped = [(data, "training")]
    for d, what in dropped:
        if d.total > len(d.keep):
            emit("log", text=f"left out {d.total - len(d.keep)} of {d.total} {what} images with no SPIO in view")
    if train.channels != m["inputChannels"] or train.size != m["inputSize"]:
        raise SystemExit(f"the data ({train.channels} x {train.size}^2) does not fit the model "
                         f"(input {m['inputChannels']} x {m['inputSize']}^2)")
    identity = f"{job['identityPrefix']} data {len(train)}x{train.size} validation {len(val) if val else 0}"

    net = EncoderDecoderNet(m).to(device)
    bands = m["architecture"] == "deepspio" and m.get("head", "wavelet") != "image"
    db4 = DB4(train.size, device) if bands else None
    l2, lr, batch_size = t.get("l2", 1e-6), t.get("learningRate", 1e-3), t.get("batchSize", 32)
    optimizer = torch.optim.Adam(net.parameters(), lr=lr, betas=(t.get("beta1", 0.9), t.get("beta2", 0.999)),
                                 eps=1e-8, weight_decay=2 * l2)
    directory = os.path.join(job["directory"], "checkpoints")
    last = checkpoint.latest(directory)
    history = []
    if last is not None:
        with open(os.path.join(last, "state.json")) as f:
            state = checkpoint.loads(f.read())
        if state["identity"] != identity:
            raise SystemExit(f"{directory}: holds checkpoints of another configuration ({state['identity']}); "
                             f"expected {identity}. Use another directory or delete it.")
        checkpoint.load(net, optimizer, os.path.join(last, "model.safetensors"))
        history = state["history"]
        emit("log", text=f"resuming after epoch {len(history)} from {last}")
        emit("epoch", history=history)
    else:
        checkpoint.load(net, None, job["initialWeights"])
    # A position inside the next epoch, saved when a run was stopped part-way.
    position = None
    partial_state = os.path.join(directory, "partial", "state.json")
    if os.path.exists(partial_state):
        with open(partial_state) as f:
            state = checkpoint.loads(f.read())
        if state["identity"] == identity and len(state["history"]) == len(history):
            checkpoint.load(net, optimizer, os.path.join(directory, "partial", "model.safetensors"))
            position = state["position"]
            emit("log", text=f"resuming epoch {position['epoch']} after batch {position['batch']}")
    params = list(net.parameters())
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel
        if device.type == "cuda":
            net = torch.nn.SyncBatchNorm.convert_sync_batchnorm(net)
        model = DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda" else None)
    else:
        model = net
    # Adam steps taken: the finished epochs', and the batches done of a part-way epoch.
    step = (history[-1]["step"] if history else 0) + (position["batch"] if position else 0)
    epochs, seed = t.get("epochs", 10), t.get("seed", 1)
    warmup, mse_steps = t.get("warmupSteps", 0), t.get("mseWarmupSteps", 0)
    switch_warmup = t.get("switchWarmupSteps", 0)

    def rate(step):
        """TrainingConfig.learningRate(atStep:): warm-up, constant, and a ramp after the MSE warm-up."""
        r = lr * (step + 1) / warmup if warmup > 0 and step < warmup else lr
        if mse_steps > 0 and switch_warmup > 0 and 0 <= step - mse_steps < switch_warmup:
            r *= (step - mse_steps + 1) / switch_warmup
        return r
    eps, band_weights, image_weight = t.get("lossEpsilon", 1e-6), t.get("bandWeights"), t.get("imageTermWeight", 0)

    stop_at = int(os.environ.get("SPIO_TORCH_STOP_AT_STEP", "0"))  # tests: a stop at a known step
    saved_at = time.time()

    def stop_now():
        flag = torch.tensor([1.0 if stop_requested or (stop_at and step == stop_at) else 0.0])
        if world > 1:
            torch.distributed.all_reduce(flag)
        return flag.item() > 0

    while len(history) < epochs:
        epoch = len(history) + 1
        start = time.time()
        plan = batches(len(train), batch_size, seed, epoch)
        losses, seen, shown, done = [], 0, 0.0, 0
        if position is not None and position["epoch"] == epoch:
            done, losses = position["batch"], position["losses"]
            seen, start = sum(len(i) for i in plan[:done]), start - position["seconds"]
        position = None

        def save_position(b):
            if rank == 0:
                checkpoint.save_partial(directory, net, optimizer, identity, history,
                                        dict(epoch=epoch, batch=b, losses=losses, seconds=time.time() - start),
                                        job["modelJSON"], job["trainingJSON"])

        batches_ahead = prefetch(train, [idx[rank::world] for idx in plan[done:]])
        for b, idx in enumerate(plan):
            if b < done:
                continue
            if stop_now():
                if b > 0:
                    save_position(b)
                emit("interrupted", epoch=epoch, step=step, lastGoodCheckpoint=last)
                return 3
            if time.time() - saved_at > 900 and b > 0:
                save_position(b)
                saved_at = time.time()
            x, c = next(batches_ahead)
            x = torch.from_numpy(x).to(device)
            c = torch.from_numpy(c).to(device)
            target = db4.forward(c) if bands else c[:, None]
            for g in optimizer.param_groups:
                g["lr"] = rate(step)
            optimizer.zero_grad(set_to_none=True)
            pred = model(x)
            if step < mse_steps:
                loss = torch.mean((pred - target) ** 2)
            else:
                loss = normalised_l1(pred, target, eps, band_weights)
                if image_weight:  # the image term: the inverse db4 of the bands against the map
                    loss = loss + image_weight * normalised_l1(db4.inverse(pred)[:, None], c[:, None], eps)
            value = loss.detach().to(torch.float64)
            if world > 1:
                torch.distributed.all_reduce(value)
                value /= world
            value = float(value)
            if not math.isfinite(value):
                emit("nonFinite", epoch=epoch, step=step + 1, what="the loss", lastGoodCheckpoint=last)
                return 4
            loss.backward()
            optimizer.step()
            step += 1
            with torch.no_grad():
                penalty = l2 * float(sum((p.to(torch.float64) ** 2).sum() for p in params)) if l2 != 0 else 0.0
            total = value + penalty
            if not math.isfinite(total):
                emit("nonFinite", epoch=epoch, step=step, what="a weight after the update", lastGoodCheckpoint=last)
                return 4
            losses.append(total)
            seen += len(idx)
            now = time.time()
            if now - shown > 0.5 or b + 1 == len(plan):
                shown = now
                emit("progress", epoch=epoch, epochs=epochs, batch=b + 1, batches=len(plan), step=step, loss=total,
                     samplesPerSecond=seen / max(now - start, 1e-9))
        mean, sd = math.nan, math.nan
        if rank == 0 and val is not None:
            mean, sd = validation_nmae(net, val, db4, batch_size, device)
            if not math.isfinite(mean):
                emit("nonFinite", epoch=epoch, step=step, what="the validation NMAE", lastGoodCheckpoint=last)
                return 4
        history.append(dict(epoch=epoch, step=step, trainLoss=sum(losses) / len(losses), validationNMAE=mean,
                            validationNMAESD=sd, seconds=time.time() - start, batchLosses=losses))
        if rank == 0:
            last = checkpoint.save_epoch(directory, net, optimizer, identity, history, job["modelJSON"],
                                         job["trainingJSON"])
            checkpoint.drop_partial(directory)
            emit("epoch", history=history)
        if world > 1:
            torch.distributed.barrier()
    if rank == 0:
        final = os.path.join(job["directory"], "model.safetensors")
        checkpoint.save_model(net, final, {"config": job["modelJSON"], "format": "pt", "training": job["trainingJSON"]})
        emit("done", model=final, parameters=parameter_count(net), device=describe(device, world),
             versions=versions())
    if world > 1:
        torch.distributed.destroy_process_group()
    return 0


def main(argv):
    if len(argv) != 2 or argv[0] != "train":
        sys.stderr.write("usage: python3 -m spio_torch train JOB.json\n")
        return 2
    with open(argv[1]) as f:
        job = json.load(f)
    try:
        return run(job)
    except (FileNotFoundError, ValueError) as e:  # bad input: one line, no traceback
        sys.stderr.write(f"error: {e}\n")
        return 1

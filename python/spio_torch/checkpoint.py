"""Epoch folders in the engine's format (Sources/SPIOTraining/Trainer.swift, Sources/SPIONetworks/
Checkpoint.swift): `epoch-NNNN/model.safetensors` (state_dict names, metadata config, format, epoch,
training), `model.optimizer.safetensors` (`<param>.exp_avg`, `<param>.exp_avg_sq`, metadata step)
and `state.json` (identity and history), written through a temporary folder renamed into place, the
two newest kept. Either backend resumes from the other's folders."""
import json
import math
import os
import shutil

import struct

import torch
from safetensors.torch import load_file

DTYPES = {torch.float32: "F32", torch.int64: "I64"}


def _json_string(s):
    out = ['"']
    for ch in s:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20:
            out.append("\\u%04x" % ord(ch))
        else:
            out.append(ch)
    return "".join(out) + '"'


def save_file(tensors, path, metadata):
    """safetensors exactly as the engine writes it (Sources/SPIONetworks/SafeTensors.swift): sorted
    names and metadata keys, header padded with spaces to 8 bytes, so the same tensors give the
    same bytes from either backend (the reference writer orders its metadata at random)."""
    parts = []
    if metadata:
        parts.append('"__metadata__":{' + ",".join(f"{_json_string(k)}:{_json_string(metadata[k])}"
                                                   for k in sorted(metadata)) + "}")
    offset, blobs = 0, []
    for name in sorted(tensors):
        t = tensors[name].detach().to("cpu").contiguous()
        blob = t.numpy().tobytes()
        shape = ",".join(str(d) for d in t.shape)
        parts.append(f'{_json_string(name)}:{{"dtype":"{DTYPES[t.dtype]}","shape":[{shape}],'
                     f'"data_offsets":[{offset},{offset + len(blob)}]}}')
        offset += len(blob)
        blobs.append(blob)
    header = ("{" + ",".join(parts) + "}").encode()
    header += b" " * (-len(header) % 8)
    tmp = path + ".partial"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(header)))
        f.write(header)
        for blob in blobs:
            f.write(blob)
    os.replace(tmp, path)


def _leaves(x, f):
    """`x` with `f` applied to every value that is not a list or a dict."""
    if isinstance(x, list):
        return [_leaves(v, f) for v in x]
    if isinstance(x, dict):
        return {k: _leaves(v, f) for k, v in x.items()}
    return f(x)


def _nan_to_text(v):
    if isinstance(v, float) and not math.isfinite(v):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
    return v


def _text_to_nan(v):
    return float(v) if isinstance(v, str) and v in ("nan", "inf", "-inf") else v


def dumps(obj):
    """JSON as the engine's encoder reads it: sorted keys, non-finite numbers as strings."""
    return json.dumps(_leaves(obj, _nan_to_text), sort_keys=True, separators=(",", ":"))


def loads(text):
    return _leaves(json.loads(text), _text_to_nan)


def save_model(model, path, metadata):
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    save_file(state, path, metadata={k: str(v) for k, v in metadata.items()})


def optimizer_path(path):
    return path[:-len(".safetensors")] + ".optimizer.safetensors"


def save_optimizer(model, optimizer, path):
    entries, step = {}, 0
    for name, p in model.named_parameters():
        st = optimizer.state.get(p, {})
        avg = st.get("exp_avg", torch.zeros_like(p))
        sq = st.get("exp_avg_sq", torch.zeros_like(p))
        entries[name + ".exp_avg"] = avg.detach().to("cpu").contiguous()
        entries[name + ".exp_avg_sq"] = sq.detach().to("cpu").contiguous()
        if "step" in st:
            step = int(st["step"])
    save_file(entries, optimizer_path(path), metadata={"step": str(step)})


def load(model, optimizer, path):
    """Loads weights, buffers and (with `optimizer`) Adam's moments and step; names and shapes must
    match exactly (strict), as the engine's Checkpoint.load."""
    device = next(model.parameters()).device
    model.load_state_dict({k: v.to(device) for k, v in load_file(path).items()}, strict=True)
    if optimizer is None:
        return
    from safetensors import safe_open
    opath = optimizer_path(path)
    with safe_open(opath, "pt") as f:
        step = int(f.metadata()["step"])
        names = set(f.keys())
        for name, p in model.named_parameters():
            for key in (name + ".exp_avg", name + ".exp_avg_sq"):
                if key not in names:
                    raise ValueError(f"{opath}: missing tensor {key}")
            optimizer.state[p] = {
                "step": torch.tensor(float(step)),
                "exp_avg": f.get_tensor(name + ".exp_avg").to(device),
                "exp_avg_sq": f.get_tensor(name + ".exp_avg_sq").to(device),
            }


def latest(directory):
    """The newest complete epoch folder (with its state.json), or None."""
    if not os.path.isdir(directory):
        return None
    done = sorted(d for d in os.listdir(directory)
                  if d.startswith("epoch-") and os.path.exists(os.path.join(directory, d, "state.json")))
    return os.path.join(directory, done[-1]) if done else None


def _write_folder(directory, name, model, optimizer, metadata, state):
    """`directory/name/` (weights, Adam's state, state.json) through a temporary folder renamed into
    place: a crash leaves the old folder or the new one."""
    os.makedirs(directory, exist_ok=True)
    partial, final = os.path.join(directory, "." + name + ".partial"), os.path.join(directory, name)
    shutil.rmtree(partial, ignore_errors=True)
    os.makedirs(partial)
    weights = os.path.join(partial, "model.safetensors")
    save_model(model, weights, metadata)
    save_optimizer(model, optimizer, weights)
    with open(os.path.join(partial, "state.json"), "w") as f:
        f.write(dumps(state))
    shutil.rmtree(final, ignore_errors=True)
    os.rename(partial, final)
    return final


def save_epoch(directory, model, optimizer, identity, history, model_json, training_json):
    final = _write_folder(directory, "epoch-%04d" % len(history), model, optimizer,
                          {"config": model_json, "format": "pt", "epoch": len(history), "training": training_json},
                          {"identity": identity, "history": history})
    epochs = sorted(d for d in os.listdir(directory) if d.startswith("epoch-"))
    for old in epochs[:-2]:
        shutil.rmtree(os.path.join(directory, old), ignore_errors=True)
    return final


def save_partial(directory, model, optimizer, identity, history, position, model_json, training_json):
    """`partial/`: the position inside an epoch (epoch, batches done, their losses, seconds) with
    weights, buffers and Adam state, so a long epoch stopped part-way (Ctrl-C, a cluster's
    SIGTERM, every 15 minutes against a crash) resumes at the next batch. The engine's readers
    look only at `epoch-NNNN/` folders and ignore it."""
    return _write_folder(directory, "partial", model, optimizer,
                         {"config": model_json, "format": "pt", "training": training_json},
                         {"identity": identity, "history": history, "position": position})


def drop_partial(directory):
    shutil.rmtree(os.path.join(directory, "partial"), ignore_errors=True)

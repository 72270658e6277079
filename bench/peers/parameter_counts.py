"""Writes parameter_counts.json: trainable parameter counts of every preset and ablation in PyTorch
and Keras. The Swift test ParameterCountTests compares DeepSPIO-Lab's counts with these files'.

python3 parameter_counts.py   (needs torch and tensorflow-cpu; see README.md)
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
from spio_torch.models import EncoderDecoderNet, config, parameter_count  # noqa: E402

VARIANTS = {
    "deepspio": {},
    "deepspio-maxpool": dict(downsampling="maxpool"),
    "deepspio-plain-bottleneck": dict(bottleneck="plain"),
    "deepspio-no-bottleneck": dict(bottleneck="none"),
    "deepspio-identity-shortcut": dict(shortcut="identity"),
    "deepspio-shared-decoder": dict(head="shared"),
    "deepspio-image-decoder": dict(head="image"),
    "deepspio-skips": dict(skips=True),
    "unet": dict(architecture="unet"),
}

out = {"torch": {}, "keras": {}}
import torch  # noqa: E402
out["torch_version"] = torch.__version__
for preset in ("tiny", "small", "paper"):
    for name, overrides in VARIANTS.items():
        out["torch"][f"{name}/{preset}"] = parameter_count(EncoderDecoderNet(config(preset, **overrides)))
try:
    from models_keras import build, trainable_count, keras
    out["keras_version"] = keras.__version__
    for preset in ("tiny", "small"):
        for name, overrides in VARIANTS.items():
            out["keras"][f"{name}/{preset}"] = trainable_count(build(config(preset, **overrides)))
except ImportError as e:
    print(f"Keras counts skipped: {e}")
path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "parameter_counts.json")
with open(path, "w") as f:
    json.dump(out, f, indent=1, sort_keys=True)
print(f"wrote {path}")

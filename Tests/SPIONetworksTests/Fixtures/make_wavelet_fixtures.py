"""Writes db4.json: PyWavelets' one-level db4 'periodization' transform of two fixed inputs.

Run with PyWavelets installed: python3 make_wavelet_fixtures.py (from this folder).
"""
import json
import numpy as np
import pywt

rng = np.random.default_rng(20261125)
cases = {
    "arange8": np.arange(64, dtype=np.float64).reshape(8, 8),
    "random64": rng.standard_normal((64, 64)).astype(np.float32).astype(np.float64),
}
out = {"pywt_version": pywt.__version__}
for name, x in cases.items():
    cA, (cH, cV, cD) = pywt.dwt2(x, "db4", mode="periodization")
    out[name] = {"input": x.ravel().tolist(), "shape": list(x.shape),
                 "bands": np.stack([cA, cH, cV, cD]).ravel().tolist()}
with open("db4.json", "w") as f:
    json.dump(out, f)

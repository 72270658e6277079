"""The engine's data path in NumPy and PyTorch: dataset folders (or shard folders) read
memory-mapped, images without SPIO left out, each input divided by its own 99th percentile
(nearest rank), the db4 bands as targets, and each epoch's batch order drawn from the engine's
xoshiro256** stream, so both backends see the same batches (Sources/SPIOTraining/TrainingSet.swift,
Trainer.swift, Sources/SPIOTensor/SeededGenerator.swift, Sources/SPIONetworks/DB4Wavelet.swift)."""
import math
import os

import numpy as np
import torch

MASK = (1 << 64) - 1


class SeededGenerator:
    """xoshiro256** seeded by splitmix64, bit for bit as the engine's SeededGenerator."""

    def __init__(self, seed, stream=None):
        if stream is not None:
            seed = ((seed ^ ((stream * 0xD1B54A32D192ED03) & MASK)) + stream) & MASK
        x = seed & MASK
        s = []
        for _ in range(4):
            x = (x + 0x9E3779B97F4A7C15) & MASK
            z = x
            z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
            z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
            s.append(z ^ (z >> 31))
        self.s = s

    @staticmethod
    def _rotl(x, k):
        return ((x << k) | (x >> (64 - k))) & MASK

    def next(self):
        s = self.s
        result = (self._rotl((s[1] * 5) & MASK, 7) * 9) & MASK
        t = (s[1] << 17) & MASK
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = self._rotl(s[3], 45)
        return result

    def int_in(self, lo, hi):
        """Uniform integer in lo...hi (closed), as the engine's int(in:)."""
        return lo + self.next() % (hi - lo + 1)


def batches(count, batch_size, seed, epoch):
    """One epoch's batches: a Fisher-Yates shuffle from stream (seed, epoch) cut into batch_size
    pieces; a last piece of one image joins the one before (BatchNorm needs two)."""
    order = list(range(count))
    rng = SeededGenerator(seed, stream=epoch)
    for i in range(count - 1, 0, -1):
        j = rng.int_in(0, i)
        order[i], order[j] = order[j], order[i]
    out = [order[k:k + batch_size] for k in range(0, count, batch_size)]
    if len(out) > 1 and len(out[-1]) == 1:
        last = out.pop()
        out[-1] = out[-1] + last
    return out


# PyWavelets' Wavelet('db4').dec_lo, as Sources/SPIONetworks/DB4Wavelet.swift.
DB4_LOW = [-0.010597401785069032, 0.0328830116668852, 0.030841381835560764, -0.18703481171909309,
           -0.027983769416859854, 0.6308807679298589, 0.7148465705529157, 0.2303778133088965]
DB4_HIGH = [(-1.0 if j % 2 == 0 else 1.0) * DB4_LOW[7 - j] for j in range(8)]


def db4_matrix(n):
    """The n x n analysis matrix of one periodised db4 level: rows 0..n/2 low-pass, n/2..n
    high-pass; coefficient k reads x[(2k + 4 - j) mod n] with tap j (the engine's alignment).
    Orthogonal, so its transpose is the inverse."""
    a = np.zeros((n, n))
    for k in range(n // 2):
        for j in range(8):
            c = (2 * k + 4 - j) % n
            a[k, c] += DB4_LOW[j]
            a[n // 2 + k, c] += DB4_HIGH[j]
    return a


class DB4:
    """The 2-D db4 transform of N x H x W maps into N x 4 x H/2 x W/2 bands (LL, LH, HL, HH) and
    back, as matrix products in double precision on `device`."""

    def __init__(self, size, device):
        self.a = torch.tensor(db4_matrix(size), dtype=torch.float64, device=device)
        self.h = size // 2

    def forward(self, maps):
        y = self.a @ maps.to(torch.float64) @ self.a.T
        h = self.h
        return torch.stack([y[:, :h, :h], y[:, h:, :h], y[:, :h, h:], y[:, h:, h:]], 1).to(torch.float32)

    def inverse(self, bands):
        b = bands.to(torch.float64)
        top = torch.cat([b[:, 0], b[:, 2]], 2)
        bottom = torch.cat([b[:, 1], b[:, 3]], 2)
        return (self.a.T @ torch.cat([top, bottom], 1) @ self.a).to(torch.float32)


def percentile99(values):
    """The 99th percentile (nearest rank) of a flat array, as InputScaling.percentile99."""
    n = values.size
    if n == 0:
        return 0.0
    rank = max(0, min(n - 1, math.ceil(0.99 * n) - 1))
    return np.partition(values, rank)[rank]


def scale_inputs(images):
    """Divides each sample (all channels) by its 99th percentile, unless that is 0 or not finite."""
    out = np.array(images, dtype=np.float32, copy=True)
    for s in range(out.shape[0]):
        p = percentile99(out[s].reshape(-1))
        if p > 0 and np.isfinite(p):
            out[s] /= np.float32(p)
    return out


def _shard_folders(folder):
    """A dataset folder (images.npy, concentration.npy), or its complete set of shard folders
    shard-IIII-of-NNNN/ (Sources/SPIOPhysics/DatasetShards.swift), in shard order."""
    if os.path.exists(os.path.join(folder, "images.npy")):
        return [folder]
    names = sorted(d for d in os.listdir(folder) if d.startswith("shard-") and ".partial" not in d)
    if not names:
        raise FileNotFoundError(f"{folder}: holds neither images.npy nor shard-IIII-of-NNNN folders")
    of = int(names[0][-4:])
    expected = ["shard-%04d-of-%04d" % (i, of) for i in range(of)]
    present = [d for d in expected if os.path.exists(os.path.join(folder, d, "manifest.json"))]
    if names != expected or len(present) != of:
        raise FileNotFoundError(f"{folder}: holds {len(present)} of {of} complete shards; make the missing ones "
                                f"with spio simulate --shard i/{of}")
    return [os.path.join(folder, d) for d in expected]


class Dataset:
    """The samples of a dataset folder or its shards, memory-mapped: only the samples of a batch
    are read and scaled, so a paper-scale set never has to fit in memory. `keep` lists the global
    indices with SPIO in view (the engine's droppingEmptyTargets)."""

    def __init__(self, folder):
        self.images, self.maps, starts = [], [], [0]
        for f in _shard_folders(folder):
            img = np.load(os.path.join(f, "images.npy"), mmap_mode="r")
            conc = np.load(os.path.join(f, "concentration.npy"), mmap_mode="r")
            if img.ndim != 4 or conc.ndim != 3 or img.shape[0] != conc.shape[0] or img.shape[2:] != conc.shape[1:]:
                raise ValueError(f"{f}: images.npy {img.shape} and concentration.npy {conc.shape} do not pair "
                                 "as N x C x H x W and N x H x W")
            self.images.append(img)
            self.maps.append(conc)
            starts.append(starts[-1] + img.shape[0])
        self.starts = starts
        self.channels, self.size = self.images[0].shape[1], self.images[0].shape[3]
        keep = []
        for k, conc in enumerate(self.maps):
            for a in range(0, conc.shape[0], 4096):
                block = np.asarray(conc[a:a + 4096]).reshape(min(4096, conc.shape[0] - a), -1)
                keep.extend((starts[k] + a + np.nonzero((block != 0).any(1))[0]).tolist())
        self.total = starts[-1]
        self.keep = keep

    def _locate(self, i):
        k = int(np.searchsorted(self.starts, i, side="right")) - 1
        return k, i - self.starts[k]

    def samples(self, indices):
        """Scaled inputs (B x C x H x W) and concentrations (B x H x W) of kept samples `indices`."""
        imgs, maps = [], []
        for i in indices:
            k, j = self._locate(self.keep[i])
            imgs.append(self.images[k][j])
            maps.append(self.maps[k][j])
        return scale_inputs(np.stack(imgs)), np.array(np.stack(maps), dtype=np.float32)


class Subset:
    """Kept samples `range` of a Dataset (the engine's validation split)."""

    def __init__(self, data, lo, hi):
        self.data, self.lo, self.hi = data, lo, hi
        self.size, self.channels = data.size, data.channels

    def __len__(self):
        return self.hi - self.lo

    def samples(self, indices):
        return self.data.samples([self.lo + i for i in indices])


def split(data, fraction):
    """The last `fraction` of the kept samples (at least one when positive) validates, as
    Trainer.split (rounded half away from zero, as Swift's rounded())."""
    n = len(data.keep)
    held = max(1, math.floor(n * fraction + 0.5)) if fraction > 0 else 0
    if n - held < 2:
        raise ValueError(f"{n} images leave fewer than 2 for training")
    return Subset(data, 0, n - held), (Subset(data, n - held, n) if held > 0 else None)

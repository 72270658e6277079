"""What bench/peers/run.sh and bench/peers/inference.sh share when they write their tables: the
measured rows, each framework's name, and the machine line (CPU model, core count, vector ISA, the
engine's commit and the date, UTC)."""
import json
import os
import platform
import subprocess


def load_rows(path):
    """One JSON object per line, as `spio bench train --json` and bench_peer.py --json print them."""
    return [json.loads(l) for l in open(path) if l.strip()]


def framework_name(r):
    """Ours with its kernel mode (rows tagged with `mode`), or the peer's own framework string."""
    return f"DeepSPIO-Lab, {r['kernel']}" if "mode" in r else r["framework"]


def describe():
    cpuinfo = open("/proc/cpuinfo").read().splitlines()
    cpu = next((l.split(":", 1)[1].strip() for l in cpuinfo if l.startswith("model name")), platform.processor())
    flags = next((l for l in cpuinfo if l.startswith("flags")), "")
    isa = "AVX-512" if "avx512f" in flags else ("AVX2+FMA" if "avx2" in flags else "no AVX2")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    date = subprocess.run(["date", "-u", "+%Y-%m-%d"], capture_output=True, text=True).stdout.strip()
    return f"Machine: {cpu}, {os.cpu_count()} cores ({isa}). Engine at commit {commit}, measured {date}."

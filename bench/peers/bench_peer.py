"""Training throughput, one-image inference latency and peak memory of DeepSPIO or the U-Net in
PyTorch or Keras (TensorFlow CPU), on random data: the figures `spio bench train` measures.

python3 bench_peer.py --framework torch --arch deepspio --preset small [--set inputSize=128] --threads 2 [--json]
"""
import argparse
import json
import os
import resource
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))


def median(v):
    return sorted(v)[len(v) // 2]


def bench_torch(c, a):
    import torch
    torch.set_num_threads(a.threads)
    torch.set_num_interop_threads(1)
    from spio_torch.models import EncoderDecoderNet, normalised_l1, parameter_count
    torch.manual_seed(1)
    net = EncoderDecoderNet(c)
    opt = torch.optim.Adam(net.parameters(), 1e-4)
    s = c["inputSize"]
    x = torch.randn(a.batch, c["inputChannels"], s, s)
    y = torch.randn_like(net(x)).detach()

    def step():
        opt.zero_grad(set_to_none=True)
        normalised_l1(net(x), y).backward()
        opt.step()

    rates = timed(step, a)
    net.eval()
    one = x[:1]
    with torch.no_grad():
        lat = latency(lambda: net(one))
    return dict(framework=f"PyTorch {torch.__version__} (CPU)", parameters=parameter_count(net), trainSamplesPerSecondRuns=rates,
                inferenceMilliseconds=lat)


def bench_keras(c, a):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(a.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    import keras
    from models_keras import build, trainable_count
    keras.utils.set_random_seed(1)
    net = build(c)
    opt = keras.optimizers.Adam(1e-4)
    s = c["inputSize"]
    x = tf.random.normal((a.batch, s, s, c["inputChannels"]))
    y = tf.random.normal(net(x).shape)

    def loss_fn(pred, target):  # bands on the channel axis (channels last)
        diff = tf.reduce_sum(tf.abs(pred - target), axis=(1, 2))
        norm = tf.reduce_sum(tf.abs(target), axis=(1, 2)) + 1e-6
        return tf.reduce_mean(tf.reduce_sum(diff / norm, axis=1))

    @tf.function
    def train_step():
        with tf.GradientTape() as tape:
            loss = loss_fn(net(x, training=True), y)
        grads = tape.gradient(loss, net.trainable_weights)
        opt.apply_gradients(zip(grads, net.trainable_weights))
        return loss

    rates = timed(lambda: train_step().numpy(), a)
    one = x[:1]
    infer = tf.function(lambda t: net(t, training=False))
    lat = latency(lambda: infer(one).numpy())
    return dict(framework=f"Keras {keras.__version__} / TensorFlow {tf.__version__} (CPU)", parameters=trainable_count(net),
                trainSamplesPerSecondRuns=rates, inferenceMilliseconds=lat)


def timed(step, a):
    step(); step()  # warm-up (graph tracing, allocator)
    rates = []
    for _ in range(a.repeats):
        t0 = time.perf_counter()
        for _ in range(a.steps):
            step()
        rates.append(a.steps * a.batch / (time.perf_counter() - t0))
    return rates


def latency(run):
    for _ in range(3):
        run()
    times = []
    for _ in range(21):
        t0 = time.perf_counter()
        run()
        times.append((time.perf_counter() - t0) * 1e3)
    return median(times)


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--framework", choices=["torch", "keras"], required=True)
    p.add_argument("--arch", choices=["deepspio", "unet"], default="deepspio")
    p.add_argument("--preset", default="small")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override an integer model key, as spio bench train --set model.KEY=VALUE does (repeatable)")
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    from spio_torch.models import config
    overrides = {}
    for item in a.set:
        key, sep, value = item.partition("=")
        key = key.removeprefix("model.")
        if not sep or not value.isdigit():
            p.error(f"--set {item}: expected KEY=INTEGER, for example inputSize=128")
        overrides[key] = int(value)
    c = config(a.preset, architecture=a.arch, **overrides)
    r = (bench_torch if a.framework == "torch" else bench_keras)(c, a)
    r.update(architecture=a.arch, batch=a.batch, threads=a.threads, trainSamplesPerSecond=median(r["trainSamplesPerSecondRuns"]),
             peakResidentMiB=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print(json.dumps(r, sort_keys=True) if a.json else
          f"{r['framework']} {a.arch} {a.preset}: {r['trainSamplesPerSecond']:.1f} training samples/s, "
          f"inference {r['inferenceMilliseconds']:.2f} ms, peak RSS {r['peakResidentMiB']:.0f} MiB")


if __name__ == "__main__":
    main()

"""DeepSPIO and the U-Net in Keras (TensorFlow CPU), layer for layer as the Swift engine and
models_torch.py. Keras BatchNormalization has 4 weights per channel, 2 of them non-trainable
(moving mean and variance), so compare trainable parameter counts."""
import os
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import keras
from keras import layers

from spio_torch.models import config  # same presets and switches


def _bn(x):
    return layers.BatchNormalization(momentum=0.99, epsilon=1e-5)(x)


def _conv(x, f, k=3, s=1):
    return layers.Conv2D(f, k, strides=s, padding="same", kernel_initializer="he_normal")(x)


def _cbr(x, f):
    return layers.ReLU()(_bn(_conv(x, f)))


def build(c):
    """The model of config c (channels last: input H x W x 2)."""
    s, F, unet = c["inputSize"], c["baseFilters"], c["architecture"] == "unet"
    inp = keras.Input((s, s, c["inputChannels"]))
    x, features = inp, []
    for st in range(4):
        f = F << st
        x = _cbr(_cbr(x, f), f)
        features.append(x)
        x = _conv(x, f, 3, 2) if (not unet and c["downsampling"] == "strided") else layers.MaxPooling2D(2)(x)
    if unet:
        x = _cbr(_cbr(x, 16 * F), 16 * F)
        for k in range(4):
            w = F << (3 - k)
            x = layers.Conv2DTranspose(w, 2, strides=2, kernel_initializer="he_normal")(x)
            x = layers.Concatenate()([x, features[3 - k]])
            x = _cbr(_cbr(x, w), w)
        return keras.Model(inp, layers.Conv2D(1, 1)(x))
    if c["bottleneck"] != "none":
        B = c["bottleneckFilters"]
        for _ in range(c["residualBlocks"]):
            y = layers.ReLU()(_bn(_conv(x, B)))
            if c["bottleneck"] == "residual":
                if c["shortcut"] == "projection":
                    short = _conv(x, B, 1)
                else:  # identity, channels zero-padded (ResNet option A)
                    extra = B - x.shape[-1]
                    short = layers.Lambda(lambda t, e=extra: keras.ops.pad(t, [[0, 0], [0, 0], [0, 0], [0, e]]))(x) if extra else x
                y = layers.Add()([y, short])
            x = y
    z = x
    widths = c["decoderWidths"] or [m * F for m in ([8, 4, 2, 1] if c["head"] == "image" else [8, 4, 2])]
    count, out = (4, 1) if c["head"] == "wavelet" else (1, 4 if c["head"] == "shared" else 1)
    outs = []
    for _ in range(count):
        y = z
        for k, w in enumerate(widths):
            y = _bn(layers.LeakyReLU(negative_slope=0.01)(layers.Conv2DTranspose(w, 3, strides=2, padding="same", kernel_initializer="he_normal")(y)))
            if c["skips"]:
                y = layers.Concatenate()([y, features[3 - k]])
            y = _bn(layers.LeakyReLU(negative_slope=0.01)(_conv(y, w)))
        outs.append(_conv(y, out))
    return keras.Model(inp, layers.Concatenate()(outs) if len(outs) > 1 else outs[0])


def trainable_count(model):
    return int(sum(keras.ops.size(w) for w in model.trainable_weights))

"""DeepSPIO, its ablations and the U-Net in PyTorch, with the same module names, layouts and
parameter counts as DeepSPIO-Lab's Swift engine (Sources/SPIONetworks/EncoderDecoderNet.swift),
so a Swift checkpoint loads here with load_state_dict(strict=True) and the other way round."""
import torch
from torch import nn

PRESETS = {"tiny": (32, 4, 64), "small": (64, 16, 256), "paper": (256, 32, 512)}


def config(preset="small", **overrides):
    size, f, b = PRESETS[preset]
    c = dict(architecture="deepspio", inputSize=size, inputChannels=2, baseFilters=f, bottleneckFilters=b,
             residualBlocks=4, decoderWidths=None, downsampling="strided", bottleneck="residual",
             shortcut="projection", head="wavelet", skips=False)
    c.update(overrides)
    return c


def bn(c):
    # Keras momentum 0.99 = PyTorch momentum 0.01 (networks.md).
    return nn.BatchNorm2d(c, eps=1e-5, momentum=0.01)


def conv_bn_relu(i, o):
    return [nn.Conv2d(i, o, 3, padding=1), bn(o), nn.ReLU()]


class EncoderStage(nn.Sequential):
    """Body layers, then the down-sampling layer; `features` (the body output) feeds skips."""

    def forward(self, x):
        for layer in list(self)[:-1]:
            x = layer(x)
        self.features = x
        return self[-1](x)


class ResidualBlock(nn.Module):
    def __init__(self, i, o, shortcut):
        super().__init__()
        self.conv = nn.Conv2d(i, o, 3, padding=1)
        self.bn = bn(o)
        self.kind, self.i, self.o = shortcut, i, o
        if shortcut == "projection":
            self.shortcut = nn.Conv2d(i, o, 1)

    def forward(self, x):
        y = torch.relu(self.bn(self.conv(x)))
        if self.kind == "projection":
            return y + self.shortcut(x)
        if self.kind == "identity":
            return y + nn.functional.pad(x, (0, 0, 0, 0, 0, self.o - self.i))
        return y


class DecoderStage(nn.Sequential):
    def __init__(self, up, body):
        super().__init__(*(up + body))
        self.up_count = len(up)

    def forward(self, x, skip=None):
        layers = list(self)
        for layer in layers[:self.up_count]:
            x = layer(x)
        if skip is not None:
            x = torch.cat([x, skip], 1)
        for layer in layers[self.up_count:]:
            x = layer(x)
        return x


class Decoder(nn.Sequential):
    def forward(self, z, skips):
        layers = list(self)
        for stage, skip in zip(layers[:-1], skips):
            z = stage(z, skip)
        return layers[-1](z)


class EncoderDecoderNet(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        F, unet = c["baseFilters"], c["architecture"] == "unet"
        stages, cin = [], c["inputChannels"]
        for s in range(4):
            f = F << s
            down = nn.Conv2d(f, f, 3, stride=2, padding=1) if (not unet and c["downsampling"] == "strided") else nn.MaxPool2d(2)
            stages.append(EncoderStage(*(conv_bn_relu(cin, f) + conv_bn_relu(f, f) + [down])))
            cin = f
        self.encoder = nn.ModuleList(stages)
        skip_channels = [F << (3 - k) for k in range(4)]
        self.uses_skips = unet or c["skips"]
        if unet:
            self.bottleneck = nn.Sequential(*(conv_bn_relu(cin, 16 * F) + conv_bn_relu(16 * F, 16 * F)))
            ch, ups = 16 * F, []
            for k in range(4):
                w = F << (3 - k)
                ups.append(DecoderStage([nn.ConvTranspose2d(ch, w, 2, stride=2)], conv_bn_relu(w + skip_channels[k], w) + conv_bn_relu(w, w)))
                ch = w
            self.decoders = nn.ModuleList([Decoder(*ups, nn.Conv2d(ch, 1, 1))])
        else:
            blocks = []
            if c["bottleneck"] != "none":
                kind = "none" if c["bottleneck"] == "plain" else c["shortcut"]
                for _ in range(c["residualBlocks"]):
                    blocks.append(ResidualBlock(cin, c["bottleneckFilters"], kind))
                    cin = c["bottleneckFilters"]
            self.bottleneck = nn.Sequential(*blocks)
            widths = c.get("decoderWidths") or [m * F for m in ([8, 4, 2, 1] if c["head"] == "image" else [8, 4, 2])]
            count, out = (4, 1) if c["head"] == "wavelet" else (1, 4 if c["head"] == "shared" else 1)
            decs = []
            for _ in range(count):
                ch, st = cin, []
                for k, w in enumerate(widths):
                    extra = skip_channels[k] if c["skips"] else 0
                    st.append(DecoderStage([nn.ConvTranspose2d(ch, w, 3, stride=2, padding=1, output_padding=1), nn.LeakyReLU(0.01), bn(w)],
                                           [nn.Conv2d(w + extra, w, 3, padding=1), nn.LeakyReLU(0.01), bn(w)]))
                    ch = w
                decs.append(Decoder(*st, nn.Conv2d(ch, out, 3, padding=1)))
            self.decoders = nn.ModuleList(decs)
        for m in self.modules():  # He initialisation, zero biases (as the Swift engine)
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                fan_in = m.in_channels * m.kernel_size[0] * m.kernel_size[1]
                if isinstance(m, nn.ConvTranspose2d):
                    fan_in //= m.stride[0] * m.stride[1]
                nn.init.normal_(m.weight, 0, (2.0 / fan_in) ** 0.5)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        for stage in self.encoder:
            x = stage(x)
        z = self.bottleneck(x)
        skips = [self.encoder[3 - k].features if self.uses_skips else None for k in range(4)]
        outs = [d(z, skips) for d in self.decoders]
        y = torch.cat(outs, 1) if len(outs) > 1 else outs[0]
        scale = self.c.get("outputScale", 1.0)
        return y * scale if scale != 1 else y


def normalised_l1(pred, target, eps=1e-6, weights=None):
    """The paper's loss without its weight term: sum over bands of w_j ||a - a^||_1 / (||a||_1 + eps), mean over
    samples (the paper: every w_j = 1)."""
    diff = (pred - target).abs().sum((2, 3))
    norm = target.abs().sum((2, 3)) + eps
    ratio = diff / norm
    if weights is not None:
        ratio = ratio * torch.tensor(weights, dtype=ratio.dtype, device=ratio.device)
    return ratio.sum(1).mean()


def parameter_count(model):
    return sum(p.numel() for p in model.parameters())

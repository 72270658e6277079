import SPIOTensor

/// DeepSPIO (paper section 4), its ablations and the U-Net baseline: one encoder of stages, a
/// bottleneck, and one or four decoders, with optional skip connections from encoder stage 3 - k
/// into decoder stage k (the stages of equal resolution). `ModelConfig` chooses the parts.
///
/// Input N x C x H x W. Output N x 4 x H/2 x W/2 (the db4 bands LL, LH, HL, HH) when
/// `config.predictsWaveletBands`, else N x 1 x H x W (the concentration map).
public final class EncoderDecoderNet: Layer {
    public let config: ModelConfig
    public let encoder: [EncoderStage]
    public let bottleneck: Sequential
    public let decoders: [UpsamplingDecoder]
    private let encoderList: ModuleList, decoderList: ModuleList
    private let output = Tensor(shape: [0])
    private let outputGrads: [Tensor]
    private let bottleneckGrad = Tensor(shape: [0]), scaledGrad = Tensor(shape: [0])
    private let skipGrads: [Tensor]

    /// Builds the network of `config` and initialises it (He) from `seed`.
    public init(_ config: ModelConfig, seed: UInt64 = 0, workspace ws: Workspace = Workspace()) {
        if let problem = config.problem { preconditionFailure("invalid model configuration: \(problem)") }
        self.config = config
        let F = config.baseFilters
        var stages: [EncoderStage] = []
        var cin = config.inputChannels
        let unet = config.architecture == .unet
        // The activations overwrite their inputs (a BatchNorm's or a convolution's output, which
        // nothing else reads): one activation tensor less per block, as PyTorch's inplace=True.
        func convBNReLU(_ i: Int, _ o: Int) -> [Layer] {
            [Conv2D(i, o, kernelSize: 3, workspace: ws), BatchNorm2D(o), ReLU(inPlace: true)]
        }
        for s in 0..<4 {
            let f = F << s
            let down: Layer =
                !unet && config.downsampling == .strided
                ? Conv2D(f, f, kernelSize: 3, stride: 2, workspace: ws) : MaxPool2D()
            stages.append(EncoderStage(body: convBNReLU(cin, f) + convBNReLU(f, f), downsampling: down))
            cin = f
        }
        encoder = stages
        var decoders: [UpsamplingDecoder] = []
        let skipChannels = (0..<4).map { F << (3 - $0) }  // encoder stage 3 - k feeds decoder stage k
        if unet {
            bottleneck = Sequential(convBNReLU(cin, 16 * F) + convBNReLU(16 * F, 16 * F))
            var c = 16 * F
            var ups: [DecoderStage] = []
            for k in 0..<4 {
                let w = F << (3 - k)
                ups.append(
                    DecoderStage(
                        up: [ConvTranspose2D.doubling2x2(c, w, workspace: ws)],
                        body: convBNReLU(w + skipChannels[k], w) + convBNReLU(w, w)))
                c = w
            }
            decoders = [UpsamplingDecoder(stages: ups, head: Conv2D(c, 1, kernelSize: 1, workspace: ws))]
        } else {
            var blocks: [Layer] = []
            if config.bottleneck != .none {
                let kind: ResidualBlock.Shortcut =
                    config.bottleneck == .plain
                    ? .none
                    : config.shortcut == .projection ? .projection : .identity
                for _ in 0..<config.residualBlocks {
                    blocks.append(ResidualBlock(cin, config.bottleneckFilters, shortcut: kind, workspace: ws))
                    cin = config.bottleneckFilters
                }
            }
            bottleneck = Sequential(blocks)
            let (count, outChannels) = config.head == .wavelet ? (4, 1) : (1, config.head == .shared ? 4 : 1)
            for _ in 0..<count {
                var c = cin
                var dstages: [DecoderStage] = []
                for (k, w) in config.resolvedDecoderWidths.enumerated() {
                    let extra = config.skips ? skipChannels[k] : 0
                    dstages.append(
                        DecoderStage(
                            up: [
                                ConvTranspose2D.doubling3x3(c, w, workspace: ws), LeakyReLU(slope: 0.01, inPlace: true),
                                BatchNorm2D(w)
                            ],
                            body: [
                                Conv2D(w + extra, w, kernelSize: 3, workspace: ws),
                                LeakyReLU(slope: 0.01, inPlace: true),
                                BatchNorm2D(w)
                            ]))
                    c = w
                }
                decoders.append(
                    UpsamplingDecoder(stages: dstages, head: Conv2D(c, outChannels, kernelSize: 3, workspace: ws)))
            }
        }
        self.decoders = decoders
        encoderList = ModuleList(encoder)
        decoderList = ModuleList(decoders)
        outputGrads = decoders.map { _ in Tensor(shape: [0]) }
        skipGrads = (0..<4).map { _ in Tensor(shape: [0]) }
        firstConv.computesInputGradient = false
        HeInitialiser.initialise(self, seed: seed)
    }

    /// The first convolution (its input gradient is skipped unless saliency asks for it).
    public var firstConv: Conv2D { encoder[0].layers[0] as! Conv2D }

    private var usesSkips: Bool { config.architecture == .unet || config.skips }

    public var children: [(String, Module)] {
        [("encoder", encoderList), ("bottleneck", bottleneck), ("decoders", decoderList)]
    }

    /// Output shape for a batch of n.
    public func outputShape(batch n: Int) -> [Int] {
        let s = config.inputSize
        return config.predictsWaveletBands ? [n, 4, s / 2, s / 2] : [n, 1, s, s]
    }

    public func forward(_ x: Tensor) -> Tensor {
        x.expectShape(
            [x.shape.first ?? 0, config.inputChannels, config.inputSize, config.inputSize],
            "\(config.architecture.rawValue) input")
        let z = bottleneck(encoder.reduce(x) { $1.forward($0) })
        let skips: [Tensor?] = (0..<4).map { k in usesSkips ? encoder[3 - k].features : nil }
        let n = x.shape[0]
        let scale = Float(config.outputScale)
        if decoders.count == 1 {
            let y = decoders[0].forward(z, skips: skips)
            guard scale != 1 else { return y }
            output.assign(y)
        } else {
            // Four single-band decoders: interleave their outputs into N x 4 x h x w.
            let shape = outputShape(batch: n), plane = shape[2] * shape[3]
            output.reshape(to: shape)
            for (j, d) in decoders.enumerated() {
                let band = d.forward(z, skips: skips)
                for s in 0..<n { (output.data + (s * 4 + j) * plane).update(from: band.data + s * plane, count: plane) }
            }
        }
        if scale != 1 { output.multiply(by: scale) }
        return output
    }

    public func backward(_ dy: Tensor) -> Tensor {
        dy.expectShape(outputShape(batch: dy.shape[0]), "\(config.architecture.rawValue).backward output gradient")
        var dy = dy
        if config.outputScale != 1 {
            scaledGrad.assign(dy)
            scaledGrad.multiply(by: Float(config.outputScale))
            dy = scaledGrad
        }
        let n = dy.shape[0], plane = dy.shape[2] * dy.shape[3]
        var accumulated = [Bool](repeating: false, count: 4)
        for (j, d) in decoders.enumerated() {
            var g = dy
            if decoders.count > 1 {
                g = outputGrads[j]
                g.reshape(to: [n, 1, dy.shape[2], dy.shape[3]])
                for s in 0..<n { (g.data + s * plane).update(from: dy.data + (s * 4 + j) * plane, count: plane) }
            }
            let (dz, dskips) = d.backward(g)
            accumulate(dz, into: bottleneckGrad, first: j == 0)
            if dz !== g { dz.reclaim() }
            for (k, ds) in dskips.enumerated() {
                guard let ds else { continue }
                accumulate(ds, into: skipGrads[3 - k], first: !accumulated[3 - k])
                accumulated[3 - k] = true
                ds.reclaim()
            }
        }
        var g = bottleneck.backward(bottleneckGrad)
        for s in encoder.indices.reversed() {
            let next = encoder[s].backward(g, featureGradient: accumulated[s] ? skipGrads[s] : nil)
            if g !== bottleneckGrad && g !== next { g.reclaim() }
            g = next
        }
        return g
    }

    private func accumulate(_ t: Tensor, into sum: Tensor, first: Bool) {
        if first { sum.assign(t) } else { sum.add(t) }
    }
}

/// Named children without a forward pass of their own (PyTorch's `nn.ModuleList`).
public final class ModuleList: Module {
    public let modules: [Module]
    public init(_ modules: [Module]) { self.modules = modules }
    public var children: [(String, Module)] { modules.enumerated().map { (String($0), $1) } }
}

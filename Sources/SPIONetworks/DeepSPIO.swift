import Foundation
import SPIOTensor

/// Sizes of a DeepSPIO network (networks.md); `preset(_:)` gives `tiny`, `small` and `paper`.
public struct DeepSPIOConfig: Codable, Equatable, Sendable {
    /// Input height = width in pixels (a multiple of 16).
    public var inputSize: Int
    /// View Line channels (even and odd stripes).
    public var inputChannels: Int = 2
    /// F: encoder stage s has F * 2^s filters.
    public var baseFilters: Int
    /// B: filters of the residual bottleneck.
    public var bottleneckFilters: Int
    /// Residual blocks in the bottleneck.
    public var residualBlocks: Int = 4
    /// Decoder stage widths; nil means [8F, 4F, 2F].
    public var decoderWidths: [Int]? = nil

    public init(inputSize: Int, baseFilters: Int, bottleneckFilters: Int) {
        self.inputSize = inputSize; self.baseFilters = baseFilters; self.bottleneckFilters = bottleneckFilters
    }

    /// The named presets of networks.md.
    public static func preset(_ name: String) -> DeepSPIOConfig? {
        switch name {
        case "tiny": return DeepSPIOConfig(inputSize: 32, baseFilters: 4, bottleneckFilters: 64)
        case "small": return DeepSPIOConfig(inputSize: 64, baseFilters: 16, bottleneckFilters: 256)
        case "paper": return DeepSPIOConfig(inputSize: 256, baseFilters: 32, bottleneckFilters: 512)
        default: return nil
        }
    }
    public static let presetNames = ["tiny", "small", "paper"]

    /// Decoder widths with the default filled in.
    public var resolvedDecoderWidths: [Int] { decoderWidths ?? [8 * baseFilters, 4 * baseFilters, 2 * baseFilters] }

    /// Canonical JSON (sorted keys), as stored in checkpoints.
    public var json: String {
        let enc = JSONEncoder(); enc.outputFormatting = [.sortedKeys]
        return String(data: try! enc.encode(self), encoding: .utf8)!
    }
}

/// Named children without a forward pass of their own (PyTorch's `nn.ModuleList`).
public final class ModuleList: Module {
    public let modules: [Module]
    public init(_ modules: [Module]) { self.modules = modules }
    public var children: [(String, Module)] { modules.enumerated().map { (String($0), $1) } }
}

/// DeepSPIO (paper section 4): a strided-convolution encoder, a residual bottleneck and four
/// parallel decoders, one per db4 wavelet band (LL, LH, HL, HH). Input N x 2 x H x W; output
/// N x 4 x H/2 x W/2, the predicted bands in that order.
public final class DeepSPIO: Layer {
    public let config: DeepSPIOConfig
    public let encoder: Sequential
    public let bottleneck: Sequential
    public let decoders: [Sequential]
    private let decoderList: ModuleList
    private let output = Tensor(shape: [0])
    private let bandGrads: [Tensor]
    private let bottleneckGrad = Tensor(shape: [0])

    /// Builds the network and initialises it (He) from `seed`.
    public init(_ config: DeepSPIOConfig, seed: UInt64 = 0, workspace: Workspace = Workspace()) {
        precondition(config.inputSize > 0 && config.inputSize % 16 == 0,
                     "DeepSPIO inputSize must be a positive multiple of 16, got \(config.inputSize)")
        precondition(config.resolvedDecoderWidths.count == 3, "DeepSPIO has 3 decoder stages, got widths \(config.resolvedDecoderWidths)")
        self.config = config
        let ws = workspace
        var stages: [Layer] = []
        var cin = config.inputChannels
        for s in 0..<4 {
            let f = config.baseFilters << s
            stages.append(Sequential([
                Conv2D(cin, f, kernelSize: 3, workspace: ws), BatchNorm2D(f), ReLU(),
                Conv2D(f, f, kernelSize: 3, workspace: ws), BatchNorm2D(f), ReLU(),
                Conv2D(f, f, kernelSize: 3, stride: 2, workspace: ws),
            ]))
            cin = f
        }
        encoder = Sequential(stages)
        var blocks: [Layer] = []
        for _ in 0..<config.residualBlocks {
            blocks.append(ResidualBlock(cin, config.bottleneckFilters, projection: true, workspace: ws))
            cin = config.bottleneckFilters
        }
        bottleneck = Sequential(blocks)
        var decs: [Sequential] = []
        for _ in 0..<4 {
            var layers: [Layer] = []
            var c = cin
            for w in config.resolvedDecoderWidths {
                layers += [ConvTranspose2D.doubling3x3(c, w, workspace: ws), LeakyReLU(slope: 0.01), BatchNorm2D(w),
                           Conv2D(w, w, kernelSize: 3, workspace: ws), LeakyReLU(slope: 0.01), BatchNorm2D(w)]
                c = w
            }
            layers.append(Conv2D(c, 1, kernelSize: 3, workspace: ws))
            decs.append(Sequential(layers))
        }
        decoders = decs
        decoderList = ModuleList(decs)
        bandGrads = (0..<4).map { _ in Tensor(shape: [0]) }
        firstConv.computesInputGradient = false
        HeInitialiser.initialise(self, seed: seed)
    }

    /// The first convolution (its input gradient is skipped unless saliency asks for it).
    public var firstConv: Conv2D { (encoder.layers[0] as! Sequential).layers[0] as! Conv2D }

    public var children: [(String, Module)] { [("encoder", encoder), ("bottleneck", bottleneck), ("decoders", decoderList)] }

    public func forward(_ x: Tensor) -> Tensor {
        x.expectShape([x.shape.first ?? 0, config.inputChannels, config.inputSize, config.inputSize], "DeepSPIO input")
        let z = bottleneck(encoder(x))
        let half = config.inputSize / 2, plane = half * half, n = x.shape[0]
        output.reshape(to: [n, 4, half, half])
        for (j, d) in decoders.enumerated() {
            let band = d(z)
            for s in 0..<n { (output.data + (s * 4 + j) * plane).update(from: band.data + s * plane, count: plane) }
        }
        return output
    }

    public func backward(_ dy: Tensor) -> Tensor {
        dy.expectShape(output.shape, "DeepSPIO.backward output gradient")
        let (n, plane) = (dy.shape[0], dy.shape[2] * dy.shape[3])
        for (j, d) in decoders.enumerated() {
            let g = bandGrads[j]
            g.reshape(to: [n, 1, dy.shape[2], dy.shape[3]])
            for s in 0..<n { (g.data + s * plane).update(from: dy.data + (s * 4 + j) * plane, count: plane) }
            let dz = d.backward(g)
            if j == 0 { bottleneckGrad.assign(dz) } else {
                let (a, o) = (dz.data, bottleneckGrad.data)
                for i in 0..<dz.count { o[i] += a[i] }
            }
        }
        return encoder.backward(bottleneck.backward(bottleneckGrad))
    }
}

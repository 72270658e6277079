import SPIOTensor

/// One encoder stage: a body of layers at full resolution, then one layer that halves it (a
/// stride-2 convolution or a 2x2 max-pool). The body's output, `features`, is what a U-Net style
/// skip connection reads; its gradient from the skip joins the one coming back through the
/// down-sampling layer. Children are numbered like `nn.Sequential` (body, then the down-sampling).
public final class EncoderStage: Layer, IndexedLayerContainer {
    public private(set) var layers: [Layer]
    /// The body's output of the last forward pass.
    public private(set) var features: Tensor?
    private let featureGrad = Tensor(shape: [0])

    public init(body: [Layer], downsampling: Layer) {
        precondition(!body.isEmpty, "an encoder stage needs at least one body layer")
        layers = body + [downsampling]
    }

    public var children: [(String, Module)] { layers.enumerated().map { (String($0), $1 as Module) } }
    public func replaceLayer(at index: Int, with layer: Layer) { layers[index] = layer }

    public func forward(_ x: Tensor) -> Tensor {
        let f = layers.dropLast().reduce(x) { $1.forward($0) }
        features = f
        return layers.last!.forward(f)
    }

    public func backward(_ dy: Tensor) -> Tensor { backward(dy, featureGradient: nil) }

    /// Backward with an extra gradient arriving at `features` (from skip connections).
    public func backward(_ dy: Tensor, featureGradient: Tensor?) -> Tensor {
        var g = layers.last!.backward(dy)
        if let extra = featureGradient {
            featureGrad.assign(g)
            featureGrad.add(extra)
            if g !== dy { g.reclaim() }
            g = featureGrad
        }
        let dx = backwardChain(layers.dropLast(), g)
        if g !== dy && g !== dx { g.reclaim() }
        return dx
    }
}

/// One decoder stage: up-sampling layers, an optional channel concatenation with encoder features
/// (skip connection), then a body. Children are numbered through both lists.
public final class DecoderStage: Module, IndexedLayerContainer {
    public private(set) var layers: [Layer]
    private let upCount: Int
    private let concat = Concat()
    private var usedSkip = false

    public init(up: [Layer], body: [Layer]) {
        layers = up + body
        upCount = up.count
    }

    public var children: [(String, Module)] { layers.enumerated().map { (String($0), $1 as Module) } }
    public func replaceLayer(at index: Int, with layer: Layer) { layers[index] = layer }

    public func forward(_ x: Tensor, skip: Tensor?) -> Tensor {
        var h = layers[..<upCount].reduce(x) { $1.forward($0) }
        usedSkip = skip != nil
        if let skip { h = concat(h, skip) }
        return layers[upCount...].reduce(h) { $1.forward($0) }
    }

    /// Gradients for the stage input and, when the forward pass had one, the skip input.
    public func backward(_ dy: Tensor) -> (input: Tensor, skip: Tensor?) {
        var g = backwardChain(layers[upCount...], dy)
        var dSkip: Tensor?
        if usedSkip {
            let body = g
            (g, dSkip) = concat.backward(body)
            if body !== dy { body.reclaim() }
        }
        let dx = backwardChain(layers[..<upCount], g)
        if g !== dy && g !== dx { g.reclaim() }
        return (dx, dSkip)
    }
}

/// A decoder: stages, then a final convolution to the output channels.
public final class UpsamplingDecoder: Module, LayerContainer {
    public let stages: [DecoderStage]
    /// The final convolution (a `Layer` so a probe can stand in front of it).
    public private(set) var head: Layer

    public init(stages: [DecoderStage], head: Conv2D) { self.stages = stages; self.head = head }

    public var layerNames: [String] { [String(stages.count)] }
    public func layer(named name: String) -> Layer? { name == String(stages.count) ? head : nil }
    public func replaceLayer(named name: String, with layer: Layer) {
        precondition(name == String(stages.count)); head = layer
    }

    public var children: [(String, Module)] {
        stages.enumerated().map { (String($0), $1 as Module) } + [(String(stages.count), head)]
    }

    /// `skips[k]` feeds stage k (nil: no skip).
    public func forward(_ z: Tensor, skips: [Tensor?]) -> Tensor {
        head(zip(stages, skips).reduce(z) { $1.0.forward($0, skip: $1.1) })
    }

    /// Gradient for the decoder input and per stage for its skip input.
    public func backward(_ dy: Tensor) -> (input: Tensor, skips: [Tensor?]) {
        var g = head.backward(dy)
        var skips = [Tensor?](repeating: nil, count: stages.count)
        for k in stages.indices.reversed() {
            let next: Tensor
            (next, skips[k]) = stages[k].backward(g)
            if g !== dy && g !== next { g.reclaim() }
            g = next
        }
        return (g, skips)
    }
}

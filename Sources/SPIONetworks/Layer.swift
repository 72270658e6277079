import SPIOTensor

/// A trainable tensor with its gradient, accumulated by `backward` calls until `zeroGrad()`.
public final class Parameter {
    /// The current value.
    public let value: Tensor
    /// d(loss)/d(value), same shape as `value`.
    public let grad: Tensor

    public init(shape: [Int]) {
        value = Tensor(shape: shape)
        grad = Tensor(shape: shape)
    }

    /// Sets the gradient to zero.
    public func zeroGrad() { grad.fill(0) }
}

/// Anything with named parameters and buffers: a layer or a model made of layers.
///
/// A module lists its own tensors and its children; names are joined with dots and follow
/// PyTorch's `state_dict` (`encoder.0.3.weight`, `...running_mean`), so checkpoints load into the
/// PyTorch peer unchanged.
public protocol Module: AnyObject {
    /// Named sub-modules, in construction order.
    var children: [(String, Module)] { get }
    /// This module's own trainable tensors (not its children's).
    var ownParameters: [(String, Parameter)] { get }
    /// This module's own non-trainable state (BatchNorm running statistics).
    var ownBuffers: [(String, Tensor)] { get }
    /// Switches between training (batch statistics, activations kept for backward) and evaluation;
    /// the default passes the flag to the children.
    func setTraining(_ training: Bool)
    /// Whether the module is in training mode: a layer with a mode of its own says its own; the
    /// default is true when every child is training (a module without children has no mode).
    var isTraining: Bool { get }
}

public extension Module {
    var children: [(String, Module)] { [] }
    var ownParameters: [(String, Parameter)] { [] }
    var ownBuffers: [(String, Tensor)] { [] }
    func setTraining(_ training: Bool) { for (_, c) in children { c.setTraining(training) } }
    var isTraining: Bool { children.allSatisfy { $0.1.isTraining } }

    /// Runs `body`, then puts every layer back in the mode it was in before, whatever `body` did to
    /// the modes or threw: the one way code changes a model's modes for a while.
    func preservingModes<T>(_ body: () throws -> T) rethrows -> T {
        var leaves: [(Module, Bool)] = []
        visit { _, m in if m.children.isEmpty { leaves.append((m, m.isTraining)) } }
        defer { for (m, was) in leaves { m.setTraining(was) } }
        return try body()
    }

    /// Runs `body` with every layer in evaluation mode (running statistics, nothing kept for
    /// backward), then restores each layer's mode: how evaluation, summaries and benches run a model.
    func withEvaluationMode<T>(_ body: () throws -> T) rethrows -> T {
        try preservingModes {
            setTraining(false)
            return try body()
        }
    }

    /// Calls `body` on this module and every descendant, depth first, with dotted names.
    func visit(prefix: String = "", _ body: (String, Module) -> Void) {
        body(prefix, self)
        for (name, child) in children { child.visit(prefix: qualified(prefix, name), body) }
    }
    /// Trainable parameters with dotted names, in a fixed (construction) order.
    func namedParameters(prefix: String = "") -> [(String, Parameter)] {
        var out: [(String, Parameter)] = []
        visit(prefix: prefix) { name, m in for (n, p) in m.ownParameters { out.append((qualified(name, n), p)) } }
        return out
    }
    /// Buffers with dotted names, in a fixed order.
    func namedBuffers(prefix: String = "") -> [(String, Tensor)] {
        var out: [(String, Tensor)] = []
        visit(prefix: prefix) { name, m in for (n, b) in m.ownBuffers { out.append((qualified(name, n), b)) } }
        return out
    }
    /// Calls `body` on this module and every descendant, depth first, without building names.
    func forEachModule(_ body: (Module) -> Void) {
        body(self)
        for (_, child) in children { child.forEachModule(body) }
    }
    /// All trainable parameters, in the order of `namedParameters()`.
    var parameters: [Parameter] {
        var out: [Parameter] = []
        forEachModule { m in for (_, p) in m.ownParameters { out.append(p) } }
        return out
    }
    /// Zeroes every parameter gradient.
    func zeroGrad() { forEachModule { m in for (_, p) in m.ownParameters { p.zeroGrad() } } }
    /// Total number of trainable scalars.
    var parameterCount: Int { parameters.reduce(0) { $0 + $1.value.count } }
}

/// Joins a prefix and a name with a dot, as PyTorch does.
@inline(__always) func qualified(_ prefix: String, _ name: String) -> String {
    prefix.isEmpty ? name : prefix + "." + name
}

/// A one-input, one-output layer with an explicit backward pass.
///
/// `forward` returns a tensor the layer owns and overwrites on its next call. In training mode it
/// keeps what `backward` needs (usually references to its input or output, not copies).
/// `backward` takes d(loss)/d(output), adds parameter gradients into each `Parameter.grad`, and
/// returns d(loss)/d(input) (also layer-owned).
public protocol Layer: Module {
    func forward(_ x: Tensor) -> Tensor
    func backward(_ dy: Tensor) -> Tensor
}

public extension Layer {
    func callAsFunction(_ x: Tensor) -> Tensor { forward(x) }
}

/// Backward through `layers`, last first, each layer's input gradient fed to the layer before
/// it. Once the layer before has consumed a gradient, its storage goes back to the pool
/// (`Tensor.reclaim`), so a chain holds two gradients at a time instead of one per layer (the
/// memory PyTorch frees as its backward pass goes). The caller's `dy` and the returned gradient
/// are never reclaimed.
public func backwardChain<L: BidirectionalCollection>(_ layers: L, _ dy: Tensor) -> Tensor where L.Element == Layer {
    var g = dy
    for layer in layers.reversed() {
        let next = layer.backward(g)
        if g !== dy && g !== next { g.reclaim() }
        g = next
    }
    return g
}

/// Layers applied in order; parameters are named by position like `torch.nn.Sequential`.
public final class Sequential: Layer, IndexedLayerContainer {
    public private(set) var layers: [Layer]

    public init(_ layers: [Layer]) { self.layers = layers }

    public func forward(_ x: Tensor) -> Tensor { layers.reduce(x) { $1.forward($0) } }
    public func backward(_ dy: Tensor) -> Tensor { backwardChain(layers, dy) }

    public var children: [(String, Module)] { layers.enumerated().map { (String($0), $1 as Module) } }
    public func replaceLayer(at index: Int, with layer: Layer) { layers[index] = layer }
}

import SPIOTensor

/// A module whose child layers can be swapped by name (Sequential, the encoder and decoder
/// stages, a decoder's head), so a `LayerProbe` can be put in front of any named layer and taken
/// out again.
public protocol LayerContainer: Module {
    /// Names (as in `children`) of the children that are layers.
    var layerNames: [String] { get }
    func layer(named name: String) -> Layer?
    func replaceLayer(named name: String, with layer: Layer)
}

/// Containers whose layers are a numbered list.
public protocol IndexedLayerContainer: LayerContainer {
    var layers: [Layer] { get }
    func replaceLayer(at index: Int, with layer: Layer)
}

public extension IndexedLayerContainer {
    var layerNames: [String] { layers.indices.map(String.init) }
    func layer(named name: String) -> Layer? { Int(name).flatMap { layers.indices.contains($0) ? layers[$0] : nil } }
    func replaceLayer(named name: String, with layer: Layer) { replaceLayer(at: Int(name)!, with: layer) }
}

/// Wraps a layer and keeps copies of its last output and of the gradient that reached that output:
/// what Grad-CAM needs (feature maps A and dy/dA) and what the model summary reads (shapes).
public final class LayerProbe: Layer {
    public let inner: Layer
    /// The wrapped layer's last output, copied.
    public let output = Tensor(shape: [0])
    /// d(loss)/d(output) of the last backward pass, copied.
    public let outputGradient = Tensor(shape: [0])

    public init(_ inner: Layer) { self.inner = inner }

    public var children: [(String, Module)] { inner.children }
    public var ownParameters: [(String, Parameter)] { inner.ownParameters }
    public var ownBuffers: [(String, Tensor)] { inner.ownBuffers }
    public func setTraining(_ training: Bool) { inner.setTraining(training) }
    public var isTraining: Bool { inner.isTraining }

    public func forward(_ x: Tensor) -> Tensor {
        let y = inner.forward(x)
        output.assign(y)
        return y
    }

    public func backward(_ dy: Tensor) -> Tensor {
        outputGradient.assign(dy)
        return inner.backward(dy)
    }

    /// Puts probes in front of the layers named `names` (dotted state_dict paths, e.g.
    /// "encoder.3.5") inside `model`, runs `body`, and takes them out again, even on a throw.
    public static func attach<T>(to model: Module, at names: [String], _ body: ([LayerProbe]) throws -> T) throws -> T {
        var placed: [(LayerContainer, String, LayerProbe)] = []
        defer { for (c, n, p) in placed.reversed() { c.replaceLayer(named: n, with: p.inner) } }
        for name in names {
            let (container, child) = try locate(name, in: model)
            let probe = LayerProbe(container.layer(named: child)!)
            container.replaceLayer(named: child, with: probe)
            placed.append((container, child, probe))
        }
        return try body(placed.map(\.2))
    }

    /// The container holding the layer called `name`, and the layer's name there.
    public static func locate(_ name: String, in model: Module) throws -> (LayerContainer, String) {
        var parents: [String: Module] = [:]
        model.visit { n, m in parents[n] = m }
        let parts = name.split(separator: ".").map(String.init)
        guard let last = parts.last,
            let container = parents[parts.dropLast().joined(separator: ".")] as? LayerContainer,
            container.layer(named: last) != nil
        else {
            throw ProbeError.notALayer(name, layerNames(in: model))
        }
        return (container, last)
    }

    /// Names of every layer a probe can be attached to.
    public static func layerNames(in model: Module) -> [String] {
        var out: [String] = []
        model.visit { n, m in
            if let c = m as? LayerContainer { for child in c.layerNames { out.append(qualified(n, child)) } }
        }
        return out
    }
}

/// A probe target that names no layer.
public enum ProbeError: Error, CustomStringConvertible {
    case notALayer(String, [String])
    public var description: String {
        switch self {
        case let .notALayer(name, known):
            let sample = known.count > 12 ? known.prefix(6) + ["..."] + known.suffix(6) : known[...]
            return "'\(name)' is not a layer of this model; layers are named like: \(sample.joined(separator: ", "))"
        }
    }
}

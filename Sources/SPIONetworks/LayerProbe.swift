import SPIOTensor

/// A module whose layers can be swapped by index (Sequential and the encoder/decoder stages), so a
/// `LayerProbe` can be put in front of any named layer and taken out again.
public protocol LayerContainer: Module {
    var layers: [Layer] { get }
    func replaceLayer(at index: Int, with layer: Layer)
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
        var placed: [(LayerContainer, Int, LayerProbe)] = []
        defer { for (c, i, p) in placed.reversed() { c.replaceLayer(at: i, with: p.inner) } }
        for name in names {
            let (container, index) = try locate(name, in: model)
            let probe = LayerProbe(container.layers[index])
            container.replaceLayer(at: index, with: probe)
            placed.append((container, index, probe))
        }
        return try body(placed.map(\.2))
    }

    /// The container holding the layer called `name`, and its index there.
    public static func locate(_ name: String, in model: Module) throws -> (LayerContainer, Int) {
        var parents: [String: Module] = [:]
        model.visit { n, m in parents[n] = m }
        let parts = name.split(separator: ".").map(String.init)
        guard let last = parts.last, let index = Int(last) else { throw ProbeError.notALayer(name, layerNames(in: model)) }
        let parentName = parts.dropLast().joined(separator: ".")
        guard let container = parents[parentName] as? LayerContainer, container.layers.indices.contains(index) else {
            throw ProbeError.notALayer(name, layerNames(in: model))
        }
        return (container, index)
    }

    /// Names of every layer a probe can be attached to.
    public static func layerNames(in model: Module) -> [String] {
        var out: [String] = []
        model.visit { n, m in
            if let c = m as? LayerContainer { for i in c.layers.indices { out.append(qualified(n, String(i))) } }
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

import SPIOTensor

/// max(x, 0). With `guided` set, backward also stops negative gradients (guided back-propagation,
/// used for saliency maps).
public final class ReLU: Layer {
    public var guided = false
    /// Overwrite the input with the output instead of keeping a copy (backward reads only the
    /// output's sign). Only for an input nothing else reads afterwards: a BatchNorm's or a
    /// convolution's output, whose backward passes read their inputs, not their outputs.
    public let inPlace: Bool
    private var output: Tensor?
    private let out = Tensor(shape: [0])
    private let inputGrad = Tensor(shape: [0])

    public init(inPlace: Bool = false) { self.inPlace = inPlace }

    /// The output of the last forward call (Grad-CAM reads feature maps here).
    public var lastOutput: Tensor? { output }

    public func forward(_ x: Tensor) -> Tensor {
        let y = inPlace ? x : out
        y.reshape(to: x.shape)
        let (src, dst) = (x.data, y.data)
        Engine.parallelFor(x.count, minimumPerThread: 1 << 14) { r in for i in r { dst[i] = Swift.max(src[i], 0) } }
        output = y
        return y
    }

    public func backward(_ dy: Tensor) -> Tensor {
        guard let y = output else { preconditionFailure("ReLU.backward needs a forward first") }
        dy.expectShape(y.shape, "ReLU.backward output gradient")
        inputGrad.reshape(to: y.shape)
        let (yv, g, dx, guided) = (y.data, dy.data, inputGrad.data, guided)
        Engine.parallelFor(y.count, minimumPerThread: 1 << 14) { r in
            for i in r { dx[i] = yv[i] > 0 && (!guided || g[i] > 0) ? g[i] : 0 }
        }
        return inputGrad
    }
}

/// x for x > 0, slope * x otherwise (slope > 0), as in the DeepSPIO decoders (slope 0.01).
/// With `guided` set, backward also stops negative gradients (guided back-propagation).
public final class LeakyReLU: Layer {
    public let slope: Float
    public var guided = false
    /// As `ReLU.inPlace`: the output overwrites the input.
    public let inPlace: Bool
    private var output: Tensor?
    private let out = Tensor(shape: [0])
    private let inputGrad = Tensor(shape: [0])

    public init(slope: Float = 0.01, inPlace: Bool = false) {
        precondition(slope > 0, "LeakyReLU slope must be positive (the backward pass reads the output's sign)")
        self.slope = slope; self.inPlace = inPlace
    }

    public func forward(_ x: Tensor) -> Tensor {
        let y = inPlace ? x : out
        y.reshape(to: x.shape)
        let (src, dst, a) = (x.data, y.data, slope)
        Engine.parallelFor(x.count, minimumPerThread: 1 << 14) { r in
            for i in r { dst[i] = src[i] > 0 ? src[i] : a * src[i] }
        }
        output = y
        return y
    }

    public func backward(_ dy: Tensor) -> Tensor {
        guard let y = output else { preconditionFailure("LeakyReLU.backward needs a forward first") }
        dy.expectShape(y.shape, "LeakyReLU.backward output gradient")
        inputGrad.reshape(to: y.shape)
        let (yv, g, dx, a, guided) = (y.data, dy.data, inputGrad.data, slope, guided)
        Engine.parallelFor(y.count, minimumPerThread: 1 << 14) { r in
            for i in r { dx[i] = guided && g[i] <= 0 ? 0 : (yv[i] > 0 ? g[i] : a * g[i]) }
        }
        return inputGrad
    }
}

/// 2x2 max pooling with stride 2 (odd trailing rows and columns are dropped, as in PyTorch).
public final class MaxPool2D: Layer {
    private var inputShape: [Int] = []
    private var argmax: [Int32] = []
    private let out = Tensor(shape: [0])
    private let inputGrad = Tensor(shape: [0])

    public init() {}

    public func forward(_ x: Tensor) -> Tensor {
        x.expectRank4("MaxPool2D input")
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (oh, ow) = (h / 2, w / 2)
        precondition(oh > 0 && ow > 0, "MaxPool2D needs H and W of at least 2, got shape \(x.shape)")
        out.reshape(to: [n, c, oh, ow])
        inputShape = x.shape
        if argmax.count != out.count { argmax = Array(repeating: 0, count: out.count) }
        let (src, dst) = (x.data, out.data)
        argmax.withUnsafeMutableBufferPointer { am in
            Engine.parallelFor(n * c) { r in
                for plane in r {
                    let s = src + plane * h * w
                    for oy in 0..<oh {
                        for ox in 0..<ow {
                            let j0 = (2 * oy) * w + 2 * ox
                            var best = j0
                            if s[j0 + 1] > s[best] { best = j0 + 1 }
                            if s[j0 + w] > s[best] { best = j0 + w }
                            if s[j0 + w + 1] > s[best] { best = j0 + w + 1 }
                            let o = plane * oh * ow + oy * ow + ox
                            dst[o] = s[best]
                            am[o] = Int32(best)
                        }
                    }
                }
            }
        }
        return out
    }

    public func backward(_ dy: Tensor) -> Tensor {
        dy.expectShape(out.shape, "MaxPool2D.backward output gradient")
        inputGrad.reshape(to: inputShape)
        inputGrad.fill(0)
        let (plane, outPlane) = (inputShape[2] * inputShape[3], out.shape[2] * out.shape[3])
        let (g, dx) = (dy.data, inputGrad.data)
        argmax.withUnsafeBufferPointer { am in
            Engine.parallelFor(inputShape[0] * inputShape[1]) { r in
                for p in r { for o in (p * outPlane)..<((p + 1) * outPlane) { dx[p * plane + Int(am[o])] += g[o] } }
            }
        }
        return inputGrad
    }
}

/// Element-wise sum of two same-shaped tensors (residual connections).
public final class Add {
    private let out = Tensor(shape: [0])

    public init() {}

    public func forward(_ a: Tensor, _ b: Tensor) -> Tensor {
        precondition(a.shape == b.shape, "Add needs equal shapes, got \(a.shape) and \(b.shape)")
        out.reshape(to: a.shape)
        let (x, y, o) = (a.data, b.data, out.data)
        Engine.parallelFor(a.count, minimumPerThread: 1 << 14) { r in for i in r { o[i] = x[i] + y[i] } }
        return out
    }

    public func callAsFunction(_ a: Tensor, _ b: Tensor) -> Tensor { forward(a, b) }

    /// Both inputs receive the output gradient unchanged.
    public func backward(_ dy: Tensor) -> (Tensor, Tensor) { (dy, dy) }
}

/// Concatenation of two NCHW tensors along channels (U-Net skips).
public final class Concat {
    private var split = 0
    private let out = Tensor(shape: [0])
    private let gradA = Tensor(shape: [0]), gradB = Tensor(shape: [0])

    public init() {}

    public func forward(_ a: Tensor, _ b: Tensor) -> Tensor {
        a.expectRank4("Concat first input"); b.expectRank4("Concat second input")
        precondition(
            a.shape[0] == b.shape[0] && a.shape[2] == b.shape[2] && a.shape[3] == b.shape[3],
            "Concat needs equal N, H, W, got \(a.shape) and \(b.shape)")
        let (n, ca, cb, plane) = (a.shape[0], a.shape[1], b.shape[1], a.shape[2] * a.shape[3])
        split = ca
        out.reshape(to: [n, ca + cb, a.shape[2], a.shape[3]])
        for s in 0..<n {
            (out.data + s * (ca + cb) * plane).update(from: a.data + s * ca * plane, count: ca * plane)
            (out.data + (s * (ca + cb) + ca) * plane).update(from: b.data + s * cb * plane, count: cb * plane)
        }
        gradA.reshape(to: a.shape); gradB.reshape(to: b.shape)
        return out
    }

    public func callAsFunction(_ a: Tensor, _ b: Tensor) -> Tensor { forward(a, b) }

    /// Splits the output gradient back into the two inputs' gradients.
    public func backward(_ dy: Tensor) -> (Tensor, Tensor) {
        dy.expectShape(out.shape, "Concat.backward output gradient")
        let (n, ca, cb, plane) = (gradA.shape[0], split, gradB.shape[1], out.shape[2] * out.shape[3])
        for s in 0..<n {
            (gradA.data + s * ca * plane).update(from: dy.data + s * (ca + cb) * plane, count: ca * plane)
            (gradB.data + s * cb * plane).update(from: dy.data + (s * (ca + cb) + ca) * plane, count: cb * plane)
        }
        return (gradA, gradB)
    }
}

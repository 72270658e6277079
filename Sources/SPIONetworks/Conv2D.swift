import SPIOTensor

/// Largest column matrix (floats) built at once; bigger batches are lowered in groups of samples.
/// A shape-only rule, so results do not depend on the thread count. Tests lower it to force groups.
nonisolated(unsafe) var maxColumnFloats = 1 << 25

/// 2D convolution (cross-correlation, as in PyTorch) through im2col and one sgemm per sample group.
/// Weight layout O x C x kH x kW, optional bias O.
public final class Conv2D: Layer {
    public let inChannels: Int, outChannels: Int, kernelSize: Int, stride: Int, padding: Int
    public let weight: Parameter
    public let bias: Parameter?
    /// Set to false on a network's first layer to skip computing the unused input gradient.
    public var computesInputGradient = true

    /// Shape of the last forward input (benchmarks and model summaries read it).
    public private(set) var inputShape: [Int] = []

    private let workspace: Workspace
    private var training = true
    private var input: Tensor?
    private var geometry: ConvGeometry?
    private let output = Tensor(shape: [0])
    private let inputGrad = Tensor(shape: [0])

    public init(_ inChannels: Int, _ outChannels: Int, kernelSize: Int, stride: Int = 1, padding: Int? = nil,
                bias: Bool = true, workspace: Workspace) {
        precondition(inChannels > 0 && outChannels > 0 && kernelSize > 0 && stride > 0,
                     "Conv2D(\(inChannels), \(outChannels), k \(kernelSize), s \(stride)) needs positive sizes")
        self.inChannels = inChannels; self.outChannels = outChannels
        self.kernelSize = kernelSize; self.stride = stride
        self.padding = padding ?? (kernelSize - 1) / 2
        weight = Parameter(shape: [outChannels, inChannels, kernelSize, kernelSize])
        self.bias = bias ? Parameter(shape: [outChannels]) : nil
        self.workspace = workspace
    }

    public func setTraining(_ training: Bool) { self.training = training; if !training { input = nil } }

    public var ownParameters: [(String, Parameter)] { [("weight", weight)] + (bias.map { [("bias", $0)] } ?? []) }

    private func geometry(for x: Tensor) -> ConvGeometry {
        x.expectRank4("Conv2D input")
        precondition(x.shape[1] == inChannels, "Conv2D expects \(inChannels) input channels, got shape \(x.shape)")
        if let g = geometry, g.inH == x.shape[2], g.inW == x.shape[3] { return g }
        let g = ConvGeometry(channels: inChannels, inH: x.shape[2], inW: x.shape[3],
                             kernelH: kernelSize, kernelW: kernelSize, stride: stride, padding: padding)
        geometry = g
        return g
    }

    private func groupSize(_ g: ConvGeometry, samples: Int) -> Int {
        Swift.max(1, Swift.min(samples, maxColumnFloats / Swift.max(1, g.rows * g.outPlane)))
    }

    public func forward(_ x: Tensor) -> Tensor {
        let g = geometry(for: x)
        inputShape = x.shape
        let n = x.shape[0], plane = g.outPlane
        output.reshape(to: [n, outChannels, g.outH, g.outW])
        let group = groupSize(g, samples: n)
        let col = workspace.buffer(0, count: g.rows * group * plane)
        let tmp = workspace.buffer(1, count: outChannels * group * plane)
        var n0 = 0
        while n0 < n {
            let gn = Swift.min(group, n - n0), cols = gn * plane
            g.im2col(x.data + n0 * g.inPlaneVolume, samples: gn, into: col)
            Gemm.sgemm(m: outChannels, n: cols, k: g.rows, a: weight.value.data, b: col, c: tmp)
            if let bias {
                let b = bias.value.data
                Engine.parallelFor(outChannels) { r in
                    for o in r { let row = tmp + o * cols, bo = b[o]; for i in 0..<cols { row[i] += bo } }
                }
            }
            Layout.cnToNCHW(tmp, samples: gn, channels: outChannels, plane: plane,
                            into: output.data + n0 * outChannels * plane)
            n0 += gn
        }
        input = training ? x : nil
        return output
    }

    public func backward(_ dy: Tensor) -> Tensor {
        guard let x = input, let g = geometry else { preconditionFailure("Conv2D.backward needs a training-mode forward first") }
        let n = x.shape[0], plane = g.outPlane
        dy.expectShape([n, outChannels, g.outH, g.outW], "Conv2D.backward output gradient")
        if computesInputGradient { inputGrad.reshape(to: x.shape); inputGrad.fill(0) } else { inputGrad.reshape(to: [0]) }
        let group = groupSize(g, samples: n)
        let col = workspace.buffer(0, count: g.rows * group * plane)
        let dyCN = workspace.buffer(1, count: outChannels * group * plane)
        let dcol = computesInputGradient ? workspace.buffer(2, count: g.rows * group * plane) : col
        var n0 = 0
        while n0 < n {
            let gn = Swift.min(group, n - n0), cols = gn * plane
            g.im2col(x.data + n0 * g.inPlaneVolume, samples: gn, into: col)
            Layout.nchwToCN(dy.data + n0 * outChannels * plane, samples: gn, channels: outChannels, plane: plane, into: dyCN)
            Gemm.sgemm(transB: true, m: outChannels, n: g.rows, k: cols, a: dyCN, b: col, beta: 1, c: weight.grad.data)
            if let bias { addRowSums(dyCN, rows: outChannels, cols: cols, into: bias.grad.data) }
            if computesInputGradient {
                Gemm.sgemm(transA: true, m: g.rows, n: cols, k: outChannels, a: weight.value.data, b: dyCN, c: dcol)
                g.col2im(dcol, samples: gn, into: inputGrad.data + n0 * g.inPlaneVolume)
            }
            n0 += gn
        }
        return inputGrad
    }
}

/// out[r] += sum of row r of a rows x cols matrix (Double accumulation, one thread per row).
func addRowSums(_ m: UnsafePointer<Float>, rows: Int, cols: Int, into out: UnsafeMutablePointer<Float>) {
    Engine.parallelFor(rows) { range in
        for r in range {
            let row = m + r * cols
            var s = 0.0
            for i in 0..<cols { s += Double(row[i]) }
            out[r] += Float(s)
        }
    }
}

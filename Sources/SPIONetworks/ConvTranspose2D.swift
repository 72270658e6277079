import SPIOTensor

/// Transposed 2D convolution (PyTorch's `ConvTranspose2d`): the adjoint of a strided convolution.
/// Weight layout Cin x Cout x kH x kW. Output size (in - 1) * stride - 2 * padding + kernel + outputPadding.
/// DeepSPIO uses kernel 3, stride 2, padding 1, outputPadding 1 and the U-Net kernel 2, stride 2:
/// both exactly double H and W.
public final class ConvTranspose2D: Layer {
    public let inChannels: Int, outChannels: Int, kernelSize: Int, stride: Int, padding: Int, outputPadding: Int
    public let weight: Parameter
    public let bias: Parameter?

    /// Shape of the last forward input (benchmarks and model summaries read it).
    public private(set) var inputShape: [Int] = []

    private let workspace: Workspace
    private var training = true
    private var input: Tensor?
    private var geometry: ConvGeometry?
    private let output = Tensor(shape: [0])
    private let inputGrad = Tensor(shape: [0])

    public init(
        _ inChannels: Int, _ outChannels: Int, kernelSize: Int, stride: Int, padding: Int, outputPadding: Int,
        bias: Bool = true, workspace: Workspace
    ) {
        precondition(
            inChannels > 0 && outChannels > 0 && kernelSize > 0 && stride > 0,
            "ConvTranspose2D(\(inChannels), \(outChannels), k \(kernelSize), s \(stride)) needs positive sizes")
        precondition(
            outputPadding >= 0 && outputPadding < stride, "ConvTranspose2D outputPadding must lie in 0..<stride")
        self.inChannels = inChannels; self.outChannels = outChannels; self.kernelSize = kernelSize
        self.stride = stride; self.padding = padding; self.outputPadding = outputPadding
        weight = Parameter(shape: [inChannels, outChannels, kernelSize, kernelSize])
        self.bias = bias ? Parameter(shape: [outChannels]) : nil
        self.workspace = workspace
    }

    /// The 3x3, stride 2 layer that doubles H and W (DeepSPIO's decoders).
    public static func doubling3x3(_ cin: Int, _ cout: Int, workspace: Workspace) -> ConvTranspose2D {
        ConvTranspose2D(cin, cout, kernelSize: 3, stride: 2, padding: 1, outputPadding: 1, workspace: workspace)
    }

    /// The 2x2, stride 2 layer that doubles H and W (the U-Net's up-sampling).
    public static func doubling2x2(_ cin: Int, _ cout: Int, workspace: Workspace) -> ConvTranspose2D {
        ConvTranspose2D(cin, cout, kernelSize: 2, stride: 2, padding: 0, outputPadding: 0, workspace: workspace)
    }

    public var isTraining: Bool { training }
    public func setTraining(_ training: Bool) { self.training = training; if !training { input = nil } }

    public var ownParameters: [(String, Parameter)] { [("weight", weight)] + (bias.map { [("bias", $0)] } ?? []) }

    /// The convolution this layer is the adjoint of: from the output image back to the input grid.
    private func geometry(for x: Tensor) -> ConvGeometry {
        x.expectRank4("ConvTranspose2D input")
        precondition(
            x.shape[1] == inChannels, "ConvTranspose2D expects \(inChannels) input channels, got shape \(x.shape)")
        let (h, w) = (x.shape[2], x.shape[3])
        if let g = geometry, g.outH == h, g.outW == w { return g }
        let oh = (h - 1) * stride - 2 * padding + kernelSize + outputPadding
        let ow = (w - 1) * stride - 2 * padding + kernelSize + outputPadding
        let g = ConvGeometry(
            channels: outChannels, inH: oh, inW: ow, kernelH: kernelSize, kernelW: kernelSize,
            stride: stride, padding: padding)
        precondition(g.outH == h && g.outW == w, "ConvTranspose2D geometry \(g) does not invert input \(h)x\(w)")
        geometry = g
        return g
    }

    public func forward(_ x: Tensor) -> Tensor {
        let g = geometry(for: x)
        inputShape = x.shape
        let n = x.shape[0], planeIn = g.outPlane, outVolume = outChannels * g.inH * g.inW
        output.reshape(to: [n, outChannels, g.inH, g.inW])
        output.fill(0)
        if g.inH * g.inW >= perSampleMinimumPlane { return forwardPerSample(x, g) }
        let group = g.samplesPerGroup(n, maxColumnFloats: maxColumnFloats)
        let xCN = workspace.buffer(.product, count: inChannels * group * planeIn)
        let col = workspace.buffer(.columns, count: g.rows * group * planeIn)
        var n0 = 0
        while n0 < n {
            let gn = Swift.min(group, n - n0), cols = gn * planeIn
            Layout.nchwToCN(
                x.data + n0 * inChannels * planeIn, samples: gn, channels: inChannels, plane: planeIn, into: xCN)
            Gemm.sgemm(transA: true, m: g.rows, n: cols, k: inChannels, a: weight.value.data, b: xCN, c: col)
            g.col2im(col, samples: gn, into: output.data + n0 * outVolume)
            n0 += gn
        }
        if let bias { addChannelBias(output, bias.value.data) }
        input = training ? x : nil
        return output
    }

    public func backward(_ dy: Tensor) -> Tensor {
        guard let x = input, let g = geometry else {
            preconditionFailure("ConvTranspose2D.backward needs a training-mode forward first")
        }
        let n = x.shape[0], planeIn = g.outPlane, outVolume = outChannels * g.inH * g.inW
        dy.expectShape([n, outChannels, g.inH, g.inW], "ConvTranspose2D.backward output gradient")
        inputGrad.reshape(to: x.shape)
        if g.inH * g.inW >= perSampleMinimumPlane { return backwardPerSample(dy, x, g) }
        let group = g.samplesPerGroup(n, maxColumnFloats: maxColumnFloats)
        let col = workspace.buffer(.columns, count: g.rows * group * planeIn)
        let xCN = workspace.buffer(.product, count: inChannels * group * planeIn)
        let dxCN = workspace.buffer(.inputGradientLayout, count: inChannels * group * planeIn)
        var n0 = 0
        while n0 < n {
            let gn = Swift.min(group, n - n0), cols = gn * planeIn
            g.im2col(dy.data + n0 * outVolume, samples: gn, into: col)
            Layout.nchwToCN(
                x.data + n0 * inChannels * planeIn, samples: gn, channels: inChannels, plane: planeIn, into: xCN)
            Gemm.sgemm(transB: true, m: inChannels, n: g.rows, k: cols, a: xCN, b: col, beta: 1, c: weight.grad.data)
            Gemm.sgemm(m: inChannels, n: cols, k: g.rows, a: weight.value.data, b: col, c: dxCN)
            Layout.cnToNCHW(
                dxCN, samples: gn, channels: inChannels, plane: planeIn,
                into: inputGrad.data + n0 * inChannels * planeIn)
            n0 += gn
        }
        if let bias { addChannelSums(dy, into: bias.grad.data) }
        return inputGrad
    }
}

extension ConvTranspose2D {
    /// Large output planes, as in `Conv2D`: one sample at a time per thread. A sample's NCHW input
    /// is already the C x (H*W) matrix the GEMM needs, and col2im writes its NCHW output.
    private func forwardPerSample(_ x: Tensor, _ g: ConvGeometry) -> Tensor {
        let planeIn = g.outPlane, outVolume = outChannels * g.inH * g.inW
        let cols = (0..<Engine.threadCount).map { workspace.buffer(.perThread($0), count: g.rows * planeIn) }
        let (w, out) = (weight.value.data, output.data)
        Engine.parallelParts(x.shape[0]) { part, samples in
            for s in samples {
                Gemm.sgemm(
                    transA: true, m: g.rows, n: planeIn, k: inChannels, a: w, b: x.data + s * inChannels * planeIn,
                    c: cols[part])
                g.col2im(cols[part], samples: 1, into: out + s * outVolume)
            }
        }
        if let bias { addChannelBias(output, bias.value.data) }
        input = training ? x : nil
        return output
    }

    /// dW sums x_s col(dy_s)^T over fixed chunks of samples, added in chunk order (thread-count independent).
    private func backwardPerSample(_ dy: Tensor, _ x: Tensor, _ g: ConvGeometry) -> Tensor {
        let n = x.shape[0], planeIn = g.outPlane, outVolume = outChannels * g.inH * g.inW, kSize = inChannels * g.rows
        let chunks = (n + weightGradientChunk - 1) / weightGradientChunk
        let partials = workspace.buffer(.partialSums, count: chunks * kSize)
        let cols = (0..<Engine.threadCount).map { workspace.buffer(.perThread($0), count: g.rows * planeIn) }
        let (w, dx) = (weight.value.data, inputGrad.data)
        Engine.parallelParts(chunks) { part, chunkRange in
            let col = cols[part]
            for chunk in chunkRange {
                for s in (chunk * weightGradientChunk)..<Swift.min(n, (chunk + 1) * weightGradientChunk) {
                    let xs = x.data + s * inChannels * planeIn
                    g.im2col(dy.data + s * outVolume, samples: 1, into: col)
                    Gemm.sgemm(
                        transB: true, m: inChannels, n: g.rows, k: planeIn, a: xs, b: col,
                        beta: s == chunk * weightGradientChunk ? 0 : 1, c: partials + chunk * kSize)
                    Gemm.sgemm(m: inChannels, n: planeIn, k: g.rows, a: w, b: col, c: dx + s * inChannels * planeIn)
                }
            }
        }
        addChunkPartials(partials, chunks: chunks, count: kSize, into: weight.grad.data)
        if let bias { addChannelSums(dy, into: bias.grad.data) }
        return inputGrad
    }
}

/// x[n, c, :, :] += b[c].
func addChannelBias(_ x: Tensor, _ b: UnsafePointer<Float>) {
    let (n, c, plane) = (x.shape[0], x.shape[1], x.shape[2] * x.shape[3])
    Engine.parallelFor(c) { range in
        for ch in range {
            for s in 0..<n { let p = x.data + (s * c + ch) * plane; for i in 0..<plane { p[i] += b[ch] } }
        }
    }
}

/// out[c] += sum over n, h, w of x[n, c, h, w] (Double accumulation in a fixed order).
func addChannelSums(_ x: Tensor, into out: UnsafeMutablePointer<Float>) {
    ChannelReduction.addSums(
        x.data, samples: x.shape[0], channels: x.shape[1], plane: x.shape[2] * x.shape[3], into: out)
}

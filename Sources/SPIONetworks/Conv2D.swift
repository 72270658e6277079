import SPIOTensor

/// Largest column matrix (floats) built at once; bigger batches are lowered in groups of samples.
/// A shape-only rule, so results do not depend on the thread count. Tests lower it to force groups.
nonisolated(unsafe) var maxColumnFloats = 1 << 25
/// Output planes at least this large are lowered one sample at a time per thread (see
/// `forwardPerSample`). Chosen by `spio bench engine`; tests change it to cover both paths.
nonisolated(unsafe) var perSampleMinimumPlane = 256
/// Samples per weight-gradient partial sum in the per-sample path: a shape-only constant, so the
/// summation order, and the result, do not depend on the thread count.
let weightGradientChunk = 4

/// How a stride-1, padding-1 3 x 3 layer computes: the measured rule (`winogradVariant(...)`, then
/// `usesDirectByDefault(...)`), or one path forced everywhere where the shape allows it (tests and
/// `spio bench engine` compare them).
public enum Conv3x3Path: Sendable, Equatable { case measured, im2col, direct, winograd(Winograd3x3.Variant) }
nonisolated(unsafe) public var conv3x3Path = Conv3x3Path.measured

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
    /// How the last forward computed: `im2col`, `im2col per sample`, `tap planes` or a Winograd variant.
    public private(set) var lastPath = ""

    private let workspace: Workspace
    private var training = true
    private var input: Tensor?
    private var geometry: ConvGeometry?
    private let output = Tensor(shape: [0])
    private let inputGrad = Tensor(shape: [0])

    public init(
        _ inChannels: Int, _ outChannels: Int, kernelSize: Int, stride: Int = 1, padding: Int? = nil,
        bias: Bool = true, workspace: Workspace
    ) {
        precondition(
            inChannels > 0 && outChannels > 0 && kernelSize > 0 && stride > 0,
            "Conv2D(\(inChannels), \(outChannels), k \(kernelSize), s \(stride)) needs positive sizes")
        self.inChannels = inChannels; self.outChannels = outChannels
        self.kernelSize = kernelSize; self.stride = stride
        self.padding = padding ?? (kernelSize - 1) / 2
        weight = Parameter(shape: [outChannels, inChannels, kernelSize, kernelSize])
        self.bias = bias ? Parameter(shape: [outChannels]) : nil
        self.workspace = workspace
    }

    public var isTraining: Bool { training }
    public func setTraining(_ training: Bool) {
        self.training = training
        winogradWeightsFor = nil
        if !training { input = nil; updateRetention(0) }
    }

    deinit { if retainedFloats > 0 { workspace.release(retainedFloats) } }

    public var ownParameters: [(String, Parameter)] { [("weight", weight)] + (bias.map { [("bias", $0)] } ?? []) }

    private func geometry(for x: Tensor) -> ConvGeometry {
        x.expectRank4("Conv2D input")
        precondition(x.shape[1] == inChannels, "Conv2D expects \(inChannels) input channels, got shape \(x.shape)")
        if let g = geometry, g.inH == x.shape[2], g.inW == x.shape[3] { return g }
        let g = ConvGeometry(
            channels: inChannels, inH: x.shape[2], inW: x.shape[3],
            kernelH: kernelSize, kernelW: kernelSize, stride: stride, padding: padding)
        geometry = g
        return g
    }

    /// The Winograd form of this layer at the plane size of `g`, or nil for the im2col paths.
    private func winograd(_ g: ConvGeometry) -> Winograd3x3? {
        guard kernelSize == 3 && stride == 1 && padding == 1 && !usesTapPlanes else { return nil }
        let variant: Winograd3x3.Variant?
        switch conv3x3Path {
        case .im2col, .direct: variant = nil
        case .winograd(let v): variant = v
        case .measured:
            variant = Conv2D.winogradVariant(
                inChannels: inChannels, outChannels: outChannels, height: g.inH, width: g.inW)
        }
        return variant.map { Winograd3x3($0, height: g.inH, width: g.inW) }
    }
    /// Whether this layer at the plane size of `g` takes the direct kernel (`Direct3x3`).
    private func usesDirect(_ g: ConvGeometry) -> Bool {
        guard kernelSize == 3 && stride == 1 && padding == 1 && !usesTapPlanes,
            Direct3x3.supports(outChannels: outChannels, width: g.inW)
        else { return false }
        switch conv3x3Path {
        case .direct: return true
        case .im2col, .winograd: return false
        case .measured:
            return Conv2D.usesDirectByDefault(
                inChannels: inChannels, outChannels: outChannels, height: g.inH, width: g.inW)
        }
    }

    /// The rule for stride-1 3 x 3 layers that Winograd leaves out (`winogradVariant` is nil): a
    /// function of the shape alone, from the speeds `spio bench engine` measured (bench/engine.md).
    public static func usesDirectByDefault(inChannels: Int, outChannels: Int, height: Int, width: Int) -> Bool {
        winogradVariant(inChannels: inChannels, outChannels: outChannels, height: height, width: width) == nil
            && Direct3x3.supports(outChannels: outChannels, width: width)
    }
    /// Weights packed for `Direct3x3` (the layer's, or the input gradient's during backward).
    private let directWeights = Tensor(shape: [0])

    /// Transformed weights (alpha^2 x O x C), or the input gradient's (alpha^2 x C x O) during backward.
    private let winogradWeights = Tensor(shape: [0])
    /// In evaluation mode the weights do not change between forward calls (loading new ones goes
    /// with `setTraining`, which clears this), so the transform is kept: the form it was made for.
    private var winogradWeightsFor: Winograd3x3?

    /// The path a stride-1 3 x 3 layer of this shape takes by default: a rule of the shape alone
    /// (so every machine computes the same numbers), from the speeds `spio bench engine` measured
    /// (bench/engine.md).
    public static func winogradVariant(
        inChannels: Int, outChannels: Int, height: Int, width: Int
    )
        -> Winograd3x3.Variant?
    {
        // Measured (bench/engine.md, medians of 5 processes): F(4x4) is 1.3-1.7x faster than im2col
        // from 32 channels on 8 x 8 planes and up; with 16 channels, or on 4 x 4 planes (one tile,
        // mostly padding), neither F(4x4) nor F(2x2) beats im2col.
        guard Swift.min(inChannels, outChannels) >= 32 && Swift.min(height, width) >= 8 else { return nil }
        return .f4x4
    }

    /// The forward im2col matrix kept for the weight gradient (training, whole batch in one group,
    /// within the workspace's retain budget); nil means backward rebuilds it.
    private let retainedCol = Tensor(shape: [0])
    private var retainedFloats = 0
    private var colIsRetained = false

    private func updateRetention(_ floats: Int) {
        if floats == retainedFloats { return }
        if retainedFloats > 0 { workspace.release(retainedFloats); retainedFloats = 0 }
        if floats > 0 && workspace.reserve(floats) { retainedFloats = floats; retainedCol.reshape(to: [floats]) }
    }

    /// Few filters (the 1-channel output heads): im2col would build a C*k*k-row matrix for a
    /// matrix-vector product. Instead one GEMM makes O*k*k "tap planes" (each filter tap applied
    /// to every input pixel) and the output sums the shifted planes; backward uses the same shifts.
    private var usesTapPlanes: Bool { stride == 1 && 2 * padding == kernelSize - 1 && 4 * outChannels <= inChannels }
    /// Channel-major copy of the input (C x N*H*W), kept for the weight gradient of the tap path.
    private let inputCN = Tensor(shape: [0])
    private let tapWeight = Tensor(shape: [0])

    public func forward(_ x: Tensor) -> Tensor {
        let g = geometry(for: x)
        inputShape = x.shape
        let n = x.shape[0], plane = g.outPlane
        output.reshape(to: [n, outChannels, g.outH, g.outW])
        if usesTapPlanes { lastPath = "tap planes"; return forwardTapPlanes(x, g) }
        if let w = winograd(g) { lastPath = "\(w.variant)"; return forwardWinograd(x, w) }
        if usesDirect(g) { lastPath = "direct"; return forwardDirect(x, g) }
        if usesPerSample(g) { lastPath = "im2col per sample"; return forwardPerSample(x, g) }
        lastPath = "im2col"
        let group = g.samplesPerGroup(n, maxColumnFloats: maxColumnFloats)
        updateRetention(training && group == n ? g.rows * n * plane : 0)
        colIsRetained = retainedFloats > 0
        let col = colIsRetained ? retainedCol.data : workspace.buffer(.columns, count: g.rows * group * plane)
        let tmp = workspace.buffer(.product, count: outChannels * group * plane)
        var n0 = 0
        while n0 < n {
            let gn = Swift.min(group, n - n0), cols = gn * plane
            g.im2col(x.data + n0 * g.inPlaneVolume, samples: gn, into: col)
            Gemm.sgemm(m: outChannels, n: cols, k: g.rows, a: weight.value.data, b: col, c: tmp)
            Layout.cnToNCHW(
                tmp, samples: gn, channels: outChannels, plane: plane,
                into: output.data + n0 * outChannels * plane, bias: bias?.value.data)
            n0 += gn
        }
        input = training ? x : nil
        return output
    }

    public func backward(_ dy: Tensor) -> Tensor {
        guard let x = input, let g = geometry else {
            preconditionFailure("Conv2D.backward needs a training-mode forward first")
        }
        let n = x.shape[0], plane = g.outPlane
        dy.expectShape([n, outChannels, g.outH, g.outW], "Conv2D.backward output gradient")
        if usesTapPlanes { return backwardTapPlanes(dy, x, g) }
        if let w = winograd(g) { return backwardWinograd(dy, x, w) }
        if usesDirect(g) { return backwardDirect(dy, x, g) }
        if usesPerSample(g) { return backwardPerSample(dy, x, g) }
        // Stride 1: dx is the convolution of dy with the flipped, transposed kernel. That is a GEMM
        // with K = O * k * k (the efficient shape of the forward pass) and an im2col instead of the
        // scattering col2im; strided layers use col2im of W^T * dy.
        let viaFlippedConv = computesInputGradient && stride == 1 && 2 * padding == kernelSize - 1
        if computesInputGradient { inputGrad.reshape(to: x.shape) } else { inputGrad.reshape(to: [0]) }
        if computesInputGradient && !viaFlippedConv { inputGrad.fill(0) }
        let dyGeometry = ConvGeometry(
            channels: outChannels, inH: g.outH, inW: g.outW, kernelH: kernelSize, kernelW: kernelSize,
            stride: 1, padding: kernelSize - 1 - padding)
        if viaFlippedConv { flipWeights() }
        let group = g.samplesPerGroup(n, maxColumnFloats: maxColumnFloats)
        let reuse = colIsRetained && group == n
        let col = reuse ? retainedCol.data : workspace.buffer(.columns, count: g.rows * group * plane)
        let dyCN = workspace.buffer(.product, count: outChannels * group * plane)
        let dcol =
            computesInputGradient
            ? workspace.buffer(.inputGradient, count: Swift.max(g.rows, dyGeometry.rows) * group * plane) : col
        let dxCN =
            viaFlippedConv ? workspace.buffer(.inputGradientLayout, count: inChannels * group * g.inH * g.inW) : col
        var n0 = 0
        while n0 < n {
            let gn = Swift.min(group, n - n0), cols = gn * plane
            if !reuse { g.im2col(x.data + n0 * g.inPlaneVolume, samples: gn, into: col) }
            let dyGroup = dy.data + n0 * outChannels * plane
            Layout.nchwToCN(dyGroup, samples: gn, channels: outChannels, plane: plane, into: dyCN)
            if let bias {
                ChannelReduction.addSums(
                    dyGroup, samples: gn, channels: outChannels, plane: plane, into: bias.grad.data)
            }
            Gemm.sgemm(transB: true, m: outChannels, n: g.rows, k: cols, a: dyCN, b: col, beta: 1, c: weight.grad.data)
            if viaFlippedConv {
                dyGeometry.im2col(dyGroup, samples: gn, into: dcol)
                Gemm.sgemm(m: inChannels, n: cols, k: dyGeometry.rows, a: flippedWeight.data, b: dcol, c: dxCN)
                Layout.cnToNCHW(
                    dxCN, samples: gn, channels: inChannels, plane: plane, into: inputGrad.data + n0 * g.inPlaneVolume)
            } else if computesInputGradient {
                Gemm.sgemm(transA: true, m: g.rows, n: cols, k: outChannels, a: weight.value.data, b: dyCN, c: dcol)
                g.col2im(dcol, samples: gn, into: inputGrad.data + n0 * g.inPlaneVolume)
            }
            n0 += gn
        }
        return inputGrad
    }

    private func usesPerSample(_ g: ConvGeometry) -> Bool { g.outPlane >= perSampleMinimumPlane }

    /// Large planes with few channels: the batched column matrix (9x the input) does not fit in
    /// cache and the GEMM's M (output channels) is small anyway. Each thread instead lowers one
    /// sample at a time into its own cache-sized column matrix, and W x col is that sample's
    /// output already in NCHW order, so no layout transposes are needed either.
    private func forwardPerSample(_ x: Tensor, _ g: ConvGeometry) -> Tensor {
        let plane = g.outPlane, outVolume = outChannels * plane, sampleCol = g.rows * plane
        // Strided layers keep every sample's columns for backward: their gathering im2col costs
        // more than reading the kept copy back (stride 1 copies whole planes and rebuilds instead).
        updateRetention(training && stride > 1 ? x.shape[0] * sampleCol : 0)
        colIsRetained = retainedFloats > 0
        let cols = (0..<Engine.threadCount).map { workspace.buffer(.perThread($0), count: sampleCol) }
        let (w, out, b, kept, keep) = (
            weight.value.data, output.data, bias?.value.data, retainedCol.data, colIsRetained
        )
        Engine.parallelParts(x.shape[0]) { part, samples in
            for s in samples {
                let col = keep ? kept + s * sampleCol : cols[part]
                g.im2col(x.data + s * g.inPlaneVolume, samples: 1, into: col)
                let o = out + s * outVolume
                Gemm.sgemm(m: outChannels, n: plane, k: g.rows, a: w, b: col, c: o)
                if let b {
                    for c in 0..<outChannels { let p = o + c * plane, bc = b[c]; for i in 0..<plane { p[i] += bc } }
                }
            }
        }
        input = training ? x : nil
        return output
    }

    /// Backward of `forwardPerSample`. dW sums dy_s col_s^T over fixed chunks of samples into
    /// separate partials, added in chunk order.
    private func backwardPerSample(_ dy: Tensor, _ x: Tensor, _ g: ConvGeometry) -> Tensor {
        let n = x.shape[0], plane = g.outPlane, outVolume = outChannels * plane, kSize = outChannels * g.rows
        if let bias { addChannelSums(dy, into: bias.grad.data) }
        let viaFlippedConv = stride == 1 && 2 * padding == kernelSize - 1
        let dyGeometry = ConvGeometry(
            channels: outChannels, inH: g.outH, inW: g.outW, kernelH: kernelSize, kernelW: kernelSize,
            stride: 1, padding: kernelSize - 1 - padding)
        if computesInputGradient {
            inputGrad.reshape(to: x.shape)
            if !viaFlippedConv { inputGrad.fill(0) }
            if viaFlippedConv { flipWeights() }
        } else {
            inputGrad.reshape(to: [0])
        }
        let chunks = (n + weightGradientChunk - 1) / weightGradientChunk
        let partials = workspace.buffer(.partialSums, count: chunks * kSize)
        let cols = (0..<Engine.threadCount).map {
            workspace.buffer(.perThread($0, part: 0, of: 2), count: g.rows * plane)
        }
        let dcols = (0..<Engine.threadCount).map {
            workspace.buffer(.perThread($0, part: 1, of: 2), count: Swift.max(g.rows, dyGeometry.rows) * plane)
        }
        let (w, dxData, flipped, dxNeeded) = (
            weight.value.data, inputGrad.data, flippedWeight.data, computesInputGradient
        )
        let (kept, reuse, sampleCol) = (retainedCol.data, colIsRetained, g.rows * plane)
        Engine.parallelParts(chunks) { part, chunkRange in
            let dcol = dcols[part]
            for chunk in chunkRange {
                for s in (chunk * weightGradientChunk)..<Swift.min(n, (chunk + 1) * weightGradientChunk) {
                    let dys = dy.data + s * outVolume
                    let col = reuse ? kept + s * sampleCol : cols[part]
                    if !reuse { g.im2col(x.data + s * g.inPlaneVolume, samples: 1, into: col) }
                    Gemm.sgemm(
                        transB: true, m: outChannels, n: g.rows, k: plane, a: dys, b: col,
                        beta: s == chunk * weightGradientChunk ? 0 : 1, c: partials + chunk * kSize)
                    guard dxNeeded else { continue }
                    let dx = dxData + s * g.inPlaneVolume
                    if viaFlippedConv {
                        dyGeometry.im2col(dys, samples: 1, into: dcol)
                        Gemm.sgemm(m: inChannels, n: plane, k: dyGeometry.rows, a: flipped, b: dcol, c: dx)
                    } else {
                        Gemm.sgemm(transA: true, m: g.rows, n: plane, k: outChannels, a: w, b: dys, c: dcol)
                        g.col2im(dcol, samples: 1, into: dx)
                    }
                }
            }
        }
        addChunkPartials(partials, chunks: chunks, count: kSize, into: weight.grad.data)
        return inputGrad
    }

    private func forwardWinograd(_ x: Tensor, _ w: Winograd3x3) -> Tensor {
        updateRetention(0)
        colIsRetained = false
        if training || winogradWeightsFor != w {
            winogradWeights.reshape(to: [w.points, outChannels, inChannels])
            w.transformWeights(
                weight.value.data, outChannels: outChannels, inChannels: inChannels, flipped: false,
                into: winogradWeights.data, workspace: workspace)
            winogradWeightsFor = training ? nil : w
        }
        w.forward(
            x.data, samples: x.shape[0], inChannels: inChannels, outChannels: outChannels, u: winogradWeights.data,
            bias: bias?.value.data, into: output.data, workspace: workspace)
        input = training ? x : nil
        return output
    }

    /// dW through the transforms' chain rule; dx as the Winograd convolution of dy with the
    /// rotated, transposed filters (the exact input gradient of the convolution itself).
    private func backwardWinograd(_ dy: Tensor, _ x: Tensor, _ w: Winograd3x3) -> Tensor {
        if let bias { addChannelSums(dy, into: bias.grad.data) }
        let n = x.shape[0], du = workspace.buffer(.inputGradient, count: w.points * outChannels * inChannels)
        w.weightGradient(
            x.data, dy.data, samples: n, inChannels: inChannels, outChannels: outChannels, into: du,
            workspace: workspace)
        w.addWeightGradient(
            du, outChannels: outChannels, inChannels: inChannels, into: weight.grad.data, workspace: workspace)
        guard computesInputGradient else { inputGrad.reshape(to: [0]); return inputGrad }
        inputGrad.reshape(to: x.shape)
        winogradWeightsFor = nil
        winogradWeights.reshape(to: [w.points, inChannels, outChannels])
        w.transformWeights(
            weight.value.data, outChannels: outChannels, inChannels: inChannels, flipped: true,
            into: winogradWeights.data, workspace: workspace)
        w.forward(
            dy.data, samples: n, inChannels: outChannels, outChannels: inChannels, u: winogradWeights.data, bias: nil,
            into: inputGrad.data, workspace: workspace)
        return inputGrad
    }

    private func forwardDirect(_ x: Tensor, _ g: ConvGeometry) -> Tensor {
        updateRetention(0)
        colIsRetained = false
        directWeights.reshape(to: [Direct3x3.packedCount(outChannels: outChannels, inChannels: inChannels)])
        Direct3x3.pack(
            weight.value.data, outChannels: outChannels, inChannels: inChannels, flipped: false,
            into: directWeights.data)
        Direct3x3.forward(
            x.data, samples: x.shape[0], inChannels: inChannels, outChannels: outChannels, height: g.inH,
            width: g.inW, packed: directWeights.data, bias: bias?.value.data, into: output.data, workspace: workspace)
        input = training ? x : nil
        return output
    }

    /// dW by the direct kernel; dx as the direct convolution of dy with the rotated, transposed filters.
    private func backwardDirect(_ dy: Tensor, _ x: Tensor, _ g: ConvGeometry) -> Tensor {
        if let bias { addChannelSums(dy, into: bias.grad.data) }
        let n = x.shape[0]
        Direct3x3.addWeightGradient(
            x.data, dy.data, samples: n, inChannels: inChannels, outChannels: outChannels, height: g.inH,
            width: g.inW, into: weight.grad.data, workspace: workspace)
        guard computesInputGradient else { inputGrad.reshape(to: [0]); return inputGrad }
        inputGrad.reshape(to: x.shape)
        directWeights.reshape(to: [Direct3x3.packedCount(outChannels: inChannels, inChannels: outChannels)])
        Direct3x3.pack(
            weight.value.data, outChannels: outChannels, inChannels: inChannels, flipped: true,
            into: directWeights.data)
        Direct3x3.forward(
            dy.data, samples: n, inChannels: outChannels, outChannels: inChannels, height: g.inH, width: g.inW,
            packed: directWeights.data, bias: nil, into: inputGrad.data, workspace: workspace)
        return inputGrad
    }

    private func forwardTapPlanes(_ x: Tensor, _ g: ConvGeometry) -> Tensor {
        let n = x.shape[0], plane = g.outPlane, kk = kernelSize * kernelSize, taps = outChannels * kk
        inputCN.reshape(to: [inChannels, n * plane])
        Layout.nchwToCN(x.data, samples: n, channels: inChannels, plane: plane, into: inputCN.data)
        // tapWeight[o*kk + t][c] = W[o][c][t]
        tapWeight.reshape(to: [taps, inChannels])
        let (w, tw) = (weight.value.data, tapWeight.data)
        for o in 0..<outChannels {
            for c in 0..<inChannels {
                for t in 0..<kk {
                    tw[(o * kk + t) * inChannels + c] = w[(o * inChannels + c) * kk + t]
                }
            }
        }
        let planes = workspace.buffer(.columns, count: taps * n * plane)
        Gemm.sgemm(m: taps, n: n * plane, k: inChannels, a: tw, b: inputCN.data, c: planes)
        let (k, width, out, bias) = (kernelSize, g.outW, output.data, bias?.value.data)
        Engine.parallelFor(n * outChannels) { range in
            for job in range {
                let (s, o) = job.quotientAndRemainder(dividingBy: outChannels)
                let dst = out + job * plane
                dst.update(repeating: bias?[o] ?? 0, count: plane)
                for t in 0..<kk {
                    let (ky, kx) = t.quotientAndRemainder(dividingBy: k)
                    let (yLo, yHi) = g.validOutputRange(k: ky, inSize: g.inH, outSize: g.outH)
                    let (xLo, xHi) = g.validOutputRange(k: kx, inSize: g.inW, outSize: g.outW)
                    let src = planes + (o * kk + t) * n * plane + s * plane + (ky - padding) * width + (kx - padding)
                    for oy in yLo..<yHi {
                        let d = dst + oy * width, r = src + oy * width
                        for ox in xLo..<xHi { d[ox] += r[ox] }
                    }
                }
            }
        }
        input = training ? x : nil
        if !training { inputCN.reshape(to: [0]) }
        return output
    }

    private func backwardTapPlanes(_ dy: Tensor, _ x: Tensor, _ g: ConvGeometry) -> Tensor {
        let n = x.shape[0], plane = g.outPlane, kk = kernelSize * kernelSize, taps = outChannels * kk
        if let bias { addChannelSums(dy, into: bias.grad.data) }
        // dcol[o*kk + t'][p] = dy[o] at p shifted by the flipped tap t' (an im2col of dy).
        let dyGeometry = ConvGeometry(
            channels: outChannels, inH: g.outH, inW: g.outW, kernelH: kernelSize, kernelW: kernelSize,
            stride: 1, padding: kernelSize - 1 - padding)
        let dcol = workspace.buffer(.columns, count: taps * n * plane)
        dyGeometry.im2col(dy.data, samples: n, into: dcol)
        // G[c][o*kk + t'] = sum_p X[c][p] dcol[o*kk + t'][p];  dW[o][c][t] += G[c][o*kk + kk-1-t].
        let gram = workspace.buffer(.product, count: inChannels * taps)
        Gemm.sgemm(transB: true, m: inChannels, n: taps, k: n * plane, a: inputCN.data, b: dcol, c: gram)
        let dw = weight.grad.data
        for o in 0..<outChannels {
            for c in 0..<inChannels {
                for t in 0..<kk {
                    dw[(o * inChannels + c) * kk + t] += gram[c * taps + o * kk + kk - 1 - t]
                }
            }
        }
        // The channel-major input is read by the weight gradient only: its storage serves the
        // rest of the backward pass (the next forward takes it again).
        inputCN.reclaim()
        guard computesInputGradient else { inputGrad.reshape(to: [0]); return inputGrad }
        flipWeights()
        inputGrad.reshape(to: x.shape)
        let dxCN = workspace.buffer(.inputGradientLayout, count: inChannels * n * plane)
        Gemm.sgemm(m: inChannels, n: n * plane, k: taps, a: flippedWeight.data, b: dcol, c: dxCN)
        Layout.cnToNCHW(dxCN, samples: n, channels: inChannels, plane: plane, into: inputGrad.data)
        return inputGrad
    }

    /// flipped[c][o][ky][kx] = W[o][c][k-1-ky][k-1-kx]: the kernel of the input-gradient convolution.
    private let flippedWeight = Tensor(shape: [0])

    private func flipWeights() {
        let k = kernelSize, kk = k * k
        flippedWeight.reshape(to: [inChannels, outChannels, k, k])
        let (w, f) = (weight.value.data, flippedWeight.data)
        for o in 0..<outChannels {
            for c in 0..<inChannels {
                for t in 0..<kk {
                    f[(c * outChannels + o) * kk + (kk - 1 - t)] = w[(o * inChannels + c) * kk + t]
                }
            }
        }
    }
}

/// sum[i] += partials[0][i] + partials[1][i] + ... in chunk order (per-sample weight gradients).
func addChunkPartials(_ partials: UnsafePointer<Float>, chunks: Int, count: Int, into sum: UnsafeMutablePointer<Float>)
{
    Engine.parallelFor(count, minimumPerThread: 1 << 12) { r in
        for i in r { var s = sum[i]; for c in 0..<chunks { s += partials[c * count + i] }; sum[i] = s }
    }
}

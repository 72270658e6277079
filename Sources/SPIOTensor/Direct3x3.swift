/// Direct 3 x 3 convolution with stride 1 and padding 1, register-blocked for layers with few
/// channels on large planes, where im2col copies every input pixel 9 times and the GEMM's M (the
/// output channels) is too small to amortise OpenBLAS's packing.
///
/// Each sample is copied once into a zero-bordered plane; the forward kernel then keeps 4 output
/// channels x 16 pixels of a row in 8 AVX registers and sweeps the input channels and the 9 taps
/// (2 loads and 4 broadcasts per 8 fused multiply-adds). The weight gradient keeps 4 output
/// channels x 3 column taps in 12 registers per tap row. Every sum runs in a fixed order that
/// depends on the shape only (the weight gradient adds chunks of 4 samples in Double, in chunk
/// order), so results are bitwise the same on any thread count.
public enum Direct3x3 {
    /// Output channels per register block, pixels per row block.
    static let channelBlock = 4, pixelBlock = 16
    /// Samples per weight-gradient partial sum (accumulated in Float, chunks added in Double).
    static let gradientChunk = 4

    /// Whether a layer of this shape can take the direct path: output channels a multiple of 4,
    /// plane width a multiple of 16.
    public static func supports(outChannels: Int, width: Int) -> Bool {
        outChannels % channelBlock == 0 && width % pixelBlock == 0 && width > 0
    }

    /// Floats of `pack`'s output for these channel counts (output channels rounded up to blocks of 4).
    public static func packedCount(outChannels o: Int, inChannels c: Int) -> Int {
        (o + channelBlock - 1) / channelBlock * channelBlock * c * 9
    }

    /// Weights O x C x 3 x 3 as [O/4][C][9][4], so one block's 4 filters are adjacent per tap; with
    /// `flipped`, the kernel of the input gradient (the transposed, rotated filters: C outputs).
    public static func pack(
        _ w: UnsafePointer<Float>, outChannels o: Int, inChannels c: Int, flipped: Bool,
        into packed: UnsafeMutablePointer<Float>
    ) {
        let (outs, ins) = flipped ? (c, o) : (o, c)
        // A last, partial block (the input gradient of a layer with 2 input channels) has zero filters.
        packed.update(repeating: 0, count: packedCount(outChannels: outs, inChannels: ins))
        for p in 0..<outs {
            for q in 0..<ins {
                for t in 0..<9 {
                    let value = flipped ? w[(q * c + p) * 9 + 8 - t] : w[(p * c + q) * 9 + t]
                    packed[(((p / channelBlock) * ins + q) * 9 + t) * channelBlock + p % channelBlock] = value
                }
            }
        }
    }

    /// Copies C x H x W planes into C x (H + 2) x (W + 2) with a zero border.
    static func pad(
        _ x: UnsafePointer<Float>, channels: Int, height h: Int, width w: Int, into p: UnsafeMutablePointer<Float>
    ) {
        let pw = w + 2
        for c in 0..<channels {
            let plane = p + c * (h + 2) * pw
            plane.update(repeating: 0, count: pw)
            for y in 0..<h {
                let row = plane + (y + 1) * pw
                row[0] = 0
                (row + 1).update(from: x + (c * h + y) * w, count: w)
                row[w + 1] = 0
            }
            (plane + (h + 1) * pw).update(repeating: 0, count: pw)
        }
    }

    @inline(__always) static func load(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
    }
    @inline(__always) static func store(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self)
    }

    /// out[s][o] = bias[o] + sum over c and the 9 taps of w[o][c] x[s][c] (zero padding), for N x C
    /// x H x W input and `packed` weights (`pack`); any number of output channels. Scratch: `Workspace` slots 8 and up (one per thread).
    public static func forward(
        _ x: UnsafePointer<Float>, samples n: Int, inChannels c: Int, outChannels o: Int, height h: Int,
        width w: Int, packed: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
        into out: UnsafeMutablePointer<Float>, workspace: Workspace
    ) {
        precondition(w % pixelBlock == 0 && w > 0, "Direct3x3.forward: width \(w) is not a multiple of 16")
        let blocks = (o + channelBlock - 1) / channelBlock, pw = w + 2, padded = c * (h + 2) * pw
        let scratch = (0..<Engine.threadCount).map { workspace.buffer(.perThread($0), count: padded) }
        // Jobs (sample, channel block) in sample-major order: a part pads each of its samples once.
        Engine.parallelParts(n * blocks) { part, jobs in
            let p = scratch[part]
            var paddedSample = -1
            for job in jobs {
                let (s, b) = job.quotientAndRemainder(dividingBy: blocks)
                if s != paddedSample {
                    pad(x + s * c * h * w, channels: c, height: h, width: w, into: p)
                    paddedSample = s
                }
                let wb = packed + b * c * 9 * channelBlock
                let o0 = out + (s * o + b * channelBlock) * h * w
                let valid = Swift.min(channelBlock, o - b * channelBlock)
                func biasOf(_ j: Int) -> SIMD8<Float> {
                    guard let bias, j < valid else { return .zero }
                    return SIMD8(repeating: bias[b * channelBlock + j])
                }
                let (b0, b1, b2, b3) = (biasOf(0), biasOf(1), biasOf(2), biasOf(3))
                for y in 0..<h {
                    for x0 in stride(from: 0, to: w, by: pixelBlock) {
                        var (a0, a1, a2, a3) = (b0, b1, b2, b3)
                        var (c0, c1, c2, c3) = (b0, b1, b2, b3)
                        for ci in 0..<c {
                            let plane = p + ci * (h + 2) * pw + y * pw + x0
                            let taps = wb + ci * 9 * channelBlock
                            for ky in 0..<3 {
                                let row = plane + ky * pw
                                for kx in 0..<3 {
                                    let v = load(row + kx), u = load(row + kx + 8)
                                    let t = taps + (ky * 3 + kx) * channelBlock
                                    let w0 = SIMD8<Float>(repeating: t[0]), w1 = SIMD8<Float>(repeating: t[1])
                                    let w2 = SIMD8<Float>(repeating: t[2]), w3 = SIMD8<Float>(repeating: t[3])
                                    a0.addProduct(v, w0); c0.addProduct(u, w0)
                                    a1.addProduct(v, w1); c1.addProduct(u, w1)
                                    a2.addProduct(v, w2); c2.addProduct(u, w2)
                                    a3.addProduct(v, w3); c3.addProduct(u, w3)
                                }
                            }
                        }
                        let dst = o0 + y * w + x0, plane = h * w
                        store(a0, dst); store(c0, dst + 8)
                        if valid > 1 { store(a1, dst + plane); store(c1, dst + plane + 8) }
                        if valid > 2 { store(a2, dst + 2 * plane); store(c2, dst + 2 * plane + 8) }
                        if valid > 3 { store(a3, dst + 3 * plane); store(c3, dst + 3 * plane + 8) }
                    }
                }
            }
        }
    }

    /// dw[o][c][ky][kx] += sum over samples and pixels of dy[s][o] x[s][c] shifted by the tap, for
    /// N x C x H x W input and N x O x H x W output gradient. Scratch: `Workspace` slot 7 (the
    /// padded batch).
    public static func addWeightGradient(
        _ x: UnsafePointer<Float>, _ dy: UnsafePointer<Float>, samples n: Int, inChannels c: Int,
        outChannels o: Int, height h: Int, width w: Int, into dw: UnsafeMutablePointer<Float>,
        workspace: Workspace
    ) {
        precondition(supports(outChannels: o, width: w), "Direct3x3.addWeightGradient: unsupported shape")
        let pw = w + 2, padded = c * (h + 2) * pw, plane = h * w
        let p = workspace.buffer(.paddedInput, count: n * padded)
        Engine.parallelFor(n) { r in
            for s in r { pad(x + s * c * plane, channels: c, height: h, width: w, into: p + s * padded) }
        }
        let blocks = o / channelBlock
        // Jobs (channel block, input channel): each owns its 4 x 9 weights and sums every chunk of
        // samples in order, so no job's result depends on another's.
        Engine.parallelFor(blocks * c) { jobs in
            for job in jobs {
                let (b, ci) = job.quotientAndRemainder(dividingBy: c)
                var sums = [Double](repeating: 0, count: 9 * channelBlock)
                for chunk in stride(from: 0, to: n, by: gradientChunk) {
                    for ky in 0..<3 {
                        let zero = SIMD8<Float>.zero
                        var (p00, p01, p02, p10, p11, p12) = (zero, zero, zero, zero, zero, zero)
                        var (p20, p21, p22, p30, p31, p32) = (zero, zero, zero, zero, zero, zero)
                        for s in chunk..<Swift.min(n, chunk + gradientChunk) {
                            let src = p + s * padded + ci * (h + 2) * pw + ky * pw
                            let d = dy + (s * o + b * channelBlock) * plane
                            for y in 0..<h {
                                let row = src + y * pw, drow = d + y * w
                                for x0 in stride(from: 0, to: w, by: 8) {
                                    let v0 = load(row + x0), v1 = load(row + x0 + 1), v2 = load(row + x0 + 2)
                                    let d0 = load(drow + x0), d1 = load(drow + plane + x0)
                                    let d2 = load(drow + 2 * plane + x0), d3 = load(drow + 3 * plane + x0)
                                    p00.addProduct(d0, v0); p01.addProduct(d0, v1); p02.addProduct(d0, v2)
                                    p10.addProduct(d1, v0); p11.addProduct(d1, v1); p12.addProduct(d1, v2)
                                    p20.addProduct(d2, v0); p21.addProduct(d2, v1); p22.addProduct(d2, v2)
                                    p30.addProduct(d3, v0); p31.addProduct(d3, v1); p32.addProduct(d3, v2)
                                }
                            }
                        }
                        func add(_ j: Int, _ a: SIMD8<Float>, _ b: SIMD8<Float>, _ c: SIMD8<Float>) {
                            sums[ky * 3 * channelBlock + j] += Double(a.sum())
                            sums[(ky * 3 + 1) * channelBlock + j] += Double(b.sum())
                            sums[(ky * 3 + 2) * channelBlock + j] += Double(c.sum())
                        }
                        add(0, p00, p01, p02); add(1, p10, p11, p12); add(2, p20, p21, p22); add(3, p30, p31, p32)
                    }
                }
                for j in 0..<channelBlock {
                    let target = dw + ((b * channelBlock + j) * c + ci) * 9
                    for t in 0..<9 { target[t] += Float(sums[t * channelBlock + j]) }
                }
            }
        }
    }
}

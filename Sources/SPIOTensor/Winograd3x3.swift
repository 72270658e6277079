/// Winograd's minimal filtering for 3 x 3 convolutions with stride 1 and padding 1 (Lavin and Gray,
/// "Fast Algorithms for Convolutional Neural Networks", 2016): F(m x m, 3 x 3) turns every
/// (m + 2) x (m + 2) input tile into alpha^2 = (m + 2)^2 independent products, so a layer becomes
/// alpha^2 GEMMs `U[xi] (O x C) * V[xi] (C x tiles)`, 9 m^2 / alpha^2 times fewer multiplications than
/// im2col: 2.25x for F(2x2, 3x3), 4x for F(4x4, 3x3).
///
/// Tiles (sample, tile row, tile column) are processed in blocks whose size depends only on the
/// layer's shape; every block is the same sequence of OpenBLAS calls on any thread count, and the
/// weight gradient sums the blocks in block order, so results are bitwise the same on 1 or N threads.
/// The transforms are straight-line code over a block's tiles (vectorised by the compiler).
public struct Winograd3x3: Sendable, Equatable {
    /// The output tile: F(2x2, 3x3) (exact to a few ulps) or F(4x4, 3x3) (fewer FLOPs; its
    /// transform constants up to 8 and 1/24 cost about one decimal digit).
    public enum Variant: Int, Sendable, CaseIterable, CustomStringConvertible {
        case f2x2 = 2, f4x4 = 4
        public var description: String { "F(\(rawValue)x\(rawValue),3x3)" }
    }

    public let variant: Variant
    /// Input (= output) plane size.
    public let height: Int, width: Int
    /// Output tile side m, transformed tile side alpha = m + 2, tiles per image row and column.
    let m: Int, alpha: Int, tilesH: Int, tilesW: Int

    public init(_ variant: Variant, height: Int, width: Int) {
        precondition(height > 0 && width > 0, "Winograd3x3 needs a non-empty plane, got \(height) x \(width)")
        self.variant = variant; self.height = height; self.width = width
        m = variant.rawValue; alpha = m + 2
        tilesH = (height + m - 1) / m; tilesW = (width + m - 1) / m
    }

    /// Transformed points per tile (alpha^2): the number of GEMMs per block.
    public var points: Int { alpha * alpha }
    var tilesPerImage: Int { tilesH * tilesW }

    /// Tiles per block: `blockFloats` of transformed input and output, a function of the shape only
    /// (32 to `maxBlockTiles` tiles).
    func blockTiles(_ inChannels: Int, _ outChannels: Int) -> Int {
        Swift.max(
            Swift.min(32, Winograd3x3.maxBlockTiles),
            Swift.min(Winograd3x3.maxBlockTiles, Winograd3x3.blockFloats / (points * (inChannels + outChannels))))
    }
    /// Tests lower it to cover many blocks with small layers.
    nonisolated(unsafe) static var maxBlockTiles = 1024
    /// Transformed input plus output floats per block (8 MiB): measured on DeepSPIO's layers (medians
    /// of 5 processes), where 2 MiB blocks were 1-4 % slower at 32 and 64 channels and a third slower
    /// at 128 channels on 8 x 8 planes.
    static let blockFloats = 1 << 21

    // MARK: Weights

    /// u[xi][o][c] = (G w[o][c] G^T)[xi] for weights O x C x 3 x 3. With `flipped`, the kernel of
    /// the input gradient (the convolution of dy with the transposed, rotated filters):
    /// u[xi][c][o] = (G rot180(w[o][c]) G^T)[xi]. Scratch: `Workspace` slots 4 and 5.
    public func transformWeights(
        _ w: UnsafePointer<Float>, outChannels o: Int, inChannels c: Int, flipped: Bool,
        into u: UnsafeMutablePointer<Float>, workspace: Workspace
    ) {
        let pairs = o * c, a = alpha
        let taps = workspace.buffer(.filterTaps, count: 9 * pairs),
            mid = workspace.buffer(.filterMiddle, count: 3 * a * pairs)
        // Two passes: a flipped pair lands at another index (ci o + oi), which may lie in another
        // thread's range, so every tap must be in place before any range is transformed.
        Engine.parallelFor(pairs, minimumPerThread: 1024) { range in
            for pair in range {
                let (oi, ci) = pair.quotientAndRemainder(dividingBy: c)
                let dst = flipped ? ci * o + oi : pair, f = w + pair * 9
                for t in 0..<9 { taps[(flipped ? 8 - t : t) * pairs + dst] = f[t] }
            }
        }
        Engine.parallelFor(pairs, minimumPerThread: 1024) { range in
            let (lo, n) = (range.lowerBound, range.count)
            for j in 0..<3 { weightRows(taps + j * pairs + lo, 3 * pairs, mid + j * pairs + lo, 3 * pairs, n) }
            for r in 0..<a { weightRows(mid + r * 3 * pairs + lo, pairs, u + r * a * pairs + lo, pairs, n) }
        }
    }

    /// dw[o][c] += G^T du[o][c] G: the chain rule through `transformWeights` (not flipped).
    /// Scratch: `Workspace` slots 4 and 5.
    public func addWeightGradient(
        _ du: UnsafePointer<Float>, outChannels o: Int, inChannels c: Int, into dw: UnsafeMutablePointer<Float>,
        workspace: Workspace
    ) {
        let pairs = o * c, a = alpha
        let taps = workspace.buffer(.filterTaps, count: 9 * pairs),
            mid = workspace.buffer(.filterMiddle, count: 3 * a * pairs)
        Engine.parallelFor(pairs, minimumPerThread: 1024) { range in
            let (lo, n) = (range.lowerBound, range.count)
            for r in 0..<a { weightGradientRows(du + r * a * pairs + lo, pairs, mid + r * 3 * pairs + lo, pairs, n) }
            for j in 0..<3 {
                weightGradientRows(mid + j * pairs + lo, 3 * pairs, taps + j * pairs + lo, 3 * pairs, n)
            }
            for pair in range { for t in 0..<9 { dw[pair * 9 + t] += taps[t * pairs + pair] } }
        }
    }

    // MARK: Forward

    /// y = conv(x, w) + bias for x N x C x H x W and y N x O x H x W, with `u` from
    /// `transformWeights` (alpha^2 x O x C). Blocks run in turn; within one, the transforms are
    /// split over channels and the GEMMs over points. Scratch: `Workspace` slots 0, 1 and 8 ..< 8 + threads.
    public func forward(
        _ x: UnsafePointer<Float>, samples n: Int, inChannels c: Int, outChannels o: Int,
        u: UnsafePointer<Float>, bias: UnsafePointer<Float>?, into y: UnsafeMutablePointer<Float>,
        workspace: Workspace
    ) {
        let pts = points
        forEachBlock(x, samples: n, inChannels: c, outChannels: o, workspace: workspace) {
            block, t0, count, v, mm, scratch in
            Engine.parallelParts(pts) { _, range in
                for xi in range {
                    Gemm.sgemm(m: o, n: count, k: c, a: u + xi * o * c, b: v + xi * c * count, c: mm + xi * o * count)
                }
            }
            Engine.parallelParts(o) { part, range in
                let p = scratch[part], q = p + pts * count
                for oi in range {
                    transformOutput(mm + oi * count, pointStride: o * count, scratch: p, count: count, into: q)
                    scatterOutput(q, channel: oi, channels: o, firstTile: t0, count: count, bias: bias?[oi] ?? 0, y)
                }
            }
        }
    }

    /// Runs `body(block, firstTile, count, v, out, scratch)` for each block of tiles in turn, with
    /// v[xi][channel][t] the block's transformed input, `out` room for alpha^2 x O x count floats
    /// and `scratch` one 2 alpha^2 x count buffer per thread part. Slots 0, 1, 6 and 8 ..< 8 + threads.
    private func forEachBlock(
        _ x: UnsafePointer<Float>, samples n: Int, inChannels c: Int, outChannels o: Int, workspace: Workspace,
        _ body: (
            _ block: Int, _ firstTile: Int, _ count: Int, _ v: UnsafeMutablePointer<Float>,
            _ out: UnsafeMutablePointer<Float>, _ scratch: [UnsafeMutablePointer<Float>]
        ) -> Void
    ) {
        let bt = blockTiles(c, o), tiles = n * tilesPerImage, blocks = (tiles + bt - 1) / bt, pts = points
        let v = workspace.buffer(.columns, count: pts * c * bt), out = workspace.buffer(.product, count: pts * o * bt)
        let scratch = (0..<Engine.threadCount).map { workspace.buffer(.perThread($0), count: 2 * pts * bt) }
        let zeroRow = workspace.buffer(.zeros, count: width)
        zeroRow.update(repeating: 0, count: width)
        for block in 0..<blocks {
            let t0 = block * bt, count = Swift.min(bt, tiles - t0)
            transformInputBlock(
                x, channels: c, firstTile: t0, count: count, into: v, scratch: scratch, zeroRow: zeroRow)
            body(block, t0, count, v, out, scratch)
        }
    }

    /// v[xi][channel][t] for tiles firstTile ..< firstTile + count, split over channels.
    private func transformInputBlock(
        _ x: UnsafePointer<Float>, channels c: Int, firstTile t0: Int, count: Int, into v: UnsafeMutablePointer<Float>,
        scratch: [UnsafeMutablePointer<Float>], zeroRow: UnsafeMutablePointer<Float>
    ) {
        let zeros = UnsafePointer(zeroRow)
        Engine.parallelParts(c) { part, range in
            let q = scratch[part]
            withUnsafeTemporaryAllocation(of: UnsafePointer<Float>.self, capacity: alpha) { rows in
                for ci in range {
                    gatherInputColumns(x, channel: ci, channels: c, firstTile: t0, count: count, zeros: zeros, into: q)
                    for k in 0..<alpha {
                        for i in 0..<alpha { rows[i] = UnsafePointer(q + (k * alpha + i) * count) }
                        inputColumns(rows, 0, strided: false, v + (k * alpha * c + ci) * count, c * count, count)
                    }
                }
            }
        }
    }

    // MARK: Weight gradient

    /// du (alpha^2 x O x C) = sum over tiles of dM[xi] V[xi]^T, where V is the transformed input
    /// and dM = A dy A^T the transformed output gradient: the gradient of the loss with respect to
    /// `transformWeights`'s u. Blocks are summed in block order; within a block the transforms are
    /// split over channels and the GEMMs over points. Scratch: slots 0, 1 and 8 ..< 8 + threads.
    public func weightGradient(
        _ x: UnsafePointer<Float>, _ dy: UnsafePointer<Float>, samples n: Int, inChannels c: Int,
        outChannels o: Int, into du: UnsafeMutablePointer<Float>, workspace: Workspace
    ) {
        let pts = points
        forEachBlock(x, samples: n, inChannels: c, outChannels: o, workspace: workspace) {
            block, t0, count, v, dm, scratch in
            Engine.parallelParts(o) { part, range in
                let p = scratch[part], q = p + pts * count
                for oi in range {
                    gatherOutputGradient(dy, channel: oi, channels: o, firstTile: t0, count: count, into: p)
                    transformOutputGradient(p, scratch: q, count: count, into: dm + oi * count, pointStride: o * count)
                }
            }
            Engine.parallelParts(pts) { _, range in
                for xi in range {
                    Gemm.sgemm(
                        transB: true, m: o, n: c, k: count, a: dm + xi * o * count, b: v + xi * c * count,
                        beta: block == 0 ? 0 : 1, c: du + xi * o * c)
                }
            }
        }
    }

    // MARK: Tiles

    /// q[(k alpha + j) count + t] = sum_i B^T[k][i] x[sample][channel][m ty - 1 + i][m tx - 1 + j]
    /// (0 outside the plane): the gather of the tiles and the first pass of the input transform in
    /// one sweep over rows of tiles. `zeros` holds `width` zeros (the padding rows).
    private func gatherInputColumns(
        _ x: UnsafePointer<Float>, channel: Int, channels: Int, firstTile: Int, count: Int,
        zeros: UnsafePointer<Float>, into q: UnsafeMutablePointer<Float>
    ) {
        let (a, plane) = (alpha, height * width)
        withUnsafeTemporaryAllocation(of: UnsafePointer<Float>.self, capacity: a) { rows in
            forEachRun(firstTile, count) { t0, len, sample, ty, tx0 in
                let base = x + (sample * channels + channel) * plane
                for i in 0..<a {
                    let yy = m * ty - 1 + i
                    rows[i] = yy >= 0 && yy < height ? base + yy * width : zeros
                }
                for j in 0..<a {
                    // Column of tile tx0 + k: m (tx0 + k) - 1 + j, inside the plane for k in lo..<hi.
                    let first = m * tx0 - 1 + j
                    let (lo, hi) = validRun(first, len, width)
                    let dst = q + j * count + t0
                    for k in 0..<a {
                        for t in 0..<lo { dst[k * a * count + t] = 0 }
                        for t in hi..<len { dst[k * a * count + t] = 0 }
                    }
                    if lo < hi { inputColumns(rows, first + m * lo, strided: true, dst + lo, a * count, hi - lo) }
                }
            }
        }
    }

    /// p[(i m + j) count + t] = dy[sample][channel][m ty + i][m tx + j] (0 beyond the plane).
    private func gatherOutputGradient(
        _ dy: UnsafePointer<Float>, channel: Int, channels: Int, firstTile: Int, count: Int,
        into p: UnsafeMutablePointer<Float>
    ) {
        let plane = height * width
        forEachRun(firstTile, count) { t0, len, sample, ty, tx0 in
            let base = dy + (sample * channels + channel) * plane
            for i in 0..<m {
                let yy = m * ty + i
                for j in 0..<m {
                    let dst = p + (i * m + j) * count + t0
                    guard yy < height else {
                        dst.update(repeating: 0, count: len)
                        continue
                    }
                    let first = m * tx0 + j
                    let (_, hi) = validRun(first, len, width)
                    let src = base + yy * width + first
                    for k in 0..<hi { dst[k] = src[m * k] }
                    for k in hi..<len { dst[k] = 0 }
                }
            }
        }
    }

    /// y[sample][channel][m ty + i][m tx + j] = r[(i m + j) count + t] + bias, inside the plane.
    private func scatterOutput(
        _ r: UnsafePointer<Float>, channel: Int, channels: Int, firstTile: Int, count: Int, bias: Float,
        _ y: UnsafeMutablePointer<Float>
    ) {
        let plane = height * width
        forEachRun(firstTile, count) { t0, len, sample, ty, tx0 in
            let base = y + (sample * channels + channel) * plane
            for i in 0..<Swift.min(m, height - m * ty) {
                for j in 0..<m {
                    let first = m * tx0 + j
                    let (_, hi) = validRun(first, len, width)
                    let (dst, src) = (base + (m * ty + i) * width + first, r + (i * m + j) * count + t0)
                    for k in 0..<hi { dst[m * k] = src[k] + bias }
                }
            }
        }
    }

    /// The k in 0..<len with 0 <= first + m k < size.
    @inline(__always)
    private func validRun(_ first: Int, _ len: Int, _ size: Int) -> (Int, Int) {
        let lo = first >= 0 ? 0 : (-first + m - 1) / m
        let hi = first >= size ? 0 : Swift.min(len, (size - first + m - 1) / m)
        return (Swift.min(lo, hi), hi)
    }

    /// Calls `body(t0, len, sample, ty, tx0)` for each run of consecutive tiles in one tile row,
    /// covering tiles first ..< first + count; t0 is the run's offset in the block.
    @inline(__always)
    private func forEachRun(
        _ first: Int, _ count: Int, _ body: (_ t0: Int, _ len: Int, _ sample: Int, _ ty: Int, _ tx0: Int) -> Void
    ) {
        var t = 0
        while t < count {
            let (row, tx0) = (first + t).quotientAndRemainder(dividingBy: tilesW)
            let (sample, ty) = row.quotientAndRemainder(dividingBy: tilesH)
            let len = Swift.min(tilesW - tx0, count - t)
            body(t, len, sample, ty, tx0)
            t += len
        }
    }

    // MARK: Transforms (vectors over the block's tiles)

    /// r[(i m + j) count + t] = (A^T M A)[i][j] for M[(k alpha + l) pointStride + t]; s is scratch.
    private func transformOutput(
        _ mm: UnsafePointer<Float>, pointStride: Int, scratch s: UnsafeMutablePointer<Float>, count: Int,
        into r: UnsafeMutablePointer<Float>
    ) {
        let a = alpha
        for l in 0..<a { outputRows(mm + l * pointStride, a * pointStride, s + l * count, a * count, count) }
        for i in 0..<m { outputRows(s + i * a * count, count, r + i * m * count, count, count) }
    }

    /// dm[(k alpha + l) pointStride + t] = (A dY A^T)[k][l] for the m x m tiles in p; q is scratch.
    private func transformOutputGradient(
        _ p: UnsafePointer<Float>, scratch q: UnsafeMutablePointer<Float>, count: Int,
        into dm: UnsafeMutablePointer<Float>, pointStride: Int
    ) {
        let a = alpha
        for j in 0..<m { gradientRows(p + j * count, m * count, q + j * count, m * count, count) }
        for k in 0..<a { gradientRows(q + k * m * count, count, dm + k * a * pointStride, pointStride, count) }
    }

    /// d[k * ds + t] = sum_i B^T[k][i] rows[i][offset + step t] (alpha -> alpha), where step is m
    /// (`strided`: every m-th element of image rows, one per tile) or 1 (rows of transformed tiles).
    @inline(__always)
    private func inputColumns(
        _ rows: UnsafeMutableBufferPointer<UnsafePointer<Float>>, _ offset: Int, strided: Bool,
        _ d: UnsafeMutablePointer<Float>, _ ds: Int, _ count: Int
    ) {
        switch variant {
        case .f2x2:
            let (r0, r1, r2, r3) = (rows[0] + offset, rows[1] + offset, rows[2] + offset, rows[3] + offset)
            let step = strided ? 2 : 1
            for t in 0..<count {
                let (d0, d1, d2, d3) = (r0[step * t], r1[step * t], r2[step * t], r3[step * t])
                d[t] = d0 - d2; d[ds + t] = d1 + d2; d[2 * ds + t] = d2 - d1; d[3 * ds + t] = d1 - d3
            }
        case .f4x4:
            let (r0, r1, r2) = (rows[0] + offset, rows[1] + offset, rows[2] + offset)
            let (r3, r4, r5) = (rows[3] + offset, rows[4] + offset, rows[5] + offset)
            let step = strided ? 4 : 1
            for t in 0..<count {
                let (d0, d1, d2) = (r0[step * t], r1[step * t], r2[step * t])
                let (d3, d4, d5) = (r3[step * t], r4[step * t], r5[step * t])
                d[t] = 4 * d0 - 5 * d2 + d4
                d[ds + t] = (d3 + d4) - 4 * (d1 + d2)
                d[2 * ds + t] = (d4 - d3) + 4 * (d1 - d2)
                d[3 * ds + t] = (d4 - d2) + 2 * (d3 - d1)
                d[4 * ds + t] = (d4 - d2) - 2 * (d3 - d1)
                d[5 * ds + t] = 4 * d1 - 5 * d3 + d5
            }
        }
    }

    /// d[i * ds + t] = sum_k A^T[i][k] s[k * ss + t] (alpha -> m).
    @inline(__always)
    private func outputRows(
        _ s: UnsafePointer<Float>, _ ss: Int, _ d: UnsafeMutablePointer<Float>, _ ds: Int, _ count: Int
    ) {
        switch variant {
        case .f2x2:
            for t in 0..<count {
                let (m0, m1, m2, m3) = (s[t], s[ss + t], s[2 * ss + t], s[3 * ss + t])
                d[t] = m0 + m1 + m2; d[ds + t] = m1 - m2 - m3
            }
        case .f4x4:
            for t in 0..<count {
                let (m0, m1, m2) = (s[t], s[ss + t], s[2 * ss + t])
                let (m3, m4, m5) = (s[3 * ss + t], s[4 * ss + t], s[5 * ss + t])
                let (p12, d12, p34, d34) = (m1 + m2, m1 - m2, m3 + m4, m3 - m4)
                d[t] = m0 + p12 + p34
                d[ds + t] = d12 + 2 * d34
                d[2 * ds + t] = p12 + 4 * p34
                d[3 * ds + t] = d12 + 8 * d34 + m5
            }
        }
    }

    /// d[k * ds + t] = sum_i A[k][i] s[i * ss + t] (m -> alpha): the transpose of `outputRows`.
    @inline(__always)
    private func gradientRows(
        _ s: UnsafePointer<Float>, _ ss: Int, _ d: UnsafeMutablePointer<Float>, _ ds: Int, _ count: Int
    ) {
        switch variant {
        case .f2x2:
            for t in 0..<count {
                let (u0, u1) = (s[t], s[ss + t])
                d[t] = u0; d[ds + t] = u0 + u1; d[2 * ds + t] = u0 - u1; d[3 * ds + t] = -u1
            }
        case .f4x4:
            for t in 0..<count {
                let (u0, u1, u2, u3) = (s[t], s[ss + t], s[2 * ss + t], s[3 * ss + t])
                let (e, o) = (u0 + u2, u1 + u3)
                let (e4, o2) = (u0 + 4 * u2, 2 * u1 + 8 * u3)
                d[t] = u0; d[ds + t] = e + o; d[2 * ds + t] = e - o
                d[3 * ds + t] = e4 + o2; d[4 * ds + t] = e4 - o2; d[5 * ds + t] = u3
            }
        }
    }

    /// d[r * ds + t] = sum_i G[r][i] s[i * ss + t] (3 -> alpha).
    @inline(__always)
    private func weightRows(
        _ s: UnsafePointer<Float>, _ ss: Int, _ d: UnsafeMutablePointer<Float>, _ ds: Int, _ count: Int
    ) {
        switch variant {
        case .f2x2:
            for t in 0..<count {
                let (g0, g1, g2) = (s[t], s[ss + t], s[2 * ss + t])
                d[t] = g0; d[ds + t] = 0.5 * (g0 + g1 + g2); d[2 * ds + t] = 0.5 * (g0 - g1 + g2); d[3 * ds + t] = g2
            }
        case .f4x4:
            let (sixth, twelfth, twentyFourth): (Float, Float, Float) = (1.0 / 6, 1.0 / 12, 1.0 / 24)
            for t in 0..<count {
                let (g0, g1, g2) = (s[t], s[ss + t], s[2 * ss + t])
                let (even, odd) = (twentyFourth * g0 + sixth * g2, twelfth * g1)
                d[t] = 0.25 * g0
                d[ds + t] = -sixth * (g0 + g1 + g2); d[2 * ds + t] = -sixth * (g0 - g1 + g2)
                d[3 * ds + t] = even + odd; d[4 * ds + t] = even - odd
                d[5 * ds + t] = g2
            }
        }
    }

    /// d[i * ds + t] = sum_r G[r][i] s[r * ss + t] (alpha -> 3): the transpose of `weightRows`.
    @inline(__always)
    private func weightGradientRows(
        _ s: UnsafePointer<Float>, _ ss: Int, _ d: UnsafeMutablePointer<Float>, _ ds: Int, _ count: Int
    ) {
        switch variant {
        case .f2x2:
            for t in 0..<count {
                let (v0, v1, v2, v3) = (s[t], s[ss + t], s[2 * ss + t], s[3 * ss + t])
                let half = 0.5 * (v1 + v2)
                d[t] = v0 + half; d[ds + t] = 0.5 * (v1 - v2); d[2 * ds + t] = half + v3
            }
        case .f4x4:
            let (sixth, twelfth, twentyFourth): (Float, Float, Float) = (1.0 / 6, 1.0 / 12, 1.0 / 24)
            for t in 0..<count {
                let (v0, v1, v2) = (s[t], s[ss + t], s[2 * ss + t])
                let (v3, v4, v5) = (s[3 * ss + t], s[4 * ss + t], s[5 * ss + t])
                let (p12, p34) = (v1 + v2, v3 + v4)
                d[t] = 0.25 * v0 - sixth * p12 + twentyFourth * p34
                d[ds + t] = sixth * (v2 - v1) + twelfth * (v3 - v4)
                d[2 * ds + t] = sixth * (p34 - p12) + v5
            }
        }
    }
}

/// The shape arithmetic of a 2D convolution and its im2col / col2im lowering.
///
/// The column matrix has `channels * kernelH * kernelW` rows, ordered (channel, ky, kx) like
/// PyTorch's weight layout, and `samples * outH * outW` columns, ordered (sample, y, x). A
/// convolution is then one sgemm `W[O x rows] * col[rows x cols]` for the whole batch.
public struct ConvGeometry: Equatable, CustomStringConvertible {
    public let channels: Int, inH: Int, inW: Int
    public let kernelH: Int, kernelW: Int, stride: Int, padding: Int
    public let outH: Int, outW: Int

    /// The geometry of a convolution over `channels x inH x inW` images; stops if the output is empty.
    public init(channels: Int, inH: Int, inW: Int, kernelH: Int, kernelW: Int, stride: Int, padding: Int) {
        precondition(
            channels > 0 && inH > 0 && inW > 0, "convolution input \(channels)x\(inH)x\(inW) must be non-empty")
        precondition(
            kernelH > 0 && kernelW > 0 && stride > 0 && padding >= 0,
            "convolution kernel \(kernelH)x\(kernelW), stride \(stride), padding \(padding) must be positive")
        self.channels = channels; self.inH = inH; self.inW = inW
        self.kernelH = kernelH; self.kernelW = kernelW; self.stride = stride; self.padding = padding
        outH = (inH + 2 * padding - kernelH) / stride + 1
        outW = (inW + 2 * padding - kernelW) / stride + 1
        precondition(
            outH > 0 && outW > 0,
            "convolution of \(inH)x\(inW) with kernel \(kernelH)x\(kernelW), padding \(padding) has an empty output")
    }

    /// Rows of the column matrix: channels x kernelH x kernelW.
    public var rows: Int { channels * kernelH * kernelW }
    /// Columns per sample: outH x outW.
    public var outPlane: Int { outH * outW }
    /// Elements per input sample.
    public var inPlaneVolume: Int { channels * inH * inW }

    /// Samples lowered at once so the column matrix stays within `maxColumnFloats`: a rule of the
    /// shape alone, so results never depend on the thread count.
    public func samplesPerGroup(_ samples: Int, maxColumnFloats: Int) -> Int {
        Swift.max(1, Swift.min(samples, maxColumnFloats / Swift.max(1, rows * outPlane)))
    }

    public var description: String {
        "\(channels)x\(inH)x\(inW) k\(kernelH)x\(kernelW) s\(stride) p\(padding) -> \(outH)x\(outW)"
    }

    /// Writes the column matrix of `samples` consecutive NCHW images starting at `image` into `col`
    /// (`rows x samples*outPlane`), zero where the kernel reads padding.
    public func im2col(_ image: UnsafePointer<Float>, samples: Int, into col: UnsafeMutablePointer<Float>) {
        let cols = samples * outPlane
        let g = self
        Engine.parallelFor(rows, minimumPerThread: 4) { rowRange in
            for r in rowRange {
                let c = r / (g.kernelH * g.kernelW), ky = (r / g.kernelW) % g.kernelH, kx = r % g.kernelW
                let dstRow = col + r * cols
                let (owLo, owHi) = g.validOutputRange(k: kx, inSize: g.inW, outSize: g.outW)
                if g.stride == 1 && g.outW == g.inW {
                    g.shiftedPlaneCopy(
                        image, samples: samples, channel: c, ky: ky, kx: kx, owLo: owLo, owHi: owHi, into: dstRow)
                    continue
                }
                for n in 0..<samples {
                    let src = image + n * g.inPlaneVolume + c * g.inH * g.inW
                    for oy in 0..<g.outH {
                        let dst = dstRow + n * g.outPlane + oy * g.outW
                        let iy = oy * g.stride - g.padding + ky
                        if iy < 0 || iy >= g.inH || owLo >= owHi {
                            dst.update(repeating: 0, count: g.outW); continue
                        }
                        if owLo > 0 { dst.update(repeating: 0, count: owLo) }
                        if owHi < g.outW { (dst + owHi).update(repeating: 0, count: g.outW - owHi) }
                        let srcRow = src + iy * g.inW - g.padding + kx
                        if g.stride == 1 {
                            (dst + owLo).update(from: srcRow + owLo, count: owHi - owLo)
                        } else if g.stride == 2 {
                            Self.gatherEven(srcRow, from: owLo, to: owHi, into: dst, readableEnd: src + g.inH * g.inW)
                        } else {
                            var ox = owLo
                            while ox < owHi { dst[ox] = srcRow[ox * g.stride]; ox += 1 }
                        }
                    }
                }
            }
        }
    }

    /// Adds the column matrix `col` back onto `samples` NCHW images at `image` (the adjoint of
    /// `im2col`); `image` must be zeroed by the caller if it should hold only this sum.
    public func col2im(_ col: UnsafePointer<Float>, samples: Int, into image: UnsafeMutablePointer<Float>) {
        let cols = samples * outPlane
        let g = self
        let kk = kernelH * kernelW
        // Parallel over channels: channel c's rows only touch channel c of the image.
        Engine.parallelFor(channels) { channelRange in
            if g.isStride2Kernel3 {
                for c in channelRange {
                    g.col2imStride2Kernel3(col, cols: cols, samples: samples, channel: c, into: image)
                }
                return
            }
            for c in channelRange {
                for r in (c * kk)..<((c + 1) * kk) {
                    let ky = (r / g.kernelW) % g.kernelH, kx = r % g.kernelW
                    let srcRow = col + r * cols
                    let (owLo, owHi) = g.validOutputRange(k: kx, inSize: g.inW, outSize: g.outW)
                    if owLo >= owHi { continue }
                    for n in 0..<samples {
                        let dstPlane = image + n * g.inPlaneVolume + c * g.inH * g.inW
                        for oy in 0..<g.outH {
                            let iy = oy * g.stride - g.padding + ky
                            if iy < 0 || iy >= g.inH { continue }
                            let src = srcRow + n * g.outPlane + oy * g.outW
                            let dst = dstPlane + iy * g.inW - g.padding + kx
                            var ox = owLo
                            if g.stride == 1 {
                                while ox < owHi { dst[ox] += src[ox]; ox += 1 }
                            } else {
                                while ox < owHi { dst[ox * g.stride] += src[ox]; ox += 1 }
                            }
                        }
                    }
                }
            }
        }
    }

    /// DeepSPIO's down-sampling geometry: 3 x 3, stride 2, padding 1, even input width.
    var isStride2Kernel3: Bool { stride == 2 && kernelW == 3 && padding == 1 && inW == 2 * outW }

    /// `col2im` of one channel for `isStride2Kernel3`. The three kx rows of a (channel, ky) land on
    /// the same image row, kx = 1 on the even pixels and kx = 0 then kx = 2 on the odd ones, so one
    /// interleaved pass per image row adds all three, in the same order as the general loop.
    @inline(__always)
    func col2imStride2Kernel3(
        _ col: UnsafePointer<Float>, cols: Int, samples: Int, channel c: Int,
        into image: UnsafeMutablePointer<Float>
    ) {
        let w = outW
        for ky in 0..<kernelH {
            let (oyLo, oyHi) = validOutputRange(k: ky, inSize: inH, outSize: outH)
            let row0 = col + (c * kernelH + ky) * 3 * cols
            for n in 0..<samples {
                for oy in oyLo..<oyHi {
                    let offset = n * outPlane + oy * w
                    let (a0, a1, a2) = (row0 + offset, row0 + cols + offset, row0 + 2 * cols + offset)
                    let dst = image + n * inPlaneVolume + (c * inH + 2 * oy - 1 + ky) * inW
                    var j = 0
                    while j + 8 < w {  // a0 is read up to j + 8, which must stay inside the row
                        let pair = UnsafeRawPointer(dst + 2 * j).loadUnaligned(as: SIMD16<Float>.self)
                        let even = pair.evenHalf + UnsafeRawPointer(a1 + j).loadUnaligned(as: SIMD8<Float>.self)
                        let odd =
                            (pair.oddHalf + UnsafeRawPointer(a0 + j + 1).loadUnaligned(as: SIMD8<Float>.self))
                            + UnsafeRawPointer(a2 + j).loadUnaligned(as: SIMD8<Float>.self)
                        let merged = SIMD16<Float>(
                            even[0], odd[0], even[1], odd[1], even[2], odd[2], even[3], odd[3],
                            even[4], odd[4], even[5], odd[5], even[6], odd[6], even[7], odd[7])
                        UnsafeMutableRawPointer(dst + 2 * j).storeBytes(of: merged, as: SIMD16<Float>.self)
                        j += 8
                    }
                    while j < w - 1 {
                        let even = dst[2 &* j] + a1[j]
                        let odd = (dst[2 &* j &+ 1] + a0[j &+ 1]) + a2[j]
                        dst[2 &* j] = even
                        dst[2 &* j &+ 1] = odd
                        j += 1
                    }
                    dst[2 * w - 2] += a1[w - 1]
                    dst[2 * w - 1] += a2[w - 1]
                }
            }
        }
    }

    /// Stride 1 with output width = input width: row r of the column matrix is the input plane
    /// shifted by (ky - padding, kx - padding), so each sample is one contiguous copy plus zeroed
    /// padding rows and the few edge columns the flat shift wrapped around.
    @inline(__always)
    func shiftedPlaneCopy(
        _ image: UnsafePointer<Float>, samples: Int, channel c: Int, ky: Int, kx: Int,
        owLo: Int, owHi: Int, into dstRow: UnsafeMutablePointer<Float>
    ) {
        let w = outW, dy = ky - padding, dx = kx - padding
        let (oyLo, oyHi) = validOutputRange(k: ky, inSize: inH, outSize: outH)
        for n in 0..<samples {
            let src = image + n * inPlaneVolume + c * inH * inW
            let dst = dstRow + n * outPlane
            if oyLo >= oyHi || owLo >= owHi { dst.update(repeating: 0, count: outPlane); continue }
            if oyLo > 0 { dst.update(repeating: 0, count: oyLo * w) }
            if oyHi < outH { (dst + oyHi * w).update(repeating: 0, count: (outH - oyHi) * w) }
            // Flat range whose sources stay inside the plane: trim the first and last row's ends.
            let a = oyLo * w + Swift.max(0, -dx), b = oyHi * w - Swift.max(0, dx)
            if a < b { (dst + a).update(from: src + a + dy * w + dx, count: b - a) }
            for oy in oyLo..<oyHi {
                let row = dst + oy * w
                var ox = 0
                while ox < owLo { row[ox] = 0; ox += 1 }
                ox = owHi
                while ox < w { row[ox] = 0; ox += 1 }
            }
        }
    }

    /// dst[o] = src[2 * o] for o in lo..<hi, eight at a time (the even lanes of 16 loaded floats)
    /// where those 16 floats end before `readableEnd`.
    @inline(__always)
    static func gatherEven(
        _ src: UnsafePointer<Float>, from lo: Int, to hi: Int, into dst: UnsafeMutablePointer<Float>,
        readableEnd: UnsafePointer<Float>
    ) {
        var o = lo
        while o + 8 <= hi && src + 2 * o + 16 <= readableEnd {
            let v = UnsafeRawPointer(src + 2 * o).loadUnaligned(as: SIMD16<Float>.self)
            UnsafeMutableRawPointer(dst + o).storeBytes(of: v.evenHalf, as: SIMD8<Float>.self)
            o += 8
        }
        while o < hi { dst[o] = src[2 * o]; o += 1 }
    }

    /// Output positions o in [lo, hi) whose input index o*stride - padding + k lies in [0, inSize).
    @inline(__always)
    public func validOutputRange(k: Int, inSize: Int, outSize: Int) -> (Int, Int) {
        // o*s >= p - k  and  o*s <= inSize - 1 + p - k
        let lo = Swift.max(0, ceilDiv(padding - k, stride))
        let hi = Swift.min(outSize, floorDiv(inSize - 1 + padding - k, stride) + 1)
        return (lo, Swift.max(lo, hi))
    }
}

@inline(__always) private func floorDiv(_ a: Int, _ b: Int) -> Int { a >= 0 ? a / b : -((-a + b - 1) / b) }
@inline(__always) private func ceilDiv(_ a: Int, _ b: Int) -> Int { -floorDiv(-a, b) }

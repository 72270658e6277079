/// Per-channel sums over the samples and pixels of NCHW tensors, in Double (BatchNorm statistics,
/// bias gradients).
///
/// A scalar loop adds one channel's terms in a chain whose every add waits for the one before.
/// Here four channels are the four lanes of a `SIMD4<Double>`, so four chains run at once; each lane
/// still adds its own channel's terms in the same order (sample, then pixel) with the same
/// operations, so every sum is bitwise the one the scalar loop gives, on any thread count.
public enum ChannelReduction {
    /// sums[c] = sum over n, i of x[n, c, i].
    public static func sums(
        _ x: UnsafePointer<Float>, samples: Int, channels: Int, plane: Int,
        into sums: UnsafeMutablePointer<Double>
    ) {
        forQuads(channels) { lanes in
            var acc = SIMD4<Double>()
            for n in 0..<samples {
                let p = pointers(x, n, lanes, channels, plane)
                for i in 0..<plane { acc += load(p, i) }
            }
            store(acc, lanes, sums)
        }
    }

    /// out[c] += Float(sum over n, i of x[n, c, i]): a bias gradient.
    public static func addSums(
        _ x: UnsafePointer<Float>, samples: Int, channels: Int, plane: Int,
        into out: UnsafeMutablePointer<Float>
    ) {
        withUnsafeTemporaryAllocation(of: Double.self, capacity: channels) { total in
            sums(x, samples: samples, channels: channels, plane: plane, into: total.baseAddress!)
            for c in 0..<channels { out[c] += Float(total[c]) }
        }
    }

    /// sums[c] = sum over n, i of (x[n, c, i] - mean[c])^2.
    public static func squaredDeviations(
        _ x: UnsafePointer<Float>, samples: Int, channels: Int, plane: Int,
        mean: UnsafePointer<Double>, into sums: UnsafeMutablePointer<Double>
    ) {
        forQuads(channels) { lanes in
            let mu = SIMD4(mean[lanes.0], mean[lanes.1], mean[lanes.2], mean[lanes.3])
            var acc = SIMD4<Double>()
            for n in 0..<samples {
                let p = pointers(x, n, lanes, channels, plane)
                for i in 0..<plane { let d = load(p, i) - mu; acc += d * d }
            }
            store(acc, lanes, sums)
        }
    }

    /// BatchNorm's backward sums: sumDy[c] = sum of dy, sumDyXhat[c] = sum of dy * (x - mean) * invStd.
    public static func gradientSums(
        dy: UnsafePointer<Float>, x: UnsafePointer<Float>, samples: Int, channels: Int, plane: Int,
        mean: UnsafePointer<Double>, invStd: UnsafePointer<Double>,
        sumDy: UnsafeMutablePointer<Double>, sumDyXhat: UnsafeMutablePointer<Double>
    ) {
        forQuads(channels) { lanes in
            let mu = SIMD4(mean[lanes.0], mean[lanes.1], mean[lanes.2], mean[lanes.3])
            let inv = SIMD4(invStd[lanes.0], invStd[lanes.1], invStd[lanes.2], invStd[lanes.3])
            var accDy = SIMD4<Double>(), accDyXhat = SIMD4<Double>()
            for n in 0..<samples {
                let g = pointers(dy, n, lanes, channels, plane), p = pointers(x, n, lanes, channels, plane)
                for i in 0..<plane {
                    let d = load(g, i)
                    accDy += d
                    accDyXhat += d * (load(p, i) - mu) * inv
                }
            }
            store(accDy, lanes, sumDy)
            store(accDyXhat, lanes, sumDyXhat)
        }
    }

    /// Four channel indices; past the last channel a lane repeats it (its result is not stored).
    typealias Lanes = (Int, Int, Int, Int)

    /// Runs `body` for each group of four channels, the groups spread over the engine's threads.
    @inline(__always)
    static func forQuads(_ channels: Int, _ body: (Lanes) -> Void) {
        let quads = (channels + 3) / 4
        Engine.parallelFor(quads) { range in
            for q in range {
                let c = 4 * q, last = channels - 1
                body((c, Swift.min(c + 1, last), Swift.min(c + 2, last), Swift.min(c + 3, last)))
            }
        }
    }

    @inline(__always)
    static func pointers(
        _ x: UnsafePointer<Float>, _ n: Int, _ lanes: Lanes, _ channels: Int, _ plane: Int
    )
        -> (UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>)
    {
        let base = x + n * channels * plane
        return (base + lanes.0 * plane, base + lanes.1 * plane, base + lanes.2 * plane, base + lanes.3 * plane)
    }

    @inline(__always)
    static func load(
        _ p: (UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>), _ i: Int
    ) -> SIMD4<Double> {
        SIMD4(Double(p.0[i]), Double(p.1[i]), Double(p.2[i]), Double(p.3[i]))
    }

    /// Writes the lanes that stand for distinct channels (a repeated last channel is written once).
    @inline(__always)
    static func store(_ v: SIMD4<Double>, _ lanes: Lanes, _ out: UnsafeMutablePointer<Double>) {
        out[lanes.0] = v[0]
        if lanes.1 != lanes.0 { out[lanes.1] = v[1] }
        if lanes.2 != lanes.1 { out[lanes.2] = v[2] }
        if lanes.3 != lanes.2 { out[lanes.3] = v[3] }
    }
}

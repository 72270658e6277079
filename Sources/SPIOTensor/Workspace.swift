/// Scratch memory shared by the layers of one model: the im2col matrix and transposes live here
/// only for the duration of one layer's forward or backward call, so a network needs one buffer
/// the size of its largest layer instead of one per layer.
///
/// Not thread-safe: one workspace per model per thread.
public final class Workspace {
    private var slots: [UnsafeMutablePointer<Float>] = []
    private var sizes: [Int] = []

    public init() {}

    deinit { for p in slots { p.deallocate() } }

    /// Scratch slot `slot` with room for at least `count` floats; contents are unspecified.
    /// Grows (reallocates) only when a larger size is asked for.
    public func buffer(_ slot: Int, count: Int) -> UnsafeMutablePointer<Float> {
        while slots.count <= slot { slots.append(.allocate(capacity: 1)); sizes.append(1) }
        if sizes[slot] < count {
            slots[slot].deallocate()
            slots[slot] = .allocate(capacity: count)
            sizes[slot] = count
        }
        return slots[slot]
    }

    /// Total floats currently allocated.
    public var allocatedFloats: Int { sizes.reduce(0, +) }
}

/// Layout conversions between NCHW and channel-major C x (N*H*W), the layout sgemm produces.
public enum Layout {
    /// dst[c][n*plane + i] = src[n][c][i] for `samples` samples.
    public static func nchwToCN(_ src: UnsafePointer<Float>, samples: Int, channels: Int, plane: Int,
                                into dst: UnsafeMutablePointer<Float>) {
        Engine.parallelFor(channels) { range in
            for c in range {
                for n in 0..<samples {
                    (dst + (c * samples + n) * plane).update(from: src + (n * channels + c) * plane, count: plane)
                }
            }
        }
    }

    /// dst[n][c][i] = src[c][n*plane + i] (the inverse of `nchwToCN`).
    public static func cnToNCHW(_ src: UnsafePointer<Float>, samples: Int, channels: Int, plane: Int,
                                into dst: UnsafeMutablePointer<Float>) {
        Engine.parallelFor(channels) { range in
            for c in range {
                for n in 0..<samples {
                    (dst + (n * channels + c) * plane).update(from: src + (c * samples + n) * plane, count: plane)
                }
            }
        }
    }
}

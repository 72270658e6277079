/// Layout conversions between NCHW and channel-major C x (N*H*W), the layout sgemm produces.
public enum Layout {
    /// dst[c][n*plane + i] = src[n][c][i] for `samples` samples.
    public static func nchwToCN(
        _ src: UnsafePointer<Float>, samples: Int, channels: Int, plane: Int,
        into dst: UnsafeMutablePointer<Float>
    ) {
        Engine.parallelFor(channels) { range in
            for c in range {
                for n in 0..<samples {
                    (dst + (c * samples + n) * plane).update(from: src + (n * channels + c) * plane, count: plane)
                }
            }
        }
    }

    /// dst[n][c][i] = src[c][n*plane + i] (+ bias[c] when given): the inverse of `nchwToCN`.
    public static func cnToNCHW(
        _ src: UnsafePointer<Float>, samples: Int, channels: Int, plane: Int,
        into dst: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>? = nil
    ) {
        Engine.parallelFor(channels) { range in
            for c in range {
                for n in 0..<samples {
                    let d = dst + (n * channels + c) * plane, s = src + (c * samples + n) * plane
                    if let bias {
                        let b = bias[c]
                        for i in 0..<plane { d[i] = s[i] + b }
                    } else {
                        d.update(from: s, count: plane)
                    }
                }
            }
        }
    }
}
